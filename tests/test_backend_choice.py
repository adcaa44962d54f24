"""``--backend auto|tensorrt|onnxruntime`` resolution, with TensorRT availability monkeypatched."""

from __future__ import annotations

from pathlib import Path

import pytest

import edge_reid.backends as backends
from edge_reid.backends import BackendChoice, choose_backend, create_backend, tensorrt_available
from edge_reid.errors import BackendUnavailableError, EdgeReidError
from edge_reid.spec import load_spec
from edge_reid.tensorrt.errors import EngineNotFoundError

MODEL = Path(__file__).resolve().parents[1] / "edge_reid" / "assets" / "osnet_x0_25_msmt17.onnx"


def usable():
    return True, "TensorRT 10.3.0.30 on Orin (sm 8.7, integrated, 7.4 GiB)"


def missing():
    return False, "TensorRT's Python package is not installed"


def test_auto_prefers_tensorrt_when_present():
    choice = choose_backend("auto", usable)
    assert choice == BackendChoice("tensorrt", "auto chose TensorRT: TensorRT 10.3.0.30 on Orin (sm 8.7, integrated, 7.4 GiB)")


def test_auto_falls_back_to_onnxruntime_and_says_why():
    choice = choose_backend("auto", missing)
    assert choice.name == "onnxruntime"
    assert "ONNX Runtime" in choice.reason and "TensorRT's Python package is not installed" in choice.reason


def test_explicit_tensorrt_without_it_names_tensorrt():
    with pytest.raises(BackendUnavailableError) as info:
        choose_backend("tensorrt", missing)
    assert "TensorRT" in str(info.value) and isinstance(info.value, EdgeReidError) and info.value.exit_code == 2


def test_onnxruntime_never_asks_for_tensorrt():
    def boom():
        raise AssertionError("availability must not be checked")

    assert choose_backend("onnxruntime", boom).name == "onnxruntime"


def test_unknown_backend():
    with pytest.raises(ValueError, match="auto, onnxruntime, tensorrt"):
        choose_backend("cuda", usable)


def test_default_availability_is_looked_up_at_call_time(monkeypatch):
    monkeypatch.setattr(backends, "tensorrt_available", usable)
    assert choose_backend("auto").name == "tensorrt"
    monkeypatch.setattr(backends, "tensorrt_available", missing)
    assert choose_backend("auto").name == "onnxruntime"


def test_this_machine_reports_why_tensorrt_is_unusable():
    ok, why = tensorrt_available()
    if ok:
        pytest.skip("TensorRT and a GPU are present here")
    assert why  # a reason is always given


def test_create_backend_auto_on_cpu_builds_onnxruntime_with_reason(monkeypatch):
    monkeypatch.setattr(backends, "tensorrt_available", missing)
    spec = load_spec(MODEL)
    with create_backend("auto", MODEL, spec, max_batch=4) as backend:
        assert backend.name == "onnxruntime"
        assert "not installed" in backend.selection_reason
        assert backend.infer(2).shape == (2, 512)


def test_create_backend_auto_falls_back_when_no_engine(monkeypatch):
    """TensorRT present but no current engine for the model: auto runs ONNX Runtime and says how to build one."""
    import edge_reid.backends.tensorrt as trt_backend

    def no_engine(*args, **kwargs):
        raise EngineNotFoundError("no TensorRT engine for osnet_x0_25_msmt17.onnx in engines: build one with `edge-reid build ...`")

    monkeypatch.setattr(backends, "tensorrt_available", usable)
    monkeypatch.setattr(trt_backend, "open_tensorrt_backend", no_engine)
    spec = load_spec(MODEL)
    with create_backend("auto", MODEL, spec, max_batch=2) as backend:
        assert backend.name == "onnxruntime" and "edge-reid build" in backend.selection_reason
    with pytest.raises(EngineNotFoundError, match="edge-reid build"):
        create_backend("tensorrt", MODEL, spec)
