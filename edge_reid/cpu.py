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

#: Where the kernel describes the CPU (``man 5 proc``): x86 has ``model name`` and ``flags`` lines, arm64 has
#: ``CPU implementer``, ``CPU part`` and ``Features`` lines per core and no ``model name`` (Linux prints one there only
#: to 32-bit processes; vendor kernels such as L4T 32's print a generic ``ARMv8 Processor rev 0 (v8l)``).
CPUINFO = Path("/proc/cpuinfo")
#: The board's model in the device tree (a Jetson's "NVIDIA Jetson AGX Orin Developer Kit"; Arm boards have one,
#: x86 machines do not): part of a TensorRT engine's identity and of an Arm CPU's name.
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")

#: Instruction-set flags that decide which kernels the CPU runtimes pick. x86: ``flags`` names. Arm (``Features``
#: names, the kernel's hwcaps: Documentation/arch/arm64/elf_hwcaps.rst): ``neon`` (32-bit Arm), ``asimd`` (NEON),
#: ``asimdhp`` (fp16 arithmetic: OpenVINO's FP16 on Arm), ``asimddp`` (8-bit dot products), ``i8mm`` (8-bit matrix
#: multiply), ``bf16``, ``sve``, ``sve2``.
ISA_FLAGS = (
    "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
    "neon", "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2",
)

#: Arm CPU implementers (the ``CPU implementer`` line, MIDR_EL1's implementer field), as the Linux kernel's
#: arch/arm64/include/asm/cputype.h names them.
ARM_IMPLEMENTERS = {0x41: "Arm", 0x4E: "NVIDIA", 0x51: "Qualcomm", 0x61: "Apple", 0xC0: "Ampere", 0x48: "HiSilicon", 0x6D: "Microsoft"}
#: (implementer, ``CPU part``) -> core, from the same table: the cores of Jetsons (Cortex-A57: Nano; Carmel: Xavier;
#: Cortex-A78AE: Orin; Neoverse V3AE: Thor), Raspberry Pis (A53, A72, A76), and common Arm boards, laptops and cloud
#: machines. Other parts show as their numbers (``Arm part 0xd8e``).
ARM_PARTS = {
    (0x41, 0xD03): "Cortex-A53", (0x41, 0xD04): "Cortex-A35", (0x41, 0xD05): "Cortex-A55", (0x41, 0xD07): "Cortex-A57",
    (0x41, 0xD08): "Cortex-A72", (0x41, 0xD09): "Cortex-A73", (0x41, 0xD0A): "Cortex-A75", (0x41, 0xD0B): "Cortex-A76",
    (0x41, 0xD0C): "Neoverse N1", (0x41, 0xD0D): "Cortex-A77", (0x41, 0xD0E): "Cortex-A76AE", (0x41, 0xD40): "Neoverse V1",
    (0x41, 0xD41): "Cortex-A78", (0x41, 0xD42): "Cortex-A78AE", (0x41, 0xD44): "Cortex-X1", (0x41, 0xD46): "Cortex-A510",
    (0x41, 0xD47): "Cortex-A710", (0x41, 0xD48): "Cortex-X2", (0x41, 0xD49): "Neoverse N2", (0x41, 0xD4B): "Cortex-A78C",
    (0x41, 0xD4F): "Neoverse V2", (0x41, 0xD80): "Cortex-A520", (0x41, 0xD81): "Cortex-A720", (0x41, 0xD82): "Cortex-X4",
    (0x41, 0xD83): "Neoverse V3AE", (0x41, 0xD84): "Neoverse V3", (0x41, 0xD85): "Cortex-X925", (0x41, 0xD87): "Cortex-A725",
    (0x4E, 0x003): "Denver", (0x4E, 0x004): "Carmel", (0x51, 0x001): "Oryon", (0xC0, 0xAC3): "Ampere-1", (0xC0, 0xAC4): "Ampere-1a",
}


def _cpuinfo() -> str:
    try:
        return CPUINFO.read_text(errors="replace")
    except OSError:
        return ""


