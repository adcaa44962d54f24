"""fps of the main loop on vtest.avi: everything in one thread vs decode+detect in a worker thread.

Alternates the two modes in one process (same frames, same models files) and prints fps and the
ms per frame of each stage. For docs/benchmarks.md:

    python benchmarks/run_modes.py --frames 150 --repeats 2
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import benchmark_parser, video_path

from edge_reid.cpu import threads_per_model
from edge_reid.detector import PersonDetector
from edge_reid.embedder import Embedder
from edge_reid.pipeline import Pipeline

MODES = {
    # name: (threads per model, prefetch)
    "one thread, all cores per model": (None, 0),
    "worker thread, half the cores per model": (threads_per_model(), 2),
}


def run_once(video: Path, frames: int, threads: int | None, prefetch: int) -> tuple[float, dict[str, float]]:
    pipeline = Pipeline(Embedder(threads=threads), PersonDetector(threads=threads))
    start = time.perf_counter()
    for _ in pipeline.run(str(video), max_frames=frames, prefetch=prefetch):
        pass
    return pipeline.timer.frames / (time.perf_counter() - start), pipeline.timer.mean_ms()


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    video = video_path(args)
    for repeat in range(1, args.repeats + 1):
        for name, (threads, prefetch) in MODES.items():
            fps, stage_ms = run_once(video, args.frames, threads, prefetch)
            stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in stage_ms.items())
            print(f"repeat {repeat} | {name:40s} | {fps:5.2f} fps | ms/frame: {stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
