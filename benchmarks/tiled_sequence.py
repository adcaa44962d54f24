"""Write a crowded, larger-frame stand-in sequence: four stretches of a video side by side in a 2x2 grid, with its MOTChallenge ground truth.

Tile k (left to right, top to bottom) plays the k-th quarter of the video, so each output frame
holds four moments of the scene at once: twice the width and height of the source, about four
times the people (vtest.avi: 1536x1152 frames, 23 people per frame, 198 frames). The ground truth
is the source's with each tile's boxes moved by its offset and its ids offset by 1000 x k (a person
seen in two tiles at once is two ids: two tracks must keep them apart). The video is written
losslessly (FFV1), so the detector sees exactly the source's pixels.

    python benchmarks/tiled_sequence.py --out /tmp/tiled        # -> /tmp/tiled/tiled.avi, /tmp/tiled/tiled-mot/
    edge-reid run --source /tmp/tiled/tiled.avi --detector-size 832 --mot t832.txt
    edge-reid eval-mot --gt /tmp/tiled/tiled-mot t832.txt

docs/tracking.md ("The detector's input size") reports what the detector's input size does there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when imported by the tests
from _common import read_frames, stand_in_main, write_sequence_files  # noqa: E402

TILES = 4
ID_OFFSET = 1000


def tiled_sequence(video: Path, ground_truth: Path, out: Path, max_frames: int | None = None) -> tuple[Path, Path, int]:
    """Write ``out/tiled.avi`` and ``out/tiled-mot/`` (``seqinfo.ini``, ``gt/gt.txt``).

    Args:
        video: the source video.
        ground_truth: its MOTChallenge ground truth folder (``gt/gt.txt``, ``seqinfo.ini`` with ``frameRate``).
        out: output folder (created; existing files of the same names are replaced).
        max_frames: write at most this many frames (None: a quarter of the source's frames).

    Returns:
        (video path, ground-truth folder, frames written).

    Raises:
        ValueError: the video has fewer than 4 frames, or its frames differ in size.
        OSError: a file cannot be written.
    """
    import cv2

    from edge_reid.motchallenge import read_sequence_info

    frames = read_frames(video)
    length = len(frames) // TILES
    if length == 0:
        raise ValueError(f"{video}: {len(frames)} frames could be read, at least {TILES} are needed")
    if max_frames is not None:
        length = min(length, max_frames)
    height, width = frames[0].shape[:2]
    if any(frame.shape[:2] != (height, width) for frame in frames):
        raise ValueError(f"{video}: frames of different sizes cannot be tiled")
    fps = read_sequence_info(ground_truth).frame_rate
    rows = np.loadtxt(ground_truth / "gt" / "gt.txt", delimiter=",", ndmin=2)
    starts = [k * (len(frames) // TILES) for k in range(TILES)]
    sequence = out / "tiled-mot"
    (sequence / "gt").mkdir(parents=True, exist_ok=True)
    output = out / "tiled.avi"
    writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"FFV1"), float(fps), (2 * width, 2 * height))
    if not writer.isOpened():
        raise OSError(f"{output}: OpenCV cannot write an FFV1 video here")
    tiled_rows = []
    for number in range(length):
        canvas = np.zeros((2 * height, 2 * width, 3), np.uint8)
        for tile, start in enumerate(starts):
            top, left = (tile // 2) * height, (tile % 2) * width
            canvas[top:top + height, left:left + width] = frames[start + number]
            moved = rows[rows[:, 0] == start + number + 1].copy()
            moved[:, 0] = number + 1
            moved[:, 1] += ID_OFFSET * tile
            moved[:, 2] += left
            moved[:, 3] += top
            tiled_rows.append(moved)
        writer.write(canvas)
    writer.release()
    write_sequence_files(sequence, np.concatenate(tiled_rows), fps, length, 2 * width, 2 * height)
    return output, sequence, length


def main(argv: list[str] | None = None) -> int:
    return stand_in_main(__doc__, tiled_sequence, argv)


if __name__ == "__main__":
    sys.exit(main())
