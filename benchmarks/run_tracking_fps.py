"""fps of ``edge-reid run``'s loop on vtest.avi: the tracking loop against the appearance-only loop it replaced.

Both loops read the same frames with the same model files, threads and prefetching, in one
process, alternating (A, B, A, B, ...), so that the machine's load hits both alike:

- **appearance only** (the loop before tracking): the detector at confidence 0.35, every
  detection embedded, every embedding matched against the gallery (``Gallery.match``);
- **tracking** (``edge-reid run`` now): the detector down to the tracker's low score, the
  tracker, only the crops :func:`~edge_reid.tracking.plan_embeddings` asks for embedded,
  identities from the gallery.

Prints fps, embeddings per frame and ms per stage for each run, then the median fps of each
loop and their ratio. For docs/benchmarks.md:

    python benchmarks/run_tracking_fps.py --frames 300 --repeats 3
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common: the repository on the path, the default video
from _common import benchmark_parser, video_path  # noqa: E402

from edge_reid.cpu import threads_per_model  # noqa: E402
from edge_reid.detections import sanitize_boxes  # noqa: E402
from edge_reid.detector import PersonDetector  # noqa: E402
from edge_reid.embedder import Embedder  # noqa: E402
from edge_reid.pipeline import Pipeline  # noqa: E402

APPEARANCE_ONLY_SCORE = 0.35  # the detector threshold of the loop before tracking


class AppearanceOnlyLoop(Pipeline):
    """The loop before tracking: embed every detection, match every embedding against the gallery."""

    def process(self, image, timestamp_s=0.0, frame_index=0, detections=None, file_name=None):
        boxes, keep = sanitize_boxes(detections.boxes, image.shape[0], image.shape[1], self.min_box_height)
        boxes = boxes[keep]
        embeddings = self.embedder.embed_boxes(image, boxes, out=self._embedding_buffer(len(boxes)))
        self.timer.add("preprocess", self.embedder.last_seconds["preprocess"])
        self.timer.add("embed", self.embedder.last_seconds["embed"])
        self.embeddings_total += len(boxes)
        with self.timer.measure("match"):
            self.gallery.match(embeddings)
        self.timer.frames += 1
        return len(boxes)


def run_once(loop: str, video: Path, frames: int, threads: int) -> tuple[float, float, dict[str, float]]:
    embedder = Embedder(threads=threads)
    if loop == "appearance only":
        pipeline = AppearanceOnlyLoop(embedder, PersonDetector(score_threshold=APPEARANCE_ONLY_SCORE, threads=threads))
    else:
        pipeline = Pipeline(embedder, PersonDetector(score_threshold=0.1, threads=threads))
    start = time.perf_counter()
    for _ in pipeline.run(str(video), max_frames=frames):
        pass
    seconds = time.perf_counter() - start
    embedder.close()
    count = pipeline.timer.frames
    return count / seconds, pipeline.embeddings_total / max(count, 1), pipeline.timer.mean_ms()


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    video = video_path(args)
    threads = threads_per_model()
    fps: dict[str, list[float]] = {"appearance only": [], "tracking": []}
    for repeat in range(1, args.repeats + 1):
        for loop in fps:
            rate, per_frame, stage_ms = run_once(loop, video, args.frames, threads)
            fps[loop].append(rate)
            stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in stage_ms.items())
            print(f"repeat {repeat} | {loop:15s} | {rate:5.2f} fps | {per_frame:4.2f} embeddings/frame | ms/frame: {stages}", flush=True)
    old, new = statistics.median(fps["appearance only"]), statistics.median(fps["tracking"])
    print(f"median fps over {args.repeats} runs of {args.frames} frames: appearance only {old:.2f}, tracking {new:.2f}, "
          f"ratio tracking/appearance-only {new / old:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
