"""fps of the main loop on vtest.avi for each way of giving the two models the cores, per backend.

Modes, alternated in one process (same frames, same model files), for each CPU backend asked for:

- one thread: decode, detect, embed and match in turn, every core for each model;
- worker thread, half the cores per model: decode + detect ahead in a worker thread beside the
  ReID model, each model on :func:`edge_reid.cpu.threads_per_model` threads;
- worker thread, every core per model: the same, each model on every core;
- worker thread, edge-reid's default: what ``edge-reid run`` and ``Pipeline()`` do
  (``side_by_side``: half the cores on ONNX Runtime, every core on OpenVINO);
- with ``--in-memory``, also the two worker-thread modes of ONNX Runtime's and OpenVINO's defaults
  (half the cores, every core) on frames decoded beforehand (no decoding in the loop: if fps does
  not rise, the cores, not the order of the stages, set the pace).

Prints fps, the ms per frame of each stage, and the process's CPU time per frame (user + system,
all threads) with the share of the cores it fills. For docs/benchmarks.md:

    python benchmarks/run_modes.py --backend onnxruntime,openvino --frames 300 --repeats 3 --in-memory
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from _common import benchmark_parser, video_path

from edge_reid.cpu import threads_per_model, usable_cpu_count
from edge_reid.detector import PersonDetector
from edge_reid.embedder import Embedder
from edge_reid.pipeline import Pipeline
from edge_reid.sources import Frame, FrameSource, open_source

DEFAULT = "default"
IN_MEMORY = ", frames decoded beforehand"
MODES = {
    # name: (threads per model, prefetch)
    "one thread, every core per model": (usable_cpu_count(), 0),
    "worker thread, half the cores per model": (threads_per_model(), 2),
    "worker thread, every core per model": (usable_cpu_count(), 2),
    "worker thread, edge-reid's default": (DEFAULT, 2),
}


class FramesInMemory(FrameSource):
    """A :class:`FrameSource` over frames decoded beforehand: the loop without its decoding."""

    def __init__(self, frames: list[Frame]) -> None:  # noqa: D107 (no capture to open)
        self.frames = frames

    def __iter__(self):
        return iter(self.frames)

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def decode(video: Path, frames: int) -> list[Frame]:
    """The first ``frames`` frames of ``video``, (H, W, 3) uint8 BGR each."""
    source = open_source(str(video))
    try:
        return [frame for _, frame in zip(range(frames), source)]
    finally:
        source.close()


def run_once(video: Path | list[Frame], frames: int, backend: str, threads, prefetch: int) -> tuple[float, float, dict[str, float]]:
    """fps, CPU ms per frame (all threads) and mean ms per frame of each stage for one pass over ``frames`` frames."""
    if threads == DEFAULT:
        embedder = Embedder(backend=backend, backend_options={"side_by_side": True})
        detector = PersonDetector(backend=backend, side_by_side=embedder.backend.runs_on_cpu)
    else:
        embedder, detector = Embedder(backend=backend, threads=threads), PersonDetector(backend=backend, threads=threads)
    pipeline = Pipeline(embedder, detector)
    source = FramesInMemory(video) if isinstance(video, list) else str(video)
    cpu_before, start = os.times(), time.perf_counter()
    for _ in pipeline.run(source, max_frames=frames, prefetch=prefetch):
        pass
    seconds, cpu_after = time.perf_counter() - start, os.times()
    cpu_ms = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) * 1000.0 / pipeline.timer.frames
    fps = pipeline.timer.frames / seconds
    embedder.close()
    detector.close()
    return fps, cpu_ms, pipeline.timer.mean_ms()


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--backend", default="onnxruntime,openvino", help="comma-separated CPU backends")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--in-memory", action="store_true", help="also run the worker-thread modes on frames decoded beforehand")
    args = parser.parse_args()
    video = video_path(args)
    backends = [name.strip() for name in args.backend.split(",") if name.strip()]
    cores = usable_cpu_count()
    print(f"{cores} usable cores; half = {threads_per_model()}")
    modes = dict(MODES)
    decoded = None
    if args.in_memory:
        for name in ("worker thread, half the cores per model", "worker thread, every core per model"):
            modes[name + IN_MEMORY] = MODES[name]
        decoded = decode(video, args.frames)
    results: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for repeat in range(1, args.repeats + 1):
        for backend in backends:
            for name, (threads, prefetch) in modes.items():
                frames = decoded if name.endswith(IN_MEMORY) else video
                fps, cpu_ms, stage_ms = run_once(frames, args.frames, backend, threads, prefetch)
                results.setdefault((backend, name), []).append(fps)
                cpu.setdefault((backend, name), []).append(cpu_ms)
                stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in stage_ms.items())
                busy = cpu_ms * fps / 1000.0 / cores
                print(f"repeat {repeat} | {backend:11s} | {name:66s} | {fps:6.1f} fps | CPU {cpu_ms:5.1f} ms/frame "
                      f"({busy:.0%} of {cores} cores) | ms/frame: {stages}", flush=True)
    print("\n| backend | mode | fps per repeat | median fps | CPU ms per frame (median) | cores busy |\n|---|---|---|---:|---:|---:|")
    for (backend, name), values in results.items():
        fps, cpu_ms = statistics.median(values), statistics.median(cpu[(backend, name)])
        print(f"| {backend} | {name} | {', '.join(f'{v:.1f}' for v in values)} | {fps:.1f} | {cpu_ms:.1f} | "
              f"{cpu_ms * fps / 1000.0 / cores:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
