"""Real person crops cut from a video by the detector: pools for calibration checks and benchmarks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edge_reid.crop_pool import CropPool, spread
from edge_reid.defaults import MIN_BOX_HEIGHT
from edge_reid.detections import sanitize_boxes
from edge_reid.detector import PersonDetector
from edge_reid.preprocess import crop_box
from edge_reid.sources import open_source
from edge_reid.tracking.boxes import iou_matrix

#: Shortest time between two sampled frames when the step is chosen from the video: people
#: walk about 1.4 m/s, a body width in a third of a second, so one second apart a walking
#: person is seen in another place and pose, while consecutive frames are near-copies.
MIN_SAMPLE_INTERVAL_S = 1.0
#: Boxes overlapping by more than this intersection over union are one place: PASCAL VOC's
#: and MOTChallenge's criterion for two boxes showing the same object.
SAME_PLACE_IOU = 0.5


def sample_step(frame_count: int | None, fps: float | None, max_crops: int, min_interval_s: float = MIN_SAMPLE_INTERVAL_S) -> int:
    """Frames between samples so that the samples cover the whole video.

    At least ``min_interval_s`` of video between samples (one frame when the frame rate is
    unknown), and, when the frame count is known, no more than about ``max_crops`` sampled
    frames in all (each sampled frame usually holds at least one person), so a long video is
    sampled over its whole length instead of only its beginning.

    Args:
        frame_count: frames in the video, or None when unknown (live sources).
        fps: frames per second, or None when unknown.
        max_crops: crops wanted.
        min_interval_s: shortest time between samples, in seconds.

    Returns:
        The step in frames (>= 1).
    """
    step = max(1, round(fps * min_interval_s)) if fps else 1
    if frame_count:
        step = max(step, math.ceil(frame_count / max(max_crops, 1)))
    return step


def cut_person_crops(
    video_path: str | Path,
    detector: PersonDetector | None = None,
    max_crops: int = 500,
    every_n_frames: int | None = None,
    min_box_height: float = 48.0,
    same_place_iou: float | None = SAME_PLACE_IOU,
) -> CropPool:
    """Cut person crops from a video (or image folder) with the person detector.

    By default the crops are spread over the whole video and avoid near-duplicates, so a
    pool judges a model on many people and poses rather than on consecutive frames of a few:

    - frames are sampled every :func:`sample_step` frames (at least one second apart, and
      over the whole length when the frame count is known);
    - a person whose box overlaps (IoU > ``same_place_iou``) the place of a crop taken at the
      previous sampled frame is skipped, and that place stays taken while someone stays
      there, so a person standing still gives one crop, not one per second;
    - when more than ``max_crops`` crops are found, ``max_crops`` of them evenly spread over
      the video are kept (in frame order).

    With ``every_n_frames``, frames are sampled every ``every_n_frames`` and crops are
    collected until ``max_crops`` (the start of a long video only): for throughput
    benchmarks, where diversity does not matter.

    Args:
        video_path: anything :func:`edge_reid.sources.open_source` opens.
        detector: the detector (default: bundled YOLOX-Nano, its ``min_box_height`` lowered to this one's
            where this one is lower). A detector passed in also drops people shorter than its own.
        max_crops: most crops to return.
        every_n_frames: fixed frame step (>= 1), or None for the spread sampling above.
        min_box_height: skip people shorter than this, in pixels (counted in the pool's ``source``: a video of
            small frames or far people gives no crops, and says why).
        same_place_iou: IoU above which a box repeats a place already cropped (spread
            sampling only); None keeps every box.

    Returns:
        A :class:`CropPool` of up to ``max_crops`` BGR uint8 crops (h, w, 3), each a copy,
        in frame order, with the frame index of each crop in ``frames``.

    Raises:
        SourceError: the video cannot be opened.
        ValueError: ``every_n_frames`` < 1 or ``max_crops`` < 1.
    """
    if every_n_frames is not None and every_n_frames < 1:
        raise ValueError(f"every_n_frames must be >= 1, got {every_n_frames}")
    if max_crops < 1:
        raise ValueError(f"max_crops must be >= 1, got {max_crops}")
    if detector is None:  # its own minimum (32 px) dropped the people of a 160x120 camera that min_box_height=16 asked for
        own = MIN_BOX_HEIGHT
        detector = PersonDetector(min_box_height=min(float(min_box_height), own))
    source = open_source(str(video_path))
    diverse = every_n_frames is None
    step = sample_step(source.stats.declared_frames, source.fps, max_crops) if diverse else every_n_frames
    crops: list[np.ndarray] = []
    frames: list[int] = []
    places = np.zeros((0, 4))  # boxes of the places taken at the previous sampled frame
    too_short = 0  # boxes left out for their height, by the detector or here
    for frame in source:
        if frame.index % step:
            continue
        found = detector.detect(frame.image)
        boxes, keep = sanitize_boxes(found.boxes, *frame.image.shape[:2], min_box_height)
        too_short += found.too_small + int((~keep).sum())
        taken = []
        for box in boxes[keep]:
            if diverse and same_place_iou is not None and len(places):
                overlap = iou_matrix(box[None], places)[0]
                if overlap.max() > same_place_iou:
                    taken.append(places[int(np.argmax(overlap))])  # the place stays taken, by its first crop's box
                    continue
            taken.append(np.asarray(box, np.float64))
            crops.append(crop_box(frame.image, box).copy())
            frames.append(frame.index)
            if not diverse and len(crops) >= max_crops:
                source.stop()
                break
        places = np.array(taken).reshape(-1, 4)
        if diverse and source.stats.declared_frames is None and len(crops) >= max_crops:
            source.stop()  # a live source: the first max_crops crops, a second or more apart
    source.close()
    if len(crops) > max_crops:
        picks = spread(range(len(crops)), max_crops)
        crops, frames = [crops[i] for i in picks], [frames[i] for i in picks]
    how = f"every {step} frames, one crop per place" if diverse else f"every {every_n_frames} frames"
    if too_short:
        shortest = max(float(min_box_height), detector.min_box_height)
        how += f"; {too_short} boxes shorter than {shortest:g} px left out"
    return CropPool(crops, f"{len(crops)} people cut from {video_path} ({how}, person detector)", frames=frames)
