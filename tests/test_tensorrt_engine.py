"""Build and run a real TensorRT engine of the bundled OSNet; compare with ONNX Runtime.

Marked ``tensorrt``; skipped (with the reason) where TensorRT, cuda-python or a GPU is
missing. On a Jetson: python -m pytest -q -m tensorrt tests/test_tensorrt_engine.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_reid.backends import tensorrt_available

pytestmark = pytest.mark.tensorrt

_OK, _WHY = tensorrt_available()
if not _OK:
    pytest.skip(f"needs TensorRT and a CUDA GPU: {_WHY}", allow_module_level=True)

from edge_reid.assets import DEFAULT_REID_MODEL  # noqa: E402
from edge_reid.cuda.versions import DeviceCuda  # noqa: E402
from edge_reid.backends import create_backend  # noqa: E402
from edge_reid.embedder import Embedder  # noqa: E402
from edge_reid.spec import load_spec  # noqa: E402
from edge_reid.tensorrt.builder import BuildOptions, build_engine, plan_build, up_to_date  # noqa: E402
from edge_reid.tensorrt.env import require_tensorrt  # noqa: E402
from edge_reid.tensorrt.profile import BatchProfile  # noqa: E402


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("engines")
    trt, status = require_tensorrt()
    spec = load_spec(DEFAULT_REID_MODEL)
    options = BuildOptions(DEFAULT_REID_MODEL, "fp16", BatchProfile(1, 4, 8), workspace_mb=512, engines_dir=folder)
    plan = plan_build(options, spec, status.tensorrt_version, status.gpu.gpu)
    manifest = build_engine(plan, trt, cuda=DeviceCuda.here(status.gpu.driver_version))
    assert plan.engine_path.is_file() and manifest.tensorrt_version == status.tensorrt_version
    assert up_to_date(plan) == manifest
    return folder


def real_crops(shared: Path, count: int = 20) -> list[np.ndarray]:
    folder = shared / "data" / "mot17-reid-mini" / "query"
    paths = sorted(folder.glob("*.jpg"))[:count] if folder.is_dir() else []
    crops = [cv2.imread(str(p)) for p in paths]
    if len(crops) < count:  # no shared assets: random person-sized images still exercise the engine
        rng = np.random.default_rng(0)
        crops += [rng.integers(0, 256, (160, 64, 3), dtype=np.uint8) for _ in range(count - len(crops))]
    return crops


def test_fp16_engine_matches_onnxruntime(engines):
    from conftest import SHARED
    from edge_reid.preprocess import CropPreprocessor

    crops = real_crops(SHARED)
    reference = Embedder(DEFAULT_REID_MODEL, backend="onnxruntime", max_batch=32).embed_crops(crops)
    spec = load_spec(DEFAULT_REID_MODEL)
    backend = create_backend("tensorrt", DEFAULT_REID_MODEL, spec, engines_dir=engines)
    try:
        assert backend.name == "tensorrt" and backend.max_batch == 8
        pre = CropPreprocessor(spec, 8)
        out = []
        for start in range(0, len(crops), 8):  # 20 crops: 8 + 8 + 4 (sub-batches above the profile max)
            chunk = crops[start : start + 8]
            pre.write_crops(chunk, backend.buffers.input)
            out.append(backend.infer(len(chunk)).copy())
        embeddings = np.concatenate(out)
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
        cosine = np.sum(embeddings * reference, axis=1)
        print(f"{backend.describe()}: cosine to ONNX Runtime FP32 min {cosine.min():.5f} mean {cosine.mean():.5f}")
        assert cosine.min() > 0.99
    finally:
        backend.close()
