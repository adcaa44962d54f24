"""Each activation's INT8 range chosen by the embedding it produces, not by the tensor's own error.

The calibration method gives each activation tensor a range that minimises that tensor's own
quantization MSE on the calibration crops. What matters is the embedding: a clipped
activation is a systematic error that survives the global pooling which averages the
independent rounding noise away, and each tensor's clipping reaches the embedding through a
different part of the network. So each range is multiplied by the factor, of a few tried,
whose quantizer alone (the float model with only that tensor quantized) moves the
embeddings least, measured on the user's own crops. This is loss-aware range selection
(Nahshan et al., "Loss Aware Post-training Quantization", Machine Learning 110, 2021; the
per-tensor scale chosen by the network's output as in Liu et al., "PD-Quant: Post-Training
Quantization based on Prediction Difference Metric", CVPR 2023), one tensor at a time as
the guard's sensitivity is (:mod:`edge_reid.calibration.sensitivity`).

Every (quantizer, factor) variant is one branch of a single graph that computes the float
prefix once (:func:`edge_reid.calibration.sensitivity.add_variant`), one session per factor.
A centred quantizer (:mod:`edge_reid.calibration.centring`: ``x - a/2`` in symmetric INT8 of
range ``a/2``) is measured on the uncentred tensor as the same grid: scale ``a/254`` and zero
point -127, which maps [0, a] onto -127..127 exactly as the centred model does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Collection, Mapping, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from edge_reid.calibration.centring import CENTRED_LEVELS
from edge_reid.calibration.sensitivity import add_variant, variant_distances

#: Symmetric INT8 levels on each side of zero.
SYMMETRIC_LEVELS = 127


@dataclass(frozen=True)
class ActivationQuantizer:
    """One activation quantizer of the Q/DQ model: a tensor as some layers read it.

    Attributes:
        tensor: the float tensor quantized.
        readers: the layers (node names) that read it through this quantizer.
        amax: its range from the calibration method, before any factor: [-amax, amax] symmetric,
            or [0, amax] when centred; > 0.
        centred: True when the readers read ``tensor - amax/2`` (all 255 levels on a non-negative tensor).
    """

    tensor: str
    readers: tuple[str, ...]
    amax: float
    centred: bool

    def scale_and_zero_point(self, factor: float) -> tuple[float, int]:
        """The quantizer's INT8 scale and zero point on the uncentred tensor with its range times ``factor``."""
        if self.centred:
            return factor * self.amax / (2 * CENTRED_LEVELS), -CENTRED_LEVELS
        return factor * self.amax / SYMMETRIC_LEVELS, 0


def activation_quantizers(
    model: onnx.ModelProto,
    layers: Sequence[str],
    amax: Mapping[str, float],
    centred_amax: Mapping[str, float],
    centred_readers: Mapping[str, Collection[str]],
    exact: Collection[str] = (),
) -> list[ActivationQuantizer]:
    """The activation quantizers that the INT8 ``layers`` read through, in graph order.

    Args:
        model: the float model (before centring).
        layers: the layers that will be INT8 when nothing is kept float.
        amax: tensor -> symmetric range.
        centred_amax: tensor -> its [0, a] range, for the tensors some readers read centred.
        centred_readers: tensor -> the layers that read it centred (:func:`~edge_reid.calibration.centring.centrable_inputs`).
        exact: tensors whose quantization is exact (e.g. the folded integer input): left out, as
            are tensors whose range is 0 (zero on every calibration crop: no factor changes them).

    Raises:
        KeyError: a tensor has no range.
    """
    wanted = set(layers)
    order = {node.name: index for index, node in enumerate(model.graph.node)}
    reads = {node.name: node.input[0] for node in model.graph.node if node.name in wanted}
    grouped: dict[tuple[str, bool], list[str]] = {}
    for name in sorted(layers, key=lambda layer: order[layer]):
        tensor = reads[name]
        if tensor in exact:
            continue
        centred = name in centred_readers.get(tensor, ())
        grouped.setdefault((tensor, centred), []).append(name)
    quantizers = [
        ActivationQuantizer(tensor, tuple(readers), float(centred_amax[tensor] if centred else amax[tensor]), centred)
        for (tensor, centred), readers in grouped.items()
    ]
    return [quantizer for quantizer in quantizers if quantizer.amax > 0]


