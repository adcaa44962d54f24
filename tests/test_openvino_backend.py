"""The OpenVINO backend on the real models and real frames: agreement with ONNX Runtime FP32, zero-copy
buffers, dynamic batch, explicit precision (of both models), the detector on both CPU backends, same identities."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino; a dependency on x86-64)")

import edge_reid.backends.openvino as openvino_backend  # noqa: E402
from edge_reid.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from edge_reid.backends.openvino import OpenVinoBackend, kernel_precisions  # noqa: E402
from edge_reid.detector import PersonDetector  # noqa: E402
from edge_reid.embedder import Embedder  # noqa: E402
from edge_reid.errors import BackendUnavailableError, ModelError  # noqa: E402
from edge_reid.pipeline import Pipeline  # noqa: E402
from edge_reid.preprocess import CropPreprocessor  # noqa: E402
from edge_reid.spec import load_spec  # noqa: E402
from edge_reid.tracking.boxes import iou_matrix  # noqa: E402


@pytest.fixture(scope="module")
def spec(osnet_path):
    return load_spec(osnet_path)


@pytest.fixture(scope="module")
def real_batch(spec, vtest_frames, detector):
    """(N, 3, 256, 128) float32: every person the detector finds in 4 vtest frames, preprocessed."""
    crops = []
    for frame in vtest_frames[:4]:
        for x1, y1, x2, y2 in detector.detect(frame).boxes.astype(int):
            crops.append(frame[y1:y2, x1:x2])
    batch = np.zeros((len(crops), 3, spec.height, spec.width), np.float32)
    preprocessor = CropPreprocessor(spec, len(crops))
    preprocessor.write_crops(crops, batch)
    preprocessor.close()
    assert len(crops) >= 12
    return batch


def _embed(backend, batch: np.ndarray) -> np.ndarray:
    out = np.zeros((len(batch), backend.spec.embedding_dim), np.float32)
    for start in range(0, len(batch), backend.max_batch):
        n = min(backend.max_batch, len(batch) - start)
        backend.buffers.input[:n] = batch[start:start + n]
        out[start:start + n] = backend.infer(n)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _cpu_has_bf16() -> bool:
    return not openvino_backend.precision_unavailable("bf16")


class _CoreWithout:
    """OpenVINO's core, except that the CPU offers only FP32 and INT8 (a CPU without BF16 or FP16)."""

    def __init__(self, core) -> None:
        self._core = core
        self.available_devices = core.available_devices

    def get_property(self, device, name):
        return ["FP32", "INT8"] if name == "OPTIMIZATION_CAPABILITIES" else self._core.get_property(device, name)

    def __getattr__(self, name):
        return getattr(self._core, name)


@pytest.fixture(scope="module")
def reference(osnet_path, spec, real_batch):
    with OnnxRuntimeBackend(osnet_path, spec, max_batch=16, threads=1) as backend:
        return _embed(backend, real_batch)


def test_fp32_embeddings_agree_with_onnxruntime_on_real_crops(osnet_path, spec, real_batch, reference):
    with OpenVinoBackend(osnet_path, spec, max_batch=16, threads=1) as backend:
        assert backend.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32", "never OpenVINO's bf16 default"
        assert set(kernel_precisions(backend.compiled)) == {"f32"}
        cosine = np.sum(_embed(backend, real_batch) * reference, axis=1)
    assert cosine.mean() >= 0.9999 and cosine.min() >= 0.999


def _plan(backend, n: int) -> list[tuple[str, list[int]]]:
    names = {id(backend._chunks): "streams", id(backend._last_chunks): "last round", id(backend._single): "single rows"}
    return [(names[id(model)], offsets) for model, offsets in backend._plan(n)]


