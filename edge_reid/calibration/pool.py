"""The unlabelled pool of real person crops the guard compares FP32 and quantized embeddings on,
and its split into a selection half and a disjoint held-out half."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edge_reid.crop_pool import CropPool, spread
from edge_reid.data.images import describe_skipped, list_images, read_images
from edge_reid.data.market1501 import MarketDataset
from edge_reid.errors import DataError
from edge_reid.output_paths import same_file


#: Fewest crops in each split (top-5 agreement needs 5 neighbours and a spare).
MIN_SPLIT_CROPS = 7


def check_pool_source(source: str | Path, calibration_folder: str | Path | None = None) -> Path:
    """``source`` as a path, once it is a folder or a file (a video): cheap, before any work.

    Args:
        source: the pool (``--pool``).
        calibration_folder: the folder the calibration crops come from (its images, not its
            subfolders, are read); the pool must not be that folder, or the held-out numbers would
            be measured on calibration crops. A subfolder of it, or a video in it, holds other crops.

    Raises:
        DataError: it is neither a folder nor a file (or cannot be looked up), or it is ``calibration_folder``.
    """
    path = Path(source)
    try:
        found = path.is_dir() or path.is_file()
    except OSError as exc:  # a name too long for the file system, a folder on the way that cannot be searched
        raise DataError(f"crop pool {path} cannot be read ({exc.strerror or exc}); give a folder of person crops or a video") from None
    if not found:
        raise DataError(f"crop pool {path} not found; give a folder of person crops or a video")
    if calibration_folder is not None and same_file(path, calibration_folder):
        raise DataError(
            f"crop pool {path} is the calibration folder {calibration_folder}: the held-out check would run on "
            "calibration crops; give --pool crops or a video from elsewhere"
        )
    return path


def load_pool(source: str | Path | None, dataset: MarketDataset | None, max_crops: int = 500) -> CropPool:
    """Crops for the agreement check.

    Args:
        source: a folder of crop images, or a video (people are cut from it by the
            bundled detector over the whole video, one crop per place and second:
            :func:`edge_reid.crops.cut_person_crops`), or None for the query and
            gallery crops of ``dataset``.
        dataset: the labelled data set (used when ``source`` is None).
        max_crops: most crops (folders, data sets and videos are sampled evenly).

    Raises:
        DataError: the source is missing or yields too few readable crops to split.
        SourceError: the video cannot be opened.
    """
    if source is None:
        if dataset is None:
            raise DataError("no crop pool: give a folder of crops or a video")
        files = list(dataset.query.paths) + list(dataset.gallery.paths)
        crops, _, skipped = read_images(_spread_then_the_rest(files, max_crops), limit=max_crops)
        pool = CropPool(crops, f"query+gallery of {dataset.root} ({len(crops)} of {len(files)})", skipped)
    else:
        path = check_pool_source(source)
        if path.is_dir():
            files = list_images(path)
            crops, _, skipped = read_images(_spread_then_the_rest(files, max_crops), limit=max_crops)
            pool = CropPool(crops, f"folder {path} ({len(crops)} of {len(files)} images)", skipped)
        else:  # a video
            from edge_reid.crops import cut_person_crops

            pool = cut_person_crops(path, max_crops=max_crops)
    if len(pool.crops) < 2 * MIN_SPLIT_CROPS:
        unreadable = f"; skipped {describe_skipped(pool.skipped)}" if pool.skipped else ""
        raise DataError(
            f"crop pool {pool.source}: only {len(pool.crops)} readable crops; need at least {2 * MIN_SPLIT_CROPS} "
            f"({MIN_SPLIT_CROPS} per split to compare neighbours){unreadable}"
        )
    return pool


def _spread_then_the_rest(files: Sequence[Path], count: int) -> list[Path]:
    """``count`` files spread evenly over ``files`` first, then the others in order: reading stops at ``count``
    readable ones, so an unreadable file is replaced by another instead of leaving the pool short."""
    first = spread(list(files), count)
    chosen = set(first)
    return first + [path for path in files if path not in chosen]


@dataclass(frozen=True)
class PoolSplit:
    """The pool's selection and held-out halves, and how they were cut (:func:`split_pool`).

    Attributes:
        selection: indices of the selection half (int64, source order).
        heldout: indices of the held-out half, disjoint from ``selection``; together ``range(count)``.
        block: the run length used: the one asked for, or 1 when the pool was too small for runs.
        whole_frames: True when runs end only where the frame changes (no frame on both sides).
    """

    selection: np.ndarray
    heldout: np.ndarray
    block: int
    whole_frames: bool

    def description(self) -> str:
        """How the halves were cut, in words (the report's ``pool.split``)."""
        if self.block == 1:
            return "alternate single frames" if self.whole_frames else "alternate single crops"
        return f"alternate runs of about {self.block} consecutive crops" + (", whole frames" if self.whole_frames else "")


def split_pool(count: int, block: int = 25, frames: Sequence[int] | None = None) -> PoolSplit:
    """The selection and held-out halves of a pool of ``count`` crops in source order.

    The pool is cut into runs of about ``block`` consecutive crops, alternately given to
    the selection split and the held-out split. Crops of one run come from nearby
    frames, so keeping runs whole keeps the two splits apart in time (a person seen in
    one split's frames is not seen a moment later in the other's), while alternating
    spreads both splits over the whole video. With ``frames`` (the frame index of each
    crop, non-decreasing), runs end only where the frame changes, so the crops of one
    frame are never on both sides. Pools too small for two runs per split (under
    ``4 * block`` crops) alternate single crops (or frames); where a few frames hold most
    crops, crops are split regardless of frames. The result says which was done.

    Returns:
        :class:`PoolSplit`: selection and held-out indices (int64, disjoint, together
        ``range(count)``), the block used and whether whole frames were kept together.

    Raises:
        ValueError: fewer than ``2 * MIN_SPLIT_CROPS`` crops, or ``frames`` of another length.
    """
    if count < 2 * MIN_SPLIT_CROPS:
        raise ValueError(f"need at least {2 * MIN_SPLIT_CROPS} crops to split, got {count}")
    if frames is not None and len(frames) != count:
        raise ValueError(f"{len(frames)} frame indices for {count} crops")
    if count < 4 * block:
        block = 1
    if frames is None:
        side = (np.arange(count) // block) % 2
    else:
        side = np.zeros(count, np.int64)
        current, size = 0, 0
        for i in range(count):
            if i and frames[i] != frames[i - 1] and size >= block:
                current, size = 1 - current, 0
            side[i] = current
            size += 1
    selection, heldout = np.flatnonzero(side == 0), np.flatnonzero(side == 1)
    if min(len(selection), len(heldout)) < MIN_SPLIT_CROPS:  # a few frames hold most crops: split crops, not frames
        return split_pool(count, block)
    return PoolSplit(selection, heldout, block, frames is not None)
