"""Calibration batches made with the model's own preprocessing (the same code path as ``edge-reid run``)."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

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
