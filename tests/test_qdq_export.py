"""The Q/DQ model ``calibrate`` writes is in the form TensorRT's ONNX parser accepts.

Walks the graph of the bundled OSNet's INT8 export: every DequantizeLinear reads an
8-bit tensor (no INT32 bias DQ), every zero point is an INT8 zero (symmetric),
activations are per tensor, weights per output channel (axis 0, one scale per
output channel), and every Conv/Gemm bias is a float initializer.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from edge_reid.calibration.qdq import QuantRecipe, calibrate_ranges, quantizable_nodes, quantize_qdq, upgrade_opset
from edge_reid.calibration.reader import preprocessed_batches
from edge_reid.data.images import read_images
from edge_reid.spec import load_spec


@pytest.fixture(scope="module")
def osnet_qdq(osnet_path, mot17_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qdq_export")
    float_path = tmp / "osnet_opset13.onnx"
    onnx.save(upgrade_opset(onnx.load(str(osnet_path))), str(float_path))
    spec = load_spec(osnet_path)
    crops, _, _ = read_images(sorted((mot17_dir / "bounding_box_train").glob("*.jpg"))[:8])
    recipe = QuantRecipe(method="minmax")
    ranges = calibrate_ranges(float_path, preprocessed_batches(crops, spec, 8), spec.input_name, recipe)
    out = quantize_qdq(float_path, tmp / "osnet-int8-qdq.onnx", ranges, recipe)
    return onnx.load(str(float_path)), onnx.load(str(out))


def _element_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {init.name: init.data_type for init in model.graph.initializer}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        types.setdefault(info.name, info.type.tensor_type.elem_type)
    return types


def test_every_dequantize_reads_int8_with_zero_point_zero(osnet_qdq):
    _, model = osnet_qdq
    types = _element_types(model)
    inits = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    dqs = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    qs = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert dqs and qs
    for node in dqs:
        assert types[node.input[0]] == TensorProto.INT8, f"{node.name} dequantizes a {TensorProto.DataType.Name(types[node.input[0]])} tensor"
    for node in dqs + qs:
        assert len(node.input) == 3, f"{node.name} has no explicit zero point"
        zero_point = inits[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any(), f"{node.name}: zero point {zero_point} is not INT8 zero"


def test_weights_per_output_channel_activations_per_tensor(osnet_qdq):
    float_model, model = osnet_qdq
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    quantized = [n for n in graph.node if n.op_type in ("Conv", "Gemm") and producer.get(n.input[0], n).op_type == "DequantizeLinear"]
    assert len(quantized) == len(quantizable_nodes(float_model)) == 188
    for node in quantized:
        act_dq, weight_dq = producer[node.input[0]], producer[node.input[1]]
        assert weight_dq.op_type == "DequantizeLinear", f"{node.name}: weight not quantized"
        weight = inits[weight_dq.input[0]]
        axis = next((a.i for a in weight_dq.attribute if a.name == "axis"), 1)
        assert axis == 0 and inits[weight_dq.input[1]].shape == (weight.shape[0],), f"{node.name}: weight scales not per output channel"
        assert inits[act_dq.input[1]].shape == (), f"{node.name}: activation scale not per tensor"
        if len(node.input) > 2 and node.input[2]:
            assert node.input[2] in inits and inits[node.input[2]].dtype == np.float32, f"{node.name}: bias is not a float initializer"


def test_biases_keep_their_float_values(osnet_qdq):
    float_model, model = osnet_qdq
    float_inits = {init.name: numpy_helper.to_array(init) for init in float_model.graph.initializer}
    inits = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    float_bias = {n.name: n.input[2] for n in float_model.graph.node if n.op_type in ("Conv", "Gemm") and len(n.input) > 2}
    checked = 0
    for node in model.graph.node:
        if node.name in float_bias:
            np.testing.assert_array_equal(inits[node.input[2]], float_inits[float_bias[node.name]])
            checked += 1
    assert checked == len(float_bias) > 100
