"""Write a time-reversed stand-in sequence: a video's frames in reverse order, with its MOTChallenge ground truth.

The same people, boxes and detections, played backwards: frame k of the output is frame N + 1 - k
of the source, each ground-truth row moved with its frame. A tracker has no reason to do worse
backwards (the Kalman filter, the IoU gates and the appearance model have no direction in time),
so the difference measures how much a tracker's result on one sequence depends on the order of its
events rather than on any rule (docs/tracking.md, "Played backwards"). The video is written
losslessly (FFV1), so the detector sees exactly the source's pixels.

    python benchmarks/reversed_sequence.py --out /tmp/reversed      # -> /tmp/reversed/reversed.avi, reversed-mot/
    python benchmarks/bench_tracking.py --source /tmp/reversed/reversed.avi --gt /tmp/reversed/reversed-mot
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when imported by the tests
from _common import read_frames, stand_in_main, write_sequence_files  # noqa: E402


def reversed_sequence(video: Path, ground_truth: Path, out: Path, max_frames: int | None = None) -> tuple[Path, Path, int]:
    """Write ``out/reversed.avi`` and ``out/reversed-mot/`` (``seqinfo.ini``, ``gt/gt.txt``).

    Args:
        video: the source video.
        ground_truth: its MOTChallenge ground truth folder (``gt/gt.txt``, ``seqinfo.ini`` with ``frameRate``).
        out: output folder (created; existing files of the same names are replaced).
        max_frames: reverse only the first this many frames of the source (None: all).

    Returns:
        (video path, ground-truth folder, frames written).

    Raises:
        ValueError: no frame of the video could be read.
        OSError: a file cannot be written.
    """
    import cv2

    from edge_reid.motchallenge import read_sequence_info

    frames = read_frames(video, max_frames)
    if not frames:
        raise ValueError(f"{video}: no frame could be read")
    length = len(frames)
    height, width = frames[0].shape[:2]
    fps = read_sequence_info(ground_truth).frame_rate
    rows = np.loadtxt(ground_truth / "gt" / "gt.txt", delimiter=",", ndmin=2)
    rows = rows[rows[:, 0] <= length].copy()
    rows[:, 0] = length + 1 - rows[:, 0]
    rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
    out.mkdir(parents=True, exist_ok=True)
    output = out / "reversed.avi"
    writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"FFV1"), float(fps), (width, height))
    if not writer.isOpened():
        raise OSError(f"{output}: OpenCV cannot write an FFV1 video here")
    for frame in reversed(frames):
        writer.write(frame)
    writer.release()
    sequence = out / "reversed-mot"
    (sequence / "gt").mkdir(parents=True, exist_ok=True)
    write_sequence_files(sequence, rows, fps, length, width, height)
    return output, sequence, length


def main(argv: list[str] | None = None) -> int:
    return stand_in_main(__doc__, reversed_sequence, argv)


if __name__ == "__main__":
    sys.exit(main())
