"""Calibration batches made with the model's own preprocessing (the same code path as ``edge-reid run``)."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edge_reid.preprocess import CropPreprocessor
from edge_reid.spec import ModelSpec


def preprocessed_batches(crops: Sequence[np.ndarray], spec: ModelSpec, batch_size: int = 32) -> Iterator[np.ndarray]:
    """Yield (n, 3, H, W) float32 batches of BGR crops, preprocessed by :class:`CropPreprocessor`.

    Each yielded array is a fresh copy (safe to keep).

    Raises:
        ValueError: ``batch_size`` < 1 or a crop is not a (h, w, 3) uint8 image.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    preprocessor = CropPreprocessor(spec, batch_size)
    buffer = np.zeros((batch_size, 3, spec.height, spec.width), np.float32)
    for start in range(0, len(crops), batch_size):
        part = crops[start : start + batch_size]
        preprocessor.write_crops(part, buffer)
        yield buffer[: len(part)].copy()


def preprocess_all(crops: Sequence[np.ndarray], spec: ModelSpec, batch_size: int = 32) -> np.ndarray:
    """All crops preprocessed into one (N, 3, H, W) float32 array."""
    batches = list(preprocessed_batches(crops, spec, batch_size))
    if not batches:
        return np.zeros((0, 3, spec.height, spec.width), np.float32)
    return np.concatenate(batches)


class CropCalibrationReader(CalibrationDataReader):
    """ONNX Runtime ``CalibrationDataReader`` over person crops, preprocessed as ``run`` does.

    Usable with ``onnxruntime.quantization.quantize_static`` directly; each
    ``get_next()`` returns ``{input_name: (n, 3, H, W) float32}`` until the crops run out.

    Args:
        crops: BGR uint8 person crops.
        spec: the model's spec (input name, size, colour order, normalisation).
        batch_size: crops per batch.
    """

    def __init__(self, crops: Sequence[np.ndarray], spec: ModelSpec, batch_size: int = 32) -> None:
        self.crops = list(crops)
        self.spec = spec
        self.batch_size = batch_size
        self._iterator: Iterator[np.ndarray] | None = None

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iterator is None:
            self._iterator = preprocessed_batches(self.crops, self.spec, self.batch_size)
        batch = next(self._iterator, None)
        return None if batch is None else {self.spec.input_name: batch}

    def rewind(self) -> None:
        """Start again from the first crop."""
        self._iterator = None