def _values(text: str, key: str) -> list[str]:
    """The values of ``key : value`` lines in ``text``, in order."""
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if ":" in line and line.split(":")[0].strip() == key]


def arm_cores(cpuinfo: str) -> list[str]:
    """The distinct Arm cores of a ``/proc/cpuinfo`` text, in order of first appearance, named by :data:`ARM_PARTS`.

    E.g. ``["Arm Cortex-A78AE"]`` (Jetson Orin), ``["NVIDIA Carmel"]`` (Xavier), ``["Arm Cortex-X925", "Arm Cortex-A725"]``
    (a big.LITTLE chip); ``[]`` without ``CPU implementer``/``CPU part`` lines (x86). Unnamed parts: ``"Arm part 0xd8e"``.
    """
    def number(value: str) -> int | None:
        try:
            return int(value.strip(), 16)
        except ValueError:  # not a hex number: a line we do not understand
            return None

    cores: list[str] = []
    implementer = None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":  # a new core's block
            implementer = None
        elif key == "CPU implementer":
            implementer = number(value)
        elif key == "CPU part" and implementer is not None and (part := number(value)) is not None:
            vendor = ARM_IMPLEMENTERS.get(implementer, f"implementer 0x{implementer:02x}")
            name = f"{vendor} {ARM_PARTS.get((implementer, part), f'part 0x{part:03x}')}"
            if name not in cores:
                cores.append(name)
    return cores


def board_model(path: Path | None = None) -> str:
    """The device tree's board model (:data:`DEVICE_TREE_MODEL`, NUL-terminated), or "" when absent (x86, a
    container that hides ``/sys/firmware``)."""
    try:
        raw = (path or DEVICE_TREE_MODEL).read_bytes()
    except OSError:
        return ""
    return raw.split(b"\0", 1)[0].decode(errors="replace").strip()


def cpu_model(cpuinfo: str | None = None, board: str | None = None) -> str:
    """The CPU's name, for reports (doctor, bench) and the keys of measured choices (``--backend auto``).

    Arm (``CPU implementer``/``CPU part`` lines): the board, then the cores (:func:`arm_cores`), e.g.
    ``"NVIDIA Jetson AGX Orin Developer Kit, Arm Cortex-A78AE"``; the kernel's arm64 ``model name``
    (``"ARMv8 Processor rev 0 (v8l)"`` on L4T 32) names no core and is passed over. Elsewhere the
    ``model name`` line (x86: ``"AMD EPYC 7B13"``), else ``Model``/``Hardware``/``cpu model``, else the
    platform's processor or machine name.

    Args:
        cpuinfo: a ``/proc/cpuinfo`` text (None: read :data:`CPUINFO`; "" where it cannot be read).
        board: the board's name (None: the device tree's, :func:`board_model`: a Jetson's
            ``"NVIDIA Jetson AGX Orin Developer Kit"``; absent in containers that mask ``/sys/firmware``, as
            Docker does); where there is none, the ``Model`` line (Raspberry Pi kernels) stands in.
    """
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    cores = arm_cores(text)
    if cores:
        if board is None:
            board = board_model()
        board = board or next(iter(_values(text, "Model")), "")
        return ", ".join([board, *cores] if board else cores)
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if values := _values(text, key):
            return values[0]
    return platform.processor() or platform.machine()


def cpu_isa_flags(cpuinfo: str | None = None) -> list[str]:
    """The :data:`ISA_FLAGS` a ``/proc/cpuinfo`` text lists on its ``flags`` (x86) or ``Features`` (Arm) lines,
    in :data:`ISA_FLAGS` order (empty where it cannot be read). ``cpuinfo``: the text (None: read :data:`CPUINFO`)."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    present = {flag for key in ("flags", "Features") for values in _values(text, key) for flag in values.split()}
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
    return [folder for folder in folders if os.path.isdir(folder)]  # False, never an error, where it cannot be looked up


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
            mounts = [root / name for name in (controllers, *V1_CPU_FOLDERS) if os.path.isdir(root / name)][:1]
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
