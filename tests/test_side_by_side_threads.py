"""Threads of two models running at once (the loop's detector beside its ReID model): ONNX Runtime
sessions, each with its own thread pool, take half the cores; OpenVINO's models, which share one
pool, keep every core; a detector beside a ReID model that computes off the CPU keeps every core."""

from __future__ import annotations

import os

import pytest

from edge_reid.backends import create_backend, create_detector_backend
from edge_reid.backends.onnxruntime import OnnxRuntimeBackend
from edge_reid.cpu import threads_per_model
from edge_reid.embedder import Embedder
from edge_reid.pipeline import Pipeline
from edge_reid.spec import load_spec

ORT_DEFAULT = 0  # intra_op_num_threads left unset: ONNX Runtime's own default, one thread per core


def _ort_threads(session) -> int:
    return session.get_session_options().intra_op_num_threads


@pytest.fixture
def four_cores(monkeypatch):
    """This process may use 4 cores (whatever the machine has): threads_per_model() is 2."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert threads_per_model() == 2


def test_onnxruntime_models_side_by_side_take_half_the_cores(four_cores, osnet_path, yolox_path):
    spec = load_spec(osnet_path)
    with create_backend("onnxruntime", osnet_path, spec, max_batch=2, side_by_side=True) as backend:
        assert _ort_threads(backend.session) == 2 and "CPU, 2 threads" in backend.describe()
    with create_backend("onnxruntime", osnet_path, spec, max_batch=2) as backend:
        assert _ort_threads(backend.session) == ORT_DEFAULT and "its default threads" in backend.describe()
    with create_backend("onnxruntime", osnet_path, spec, max_batch=2, threads=3, side_by_side=True) as backend:
        assert _ort_threads(backend.session) == 3, "an explicit thread count wins"
    with create_detector_backend("onnxruntime", yolox_path, side_by_side=True) as detector:
        assert _ort_threads(detector.session) == 2
    with create_detector_backend("onnxruntime", yolox_path) as detector:
        assert _ort_threads(detector.session) == ORT_DEFAULT


def test_openvino_models_side_by_side_keep_every_core(monkeypatch, osnet_path, yolox_path):
    pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino; a dependency on x86-64)")
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: halving it and keeping it are the same")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)  # half of this is one thread
    spec = load_spec(osnet_path)
    with create_backend("openvino", osnet_path, spec, max_batch=2, side_by_side=True) as backend:
        side_by_side = int(backend._single.compiled.get_property("INFERENCE_NUM_THREADS"))
    with create_backend("openvino", osnet_path, spec, max_batch=2) as backend:
        alone = int(backend._single.compiled.get_property("INFERENCE_NUM_THREADS"))
    with create_detector_backend("openvino", yolox_path, side_by_side=True) as detector:
        detector_threads = int(detector.compiled.get_property("INFERENCE_NUM_THREADS"))
        assert f"fp32, {detector_threads} threads" in detector.describe()
    assert side_by_side == alone == detector_threads >= 2 > threads_per_model()


class _OffCpuBackend(OnnxRuntimeBackend):
    """ONNX Runtime standing in for a backend that computes off the CPU (TensorRT): only ``runs_on_cpu`` differs."""

    runs_on_cpu = False


def test_pipeline_detector_shares_the_cores_only_with_a_reid_model_on_the_cpu(four_cores, osnet_path):
    pipeline = Pipeline()
    assert _ort_threads(pipeline.embedder.backend.session) == 2
    assert _ort_threads(pipeline.detector.backend.session) == 2
    off_cpu = Pipeline(embedder=Embedder(osnet_path, backend=_OffCpuBackend(osnet_path, load_spec(osnet_path), max_batch=2)))
    assert _ort_threads(off_cpu.detector.backend.session) == ORT_DEFAULT
    for each in (pipeline, off_cpu):
        each.embedder.close()
        each.detector.close()
