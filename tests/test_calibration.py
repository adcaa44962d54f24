"""INT8 calibration: Q/DQ recipe, sensitivity, TensorRT table, the guard's search and its fallback."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_reid.calibration.calibrate import CalibrationSettings, calibrate_model
from edge_reid.calibration.centring import centred_name
from edge_reid.calibration.guard import AccuracyBudget, Measurement, checkpoints, search_float_layers
from edge_reid.calibration.qdq import (
    QuantRecipe,
    calibrate_ranges,
    layer_macs,
    pooled_input_layers,
    quantizable_nodes,
    quantize_qdq,
    upgrade_opset,
)
from edge_reid.calibration.sensitivity import layer_sensitivity, sensitivity_model
from edge_reid.calibration.tensorrt_table import read_tensorrt_table, scale_hex, tensors_for_table, write_tensorrt_table

HEIGHT, WIDTH = 64, 32


def tiny_reid_model(path: Path, opset: int = 12) -> Path:
    """(N, 3, 64, 32) -> (N, 16): conv 3x3/2 + ReLU, 1x1 conv + ReLU with a residual Add,
    depthwise 3x3 + ReLU, global pool, fc. Opset 12 like the bundled OSNet."""
    rng = np.random.default_rng(7)

    def weight(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.normal(size=shape) * scale).astype(np.float32), name)

    inits = [
        weight("w1", 8, 3, 3, 3), weight("b1", 8, scale=0.1),
        weight("w2", 8, 8, 1, 1), weight("b2", 8, scale=0.1),
        weight("w3", 8, 1, 3, 3), weight("b3", 8, scale=0.1),
        weight("wfc", 16, 8), weight("bfc", 16, scale=0.1),
        numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Add", ["r2", "r1"], ["res"], name="residual"),
        helper.make_node("Conv", ["res", "w3", "b3"], ["c3"], name="dwconv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["pooled"], name="gap"),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wfc", "bfc"], ["output"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny_reid",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, HEIGHT, WIDTH])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 16])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


def _crop(rng, pid: int) -> np.ndarray:
    """A 64x32 crop whose colours depend on the person id, plus noise."""
    base = np.random.default_rng(pid).integers(30, 220, size=(4, 1, 3))
    image = np.repeat(base, 16, axis=0).repeat(32, axis=1).astype(np.int16)
    image += rng.integers(-25, 25, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def tiny_market(root: Path) -> Path:
    rng = np.random.default_rng(3)
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (root / split).mkdir(parents=True)
    for pid in range(1, 9):
        for cam in (1, 2):
            for frame in range(2):
                cv2.imwrite(str(root / "bounding_box_train" / f"{pid:04d}_c{cam}s1_{frame:06d}_00.jpg"), _crop(rng, pid))
    for pid in range(20, 26):
        cv2.imwrite(str(root / "query" / f"{pid:04d}_c1s1_000001_00.jpg"), _crop(rng, pid))
        for frame in range(2):
            cv2.imwrite(str(root / "bounding_box_test" / f"{pid:04d}_c2s1_{frame:06d}_00.jpg"), _crop(rng, pid))
    cv2.imwrite(str(root / "bounding_box_test" / "0000_c3s1_000001_00.jpg"), _crop(rng, 99))
    cv2.imwrite(str(root / "bounding_box_test" / "-1_c3s1_000002_00.jpg"), _crop(rng, 98))
    (root / "bounding_box_test" / "0030_c2s1_000009_00.jpg").write_bytes(b"broken jpeg")
    return root


@pytest.fixture()
def tiny(tmp_path):
    return tiny_reid_model(tmp_path / "tiny_reid.onnx"), tiny_market(tmp_path / "market")


def _float_batches(count: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, 3, HEIGHT, WIDTH)).astype(np.float32)


def _minmax_ranges(model_path: Path, tmp_path: Path):
    """The tiny model upgraded to opset 13 and saved, and its MinMax ranges on random batches:
    (float model, its path, recipe, ranges)."""
    float_model = upgrade_opset(onnx.load(str(model_path)))
    float_path = tmp_path / "f13.onnx"
    onnx.save(float_model, str(float_path))
    recipe = QuantRecipe(method="minmax")
    return float_model, float_path, recipe, calibrate_ranges(float_path, [_float_batches()], "images", recipe)


def test_opset_upgrade_and_per_channel_qdq(tiny, tmp_path):
    model_path, _ = tiny
    model = upgrade_opset(onnx.load(str(model_path)))
    assert next(i.version for i in model.opset_import if i.domain in ("", "ai.onnx")) == 13
    float_path = tmp_path / "f13.onnx"
    onnx.save(model, str(float_path))
    recipe = QuantRecipe(method="minmax")
    ranges = calibrate_ranges(float_path, [_float_batches()[:16], _float_batches()[16:]], "images", recipe)
    out = quantize_qdq(float_path, tmp_path / "q.onnx", ranges, recipe)
    graph = onnx.load(str(out)).graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    conv2 = next(n for n in graph.node if n.name == "conv2")
    weight_dq = producer[conv2.input[1]]
    assert weight_dq.op_type == "DequantizeLinear" and inits[weight_dq.input[1]].shape == (8,)  # per-channel scales
    assert inits[weight_dq.input[0]].dtype == np.int8
    act_dq = producer[conv2.input[0]]
    assert act_dq.op_type == "DequantizeLinear" and inits[act_dq.input[2]].dtype == np.int8
    assert int(inits[act_dq.input[2]]) == 0  # symmetric: zero point 0 (TensorRT's requirement)
    # Outputs of Conv stay float; the residual Add reads the float ReLU output, not a rounded copy.
    residual = next(n for n in graph.node if n.name == "residual")
    assert list(residual.input) == ["r2", "r1"]


def test_written_qdq_model_is_topologically_sorted(tiny, tmp_path):
    """ONNX requires nodes in topological order; QDQQuantizer appends its Q/DQ nodes after the graph's."""
    _, float_path, recipe, ranges = _minmax_ranges(tiny[0], tmp_path)
    for keep_float in ([], ["conv2"]):
        out = quantize_qdq(float_path, tmp_path / "q.onnx", ranges, recipe, keep_float=keep_float)
        onnx.checker.check_model(onnx.load(str(out)), full_check=True)


