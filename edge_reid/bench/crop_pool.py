"""Real person crops for the loop and preprocessing benchmarks: from a folder, or cut from a video."""

from __future__ import annotations

import os
from pathlib import Path

from edge_reid.crop_pool import CropPool
from edge_reid.errors import DataError


def shared_folder() -> Path:
    """The folder of the real assets (``data/vtest.avi``, ``data/vtest-mot``, ``data/mot17-reid-mini``,
    ``models/``) the benchmarks read; the package bundles none of them.

    ``$EDGE_REID_SHARED`` when set; else the first existing of ``../shared`` from the working folder
    and ``shared/`` beside the source checkout; else the latter (which does not exist: the
    caller's error names it). Always an absolute path: a later change of the working folder
    does not move it.
    """
    if os.environ.get("EDGE_REID_SHARED"):
        return Path(os.environ["EDGE_REID_SHARED"]).absolute()
    beside_checkout = Path(__file__).resolve().parents[3] / "shared"
    beside_working_folder = (Path("..") / "shared").absolute()
    return next((folder for folder in (beside_working_folder, beside_checkout) if folder.is_dir()), beside_checkout)


def default_video() -> Path | None:
    """``data/vtest.avi`` in :func:`shared_folder` when it exists (resolved), else None."""
    video = shared_folder() / "data" / "vtest.avi"
    return video.resolve() if video.is_file() else None


def crops_from_video(video_path: str | Path, max_crops: int = 256, every_n_frames: int = 5, detector_path: str | Path | None = None) -> CropPool:
    """Cut up to ``max_crops`` person crops from a video with the person detector
    (:func:`edge_reid.crops.cut_person_crops`).

    Raises:
        SourceError: the video cannot be opened.
        DataError: the detector found no person in it.
    """
    from edge_reid.crops import cut_person_crops
    from edge_reid.detector import PersonDetector

    pool = cut_person_crops(video_path, PersonDetector(detector_path), max_crops=max_crops, every_n_frames=every_n_frames)
    if not pool.crops:
        raise DataError(f"no person found in {video_path}; give person crops with --crops FOLDER")
    return CropPool(pool.crops, f"video:{video_path}", frames=pool.frames)


def crops_from_folder(folder: str | Path, max_crops: int = 256) -> CropPool:
    """Read up to ``max_crops`` person crops from ``folder``, sorted by name
    (:func:`edge_reid.data.images.read_crop_folder`).

    Unreadable files are skipped and listed in :attr:`CropPool.skipped`.

    Raises:
        DataError: the folder is missing or holds no readable image.
    """
    from edge_reid.data.images import read_crop_folder

    crops, _, skipped = read_crop_folder(folder, limit=max_crops)
    return CropPool(crops, f"folder:{folder}", skipped)
