"""What ``edge-reid doctor`` reports: versions, GPU, camera support, engines and whether each is current.

Every probe catches its own failure, so the report works on any machine (a CPU-only
laptop says what is missing; a Jetson says which engines it can load).
"""

from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

NV_TEGRA_RELEASE = Path("/etc/nv_tegra_release")


@dataclass(frozen=True)
class DoctorItem:
    """One line of the report.

    Attributes:
        name: what was checked ("TensorRT", "GPU", ...).
        value: what was found, or what is missing and how to get it.
        ok: True fine, False missing/broken, None informational.
    """

    name: str
    value: str
    ok: bool | None = None


def parse_nv_tegra_release(text: str) -> str | None:
    """L4T version from ``/etc/nv_tegra_release``.

    >>> parse_nv_tegra_release("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64")
    '36.4.0'
    """
    match = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return f"{match.group(1)}.{match.group(2)}.{match.group(3) or 0}"


def jetpack_for_l4t(l4t: str) -> str:
    """JetPack generation of an L4T release (NVIDIA's JetPack/L4T release table)."""
    major = int(l4t.split(".")[0])
    return {38: "JetPack 7 (Jetson Thor)", 36: "JetPack 6", 35: "JetPack 5", 34: "JetPack 5 (developer preview)", 32: "JetPack 4"}.get(major, "unknown JetPack")


def opencv_gstreamer(build_information: str) -> bool | None:
    """Whether OpenCV was built with GStreamer, from ``cv2.getBuildInformation()`` (None when not stated)."""
    match = re.search(r"^\s*GStreamer:\s*(\S+)", build_information, re.MULTILINE)
    if not match:
        return None
    return match.group(1).upper().startswith("YES")


def _package_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def openvino_precisions(capabilities) -> list[str]:
    """The ``--precision`` values an OpenVINO device offers, from its ``OPTIMIZATION_CAPABILITIES``.

    E.g. ``["FP32", "BF16", "WINOGRAD", "FP16", "INT8", "BIN"]`` -> ``["fp32", "bf16", "fp16", "int8"]``
    (the order of :data:`edge_reid.backends.PRECISIONS`; other capabilities are left out).
    """
    from edge_reid.backends import PRECISIONS

    offered = {str(capability).lower() for capability in capabilities}
    return [precision for precision in PRECISIONS if precision in offered]


def cuda_items(gpu) -> list[DoctorItem]:
    """The "CUDA" and "cuda-python" lines: the device's CUDA (driver, toolkit) and whether cuda-python matches it.

    Args:
        gpu: a :class:`~edge_reid.cuda.runtime.GpuStatus`.
    """
    from edge_reid.cuda.versions import DeviceCuda, cuda_python_mismatch, cuda_python_requirement, cuda_python_too_new, cuda_python_version

    cuda = DeviceCuda.here(gpu.driver_version)
    installed = cuda_python_version()
    if cuda.version:
        value = f"{cuda.version} ({cuda.describe()})"
        items = [DoctorItem("CUDA", value, bool(cuda.driver) or None)]
    else:
        items = [DoctorItem("CUDA", "unknown: no NVIDIA driver answered through cuda-python, and no CUDA toolkit was found "
                                    "(/usr/local/cuda/version.json, nvcc, a cuda-cudart package)", None)]
    if not installed:
        how = f"pip install '{cuda_python_requirement(cuda.version)}'" if cuda.version else "install_jetson.sh on a Jetson, else pip install 'cuda-python==X.Y.*' for your CUDA X.Y"
        items.append(DoctorItem("cuda-python", f"not installed: {how}", False))
        return items
    built_for = f", built for CUDA {gpu.runtime_version}" if gpu.runtime_version else ""
    mismatch = cuda_python_mismatch(installed, cuda.version)
    if mismatch:  # "missing" only when it cannot run: a newer minor of the device's major runs, and is a hint
        items.append(DoctorItem("cuda-python", f"{installed}{built_for}: {mismatch}", False if cuda_python_too_new(installed, cuda.version) else None))
    else:
        items.append(DoctorItem("cuda-python", f"{installed}{built_for}", True if cuda.version else None))
    return items


@dataclass(frozen=True)
class KnownModel:
    """A ReID model file doctor can check engines against.

    Attributes:
        path: the ``.onnx`` file.
        sha256: its :func:`~edge_reid.spec.model_sha256` (what manifests record).
        spec_fingerprint: its spec's fingerprint.
    """

    path: Path
    sha256: str
    spec_fingerprint: str