def test_layers_kept_float_are_entirely_float(tiny, tmp_path):
    _, float_path, recipe, ranges = _minmax_ranges(tiny[0], tmp_path)
    out = quantize_qdq(float_path, tmp_path / "q.onnx", ranges, recipe, keep_float=["conv2"])
    graph = onnx.load(str(out)).graph
    conv2 = next(n for n in graph.node if n.name == "conv2")
    assert list(conv2.input) == ["r1", "w2", "b2"]  # float input and float weights
    dwconv = next(n for n in graph.node if n.name == "dwconv")
    assert dwconv.input[0] != "res"  # still quantized


def test_layer_inventory(tiny):
    model = upgrade_opset(onnx.load(str(tiny[0])))
    layers = quantizable_nodes(model)
    assert layers == ["conv1", "conv2", "dwconv", "fc"]
    assert pooled_input_layers(model, layers) == ["fc"]
    macs = layer_macs(model, layers)
    # conv1: 8*3*3*3 weights x 32*16 outputs; conv2: 8*8 x 32*16; depthwise: 8*9 x 32*16; fc: 16*8.
    assert macs == {"conv1": 216 * 512, "conv2": 64 * 512, "dwconv": 72 * 512, "fc": 128}


def test_sensitivity_scores_each_layer_alone_in_one_pass(tiny, tmp_path):
    float_model, float_path, recipe, ranges = _minmax_ranges(tiny[0], tmp_path)
    qdq = onnx.load(str(quantize_qdq(float_path, tmp_path / "q.onnx", ranges, recipe)))
    layers = ["conv1", "conv2", "dwconv"]
    combined, outputs = sensitivity_model(float_model, qdq, layers)
    assert set(outputs) == set(layers) and combined.graph.output[0].name == "output"
    copies = [n.name for n in combined.graph.node if n.name.startswith("conv1")]
    assert len(copies) == 2  # the float conv1 and conv1's variant: the other variants reuse the float conv1
    images = _float_batches(16, seed=5)
    scores = layer_sensitivity(float_model, qdq, images, "images", layers, batch=5)
    # The same as quantizing one layer at a time in separate models.
    reference = _embed(float_model, images)
    for layer in layers:
        alone = quantize_qdq(float_path, tmp_path / f"only_{layer}.onnx", ranges, recipe, keep_float=[n for n in ("conv1", "conv2", "dwconv", "fc") if n != layer])
        expected = float(np.mean(1.0 - np.sum(_embed(onnx.load(str(alone)), images) * reference, axis=1)))
        assert scores[layer] == pytest.approx(expected, rel=1e-3, abs=1e-7)
    assert all(0.0 < value < 0.5 for value in scores.values())


