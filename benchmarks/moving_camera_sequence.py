"""Write a moving-camera stand-in sequence: a virtual camera that pans, tilts and zooms over a fixed-camera video, with its MOTChallenge ground truth.

A camera on a robot or in a hand moves between frames, so every person's box moves with it,
which a constant-velocity Kalman filter cannot predict. No moving-camera sequence with frames and
ground truth is available offline, so this makes one from a fixed-camera video: each output frame
is a window of the source frame (a quarter to a half of its width narrower, 4:3), resized to
640x480, whose centre and size follow a fixed smooth path, the same on every run (no random
numbers): a slow sweep and a faster sway across and up and down, and a slow zoom. At the source's
10 fps the view moves by up to about 25 output pixels a frame and turns round every 6-7 frames at
the fastest, far more than the people walk (2-5 pixels a frame in vtest), in the range of a
robot turning or swaying (not measured on a real robot: none recorded here). The periods below are incommensurate, so the
motion does not repeat within the video; they were set from that reasoning, not tried against
any tracker.

The ground truth is the source's, moved and scaled by each frame's window and clipped to the
frame; a box with less than a quarter of its area inside the view is left out (the detector rarely
finds a sliver of a person, and no tracker is asked to). The video is written losslessly (FFV1),
so the frames are exactly the resized windows.

    python benchmarks/moving_camera_sequence.py --out /tmp/moving     # -> /tmp/moving/moving.avi, /tmp/moving/moving-mot/
    python benchmarks/bench_tracking.py --source /tmp/moving/moving.avi --gt /tmp/moving/moving-mot
    edge-reid run --source /tmp/moving/moving.avi --camera-motion --mot m.txt
    edge-reid eval-mot --gt /tmp/moving/moving-mot m.txt

docs/tracking.md ("A moving camera") reports what camera-motion compensation does there.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when imported by the tests
from _common import stand_in_main, write_sequence_files  # noqa: E402

#: Output frame size (width, height), pixels: a common 4:3 camera size.
OUTPUT_SIZE = (640, 480)
#: Window width as a fraction of the source width: its mean and the zoom's amplitude (0.75 +- 0.08).
WINDOW_FRACTION, ZOOM_AMPLITUDE = 0.75, 0.08
#: Least share of a ground-truth box's area inside the view for it to be kept.
MIN_VISIBLE = 0.25


def window(frame_number: int, width: int, height: int) -> tuple[float, float, float]:
    """The virtual camera's view of source frame ``frame_number`` (0-based).

    Returns:
        (left, top, window width) in source pixels; the window is 4:3 and lies inside the frame.
    """
    t = float(frame_number)
    fraction = WINDOW_FRACTION + ZOOM_AMPLITUDE * math.sin(2 * math.pi * t / 89.0)
    window_width = fraction * width
    window_height = window_width * OUTPUT_SIZE[1] / OUTPUT_SIZE[0]
    if window_height > height:  # a source taller than 4:3 is fine; a wider one limits the window by its height
        window_height = fraction * height
        window_width = window_height * OUTPUT_SIZE[0] / OUTPUT_SIZE[1]
    # Where in the free range the window sits, 0..1: a slow sweep plus a faster sway (periods in frames).
    across = 0.5 + 0.33 * math.sin(2 * math.pi * t / 47.0) + 0.15 * math.sin(2 * math.pi * t / 13.0 + 1.0)
    down = 0.5 + 0.33 * math.sin(2 * math.pi * t / 61.0 + 2.0) + 0.15 * math.sin(2 * math.pi * t / 17.0)
    left = across * (width - window_width)
    top = down * (height - window_height)
    return left, top, window_width


def true_warp(first: int, second: int, width: int, height: int) -> np.ndarray:
    """The exact (2, 3) map from output pixels of frame ``first`` (0-based) to those of frame ``second``,
    for a (width x height) source: what a camera-motion estimate between the two should find."""
    left0, top0, width0 = window(first, width, height)
    left1, top1, width1 = window(second, width, height)
    scale0, scale1 = OUTPUT_SIZE[0] / width0, OUTPUT_SIZE[0] / width1
    return np.array([[scale1 / scale0, 0.0, (left0 - left1) * scale1], [0.0, scale1 / scale0, (top0 - top1) * scale1]])


def moved_ground_truth(rows: np.ndarray, left: float, top: float, scale: float) -> np.ndarray:
    """Ground-truth rows (frame, id, left, top, width, height, ...) seen through a window.

    Boxes are moved by (-left, -top), scaled by ``scale`` (output pixels per source pixel),
    clipped to :data:`OUTPUT_SIZE` and kept when at least :data:`MIN_VISIBLE` of the area is inside.
    """
    moved = rows.copy()
    x0 = (rows[:, 2] - left) * scale
    y0 = (rows[:, 3] - top) * scale
    x1 = x0 + rows[:, 4] * scale
    y1 = y0 + rows[:, 5] * scale
    cx0, cy0 = np.clip(x0, 0, OUTPUT_SIZE[0]), np.clip(y0, 0, OUTPUT_SIZE[1])
    cx1, cy1 = np.clip(x1, 0, OUTPUT_SIZE[0]), np.clip(y1, 0, OUTPUT_SIZE[1])
    full = (x1 - x0) * (y1 - y0)
    visible = np.maximum(cx1 - cx0, 0) * np.maximum(cy1 - cy0, 0)
    keep = visible >= MIN_VISIBLE * np.maximum(full, 1e-9)
    moved[:, 2], moved[:, 3], moved[:, 4], moved[:, 5] = cx0, cy0, cx1 - cx0, cy1 - cy0
    return moved[keep]


def moving_camera_sequence(video: Path, ground_truth: Path, out: Path, max_frames: int | None = None) -> tuple[Path, Path, int]:
    """Write ``out/moving.avi`` and ``out/moving-mot/`` (``seqinfo.ini``, ``gt/gt.txt``).

    Args:
        video: the fixed-camera source video.
        ground_truth: its MOTChallenge ground truth folder (``gt/gt.txt``, ``seqinfo.ini`` with ``frameRate``).
        out: output folder (created; existing files of the same names are replaced).
        max_frames: write at most this many frames (None: all).

    Returns:
        (video path, ground-truth folder, frames written).

    Raises:
        ValueError: no frame can be read, or the frames differ in size.
        OSError: a file cannot be written.
    """
    import cv2

    from edge_reid.motchallenge import read_sequence_info

    fps = read_sequence_info(ground_truth).frame_rate
    rows = np.loadtxt(ground_truth / "gt" / "gt.txt", delimiter=",", ndmin=2)
    sequence = out / "moving-mot"
    (sequence / "gt").mkdir(parents=True, exist_ok=True)
    output = out / "moving.avi"
    writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"FFV1"), float(fps), OUTPUT_SIZE)
    if not writer.isOpened():
        raise OSError(f"{output}: OpenCV cannot write an FFV1 video here")
    capture = cv2.VideoCapture(str(video))
    moved_rows, size, count = [], None, 0
    try:
        while max_frames is None or count < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            height, width = frame.shape[:2]
            if size is not None and size != (width, height):
                raise ValueError(f"{video}: frame {count + 1} is {width}x{height}, the first was {size[0]}x{size[1]}")
            size = (width, height)
            left, top, window_width = window(count, width, height)
            scale = OUTPUT_SIZE[0] / window_width
            to_output = np.array([[scale, 0.0, -left * scale], [0.0, scale, -top * scale]])
            writer.write(cv2.warpAffine(frame, to_output, OUTPUT_SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
            moved_rows.append(moved_ground_truth(rows[rows[:, 0] == count + 1], left, top, scale))
            count += 1
    finally:
        capture.release()
        writer.release()
    if count == 0:
        raise ValueError(f"{video}: no frame could be read")
    write_sequence_files(sequence, np.concatenate(moved_rows), fps, count, *OUTPUT_SIZE)
    return output, sequence, count


def main(argv: list[str] | None = None) -> int:
    return stand_in_main(__doc__, moving_camera_sequence, argv)


if __name__ == "__main__":
    sys.exit(main())
