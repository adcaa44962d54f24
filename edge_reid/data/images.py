"""Reading person-crop image files: unreadable files are skipped and counted, never fatal one by one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from edge_reid.data.market1501 import IMAGE_SUFFIXES, SkippedFile
from edge_reid.errors import DataError


def read_image(path: str | Path) -> np.ndarray | None:
    """Read one image as (h, w, 3) uint8 BGR with OpenCV; None when it cannot be decoded or is empty."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return None
    return image


@dataclass
class ImageChunk:
    """Images read from a run of files.

    Attributes:
        images: the decoded (h, w, 3) uint8 BGR images.
        indices: for each image, its position in the list of paths given to the reader.
        skipped: files that could not be read.
    """

    images: list[np.ndarray]
    indices: list[int]
    skipped: list[SkippedFile] = field(default_factory=list)


def read_images_in_chunks(paths: Sequence[Path], chunk: int = 256) -> Iterator[ImageChunk]:
    """Read ``paths`` in order, ``chunk`` files at a time, skipping unreadable ones.

    Keeps at most one chunk of images in memory, so a whole Market-1501 gallery
    (about 20 000 crops) streams through in constant memory.

    Raises:
        ValueError: ``chunk`` < 1.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    for start in range(0, len(paths), chunk):
        part = ImageChunk([], [])
        for offset, path in enumerate(paths[start : start + chunk]):
            image = read_image(path)
            if image is None:
                part.skipped.append(SkippedFile(Path(path), "unreadable image"))
            else:
                part.images.append(image)
                part.indices.append(start + offset)
        yield part


def read_images(paths: Iterable[Path], limit: int | None = None) -> tuple[list[np.ndarray], list[Path], list[SkippedFile]]:
    """Read images in order until ``limit`` readable ones (all when None), skipping unreadable files.

    Returns:
        (images, their paths, skipped files).
    """
    images, used, skipped = [], [], []
    for path in paths:
        if limit is not None and len(images) >= limit:
            break
        image = read_image(path)
        if image is None:
            skipped.append(SkippedFile(Path(path), "unreadable image"))
            continue
        images.append(image)
        used.append(Path(path))
    return images, used, skipped


def read_crop_folder(folder: str | Path, limit: int | None = None) -> tuple[list[np.ndarray], list[Path], list[SkippedFile]]:
    """Read a plain folder of person-crop images (sorted by name), skipping unreadable ones.

    Raises:
        DataError: the folder is missing or holds no readable image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of person crops")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    images, used, skipped = read_images(files, limit)
    if not images:
        raise DataError(f"{folder}: no readable image ({len(skipped)} unreadable); expected .jpg/.png person crops")
    return images, used, skipped