def _embed(model: onnx.ModelProto, images: np.ndarray) -> np.ndarray:
    from edge_reid.calibration.sensitivity import embed_array, ort_session_from_proto

    return embed_array(ort_session_from_proto(model), "images", images)


def test_tensorrt_table_format(tmp_path):
    assert scale_hex(127.0) == "3f800000"  # scale 1.0
    path = write_tensorrt_table({"images": 2.54, "r1": 127.0, "skip_me": 1.0, "dead": 0.0}, tmp_path / "t.calib", leave_out=["skip_me"])
    lines = path.read_text().splitlines()
    assert lines[0] == "TRT-8601-EntropyCalibration2"
    assert lines[1:] == ["images: 3ca3d70a", "r1: 3f800000"]
    header, scales = read_tensorrt_table(path)
    assert scales["images"] == pytest.approx(2.54 / 127, rel=1e-6)


def _fake(float_layers, split, top1_by_count):
    return Measurement(
        float_layers=tuple(float_layers), split=split, mean_cosine=0.9999, p1_cosine=0.999,
        top1_agreement=top1_by_count(len(float_layers)), top5_agreement=0.99, map_drop=0.2,
    )


def test_checkpoints_every_mac_step_or_layer_step():
    ranked = [f"l{i}" for i in range(10)]
    macs = {name: 1 for name in ranked} | {"l2": 100}
    # 109 MACs: l2 alone is over 5% of them, a checkpoint right after it; else every 4 layers; never all 10.
    assert checkpoints(ranked, macs, mac_step=0.05, layer_step=4) == [0, 3, 7, 9]


def test_guard_chooses_on_selection_and_accepts_only_what_holds_out():
    ranked = [f"layer{i}" for i in range(40)]
    macs = {name: 1 for name in ranked}
    seen = []

    def selection(float_layers):
        seen.append(("selection", len(float_layers)))
        # Not monotonic: 8 float layers pass, 12 dip below, 16 and more pass.
        return _fake(float_layers, "selection", lambda n: {0: 0.90, 4: 0.95, 8: 0.975, 12: 0.96}.get(n, 0.98))

    def heldout(float_layers):
        seen.append(("held-out", len(float_layers)))
        # The candidate chosen at 8 was lucky on the selection split: it fails held out.
        return _fake(float_layers, "held-out", lambda n: 0.965 if n < 16 else 0.975)

    outcome = search_float_layers(selection, heldout, ranked, macs, AccuracyBudget(), mac_step=1.0, layer_step=4)
    assert outcome.met and outcome.best.split == "held-out" and outcome.best.float_layers == tuple(ranked[:16])
    assert seen == [("selection", 0), ("selection", 4), ("selection", 8), ("held-out", 8), ("selection", 12), ("selection", 16), ("held-out", 16)]


def test_guard_fallback_reports_not_met_with_held_out_numbers():
    ranked = [f"layer{i}" for i in range(10)]
    macs = {name: 1 for name in ranked}
    outcome = search_float_layers(
        lambda fl: _fake(fl, "selection", lambda n: 0.5 + 0.03 * n),
        lambda fl: _fake(fl, "held-out", lambda n: 0.4 + 0.03 * n),
        ranked, macs, AccuracyBudget(min_top1_agreement=0.99), mac_step=1.0, layer_step=4,
    )
    assert not outcome.met and outcome.best.split == "held-out"
    assert len(outcome.best.float_layers) == 9  # never all 10: one layer stays INT8
    assert outcome.violations and "top-1 agreement 67.00% < 99.00%" in outcome.violations[0]


def test_budget_checks_every_limit():
    ok = _fake((), "held-out", lambda n: 0.99)
    assert AccuracyBudget().violations(ok) == []
    low_p1 = Measurement((), "held-out", 0.9999, 0.99, 0.99, 0.99, 0.0)
    assert AccuracyBudget().violations(low_p1) == ["1st-percentile cosine 0.99000 < 0.99800"]
    low_top5 = Measurement((), "held-out", 0.9999, 0.999, 0.99, 0.90, 0.0)
    assert AccuracyBudget().violations(low_top5) == ["top-5 agreement 90.00% < 95.00%"]
    low_mean = Measurement((), "held-out", 0.999, 0.999, 0.99, 0.99, 0.0)
    assert AccuracyBudget().violations(low_mean) == ["mean cosine 0.99900 < 0.99950"]
    map_drop = Measurement((), "held-out", 0.9999, 0.999, 0.99, 0.99, 1.5)
    assert AccuracyBudget().violations(map_drop) == ["mAP drop 1.50 > 1.00 points"]
    low_top1 = Measurement((), "held-out", 0.9999, 0.999, 0.96, 0.99, 0.0)
    assert AccuracyBudget().violations(low_top1) == ["top-1 agreement 96.00% < 97.00%"]


