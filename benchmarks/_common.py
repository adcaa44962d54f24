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
``--crops`` a folder of person crops instead, ``--max-crops`` how many. Scripts that write a
stand-in sequence (``tiled_sequence.py``, ``moving_camera_sequence.py``) share
:func:`stand_in_main`. Other real assets (data sets, ground truth) are found under
:func:`shared_dir`, the folder ``edge-reid bench`` finds its video in.

Scripts that compare backends run without OpenVINO: :func:`usable_backends` and
:func:`openvino_or_none` drop it with one line (:data:`OPENVINO_SKIPPED`) and the other rows are
measured as usual; a script that measures OpenVINO alone calls :func:`require_openvino`, which
exits with status 2 and one line.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge_reid.bench import CropPool, crops_from_folder, crops_from_video, default_video, shared_folder  # noqa: E402


#: The line a script comparing backends prints when OpenVINO cannot be imported (its rows are left out).
OPENVINO_SKIPPED = "openvino: skipped (not installed: pip install openvino)"


#: The folder of the real assets: :func:`edge_reid.bench.shared_folder` (``$EDGE_REID_SHARED``, else
#: ``../shared``, else ``shared/`` beside the repository), as ``edge-reid bench`` finds it.
shared_dir = shared_folder


def benchmark_parser(
    doc: str | None, video: bool = True, crops: int | None = None, *, prog: str | None = None, notes: str | None = None
) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` is the script's docstring.

    Args:
        doc: the script's ``__doc__``: its first line becomes the description, the rest the epilog.
        video: add ``--video FILE`` (the video the script reads).
        crops: add ``--crops FOLDER`` and ``--max-crops N`` with this default (None: neither).
        prog: the name in usage and error lines (default: the name the script was run by), for
            scripts whose ``main(argv)`` the tests call.
        notes: a paragraph printed after the docstring (wrapped), e.g. choices known only at run time.
    """
    first, _, rest = (doc or "").strip().partition("\n")
    epilog = "\n\n".join(part for part in (rest.strip(), textwrap.fill(notes, 100) if notes else "") if part)
    parser = argparse.ArgumentParser(
        prog=prog, description=first, epilog=epilog or None, formatter_class=argparse.RawDescriptionHelpFormatter
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
        _fail("needs a video: pass --video FILE, or put vtest.avi in ../shared/data (or set EDGE_REID_SHARED to the folder holding data/vtest.avi)")
    if not Path(video).is_file():
        _fail(f"video not found: {video}")
    return Path(video)


def read_frames(video: str | Path, count: int | None = None) -> list:
    """The first ``count`` (None: all) frames of a video file, (H, W, 3) uint8 BGR; fewer when it is shorter."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    frames = []
    while count is None or len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def video_frames(args: argparse.Namespace, count: int) -> list:
    """The first ``count`` frames of :func:`video_path`'s video, (H, W, 3) uint8 BGR (fewer when it
    is shorter); exits with status 2 when it yields none."""
    video = video_path(args)
    frames = read_frames(video, count)
    if not frames:
        _fail(f"cannot read a frame of {video}")
    return frames


def write_sequence_files(sequence: Path, rows, fps: float, length: int, width: int, height: int) -> None:
    """Write a MOTChallenge sequence's ``gt/gt.txt`` (the (N, 10) ``rows``) and ``seqinfo.ini`` (named
    after the folder) into ``sequence``, which holds ``gt/`` already."""
    import numpy as np

    np.savetxt(sequence / "gt" / "gt.txt", rows, delimiter=",", fmt="%.6g")
    (sequence / "seqinfo.ini").write_text(
        f"[Sequence]\nname={sequence.name}\nframeRate={fps:g}\nseqLength={length}\nimWidth={width}\nimHeight={height}\n"
    )


def stand_in_main(doc: str | None, write: Callable, argv: list[str] | None = None) -> int:
    """The command line of a script that writes a stand-in sequence from a video and its ground truth:
    ``--video``, ``--gt`` (default: ``vtest-mot`` beside the video), ``--out``, ``--max-frames``.

    Args:
        doc: the script's docstring (its ``--help``).
        write: ``write(video, ground_truth, out, max_frames) -> (video path, sequence folder, frames)``.

    Returns:
        The exit status: 0, or 2 with one ``error:`` line when the stand-in cannot be written.
    """
    parser = benchmark_parser(doc)
    parser.add_argument("--gt", type=Path, help="the video's MOTChallenge ground truth (default: shared/data/vtest-mot beside vtest.avi)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--max-frames", type=int, help="write at most this many frames")
    args = parser.parse_args(argv)
    from edge_reid.errors import EdgeReidError

    video = video_path(args)
    try:
        output, sequence, length = write(video, args.gt or video.parent / "vtest-mot", args.out, args.max_frames)
    except (ValueError, OSError, EdgeReidError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {output} ({length} frames) and {sequence}")
    return 0


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


def openvino_or_none():
    """The ``openvino`` module, or None where it cannot be imported (:data:`OPENVINO_SKIPPED` printed)."""
    from edge_reid.backends.openvino import import_openvino
    from edge_reid.errors import BackendUnavailableError

    try:
        return import_openvino()
    except BackendUnavailableError:
        print(OPENVINO_SKIPPED, flush=True)
        return None


def require_openvino():
    """The ``openvino`` module; exits with status 2 and one line (how to install it) where it cannot be imported."""
    from edge_reid.backends.openvino import import_openvino
    from edge_reid.errors import BackendUnavailableError

    try:
        return import_openvino()
    except BackendUnavailableError as exc:
        _fail(str(exc))


def usable_backends(text: str) -> list[str]:
    """The comma-separated ``--backend`` names, without ``openvino`` where it cannot be imported
    (:data:`OPENVINO_SKIPPED` printed); exits with status 2 when none is left."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if "openvino" in names and openvino_or_none() is None:
        names.remove("openvino")
        if not names:
            _fail("no backend left to measure: OpenVINO is not installed (pip install openvino), and no other --backend was given")
    if not names:
        _fail(f"--backend names no backend: {text!r}")
    return names


def openvino_bf16_note() -> str:
    """"" when OpenVINO's CPU device here computes in bf16, else why not (one line, for a skipped bf16 row)."""
    from edge_reid.backends.openvino import precision_unavailable

    why = precision_unavailable("bf16")
    return f"{why}; bf16 needs AMX or AVX512-BF16" if why else ""


def _fail(message: str) -> None:
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    raise SystemExit(2)
