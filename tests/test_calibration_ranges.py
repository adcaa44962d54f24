"""Per-quantizer activation ranges chosen by the embedding (edge_reid.calibration.range_choice)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edge_reid.calibration.centring import centrable_inputs, centre_inputs, centred_name
from edge_reid.calibration.qdq import QuantRecipe, calibrate_ranges, upgrade_opset
from edge_reid.calibration.range_choice import (
    ActivationQuantizer,
    activation_quantizers,
    choose_factors,
    range_distances,
    range_variants_model,
)
from edge_reid.calibration.sensitivity import embed_array, ort_session_from_proto
from test_calibration import _float_batches, tiny_reid_model

GUARDED = ["conv1", "conv2", "dwconv"]  # the tiny model's layers but the pooled-input fc


def _with_qdq(source: onnx.ModelProto, tensor: str, readers, scale: float) -> onnx.ModelProto:
    """``source`` with ``readers`` reading ``tensor`` through one explicit symmetric QuantizeLinear/DequantizeLinear."""
    model = onnx.ModelProto()
    model.CopyFrom(source)
    model.graph.initializer.extend([
        numpy_helper.from_array(np.array(scale, np.float32), "test_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "test_zero"),
    ])
    nodes = list(model.graph.node)
    for node in nodes:
        if node.name in readers:
            node.input[0] = "test_dq"
    after = next((k + 1 for k, node in enumerate(nodes) if tensor in node.output), 0)
    pair = [
        helper.make_node("QuantizeLinear", [tensor, "test_scale", "test_zero"], ["test_q"]),
        helper.make_node("DequantizeLinear", ["test_q", "test_scale", "test_zero"], ["test_dq"]),
    ]
    del model.graph.node[:]
    model.graph.node.extend(nodes[:after] + pair + nodes[after:])
    return model


def _distance(model: onnx.ModelProto, reference: np.ndarray, images: np.ndarray) -> float:
    embeddings = embed_array(ort_session_from_proto(model), "images", images)
    return float(np.mean(1.0 - np.sum(embeddings * reference, axis=1)))


@pytest.fixture()
def tiny_float(tmp_path):
    model = upgrade_opset(onnx.load(str(tiny_reid_model(tmp_path / "tiny.onnx"))))
    path = tmp_path / "f13.onnx"
    onnx.save(model, str(path))
    amax = calibrate_ranges(path, [_float_batches()], "images", QuantRecipe(method="minmax"))
    return model, amax


def test_quantizers_group_readers_and_leave_out_exact_tensors(tiny_float):
    model, amax = tiny_float
    readers = centrable_inputs(model, GUARDED)
    assert readers == {"r1": ["conv2"]}  # the 1x1 conv reads a ReLU output; the depthwise conv is padded
    top = {"r1": 0.8 * amax["r1"]}
    quantizers = activation_quantizers(model, GUARDED, amax, top, readers)
    assert quantizers == [
        ActivationQuantizer("images", ("conv1",), amax["images"], False),
        ActivationQuantizer("r1", ("conv2",), top["r1"], True),
        ActivationQuantizer("res", ("dwconv",), amax["res"], False),
    ]
    # Without centring r1 is symmetric; an exact (integer) tensor has no quantizer to choose.
    plain = activation_quantizers(model, GUARDED, amax, {}, {}, exact=["images"])
    assert [(q.tensor, q.centred) for q in plain] == [("r1", False), ("res", False)]
    # A tensor that was zero on every calibration crop (range 0) has no factor to choose.
    assert [q.tensor for q in activation_quantizers(model, GUARDED, {**amax, "res": 0.0}, {}, {})] == ["images", "r1"]


def test_one_graph_matches_each_quantizer_alone_and_the_centred_model(tiny_float):
    """Every (quantizer, factor) branch of the combined graph gives what a separate model with that
    one quantizer gives; the centred quantizer (zero point -127 on the uncentred tensor) gives what
    the centred model (x - a/2, bias folded) with symmetric INT8 of range a/2 gives."""
    model, amax = tiny_float
    readers = centrable_inputs(model, GUARDED)
    top = {"r1": amax["r1"]}
    quantizers = activation_quantizers(model, GUARDED, amax, top, readers)
    factors = (0.5, 1.0, 1.5)
    images = _float_batches(16, seed=5)
    distances = range_distances(model, quantizers, factors, images, "images", batch=5)
    assert distances.shape == (3, 3)
    reference = embed_array(ort_session_from_proto(model), "images", images)
    for row, quantizer in enumerate(quantizers):
        for column, factor in enumerate(factors):
            if quantizer.centred:
                centred, ranges = centre_inputs(model, {quantizer.tensor: factor * quantizer.amax}, readers)
                name = centred_name(quantizer.tensor)
                alone = _with_qdq(centred, name, quantizer.readers, ranges[name] / 127)
            else:
                alone = _with_qdq(model, quantizer.tensor, quantizer.readers, factor * quantizer.amax / 127)
            assert distances[row, column] == pytest.approx(_distance(alone, reference, images), rel=1e-3, abs=1e-7)
    assert np.all(distances > 0) and len({round(float(d), 9) for d in distances.ravel()}) > 3  # the factors change something
    combined, outputs = range_variants_model(model, quantizers, 1.0)
    assert len(outputs) == 3 and len(combined.graph.output) == 4
    assert sum(n.name.startswith("conv1") for n in combined.graph.node) == 2  # conv1 is repeated only for its own quantizer


def test_choose_factors_least_distance_ties_go_to_the_method_range():
    factors = (0.8, 1.0, 1.2, 1.5)
    distances = np.array([
        [3.0, 2.0, 1.0, 4.0],  # 1.2 least
        [1.0, 1.0, 1.0, 1.0],  # all tied: 1.0, the method's own range
        [0.5, 0.9, 0.5, 0.7],  # 0.8 and 1.2 tied: 1.2 is nearer 1 in ratio (|log 1.2| < |log 0.8|)
        [0.1, 0.2, 0.3, 0.4],  # 0.8 least
    ])
    assert choose_factors(distances, factors) == [1.2, 1.0, 1.2, 0.8]
    assert choose_factors(np.zeros((0, 4)), factors) == []


def test_range_factors_must_be_positive(tiny_float):
    model, amax = tiny_float
    quantizers = activation_quantizers(model, GUARDED, amax, {}, {})
    with pytest.raises(ValueError, match="> 0"):
        range_distances(model, quantizers, (1.0, 0.0), _float_batches(4), "images")
