"""A camera faster than the loop: the newest frame each time (the default) against every frame in order.

A stand-in camera plays vtest.avi in real time at ``--speed`` times its own rate (``--speed 4``: a
40 fps camera whose people move four times as fast as recorded), decoding each frame when it is
due; a frame not yet read waits in an unbounded buffer, as a network stream's decoder keeps them.
The real loop (``Pipeline``: detector, tracker, ReID model, identities; ``--backend``) reads it
through :class:`edge_reid.sources.FrameSource`, once as ``edge-reid run`` does (the newest frame,
the rest dropped) and once with ``--all-frames`` (every frame, in order), one after the other.

Per mode: frames processed and dropped, the loop's fps, the delay from a frame's arrival to its
result (median, 95th percentile, last), and HOTA / DetA / IDF1 against vtest's ground truth on the
frames that mode processed (TrackEval, as ``bench_tracking.py``)::

    python benchmarks/live_camera.py --speed 4
    python benchmarks/live_camera.py --speed 2 --backend onnxruntime

A missing ``--video`` or ``--gt``, or a backend that cannot be opened, exits with status 2 and one
line before the camera starts.
"""

from __future__ import annotations

import collections
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_tracking as bench  # noqa: E402
from _common import benchmark_parser, shared_dir, video_path  # noqa: E402

from edge_reid.detections import Detections  # noqa: E402
from edge_reid.sources import FrameSource  # noqa: E402


class PacedVideo:
    """A stand-in for a camera's ``cv2.VideoCapture``: the video's frames arrive in real time at
    ``fps`` (from the first read); a read returns the next frame in order, waiting until it has
    arrived. Remembers each returned image's frame number (0-based) and arrival time."""

    def __init__(self, path: str, fps: float, max_frames: int | None) -> None:
        self._video = cv2.VideoCapture(path)
        self.fps = float(fps)
        self.limit = max_frames
        self.started: float | None = None
        self.read_count = 0
        self._numbers: collections.OrderedDict[int, tuple[int, float]] = collections.OrderedDict()

    def isOpened(self) -> bool:
        return self._video.isOpened()

    def read(self):
        if self.started is None:
            self.started = time.monotonic()
        if self.limit is not None and self.read_count >= self.limit:
            return False, None
        arrival = self.started + self.read_count / self.fps
        time.sleep(max(0.0, arrival - time.monotonic()))
        ok, image = self._video.read()
        if not ok:
            return False, None
        self._numbers[id(image)] = (self.read_count, arrival)
        self._numbers.move_to_end(id(image))  # an id freed and reused is the newest entry, not evicted early
        while len(self._numbers) > 256:  # delivered frames are a few frames old at most
            self._numbers.popitem(last=False)
        self.read_count += 1
        return True, image

    def number_of(self, image: np.ndarray) -> tuple[int, float]:
        """``(frame number, arrival time)`` of an image this capture returned."""
        return self._numbers[id(image)]

    def get(self, prop):
        return 0.0

    def release(self) -> None:
        self._video.release()


def run_mode(pipeline, video: str, fps: float, newest_only: bool, max_frames: int | None) -> dict:
    """One pass of the loop over the paced camera; what it processed, how late, and its MOT rows."""
    camera = PacedVideo(video, fps, max_frames)
    source = FrameSource("/dev/video-standin", "camera", reconnect_timeout_s=0.0,
                         capture_factory=lambda kind, name: camera, newest_only=newest_only)
    numbers: dict[int, int] = {}  # delivered index -> camera frame number
    delays: list[float] = []
    rows: list[list[float]] = []
    started = time.perf_counter()
    for result in pipeline.run(source):
        number, arrival = camera.number_of(result.image)
        delays.append(time.monotonic() - arrival)
        numbers[result.frame_index] = number
        for person in result.people:
            if person.identity_id >= 1:
                rows.append([number, person.identity_id, *person.bbox])
        for past in result.past:
            if past.identity_id >= 1:
                rows.append([numbers[past.frame_index], past.identity_id, *past.bbox])
    seconds = time.perf_counter() - started
    return {
        "processed": sorted(numbers.values()), "dropped": source.stats.dropped_frames, "read": camera.read_count,
        "fps": len(numbers) / seconds, "delays": delays, "rows": rows,
    }


