"""Centring non-negative activations before symmetric INT8: exact in float, twice the resolution in INT8."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_reid.calibration.centring import (
    CENTRED_LEVELS,
    centrable_inputs,
    centre_inputs,
    centred_name,
    nonnegative_tensors,
    uncentre_float_readers,
)
from edge_reid.calibration.qdq import QuantRecipe, pooled_input_layers, quantizable_nodes, quantize_qdq, upgrade_opset
from edge_reid.calibration.reader import preprocess_all
from edge_reid.calibration.sensitivity import ort_session_from_proto
from edge_reid.data.images import read_images
from edge_reid.spec import load_spec


def _model(nodes, inits, outputs, channels: int = 4) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, 8, 8])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model


def test_nonnegative_tensors_follow_the_ops_not_the_data():
    inits = [
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array(-2.0, np.float32), "minus_two"),
    ]
    nodes = [
        helper.make_node("Relu", ["x"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pooled"], kernel_shape=[2, 2]),
        helper.make_node("Sigmoid", ["x"], ["gate"]),
        helper.make_node("Mul", ["pooled", "half"], ["scaled"]),
        helper.make_node("Mul", ["relu", "minus_two"], ["negated"]),
        helper.make_node("Mul", ["relu", "gate"], ["gated"]),
        helper.make_node("Add", ["gated", "relu"], ["summed"]),
        helper.make_node("Add", ["relu", "x"], ["mixed"]),
        helper.make_node("MaxPool", ["x"], ["pooled_signed"], kernel_shape=[2, 2]),
    ]
    found = nonnegative_tensors(_model(nodes, inits, ["scaled", "negated", "summed", "mixed", "pooled_signed"]))
    assert {"relu", "pooled", "gate", "scaled", "gated", "summed"} <= found
    assert not {"x", "negated", "mixed", "pooled_signed"} & found


def _relu_conv_model(pads: list[int], seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    kernel = 1 if not any(pads) else 3
    inits = [
        numpy_helper.from_array(rng.normal(size=(6, 4, kernel, kernel)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(size=6).astype(np.float32), "b"),
    ]
    nodes = [
        helper.make_node("Relu", ["x"], ["relu"], name="relu"),
        helper.make_node("Conv", ["relu", "w", "b"], ["out"], name="conv", kernel_shape=[kernel, kernel], pads=pads),
    ]
    return _model(nodes, inits, ["out"])


def test_padded_convolutions_and_layers_not_asked_for_are_not_centred():
    assert centrable_inputs(_relu_conv_model([1, 1, 1, 1]), ["conv"]) == {}  # zero padding of x - c is not x's
    assert centrable_inputs(_relu_conv_model([0, 0, 0, 0]), ["other"]) == {}
    assert centrable_inputs(_relu_conv_model([0, 0, 0, 0]), ["conv"]) == {"relu": ["conv"]}


def _quantized_output_error(model: onnx.ModelProto, amax: dict[str, float], values: np.ndarray, tmp_path, name: str) -> tuple[float, onnx.ModelProto]:
    float_path, qdq_path = tmp_path / f"{name}.onnx", tmp_path / f"{name}-qdq.onnx"
    onnx.save(model, str(float_path))
    quantize_qdq(float_path, qdq_path, amax, QuantRecipe())
    qdq = onnx.load(str(qdq_path))
    # Float weights: the error measured is the activation's alone.
    for node in qdq.graph.node:
        if node.op_type == "Conv":
            node.input[1] = "w"
    if not any(init.name == "w" for init in qdq.graph.initializer):
        qdq.graph.initializer.append(next(init for init in model.graph.initializer if init.name == "w"))
    exact = ort_session_from_proto(model).run(None, {"x": values})[0]
    rounded = ort_session_from_proto(qdq).run(None, {"x": values})[0]
    return float(np.mean((exact - rounded) ** 2)), qdq


def test_centred_input_is_exact_in_float_and_quarters_the_int8_noise(tmp_path):
    model = _relu_conv_model([0, 0, 0, 0])
    values = np.random.default_rng(1).normal(size=(8, 4, 8, 8)).astype(np.float32)
    top = float(np.maximum(values, 0).max())
    readers = centrable_inputs(model, ["conv"])
    centred, ranges = centre_inputs(model, {"relu": top}, readers)
    assert ranges == {centred_name("relu"): pytest.approx(top / 2)}
    exact = ort_session_from_proto(model).run(None, {"x": values})[0]
    assert np.max(np.abs(ort_session_from_proto(centred).run(None, {"x": values})[0] - exact)) < 1e-5

    plain_error, _ = _quantized_output_error(model, {"x": 8.0, "relu": top, "out": 50.0}, values, tmp_path, "plain")
    centred_error, qdq = _quantized_output_error(centred, {"x": 8.0, "relu": top, "out": 50.0, **ranges}, values, tmp_path, "centred")
    # Step a/254 instead of a/127: a quarter of the rounding noise power (ReLU zeros stay exact in both).
    assert 0.15 < centred_error / plain_error < 0.35

    # In the written Q/DQ model, every ReLU zero lands exactly on level -127 and the largest value on +127.
    quantize = next(n for n in qdq.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == centred_name("relu"))
    exposed = onnx.ModelProto()
    exposed.CopyFrom(qdq)
    exposed.graph.output.append(helper.make_tensor_value_info(quantize.output[0], TensorProto.INT8, None))
    levels = ort_session_from_proto(exposed).run([quantize.output[0]], {"x": values})[0]
    zeros = np.maximum(values, 0) == 0
    assert np.all(levels[zeros] == -CENTRED_LEVELS) and levels.max() == CENTRED_LEVELS


def test_centring_osnet_is_exact_in_float_and_leaves_depthwise_and_pooled_inputs(osnet_path, mot17_dir):
    model = upgrade_opset(onnx.load(str(osnet_path)))
    spec = load_spec(osnet_path)
    crops, _, _ = read_images(sorted((mot17_dir / "bounding_box_train").glob("*.jpg"))[::40][:8])
    images = preprocess_all(crops, spec)
    layers = quantizable_nodes(model)
    guarded = [name for name in layers if name not in set(pooled_input_layers(model, layers))]
    readers = centrable_inputs(model, guarded)
    centred, ranges = centre_inputs(model, {tensor: 4.0 for tensor in readers}, readers)
    onnx.checker.check_model(centred)
    rewired = {name for names in readers.values() for name in names}
    convs = {node.name: node for node in centred.graph.node}
    depthwise = [n for n in centred.graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert depthwise and not rewired & {n.name for n in depthwise}  # padded: never centred
    assert all(convs[name].input[0].endswith("__centred") for name in rewired)
    assert sum(n.op_type == "Sub" for n in centred.graph.node) == len(ranges) == len(readers)
    before = ort_session_from_proto(model, 2).run(None, {"images": images})[0]
    after = ort_session_from_proto(centred, 2).run(None, {"images": images})[0]
    before /= np.linalg.norm(before, axis=1, keepdims=True)
    after /= np.linalg.norm(after, axis=1, keepdims=True)
    assert np.max(np.abs(before - after)) < 1e-4


def test_float_readers_get_the_uncentred_tensor_back(tmp_path):
    rng = np.random.default_rng(5)
    inits = [
        numpy_helper.from_array(rng.normal(size=(6, 4, 1, 1)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=6).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(size=(6, 4, 1, 1)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(size=6).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Relu", ["x"], ["relu"], name="relu"),
        helper.make_node("Conv", ["relu", "w1", "b1"], ["a"], name="int8_conv", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["relu", "w2", "b2"], ["b"], name="float_conv", kernel_shape=[1, 1]),
    ]
    model = _model(nodes, inits, ["a", "b"])
    centred, ranges = centre_inputs(model, {"relu": 4.0}, centrable_inputs(model, ["int8_conv", "float_conv"]))
    path = tmp_path / "centred.onnx"
    onnx.save(centred, str(path))
    qdq = onnx.load(str(quantize_qdq(path, tmp_path / "qdq.onnx", {"x": 4.0, "relu": 4.0, **ranges}, QuantRecipe(), keep_float=["float_conv"])))
    values = np.random.default_rng(6).normal(size=(2, 4, 8, 8)).astype(np.float32)
    before = ort_session_from_proto(qdq).run(None, {"x": values})
    assert uncentre_float_readers(qdq) == 1
    nodes = {node.name: node for node in qdq.graph.node}
    assert nodes["float_conv"].input[0] == "relu" and nodes["int8_conv"].input[0] != "relu"
    after = ort_session_from_proto(qdq).run(None, {"x": values})
    assert np.max(np.abs(before[1] - after[1])) < 1e-5 and np.array_equal(before[0], after[0])
    # No INT8 reader: the Sub goes too.
    all_float = onnx.load(str(quantize_qdq(path, tmp_path / "float.onnx", {"x": 4.0, **ranges}, QuantRecipe(), keep_float=["int8_conv", "float_conv"])))
    assert uncentre_float_readers(all_float) == 2
    assert not any(node.op_type == "Sub" for node in all_float.graph.node)
    assert np.max(np.abs(ort_session_from_proto(all_float).run(None, {"x": values})[1] - before[1])) < 1e-5