def known_model(path: str | Path) -> KnownModel | None:
    """The identity of the ReID model at ``path``, or None when it cannot be read (missing, not a model)."""
    import warnings

    from edge_reid.errors import EdgeReidError
    from edge_reid.spec import load_spec, model_sha256

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "matches no built-in spec": `run` and `build` say it where it matters
            spec = load_spec(path)
        return KnownModel(Path(path), model_sha256(path), spec.fingerprint())
    except (EdgeReidError, OSError, ValueError):
        return None


def check_engine_models(checks: list, models: list[KnownModel]) -> list:
    """Each engine check with its model checked where doctor knows the model file.

    A manifest whose model sha256 is one of ``models`` keeps its verdict (another spec: OTHER_MODEL).
    One whose model file name is one of theirs, with another sha256, was built from another version
    of that file: OTHER_MODEL (``run`` never loads it for that file). Any other keeps its verdict with
    the reason "model not checked: ..." added.
    """
    from dataclasses import replace

    from edge_reid.tensorrt.manifest import EngineStatus

    checked = []
    for check in checks:
        manifest = check.manifest
        if manifest is None:
            checked.append(check)
            continue
        same = next((m for m in models if m.sha256 == manifest.model_sha256), None)
        named = next((m for m in models if m.path.name == manifest.model_file), None)
        if same is not None:
            if same.spec_fingerprint != manifest.spec_fingerprint:
                check = replace(check, status=EngineStatus.OTHER_MODEL, reasons=(f"built with another model spec than {same.path}'s",))
        elif named is not None:
            check = replace(check, status=EngineStatus.OTHER_MODEL, reasons=(
                f"built from another version of {manifest.model_file} (not {named.path}, whose sha256 differs): never loaded for it",))
        else:
            known = " or ".join(str(m.path) for m in models) or "none"
            check = replace(check, reasons=(*check.reasons, f"model not checked: {manifest.model_file} is not a model doctor can read "
                                            f"(it checks {known}; --model PATH checks another)"))
        checked.append(check)
    return checked