def test_tensorrt_table_covers_what_int8_layers_read_and_write(tiny):
    model = upgrade_opset(onnx.load(str(tiny[0])))
    needed, only_float = tensors_for_table(model, ["conv1", "dwconv"])
    # conv1 reads images, writes c1 (ReLU fused: r1); dwconv reads res, writes c3 (and r3).
    assert needed == {"images", "c1", "r1", "res", "c3", "r3"}
    # conv2 is float but reads r1, which INT8 conv1 writes: r1 keeps its range; fc's input is float-only.
    assert only_float == {"flat"}


OPEN_BUDGET = AccuracyBudget(max_map_drop=100.0, min_top1_agreement=0.0, min_mean_cosine=-1.0, min_p1_cosine=-1.0, min_top5_agreement=0.0)


def test_calibrate_impossible_budget_falls_back_and_still_writes_the_best_model(tiny, tmp_path):
    model_path, market = tiny
    settings = CalibrationSettings(
        images=20, pool_size=40, sensitivity_images=8,
        budget=AccuracyBudget(max_map_drop=1.0, min_top1_agreement=1.01),  # top-1 > 100%: impossible
    )
    steps = []
    report = calibrate_model(model_path, market, tmp_path / "out", settings, log=steps.append)
    assert not report.met and any("top-1 agreement" in v for v in report.violations)
    guard_lines = [line for line in steps if "float layers" in line]
    assert len(report.guard_steps) >= 2 and len(guard_lines) == len(report.guard_steps)
    assert report.guard_steps[-1]["split"] == "held-out"
    assert any("calibration crops" in line for line in steps)  # 20 crops: warned
    assert report.calibration["warning"].startswith("only 20 calibration crops")
    assert report.layers["float_by_rule"] == ["fc"]
    assert report.layers["int8"] >= 1  # still an INT8 model
    assert {s["layer"] for s in report.sensitivity} == {"conv1", "conv2", "dwconv"}
    out = Path(report.outputs["model"])
    assert out.is_file() and any(n.op_type == "DequantizeLinear" for n in onnx.load(str(out)).graph.node)
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)  # nodes topologically sorted, types consistent
    saved = json.loads(Path(report.outputs["report"]).read_text())
    assert saved["met"] is False and saved["calibration"]["count"] == 20
    assert saved["calibration"]["source"] == str(market / "bounding_box_train")
    assert all((market / "bounding_box_train" / name).is_file() for name in saved["calibration"]["images"])
    assert [(Path(p["path"]).name, p["reason"]) for p in saved["pool"]["skipped"]] == [("0030_c2s1_000009_00.jpg", "not a decodable image")]
    assert [Path(p["path"]).name for p in saved["fp32"]["skipped"]] == ["0030_c2s1_000009_00.jpg"], "the mAPs leave it out: said"
    header, scales = read_tensorrt_table(report.outputs["tensorrt_table"])
    assert header.startswith("TRT-") and len(_table_matches_the_fp32_model(scales, model_path, out)) == report.layers["int8"]
    assert not list((tmp_path / "out").glob(".edge-reid-calibrate-*"))  # temporary files cleaned up


def _table_matches_the_fp32_model(scales: dict[str, float], fp32_path, qdq_path) -> list[str]:
    """Check a TensorRT 8 table against the FP32 model (the network TensorRT 8's implicit INT8 calibrates):
    no entry names a tensor absent from it, and every INT8 layer's input and output there (and the ReLU
    output fused with it) has a range. Returns the INT8 layers (of the Q/DQ model)."""
    fp32 = onnx.load(str(fp32_path)).graph
    names = {i.name for i in fp32.input} | {o for n in fp32.node for o in n.output}
    assert sorted(t for t in scales if t not in names) == []
    qdq = onnx.load(str(qdq_path)).graph
    producer = {o: n for n in qdq.node for o in n.output}
    int8 = [n.name for n in qdq.node if n.op_type in ("Conv", "Gemm") and n.input[1] in producer and producer[n.input[1]].op_type == "DequantizeLinear"]
    fp32_nodes = {n.name: n for n in fp32.node}
    readers = {}
    for node in fp32.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    for name in int8:
        node = fp32_nodes[name]
        assert node.input[0] in scales and node.output[0] in scales, name
        assert all(r.output[0] in scales for r in readers.get(node.output[0], []) if r.op_type == "Relu"), name
    return int8


