"""Real person crops cut from a video by the detector: pools for calibration checks and benchmarks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_reid.detections import sanitize_boxes
from edge_reid.detector import PersonDetector
from edge_reid.errors import OutputPathError
from edge_reid.preprocess import crop_box
from edge_reid.sources import open_source


def cut_person_crops(
    video_path: str | Path,
    detector: PersonDetector | None = None,
    max_crops: int = 500,
    every_n_frames: int = 5,
    min_box_height: float = 48.0,
) -> list[np.ndarray]:
    """Cut person crops from a video (or image folder) with the person detector.

    Frames are sampled every ``every_n_frames``; each detected person taller
    than ``min_box_height`` pixels becomes a crop, until ``max_crops``.

    Args:
        video_path: anything :func:`edge_reid.sources.open_source` opens.
        detector: the detector (default: bundled YOLOX-Nano).
        max_crops: most crops to return.
        every_n_frames: frame sampling step (>= 1); spreading samples over the
            video gives more distinct people and poses.
        min_box_height: skip people shorter than this, in pixels.

    Returns:
        Up to ``max_crops`` BGR uint8 crops (h, w, 3), each a copy.

    Raises:
        SourceError: the video cannot be opened.
        ValueError: ``every_n_frames`` < 1.
    """
    if every_n_frames < 1:
        raise ValueError(f"every_n_frames must be >= 1, got {every_n_frames}")
    detector = detector or PersonDetector()
    source = open_source(str(video_path))
    crops: list[np.ndarray] = []
    for frame in source:
        if frame.index % every_n_frames:
            continue
        boxes, keep = sanitize_boxes(detector.detect(frame.image).boxes, *frame.image.shape[:2], min_box_height)
        for box in boxes[keep]:
            crops.append(crop_box(frame.image, box).copy())
            if len(crops) >= max_crops:
                source.stop()
                break
    source.close()
    return crops


def save_crops(crops: list[np.ndarray], folder: str | Path, prefix: str = "crop") -> list[Path]:
    """Write crops as ``{prefix}_{i:05d}.jpg`` into ``folder`` (created); returns the paths.

    Raises:
        OutputPathError: a crop cannot be written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, crop in enumerate(crops):
        path = folder / f"{prefix}_{index:05d}.jpg"
        if not cv2.imwrite(str(path), crop):
            raise OutputPathError(f"cannot write crop image {path}")
        paths.append(path)
    return paths
