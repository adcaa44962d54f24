"""``edge-reid bench`` and edge_reid.bench: JSON schema and consistency, statistics helpers, error paths.

No timing targets here (they live in docs/benchmarks.md): only that the numbers are
positive and agree with each other.
"""

import importlib.util
import json

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from edge_reid.assets import DEFAULT_REID_MODEL
from edge_reid.bench import (
    CropPool,
    LatencyStats,
    crops_from_folder,
    default_video,
    match_queries,
    parse_batch_sizes,
    percentile,
    resolve_precision,
    shared_folder,
    synthetic_gallery,
)
from edge_reid.cli import main
from edge_reid.onnx_graph import model_precision
from edge_reid.errors import DataError, ModelError
from edge_reid.spec import file_sha256
from onnx_builders import mean_model, save_model


# --------------------------------------------------------------------------- statistics


def test_percentile_matches_linear_interpolation():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 90) == pytest.approx(3.7)  # 1 + 0.9 * 3 = position 3.7 -> 3.7
    assert percentile([4.0, 1.0, 3.0, 2.0], 0) == 1.0 and percentile([4.0, 1.0, 3.0, 2.0], 100) == 4.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="0, 100"):
        percentile([1.0], 101)


def test_latency_stats_from_known_samples():
    stats = LatencyStats.from_samples([0.001, 0.002, 0.003, 0.004], batch=8)
    assert stats.iterations == 4 and stats.total_s == pytest.approx(0.010)
    assert stats.p50_ms == pytest.approx(2.5) and stats.mean_ms == pytest.approx(2.5)
    assert stats.min_ms == pytest.approx(1.0) and stats.max_ms == pytest.approx(4.0)
    assert stats.images_per_s == pytest.approx(8 * 4 / 0.010)
    assert stats.latency_ms()["p99"] == pytest.approx(3.97)
    for bad, message in (([], "no timing"), ([0.1, -0.1], "negative")):
        with pytest.raises(ValueError, match=message):
            LatencyStats.from_samples(bad, batch=1)
    with pytest.raises(ValueError, match="batch"):
        LatencyStats.from_samples([0.1], batch=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1e-6, 10.0), min_size=1, max_size=200), st.integers(1, 64))
def test_latency_stats_are_ordered_and_consistent(samples, batch):
    stats = LatencyStats.from_samples(samples, batch)
    assert stats.min_ms <= stats.p50_ms <= stats.p90_ms <= stats.p99_ms <= stats.max_ms
    assert stats.images_per_s == pytest.approx(batch * 1000.0 / stats.mean_ms, rel=1e-9)


def test_a_backend_named_twice_is_measured_once():
    from edge_reid.bench.compare import bench_backend_names

    assert bench_backend_names("onnxruntime, onnxruntime,openvino") == ["onnxruntime", "openvino"]


