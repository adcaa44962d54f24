"""Implicit INT8 calibration for TensorRT 8.x: an ``IInt8EntropyCalibrator2`` fed from host buffers.

Only TensorRT 8.x (JetPack 5 and 6.0) uses this path (see
:func:`edge_reid.tensorrt.versions.int8_paths`); on TensorRT >= 10 INT8 comes from
the Q/DQ model of ``edge-reid calibrate``.

The TensorRT side (``get_batch``) is thin; the work is in two pure classes tested
on the CPU:

- :class:`CalibrationBatchFeeder` re-chunks an iterator of preprocessed batches of
  any size into exactly ``batch_size`` rows written into one fixed host buffer.
  TensorRT requires every calibration batch to have ``get_batch_size()`` rows
  (``IInt8Calibrator.get_batch``: "The batch size of the input must match the batch
  size returned by get_batch_size"), so a final partial batch is dropped and
  counted, as NVIDIA's samples do (``ImageBatcher(exact_batches=True)``). When
  the data runs out, ``get_batch`` returns None, which tells TensorRT calibration
  is over.
- :class:`CalibrationCache` reads and atomically writes the cache in ``calibration/``
  so a second build skips calibration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from edge_reid.errors import DataError
from edge_reid.atomic import atomic_write_bytes


class CalibrationBatchFeeder:
    """Fills a fixed (B, C, H, W) float32 host buffer with successive calibration batches.

    Args:
        batches: iterator of preprocessed batches, each (n_i, C, H, W) float32 with
            any n_i >= 0 (e.g. the output of ``CropPreprocessor.write_crops``).
        host: the buffer TensorRT reads, (B, C, H, W) float32 C-contiguous; B is the
            calibration batch size.

    Attributes:
        fed_batches: full batches handed to TensorRT so far.
        fed_images: images in those batches (fed_batches * B).
        dropped_images: images of the final partial batch, not used.

    Raises:
        DataError: (from :meth:`next_batch`) a batch has the wrong shape.
    """

    def __init__(self, batches: Iterable[np.ndarray], host: np.ndarray) -> None:
        if host.ndim != 4 or host.dtype != np.float32 or not host.flags.c_contiguous:
            raise ValueError(f"host buffer must be (B, C, H, W) float32 C-contiguous, got {host.shape} {host.dtype}")
        self.host = host
        self._batches: Iterator[np.ndarray] = iter(batches)
        self._pending: np.ndarray | None = None  # rows received but not yet fed
        self._exhausted = False
        self.fed_batches = 0
        self.fed_images = 0
        self.dropped_images = 0

    @property
    def batch_size(self) -> int:
        """B: rows of every batch handed to TensorRT."""
        return int(self.host.shape[0])

    def _take(self) -> np.ndarray | None:
        """Next incoming batch, shape-checked, or None at the end."""
        for batch in self._batches:
            batch = np.asarray(batch)
            if batch.ndim != 4 or batch.shape[1:] != self.host.shape[1:]:
                raise DataError(
                    f"calibration batch of shape {batch.shape} does not fit the model input (N, {', '.join(map(str, self.host.shape[1:]))})"
                )
            if len(batch):
                return batch
        return None

    def next_batch(self) -> bool:
        """Write the next full batch into ``host``.

        Returns:
            True when ``host`` holds a new batch of ``batch_size`` rows; False when
            the data is exhausted (a final partial batch is dropped and counted in
            :attr:`dropped_images`). Calls after False keep returning False.
        """
        if self._exhausted:
            return False
        filled = 0
        while filled < self.batch_size:
            if self._pending is None or not len(self._pending):
                self._pending = self._take()
                if self._pending is None:
                    self._exhausted = True
                    self.dropped_images += filled
                    return False
            take = min(self.batch_size - filled, len(self._pending))
            self.host[filled : filled + take] = self._pending[:take]
            self._pending = self._pending[take:]
            filled += take
        self.fed_batches += 1
        self.fed_images += filled
        return True


class CalibrationCache:
    """TensorRT's calibration cache file (in ``calibration/``).

    Args:
        path: the cache file; it need not exist.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> bytes | None:
        """The cache bytes, or None when there is no (non-empty) cache: TensorRT then calibrates.

        Raises:
            DataError: the file exists but cannot be read (names it; delete it to recalibrate).
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read the calibration cache ({exc.strerror or exc}); delete it to recalibrate") from None
        return data or None

    def write(self, data: bytes | memoryview) -> None:
        """Store the cache atomically."""
        atomic_write_bytes(self.path, bytes(data))


def make_entropy_calibrator(
    trt,
    feeder: CalibrationBatchFeeder,
    device_ptr: int,
    upload: Callable[[], None],
    calibration_cache: CalibrationCache,
):
    """A ``trt.IInt8EntropyCalibrator2`` instance for TensorRT 8.x builds.

    Args:
        trt: the imported ``tensorrt`` module.
        feeder: fills the host side of the calibration input buffer.
        device_ptr: device address of that buffer (the mapped pointer on Jetson).
        upload: copies the host buffer to ``device_ptr`` and waits (no-op for mapped memory).
        calibration_cache: when it exists TensorRT skips calibration.

    Returns:
        The calibrator; assign it to ``IBuilderConfig.int8_calibrator``.
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        # Python subclasses must call the base __init__ explicitly (TensorRT Python API docs).
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self) -> int:
            return feeder.batch_size

        def get_batch(self, names):  # names: input tensor names; this model has one input
            if not feeder.next_batch():
                return None  # "When we're out of batches, we return either [] or None"
            upload()
            return [int(device_ptr)]

        def read_calibration_cache(self):
            return calibration_cache.read()

        def write_calibration_cache(self, cache) -> None:  # parameter names as in the real bindings
            calibration_cache.write(memoryview(cache))

    return EntropyCalibrator()