def cpu_item(cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> DoctorItem:
    """The report's line for the CPU: its model, the cores this process may use out of the machine's, what
    lowers them (the CPU affinity; a cgroup CPU quota, which the models' threads follow: :mod:`edge_reid.cpu`)
    and its instruction sets. ``cgroup_root``, ``proc_cgroup``: as :func:`edge_reid.cpu.cpu_quota`."""
    import os

    from edge_reid.cpu import affinity_cpu_count, cpu_isa_flags, cpu_model, cpu_quota

    machine, affinity, quota = os.cpu_count() or 1, affinity_cpu_count(), cpu_quota(cgroup_root, proc_cgroup)
    usable = min(affinity, quota.whole_cores) if quota else affinity
    limits = [f"CPU affinity {affinity}: taskset, docker --cpuset-cpus"] if affinity < machine else []
    if quota:
        limits.append(f"CPU quota {quota.cores:g} core{'s' if quota.cores != 1 else ''}: docker --cpus, systemd CPUQuota= or a "
                      f"Kubernetes CPU limit, the models' threads follow it; {quota.source}")
    cores = f"{usable} of {machine} cores usable ({'; '.join(limits)})" if limits else f"{machine} cores"
    flags = ", ".join(cpu_isa_flags()) or "instruction sets unknown"
    return DoctorItem("CPU", f"{cpu_model()} ({flags}): {cores}")


def cache_folder_item() -> DoctorItem:
    """The report's line for edge-reid's cache folder (:func:`edge_reid.cache_folder.cache_dir`; docs/caches.md):
    where it is and whether this user can write it, or the nearest folder above it that exists (where it is
    made at the first run). Nothing is made or written here. ``ok`` is False where it cannot be written or
    another user could write it (:func:`~edge_reid.cache_folder.folder_trust_problem`): every start then measures
    and compiles again."""
    import os

    from edge_reid.cache_folder import cache_dir, folder_trust_problem

    fix = "every start measures and compiles again: set EDGE_REID_CACHE_DIR to a writable folder (docs/caches.md)"
    folder = cache_dir()
    if folder is None:
        return DoctorItem("cache folder", f"none: no home folder (HOME is not set); {fix}", False)
    if problem := folder_trust_problem(folder):
        return DoctorItem("cache folder", f"{folder}: not used ({problem}: another user could put files there that "
                          f"edge-reid would load); {fix.replace('a writable folder', 'a folder only you can write')}", False)
    existing = folder
    try:
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        usable = existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
    except OSError as exc:
        return DoctorItem("cache folder", f"{folder}: cannot be checked ({exc.strerror or exc}); {fix}", False)
    if usable:
        made = "" if existing == folder else f", made at the first run in {existing}"
        return DoctorItem("cache folder", f"{folder} (writable{made}; docs/caches.md)", True)
    why = "cannot be written" if existing.is_dir() else "is not a folder"
    return DoctorItem("cache folder", f"{folder}: cannot be made or written ({existing} {why}); {fix}", False)


def collect_report(
    engines_dir: str | Path = "engines", tegra_release: Path = NV_TEGRA_RELEASE, model_path: str | Path | None = None
) -> tuple[list[DoctorItem], list]:
    """Probe the machine.

    Args:
        engines_dir: the folder of engines (``--engines-dir``).
        tegra_release: the L4T release file.
        model_path: the ReID model ``run`` would embed with (None: the bundled one): what the
            ``--backend auto`` line answers for, and what engines' models are checked against.

    Returns:
        (items, engine checks): the report lines and one
        :class:`~edge_reid.tensorrt.manifest.EngineCheck` per manifest in ``engines_dir``
        (see :func:`check_engine_models`).
    """
    from edge_reid.assets import BUNDLED_SHA256, DEFAULT_REID_MODEL, damaged_bundled_models
    from edge_reid.backends import backend_statuses
    from edge_reid.cuda.buffers import choose_memory_mode
    from edge_reid.cpu import board_model
    from edge_reid.tensorrt.env import tensorrt_status
    from edge_reid.tensorrt.manifest import scan_engines
    from edge_reid.backends.openvino import int8_saturation
    from edge_reid.cpu import cpu_isa_flags

    items = [
        DoctorItem("edge-reid", _package_version("edge-reid") or "not installed as a package (running from source)"),
        DoctorItem("Python", f"{platform.python_version()} ({sys.executable})"),
    ]
    if tegra_release.is_file():
        l4t = parse_nv_tegra_release(tegra_release.read_text(errors="replace"))
        items.append(DoctorItem("Jetson", f"L4T {l4t} ({jetpack_for_l4t(l4t)})" if l4t else f"unreadable {tegra_release}", bool(l4t)))
    else:
        items.append(DoctorItem("Jetson", f"no ({platform.machine()}, no {tegra_release})"))
    items.append(cpu_item())

    status = tensorrt_status()
    if status.usable:
        items.append(DoctorItem("TensorRT", status.tensorrt_version, True))
    elif status.tensorrt_version:  # installed, but too old, or without a GPU to run on
        items.append(DoctorItem("TensorRT", f"{status.tensorrt_version}: {status.reason}", False))
    else:
        items.append(DoctorItem("TensorRT", status.reason, False))
    gpu = status.gpu
    if status.tensorrt_version is None:  # tensorrt_status stops before the GPU when TensorRT is missing
        from edge_reid.cuda.runtime import gpu_status

        gpu = gpu_status()
    items.extend(cuda_items(gpu))
    if gpu.gpu is not None:
        mode = choose_memory_mode(gpu.gpu)
        buffers = "mapped, zero-copy" if mode == "mapped" else "pinned host + device copies"
        board = board_model() if gpu.gpu.integrated else ""
        where = f"; board: {board}" if board else ""
        items.append(DoctorItem("GPU", f"{gpu.gpu.describe()}, compute capability {gpu.gpu.compute_capability_str}{where}; buffers: {buffers}", True))
    else:
        items.append(DoctorItem("GPU", gpu.reason or "none found", False))

    try:
        import onnxruntime

        items.append(DoctorItem("onnxruntime", f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})", True))
    except Exception as exc:
        items.append(DoctorItem("onnxruntime", f"does not import: {exc}", False))
    try:
        import openvino

        core = openvino.Core()
        refused = int8_saturation(cpu_isa_flags())  # edge-reid refuses OpenVINO's INT8 on such a CPU
        devices = "; ".join(
            f"{device}: "
            + ", ".join(p + (" (refused here: no VNNI or AMX)" if p == "int8" and device == "CPU" and refused else "")
                        for p in openvino_precisions(core.get_property(device, "OPTIMIZATION_CAPABILITIES")))
            for device in core.available_devices
        )
        items.append(DoctorItem("openvino", f"{openvino.__version__.split('-')[0]} (devices and their precisions: {devices})", True))
    except Exception as exc:
        items.append(DoctorItem("openvino", f"does not import: {exc} (pip install openvino, x86-64)", None))
    try:
        import cv2

        gst = opencv_gstreamer(cv2.getBuildInformation())
        note = {True: "GStreamer: yes (CSI cameras via nvarguscamerasrc work)",
                False: "GStreamer: no (pip OpenCV; for CSI cameras use the system OpenCV, see docs/jetson.md)",
                None: "GStreamer: unknown"}[gst]
        items.append(DoctorItem("OpenCV", f"{cv2.__version__}, {note}", True if gst else None))
    except Exception as exc:
        items.append(DoctorItem("OpenCV", f"does not import: {exc}", False))

    damaged = damaged_bundled_models()
    items.append(DoctorItem(
        "bundled models",
        f"damaged: {'; '.join(damaged)}; reinstall edge-reid (pip install --force-reinstall --no-deps edge-reid, or from its source folder)"
        if damaged else f"intact ({', '.join(BUNDLED_SHA256)}: sha256 checked)",
        not damaged,
    ))
    items.append(cache_folder_item())
    model = known_model(model_path or DEFAULT_REID_MODEL)
    checks = {"tensorrt": lambda: (status.usable, status.reason or f"TensorRT {status.tensorrt_version}")}
    for entry, ok, detail in backend_statuses(checks):
        if entry.name == "tensorrt":
            continue  # its lines above say what it lacks
        items.append(DoctorItem(f"backend {entry.name}", detail if ok else f"not usable: {detail}", ok))
    items.append(DoctorItem("--backend auto", _auto_choice(status, checks, engines_dir, model, model_path or DEFAULT_REID_MODEL)))

    engine_checks = check_engine_models(scan_engines(engines_dir, status.machine), [model] if model else [])
    return items, engine_checks


def _auto_choice(status, checks: dict, engines_dir: str | Path, model: KnownModel | None, model_path: str | Path) -> str:
    """What ``run --backend auto`` chooses for ``model_path``: TensorRT only when it is usable and ``engines_dir``
    holds a current engine of the model (as :func:`~edge_reid.tensorrt.manifest.select_engine` decides), else the
    CPU backends. Where the model cannot be read (``model`` None), both answers, with the condition."""
    from edge_reid.backends import candidates
    from edge_reid.tensorrt.errors import EngineNotFoundError
    from edge_reid.tensorrt.manifest import select_engine

    if not status.usable:
        return _describe_auto(candidates("auto", checks))
    if model is not None:
        try:
            chosen = select_engine(engines_dir, model.path, model.sha256, model.spec_fingerprint, status.machine)
        except EngineNotFoundError as exc:
            why = str(exc)
        else:
            return f"{candidates('auto', checks)[0].reason}; engine {chosen.engine_path.name}"
        text = _describe_auto(candidates("auto", {**checks, "tensorrt": lambda: (False, why)}))
        return text.replace(f"TensorRT not usable: {why}", f"TensorRT passed over: {why}")  # as `run` says it
    marker = "no current engine"
    otherwise = _describe_auto(candidates("auto", {**checks, "tensorrt": lambda: (False, marker)})).replace(f"; TensorRT not usable: {marker}", "")
    return (f"TensorRT {status.tensorrt_version} if {engines_dir} holds a current engine of {model_path} (that model cannot be "
            f"read here to check), else {otherwise}")


def _describe_auto(tried: list) -> str:
    """The ``--backend auto`` line from :func:`~edge_reid.backends.candidates` of ``"auto"``."""
    from edge_reid.backends.cpu_choice import CPU_BACKENDS

    timed = sorted(choice.name for choice in tried[:2]) == sorted(CPU_BACKENDS)  # as cpu_choice.order_by_speed decides
    if not timed:
        return tried[0].reason
    # which of the two is decided per model by timing, not here
    others = tried[0].reason.partition("; ")[2]  # e.g. why TensorRT is not usable
    return ("OpenVINO or ONNX Runtime, for each model the one timed faster on this CPU the first time it runs "
            "(cached; `run` says which it took and why)" + (f"; {others}" if others else ""))