def test_tensorrt_table_names_the_fp32_models_tensors_with_ranges_mapped_back(tiny, tmp_path):
    """TensorRT 8 calibrates the FP32 model: the table names its tensors, not the folded and centred model's.
    The folded integer input is 'images' with the normalised input's whole range; a centred input X__centred
    (range a/2) is X with amax a; the first conv's output (behind the folded offset Add) has its own range."""
    from edge_reid.spec import load_spec

    model_path, market = tiny
    report = calibrate_model(model_path, market, tmp_path / "out", CalibrationSettings(images=12, pool_size=30, budget=OPEN_BUDGET))
    assert report.layers["int8"] == 3  # conv1 (folded input), conv2 (centred r1), dwconv
    _, scales = read_tensorrt_table(report.outputs["tensorrt_table"])
    assert _table_matches_the_fp32_model(scales, model_path, report.outputs["model"]) == ["conv1", "conv2", "dwconv"]
    assert set(scales) == {"images", "c1", "r1", "c2", "r2", "res", "c3", "r3"}
    from edge_reid.calibration.calibrate import normalised_input_amax

    spec = load_spec(model_path)
    expected = max(abs((v * spec.pixel_scale - m) / s) for v in (0, 255) for m, s in zip(spec.mean, spec.std))
    assert normalised_input_amax(spec) == pytest.approx(expected)
    assert scales["images"] == pytest.approx(expected / 127, rel=1e-6)
    q_scales = _quantize_scales(report.outputs["model"])
    assert q_scales[centred_name("r1")] == pytest.approx(scales["r1"] / 2, rel=1e-6)  # [0, a]: amax a in the table, a/2 centred
    assert q_scales["res"] == pytest.approx(scales["res"], rel=1e-6)  # read uncentred: the quantizer's own range
    # The FP32 model runs in ONNX Runtime within these ranges (no entry is a stray or a tiny range).
    import onnxruntime as ort

    fp32 = onnx.load(str(model_path))
    fp32.graph.output.extend([onnx.ValueInfoProto(name=n) for n in ("c1", "r1", "res")])
    session = ort.InferenceSession(fp32.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(4, HEIGHT, WIDTH, 3)).astype(np.float32)
    x = ((pixels * spec.pixel_scale - np.array(spec.mean)) / np.array(spec.std)).transpose(0, 3, 1, 2).astype(np.float32)
    assert np.abs(x).max() <= 127 * scales["images"] * (1 + 1e-6)
    values = dict(zip(["output", "c1", "r1", "res"], session.run(None, {"images": x})))
    for name in ("c1", "r1", "res"):
        assert 0.2 < 127 * scales[name] / np.abs(values[name]).max() < 5, name


def test_calibrate_within_budget_on_first_try_skips_the_search(tiny, tmp_path):
    model_path, market = tiny
    settings = CalibrationSettings(images=12, pool_size=30, budget=OPEN_BUDGET)
    report = calibrate_model(model_path, market, tmp_path / "out", settings)
    assert report.met and report.layers["float_by_guard"] == [] and [s["split"] for s in report.guard_steps] == ["selection", "held-out"]
    assert report.sensitivity == [] and report.fp32 is not None and report.quantized is not None
    assert report.calibration["count"] == 12
    # The table's mAP drop is the guard's (from unrounded mAPs), not a difference of two rounded numbers.
    held_out = report.guard_steps[-1]["map_drop_points"]
    assert report.quantized["map_drop_points"] == held_out
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(report.table())
    assert f"(drop {held_out:+.2f})" in console.export_text()


def _quantize_scales(model_path: str) -> dict[str, float]:
    """Activation tensor -> scale of its QuantizeLinear in a written Q/DQ model."""
    graph = onnx.load(model_path).graph
    inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    return {node.input[0]: float(inits[node.input[1]]) for node in graph.node if node.op_type == "QuantizeLinear"}


