"""Calibration images for TensorRT 8.x implicit INT8: Market-1501 crops, preprocessed like at run time.

Images come from the Market-1501 sampler shared with ``edge-reid calibrate``
(:func:`edge_reid.data.market1501.sample_calibration_images`: ``bounding_box_train/`` only,
seeded, spread over identities and cameras). They are read with the shared skip-and-count
reader and preprocessed by the same :class:`~edge_reid.preprocess.CropPreprocessor` path as
``edge-reid calibrate`` and ``run``, so the calibrator sees exactly the inputs the engine will see.
Nothing here imports ONNX Runtime's quantization tools.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from edge_reid.data.images import read_images_in_chunks
from edge_reid.preprocess import CropPreprocessor
from edge_reid.spec import ModelSpec


class CalibrationImages:
    """Iterable of preprocessed (n, 3, H, W) float32 batches from image files.

    Unreadable images are skipped and listed in :attr:`unreadable`.

    Args:
        paths: image files (BGR as OpenCV reads them).
        spec: the model's spec (size, colour order, normalisation).
        chunk: images preprocessed per batch.
    """

    def __init__(self, paths: Sequence[str | Path], spec: ModelSpec, chunk: int = 32) -> None:
        self.paths = [Path(p) for p in paths]
        self.spec = spec
        self.chunk = max(1, int(chunk))
        self.unreadable: list[Path] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        preprocessor = CropPreprocessor(self.spec, self.chunk)
        buffer = np.zeros((self.chunk, 3, self.spec.height, self.spec.width), np.float32)
        for part in read_images_in_chunks(self.paths, self.chunk):
            self.unreadable.extend(skipped.path for skipped in part.skipped)
            if part.images:
                preprocessor.write_crops(part.images, buffer)
                yield buffer[: len(part.images)].copy()
