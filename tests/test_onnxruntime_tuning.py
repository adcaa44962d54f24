"""ONNX Runtime's graph optimisation level: measured once per (model, machine, version, threads), cached, obeyed."""

from __future__ import annotations

import json

import onnxruntime as ort
import pytest

import edge_reid.backends.onnxruntime_tuning as tuning
from edge_reid.backends.onnxruntime import OnnxRuntimeBackend, OnnxRuntimeDetector
from edge_reid.spec import ModelSpec
from onnx_builders import mean_model

SPEC = ModelSpec(name="means", input_name="images", height=256, width=128, embedding_dim=3)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(folder))
    return folder / tuning.CACHE_FILE


def _level(backend) -> ort.GraphOptimizationLevel:
    return backend.session.get_session_options().graph_optimization_level


def test_pick_level_keeps_the_default_unless_another_is_clearly_faster():
    assert tuning.pick_level({"basic": 10.0, "extended": 10.2, "all": 9.95}, "extended") == "extended"  # within 3 %
    assert tuning.pick_level({"basic": 10.0, "extended": 10.0, "all": 5.0}, "extended") == "all"
    assert tuning.pick_level({"basic": 8.0, "extended": 10.0, "all": 12.0}, "extended") == "basic"


def test_first_session_measures_and_caches_later_ones_read_the_cache(tmp_path, cache, monkeypatch):
    model = mean_model(tmp_path / "means.onnx")
    first = OnnxRuntimeBackend(model, SPEC, max_batch=4, threads=1)
    assert first.tuning.source == "measured" and set(first.tuning.ms) == set(tuning.CANDIDATE_LEVELS)
    assert first.tuning.level == tuning.pick_level(first.tuning.ms, "extended")
    entries = json.loads(cache.read_text())["entries"]
    (key,) = entries
    assert key == tuning.tuning_key(model, 1, 8, image_size=(256, 128)) and f"onnxruntime {ort.__version__}" in key and "threads 1" in key
    assert entries[key]["level"] == first.tuning.level

    def no_timing(*args):
        raise AssertionError("a cached choice must not be measured again")

    monkeypatch.setattr(tuning, "_time_levels", no_timing)
    second = OnnxRuntimeBackend(model, SPEC, max_batch=16, threads=1)
    assert second.tuning.source == "cached" and second.tuning.level == first.tuning.level
    assert "graph level" in second.describe() and "(tuned)" in second.describe()
    with pytest.raises(AssertionError, match="must not be measured"):
        OnnxRuntimeBackend(model, SPEC, threads=2)  # another thread count is another machine setting


def test_the_cached_level_is_the_one_the_session_uses(tmp_path, cache):
    model = mean_model(tmp_path / "means.onnx")
    for level, expected in (("all", ort.GraphOptimizationLevel.ORT_ENABLE_ALL), ("basic", ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)):
        cache.parent.mkdir(exist_ok=True)
        ms = {"basic": 1.0, "extended": 1.0, "all": 1.0}
        cache.write_text(json.dumps({"schema": tuning.SCHEMA, "entries": {tuning.tuning_key(model, 1, 8, image_size=(256, 128)): {"level": level, "ms": ms}}}))
        backend = OnnxRuntimeBackend(model, SPEC, threads=1)
        assert backend.tuning.source == "cached" and _level(backend) == expected


@pytest.mark.parametrize("ms", [None, "fast", [1, 2], {"basic": 1.0, "extended": "fast", "all": 1.0}, {"basic": 1.0}])
def test_a_hand_edited_entry_is_measured_again_not_a_crash(tmp_path, cache, ms):
    """An entry whose timings are not numbers crashed every later run: 'internal error: ValueError ... please report it'."""
    model = mean_model(tmp_path / "means.onnx")
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps({"schema": tuning.SCHEMA, "entries": {tuning.tuning_key(model, 1, 8, image_size=(256, 128)): {"level": "all", "ms": ms}}}))
    backend = OnnxRuntimeBackend(model, SPEC, threads=1)
    assert backend.tuning.source == "measured" and set(backend.tuning.ms) == set(tuning.CANDIDATE_LEVELS)


def test_a_corrupt_cache_is_ignored_and_rewritten(tmp_path, cache):
    model = mean_model(tmp_path / "means.onnx")
    cache.parent.mkdir()
    cache.write_text("{ not json")
    backend = OnnxRuntimeBackend(model, SPEC, threads=1)
    assert backend.tuning.source == "measured"
    assert json.loads(cache.read_text())["schema"] == tuning.SCHEMA


def test_an_unwritable_cache_still_gives_a_tuned_session(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    backend = OnnxRuntimeBackend(mean_model(tmp_path / "means.onnx"), SPEC, threads=1)
    assert backend.tuning.source == "measured" and backend.infer(2).shape == (2, 3)


def test_an_explicit_level_skips_tuning(tmp_path, cache):
    backend = OnnxRuntimeBackend(mean_model(tmp_path / "means.onnx"), SPEC, threads=1, optimization_level="all")
    assert _level(backend) == ort.GraphOptimizationLevel.ORT_ENABLE_ALL and backend.tuning.source == "default"
    assert not cache.exists()


def test_the_detector_is_tuned_at_batch_1(yolox_path, cache):
    detector = OnnxRuntimeDetector(yolox_path, threads=1)
    assert detector.tuning.source == "measured"
    assert detector.graph_rewrites == ("Focus stem as one strided conv",), "the graph timed is the one that runs"
    key = tuning.tuning_key(yolox_path, 1, 1, graph="Focus stem as one strided conv")
    assert list(json.loads(cache.read_text())["entries"]) == [key] and key != tuning.tuning_key(yolox_path, 1, 1)
    resized = OnnxRuntimeDetector(yolox_path, threads=1, input_size=(320, 416))
    assert resized.tuning.source == "measured", "another input size is timed on its own"
    assert len(json.loads(cache.read_text())["entries"]) == 2


def test_a_model_with_a_dynamic_image_size_is_timed_at_the_size_it_runs_at(tmp_path, cache, monkeypatch):
    """Dynamic height and width were timed on 1x1 images: the cached 'fastest level' was measured on an
    input the model never runs on (and many CNNs fail at 1x1, leaving the default untimed)."""
    model = mean_model(tmp_path / "means.onnx", height="H", width="W")
    timed_shapes = []
    real_time_levels = tuning._time_levels
    monkeypatch.setattr(tuning, "_time_levels", lambda sessions, feeds: timed_shapes.append(feeds["images"].shape) or real_time_levels(sessions, feeds))
    spec = ModelSpec(name="means", input_name="images", height=384, width=128, embedding_dim=3)
    backend = OnnxRuntimeBackend(model, spec, threads=1)
    assert timed_shapes == [(8, 3, 384, 128)] and backend.tuning.source == "measured"
    assert list(json.loads(cache.read_text())["entries"]) == [tuning.tuning_key(model, 1, 8, image_size=(384, 128))]