def test_each_activation_range_gets_its_own_factor_in_the_model_and_the_table(tiny, tmp_path):
    """With several factors each quantizer's range is its own factor times the method's, in the written
    Q/DQ model and in the TensorRT table (the integer input excepted, tensors no quantizer reads
    unchanged); the all-INT8 model measured then is the guard's first step (not measured twice).
    With one factor every quantizer's range is that factor times the method's."""
    model_path, market = tiny
    searched = calibrate_model(model_path, market, tmp_path / "searched", CalibrationSettings(images=12, pool_size=30, budget=OPEN_BUDGET, range_scales=(0.5, 1.0, 3.0)))
    plain = calibrate_model(model_path, market, tmp_path / "plain", CalibrationSettings(images=12, pool_size=30, budget=OPEN_BUDGET, range_scales=(1.0,)))
    uniform = calibrate_model(model_path, market, tmp_path / "uniform", CalibrationSettings(images=12, pool_size=30, budget=OPEN_BUDGET, range_scales=(1.5,)))
    summary = searched.recipe["range_scale"]
    assert summary["factors_tried"] == [0.5, 1.0, 3.0] and sum(summary["chosen"].values()) == summary["quantizers"] == 2  # conv2 (centred), dwconv
    assert summary["summed_distance_alone"]["chosen"] <= min(v for k, v in summary["summed_distance_alone"].items() if k != "chosen")
    assert searched.guard_steps[0]["split"] == "selection" and searched.guard_steps[0]["mean_cosine"] == summary["selection_mean_cosine_all_int8"]
    assert "summed_distance_alone" not in plain.recipe["range_scale"] and set(plain.recipe["range_scale"]["chosen"]) == {"1"}
    factor = {(centred_name(q["tensor"]) if q["centred"] else q["tensor"]): q["factor"] for q in summary["per_quantizer"]}
    table_factor = {q["tensor"]: q["factor"] for q in summary["per_quantizer"]}  # the table names the FP32 tensors
    assert [q["centred"] for q in summary["per_quantizer"]] == [True, False]
    plain_scales = _quantize_scales(plain.outputs["model"])
    integer_input = [name for name in plain_scales if plain_scales[name] == 1.0]
    assert len(integer_input) == 1 and integer_input[0] not in factor  # pixel - 128: exact, nothing to choose
    for run, factors, table_factors in ((searched, factor, table_factor), (uniform, dict.fromkeys(factor, 1.5), dict.fromkeys(table_factor, 1.5))):
        scales = _quantize_scales(run.outputs["model"])
        assert scales[integer_input[0]] == 1.0
        assert set(factor) <= set(scales) and all(scales[n] == pytest.approx(factors[n] * plain_scales[n], rel=1e-5) for n in factor)
        _, table = read_tensorrt_table(run.outputs["tensorrt_table"])
        _, plain_table = read_tensorrt_table(plain.outputs["tensorrt_table"])
        assert set(table) == set(plain_table)
        for name in table:
            expected = table_factors.get(name, 1.0) * plain_table[name]
            assert table[name] == pytest.approx(expected, rel=1e-5), name


def test_without_centring_every_quantizer_is_symmetric_and_no_sub_is_written(tiny, tmp_path):
    model_path, market = tiny
    report = calibrate_model(
        model_path, market, tmp_path / "out",
        CalibrationSettings(images=12, pool_size=30, budget=OPEN_BUDGET, centre_activations=False, range_scales=(0.5, 1.0, 2.0)),
    )
    quantizers = report.recipe["range_scale"]["per_quantizer"]
    assert [(q["tensor"], q["centred"]) for q in quantizers] == [("r1", False), ("res", False)]
    graph = onnx.load(report.outputs["model"]).graph
    assert not any(node.op_type == "Sub" for node in graph.node) and "centred" not in report.recipe["transforms"]
    zero_points = {numpy_helper.to_array(i).item() for i in graph.initializer if i.name.endswith("zero_point") and i.dims == []}
    assert zero_points == {0}  # symmetric everywhere: what TensorRT takes


def test_fp16_output(tiny, tmp_path):
    pytest.importorskip("onnxconverter_common")
    model_path, market = tiny
    report = calibrate_model(model_path, market, tmp_path / "out", CalibrationSettings(precision="fp16", pool_size=30))
    model = onnx.load(report.outputs["model"])
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT  # float32 I/O kept
    assert any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer)
    assert report.agreement["mean_cosine"] > 0.999 and report.met