def test_any_batch_runs_as_static_chunks_and_gives_the_same_rows(osnet_path, spec, real_batch, reference):
    """A dynamic-batch model is compiled for batch 1 and for chunks of 4 (on one stream per thread, and
    in latency mode for a short last round): n rows = whole rounds of chunks on the streams, a last
    round on every thread, then single rows."""
    with OpenVinoBackend(osnet_path, spec, max_batch=16, threads=2) as backend:
        assert backend.static_batches == (4, 1) and backend.streams == 2
        assert int(backend.compiled.get_property("NUM_STREAMS")) == 2
        assert _plan(backend, 11) == [("streams", [0, 4]), ("single rows", [8, 9, 10])]
        assert _plan(backend, 13) == [("streams", [0, 4]), ("last round", [8]), ("single rows", [12])], "no stream left idle"
        assert _plan(backend, 4) == [("last round", [0])]
        assert _plan(backend, 3) == [("single rows", [0, 1, 2])]
        for n in (13, 3, 12, 4):
            backend.buffers.output[:] = np.nan
            backend.buffers.input[:n] = real_batch[:n]
            rows = backend.infer(n)
            assert not np.isnan(backend.buffers.output[:n]).any(), "every row written, by each of the three models"
            assert np.isnan(backend.buffers.output[n:]).all(), "rows past n are not computed"
            rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
            assert np.sum(rows * reference[:n], axis=1).min() >= 0.999
    with OpenVinoBackend(osnet_path, spec, max_batch=12, threads=1) as one_thread:
        assert one_thread.streams == 1 and _plan(one_thread, 11) == [("streams", [0, 4]), ("single rows", [8, 9, 10])]
        assert one_thread._last_chunks is None, "one stream: no short rounds, no third model"
    with OpenVinoBackend(osnet_path, spec, max_batch=6, threads=2) as small_batch:
        assert small_batch.streams == 1, "a batch of 6 has one chunk of 4: one stream"
        assert int(small_batch.compiled.get_property("INFERENCE_NUM_THREADS")) == 2, "the one stream has both threads"
    with OpenVinoBackend(osnet_path, spec, max_batch=1, threads=1) as single:
        assert single.static_batches == (1,) and single.streams == 0 and _plan(single, 1) == [("single rows", [0])]


def test_stream_count_is_one_per_thread_up_to_the_chunks_of_a_full_batch():
    assert openvino_backend.stream_count(2, 32) == 2 and openvino_backend.stream_count(2, 8) == 2
    assert openvino_backend.stream_count(16, 32) == 8
    assert openvino_backend.stream_count(16, 6) == 1 and openvino_backend.stream_count(1, 32) == 1


def test_dynamic_batch_sizes_give_the_same_rows(osnet_path, spec, real_batch, reference):
    with OpenVinoBackend(osnet_path, spec, max_batch=8, threads=1) as backend:
        for n in (1, 5, 8, 3):
            backend.buffers.input[:n] = real_batch[:n]
            rows = backend.infer(n)
            assert rows.shape == (n, 512)
            rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
            assert np.sum(rows * reference[:n], axis=1).min() >= 0.999
        with pytest.raises(ValueError, match="outside 1..8"):
            backend.infer(9)


def test_tensors_share_the_batch_buffers(osnet_path, spec, real_batch):
    """No copies: OpenVINO reads the input where preprocessing wrote it and writes the output where the matcher reads it."""
    with OpenVinoBackend(osnet_path, spec, max_batch=4, threads=1) as backend:
        assert backend.shares_buffers()
        backend.buffers.input[:2] = real_batch[:2]
        first = backend.infer(2)
        assert np.shares_memory(first, backend.buffers.output)
        kept = first.copy()
        backend.buffers.input[:2] = real_batch[2:4]  # written in place, no re-binding
        second = backend.infer(2)
        assert second.ctypes.data == backend.buffers.output.ctypes.data and not np.allclose(second, kept)


def test_precision_the_device_lacks_is_refused(osnet_path, spec, monkeypatch):
    without = _CoreWithout(openvino_backend._core())
    monkeypatch.setattr(openvino_backend, "_core", lambda: without)
    with pytest.raises(BackendUnavailableError, match="--precision bf16: OpenVINO's CPU device here cannot compute in BF16 .*use --precision fp32"):
        OpenVinoBackend(osnet_path, spec, max_batch=2, precision="bf16")


