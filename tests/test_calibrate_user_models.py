"""``edge-reid calibrate`` on a user's own ReID export: several outputs (features and a classifier's
logits), a fixed batch dimension."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_reid.calibration.calibrate import CalibrationSettings, calibrate_model
from edge_reid.errors import DataError
from edge_reid.cli import main
from edge_reid.embedder import Embedder
from edge_reid.spec import load_spec
from test_calibration import OPEN_BUDGET, _crop, tiny_market, tiny_reid_model


def with_logits(path: Path, logits_first: bool) -> Path:
    """The tiny ReID model (16-d features ``output``) with a 5-class classifier on the features as a
    second output ``logits``, listed first or second; the sidecar names the features."""
    model = onnx.load(str(tiny_reid_model(path)))
    graph = model.graph
    rng = np.random.default_rng(5)
    graph.initializer.extend([
        numpy_helper.from_array(rng.normal(size=(5, 16)).astype(np.float32), "w_cls"),
        numpy_helper.from_array(np.zeros(5, np.float32), "b_cls"),
    ])
    graph.node.append(helper.make_node("Gemm", ["output", "w_cls", "b_cls"], ["logits"], name="classifier", transB=1))
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 16]),
               helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])]
    del graph.output[:]
    graph.output.extend(outputs[::-1] if logits_first else outputs)
    onnx.save(model, str(path))
    path.with_suffix(".json").write_text(json.dumps({"output_name": "output"}))
    return path


def _features(model_path: Path, crops) -> np.ndarray:
    embedder = Embedder(model_path, spec=load_spec(model_path))
    try:
        return embedder.embed_crops(crops)
    finally:
        embedder.close()


@pytest.mark.parametrize("logits_first", [False, True], ids=["features_first", "logits_first"])
def test_fp16_of_a_model_with_a_classifier_output_keeps_exactly_the_features(tmp_path, logits_first):
    pytest.importorskip("onnxconverter_common")
    model_path = with_logits(tmp_path / "reid_cls.onnx", logits_first)
    market = tiny_market(tmp_path / "market")
    report = calibrate_model(model_path, market, tmp_path / "out", CalibrationSettings(precision="fp16", pool_size=30))
    model = onnx.load(report.outputs["model"])
    assert [output.name for output in model.graph.output] == ["output"]
    assert not any(node.name == "classifier" for node in model.graph.node)
    assert not {"w_cls", "b_cls"} & {init.name for init in model.graph.initializer}
    assert report.met and report.agreement["mean_cosine"] > 0.999
    crops = [_crop(np.random.default_rng(i), i) for i in range(4)]
    np.testing.assert_allclose(_features(Path(report.outputs["model"]), crops), _features(model_path, crops), atol=2e-2)


def test_int8_sidecar_keeps_the_output_name_so_the_model_reads_back_with_its_features(tmp_path):
    model_path = with_logits(tmp_path / "reid_cls.onnx", logits_first=True)
    market = tiny_market(tmp_path / "market")
    report = calibrate_model(model_path, market, tmp_path / "out", CalibrationSettings(images=12, pool_size=30, budget=OPEN_BUDGET))
    assert json.loads(Path(report.outputs["spec"]).read_text())["output_name"] == "output"
    spec = load_spec(report.outputs["model"])
    assert (spec.output_name, spec.embedding_dim, spec.input_name) == ("output", 16, "images")
    assert [output.name for output in onnx.load(report.outputs["model"]).graph.output] == ["output"]
    assert report.layers["quantizable"] == 4  # 3 convs + the embedding's fc, not the classifier


def test_fp16_conversion_failure_names_the_users_model(tmp_path, monkeypatch):
    pytest.importorskip("onnxconverter_common")
    from onnxconverter_common import float16

    from edge_reid.errors import ModelError

    model_path = tiny_reid_model(tmp_path / "mine.onnx")
    market = tiny_market(tmp_path / "market")

    def broken(*args, **kwargs):
        raise ValueError("unsupported op Foo")

    monkeypatch.setattr(float16, "convert_float_to_float16", broken)
    with pytest.raises(ModelError, match=rf"^{model_path}: FP16 conversion failed: unsupported op Foo"):
        calibrate_model(model_path, market, tmp_path / "out", CalibrationSettings(precision="fp16", pool_size=30))


def _fixed_batch(path: Path, batch: int) -> Path:
    model = onnx.load(str(tiny_reid_model(path)))
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = batch
    onnx.save(model, str(path))
    path.with_suffix(".json").write_text(json.dumps({"name": "fixed"}))
    return path


def test_int8_of_a_fixed_batch_model_is_refused_before_work_with_what_to_do(tmp_path, capsys):
    model_path = _fixed_batch(tmp_path / "fixed.onnx", 1)
    market = tiny_market(tmp_path / "market")
    out = tmp_path / "out"
    code = main(["calibrate", "--model", str(model_path), "--data", str(market), "--out", str(out), "--images", "12", "--pool-size", "30"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert str(model_path) in err and "batch is fixed at 1" in err and "dynamic batch axis" in err and "dynamic_axes" in err
    assert "Traceback" not in err and not out.exists()


def test_fp16_of_a_fixed_batch_model_still_works(tmp_path):
    pytest.importorskip("onnxconverter_common")
    model_path = _fixed_batch(tmp_path / "fixed.onnx", 1)
    market = tiny_market(tmp_path / "market")
    report = calibrate_model(model_path, market, tmp_path / "out", CalibrationSettings(precision="fp16", pool_size=30))
    assert report.met and onnx.load(report.outputs["model"]).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1



def test_cutting_to_one_output_keeps_the_weights_a_subgraph_reads():
    """An If body reading an outer weight: ``only_output`` dropped that weight (its reads were not looked for
    inside bodies) and the cut model was invalid."""
    import onnxruntime as ort

    from edge_reid.onnx_graph import only_output

    def value(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3])

    then_branch = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["t"])], "then", [], [value("t")])
    else_branch = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [], [value("e")])
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["features"], then_branch=then_branch, else_branch=else_branch),
         helper.make_node("Identity", ["features"], ["logits"])],
        "two", [value("x")], [value("logits"), value("features")],
        initializer=[numpy_helper.from_array(np.array(True), "cond"), numpy_helper.from_array(np.full(3, 2, np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    cut = only_output(model, "features", "two.onnx")
    assert [output.name for output in cut.graph.output] == ["features"] and {i.name for i in cut.graph.initializer} == {"cond", "w"}
    session = ort.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": np.ones((1, 3), np.float32)})[0], np.full((1, 3), 2, np.float32))


def test_cutting_to_one_output_drops_the_classifier_weights_an_old_export_lists_as_inputs(tmp_path):
    """Exports before ONNX IR 4 list every weight as a graph input too: a dropped weight left listed would be an
    input the cut model asks to be fed."""
    import onnxruntime as ort

    from edge_reid.onnx_graph import only_output

    model = onnx.load(str(with_logits(tmp_path / "reid_cls.onnx", logits_first=True)))
    graph = model.graph
    graph.input.extend(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)) for init in graph.initializer)
    cut = only_output(model, "output", tmp_path / "reid_cls.onnx")
    kept = {init.name for init in cut.graph.initializer}
    assert "w_cls" not in kept and [value.name for value in cut.graph.input] == ["images", *(i.name for i in graph.initializer if i.name in kept)]
    session = ort.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [value.name for value in session.get_inputs()] == ["images"]  # the weights are initializers: not fed


def test_the_report_lists_the_calibration_folders_other_files_and_subfolders(tmp_path):
    """Only unreadable images were listed: a notes file or a folder of crops per person (not searched) in
    bounding_box_train/ was passed over without a word in the report."""
    model_path = tiny_reid_model(tmp_path / "mine.onnx")
    market = tiny_market(tmp_path / "market")
    train = market / "bounding_box_train"
    (train / "notes.txt").write_text("where the crops came from")
    (train / "0042").mkdir()
    (train / "0042" / "0042_c1s1_000001_00.jpg").write_bytes((train / "0001_c1s1_000000_00.jpg").read_bytes())
    report = calibrate_model(model_path, market, tmp_path / "out", CalibrationSettings(images=12, pool_size=30, budget=OPEN_BUDGET))
    skipped = {Path(entry["path"]).name: entry["reason"] for entry in report.calibration["skipped"]}
    assert set(skipped) == {"notes.txt", "0042"} and "not searched" in skipped["0042"]


def test_no_readable_calibration_image_names_what_was_skipped_not_all_as_unreadable(tmp_path):
    """The folder's other files joined the skipped list, and the error counted them all as unreadable images."""
    model_path = tiny_reid_model(tmp_path / "mine.onnx")
    market = tiny_market(tmp_path / "market")
    train = market / "bounding_box_train"
    for image in train.iterdir():
        image.write_bytes(b"")
    (train / "notes.txt").write_text("where the crops came from")
    with pytest.raises(DataError, match=r"no readable calibration image \(skipped \d+ files: notes.txt \(not an image"):
        calibrate_model(model_path, market, tmp_path / "out", CalibrationSettings(images=12, pool_size=30, budget=OPEN_BUDGET))