def test_calibrate_from_a_plain_crop_folder_with_a_pool_folder(tiny, tmp_path):
    # No query/gallery: no labelled check, the pool alone guards the model.
    model_path, market = tiny
    crops = market / "bounding_box_train"
    pool = tmp_path / "pool"
    pool.mkdir()
    rng = np.random.default_rng(11)
    for i in range(16):
        cv2.imwrite(str(pool / f"p{i:03d}.png"), _crop(rng, 40 + i % 5))
    settings = CalibrationSettings(images=10, pool=pool, budget=OPEN_BUDGET)
    report = calibrate_model(model_path, crops, tmp_path / "out", settings)
    assert report.fp32 is None and report.quantized is None and report.met
    assert report.pool["crops"] == 16 and report.pool["selection_crops"] == report.pool["heldout_crops"] == 8
    assert report.pool["split"] == "alternate single crops"  # 16 crops: too few for runs of 25
    assert report.pool["source"].startswith(f"folder {pool}")
    assert report.calibration["source"] == str(crops) and report.calibration["count"] == 10


def test_calibrate_rejects_bad_inputs_before_work(tiny, tmp_path):
    from edge_reid.errors import DataError, ModelError, OutputPathError

    model_path, market = tiny
    with pytest.raises(DataError, match="test split"):
        calibrate_model(model_path, market / "query", tmp_path / "out", CalibrationSettings(pool=market / "query"))
    with pytest.raises(ModelError, match="not found"):
        calibrate_model(tmp_path / "missing.onnx", market, tmp_path / "out")
    from onnx_builders import tiny_qdq_model

    with pytest.raises(ModelError, match="already quantized .*calibrate the FP32 model"):
        calibrate_model(tiny_qdq_model(tmp_path / "int8-qdq.onnx"), market, tmp_path / "out")
    with pytest.raises(DataError, match="crop pool .*no_pool not found"):
        calibrate_model(model_path, market, tmp_path / "out", CalibrationSettings(pool=tmp_path / "no_pool"))
    assert not (tmp_path / "out").exists()  # refused before the output folder is made
    # A plain folder of crops has no labelled split to take the pool from: the error names the option.
    with pytest.raises(DataError, match=r"bounding_box_train: no query/ and bounding_box_test/ .*--pool"):
        calibrate_model(model_path, market / "bounding_box_train", tmp_path / "out")
    # A folder without a usable crop is refused before the pool is read (here: a pool that does not exist).
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no usable person crop"):
        calibrate_model(model_path, empty, tmp_path / "out", CalibrationSettings(pool=tmp_path / "no_pool"))
    assert not (tmp_path / "out").exists()
    # A pool folder that exists but holds no image is found out only once the pool is read, after the
    # output folder was made: the folder made for this run is removed again, one that existed is kept.
    with pytest.raises(DataError):
        calibrate_model(model_path, market, tmp_path / "out", CalibrationSettings(pool=empty))
    assert not (tmp_path / "out").exists()
    kept = tmp_path / "existing_out"
    kept.mkdir()
    with pytest.raises(DataError):
        calibrate_model(model_path, market, kept, CalibrationSettings(pool=empty))
    assert kept.is_dir()
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputPathError, match=f"cannot write to output folder {blocker}"):
        calibrate_model(model_path, market, blocker)


