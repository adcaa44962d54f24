"""The unlabelled pool of real person crops the guard compares FP32 and quantized embeddings on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_reid.data.images import SkippedFile, list_images, read_images
from edge_reid.data.market1501 import MarketDataset
from edge_reid.errors import DataError


@dataclass
class CropPool:
    """Person crops for the agreement check.

    Attributes:
        crops: BGR uint8 crops.
        source: where they came from, for the report.
        skipped: unreadable files left out.
    """

    crops: list[np.ndarray]
    source: str
    skipped: list[SkippedFile] = field(default_factory=list)


def spread(items: list, count: int) -> list:
    """``count`` items evenly spaced over ``items`` (all of them when fewer), keeping order."""
    if len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]


def load_pool(source: str | Path | None, dataset: MarketDataset | None, max_crops: int = 500, every_n_frames: int = 5) -> CropPool:
    """Crops for the agreement check.

    Args:
        source: a folder of crop images, or a video (people are cut from it by the
            bundled detector, :func:`edge_reid.crops.cut_person_crops`), or None for
            the query and gallery crops of ``dataset``.
        dataset: the labelled data set (used when ``source`` is None).
        max_crops: most crops (folders and data sets are sampled evenly).
        every_n_frames: frame step when cutting from a video.

    Raises:
        DataError: the source is missing or yields fewer than 7 readable crops.
        SourceError: the video cannot be opened.
    """
    if source is None:
        if dataset is None:
            raise DataError("no crop pool: give a folder of crops or a video")
        paths = spread(list(dataset.query.paths) + list(dataset.gallery.paths), max_crops)
        crops, _, skipped = read_images(paths)
        pool = CropPool(crops, f"query+gallery of {dataset.root} ({len(paths)} of {len(dataset.query) + len(dataset.gallery)})", skipped)
    else:
        path = Path(source)
        if path.is_dir():
            files = list_images(path)
            crops, _, skipped = read_images(spread(files, max_crops))
            pool = CropPool(crops, f"folder {path} ({min(len(files), max_crops)} of {len(files)} images)", skipped)
        elif path.is_file():
            from edge_reid.crops import cut_person_crops

            crops = cut_person_crops(path, max_crops=max_crops, every_n_frames=every_n_frames)
            pool = CropPool(crops, f"{len(crops)} people cut from {path} (every {every_n_frames} frames, bundled detector)")
        else:
            raise DataError(f"crop pool {path} not found; give a folder of person crops or a video")
    if len(pool.crops) < 7:
        raise DataError(f"crop pool {pool.source}: only {len(pool.crops)} readable crops; need at least 7 to compare neighbours")
    return pool
