"""The start every benchmark script shares: the repository on the import path, the usual
arguments, the default video, and real person crops.

A script in ``benchmarks/`` begins with::

    from _common import benchmark_parser, real_crops, video_path

    def main() -> int:
        parser = benchmark_parser(__doc__, crops=256)   # --video, --crops FOLDER, --max-crops 256
        parser.add_argument("--repeats", type=int, default=3)
        args = parser.parse_args()
        pool = real_crops(args)                         # edge_reid.bench.CropPool

Run scripts from anywhere as ``python benchmarks/NAME.py``: the repository's own
``edge_reid`` is imported, not an installed copy. The arguments mean what they mean
to ``edge-reid bench``: ``--video`` a video to cut people from (default
``shared/data/vtest.avi``, see :func:`edge_reid.bench.default_video`),
``--crops`` a folder of person crops instead, ``--max-crops`` how many.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge_reid.bench import CropPool, crops_from_folder, crops_from_video, default_video  # noqa: E402


def benchmark_parser(doc: str | None, video: bool = True, crops: int | None = None) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` is the script's docstring.

    Args:
        doc: the script's ``__doc__``: its first line becomes the description, the rest the epilog.
        video: add ``--video FILE`` (the video the script reads).
        crops: add ``--crops FOLDER`` and ``--max-crops N`` with this default (None: neither).
    """
    first, _, rest = (doc or "").strip().partition("\n")
    parser = argparse.ArgumentParser(
        description=first, epilog=rest.strip() or None, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if video or crops is not None:
        parser.add_argument(
            "--video", type=Path, default=None,
            help="video to read (default: shared/data/vtest.avi from $EDGE_REID_SHARED or ../shared)",
        )
    if crops is not None:
        parser.add_argument("--crops", type=Path, default=None, help="folder of person crops to use instead of cutting them from the video")
        parser.add_argument("--max-crops", type=int, default=crops, help="most person crops (default: %(default)s)")
    return parser


def video_path(args: argparse.Namespace) -> Path:
    """``--video``, or the shared vtest.avi; exits with status 2 and a one-line message when there is none."""
    video = args.video or default_video()
    if video is None:
        _fail("needs a video: pass --video FILE, or put shared/data/vtest.avi in ../shared (or set EDGE_REID_SHARED)")
    if not Path(video).is_file():
        _fail(f"video not found: {video}")
    return Path(video)


def video_frames(args: argparse.Namespace, count: int) -> list:
    """The first ``count`` frames of :func:`video_path`'s video, (H, W, 3) uint8 BGR (fewer when it
    is shorter); exits with status 2 when it yields none."""
    import cv2

    video = video_path(args)
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    if not frames:
        _fail(f"cannot read a frame of {video}")
    return frames


def real_crops(args: argparse.Namespace) -> CropPool:
    """Up to ``--max-crops`` person crops: read from ``--crops`` when given, else cut from the video
    with the bundled detector. Exits with status 2 and the reason when there are none."""
    from edge_reid.errors import EdgeReidError

    try:
        if args.crops is not None:
            return crops_from_folder(args.crops, args.max_crops)
        return crops_from_video(video_path(args), args.max_crops)
    except EdgeReidError as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    raise SystemExit(2)
