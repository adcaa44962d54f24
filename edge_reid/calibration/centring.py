"""Centre non-negative activations before symmetric INT8: all 255 levels instead of 128.

TensorRT's INT8 is symmetric (zero point 0), so a tensor that is never negative (a
ReLU output, a pool of one, a sum of gated ReLU streams) uses only the levels 0..127
of the grid: half the resolution is spent on values that never occur. An affine
(zero-point) quantizer avoids that, and a symmetric one can do the same when the
graph subtracts a constant first: a convolution that reads ``x - c`` instead of ``x``
computes the same output once ``c`` times the sum of each output channel's weights is
added to its bias (exact in float for a convolution without padding, where every
output sees its whole kernel). With ``x`` quantized over [0, a] and ``c = a / 2``,
``x - c`` lies in [-a/2, a/2]: symmetric INT8 of range a/2 has step a/254, half the
step a/127 of quantizing ``x`` itself, a quarter of the rounding noise power, and 0
(every ReLU zero) lands exactly on level -127.

This is the zero-point folding of asymmetric activation quantization (Jacob et al.,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018, eq. 7: the zero point's contribution is a per-channel constant
that is precomputed into the bias), written as graph ops that a symmetric-only
runtime executes: one ``Sub`` per tensor, the constant folded into each reader's bias.
"""

from __future__ import annotations

import copy
from typing import Collection, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edge_reid.onnx_graph import drop_unused, node_attribute, used_names

#: Ops whose output is >= 0 whatever their input.
_NONNEGATIVE_OUTPUT = ("Relu", "Sigmoid", "Softplus", "Abs")
#: Ops whose output is >= 0 when their data input is (the other inputs are shapes or axes).
_NONNEGATIVE_IF_DATA = (
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity",
)
#: Ops whose output is >= 0 when every input is.
_NONNEGATIVE_IF_ALL = ("Mul", "Add", "Concat", "Max", "Min", "Div")
#: A centred tensor's symmetric INT8 levels on each side of zero: [0, a] maps onto -127..127.
CENTRED_LEVELS = 127


def nonnegative_tensors(model: onnx.ModelProto) -> set[str]:
    """Tensors that are >= 0 for every input, by the ops that make them (not by data).

    Args:
        model: ONNX model (nodes in topological order, as the ONNX spec requires).

    Returns:
        Names of the node outputs and initializers that can never be negative.
    """
    graph = model.graph
    result = {init.name for init in graph.initializer if np.all(numpy_helper.to_array(init) >= 0)}
    for node in graph.node:
        if node.op_type in _NONNEGATIVE_OUTPUT:
            nonnegative = True
        elif node.op_type in _NONNEGATIVE_IF_DATA:
            nonnegative = node.input[0] in result
        elif node.op_type in _NONNEGATIVE_IF_ALL:
            nonnegative = all(name in result for name in node.input if name)
        else:
            nonnegative = False
        if nonnegative:
            result.update(node.output)
    return result


