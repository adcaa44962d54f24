"""Float-exact graph rewrites that make a model easier to quantize without changing what it computes.

- :func:`fold_input_normalisation`: the first convolution absorbs the input's
  mean/std and reads ``pixel - 128`` (integers in [-128, 127], recovered inside the
  graph from the normalised input), which INT8 with scale 1 represents exactly: the
  input quantizes losslessly, and the model keeps its input and preprocessing.
- :func:`equalize_channels`: per-channel rescaling between a convolution and the
  convolutions that read its output through ReLU and pooling (positive scales
  commute with both). It covers cross-layer equalization (Nagel et al.,
  "Data-Free Quantization Through Weight Equalization and Bias Correction",
  ICCV 2019) at each 1x1 -> depthwise pair and SmoothQuant-style migration of
  activation outliers into the next layer's weights (Xiao et al., "SmoothQuant",
  ICML 2023), through ReLU and pooling.

Both return a new model whose outputs equal the original's up to float rounding.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edge_reid.errors import ModelError
from edge_reid.onnx_graph import node_attribute
from edge_reid.spec import ModelSpec

#: The folded model's input: ``pixel - 128``, so INT8 with scale 1 holds every pixel exactly.
FOLDED_INPUT_OFFSET = 128.0
#: Ops that commute with a positive per-channel scale and keep channels apart.
_SCALE_COMMUTING = ("Relu", "MaxPool", "AveragePool")


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    result: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            result.setdefault(name, []).append(node)
    return result


def _initializer(graph: onnx.GraphProto, name: str) -> onnx.TensorProto | None:
    return next((init for init in graph.initializer if init.name == name), None)


def _replace_initializer(graph: onnx.GraphProto, name: str, value: np.ndarray) -> None:
    init = _initializer(graph, name)
    init.CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))


def _private_weight(graph: onnx.GraphProto, node: onnx.NodeProto, index: int, users: Mapping[str, list]) -> str:
    """Name of input ``index`` of ``node`` as an initializer only this node uses (copied when shared)."""
    name = node.input[index]
    if len(users.get(name, [])) > 1:
        copy_name = f"{name}__{node.name}"
        graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(_initializer(graph, name)), copy_name))
        node.input[index] = copy_name
        users[copy_name] = [node]
        return copy_name
    return name


def _run_single_conv(conv: onnx.NodeProto, weight: np.ndarray, bias: np.ndarray | None, image: np.ndarray) -> np.ndarray:
    """Output of ``conv`` (its attributes, the given weight and bias) on one (1, C, H, W) image, with ONNX Runtime."""
    import onnxruntime as ort

    inputs = ["x", "w"] + (["b"] if bias is not None else [])
    node = helper.make_node("Conv", inputs, ["y"], **{a.name: helper.get_attribute_value(a) for a in conv.attribute})
    inits = [numpy_helper.from_array(weight.astype(np.float32), "w")]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias.astype(np.float32), "b"))
    graph = helper.make_graph(
        [node], "one_conv", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(image.shape))],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": image.astype(np.float32)})[0]


def fold_input_normalisation(model: onnx.ModelProto, spec: ModelSpec) -> tuple[onnx.ModelProto, str]:
    """Fold the input's scale, mean and std into the first convolution, behind an exact integer tensor.

    The model keeps its input and preprocessing (``x = (pixel * pixel_scale - mean) / std``).
    Inside, a per-channel Mul/Add turns ``x`` back into ``x' = pixel - 128``, integers in
    [-128, 127] that INT8 with scale 1 represents exactly (float rounding of the round trip is
    far below the 0.5 that would change the integer), and the first convolution reads ``x'``
    with its weights scaled: with ``x = a * x' + c`` (per channel ``a = pixel_scale / std``,
    ``c = (128 * pixel_scale - mean) / std``), ``conv(x) = conv_{W a}(x') + M`` where
    ``M = conv_W(c) + bias`` is computed once. Where the convolution pads its input, ``M``
    varies near the borders (zero padding of ``x`` is not zero padding of ``x'``) and is added
    as a constant (1, C_out, H', W') map; otherwise it is the new per-channel bias.

    Args:
        model: float model whose image input feeds exactly one Conv (group 1, constant weight).
        spec: its preprocessing spec (fixed height and width).

    Returns:
        (folded model, name of the integer-valued tensor the first conv now reads: give it
        the INT8 range 127, i.e. scale 1).

    Raises:
        ModelError: the input does not feed a single plain convolution.
    """
    model = copy.deepcopy(model)
    graph = model.graph
    users = _consumers(graph)
    readers = users.get(spec.input_name, [])
    if len(readers) != 1 or readers[0].op_type != "Conv" or _initializer(graph, readers[0].input[1]) is None:
        raise ModelError(f"cannot fold the input normalisation: input {spec.input_name!r} does not feed exactly one convolution")
    conv = readers[0]
    if node_attribute(conv, "group", 1) != 1:
        raise ModelError("cannot fold the input normalisation: the first convolution is grouped")
    weight = numpy_helper.to_array(_initializer(graph, conv.input[1])).astype(np.float64)
    bias = numpy_helper.to_array(_initializer(graph, conv.input[2])).astype(np.float64) if len(conv.input) > 2 and conv.input[2] else None
    std = np.asarray(spec.std, np.float64)
    mean = np.asarray(spec.mean, np.float64)
    gain = spec.pixel_scale / std
    offset = (FOLDED_INPUT_OFFSET * spec.pixel_scale - mean) / std
    constant_image = np.broadcast_to(offset[None, :, None, None], (1, 3, spec.height, spec.width)).astype(np.float32)
    bias_map = _run_single_conv(conv, weight, bias, constant_image).astype(np.float64)

    # x' = x * std / pixel_scale + (mean / pixel_scale - 128): back to integer pixels, centred.
    integer_input = f"{spec.input_name}__pixels_minus_128"
    unscale = f"{spec.input_name}__unnormalise_scale"
    unshift = f"{spec.input_name}__unnormalise_shift"
    graph.initializer.append(numpy_helper.from_array((std / spec.pixel_scale).reshape(1, 3, 1, 1).astype(np.float32), unscale))
    graph.initializer.append(numpy_helper.from_array((mean / spec.pixel_scale - FOLDED_INPUT_OFFSET).reshape(1, 3, 1, 1).astype(np.float32), unshift))
    scaled = f"{spec.input_name}__unnormalise_scaled"
    position = list(graph.node).index(conv)
    graph.node.insert(position, helper.make_node("Mul", [spec.input_name, unscale], [scaled], name=f"{conv.name}__unnormalise_mul"))
    graph.node.insert(position + 1, helper.make_node("Add", [scaled, unshift], [integer_input], name=f"{conv.name}__unnormalise_add"))
    conv.input[0] = integer_input

    weight_name = _private_weight(graph, conv, 1, users)
    _replace_initializer(graph, weight_name, weight * gain[None, :, None, None])
    per_channel = bias_map.mean(axis=(2, 3), keepdims=True)
    out_name = conv.output[0]
    if np.max(np.abs(bias_map - per_channel)) <= 1e-6 * max(1.0, float(np.max(np.abs(bias_map)))):
        bias_name = f"{conv.name}__folded_bias"
        graph.initializer.append(numpy_helper.from_array(per_channel.reshape(-1).astype(np.float32), bias_name))
        del conv.input[2:]
        conv.input.append(bias_name)
    else:
        del conv.input[2:]
        map_name = f"{conv.name}__folded_input_offset"
        graph.initializer.append(numpy_helper.from_array(bias_map.astype(np.float32), map_name))
        conv_out = f"{out_name}__before_offset"
        conv.output[0] = conv_out
        add = helper.make_node("Add", [conv_out, map_name], [out_name], name=f"{conv.name}__add_folded_input_offset")
        graph.node.insert(list(graph.node).index(conv) + 1, add)
    return model, integer_input


@dataclass
class EqualizationGroup:
    """One place where channels can be rescaled exactly.

    Attributes:
        producer: the Conv whose output channels are divided by the scales.
        path: ops between it and ``tensor`` (ReLU and pooling, which commute with positive
            per-channel scales, and the Add of a constant map that input folding puts after
            the first conv, whose map is rescaled too), in order.
        tensor: the rescaled activation, read only by ``consumers``.
        consumers: Convs reading ``tensor`` as input 0, whose input channels are multiplied by the scales.
        depthwise_pair: True when every consumer is depthwise and nothing but the tensor lies
            between (a 1x1 -> depthwise pair): equalized by cross-layer equalization of the
            weights; otherwise activation outliers migrate into the consumers' weights.
    """

    producer: str
    path: tuple[str, ...]
    tensor: str
    consumers: tuple[str, ...]
    depthwise_pair: bool = False


def _is_depthwise(node: onnx.NodeProto, weight_shape: tuple[int, ...]) -> bool:
    return int(node_attribute(node, "group", 1)) == weight_shape[0] and len(weight_shape) > 1 and weight_shape[1] == 1


def _constant_channel_map(graph: onnx.GraphProto, node: onnx.NodeProto, tensor: str, constants: set[str]) -> str | None:
    """For ``Add(tensor, C)`` with a constant ``C`` of rank 4 broadcast per channel: C's name, else None."""
    if node.op_type != "Add" or len(node.input) != 2 or tensor not in node.input:
        return None
    other = node.input[1] if node.input[0] == tensor else node.input[0]
    if other not in constants or other == tensor:
        return None
    return other if len(_initializer(graph, other).dims) == 4 else None


def equalization_groups(model: onnx.ModelProto) -> list[EqualizationGroup]:
    """Every Conv -> [Add constant map] -> [Relu] -> [MaxPool/AveragePool] -> Convs chain that can be rescaled exactly.

    The producer must have a constant weight; every tensor on the path must have a
    single reader; the final tensor must be read only by Convs with constant
    weights (as their data input) and must not be a graph output.
    """
    graph = model.graph
    users = _consumers(graph)
    constants = {init.name for init in graph.initializer}
    outputs = {out.name for out in graph.output}
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    groups = []
    for node in graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        tensor, path = node.output[0], []
        while tensor not in outputs:
            readers = users.get(tensor, [])
            if len(readers) != 1:
                break
            reader = readers[0]
            if reader.op_type in _SCALE_COMMUTING or (not path and _constant_channel_map(graph, reader, tensor, constants)):
                path.append(reader.name)
                tensor = reader.output[0]
                continue
            break
        readers = users.get(tensor, [])
        if tensor in outputs or not readers:
            continue
        if all(r.op_type == "Conv" and r.input[0] == tensor and len(r.input) > 1 and r.input[1] in constants for r in readers):
            depthwise = not path and all(_is_depthwise(r, shapes[r.input[1]]) for r in readers)
            groups.append(EqualizationGroup(node.name, tuple(path), tensor, tuple(r.name for r in readers), depthwise))
    return groups


def _input_channel_columns(weight: np.ndarray, group: int, channels: int) -> list[tuple[slice, int]]:
    """For each input channel c: (output-channel rows, weight column) holding its weights in a grouped conv."""
    per_group_in = weight.shape[1]
    per_group_out = weight.shape[0] // group
    result = []
    for c in range(channels):
        g = c // per_group_in
        result.append((slice(g * per_group_out, (g + 1) * per_group_out), c % per_group_in))
    return result


def cross_layer_scales(producer_weight: np.ndarray, depthwise_weight: np.ndarray) -> np.ndarray:
    """Cross-layer equalization scales of a conv -> depthwise conv pair (Nagel et al. 2019, eq. 9).

    ``s_i = sqrt(r1_i / r2_i)``, with ``r1_i`` the largest |weight| of the producer's output
    channel i and ``r2_i`` that of the depthwise filter i: dividing the producer's channel i
    by ``s_i`` and multiplying the depthwise filter i by it gives both the range
    ``sqrt(r1_i r2_i)``. Channels whose either range is 0 keep scale 1.

    Args:
        producer_weight: (C, ...) weights of the producer conv.
        depthwise_weight: (C, 1, kh, kw) weights of the depthwise conv.

    Returns:
        (C,) positive scales.
    """
    r1 = np.abs(producer_weight.reshape(producer_weight.shape[0], -1)).max(axis=1).astype(np.float64)
    r2 = np.abs(depthwise_weight.reshape(depthwise_weight.shape[0], -1)).max(axis=1).astype(np.float64)
    alive = (r1 > 0) & (r2 > 0)
    return np.where(alive, np.sqrt(np.where(alive, r1, 1.0) / np.where(alive, r2, 1.0)), 1.0)


def smoothing_scales(
    activation_absmax: np.ndarray, consumer_weights: list[tuple[np.ndarray, int]], alpha: float = 0.75, floor: float = 0.05
) -> np.ndarray:
    """SmoothQuant migration scales ``s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)`` (Xiao et al. 2023, eq. 4).

    Activation channel j is divided by ``s_j``, the consumers' input channel j multiplied by it.

    Args:
        activation_absmax: (C,) largest |value| of each channel on calibration data.
        consumer_weights: (weight, group) of each reading convolution; ``max|W_j|`` is over
            all of them. Depthwise readers are left out: each of their channels is its own
            per-channel quantization group, unchanged by the scale.
        alpha: migration strength (1 moves all of the activation's range into the weights).
        floor: no scale is below ``floor`` x the largest, so a channel that is (almost) dead on
            calibration data is amplified at most ``1 / floor`` times relative to the others
            instead of without bound where it does fire.

    Returns:
        (C,) positive scales, normalised so the widest channel after scaling keeps the
        activation's original range.
    """
    act = np.asarray(activation_absmax, np.float64)
    channels = len(act)
    weight_max = np.zeros(channels)
    for weight, group in consumer_weights:
        if group == channels and weight.shape[1] == 1:
            continue
        for c, (rows, column) in enumerate(_input_channel_columns(weight, group, channels)):
            weight_max[c] = max(weight_max[c], float(np.max(np.abs(weight[rows, column]))))
    if np.any(weight_max > 0):
        # A channel no consumer reads (all its weights 0) can take any scale: the largest.
        scales = np.where(weight_max > 0, act**alpha / np.where(weight_max > 0, weight_max, 1.0) ** (1.0 - alpha), 0.0)
        scales = np.where(weight_max > 0, scales, scales.max())
    else:
        scales = act**alpha
    if scales.max() <= 0:
        return np.ones(channels)
    scales = np.maximum(scales, floor * scales.max())
    return scales * float(np.max(act / scales)) / max(float(np.max(act)), 1e-30)


def equalize_channels(
    model: onnx.ModelProto,
    channel_absmax: Mapping[str, np.ndarray],
    alpha: float = 0.75,
    floor: float = 0.05,
) -> tuple[onnx.ModelProto, list[EqualizationGroup]]:
    """Rescale channels at every :func:`equalization_groups` place (exact in float).

    For scales ``s`` of activation tensor T: the producer's output channel c (weights, bias,
    and the constant map added after it, if any) is divided by ``s[c]``, which divides T's
    channel c by ``s[c]`` through ReLU and pooling; every reader's weights of input channel c
    are multiplied by ``s[c]``. The scales:

    - at a 1x1 -> depthwise pair, cross-layer equalization of the two weights
      (:func:`cross_layer_scales`, data-free);
    - elsewhere (through ReLU and pooling), SmoothQuant migration of activation outliers
      into the readers' weights (:func:`smoothing_scales`, ``alpha``, ``floor``).

    Args:
        model: float model (Conv weights and biases as initializers).
        channel_absmax: tensor name -> (C,) per-channel largest |value| on calibration data
            (see :func:`edge_reid.calibration.activations.collect_statistics`); migration
            groups whose tensor is missing are left alone.
        alpha: SmoothQuant's migration strength.
        floor: smallest scale relative to the largest (see :func:`smoothing_scales`).

    Returns:
        (rescaled model, the groups rescaled).
    """
    model = copy.deepcopy(model)
    graph = model.graph
    users = _consumers(graph)
    nodes = {node.name: node for node in graph.node}
    constants = {init.name for init in graph.initializer}
    done = []
    for group in equalization_groups(model):
        producer = nodes[group.producer]
        readers = [nodes[name] for name in group.consumers]
        weights = [numpy_helper.to_array(_initializer(graph, r.input[1])).astype(np.float64) for r in readers]
        groups = [int(node_attribute(r, "group", 1)) for r in readers]
        producer_weight = numpy_helper.to_array(_initializer(graph, producer.input[1])).astype(np.float64)
        if group.depthwise_pair:
            scales = cross_layer_scales(producer_weight, weights[0])
            for weight in weights[1:]:
                scales = np.sqrt(scales * cross_layer_scales(producer_weight, weight))  # several readers: geometric mean
        elif group.tensor in channel_absmax:
            scales = smoothing_scales(np.asarray(channel_absmax[group.tensor], np.float64), list(zip(weights, groups)), alpha, floor)
        else:
            continue
        name = _private_weight(graph, producer, 1, users)
        _replace_initializer(graph, name, producer_weight / scales[:, None, None, None])
        if len(producer.input) > 2 and producer.input[2]:
            name = _private_weight(graph, producer, 2, users)
            _replace_initializer(graph, name, numpy_helper.to_array(_initializer(graph, name)).astype(np.float64) / scales)
        tensor = producer.output[0]
        for step in group.path:
            node = nodes[step]
            offset = _constant_channel_map(graph, node, tensor, constants)
            if offset is not None:
                index = list(node.input).index(offset)
                name = _private_weight(graph, node, index, users)
                value = numpy_helper.to_array(_initializer(graph, name)).astype(np.float64)
                _replace_initializer(graph, name, value / scales.reshape(1, -1, 1, 1))
            tensor = node.output[0]
        for reader, weight, g in zip(readers, weights, groups):
            for c, (rows, column) in enumerate(_input_channel_columns(weight, g, len(scales))):
                weight[rows, column] *= scales[c]
            _replace_initializer(graph, _private_weight(graph, reader, 1, users), weight)
        done.append(group)
    return model, done
