"""fps of the main loop on vtest.avi for each way of giving the two models the cores, per backend.

Modes, alternated in one process (same frames, same model files), for each CPU backend asked for:

- one thread: decode, detect, embed and match in turn, every core for each model;
- worker thread, half the cores per model: decode + detect ahead in a worker thread beside the
  ReID model, each model on :func:`edge_reid.cpu.threads_per_model` threads;
- worker thread, every core per model: the same, each model on every core;
- worker thread, edge-reid's default: what ``edge-reid run`` and ``Pipeline()`` do
  (``side_by_side``: half the cores on ONNX Runtime, every core on OpenVINO).

Prints fps and the ms per frame of each stage. For docs/benchmarks.md:

    python benchmarks/run_modes.py --backend onnxruntime,openvino --frames 300 --repeats 3
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from _common import benchmark_parser, video_path

from edge_reid.cpu import threads_per_model, usable_cpu_count
from edge_reid.detector import PersonDetector
from edge_reid.embedder import Embedder
from edge_reid.pipeline import Pipeline

DEFAULT = "default"
MODES = {
    # name: (threads per model, prefetch)
    "one thread, every core per model": (usable_cpu_count(), 0),
    "worker thread, half the cores per model": (threads_per_model(), 2),
    "worker thread, every core per model": (usable_cpu_count(), 2),
    "worker thread, edge-reid's default": (DEFAULT, 2),
}


def run_once(video: Path, frames: int, backend: str, threads, prefetch: int) -> tuple[float, dict[str, float]]:
    """fps and mean ms per frame of each stage for one pass over ``frames`` frames."""
    if threads == DEFAULT:
        embedder = Embedder(backend=backend, backend_options={"side_by_side": True})
        detector = PersonDetector(backend=backend, side_by_side=embedder.backend.runs_on_cpu)
    else:
        embedder, detector = Embedder(backend=backend, threads=threads), PersonDetector(backend=backend, threads=threads)
    pipeline = Pipeline(embedder, detector)
    start = time.perf_counter()
    for _ in pipeline.run(str(video), max_frames=frames, prefetch=prefetch):
        pass
    fps = pipeline.timer.frames / (time.perf_counter() - start)
    embedder.close()
    detector.close()
    return fps, pipeline.timer.mean_ms()


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--backend", default="onnxruntime,openvino", help="comma-separated CPU backends")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    video = video_path(args)
    backends = [name.strip() for name in args.backend.split(",") if name.strip()]
    print(f"{usable_cpu_count()} usable cores; half = {threads_per_model()}")
    results: dict[tuple[str, str], list[float]] = {}
    for repeat in range(1, args.repeats + 1):
        for backend in backends:
            for name, (threads, prefetch) in MODES.items():
                fps, stage_ms = run_once(video, args.frames, backend, threads, prefetch)
                results.setdefault((backend, name), []).append(fps)
                stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in stage_ms.items())
                print(f"repeat {repeat} | {backend:11s} | {name:40s} | {fps:6.1f} fps | ms/frame: {stages}", flush=True)
    print("\n| backend | mode | fps per repeat | median fps |\n|---|---|---|---:|")
    for (backend, name), values in results.items():
        print(f"| {backend} | {name} | {', '.join(f'{v:.1f}' for v in values)} | {statistics.median(values):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
