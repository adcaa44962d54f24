"""Activation statistics of a float model on calibration images, and MSE-optimal INT8 ranges from them.

One pass records each requested tensor's largest |value| (overall, and per
channel on request) and a fine histogram of |values|. From the histogram,
:func:`mse_optimal_amax` picks the symmetric INT8 range that minimises the
expected squared quantization error (rounding inside the range, clipping outside):
the per-tensor MSE calibration of e.g. NVIDIA's pytorch-quantization and
OpenVINO NNCF, here on a finer grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import onnx

#: Histogram bins for |values| on [0, largest]: fine enough that a bin is far below one INT8 step.
HISTOGRAM_BINS = 4096


@dataclass
class TensorStatistics:
    """What calibration saw of one tensor.

    Attributes:
        absmax: largest |value|.
        channel_absmax: (C,) largest |value| of each channel (axis 1), or None for rank < 2.
        histogram: (HISTOGRAM_BINS,) counts of |value| on [0, hist_range].
        hist_range: the histogram's upper edge (>= absmax).
    """

    absmax: float = 0.0
    channel_absmax: np.ndarray | None = None
    histogram: np.ndarray | None = field(default=None, repr=False)
    hist_range: float = 0.0


def _session_with_outputs(model: onnx.ModelProto, tensors: Sequence[str], threads: int | None):
    from edge_reid.calibration.sensitivity import ort_session_from_proto

    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {out.name for out in exposed.graph.output}
    for name in tensors:
        if name not in present:
            exposed.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return ort_session_from_proto(exposed, threads)


def run_collecting(
    model: onnx.ModelProto,
    images: np.ndarray,
    input_name: str,
    tensors: Sequence[str],
    visit: Callable[[dict[str, np.ndarray]], None],
    batch: int = 16,
    threads: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Run ``model`` over ``images`` in batches and call ``visit`` with the named intermediate tensors of each batch.

    Args:
        model: float (or Q/DQ) model.
        images: (N, 3, H, W) float32 preprocessed images.
        input_name: the image input.
        tensors: names of the tensors to return (any float tensor of the graph).
        visit: receives ``{name: array}`` per batch.
        batch: images per run (memory grows with the tensors exposed).
        threads: ONNX Runtime intra-op threads.
        on_batch: called with each batch's size (progress bars).
    """
    session = _session_with_outputs(model, tensors, threads)
    names = list(tensors)
    for start in range(0, len(images), batch):
        part = images[start : start + batch]
        values = session.run(names, {input_name: part})
        visit(dict(zip(names, values)))
        if on_batch is not None:
            on_batch(len(part))


def _fold_bins(histogram: np.ndarray, times: int) -> np.ndarray:
    """The histogram of the same values over a range ``2 ** times`` wider (pairs of bins summed)."""
    for _ in range(times):
        histogram = histogram.reshape(-1, 2).sum(axis=1)
        histogram = np.concatenate([histogram, np.zeros_like(histogram)])
    return histogram


def collect_statistics(
    model: onnx.ModelProto,
    images: np.ndarray,
    input_name: str,
    tensors: Sequence[str],
    per_channel: bool = False,
    batch: int = 16,
    threads: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, TensorStatistics]:
    """One pass over ``images``: largest |value| (and per channel, on request) and a histogram of |value|.

    The histogram covers [0, range] in :data:`HISTOGRAM_BINS` bins, ``range`` starting at
    the first batch's largest value and doubling (pairs of bins merged) whenever a later
    value exceeds it, as ONNX Runtime's and TensorRT's histogram calibrators do.

    Args:
        model: float model.
        images: (N, 3, H, W) float32 preprocessed calibration images.
        input_name: the image input.
        tensors: float tensors to describe.
        per_channel: also record each channel's largest |value| (axis 1).
        batch, threads: as :func:`run_collecting`.
        on_batch: called with each batch's size.

    Returns:
        tensor name -> :class:`TensorStatistics` (``histogram`` over [0, ``hist_range``]).
    """
    stats = {name: TensorStatistics() for name in tensors}

    def visit(values: dict[str, np.ndarray]) -> None:
        for name, value in values.items():
            entry = stats[name]
            peak = float(max(value.max(initial=0.0), -value.min(initial=0.0)))
            entry.absmax = max(entry.absmax, peak)
            if per_channel and value.ndim >= 2:
                flat = value.reshape(value.shape[0], value.shape[1], -1)
                channel = np.maximum(flat.max(axis=(0, 2)), -flat.min(axis=(0, 2)))
                entry.channel_absmax = channel if entry.channel_absmax is None else np.maximum(entry.channel_absmax, channel)
            if entry.histogram is None:
                entry.hist_range = max(peak, 1e-12)
                entry.histogram = np.zeros(HISTOGRAM_BINS, np.int64)
            if peak > entry.hist_range:
                times = int(np.ceil(np.log2(peak / entry.hist_range)))
                entry.histogram = _fold_bins(entry.histogram, times)
                entry.hist_range *= 2**times
            counts, _ = np.histogram(np.abs(value), bins=HISTOGRAM_BINS, range=(0.0, entry.hist_range))
            entry.histogram += counts

    run_collecting(model, images, input_name, tensors, visit, batch, threads, on_batch)
    return stats


def mse_optimal_amax(histogram: np.ndarray, hist_range: float, levels: int = 127, candidates: int = 400, absmax: float | None = None) -> float:
    """The symmetric range ``amax`` minimising the expected squared INT8 error of values with this histogram.

    Each bin's values are taken at the bin centre; the error of a value ``v`` under
    ``amax`` is ``(v - amax)^2`` beyond the range and the rounding error
    ``(v - step * round(v / step))^2`` inside it (``step = amax / levels``). Values
    exactly 0 (ReLU outputs) are exact and land in the first bin's left part; the
    first bin is counted at its centre like the rest, a slight overestimate.

    Args:
        histogram: counts of |value| on [0, hist_range] in equal bins.
        hist_range: the histogram's upper edge.
        levels: positive INT8 levels (127 for symmetric INT8).
        candidates: ranges tried, evenly spaced over (0, absmax].
        absmax: largest |value| seen (default: ``hist_range``); no range beyond it is tried.

    Returns:
        The best ``amax`` (``absmax`` when the histogram is empty).
    """
    histogram = np.asarray(histogram, np.float64)
    absmax = float(hist_range if absmax is None else absmax)
    if absmax <= 0 or histogram.sum() == 0:
        return absmax
    bins = len(histogram)
    centres = np.minimum((np.arange(bins) + 0.5) * (hist_range / bins), absmax)
    keep = histogram > 0
    centres, counts = centres[keep], histogram[keep]
    best, best_error = absmax, np.inf
    for amax in np.linspace(absmax / candidates, absmax, candidates):
        step = amax / levels
        inside = np.minimum(centres, amax)
        rounded = np.round(inside / step) * step
        error = float(np.sum(counts * (centres - rounded) ** 2))
        if error < best_error:
            best, best_error = float(amax), error
    return best