def test_parse_batch_sizes():
    assert parse_batch_sizes("1,8,32") == (1, 8, 32)
    assert parse_batch_sizes(" 4 , 2 ") == (4, 2)
    for bad, message in (
        ("", "comma-separated"),
        ("1,,8", "comma-separated"),
        ("1,x", "'x'.*not an integer"),
        ("2.5", "not an integer"),
        ("0", ">= 1"),
        ("8,-1", ">= 1"),
        ("8,8", "twice"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_batch_sizes(bad)


def test_crop_pool_batches_wrap_and_are_full():
    crops = [np.full((4, 2, 3), value, np.uint8) for value in range(3)]
    pool = CropPool(crops, "test")
    assert [[int(c[0, 0, 0]) for c in b] for b in pool.batches(2)] == [[0, 1], [2, 0]]
    assert [[int(c[0, 0, 0]) for c in b] for b in pool.batches(5)] == [[0, 1, 2, 0, 1]]
    assert [[int(c[0, 0, 0]) for c in b] for b in pool.batches(1)] == [[0], [1], [2]]


# --------------------------------------------------------------------------- gallery and matcher


def test_synthetic_gallery_is_reproducible_and_lies_among_real_embeddings():
    rng = np.random.default_rng(1)
    seeds = np.abs(rng.normal(size=(20, 16))).astype(np.float32)  # non-negative, like OSNet features
    seeds /= np.linalg.norm(seeds, axis=1, keepdims=True)
    gallery = synthetic_gallery(seeds, size=500, threshold=0.9, seed=3)
    again = synthetic_gallery(seeds, size=500, threshold=0.9, seed=3)
    assert len(gallery) == 500 and np.array_equal(gallery.store.vectors, again.store.vectors)
    np.testing.assert_allclose(np.linalg.norm(gallery.store.vectors, axis=1), 1.0, rtol=1e-5)
    similarity = seeds @ gallery.store.vectors.T
    assert (similarity >= 0.9).any(), "some identities must be close enough to match"
    before = gallery.store.vectors.copy()
    ids = match_queries(gallery, seeds[:5])
    assert ids.shape == (5,) and ids.dtype == np.int64
    assert len(set(ids[ids > 0].tolist())) == int((ids > 0).sum()), "one identity per query within a call"
    assert len(gallery) == 500 and np.array_equal(gallery.store.vectors, before), "the benchmark must not change the gallery"


# --------------------------------------------------------------------------- precision


def _quantized_model(path):
    """(N, 3, 256, 128) -> mean pool -> QuantizeLinear/DequantizeLinear -> (N, 3): a Q/DQ graph."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 256, 128])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [0.05])
    zero = helper.make_tensor("zero", TensorProto.INT8, [], [0])
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("QuantizeLinear", ["flat", "scale", "zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["output"]),
    ]
    return save_model(path, nodes, [x], [y], [scale, zero])


def _fp16_model(path):
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 256, 128])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    weight = helper.make_tensor("weight", TensorProto.FLOAT16, [3, 3], np.eye(3, dtype=np.float16).view(np.uint16).ravel().tolist(), raw=False)
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Cast", ["flat"], ["half"], to=TensorProto.FLOAT16),
        helper.make_node("MatMul", ["half", "weight"], ["product"]),
        helper.make_node("Cast", ["product"], ["output"], to=TensorProto.FLOAT),
    ]
    return save_model(path, nodes, [x], [y], [weight])


def test_detect_and_resolve_precision(tmp_path, osnet_path):
    int8, fp16 = _quantized_model(tmp_path / "q.onnx"), _fp16_model(tmp_path / "h.onnx")
    assert model_precision(osnet_path) == "fp32"
    assert model_precision(int8) == "int8"
    assert model_precision(fp16) == "fp16"
    assert resolve_precision(None, int8) == "int8" and resolve_precision("int8", int8) == "int8"
    assert resolve_precision("fp32", osnet_path) == "fp32"
    with pytest.raises(ModelError, match="FP32 model.*edge-reid calibrate"):
        resolve_precision("int8", osnet_path)
    with pytest.raises(ModelError, match="INT8 model, not FP16"):
        resolve_precision("fp16", int8)
    with pytest.raises(ModelError, match="not found"):
        model_precision(tmp_path / "missing.onnx")


# --------------------------------------------------------------------------- crops


def test_crops_from_folder_skips_unreadable_images(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((40, 20, 3), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.full((30, 10, 3), 10, np.uint8))
    (tmp_path / "c.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    pool = crops_from_folder(tmp_path)
    assert len(pool.crops) == 2 and len(pool.skipped) == 1 and pool.crops[0].shape == (40, 20, 3)
    assert len(crops_from_folder(tmp_path, max_crops=1).crops) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no readable image"):
        crops_from_folder(empty)
    with pytest.raises(DataError, match="not found"):
        crops_from_folder(tmp_path / "missing")


def test_the_shared_folder_is_edge_reid_shared_when_set_else_the_one_beside(tmp_path, monkeypatch):
    """``$EDGE_REID_SHARED`` decides when set, even without a video in it (an explicit setting is not
    overridden by a folder found elsewhere); else ``../shared`` from the working folder."""
    beside = tmp_path / "shared" / "data"
    beside.mkdir(parents=True)
    (beside / "vtest.avi").write_bytes(b"video")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("EDGE_REID_SHARED", raising=False)
    assert shared_folder().is_absolute() and shared_folder().resolve() == tmp_path / "shared"
    assert default_video() == beside / "vtest.avi"
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    monkeypatch.setenv("EDGE_REID_SHARED", str(elsewhere))
    assert shared_folder() == elsewhere and default_video() is None
    (elsewhere / "data" / "vtest.avi").write_bytes(b"video")
    assert default_video() == elsewhere / "data" / "vtest.avi"


# --------------------------------------------------------------------------- the command


def _check_stats(latency, images_per_s, batch):
    assert 0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert images_per_s == pytest.approx(batch * 1000.0 / latency["mean"], rel=2e-3)


def test_bench_cli_writes_consistent_json(tmp_path, vtest_path, capsys):
    """The CI run of the issue: bundled OSNet, batches 1,8,32, default crops from vtest.avi, every backend usable here."""
    from edge_reid.backends import backend_statuses

    out = tmp_path / "b.json"
    code = main(["bench", "--model", str(DEFAULT_REID_MODEL), "--batch", "1,8,32", "--seconds", "0.2", "--warmup", "0.05",
                 "--max-crops", "40", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["schema"] == "edge-reid-bench/3"
    assert set(report) == {"schema", "model", "settings", "backends", "skipped", "preprocess", "environment"}
    model = report["model"]
    assert model["sha256"] == file_sha256(DEFAULT_REID_MODEL) and model["embedding_dim"] == 512
    usable = [entry.name for entry, ok, _ in backend_statuses() if ok]
    measured = [run["backend"] for run in report["backends"]]
    skipped = [item["backend"] for item in report["skipped"]]
    assert sorted(measured + skipped) == sorted(usable) and "onnxruntime" in measured
    settings_ = report["settings"]
    assert settings_["backend"] == "all", "what was asked for, not the first backend measured"
    assert all(run["selection_reason"] == "every backend usable here (--backend all)" for run in report["backends"])
    assert settings_["gallery_size"] == 10_000 and settings_["batches"] == [1, 8, 32]
    assert settings_["crops"]["count"] == 40 and settings_["crops"]["source"].endswith("vtest.avi")
    assert settings_["matcher"] == "edge_reid.bench.matcher.match_queries"
    for run in report["backends"]:
        assert run["precision"] == "fp32" and run["describe"].startswith(run["backend"])
        assert [row["batch"] for row in run["batches"]] == [1, 8, 32]
        for row in run["batches"]:
            batch = row["batch"]
            assert row["iterations"] >= 5 and row["loop_iterations"] >= 5 and row["sequential_loop_iterations"] >= 5
            _check_stats(row["latency_ms"], row["images_per_s"], batch)
            for loop in ("loop", "sequential_loop"):
                _check_stats(row[f"{loop}_latency_ms"], row[f"{loop}_images_per_s"], batch)
                assert 0 < row[f"{loop}_efficiency"] <= 1.5
                assert row[f"{loop}_efficiency"] == pytest.approx(row[f"{loop}_images_per_s"] / row["images_per_s"], rel=2e-3)
            plain = row["sequential_loop_stage_ms"]
            assert set(plain) == {"preprocess", "embed", "match"} and all(ms > 0 for ms in plain.values())
            assert sum(plain.values()) <= row["sequential_loop_latency_ms"]["mean"] * 1.01, "stages are parts of one plain step"
            overlapped = row["loop_stage_ms"]
            assert set(overlapped) == {"preprocess", "embed", "match", "wait"}
            assert overlapped["match"] > 0 and overlapped["embed"] > 0 and overlapped["wait"] >= 0
            # the caller's thread only matches and waits: together they are (nearly all of) one step
            assert overlapped["match"] + overlapped["wait"] <= row["loop_latency_ms"]["mean"] * 1.01
    pre = report["preprocess"]
    assert pre["batch"] == 32 and pre["crops"] == 40
    assert pre["fused_crops_per_s"] > 0 and pre["reference_crops_per_s"] > 0
    assert pre["speedup"] == pytest.approx(pre["fused_crops_per_s"] / pre["reference_crops_per_s"], rel=1e-2)
    assert pre["max_abs_diff"] < 1e-3, "fused and reference preprocessing must agree"
    env = report["environment"]
    assert env["cpu_cores"] >= 1 and env["cpu"] and isinstance(env["cpu_flags"], list)
    assert {"numpy", "onnxruntime", "openvino", "opencv", "numba", "tensorrt"} <= set(env["libraries"])
    assert env["libraries"]["numpy"] == np.__version__ and env["libraries"]["opencv"] == cv2.__version__
    printed = capsys.readouterr().out
    assert "loop efficiency" in printed and "plain efficiency" in printed and "images/s" in printed and "our code" in printed
    assert "preprocess (batch 32, one thread)" in printed
    table_rows = [line for line in printed.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in table_rows] == [b for b in measured for _ in range(3)], "one row per backend and batch"
    if len(measured) > 1:
        assert "model images/s, " in printed and " / " in printed


def test_bench_with_crop_folder_and_a_small_model(tmp_path, vtest_frames, frame0_detections):
    folder = tmp_path / "crops"
    folder.mkdir()
    for index, (x1, y1, x2, y2) in enumerate(frame0_detections.boxes.astype(int)):
        cv2.imwrite(str(folder / f"{index:03d}.png"), vtest_frames[0][y1:y2, x1:x2])
    (folder / "broken.jpg").write_bytes(b"xx")
    out = tmp_path / "b.json"
    model = mean_model(tmp_path / "tiny.onnx")
    code = main(["bench", "--model", str(model), "--batch", "2,3", "--seconds", "0.05", "--warmup", "0", "--crops", str(folder),
                 "--gallery-size", "50", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["settings"]["crops"] == {"source": f"folder:{folder}", "count": len(frame0_detections.boxes), "skipped": 1}
    assert report["model"]["embedding_dim"] == 3
    for run in report["backends"]:
        assert [row["batch"] for row in run["batches"]] == [2, 3]
        assert all(0 < row["loop_efficiency"] for row in run["batches"])


def test_bench_int8_model_is_labelled(tmp_path):
    out = tmp_path / "b.json"
    model = _quantized_model(tmp_path / "tiny_int8.onnx")
    assert main(["bench", "--model", str(model), "--precision", "int8", "--model-only", "--batch", "1,4",
                 "--seconds", "0.02", "--warmup", "0", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["preprocess"] is None and report["settings"]["crops"] is None
    for run in report["backends"]:
        assert run["precision"] == "int8" and "loop_efficiency" not in run["batches"][0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch", "1,x"], "not an integer"),
        (["--batch", "0"], ">= 1"),
        (["--model", "missing_model.onnx"], "model file not found: missing_model.onnx"),
        (["--backend", "tensorrt", "--model-only"], "--backend tensorrt: TensorRT cannot be used here"),
        (["--backend", "tensorrt"], "--backend tensorrt: TensorRT cannot be used here"),
        (["--backend", "onnxruntime", "--precision", "int8", "--model-only"], "is an FP32 model, so --precision int8 cannot run it"),
        pytest.param(["--backend", "openvino", "--precision", "int8", "--model-only"], "is not an INT8 (Q/DQ) model",
                     marks=pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")),
        (["--backend", "onnxruntime", "--precision", "bf16", "--model-only"], "use --backend openvino --precision bf16"),
        (["--backend", "cuda", "--model-only"], "unknown backend cuda"),
        (["--crops", "no_such_folder"], "no_such_folder: crop folder not found"),
        (["--video", "no_such_video.avi"], "video not found: no_such_video.avi"),
    ],
)
def test_bench_errors_exit_2(args, message, osnet_path, capsys):
    code = main(["bench", "--seconds", "0.01", "--batch", "1", *args])
    assert code == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.replace("│", " ").split()) and "Traceback" not in err


def test_bench_json_path_checked_before_work(tmp_path, capsys):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    assert main(["bench", "--model-only", "--json", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- TensorRT, simulated (stand-ins from issue 5)




def test_bench_on_simulated_tensorrt_reports_the_engine_precision(fake, tmp_path, capsys):
    """Our bench wiring against the TensorRT stand-ins: the engine is loaded by precision and labelled from its
    manifest (not TensorRT's speed: the stand-ins compute nothing real)."""
    assert main(["build", "--model", str(fake.model), "--max-batch", "32"]) == 0
    out = tmp_path / "trt.json"
    args = ["bench", "--model", str(fake.model), "--backend", "tensorrt", "--model-only", "--batch", "1,4",
            "--seconds", "0.02", "--warmup", "0"]
    assert main([*args, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    (run,) = report["backends"]
    assert run["precision"] == "fp16" and run["describe"].startswith("tensorrt 10.3.0.30 fp16")
    assert report["settings"]["engines_dir"] == "engines" and [row["batch"] for row in run["batches"]] == [1, 4]
    capsys.readouterr()
    assert main([*args, "--precision", "int8"]) == 2
    err = capsys.readouterr().err
    assert "no TensorRT engine" in err and "edge-reid build" in err and "--precision int8" in err
    assert main([*args, "--precision", "fp32"]) == 2
    assert "for FP32 use --backend openvino or onnxruntime" in capsys.readouterr().err


def test_bench_refuses_a_device_its_backends_do_not_have(capsys):
    """`bench --backend onnxruntime --device GPU` measured ONNX Runtime on the CPU and said nothing of the device."""
    from edge_reid.cli import main

    assert main(["bench", "--backend", "onnxruntime", "--device", "GPU", "--model-only", "--batch", "1"]) == 2
    assert "chooses an OpenVINO device; --backend onnxruntime has none" in " ".join(capsys.readouterr().err.split())
