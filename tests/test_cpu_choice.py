"""``--backend auto`` between OpenVINO and ONNX Runtime by measurement (edge_reid/backends/cpu_choice.py), with
stand-in backends and set timings: the order, the margin, the cache, and what is left alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edge_reid.backends.cpu_choice as cpu_choice
from edge_reid.backends import BackendChoice
from edge_reid.backends.cpu_choice import CACHE_FILE, order_by_speed, pick_first
from edge_reid.cache_folder import cache_dir
from edge_reid.errors import BackendUnavailableError

AUTO = [BackendChoice("openvino", "auto chose OpenVINO (OpenVINO 2026.4)"), BackendChoice("onnxruntime", "auto chose ONNX Runtime (1.32)")]


class Stand:
    """A backend that counts its calls and closes."""

    def __init__(self, name: str) -> None:
        self.name, self.calls, self.closed = name, 0, False

    def run(self) -> None:
        self.calls += 1

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def model(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path / "cache"))  # each test its own cache
    path = tmp_path / "m.onnx"
    path.write_bytes(b"model bytes")
    return path


def _order(model, ms: dict, opened: list, monkeypatch, cpu_time=True, options="threads 1"):
    monkeypatch.setattr(cpu_choice, "time_calls", lambda calls, clock: {name: ms[name] for name in calls})

    def open_backend(name):
        backend = Stand(name)
        opened.append(backend)
        return backend

    return order_by_speed(AUTO, "detector", model, options, open_backend, lambda backend: backend.run, cpu_time=cpu_time)


def test_onnx_runtime_goes_first_only_when_faster_beyond_the_margin(model, monkeypatch):
    opened: list = []
    tried = _order(model, {"openvino": 39.6, "onnxruntime": 28.6}, opened, monkeypatch)
    assert [c.name for c in tried] == ["onnxruntime", "openvino"]
    assert tried[0].reason == "auto chose ONNX Runtime (1.32); ONNX Runtime 28.6 ms of CPU against OpenVINO 39.6 ms of CPU a call on this CPU (measured now)"
    assert [b.name for b in opened] == ["openvino", "onnxruntime"] and all(b.closed for b in opened), "both opened, timed, closed"
    assert pick_first({"openvino": 10.0, "onnxruntime": 9.6}) == "openvino", "4% is within the margin: the registry's order stands"
    assert pick_first({"openvino": 10.0, "onnxruntime": 9.4}) == "onnxruntime"


def test_the_choice_is_cached_per_model_and_options_and_a_bad_cache_is_ignored(model, monkeypatch):
    opened: list = []
    _order(model, {"openvino": 10.0, "onnxruntime": 20.0}, opened, monkeypatch)
    again = _order(model, {"openvino": 99.0, "onnxruntime": 1.0}, opened, monkeypatch)
    assert len(opened) == 2, "the second time nothing is opened or timed"
    assert [c.name for c in again] == ["openvino", "onnxruntime"] and again[0].reason.endswith("(measured earlier)")
    entries = json.loads((cache_dir() / CACHE_FILE).read_text())["entries"]
    assert len(entries) == 1 and next(iter(entries.values()))["ms"] == {"openvino": 10.0, "onnxruntime": 20.0}
    _order(model, {"openvino": 99.0, "onnxruntime": 1.0}, opened, monkeypatch, cpu_time=False)
    _order(model, {"openvino": 99.0, "onnxruntime": 1.0}, opened, monkeypatch, options="threads 2")
    assert len(opened) == 6, "wall time and other options are measured apart"
    (cache_dir() / CACHE_FILE).write_text("{not json")
    assert [c.name for c in _order(model, {"openvino": 99.0, "onnxruntime": 1.0}, opened, monkeypatch)] == ["onnxruntime", "openvino"]


@pytest.mark.parametrize("ms", [None, "fast", {"openvino": "fast", "onnxruntime": 1}, {"openvino": float("nan"), "onnxruntime": 1}])
def test_a_hand_edited_entry_is_measured_again_not_a_crash(model, monkeypatch, ms):
    """Timings that are not numbers crashed `run --backend auto`: 'internal error: ValueError ... please report it'."""
    opened: list = []
    _order(model, {"openvino": 10.0, "onnxruntime": 20.0}, opened, monkeypatch)
    path = cache_dir() / CACHE_FILE
    data = json.loads(path.read_text())
    (key,) = data["entries"]
    data["entries"][key]["ms"] = ms
    path.write_text(json.dumps(data))
    again = _order(model, {"openvino": 99.0, "onnxruntime": 1.0}, opened, monkeypatch)
    assert [c.name for c in again] == ["onnxruntime", "openvino"] and again[0].reason.endswith("(measured now)")


def test_what_is_left_alone(model, monkeypatch):
    opened: list = []
    tensorrt_first = [BackendChoice("tensorrt", "auto chose TensorRT")] + AUTO
    monkeypatch.setattr(cpu_choice, "time_calls", lambda calls, clock: pytest.fail("nothing is timed"))
    assert order_by_speed(tensorrt_first, "embedding", model, "", lambda name: opened.append(name), lambda b: b.run) == tensorrt_first
    assert order_by_speed(AUTO[1:], "embedding", model, "", lambda name: opened.append(name), lambda b: b.run) == AUTO[1:]
    assert opened == []

    def refuses(name):  # e.g. OpenVINO and an INT8 model on a CPU without VNNI: auto passes over it as usual
        if name == "openvino":
            raise BackendUnavailableError("no VNNI")
        return Stand(name)

    assert order_by_speed(AUTO, "embedding", model, "", refuses, lambda b: b.run) == AUTO


def test_a_missing_model_is_left_to_the_backend_to_report(model):
    """`run --detector missing_det.onnx` ended in an internal error: the cache key hashed the file first."""
    missing = model.parent / "missing.onnx"
    assert order_by_speed(AUTO, "detector", missing, "", lambda name: pytest.fail("nothing is opened"), lambda b: b.run) == AUTO


def test_an_old_cache_file_is_measured_once_and_replaced(model, monkeypatch):
    """Keys of edge-reid-cpu-backend-choice/1 held reprs (``engines_dir=PosixPath('engines')``): such a file is
    not trusted; the choice is measured once and the file rewritten in the current schema."""
    path = cache_dir() / CACHE_FILE
    path.parent.mkdir(parents=True)
    old = {"first": "openvino", "ms": {"openvino": 1.0, "onnxruntime": 2.0}}
    key = cpu_choice.choice_key("detector", model, "threads 1, cpu time")
    path.write_text(json.dumps({"schema": "edge-reid-cpu-backend-choice/1", "entries": {key: old, "detector|old|input None": old}}))
    opened: list = []
    assert _order(model, {"openvino": 9.0, "onnxruntime": 1.0}, opened, monkeypatch)[0].reason.endswith("(measured now)")
    data = json.loads(path.read_text())
    assert data["schema"] == cpu_choice.SCHEMA and list(data["entries"]) == [key], "the old entries are dropped"
    assert _order(model, {"openvino": 9.0, "onnxruntime": 1.0}, opened, monkeypatch)[0].reason.endswith("(measured earlier)")
    assert len(opened) == 2


def _both_cpu_backends() -> bool:
    from edge_reid.backends import candidates

    return sorted(choice.name for choice in candidates("auto")[:2]) == sorted(cpu_choice.CPU_BACKENDS)


def test_the_key_spells_the_options_one_way(osnet_path, yolox_path, monkeypatch):
    """The ReID model's key held ``BackendOptions(..., engines_dir=PosixPath('engines'), ...)`` (the CLI passes a Path),
    the detector's ``engines_dir='engines'``: a repr, and a TensorRT option that changes nothing on a CPU."""
    from edge_reid.backends import create_backend, create_detector_backend
    from edge_reid.spec import load_spec

    if not _both_cpu_backends():
        pytest.skip("auto times OpenVINO against ONNX Runtime where both run (x86-64)")
    keys: list[str] = []
    monkeypatch.setattr(cpu_choice, "order_by_speed", lambda tried, kind, path, options, *a, **k: keys.append(options) or tried)
    spec = load_spec(osnet_path)
    for engines_dir in ("engines", Path("engines"), Path("elsewhere")):
        create_backend("auto", osnet_path, spec, max_batch=2, threads=1, engines_dir=engines_dir, side_by_side=True).close()
    create_detector_backend("auto", yolox_path, threads=1, side_by_side=True, input_size=(320, 416)).close()
    assert keys[0] == keys[1] == keys[2] == "max_batch 2, timed at 2, threads 1, precision None, device None, side_by_side True"
    assert keys[3] == "threads 1, input 320x416, precision fp32, device None, side_by_side True"
