"""Shared fixtures and helpers: the real assets in ../shared (skipped with a reason when absent), engine
manifests, and the TensorRT/CUDA stand-ins."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import settings

# No test may depend on wall-clock time: on a loaded machine one example can take longer than
# Hypothesis's default 200 ms deadline without anything being wrong.
settings.register_profile("edge-reid", deadline=None)
settings.load_profile("edge-reid")

from edge_reid.bench.crop_pool import shared_folder
from edge_reid.spec import ModelSpec, file_sha256
from edge_reid.tensorrt.manifest import EngineManifest, MachineIdentity, engine_stem, write_manifest
from edge_reid.tensorrt.profile import BatchProfile

REPO = Path(__file__).resolve().parents[1]
SHARED = shared_folder()  # $EDGE_REID_SHARED (when set and not empty), else ../shared: as edge-reid bench finds it


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real asset missing: {path} (set EDGE_REID_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _tuning_cache(tmp_path_factory):
    """ONNX Runtime level tuning caches into a folder of this test session, never the user's cache (CLI subprocesses inherit it)."""
    previous = os.environ.get("EDGE_REID_CACHE_DIR")
    os.environ["EDGE_REID_CACHE_DIR"] = str(tmp_path_factory.mktemp("edge-reid-cache"))
    yield
    if previous is None:
        os.environ.pop("EDGE_REID_CACHE_DIR", None)
    else:
        os.environ["EDGE_REID_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def osnet_path(shared_dir) -> Path:
    return _need(shared_dir / "models" / "osnet_x0_25_msmt17.onnx")


@pytest.fixture(scope="session")
def yolox_path(shared_dir) -> Path:
    return _need(shared_dir / "models" / "yolox_nano.onnx")


@pytest.fixture(scope="session")
def vtest_path(shared_dir) -> Path:
    return _need(shared_dir / "data" / "vtest.avi")


@pytest.fixture(scope="session")
def vtest_gt_dir(shared_dir) -> Path:
    """vtest.avi's ground truth, a MOTChallenge sequence folder (seqinfo.ini, gt/gt.txt)."""
    return _need(shared_dir / "data" / "vtest-mot")


@pytest.fixture(scope="session")
def mot17_dir(shared_dir) -> Path:
    return _need(shared_dir / "data" / "mot17-reid-mini")


@pytest.fixture(scope="session")
def vtest_frames(vtest_path) -> list[np.ndarray]:
    """The first 12 frames of vtest.avi, (576, 768, 3) uint8 BGR."""
    capture = cv2.VideoCapture(str(vtest_path))
    frames = []
    while len(frames) < 12:
        ok, frame = capture.read()
        assert ok, "vtest.avi ended early"
        frames.append(frame)
    capture.release()
    return frames


@pytest.fixture(scope="session")
def detector(yolox_path):
    from edge_reid.detector import PersonDetector

    return PersonDetector(yolox_path)


@pytest.fixture(scope="session")
def embedder(osnet_path):
    from edge_reid.embedder import Embedder

    return Embedder(osnet_path, max_batch=16)


@pytest.fixture(scope="session")
def frame0_detections(detector, vtest_frames):
    return detector.detect(vtest_frames[0])


# -- outputs: small file systems, console text ----------------------------------------------------


def unwrapped(text: str) -> str:
    """Console text with rich's line wrapping and table borders undone: box-drawing characters
    dropped, runs of whitespace joined (short phrases survive; long paths may be folded)."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", text).split())


@pytest.fixture
def small_filesystem(tmp_path):
    """Factory: ``small_filesystem(kib)`` mounts a tmpfs of that many KiB on a new folder and returns
    the folder (a real disk-full: writes fail with ENOSPC). Skips where mounting is not allowed
    (not root, or no CAP_SYS_ADMIN, e.g. an unprivileged container); unmounted at teardown."""
    mounted = []

    def make(kib: int) -> Path:
        folder = tmp_path / f"tmpfs-{len(mounted)}"
        folder.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no mount command here to make a small file system")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a {kib} KiB tmpfs here (needs root with CAP_SYS_ADMIN): {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


# -- TensorRT layer helpers (manifests, stand-ins) -------------------------------------------------

AGX_ORIN = "NVIDIA Jetson AGX Orin Developer Kit"
ORIN_TRT103 = MachineIdentity("10.3.0.30", "Orin", "8.7", 16, 61, AGX_ORIN)
MODEL_SHA = "61b2604171ef9d58d21758626f83b35a253c3d7123976523a6e03068c3c95d7b"
SPEC = ModelSpec(name="osnet")


def make_engine(
    folder: Path,
    machine: MachineIdentity = ORIN_TRT103,
    precision: str = "fp16",
    profile: BatchProfile = BatchProfile(),
    model_sha: str = MODEL_SHA,
    build_date: str = "2026-11-21T19:00:00Z",
    payload: bytes = b"serialized engine bytes",
    **extra,
) -> tuple[EngineManifest, Path]:
    """Write an engine file (opaque bytes: only its hash matters here) and its manifest."""
    stem = engine_stem("osnet_x0_25_msmt17", model_sha, precision, profile, machine)
    engine = folder / f"{stem}.engine"
    folder.mkdir(parents=True, exist_ok=True)
    engine.write_bytes(payload)
    manifest = EngineManifest(
        engine_file=engine.name,
        engine_sha256=file_sha256(engine),
        model_file="osnet_x0_25_msmt17.onnx",
        model_sha256=model_sha,
        spec=SPEC.to_dict(),
        spec_fingerprint=SPEC.fingerprint(),
        precision=precision,
        int8_path=extra.get("int8_path"),
        calibration_file=extra.get("calibration_file"),
        calibration_sha256=extra.get("calibration_sha256"),
        **dataclasses.asdict(machine),  # the manifest's machine fields have MachineIdentity's names
        cuda_driver_version="12.6",
        profile=profile,
        input_name="images",
        output_name="output",
        input_chw=(3, 256, 128),
        embedding_dim=512,
        workspace_mb=1024,
        build_date=build_date,
    )
    path = write_manifest(manifest, folder / f"{stem}.json")
    return manifest, path


@pytest.fixture(autouse=True)
def no_device_tree(monkeypatch, tmp_path_factory):
    """Engine identities never depend on the machine the tests run on (a Jetson has /proc/device-tree/model)."""
    import edge_reid.cpu

    monkeypatch.setattr(edge_reid.cpu, "DEVICE_TREE_MODEL", tmp_path_factory.getbasetemp() / "no-device-tree-model")


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """TensorRT 10.3 and cuda-python 12.6 replaced by the stand-ins (tests/fake_tensorrt.py, tests/fake_cudart.py)
    on an "Orin"; cwd is tmp_path. Returns a namespace: trt, rt, model (a tiny ONNX model), spec."""
    import sys
    from types import SimpleNamespace

    import edge_reid.cuda.buffers as cuda_buffers
    import edge_reid.cuda.runtime as cuda_runtime
    import fake_tensorrt
    from edge_reid.spec import load_spec
    from fake_cudart import FakeCudaRuntime
    from onnx_builders import tiny_model

    env = SimpleNamespace(trt=fake_tensorrt.make_module("10.3.0.30"), rt=FakeCudaRuntime(integrated=True))
    monkeypatch.setitem(sys.modules, "tensorrt", env.trt)
    monkeypatch.setattr(cuda_runtime, "import_cudart", lambda: env.rt)
    monkeypatch.setattr(cuda_buffers, "import_cudart", lambda: env.rt)
    monkeypatch.chdir(tmp_path)
    env.model = tiny_model(tmp_path / "tiny.onnx")
    env.spec = load_spec(env.model)
    return env


def load_benchmark_script(name: str):
    """Import ``benchmarks/<name>.py`` (a script folder, not a package) as module ``name``, once."""
    import importlib.util
    import sys

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def save_alice_gallery(embedder, path: Path) -> Path:
    """Save at ``path`` a gallery of ``embedder``'s model holding one enrolled person, Alice (id 1); returns ``path``."""
    from edge_reid.matching.gallery import Gallery

    gallery = Gallery(embedder.dim, model_id=embedder.model_id)
    vector = np.zeros(embedder.dim, np.float32)
    vector[0] = 1.0
    gallery.enroll("Alice", vector)
    gallery.save(path)
    return path
