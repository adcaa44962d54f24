"""Camera-motion estimate: edge-reid's against BoT-SORT's settings, error against a known motion and time per frame.

Both follow corners by pyramidal Lucas-Kanade and fit a similarity with RANSAC (OpenCV). BoT-SORT's
``sparseOptFlow`` (``tracker/gmc.py``) halves every frame and follows up to 1000 corners at least
1 pixel apart; edge-reid (:class:`edge_reid.tracking.CameraMotion`) shrinks frames to at most 480
pixels on the long side (at least halved) and follows up to 300 corners spread 1/64 of that side
apart. On the moving-camera stand-in (``moving_camera_sequence.py``) the true motion between two
frames is known, so each estimate's error is measured: the largest distance, over a grid of
points, between where the estimate and the truth send them (output pixels). Time is the whole
estimate per frame (grey, shrink, corners, flow, fit), the two timed alternately in rounds on one
thread of OpenCV.

    python benchmarks/camera_motion_cost.py --frames 300 --rounds 3

A third row is edge-reid's class with the twelfth session's settings (OpenCV's 21-pixel window,
corners searched every frame), so that this session's changes are measured side by side; it has
the phase-correlation retry, which runs only on frames the first search refuses. A table times a
frame each estimate's search refuses (a cut from each 40th fixed-camera frame to its mirror image).
With ``--jumps`` (by default 40-200 px) it also measures the reach: how often each estimate finds a
sudden sideways jump of the view of that many pixels (a window of each 40th fixed-camera frame,
as wide as the largest jump leaves room for, moved by the jump; found: within 2 px). With ``--sizes`` (by default 1080p and 4K) it also times edge-reid's estimate on the fixed-camera
frames resized, with a track to move (the whole search) and with none (``needed=False``: only the
grey, shrunk frame is made), medians of the rounds.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, moving_camera_sequence
from _common import benchmark_parser, read_frames, video_frames, video_path  # noqa: E402


class BotSortSparseFlow:
    """BoT-SORT's ``sparseOptFlow`` estimate as published (downscale 2, 1000 corners, 1 px apart)."""

    def __init__(self) -> None:
        self._previous = None
        self._corners = None

    def estimate(self, image: np.ndarray) -> np.ndarray:
        import cv2

        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        gray = cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2))
        corners = cv2.goodFeaturesToTrack(gray, maxCorners=1000, qualityLevel=0.01, minDistance=1, blockSize=3)
        warp = np.eye(2, 3)
        previous, previous_corners = self._previous, self._corners
        self._previous, self._corners = gray, corners
        if previous is None or previous_corners is None:
            return warp
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, gray, previous_corners, None)
        good = status.reshape(-1).astype(bool)
        if good.sum() < 10:
            return warp
        fitted, _ = cv2.estimateAffinePartial2D(previous_corners[good], moved[good], method=cv2.RANSAC)
        if fitted is None:
            return warp
        fitted = fitted.astype(np.float64)
        fitted[:, 2] *= 2
        return fitted


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--frames", type=int, default=300, help="frames of each video (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (default 3)")
    parser.add_argument(
        "--sizes", default="1920x1080,3840x2160",
        help="also time edge-reid's estimate on the fixed-camera frames resized to these WxH sizes, with a track to "
        "move and with none (default 1920x1080,3840x2160; '' for none)",
    )
    parser.add_argument(
        "--jumps", default="40,80,120,160,200",
        help="sideways jumps of the view, pixels, to measure each estimate's reach on (default 40,80,120,160,200; '' for none)",
    )
    args = parser.parse_args(argv)
    import tempfile

    import cv2

    from edge_reid.tracking import CameraMotion
    from moving_camera_sequence import OUTPUT_SIZE, moving_camera_sequence, true_warp

    cv2.setNumThreads(1)
    source = video_path(args)
    fixed = video_frames(args, args.frames)
    height, width = fixed[0].shape[:2]
    with tempfile.TemporaryDirectory(prefix="edge-reid-moving-") as scratch:
        video, _, _ = moving_camera_sequence(source, source.parent / "vtest-mot", Path(scratch), args.frames)
        moving = read_frames(video, args.frames)
    methods = {
        "BoT-SORT sparseOptFlow": BotSortSparseFlow,
        "edge-reid CameraMotion": CameraMotion,
        # the same class with the twelfth session's settings (OpenCV's 21-px window, corners searched every frame)
        "edge-reid, 21-px window, corners every frame": lambda: CameraMotion(flow_window=21, redetect_every=1),
    }
    grid = np.array([[x, y, 1.0] for x in range(40, OUTPUT_SIZE[0], 80) for y in range(40, OUTPUT_SIZE[1], 80)])
    rows = []
    for name, make in methods.items():
        estimator = make()
        warps = [estimator.estimate(frame) for frame in moving]
        errors = np.array([np.abs(grid @ warps[n].T - grid @ true_warp(n - 1, n, width, height).T).max() for n in range(1, len(moving))])
        rows.append([name, float(np.median(errors)), float(np.percentile(errors, 95)), float(errors.max())])
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for video_name, frames in (("fixed camera (vtest, 768x576)", fixed), ("moving stand-in (640x480)", moving)):
            for name, make in methods.items():
                estimator = make()
                started = time.perf_counter()
                for frame in frames:
                    estimator.estimate(frame)
                times.setdefault((video_name, name), []).append((time.perf_counter() - started) / len(frames) * 1e3)
    cut_ms: dict[str, list[float]] = {}
    views = fixed[::40]
    for _ in range(args.rounds):
        for name, make in methods.items():
            spent = 0.0
            for frame in views:  # a cut: the view, then the same view mirrored (no motion to find)
                estimator = make()
                estimator.estimate(frame)
                mirrored = np.ascontiguousarray(frame[:, ::-1])
                started = time.perf_counter()
                estimator.estimate(mirrored)
                spent += time.perf_counter() - started
            cut_ms.setdefault(name, []).append(spent / len(views) * 1e3)
    jumps = [int(text) for text in args.jumps.split(",") if text]
    reach = {(name, jump): 0 for name in methods for jump in jumps}
    view_width = width - 40 - max(jumps, default=0)
    if jumps and view_width < 200:
        parser.error(f"--jumps: a jump of {max(jumps)} px leaves a window of {view_width} px in {width}-px frames; use smaller jumps")
    for name, make in methods.items():
        for jump in jumps:
            for frame in views:
                estimator = make()
                estimator.estimate(np.ascontiguousarray(frame[20:height - 20, 20:20 + view_width]))
                warp = estimator.estimate(np.ascontiguousarray(frame[20:height - 20, 20 + jump:20 + jump + view_width]))
                reach[(name, jump)] += bool(abs(warp[0, 2] + jump) < 2 and abs(warp[1, 2]) < 2)
    sizes = [tuple(int(side) for side in text.split("x")) for text in args.sizes.split(",") if text]
    by_size: dict[tuple[str, bool], list[float]] = {}
    resized = {f"{w}x{h}": [cv2.resize(frame, (w, h)) for frame in fixed[:50]] for w, h in sizes}
    for _ in range(args.rounds):
        for size_name, frames in {f"{width}x{height}": fixed[:50], **resized}.items():
            for needed in (True, False):
                estimator = CameraMotion()
                started = time.perf_counter()
                for frame in frames:
                    estimator.estimate(frame, needed=needed)
                by_size.setdefault((size_name, needed), []).append((time.perf_counter() - started) / len(frames) * 1e3)
    print(f"{len(moving)} frames, OpenCV {cv2.__version__} on 1 thread; error: output pixels against the known motion\n")
    print("| estimate | error median | error 95% | error max |")
    print("|---|---:|---:|---:|")
    for name, median, p95, worst in rows:
        print(f"| {name} | {median:.2f} | {p95:.2f} | {worst:.2f} |")
    print("\n| video | estimate | ms per frame (rounds) | median | x BoT-SORT's time |")
    print("|---|---|---|---:|---:|")
    for (video_name, name), values in times.items():
        reference = statistics.median(times[(video_name, "BoT-SORT sparseOptFlow")])
        print(f"| {video_name} | {name} | {', '.join(f'{v:.2f}' for v in values)} | {statistics.median(values):.2f} | "
              f"x{statistics.median(values) / reference:.2f} |")
    print("\n| estimate | a frame its search refuses (a cut to the mirrored view): ms (rounds) | median |")
    print("|---|---|---:|")
    for name, values in cut_ms.items():
        print(f"| {name} | {', '.join(f'{v:.2f}' for v in values)} | {statistics.median(values):.2f} |")
    if jumps:
        print(f"\n| estimate | {' | '.join(f'jump {jump} px' for jump in jumps)} |")
        print(f"|---|{'---:|' * len(jumps)}")
        for name in methods:
            print(f"| {name} | {' | '.join(f'{reach[(name, jump)]}/{len(views)}' for jump in jumps)} |")
    if sizes:
        print("\n| frame size (vtest resized, 50 frames) | edge-reid, a track to move: ms per frame | no track (only the grey, shrunk frame): ms per frame |")
        print("|---|---:|---:|")
        for size_name in dict.fromkeys(name for name, _ in by_size):
            print(f"| {size_name} | {statistics.median(by_size[(size_name, True)]):.2f} | {statistics.median(by_size[(size_name, False)]):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
