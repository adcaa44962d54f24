"""Empirical bias correction of INT8 layers (Nagel et al., "Data-Free Quantization Through Weight
Equalization and Bias Correction", ICCV 2019, section 4.2; the per-layer "fast bias correction" of NNCF).

Quantizing a layer's weights and input shifts the mean of its outputs: weight rounding errors do
not average out over a 16-32-channel layer, and clipping large activations lowers their mean. For
each layer, on calibration images, with the layer's own float input:

    shift[c] = mean over images and positions of (conv(Q(x), Q(W)) - conv(x, W))[c]

and the INT8 layer's float bias becomes ``bias - shift``. Each layer's shift is measured with a
float input, so it depends on that layer alone and holds whichever other layers are INT8.
One pass: every layer's quantized twin runs beside it in one graph.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edge_reid.calibration.activations import run_collecting
from edge_reid.errors import ModelError

_TWIN = "__int8_twin"


def _with_quantized_twins(float_model: onnx.ModelProto, qdq_model: onnx.ModelProto, layers: Sequence[str]) -> tuple[onnx.ModelProto, dict[str, tuple[str, str]]]:
    """The float model plus, for each layer, a bias-free copy reading its Q/DQ input with its INT8 weight.

    Returns:
        (model, layer -> (its float output without bias, its twin's output): names to expose).
    """
    q_graph = qdq_model.graph
    producer = {out: node for node in q_graph.node for out in node.output}
    q_nodes = {node.name: node for node in q_graph.node}
    q_inits = {init.name: init for init in q_graph.initializer}
    model = copy.deepcopy(float_model)
    graph = model.graph
    existing = {init.name for init in graph.initializer}
    nodes = {node.name: node for node in graph.node}
    outputs: dict[str, tuple[str, str]] = {}
    for name in layers:
        q_node = q_nodes.get(name)
        act_dq = producer.get(q_node.input[0]) if q_node is not None else None
        weight_dq = producer.get(q_node.input[1]) if q_node is not None else None
        if act_dq is None or act_dq.op_type != "DequantizeLinear" or weight_dq is None or weight_dq.op_type != "DequantizeLinear":
            raise ModelError(f"layer {name!r} is not quantized in the Q/DQ model")
        act_q = producer[act_dq.input[0]]
        for init_name in [*act_q.input[1:], *act_dq.input[1:], *weight_dq.input]:
            if init_name and init_name not in existing and init_name in q_inits:
                graph.initializer.append(q_inits[init_name])
                existing.add(init_name)
        target = nodes[name]
        suffix = f"{_TWIN}_{len(outputs)}"
        q = helper.make_node("QuantizeLinear", [target.input[0], *act_q.input[1:]], [f"x_q{suffix}"], name=f"q{suffix}")
        dq = helper.make_node("DequantizeLinear", [f"x_q{suffix}", *act_dq.input[1:]], [f"x_dq{suffix}"], name=f"dq{suffix}")
        w_dq = helper.make_node("DequantizeLinear", list(weight_dq.input), [f"w_dq{suffix}"], name=f"wdq{suffix}", axis=0)
        twin = helper.make_node(target.op_type, [f"x_dq{suffix}", f"w_dq{suffix}"], [f"y{suffix}"], name=f"twin{suffix}")
        twin.attribute.extend(copy.deepcopy(target.attribute))
        plain = helper.make_node(target.op_type, [target.input[0], target.input[1]], [f"y_float{suffix}"], name=f"plain{suffix}")
        plain.attribute.extend(copy.deepcopy(target.attribute))
        graph.node.extend([q, dq, w_dq, twin, plain])
        outputs[name] = (f"y_float{suffix}", f"y{suffix}")
    return model, outputs


@dataclass
class LayerError:
    """What quantizing one layer alone does to its output, its input kept float.

    Attributes:
        mean_shift: (C_out,) float64 mean of quantized minus float output per channel
            (what bias correction removes).
        noise_power: mean squared output error per element, float64, after removing
            ``mean_shift`` when it is corrected, else before.
        signal_power: mean squared float output per element (bias included).
    """

    mean_shift: np.ndarray
    noise_power: float
    signal_power: float

    @property
    def noise_to_signal(self) -> float:
        """Output noise over output signal power (1 / SQNR), >= 0."""
        return self.noise_power / max(self.signal_power, 1e-30)


def measure_layer_errors(
    float_model: onnx.ModelProto,
    qdq_model: onnx.ModelProto,
    images: np.ndarray,
    input_name: str,
    layers: Sequence[str],
    bias_corrected: bool = True,
    threads: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, LayerError]:
    """Each layer's own quantization error, all layers in one pass over the images.

    Every layer runs beside its quantized twin (its Q/DQ input and INT8 weights from
    ``qdq_model``) on the same float input, so each error is that layer's alone,
    whatever else is INT8. The per-channel mean of the error is the bias shift
    (:func:`apply_bias_shifts`); the power of what remains over the power of the layer's
    output is its noise-to-signal ratio, the per-layer quantization sensitivity most
    post-training quantization tools report (ONNX Runtime's ``qdq_loss_debug``, NNCF's and
    TensorRT's layer-wise analyses, as SQNR).

    Args:
        float_model: the float model ``qdq_model`` was quantized from.
        qdq_model: Q/DQ model in which every layer of ``layers`` is quantized.
        images: (N, 3, H, W) float32 preprocessed calibration images.
        input_name: the image input.
        layers: Conv names (Gemm layers are not measured).
        bias_corrected: report the noise left after removing each channel's mean shift.
        threads: ONNX Runtime threads.
        on_batch: called with each batch's size.

    Returns:
        layer name -> :class:`LayerError`.

    Raises:
        ModelError: a layer is not quantized in ``qdq_model``.
    """
    model, outputs = _with_quantized_twins(float_model, qdq_model, layers)
    nodes = {node.name: node for node in float_model.graph.node}
    float_outputs = {name: nodes[name].output[0] for name in layers}
    sums = {name: 0.0 for name in layers}
    squares = {name: 0.0 for name in layers}
    signal = {name: 0.0 for name in layers}
    counts = {name: 0 for name in layers}

    def visit(values: dict[str, np.ndarray]) -> None:
        for name, (plain, twin) in outputs.items():
            difference = values[twin].astype(np.float64) - values[plain]
            sums[name] = sums[name] + difference.sum(axis=(0, 2, 3))
            squares[name] = squares[name] + (difference**2).sum(axis=(0, 2, 3))
            output = values[float_outputs[name]].astype(np.float64)
            signal[name] += float(np.sum(output**2))
            counts[name] += difference.shape[0] * difference.shape[2] * difference.shape[3]

    tensors = sorted({name for pair in outputs.values() for name in pair} | set(float_outputs.values()))
    run_collecting(model, images, input_name, tensors, visit, batch=16, threads=threads, on_batch=on_batch)
    result = {}
    for name in layers:
        count = max(counts[name], 1)
        mean = np.asarray(sums[name], np.float64) / count
        per_channel = np.asarray(squares[name], np.float64) / count
        if bias_corrected:
            per_channel = np.maximum(per_channel - mean**2, 0.0)
        result[name] = LayerError(mean, float(per_channel.mean()), signal[name] / (count * len(mean)))
    return result


def apply_bias_shifts(qdq_model: onnx.ModelProto, shifts: Mapping[str, np.ndarray], int8_layers: Sequence[str]) -> onnx.ModelProto:
    """``qdq_model`` with ``bias - shift`` for each INT8 layer (a zero bias added where a layer had none).

    Biases stay float initializers (TensorRT fuses them); each corrected layer gets its own copy.
    """
    model = copy.deepcopy(qdq_model)
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    nodes = {node.name: node for node in graph.node}
    for name in int8_layers:
        if name not in shifts or name not in nodes:
            continue
        node = nodes[name]
        shift = np.asarray(shifts[name], np.float64)
        if len(node.input) > 2 and node.input[2]:
            bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
        else:
            bias = np.zeros_like(shift)
        corrected = f"{name}__bias_corrected"
        graph.initializer.append(numpy_helper.from_array((bias - shift).astype(np.float32), corrected))
        if len(node.input) > 2:
            node.input[2] = corrected
        else:
            node.input.append(corrected)
    return model