def _unpadded_conv(node: onnx.NodeProto) -> bool:
    pads = node_attribute(node, "pads", None)
    auto_pad = node_attribute(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    return node.op_type == "Conv" and auto_pad in ("NOTSET", "VALID") and not (pads and any(pads))


def centrable_inputs(model: onnx.ModelProto, layers: Collection[str]) -> dict[str, list[str]]:
    """Non-negative tensors that convolutions without padding among ``layers`` read, with those readers.

    Args:
        model: float model (Conv weights as initializers).
        layers: names of the convolutions that may read a centred tensor (the INT8 candidates).

    Returns:
        tensor name -> names of the ``layers`` that read it as their data input and can be
        centred (no padding, constant weight), in graph order.
    """
    nonnegative = nonnegative_tensors(model)
    constants = {init.name for init in model.graph.initializer}
    wanted = set(layers)
    readers: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.name in wanted and _unpadded_conv(node) and node.input[0] in nonnegative and node.input[1] in constants:
            readers.setdefault(node.input[0], []).append(node.name)
    return readers


def centred_name(tensor: str) -> str:
    """Name of the centred copy of ``tensor`` (what its centred readers read)."""
    return f"{tensor}__centred"


def centre_inputs(
    model: onnx.ModelProto, top: Mapping[str, float], readers: Mapping[str, Collection[str]]
) -> tuple[onnx.ModelProto, dict[str, float]]:
    """Make ``readers`` read ``tensor - top/2`` and add the difference to their biases (exact in float).

    Args:
        model: float model.
        top: tensor name -> the top ``a`` of its INT8 range [0, a] (e.g. MSE-optimal with
            254 steps: :func:`edge_reid.calibration.activations.mse_optimal_amax` with
            ``levels=254``); tensors with ``a <= 0`` are left alone.
        readers: tensor name -> convolutions (no padding, constant weight) to rewire, from
            :func:`centrable_inputs`.

    Returns:
        (new model, centred tensor name -> its symmetric INT8 range ``a / 2``, i.e. scale
        ``a / 254``, with 0 on level -127).
    """
    model = copy.deepcopy(model)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    nodes = {node.name: node for node in graph.node}
    producers = {out: index for index, node in enumerate(graph.node) for out in node.output}
    ranges: dict[str, float] = {}
    inserts: list[tuple[int, onnx.NodeProto]] = []
    for tensor, names in readers.items():
        a = float(top.get(tensor, 0.0))
        if a <= 0 or not names:
            continue
        offset = np.float32(a / 2)
        centred = centred_name(tensor)
        constant = f"{tensor}__centre"
        graph.initializer.append(numpy_helper.from_array(np.array(offset, np.float32), constant))
        inserts.append((producers.get(tensor, -1) + 1, helper.make_node("Sub", [tensor, constant], [centred], name=f"{tensor}__centre_sub")))
        for name in names:
            conv = nodes[name]
            weight = numpy_helper.to_array(initializers[conv.input[1]]).astype(np.float64)
            bias = numpy_helper.to_array(initializers[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 and conv.input[2] else 0.0
            bias_name = f"{name}__centred_bias"
            # conv(x) = conv(x - c) + c * sum of each output channel's weights (no padding: every window whole).
            new_bias = bias + float(offset) * weight.reshape(weight.shape[0], -1).sum(axis=1)
            graph.initializer.append(numpy_helper.from_array(new_bias.astype(np.float32), bias_name))
            del conv.input[2:]
            conv.input[0] = centred
            conv.input.append(bias_name)
        ranges[centred] = float(offset)
    for position, node in sorted(inserts, key=lambda item: -item[0]):
        graph.node.insert(position, node)
    drop_unused(graph)  # the biases replaced above
    return model, ranges


def uncentre_float_readers(model: onnx.ModelProto) -> int:
    """Undo the centring for convolutions that read a centred tensor in float (exact in float).

    A layer kept float gains nothing from reading ``x - c``; giving it ``x`` and its bias
    back spares the runtime the ``Sub`` wherever no INT8 layer reads the centred tensor.
    Centred readers are recognised by :func:`centre_inputs`'s names; INT8 readers (which
    read the centred tensor through QuantizeLinear) keep it. Modifies ``model`` in place.

    Returns:
        How many convolutions read the uncentred tensor again.
    """
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    subs = [node for node in graph.node if node.op_type == "Sub" and node.name.endswith("__centre_sub")]
    restored = 0
    for sub in subs:
        offset = float(numpy_helper.to_array(initializers[sub.input[1]]))
        for node in graph.node:
            if node.op_type != "Conv" or node.input[0] != sub.output[0] or node.input[1] not in initializers:
                continue
            weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float64)
            bias = initializers[node.input[2]]
            value = numpy_helper.to_array(bias).astype(np.float64) - offset * weight.reshape(weight.shape[0], -1).sum(axis=1)
            bias.CopyFrom(numpy_helper.from_array(value.astype(np.float32), bias.name))
            node.input[0] = sub.input[0]
            restored += 1
    used = used_names(graph)
    for sub in subs:
        if sub.output[0] not in used:
            graph.node.remove(sub)
    drop_unused(graph)  # the removed Subs' constants
    return restored
