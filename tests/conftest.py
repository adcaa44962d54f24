"""Shared fixtures: the real assets in ../shared (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGE_REID_SHARED", REPO.parent / "shared"))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real asset missing: {path} (set EDGE_REID_SHARED to the shared/ folder)")
    return path


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
