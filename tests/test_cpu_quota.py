"""A container's CPU quota (`docker --cpus`, systemd `CPUQuota=`, a Kubernetes CPU limit) lowers the threads edge-reid
starts (edge_reid/cpu.py): the runtimes count the cores they see, and more threads than the quota allows are throttled.

Quota files are written to a temporary folder laid out as /sys/fs/cgroup; one test makes a real cgroup and skips where
it cannot (not root, no writable cgroup file system, one core)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from edge_reid import cpu
from edge_reid.cpu import cpu_quota, quota_threads, usable_cpu_count

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "edge_reid" / "assets" / "osnet_x0_25_msmt17.onnx"
DETECTOR = REPO / "edge_reid" / "assets" / "yolox_nano.onnx"


def _cgroups(tmp_path: Path, proc_line: str, files: dict[str, str]) -> tuple[Path, Path]:
    """(cgroup root, /proc/self/cgroup file) under ``tmp_path``: ``files`` maps paths under the root to their text."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(proc_line)
    return root, proc


@pytest.fixture
def sixteen_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)


def test_a_cgroup_v2_quota_rounds_up_to_whole_cores(tmp_path, sixteen_cores):
    """`docker --cpus=1.5` on 16 cores: 2 cores usable, not 16 (cgroup v2, the container's own cgroup at the root)."""
    root, proc = _cgroups(tmp_path, "0::/\n", {"cpu.max": "150000 100000\n"})
    quota = cpu_quota(root, proc)
    assert quota is not None and quota.cores == 1.5 and quota.whole_cores == 2 and quota.source == str(root / "cpu.max")
    assert usable_cpu_count(root, proc) == 2