def score(outcome: dict, ground_truth) -> dict:
    """HOTA, DetA, IDF1 on the frames this mode processed (ground truth cut to them, renumbered)."""
    processed = outcome["processed"]
    frames = [bench.SequenceFrame(i + 1, number, 0.0, Detections.empty()) for i, number in enumerate(processed)]
    sequence = bench.Sequence(ground_truth.folder.name, frames, ground_truth.frame_rate or 10.0, 1.0, None, 1)
    renumber = {number: i + 1 for i, number in enumerate(processed)}
    rows = np.array(
        [[renumber[r[0]], r[1], r[2], r[3], r[4] - r[2], r[5] - r[3], 1.0] for r in outcome["rows"]], np.float64
    ).reshape(-1, 7)
    run = bench.TrackerRun("mode", "mode", rows=rows)
    return bench.score([run], ground_truth, sequence)["mode"]


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)  # --video, default shared/data/vtest.avi
    parser.add_argument("--speed", type=float, default=4.0, help="the camera plays the video this many times faster than recorded (default 4)")
    parser.add_argument("--backend", default="auto", help="both models' backend (default auto, as edge-reid run)")
    parser.add_argument("--max-frames", type=int, help="stop the camera after this many frames")
    parser.add_argument("--gt", type=Path, help="the video's MOTChallenge ground truth (default: data/vtest-mot in $EDGE_REID_SHARED or ../shared)")
    args = parser.parse_args(argv)
    if not args.speed > 0:
        parser.error("--speed must be > 0")
    video = str(video_path(args))  # exits with status 2 and one line when there is none

    from edge_reid.detector import PersonDetector
    from edge_reid.embedder import Embedder
    from edge_reid.errors import EdgeReidError
    from edge_reid.pipeline import Pipeline
    from edge_reid.tracking import CameraMotion, Tracker, TrackerConfig

    config = TrackerConfig()
    try:
        ground_truth = bench.load_ground_truth(args.gt or shared_dir() / "data" / "vtest-mot")
        embedder = Embedder(backend=args.backend, backend_options={"side_by_side": True})
        detector = PersonDetector(
            score_threshold=config.low_score, min_box_height=bench.RUN_MIN_BOX_HEIGHT, backend=args.backend,
            side_by_side=embedder.backend.runs_on_cpu,
        )
    except EdgeReidError as error:
        print(f"live_camera.py: {error}", file=sys.stderr)
        return 2
    fps = ground_truth.frame_rate * args.speed
    print(f"camera: {Path(video).name} at {fps:g} fps ({args.speed:g}x); ReID model {embedder.backend.describe()}; "
          f"detector {detector.backend.describe()}")
    lines = [
        "| mode | frames processed | dropped | loop fps | delay median / p95 / last, ms | HOTA | DetA | IDF1 |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for label, newest_only in (("newest frame (default)", True), ("every frame (--all-frames)", False)):
        pipeline = Pipeline(embedder, detector, min_box_height=bench.RUN_MIN_BOX_HEIGHT, tracker=Tracker(config, camera_motion=CameraMotion()))
        outcome = run_mode(pipeline, video, fps, newest_only, args.max_frames)
        metrics = score(outcome, ground_truth)
        delays = np.array(outcome["delays"]) * 1000.0
        lines.append(
            f"| {label} | {len(outcome['processed'])} of {outcome['read']} | {outcome['dropped']} | {outcome['fps']:.1f} "
            f"| {statistics.median(delays):.0f} / {np.percentile(delays, 95):.0f} / {delays[-1]:.0f} "
            f"| {metrics['HOTA']:.1f} | {metrics['DetA']:.1f} | {metrics['IDF1']:.1f} |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