def test_absent_device_and_non_qdq_int8_are_refused(osnet_path, spec):
    if "NPU" not in openvino_backend._core().available_devices:
        with pytest.raises(BackendUnavailableError, match="no NPU device here"):
            OpenVinoBackend(osnet_path, spec, device="NPU")
    with pytest.raises(ModelError, match="not an INT8 \\(Q/DQ\\) model.*edge-reid calibrate"):
        OpenVinoBackend(osnet_path, spec, precision="int8")


def test_bf16_where_the_cpu_has_it_is_close_and_labelled(osnet_path, spec, real_batch, reference):
    if not _cpu_has_bf16():
        pytest.skip("this CPU has no bf16 (needs AVX512-BF16 or AMX)")
    with OpenVinoBackend(osnet_path, spec, max_batch=16, threads=1, precision="bf16") as backend:
        assert backend.describe().startswith("openvino") and "CPU bf16, 1 thread" in backend.describe() and set(kernel_precisions(backend.compiled)) == {"bf16"}
        cosine = np.sum(_embed(backend, real_batch) * reference, axis=1)
    assert 0.99 <= cosine.mean() < 0.99999, "bf16 is close to FP32 but not FP32"


def test_a_closed_backend_still_describes_itself(osnet_path, spec, yolox_path):
    """`edge-reid eval --backend openvino --json` ran the whole evaluation, closed the model, then crashed
    describing it for the JSON (AttributeError on the released compiled model): no results written."""
    from edge_reid.backends.openvino import OpenVinoDetector

    backend = OpenVinoBackend(osnet_path, spec, max_batch=4, threads=1)
    detector = OpenVinoDetector(yolox_path, threads=1)
    for model in (backend, detector):
        described = model.describe()
        model.close()
        model.close()
        assert described.startswith("openvino") and model.describe() == described


def test_detector_gives_the_same_boxes_on_both_cpu_backends(yolox_path, vtest_frames):
    on_ort = PersonDetector(yolox_path, backend="onnxruntime", threads=1)
    on_ov = PersonDetector(yolox_path, backend="openvino", threads=1)
    assert on_ov.describe().startswith("openvino") and on_ort.describe().startswith("onnxruntime")
    total = 0
    for frame in vtest_frames[:6]:
        a, b = on_ort.detect(frame), on_ov.detect(frame)
        assert len(a) == len(b)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)  # pixels
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
        total += len(a)
    assert total >= 18


def test_pipeline_on_openvino_gives_the_same_identities_as_onnxruntime(osnet_path, yolox_path, vtest_path):
    def identities(backend: str) -> list[list[int]]:
        pipeline = Pipeline(Embedder(osnet_path, backend=backend, threads=1), PersonDetector(yolox_path, backend=backend, threads=1))
        return [result.identities.identity_ids.tolist() for result in pipeline.run(str(vtest_path), max_frames=12)]

    reference, candidate = identities("onnxruntime"), identities("openvino")
    assert candidate == reference and sum(map(len, reference)) >= 24  # tracks are reported from their third frame


@pytest.mark.parametrize(
    "options, reid_precision, detector_precision",
    [(["--precision", "bf16"], "bf16", "fp32"), (["--detector-precision", "bf16"], "fp32", "bf16")],
    ids=["reid-bf16", "detector-bf16"],
)
def test_run_on_openvino_in_bf16_changes_only_the_model_asked_and_says_so(tmp_path, vtest_path, options, reid_precision, detector_precision):
    import json

    from edge_reid.cli import main

    if not _cpu_has_bf16():
        pytest.skip("this CPU has no bf16 (needs AVX512-BF16 or AMX)")
    summary = tmp_path / "s.json"
    assert main(["run", "--source", str(vtest_path), "--backend", "openvino", *options, "--max-frames", "2",
                 "--summary", str(summary)]) == 0
    reid, detector = json.loads(summary.read_text())["backend"].split("; detector ")
    assert reid.startswith("openvino") and f"CPU {reid_precision}," in reid
    assert detector.startswith("openvino") and f"CPU {detector_precision}," in detector
    assert main(["run", "--source", str(vtest_path), "--precision", "fp8"]) == 2


