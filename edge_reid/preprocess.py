"""Crop preprocessing straight into the backend's batch buffer.

Each person crop is resized with OpenCV (bilinear) into a preallocated
(max_batch, H, W, 3) uint8 staging array; one Numba kernel then does the
colour swap, scaling, mean/std normalisation and HWC -> CHW transpose for the
whole batch and writes float32 into the (N, 3, H, W) input buffer. Nothing is
allocated per frame once the preprocessor exists.

The kernel is deliberately single-threaded (``nogil`` so callers may thread
it): it is memory-bound (about 3 ms for 32 crops of 256x128 on one core), and a
``parallel=True`` version under Numba's default OpenMP layer was 4-5x *slower*
on a busy 2-core machine (threads spinning at the barrier, competing with ONNX
Runtime's own threads); see docs/benchmarks.md.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numba
import numpy as np

from edge_reid.spec import ModelSpec


@numba.njit(cache=True, fastmath=True, nogil=True)
def _normalize_transpose(staged: np.ndarray, n: int, channel_source: np.ndarray, gain: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
    """out[i, c, y, x] = staged[i, y, x, channel_source[c]] * gain[c] + bias[c] for i < n.

    Reads each staged pixel once and writes the three channel planes in one pass.
    """
    height, width = staged.shape[1], staged.shape[2]
    c0, c1, c2 = channel_source[0], channel_source[1], channel_source[2]
    g0, g1, g2 = gain[0], gain[1], gain[2]
    b0, b1, b2 = bias[0], bias[1], bias[2]
    for i in range(n):
        for y in range(height):
            for x in range(width):
                out[i, 0, y, x] = staged[i, y, x, c0] * g0 + b0
                out[i, 1, y, x] = staged[i, y, x, c1] * g1 + b1
                out[i, 2, y, x] = staged[i, y, x, c2] * g2 + b2


class CropPreprocessor:
    """Turns BGR person crops into the model's normalised (N, 3, H, W) float32 input.

    For a pixel p in 0..255 of model channel c: ``(p * pixel_scale - mean[c]) / std[c]``,
    with channels reordered to the spec's ``color_order`` (frames are BGR, OpenCV's order).

    Args:
        spec: the model's spec (size, colour order, scale, mean, std).
        max_batch: rows of the staging array; calls with more crops than this
            are processed in chunks by the caller (:class:`edge_reid.embedder.Embedder`).
    """

    def __init__(self, spec: ModelSpec, max_batch: int = 32) -> None:
        self.spec = spec
        self.max_batch = int(max_batch)
        self._staged = np.zeros((self.max_batch, spec.height, spec.width, 3), np.uint8)
        # Frames are BGR: model channel c reads staged channel 2 - c when the model wants RGB.
        self._channel_source = np.array([2, 1, 0] if spec.color_order == "RGB" else [0, 1, 2], np.int64)
        std = np.asarray(spec.std, np.float32)
        self._gain = (np.float32(spec.pixel_scale) / std).astype(np.float32)
        self._bias = (-np.asarray(spec.mean, np.float32) / std).astype(np.float32)

    def _check_out(self, count: int, out: np.ndarray) -> None:
        spec = self.spec
        if count > self.max_batch:
            raise ValueError(f"{count} crops exceed max_batch={self.max_batch}; split them into sub-batches")
        if out.dtype != np.float32 or out.shape[1:] != (3, spec.height, spec.width) or out.shape[0] < count:
            raise ValueError(f"out must be (>={count}, 3, {spec.height}, {spec.width}) float32, got {out.shape} {out.dtype}")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")

    def _stage(self, index: int, image: np.ndarray) -> None:
        cv2.resize(image, (self.spec.width, self.spec.height), dst=self._staged[index], interpolation=cv2.INTER_LINEAR)

    def _finish(self, count: int, out: np.ndarray) -> None:
        if count:
            _normalize_transpose(self._staged, count, self._channel_source, self._gain, self._bias, out)

    def write_boxes(self, frame: np.ndarray, boxes: np.ndarray, out: np.ndarray) -> None:
        """Crop ``boxes`` from ``frame`` and write them, preprocessed, into ``out[:N]``.

        Args:
            frame: (H, W, 3) uint8 BGR image.
            boxes: (N, 4) x1, y1, x2, y2 in pixels, already clipped to the frame
                (see :func:`edge_reid.detections.sanitize_boxes`), N <= max_batch.
            out: (>= N, 3, h, w) float32 C-contiguous buffer (h, w from the spec).

        Raises:
            ValueError: a box is empty after rounding, N > max_batch, or ``out`` has the wrong shape.
        """
        self._check_out(len(boxes), out)
        frame_h, frame_w = frame.shape[:2]
        for index, (x1, y1, x2, y2) in enumerate(boxes):
            left, top = max(0, int(x1)), max(0, int(y1))
            right, bottom = min(frame_w, int(np.ceil(x2))), min(frame_h, int(np.ceil(y2)))
            if right <= left or bottom <= top:
                raise ValueError(f"box {index} ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}) is empty inside a {frame_w}x{frame_h} frame")
            self._stage(index, frame[top:bottom, left:right])
        self._finish(len(boxes), out)

    def write_crops(self, crops: Sequence[np.ndarray], out: np.ndarray) -> None:
        """Write already-cut BGR crops, preprocessed, into ``out[:N]``.

        Args:
            crops: N images, each (h, w, 3) uint8 BGR of any size > 0.
            out: (>= N, 3, H, W) float32 C-contiguous buffer.

        Raises:
            ValueError: a crop is empty or not (h, w, 3) uint8; N > max_batch; bad ``out``.
        """
        self._check_out(len(crops), out)
        for index, crop in enumerate(crops):
            if crop is None or crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8 or crop.size == 0:
                shape = None if crop is None else (crop.shape, crop.dtype)
                raise ValueError(f"crop {index} must be a non-empty (h, w, 3) uint8 BGR image, got {shape}")
            self._stage(index, crop)
        self._finish(len(crops), out)


def reference_preprocess(crop: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Plain numpy/OpenCV preprocessing of one BGR crop: the reference for tests and benchmarks.

    Returns:
        (3, H, W) float32.
    """
    resized = cv2.resize(crop, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
    if spec.color_order == "RGB":
        resized = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
    scaled = resized.astype(np.float32) * np.float32(spec.pixel_scale)
    normalised = (scaled - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))
