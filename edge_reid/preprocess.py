"""Crop preprocessing straight into the backend's batch buffer.

Each person crop is resized with OpenCV (bilinear) into a preallocated
(max_batch, H, W, 3) uint8 staging array; one Numba kernel then does the
colour swap, scaling, mean/std normalisation and HWC -> CHW transpose for the
whole batch and writes float32 into the (N, 3, H, W) input buffer. Nothing is
allocated per frame once the preprocessor exists.

The kernel itself is single-threaded and ``nogil``: a ``parallel=True`` version
under Numba's default OpenMP layer was several times *slower* on a busy 2-core machine
(threads spinning at the barrier, competing with ONNX Runtime's own threads;
docs/benchmarks.md, "Preprocessing alone"). Parallelism is one level up instead: with ``threads > 1``
the batch is cut into contiguous slices of crops and each thread resizes its
slice and runs the kernel on it (OpenCV and the kernel both release the GIL).
Nothing waits at a barrier but the caller, once per batch.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import cv2
import numpy as np

from edge_reid.data.images import check_bgr_image
from edge_reid.jit import cached_njit
from edge_reid.spec import ModelSpec


def box_pixels(box: Sequence[float], frame_height: int, frame_width: int) -> tuple[int, int, int, int]:
    """The pixels a box covers: ``(left, top, right, bottom)``, right and bottom exclusive.

    Every pixel the box touches is in: left and top are rounded down, right and
    bottom up, then clipped to the frame. This is the one rule for turning a box
    into a crop everywhere in edge-reid (``run``, ``gallery enroll``, crop pools),
    so a person enrolled from a photo and the same person seen by ``run`` are
    cropped to the same pixels.

    Args:
        box: x1, y1, x2, y2 in pixels (floats).
        frame_height, frame_width: the frame's size in pixels.

    Raises:
        ValueError: the box covers no pixel of the frame, or has a NaN/Inf coordinate.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(map(math.isfinite, (x1, y1, x2, y2))):
        raise ValueError(f"box ({x1}, {y1}, {x2}, {y2}) has a NaN or infinite coordinate")
    left, top = max(0, math.floor(x1)), max(0, math.floor(y1))
    right, bottom = min(frame_width, math.ceil(x2)), min(frame_height, math.ceil(y2))
    if right <= left or bottom <= top:
        raise ValueError(f"box ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}) is empty inside a {frame_width}x{frame_height} frame")
    return left, top, right, bottom


def crop_box(frame: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The crop of ``frame`` (H, W, 3) under ``box`` (x1, y1, x2, y2 pixels), as a view (see :func:`box_pixels`).

    Raises:
        ValueError: the box covers no pixel of the frame.
    """
    left, top, right, bottom = box_pixels(box, frame.shape[0], frame.shape[1])
    return frame[top:bottom, left:right]


@cached_njit(fastmath=True, nogil=True)
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


#: Fewest crops a preprocessing thread is given: handing work to a thread costs about as much
#: as preprocessing one crop, so a thread needs several crops to gain.
MIN_CROPS_PER_THREAD = 4


class CropPreprocessor:
    """Turns BGR person crops into the model's normalised (N, 3, H, W) float32 input.

    For a pixel p in 0..255 of model channel c: ``(p * pixel_scale - mean[c]) / std[c]``,
    with channels reordered to the spec's ``color_order`` (frames are BGR, OpenCV's order).

    One preprocessor serves one caller at a time (it owns one staging array).

    Args:
        spec: the model's spec (size, colour order, scale, mean, std).
        max_batch: rows of the staging array; calls with more crops than this
            are processed in chunks by the caller (:class:`edge_reid.embedder.Embedder`).
        threads: CPU threads per batch, >= 1 (the caller's thread plus ``threads - 1``
            pool threads, started on first use). Each thread gets at least
            :data:`MIN_CROPS_PER_THREAD` crops, so small batches stay on the caller's thread.
            The output is identical for any thread count.

    Raises:
        ValueError: ``max_batch`` or ``threads`` < 1.
    """

    def __init__(self, spec: ModelSpec, max_batch: int = 32, threads: int = 1) -> None:
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.spec = spec
        self.max_batch = int(max_batch)
        self.threads = int(threads)
        self._pool: ThreadPoolExecutor | None = None
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

    def _write_slice(self, images: Sequence[np.ndarray], start: int, stop: int, out: np.ndarray) -> None:
        """Resize images[start:stop] into the staging rows and normalise them into out[start:stop]."""
        size = (self.spec.width, self.spec.height)
        for index in range(start, stop):
            cv2.resize(images[index], size, dst=self._staged[index], interpolation=cv2.INTER_LINEAR)
        _normalize_transpose(
            self._staged[start:stop], stop - start, self._channel_source, self._gain, self._bias, out[start:stop]
        )

    def _write(self, images: Sequence[np.ndarray], out: np.ndarray) -> None:
        """Preprocess already-checked images into out[:N], on up to ``threads`` threads."""
        count = len(images)
        parts = min(self.threads, count // MIN_CROPS_PER_THREAD)
        if parts <= 1:
            if count:
                self._write_slice(images, 0, count, out)
            return
        bounds = [count * part // parts for part in range(parts + 1)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="edge-reid-preprocess")
        futures = [self._pool.submit(self._write_slice, images, bounds[p], bounds[p + 1], out) for p in range(1, parts)]
        try:
            self._write_slice(images, bounds[0], bounds[1], out)
        finally:
            for future in futures:  # wait for every slice, even when one failed, then raise its error
                future.result()

    def close(self) -> None:
        """Stop the pool threads (if any were started). The preprocessor restarts them if used again."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def write_boxes(self, frame: np.ndarray, boxes: np.ndarray, out: np.ndarray) -> None:
        """Crop ``boxes`` from ``frame`` (:func:`crop_box`) and write them, preprocessed, into ``out[:N]``.

        Args:
            frame: (H, W, 3) uint8 BGR image.
            boxes: (N, 4) x1, y1, x2, y2 in pixels, already clipped to the frame
                (see :func:`edge_reid.detections.sanitize_boxes`), N <= max_batch.
            out: (>= N, 3, h, w) float32 C-contiguous buffer (h, w from the spec).

        Raises:
            ValueError: ``frame`` is not a non-empty (H, W, 3) uint8 image, a box covers no
                pixel, N > max_batch, or ``out`` has the wrong shape.
        """
        check_bgr_image(frame, "frame")
        self._check_out(len(boxes), out)
        views = []
        for index, box in enumerate(boxes):
            try:
                views.append(crop_box(frame, box))
            except ValueError as exc:
                raise ValueError(f"box {index}: {exc}") from None
        self._write(views, out)

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
            check_bgr_image(crop, f"crop {index}")
        self._write(crops, out)


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
