"""This CPU: its model and instruction sets, how many cores this process may use, and how the two models share them.

The cores this process may use are the fewer of its CPU affinity (``taskset``, ``docker --cpuset-cpus``,
a cpuset cgroup) and its CPU quota (``docker --cpus``, systemd ``CPUQuota=``, a Kubernetes CPU limit: the
cgroup's CFS bandwidth, which throttles time and leaves every core visible). ONNX Runtime, OpenVINO and
Numba count cores, not the quota (OpenCV reads the quota of the top cgroup only), so threads are chosen
here: more threads than the quota allows take turns being throttled (docs/benchmarks.md, "Containers").
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

#: Instruction-set flags that decide which kernels the CPU runtimes pick.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else the platform's processor or machine name)."""
    text = _cpuinfo()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_isa_flags() -> list[str]:
    """The :data:`ISA_FLAGS` this CPU reports in ``/proc/cpuinfo`` (empty where it cannot be read)."""
    present: set[str] = set()
    for line in _cpuinfo().splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            present.update(line.split(":", 1)[1].split())
    return [flag for flag in ISA_FLAGS if flag in present]


#: Where cgroup file systems are mounted, and the file naming this process's cgroups (``man 7 cgroups``).
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
#: Folders a cgroup v1 ``cpu`` controller is mounted at under :data:`CGROUP_ROOT` (Ubuntu and L4T mount it
#: with cpuacct as ``cpu,cpuacct`` and link ``cpu`` to it).
V1_CPU_FOLDERS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


@dataclass(frozen=True)
class CpuQuota:
    """A cgroup's CFS bandwidth limit: this process's threads together get ``cores`` cores' time.

    Attributes:
        cores: quota / period, e.g. 1.5 for ``docker --cpus=1.5`` (> 0).
        source: the file it was read from, e.g. ``/sys/fs/cgroup/cpu.max``.
    """

    cores: float
    source: str

    @property
    def whole_cores(self) -> int:
        """``cores`` rounded up, at least 1: threads that the quota keeps busy (1.5 cores: 2)."""
        return max(1, math.ceil(self.cores))


def _read_limit(folder: Path) -> CpuQuota | None:
    """The CFS limit ``folder`` sets: cgroup v2 ``cpu.max`` (``"150000 100000"``, ``"max 100000"``: none), else
    cgroup v1 ``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``; None without one, or on any read failure."""
    try:
        v2 = folder / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            source = v2
        else:
            source = folder / "cpu.cfs_quota_us"
            quota, period = source.read_text().strip(), (folder / "cpu.cfs_period_us").read_text().strip()
        if quota == "max" or int(quota) <= 0 or int(period) <= 0:
            return None
        return CpuQuota(int(quota) / int(period), str(source))
    except (OSError, ValueError):
        return None


def _cgroup_folders(mount: Path, path: str) -> list[Path]:
    """``mount``/``path`` and its parents up to ``mount``, those that exist. A parent's limit binds this process too
    (a systemd slice, a Kubernetes pod); a container that sees its own cgroup at ``mount`` while
    ``/proc/self/cgroup`` names the host's path (Docker on cgroup v1) has only ``mount`` itself."""
    parts = [part for part in path.strip().split("/") if part and part not in (".", "..")]
    folders = [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]
    return [folder for folder in folders if folder.is_dir()]


def cpu_quota(cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> CpuQuota | None:
    """The tightest CPU quota on this process's cgroup and its parents, cgroup v2 or v1 (``cpu`` controller).

    Args:
        cgroup_root: where cgroups are mounted (None: :data:`CGROUP_ROOT`).
        proc_cgroup: the ``/proc/<pid>/cgroup`` file to read (None: :data:`PROC_SELF_CGROUP`).

    Returns:
        The smallest :class:`CpuQuota` found, or None: no quota, not Linux, or a file that cannot be read
        (never raises).
    """
    root = Path(cgroup_root or CGROUP_ROOT)
    try:
        lines = Path(proc_cgroup or PROC_SELF_CGROUP).read_text().splitlines()
    except (OSError, ValueError):
        return None
    limits = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        if hierarchy == "0" and not controllers:  # cgroup v2: one tree, mounted at the root
            mounts = [root]
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's own tree
            mounts = [root / name for name in (controllers, *V1_CPU_FOLDERS) if (root / name).is_dir()][:1]
        else:
            continue
        for mount in mounts:
            limits.extend(limit for folder in _cgroup_folders(mount, path) if (limit := _read_limit(folder)))
    return min(limits, key=lambda limit: limit.cores, default=None)


def affinity_cpu_count() -> int:
    """Cores this process may run on (its CPU affinity on Linux, else ``os.cpu_count()``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API on this platform
        return os.cpu_count() or 1


def usable_cpu_count(cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> int:
    """Cores this process may use, at least 1: :func:`affinity_cpu_count`, lowered to a CPU quota's
    :attr:`CpuQuota.whole_cores` (``docker --cpus=1.5`` on 16 cores: 2). Arguments as :func:`cpu_quota`."""
    quota = cpu_quota(cgroup_root, proc_cgroup)
    return min(affinity_cpu_count(), quota.whole_cores) if quota else affinity_cpu_count()


def quota_threads() -> int | None:
    """Threads for a model that has the cores to itself: :func:`usable_cpu_count` when a CPU quota leaves this
    process fewer cores than its affinity, else None (the runtime's own default, one per core it sees)."""
    usable = usable_cpu_count()
    return usable if usable < affinity_cpu_count() else None


def threads_per_model() -> int:
    """CPU threads for each of two models that keep their own thread pools and run side by side.

    The main loop runs the detector in a worker thread while the ReID model embeds
    the previous frame. Runtimes with a thread pool per model (ONNX Runtime) then get
    half the cores this process may use each (at least one): two such pools each taking
    every core fight over them (``benchmarks/run_modes.py`` compares both; figures in
    docs/benchmarks.md). OpenVINO's models share one pool and keep every core; see
    :class:`edge_reid.backends.BackendOptions` (``side_by_side``).
    """
    return max(1, usable_cpu_count() // 2)
