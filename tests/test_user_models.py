"""A user's own ReID ONNX model: exports edge-reid cannot read as it is are refused with what to do, never misread."""

import json
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_reid.cli import main
from edge_reid.errors import ModelError
from edge_reid.spec import load_spec, model_id, model_sha256
from onnx_builders import save_model


def _pooled_model(path, input_dims, axes=(2, 3)):
    """Input ``input_dims`` -> (N, 3) means over ``axes``: NCHW pools over (2, 3), NHWC over (1, 2)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_dims))
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    return save_model(path, [helper.make_node("ReduceMean", ["images"], ["output"], axes=list(axes), keepdims=0)], [x], [y])


def _two_output_model(path):
    """(logits (N, 6), features (N, 3)): a torchreid export in training mode puts the logits first."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 256, 128])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 6])
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3])
    return save_model(path, [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"]),
        helper.make_node("Concat", ["features", "features"], ["logits"], axis=1),
    ], [x], [logits, features])


def _external_weights_model(folder):
    """(N, 3, 256, 128) -> (N, 3) channel means x weights kept in ``ext.onnx.data`` beside ``ext.onnx``."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 256, 128])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    weights = numpy_helper.from_array(np.array([1.0, 2.0, 3.0], np.float32), "w")
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Mul", ["flat", "w"], ["output"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "ext", [x], [y], initializer=[weights]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = folder / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    assert (folder / "ext.onnx.data").is_file()
    (folder / "ext.json").write_text(json.dumps({"color_order": "RGB"}))
    return path


@pytest.mark.parametrize("dims", [["N", "H", "W", 3], ["N", 256, 128, 3], [1, "height", "width", 3]])
def test_a_channels_last_input_is_refused_saying_to_export_nchw(tmp_path, dims):
    """(N, H, W, 3) with dynamic H and W was read as NCHW: crops 3 pixels wide, 256 high, fed to a channels-last model."""
    model = _pooled_model(tmp_path / "nhwc.onnx", dims, axes=(1, 2))
    with pytest.raises(ModelError) as caught:
        load_spec(model, {"color_order": "RGB"})
    message = str(caught.value)
    assert message.startswith(f"{model}: model input 'images' has shape (")
    assert "channels-last (N, H, W, 3)" in message and "export the model with an NCHW input (N, 3, H, W)" in message


def test_a_channels_first_input_with_dynamic_height_and_width_still_runs(tmp_path):
    from edge_reid.embedder import Embedder

    model = _pooled_model(tmp_path / "nchw.onnx", ["N", 3, "H", "W"])
    (tmp_path / "nchw.json").write_text(json.dumps({"height": 64, "width": 32, "embedding_dim": 3}))
    spec = load_spec(model)
    assert (spec.height, spec.width, spec.embedding_dim) == (64, 32, 3)
    with Embedder(model, threads=1) as embedder:
        assert embedder.embed_crops([np.full((80, 40, 3), 200, np.uint8)]).shape == (1, 3)


@pytest.mark.parametrize("dims", [["N", 3, 8, 3], [1, 3, 3, 8], ["N", 3, 3, 3]])
def test_a_channels_first_input_3_pixels_high_or_wide_is_not_taken_for_channels_last(tmp_path, dims):
    model = _pooled_model(tmp_path / "small.onnx", dims)
    spec = load_spec(model, {"color_order": "RGB"})
    assert (spec.height, spec.width) == (dims[2], dims[3])


def test_several_outputs_without_output_name_are_refused_listing_them_and_the_sidecar_line(tmp_path):
    """The first output was taken silently: a torchreid training export's logits, embedded as 6-value 'features'."""
    model = _two_output_model(tmp_path / "two.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ModelError) as caught:
            load_spec(model)
    message = str(caught.value)
    assert message.startswith(f"{model}: the model has 2 outputs ('logits' (N, 6), 'features' (N, 3))")
    assert f'{tmp_path / "two.json"}: {{"output_name": "logits"}} or {{"output_name": "features"}}' in message
    assert load_spec(model, {"output_name": "features"}).embedding_dim == 3
    (tmp_path / "two.json").write_text(json.dumps({"output_name": "features"}))
    spec = load_spec(model)
    assert (spec.output_name, spec.embedding_dim) == ("features", 3)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_hand_made_spec_without_output_name_is_refused_by_the_backends_for_several_outputs(tmp_path, backend):
    """A ModelSpec built in Python without output_name (load_spec refuses such a model; a hand-made spec
    skipped it) made the backends take the first output, the logits, silently."""
    import dataclasses

    from edge_reid.backends import create_backend
    from edge_reid.spec import ModelSpec

    if backend == "openvino":
        pytest.importorskip("openvino", reason="openvino is not installed: pip install openvino")
    model = _two_output_model(tmp_path / "two.onnx")
    spec = dataclasses.replace(ModelSpec(), input_name="images", embedding_dim=3, output_name="")
    with pytest.raises(ModelError) as caught:
        create_backend(backend, model, spec, max_batch=4)
    message = str(caught.value)
    assert message.startswith(f"{model}: the model has 2 outputs ('logits', 'features')") and '{"output_name": "features"}' in message
    named = create_backend(backend, model, dataclasses.replace(spec, output_name="features"), max_batch=4)
    try:
        assert named.output_name == "features"
    finally:
        named.close()


def test_bundled_models_have_one_output(osnet_path, yolox_path):
    """The refusal of several outputs leaves the models edge-reid ships alone."""
    for path in (osnet_path, yolox_path):
        assert len(onnx.load(str(path), load_external_data=False).graph.output) == 1


def test_a_missing_external_weights_file_is_a_model_error_naming_it(tmp_path, osnet_path):
    """A model whose weights file (.data beside the .onnx) was not copied with it raised a bare FileNotFoundError
    (`edge-reid eval --model` exit 1, 'internal error ... please report it')."""
    model = _external_weights_model(tmp_path)
    spec = load_spec(model)
    model_id(model, spec)  # the weights are there: fine
    (tmp_path / "ext.onnx.data").unlink()
    for call in (lambda: load_spec(model), lambda: model_sha256(model), lambda: model_id(model, spec)):
        with pytest.raises(ModelError) as caught:
            call()
        message = str(caught.value)
        assert message.startswith(f"{model}: ") and f"missing: {tmp_path / 'ext.onnx.data'}" in message
        assert "keep ext.onnx.data beside ext.onnx" in message


def test_the_cli_refuses_these_models_in_one_line_with_exit_2(tmp_path, mot17_dir, capsys):
    missing_weights = _external_weights_model(tmp_path)
    (tmp_path / "ext.onnx.data").unlink()
    nhwc = _pooled_model(tmp_path / "nhwc.onnx", ["N", "H", "W", 3], axes=(1, 2))
    two = _two_output_model(tmp_path / "two.onnx")
    for model, expected in ((missing_weights, "ext.onnx.data"), (nhwc, "channels-last"), (two, '{"output_name": "features"}')):
        assert main(["eval", "--model", str(model), "--data", str(mot17_dir)]) == 2
        err = [line for line in capsys.readouterr().err.strip().splitlines() if "warning:" not in line]
        assert len(err) == 1 and err[0].startswith("edge-reid: error:") and expected in err[0], err


def test_openvino_refuses_a_graph_that_cannot_take_another_batch_as_a_model_error(tmp_path):
    """A dynamic-batch input whose graph fixes batch 1 inside (a Reshape to [1, 3]): OpenVINO's reshape to the
    chunk batch raised a raw RuntimeError ('Check ... failed at src/core/shape_inference/...')."""
    pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino; a dependency on x86-64)")
    from edge_reid.backends.openvino import STATIC_CHUNK, OpenVinoBackend

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 4, 2])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    shape = numpy_helper.from_array(np.array([1, 3], np.int64), "shape")
    model = save_model(tmp_path / "batch1.onnx", [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]), helper.make_node("Reshape", ["pooled", "shape"], ["output"]),
    ], [x], [y], [shape])
    spec = load_spec(model, {"height": 4, "width": 2})
    with pytest.raises(ModelError, match=rf"^{tmp_path / 'batch1.onnx'}: OpenVINO cannot reshape input 'images' to "
                                         rf"\[{STATIC_CHUNK}, 3, 4, 2\]: .*; batch {STATIC_CHUNK}: the graph likely fixes its batch inside.*dynamic_axes"):
        OpenVinoBackend(model, spec, max_batch=8, threads=1)