def test_detector_in_bf16_finds_the_same_people_and_says_so(yolox_path, vtest_frames):
    if not _cpu_has_bf16():
        pytest.skip("this CPU has no bf16 (needs AVX512-BF16 or AMX)")
    in_fp32 = PersonDetector(yolox_path, backend="openvino", threads=1)
    in_bf16 = PersonDetector(yolox_path, backend="openvino", threads=1, precision="bf16")
    assert "CPU bf16, 1 thread" in in_bf16.describe() and "CPU fp32, 1 thread" in in_fp32.describe()
    assert set(kernel_precisions(in_bf16.backend.compiled)) == {"bf16"}
    matched = total = 0
    largest_change = 0.0
    for frame in vtest_frames[:6]:
        a, b = in_fp32.detect(frame), in_bf16.detect(frame)
        largest_change = max(largest_change, float(np.abs(in_fp32.backend.output - in_bf16.backend.output).max()))
        total += len(a)
        if len(a) and len(b):
            overlap = iou_matrix(a.boxes, b.boxes)
            best = overlap.argmax(axis=1)
            close = overlap[np.arange(len(a)), best] >= 0.8
            matched += int(close.sum())
            np.testing.assert_allclose(a.scores[close], b.scores[best[close]], atol=0.1)
    assert total >= 18 and matched >= 0.9 * total, f"{matched} of {total} boxes found again in bf16"
    assert largest_change > 1e-3, "the bf16 detector computed exactly what the fp32 one did: the precision was not applied"


def test_detector_precision_the_device_lacks_is_refused_naming_the_option(yolox_path, monkeypatch):
    without = _CoreWithout(openvino_backend._core())
    monkeypatch.setattr(openvino_backend, "_core", lambda: without)
    with pytest.raises(BackendUnavailableError, match="--detector-precision bf16: OpenVINO's CPU device here cannot compute in BF16 .*use --detector-precision fp32"):
        PersonDetector(yolox_path, backend="openvino", precision="bf16")


def test_auto_detector_precision_nobody_has_names_every_refusal(yolox_path, monkeypatch):
    without = _CoreWithout(openvino_backend._core())
    monkeypatch.setattr(openvino_backend, "_core", lambda: without)
    with pytest.raises(BackendUnavailableError) as raised:
        PersonDetector(yolox_path, backend="auto", precision="fp16")
    message = str(raised.value)
    assert "OpenVINO passed over: --detector-precision fp16" in message and "ONNX Runtime passed over: ONNX Runtime runs the detector in fp32 only" in message


def test_compiled_models_are_cached_and_a_later_start_loads_them(osnet_path, spec, real_batch, tmp_path, monkeypatch):
    """The second backend with the same model and settings loads its compiled models from
    ``$EDGE_REID_CACHE_DIR/openvino`` (OpenVINO's model caching) and computes the same rows."""
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path / "cache"))
    with OpenVinoBackend(osnet_path, spec, max_batch=8, threads=1) as first:
        assert not first.compiled.get_property("LOADED_FROM_CACHE")
        rows = _embed(first, real_batch[:8])
    assert any((tmp_path / "cache" / "openvino").iterdir()), "compiled models written to the cache folder"
    with OpenVinoBackend(osnet_path, spec, max_batch=8, threads=1) as second:
        assert second.compiled.get_property("LOADED_FROM_CACHE")
        assert np.array_equal(_embed(second, real_batch[:8]), rows)


def test_a_cache_folder_that_cannot_be_made_only_costs_the_cache(osnet_path, spec, real_batch, reference, tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(blocked / "cache"))
    with OpenVinoBackend(osnet_path, spec, max_batch=8, threads=1) as backend:
        assert not backend.compiled.get_property("LOADED_FROM_CACHE")
        assert float(np.mean(np.sum(_embed(backend, real_batch[:8]) * reference[:8], axis=1))) > 0.9999
