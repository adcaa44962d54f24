"""Calibration images for TensorRT 8.x implicit INT8: Market-1501 crops, preprocessed like at run time.

Images come from the Market-1501 sampler shared with ``edge-reid calibrate``
(``edge_reid.data.market1501.sample_calibration_images``) when it is installed; until
then :func:`sample_market1501_train` picks them the same way from the standard layout.
They are preprocessed by the same :class:`~edge_reid.preprocess.CropPreprocessor` the
pipeline uses, so the calibrator sees exactly the inputs the engine will see.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from edge_reid.errors import DataError
from edge_reid.spec import ModelSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def sample_market1501_train(root: str | Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` image paths drawn without replacement (seeded) from ``root/bounding_box_train``.

    Junk (``-1_``) and distractor (``0000_``) crops are excluded. Returns all images
    when fewer than ``count`` exist.

    Raises:
        DataError: the folder has no ``bounding_box_train`` with images.
    """
    folder = Path(root) / "bounding_box_train"
    if not folder.is_dir():
        raise DataError(f"{root}: no bounding_box_train/ folder; pass the root of a Market-1501 layout dataset")
    paths = sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(("-1_", "0000_"))
    )
    if not paths:
        raise DataError(f"{folder}: no person images (*.jpg) found")
    if len(paths) <= count:
        return paths
    return sorted(random.Random(seed).sample(paths, count))


def calibration_image_paths(root: str | Path, count: int, seed: int = 0) -> list[Path]:
    """Calibration images: the shared Market-1501 sampler when present, else :func:`sample_market1501_train`."""
    try:
        from edge_reid.data.market1501 import sample_calibration_images  # edge-reid calibrate's sampler
    except ImportError:
        return sample_market1501_train(root, count, seed)
    return list(sample_calibration_images(root, count, seed))


class CalibrationImages:
    """Iterable of preprocessed (n, 3, H, W) float32 batches from image files.

    Unreadable images are skipped and counted in :attr:`unreadable`.

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
        from edge_reid.preprocess import CropPreprocessor

        preprocessor = CropPreprocessor(self.spec, self.chunk)
        out = np.zeros((self.chunk, 3, self.spec.height, self.spec.width), np.float32)
        for start in range(0, len(self.paths), self.chunk):
            crops = []
            for path in self.paths[start : start + self.chunk]:
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None or image.size == 0:
                    self.unreadable.append(path)
                    continue
                crops.append(image)
            if crops:
                preprocessor.write_crops(crops, out)
                yield out[: len(crops)].copy()