def test_a_pool_that_is_the_calibration_folder_is_refused_before_work(tiny, tmp_path, capsys):
    """Held-out numbers measured on calibration crops prove nothing: --pool must not be the calibration folder
    (a subfolder of it holds other crops: calibration reads only the folder's own images)."""
    from edge_reid.calibration.pool import check_pool_source
    from edge_reid.cli import main
    from edge_reid.errors import DataError

    model_path, market = tiny
    train = market / "bounding_box_train"
    for data, pool in ((market, train), (train, train), (market, Path(f"{train}/../bounding_box_train"))):
        with pytest.raises(DataError, match="crop pool .* is the calibration folder .*bounding_box_train"):
            calibrate_model(model_path, data, tmp_path / "out", CalibrationSettings(pool=pool))
        assert not (tmp_path / "out").exists()  # refused before the output folder is made
    inner = train / "heldout"
    inner.mkdir()
    assert check_pool_source(inner, train) == inner  # other crops: taken
    assert main(["calibrate", "--model", str(model_path), "--data", str(market), "--pool", str(train), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edge-reid: error: crop pool") and str(train) in err[-1] and "calibration folder" in err[-1]
    assert not (tmp_path / "out").exists()


def test_an_output_path_taken_by_a_folder_is_refused_before_work_and_nothing_is_written(tiny, tmp_path, capsys):
    """A folder named like an output file ended a long run with an internal error after the table was written:
    each planned file is checked before any work, and the table is moved into place only with the model."""
    from edge_reid.cli import main
    from edge_reid.errors import OutputPathError

    model_path, market = tiny
    out = tmp_path / "out"
    names = {"model": "tiny_reid-int8-qdq.onnx", "spec": "tiny_reid-int8-qdq.json", "tensorrt table": "tiny_reid-int8.calib",
             "report": "tiny_reid-int8-report.json"}
    for role, name in names.items():
        out.mkdir()
        (out / name).mkdir()
        started = []
        with pytest.raises(OutputPathError, match=f"the {role} file path {out / name} is a folder"):
            calibrate_model(model_path, market, out, CalibrationSettings(images=12, pool_size=30), progress=lambda d, t: started.append(d) or (lambda n: None))
        assert started == [] and sorted(p.name for p in out.iterdir()) == [name]  # before any work; nothing written
        (out / name).rmdir()
        out.rmdir()
    out.mkdir()
    (out / names["model"]).mkdir()
    assert main(["calibrate", "--model", str(model_path), "--data", str(market), "--images", "12", "--pool-size", "30", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"edge-reid: error: the model file path {out / names['model']} is a folder; give a file name"
    assert not any("calibrating" in line for line in err)
    assert sorted(p.name for p in out.iterdir()) == [names["model"]]  # no .calib, no report: no partial set


def test_contiguity_grows_int8_regions_until_a_step_fails(osnet_path):
    from edge_reid.calibration.calibrate import _make_contiguous
    from edge_reid.calibration.qdq import int8_islands, layer_macs, layer_neighbours, pooled_input_layers, upgrade_opset

    model = upgrade_opset(onnx.load(str(osnet_path)))
    layers = quantizable_nodes(model)
    by_rule = pooled_input_layers(model, layers)
    guarded = [name for name in layers if name not in set(by_rule)]
    macs = layer_macs(model, layers)
    ranked = guarded[::-1]  # any ranking: the last blocks most sensitive per MAC
    region = [name for name in guarded if "conv2.0/conv2a" in name]  # pointwise + depthwise: a region of two
    forbidden = {name for name in guarded if name.startswith("/conv3/")}  # fidelity fails once any of these is INT8
    measured = []

    def measure(float_layers, split):
        int8 = set(guarded) - set(float_layers)
        measured.append((split, frozenset(int8)))
        return _fake(float_layers, split, lambda n: 0.90 if int8 & forbidden else 0.99)

    start = _fake(tuple(name for name in ranked if name not in region), "held-out", lambda n: 0.99)
    best = _make_contiguous(start, model, layers, by_rule, ranked, macs, measure, AccuracyBudget(), lambda m, ok: None)
    int8 = [name for name in guarded if name not in set(best.float_layers)]
    assert set(region) < set(int8) and not set(int8) & forbidden  # grew, and stopped before the failing step
    assert not int8_islands(model, layers, int8, macs, max_share=1.0)  # one connected region, no island started
    neighbours = layer_neighbours(model, layers)
    assert all(neighbours[name] & set(int8) for name in int8)
    assert measured[-1][1] & forbidden  # the last step tried failed and was not kept
    assert best.split == "held-out" and ("held-out", frozenset(int8)) in measured  # kept only after both splits


def test_an_unreadable_file_in_the_crop_pool_is_replaced_by_another_and_named(tmp_path):
    """The pool's files were chosen before reading: one empty file among 31 left 13 of 14 crops, refused as too few."""
    from edge_reid.calibration.pool import MIN_SPLIT_CROPS, load_pool
    from edge_reid.errors import DataError

    rng = np.random.default_rng(0)
    folder = tmp_path / "pool"
    folder.mkdir()
    for index in range(30):
        cv2.imwrite(str(folder / f"crop_{index:03d}.jpg"), rng.integers(0, 255, (64, 32, 3), np.uint8))
    (folder / "a_empty.jpg").write_bytes(b"")  # first by name: the spread takes it
    pool = load_pool(folder, None, 2 * MIN_SPLIT_CROPS)
    assert len(pool.crops) == 2 * MIN_SPLIT_CROPS
    assert [(s.path.name, s.reason) for s in pool.skipped] == [("a_empty.jpg", "empty file")]
    for path in list(folder.iterdir())[: 30 - 2 * MIN_SPLIT_CROPS + 2]:
        path.write_bytes(b"")
    with pytest.raises(DataError, match=r"only \d+ readable crops; need at least .*skipped \d+ files: "):
        load_pool(folder, None, 2 * MIN_SPLIT_CROPS)
