"""GPTQ rounding of INT8 convolution weights (Frantar et al., "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers", ICLR 2023).

Round-to-nearest quantizes each weight alone. GPTQ quantizes a layer's input dimensions one
at a time and spreads each rounding error over the not-yet-quantized weights, weighted by the
inverse Hessian ``H = E[x x^T]`` of the layer's inputs on calibration data, so the layer's
*outputs* move as little as possible. The scales stay those of the Q/DQ model (per output
channel, symmetric); only the rounding changes. Settings as the paper: 1% damping of the
diagonal, columns in order of decreasing Hessian diagonal ("act-order").

A convolution's inputs are its im2col patches; grouped and depthwise convolutions have one
Hessian per group.

When bias correction follows (Nagel et al., ICCV 2019: each layer's bias absorbs the mean
output shift ``dW E[x]`` its quantization causes), only the part of the error that varies
with the input is left, ``E[(dW (x - E[x]))^2]``: the Hessian is then the inputs' covariance
``E[(x - E[x])(x - E[x])^T]``, and GPTQ spends no precision on the mean, which bias
correction removes exactly. This matters for non-negative inputs (ReLU outputs), whose mean
is large, and it makes the rounding independent of a constant shift of the input
(:mod:`edge_reid.calibration.centring`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view
from onnx import numpy_helper

from edge_reid.calibration.activations import run_collecting
from edge_reid.onnx_graph import node_attribute

#: Damping added to the Hessian's diagonal, as a fraction of its mean (the paper's 1%).
DAMPING = 0.01


def conv_patches(x: np.ndarray, node: onnx.NodeProto, kernel: tuple[int, int], group: int) -> np.ndarray:
    """(groups, positions, C_in/group * kh * kw) float64 im2col patches of a batch (N, C, H, W) for ``node``
    (its ``pads``, or ``auto_pad`` as the ONNX Conv operator defines it, strides and dilations)."""
    strides = list(node_attribute(node, "strides", [1, 1]))
    dilations = list(node_attribute(node, "dilations", [1, 1]))
    # A dilated kernel spans (k - 1) * d + 1 pixels and reads every d-th of them (DeepLab's atrous convolutions).
    span = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations))
    pads = _explicit_pads(node, x.shape[2:], span, strides)
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    windows = sliding_window_view(x, span, axis=(2, 3))[:, :, :: strides[0], :: strides[1], :: dilations[0], :: dilations[1]]  # N, C, OH, OW, kh, kw
    n, c, oh, ow, kh, kw = windows.shape
    per_group = c // group
    windows = windows.reshape(n, group, per_group, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    return windows.reshape(group, n * oh * ow, per_group * kh * kw).astype(np.float64)


def _explicit_pads(node: onnx.NodeProto, size: Sequence[int], span: Sequence[int], strides: Sequence[int]) -> list[int]:
    """``[top, left, bottom, right]`` pixels of zeros ``node`` pads its (H, W) input with: its ``pads``, or what
    ``auto_pad`` asks (ONNX Conv: ``SAME_UPPER`` / ``SAME_LOWER`` give ceil(size / stride) outputs, the odd pixel at
    the end / the start; ``VALID`` none), as exported from TensorFlow and Keras models."""
    auto_pad = node_attribute(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad in ("NOTSET", ""):
        return list(node_attribute(node, "pads", [0, 0, 0, 0]))
    if auto_pad == "VALID":
        return [0, 0, 0, 0]
    begin, end = [], []
    for length, reach, stride in zip(size, span, strides):
        total = max(0, (-(-length // stride) - 1) * stride + reach - length)
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return [begin[0], begin[1], end[0], end[1]]


def gptq_round(weight: np.ndarray, scale: np.ndarray, hessian: np.ndarray, levels: int = 127) -> np.ndarray:
    """GPTQ integer weights for one group.

    Args:
        weight: (C_out, K) float weights of the group's output channels.
        scale: (C_out,) per-output-channel scales (symmetric, zero point 0).
        hessian: (K, K) ``sum x x^T`` of the group's input patches (or their scatter about the mean).
        levels: largest |integer| (127 for symmetric INT8).

    Returns:
        (C_out, K) int8 weights.
    """
    weight = weight.astype(np.float64).copy()
    hessian = hessian.astype(np.float64).copy()
    dead = np.diag(hessian) == 0
    hessian[dead, dead] = 1.0
    weight[:, dead] = 0.0
    order = np.argsort(-np.diag(hessian), kind="stable")
    weight, hessian = weight[:, order], hessian[np.ix_(order, order)]
    hessian[np.diag_indices_from(hessian)] += DAMPING * np.mean(np.diag(hessian))
    inverse = np.linalg.inv(hessian)
    upper = np.linalg.cholesky(inverse).T  # upper Cholesky factor of H^-1
    scale = scale.astype(np.float64)[:, None]
    quantized = np.zeros_like(weight)
    for i in range(weight.shape[1]):
        column = weight[:, i : i + 1]
        q = np.clip(np.round(column / scale), -levels, levels)
        quantized[:, i : i + 1] = q
        error = (column - q * scale) / upper[i, i]
        weight[:, i + 1 :] -= error @ upper[i : i + 1, i + 1 :]
    result = np.empty_like(quantized)
    result[:, order] = quantized
    return result.astype(np.int8)


def gptq_weights(
    float_model: onnx.ModelProto,
    qdq_model: onnx.ModelProto,
    images: np.ndarray,
    input_name: str,
    input_amax: dict[str, float],
    layers: Sequence[str],
    threads: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    bias_corrected: bool = False,
) -> dict[str, np.ndarray]:
    """GPTQ integer weights for each Conv in ``layers``, with the scales of ``qdq_model``.

    Args:
        float_model: the float model ``qdq_model`` was quantized from (inputs are collected from it).
        qdq_model: Q/DQ model in which every layer of ``layers`` is quantized.
        images: (N, 3, H, W) float32 preprocessed calibration images (~100-200 suffice).
        input_name: the image input.
        input_amax: tensor name -> the layer input's INT8 range (inputs are rounded as the model will).
        layers: Conv names (others are skipped).
        threads: ONNX Runtime threads.
        on_batch: called with each batch's size.
        bias_corrected: the biases will be corrected for the mean output shift afterwards:
            use the inputs' covariance as the Hessian instead of their second moment.

    Returns:
        layer name -> int8 weight of the layer's shape.
    """
    q_graph = qdq_model.graph
    producer = {out: node for node in q_graph.node for out in node.output}
    q_inits = {init.name: init for init in q_graph.initializer}
    nodes = {node.name: node for node in float_model.graph.node}
    f_inits = {init.name: init for init in float_model.graph.initializer}
    convs = [name for name in layers if nodes[name].op_type == "Conv"]
    hessians: dict[str, np.ndarray | None] = {name: None for name in convs}
    sums: dict[str, np.ndarray | None] = {name: None for name in convs}
    counts: dict[str, int] = {name: 0 for name in convs}
    shapes = {name: numpy_helper.to_array(f_inits[nodes[name].input[1]]).shape for name in convs}

    def visit(values: dict[str, np.ndarray]) -> None:
        for name in convs:
            node = nodes[name]
            x = values[node.input[0]]
            amax = input_amax.get(node.input[0])
            if amax:
                step = amax / 127.0
                x = np.clip(np.round(x / step), -128, 127) * step
            shape = shapes[name]
            group = int(node_attribute(node, "group", 1))
            patches = conv_patches(x, node, shape[2:], group)
            update = np.einsum("gpk,gpl->gkl", patches, patches)
            hessians[name] = update if hessians[name] is None else hessians[name] + update
            total = patches.sum(axis=1)
            sums[name] = total if sums[name] is None else sums[name] + total
            counts[name] += patches.shape[1]

    tensors = sorted({nodes[name].input[0] for name in convs})
    run_collecting(float_model, images, input_name, tensors, visit, batch=8, threads=threads, on_batch=on_batch)

    result = {}
    for name in convs:
        node = nodes[name]
        hessian = hessians[name]
        if bias_corrected:
            mean = sums[name] / max(counts[name], 1)
            hessian = hessian - counts[name] * np.einsum("gk,gl->gkl", mean, mean)
        weight_dq = producer[[n for n in q_graph.node if n.name == name][0].input[1]]
        scale = numpy_helper.to_array(q_inits[weight_dq.input[1]]).astype(np.float64).reshape(-1)
        weight = numpy_helper.to_array(f_inits[node.input[1]]).astype(np.float64)
        out_channels = weight.shape[0]
        group = int(node_attribute(node, "group", 1))
        per_group_out = out_channels // group
        flat = weight.reshape(out_channels, -1)
        integers = np.empty(flat.shape, np.int8)
        for g in range(group):
            rows = slice(g * per_group_out, (g + 1) * per_group_out)
            integers[rows] = gptq_round(flat[rows], scale[rows], hessian[g])
        result[name] = integers.reshape(weight.shape)
    return result


def apply_gptq_weights(qdq_model: onnx.ModelProto, integers: dict[str, np.ndarray]) -> onnx.ModelProto:
    """``qdq_model`` with the INT8 weight initializers of the given layers replaced (scales unchanged)."""
    graph = qdq_model.graph
    producer = {out: node for node in graph.node for out in node.output}
    inits = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.name in integers:
            weight_dq = producer.get(node.input[1])
            if weight_dq is None or weight_dq.op_type != "DequantizeLinear":
                continue
            init = inits[weight_dq.input[0]]
            init.CopyFrom(numpy_helper.from_array(integers[node.name].astype(np.int8), init.name))
    return qdq_model