def test_no_quota_leaves_the_affinity(tmp_path, sixteen_cores):
    root, proc = _cgroups(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    assert cpu_quota(root, proc) is None and usable_cpu_count(root, proc) == 16


def test_a_parent_cgroups_quota_binds_its_children(tmp_path, sixteen_cores):
    """A Kubernetes pod's limit, or a systemd slice's CPUQuota=, is on a parent of the process's cgroup; the tightest counts."""
    root, proc = _cgroups(tmp_path, "0::/kubepods/pod1/container\n", {
        "kubepods/cpu.max": "max 100000", "kubepods/pod1/cpu.max": "300000 100000", "kubepods/pod1/container/cpu.max": "max 100000",
    })
    assert usable_cpu_count(root, proc) == 3


def test_the_tightest_of_a_parents_and_a_childs_quota_counts(tmp_path, sixteen_cores):
    """A pod limited to 1 core holding a container limited to 3: 1 core, whichever is nearer the process."""
    root, proc = _cgroups(tmp_path, "0::/kubepods/pod1/container\n", {
        "kubepods/pod1/cpu.max": "100000 100000", "kubepods/pod1/container/cpu.max": "300000 100000",
    })
    quota = cpu_quota(root, proc)
    assert quota.cores == 1.0 and quota.source == str(root / "kubepods/pod1/cpu.max") and usable_cpu_count(root, proc) == 1


def test_a_quota_under_half_a_core_still_leaves_one_thread(tmp_path, sixteen_cores):
    root, proc = _cgroups(tmp_path, "0::/\n", {"cpu.max": "20000 100000"})
    assert cpu_quota(root, proc).cores == 0.2 and usable_cpu_count(root, proc) == 1


def test_a_quota_above_the_affinity_leaves_the_affinity(tmp_path, monkeypatch):
    """`docker --cpuset-cpus=0,1 --cpus=8`: 2 cores."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    root, proc = _cgroups(tmp_path, "0::/\n", {"cpu.max": "800000 100000"})
    assert usable_cpu_count(root, proc) == 2


@pytest.mark.parametrize("folder", ["cpu,cpuacct", "cpu"])
def test_a_cgroup_v1_quota_of_a_container_that_sees_its_own_cgroup_at_the_mount(tmp_path, sixteen_cores, folder):
    """Docker on cgroup v1 (JetPack 5, older hosts): /proc/self/cgroup names the host's path, /docker/<id>, while the
    container's own cgroup is mounted at /sys/fs/cgroup/cpu,cpuacct itself."""
    root, proc = _cgroups(tmp_path, "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n", {
        f"{folder}/cpu.cfs_quota_us": "100000\n", f"{folder}/cpu.cfs_period_us": "100000\n",
    })
    quota = cpu_quota(root, proc)
    assert quota is not None and quota.cores == 1.0 and usable_cpu_count(root, proc) == 1


def test_a_cgroup_v1_quota_of_minus_one_is_none(tmp_path, sixteen_cores):
    root, proc = _cgroups(tmp_path, "3:cpu:/user.slice\n", {"cpu/user.slice/cpu.cfs_quota_us": "-1", "cpu/user.slice/cpu.cfs_period_us": "100000"})
    assert cpu_quota(root, proc) is None and usable_cpu_count(root, proc) == 16


@pytest.mark.parametrize("files, proc_line", [
    ({"cpu.max": "garbage"}, "0::/\n"),
    ({"cpu.max": "100000 0"}, "0::/\n"),
    ({"cpu/cpu.cfs_quota_us": "100000"}, "3:cpu:/\n"),  # no period file
    ({}, "0::/\n"),
    ({"cpu.max": "100000 100000"}, "not a cgroup line\n"),
])
def test_a_file_that_cannot_be_read_is_no_quota(tmp_path, sixteen_cores, files, proc_line):
    root, proc = _cgroups(tmp_path, proc_line, files)
    assert cpu_quota(root, proc) is None and usable_cpu_count(root, proc) == 16
    assert cpu_quota(root, tmp_path / "no-such-file") is None  # not Linux: no /proc/self/cgroup


@pytest.mark.parametrize("proc_line", ["0::/" + "x" * 300 + "\n", "4:cpu,cpuacct:/" + "x" * 300 + "\n"], ids=["v2", "v1"])
def test_a_cgroup_folder_that_cannot_be_looked_up_is_no_quota_not_an_error(tmp_path, sixteen_cores, proc_line):
    """A folder of the process's cgroup path that cannot be looked up (here a name longer than a file name may be;
    a folder without search permission fails the same way for a user) raised out of usable_cpu_count, so out of
    every backend's start, where cpu_quota says it never raises."""
    root, proc = _cgroups(tmp_path, proc_line, {"cpu.max": "100000 100000", "cpu,cpuacct/cpu.cfs_quota_us": "100000",
                                                "cpu,cpuacct/cpu.cfs_period_us": "100000"})
    assert cpu_quota(root, proc).cores == 1.0 and usable_cpu_count(root, proc) == 1  # the mount's own limit still counts


@pytest.fixture
def one_core_quota_of_sixteen(tmp_path, monkeypatch, sixteen_cores):
    """This process under `docker --cpus=1` on a 16-core machine, as edge_reid.cpu reads it by default."""
    root, proc = _cgroups(tmp_path, "0::/\n", {"cpu.max": "100000 100000"})
    monkeypatch.setattr(cpu, "CGROUP_ROOT", root)
    monkeypatch.setattr(cpu, "PROC_SELF_CGROUP", proc)


def test_quota_threads_is_none_without_a_quota(tmp_path, monkeypatch, sixteen_cores):
    """Without a quota the runtimes keep their own default (ONNX Runtime: one thread per physical core)."""
    monkeypatch.setattr(cpu, "PROC_SELF_CGROUP", tmp_path / "missing")
    assert quota_threads() is None


def test_onnxruntime_starts_the_quotas_threads_not_one_per_core(one_core_quota_of_sixteen):
    """ONNX Runtime's default counts cores: under `docker --cpus=1` on 16 cores it started 8-16 intra-op threads."""
    from edge_reid.backends.onnxruntime import OnnxRuntimeBackend, OnnxRuntimeDetector
    from edge_reid.spec import load_spec

    assert quota_threads() == 1
    backend = OnnxRuntimeBackend(MODEL, load_spec(MODEL), max_batch=4, optimization_level="extended")
    try:
        assert backend.session.get_session_options().intra_op_num_threads == 1 and "1 thread" in backend.describe()
    finally:
        backend.close()
    detector = OnnxRuntimeDetector(DETECTOR, optimization_level="extended")
    assert detector.session.get_session_options().intra_op_num_threads == 1
    assert OnnxRuntimeBackend(MODEL, load_spec(MODEL), max_batch=4, threads=3, optimization_level="extended").session \
        .get_session_options().intra_op_num_threads == 3, "a thread count given stays"


class _RecordingCore:
    """An OpenVINO Core that records the configuration each model is compiled with."""

    def __init__(self, core):
        self.core, self.configs = core, []

    def compile_model(self, model, device, config):
        self.configs.append(dict(config))
        return self.core.compile_model(model, device, config)

    def __getattr__(self, name):
        return getattr(self.core, name)


def test_openvino_is_asked_for_the_quotas_threads(one_core_quota_of_sixteen, monkeypatch):
    """OpenVINO's own count follows the cores it sees (in latency mode one per physical core: 1 on this 2-thread
    test machine either way), so edge-reid sets INFERENCE_NUM_THREADS under a quota."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed (x86-64 only)")
    import edge_reid.backends.openvino as openvino_backend

    recording = _RecordingCore(openvino_backend._core())
    monkeypatch.setattr(openvino_backend, "_core", lambda: recording)
    detector = openvino_backend.OpenVinoDetector(DETECTOR)
    assert [config.get("INFERENCE_NUM_THREADS") for config in recording.configs] == [1]
    assert int(detector.compiled.get_property("INFERENCE_NUM_THREADS")) == 1 and "1 thread" in detector.describe()
    monkeypatch.setattr(cpu, "PROC_SELF_CGROUP", cpu.CGROUP_ROOT / "missing")
    openvino_backend.OpenVinoDetector(DETECTOR)
    assert "INFERENCE_NUM_THREADS" not in recording.configs[-1], "without a quota OpenVINO keeps its own count"


def test_the_backend_choice_is_measured_again_under_a_quota(tmp_path, monkeypatch, sixteen_cores):
    """`--backend auto`'s cached choice, measured on 16 free cores, is not reused in a 1-core container on that machine."""
    from edge_reid.backends.cpu_choice import choice_key

    monkeypatch.setattr(cpu, "PROC_SELF_CGROUP", tmp_path / "missing")
    free = choice_key("embedding", MODEL, "batch 8")
    root, proc = _cgroups(tmp_path, "0::/\n", {"cpu.max": "100000 100000"})
    monkeypatch.setattr(cpu, "CGROUP_ROOT", root)
    monkeypatch.setattr(cpu, "PROC_SELF_CGROUP", proc)
    limited = choice_key("embedding", MODEL, "batch 8")
    assert "16 cores" in free and "1 cores" in limited and free != limited


def test_doctor_and_bench_say_the_quota(tmp_path, monkeypatch, sixteen_cores):
    from edge_reid.bench.environment import environment
    from edge_reid.doctor import cpu_item

    root, proc = _cgroups(tmp_path, "0::/\n", {"cpu.max": "150000 100000"})
    item = cpu_item(root, proc)
    assert item.name == "CPU" and "2 of " in item.value and "CPU quota 1.5 cores" in item.value and str(root / "cpu.max") in item.value
    assert "quota" not in cpu_item(root, tmp_path / "missing").value
    monkeypatch.setattr(cpu, "CGROUP_ROOT", root)
    monkeypatch.setattr(cpu, "PROC_SELF_CGROUP", proc)
    env = environment()
    assert env["cpu_quota"] == 1.5 and env["cpu_usable"] == 2


# --- a real cgroup ---------------------------------------------------------------------------------------------------

PROBE = """
import json, os
import numba, numpy as np
from edge_reid.cpu import cpu_quota, usable_cpu_count
from edge_reid.backends.onnxruntime import OnnxRuntimeDetector
from edge_reid.matching.topk import topk_cosine
asked = []
set_num_threads = numba.set_num_threads
numba.set_num_threads = lambda n: (asked.append(n), set_num_threads(n))[1]
gallery = np.random.default_rng(0).standard_normal((4096, 64)).astype(np.float32)
gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
top = topk_cosine(gallery[:3], gallery, 1, parallel=True)
detector = OnnxRuntimeDetector({detector!r}, optimization_level="extended")
quota = cpu_quota()
print(json.dumps({{"affinity": len(os.sched_getaffinity(0)), "usable": usable_cpu_count(), "quota": quota and quota.cores,
                  "numba_asked": asked, "numba_after": numba.get_num_threads(), "top": top.indices[:, 0].tolist(),
                  "detector_threads": detector.session.get_session_options().intra_op_num_threads}}))
"""


def _new_cpu_cgroup() -> tuple[Path, Path, Path]:
    """(folder, quota file, period file) of a new cgroup with the cpu controller; pytest.skip where none can be made."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("a real cgroup needs root")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("a one-core quota changes nothing on one core")
    name = f"edge-reid-test-{uuid.uuid4().hex[:8]}"
    root = cpu.CGROUP_ROOT
    controls = root / "cgroup.subtree_control"  # cgroup v2 mounted at the root, the cpu controller handed down
    if controls.is_file() and "cpu" in controls.read_text().split():
        layouts = [(root / name, "cpu.max", None)]
    else:
        layouts = [(root / mount / name, "cpu.cfs_quota_us", "cpu.cfs_period_us") for mount in cpu.V1_CPU_FOLDERS]
    for folder, quota, period in layouts:
        try:
            folder.mkdir()
        except OSError:
            continue
        return folder, folder / quota, folder / period if period else None
    pytest.skip("no writable cgroup file system with the cpu controller (/sys/fs/cgroup)")


def test_a_real_one_core_quota_lowers_every_pool(tmp_path):
    """The process in a real cgroup limited to one core's time (what `docker --cpus=1` makes): ONNX Runtime, Numba's
    matcher and the count itself use one core, on a machine with more."""
    folder, quota, period = _new_cpu_cgroup()
    try:
        try:
            if period is None:
                quota.write_text("100000 100000")
            else:
                period.write_text("100000")
                quota.write_text("100000")
        except OSError as exc:
            pytest.skip(f"cannot set a CPU quota in {folder}: {exc}")
        done = subprocess.run(  # the shell joins the cgroup (exit 3 where it cannot), then becomes Python
            ["sh", "-c", f'echo $$ > "{folder / "cgroup.procs"}" || exit 3; exec "$0" -c "$1"', sys.executable, PROBE.format(detector=str(DETECTOR))],
            capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, "EDGE_REID_CACHE_DIR": str(tmp_path)},
        )
    finally:
        folder.rmdir()  # the process has ended: the cgroup is empty
    if done.returncode == 3:
        pytest.skip(f"cannot move a process into {folder}: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["affinity"] >= 2 and seen["quota"] == 1.0 and seen["usable"] == 1
    assert seen["detector_threads"] == 1
    assert seen["numba_asked"][0] == 1 and seen["numba_after"] == seen["affinity"] and seen["top"] == [0, 1, 2]