def range_variants_model(float_model: onnx.ModelProto, quantizers: Sequence[ActivationQuantizer], factor: float) -> tuple[onnx.ModelProto, list[str]]:
    """One graph: the float model's output, and for each quantizer the output with only that
    quantizer in place at its range times ``factor``.

    Returns:
        (the model; the name of each quantizer's variant output, in the order of ``quantizers``).

    Raises:
        ModelError: a quantizer's readers do not reach the model's output.
    """
    model = copy.deepcopy(float_model)
    nodes = list(float_model.graph.node)
    by_name = {node.name: node for node in nodes}
    outputs = []
    for number, quantizer in enumerate(quantizers):
        tag = f"__range_{number}"
        scale, zero_point = quantizer.scale_and_zero_point(factor)
        model.graph.initializer.extend([
            numpy_helper.from_array(np.array(scale, np.float32), f"scale{tag}"),
            numpy_helper.from_array(np.array(zero_point, np.int8), f"zero_point{tag}"),
        ])
        parameters = [f"scale{tag}", f"zero_point{tag}"]
        front = [
            onnx.helper.make_node("QuantizeLinear", [quantizer.tensor, *parameters], [f"x_q{tag}"], name=f"q{tag}"),
            onnx.helper.make_node("DequantizeLinear", [f"x_q{tag}", *parameters], [f"x_dq{tag}"], name=f"dq{tag}"),
        ]
        replaced = {}
        for name in quantizer.readers:
            reader = copy.deepcopy(by_name[name])
            reader.input[0] = f"x_dq{tag}"
            replaced[name] = reader
        outputs.append(add_variant(model, nodes, replaced, front, tag))
    return model, outputs


def range_distances(
    float_model: onnx.ModelProto,
    quantizers: Sequence[ActivationQuantizer],
    factors: Sequence[float],
    images: np.ndarray,
    input_name: str,
    on_batch: Callable[[int], None] | None = None,
    threads: int | None = None,
    batch: int = 8,
) -> np.ndarray:
    """(len(quantizers), len(factors)) mean cosine distance in [0, 2] between the float model's
    embeddings and those with only one quantizer in place at its range times one factor.

    Args:
        float_model: the float model the quantizers belong to (uncentred).
        quantizers: from :func:`activation_quantizers`.
        factors: range multipliers, each > 0.
        images: (N, 3, H, W) float32 preprocessed crops (N of 64 is plenty).
        input_name: the image input's name.
        on_batch: called with each batch's size, once per factor (progress bars).
        threads: ONNX Runtime intra-op threads.
        batch: images per run.

    Raises:
        ValueError: a factor is not > 0.
        ModelError: a quantizer's readers do not reach the model's output.
    """
    if any(not factor > 0 for factor in factors):
        raise ValueError(f"range factors must be > 0, got {list(factors)}")
    columns = []
    for factor in factors:
        model, outputs = range_variants_model(float_model, quantizers, factor)
        columns.append(variant_distances(model, outputs, images, input_name, on_batch, threads, batch))
    return np.stack(columns, axis=1) if columns else np.zeros((len(quantizers), 0))


def choose_factors(distances: np.ndarray, factors: Sequence[float]) -> list[float]:
    """For each quantizer (row of ``distances``), the factor of least distance; on a tie the one
    nearest 1 (the calibration method's own range), then the smaller."""
    preference = sorted(range(len(factors)), key=lambda k: (abs(np.log(factors[k])), factors[k]))
    # min() keeps the first of equal keys, so ties go to the earliest factor in ``preference``.
    return [float(factors[min(preference, key=lambda k: row[k])]) for row in np.asarray(distances)]
