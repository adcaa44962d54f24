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

``--only-default`` runs the last mode alone. ``--without-camera-motion`` runs every mode also with
camera-motion compensation off (``edge-reid run --no-camera-motion``; on is the default), so
what the compensation costs the loop is measured side by side. ``--refresh-s`` runs every mode at each of several
appearance refresh intervals (``Pipeline(refresh_s=)``, seconds; edge-reid's default 1): a tiny one
such as 0.001 embeds every confident person in every frame, as the loop did before the tracker
chose whom to embed, so the ReID model's share of the frame, and with it what a faster ReID
backend can gain, is measured at both ends.

Prints fps, embeddings per frame, the ms per frame of each stage, and the process's CPU time per
frame (user + system, all threads) with the share of the cores it fills, then each backend's fps
as a ratio to the first backend's. For docs/benchmarks.md:

    python benchmarks/run_modes.py --backend onnxruntime,openvino --frames 300 --repeats 3 --in-memory
    python benchmarks/run_modes.py --backend onnxruntime,openvino --frames 300 --repeats 3 --only-default --refresh-s 1,0.001
    python benchmarks/run_modes.py --backend onnxruntime,openvino --frames 795 --repeats 2 --only-default --without-camera-motion

Without OpenVINO installed, its rows are left out (one line says so) and the others measured.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from _common import benchmark_parser, usable_backends, video_path

from edge_reid.cpu import threads_per_model, usable_cpu_count
from edge_reid.defaults import REFRESH_S
from edge_reid.detector import PersonDetector
from edge_reid.embedder import Embedder
from edge_reid.pipeline import Pipeline
from edge_reid.sources import Frame, FrameSource, open_source
from edge_reid.tracking import Tracker, TrackerConfig

DEFAULT = "default"
IN_MEMORY = ", frames decoded beforehand"
MODES = {
    # name: (threads per model, prefetch)
    "one thread, every core per model": (usable_cpu_count(), 0),
    "worker thread, half the cores per model": (threads_per_model(), 2),
    "worker thread, every core per model": (usable_cpu_count(), 2),
    "worker thread, edge-reid's default": (DEFAULT, 2),
}
DEFAULT_MODE = "worker thread, edge-reid's default"


class FramesInMemory(FrameSource):
    """A :class:`FrameSource` over frames decoded beforehand: the loop without its decoding."""

    def __init__(self, frames: list[Frame]) -> None:  # noqa: D107 (no capture to open)
        self.frames = frames
        self._stop = False  # FrameSource.stopped reads it (the loop asks while it waits for a frame)

    def __iter__(self):
        for frame in self.frames:
            if self._stop:
                return
            yield frame

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        pass


def decode(video: Path, frames: int) -> list[Frame]:
    """The first ``frames`` frames of ``video``, (H, W, 3) uint8 BGR each."""
    source = open_source(str(video))
    try:
        return [frame for _, frame in zip(range(frames), source)]
    finally:
        source.close()


def run_once(video: Path | list[Frame], frames: int, backend: str, threads, prefetch: int,
             refresh_s: float = REFRESH_S, camera_motion: bool = True) -> tuple[float, float, float, dict[str, float], list[tuple[int, ...]]]:
    """fps, CPU ms per frame (all threads), embeddings per frame, mean ms per frame of each stage and
    each frame's identity ids for one pass over ``frames`` frames (the detector keeps scores down to
    the tracker's ``low_score``, as in ``edge-reid run``; ``camera_motion`` False: a tracker without
    compensation, as ``--no-camera-motion``)."""
    low_score = TrackerConfig().low_score
    if threads == DEFAULT:
        embedder = Embedder(backend=backend, backend_options={"side_by_side": True})
        detector = PersonDetector(backend=backend, score_threshold=low_score, side_by_side=embedder.backend.runs_on_cpu)
    else:
        embedder = Embedder(backend=backend, threads=threads)
        detector = PersonDetector(backend=backend, score_threshold=low_score, threads=threads)
    pipeline = Pipeline(embedder, detector, refresh_s=refresh_s, tracker=None if camera_motion else Tracker())
    source = FramesInMemory(video) if isinstance(video, list) else str(video)
    cpu_before, start = os.times(), time.perf_counter()
    identities = [tuple(int(i) for i in result.identities.identity_ids)
                  for result in pipeline.run(source, max_frames=frames, prefetch=prefetch)]
    seconds, cpu_after = time.perf_counter() - start, os.times()
    cpu_ms = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) * 1000.0 / pipeline.timer.frames
    fps = pipeline.timer.frames / seconds
    embedded = pipeline.embeddings_total / pipeline.timer.frames
    embedder.close()
    detector.close()
    return fps, cpu_ms, embedded, pipeline.timer.mean_ms(), identities


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--backend", default="onnxruntime,openvino", help="comma-separated CPU backends")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--in-memory", action="store_true", help="also run the worker-thread modes on frames decoded beforehand")
    parser.add_argument("--only-default", action="store_true", help="run edge-reid's default mode only")
    parser.add_argument("--without-camera-motion", action="store_true", help="run every mode also without camera-motion compensation")
    parser.add_argument("--refresh-s", default=str(REFRESH_S),
                        help="comma-separated appearance refresh intervals, seconds > 0 (0.001: every confident person every frame)")
    args = parser.parse_args()
    video = video_path(args)
    try:
        refreshes = [float(value) for value in args.refresh_s.split(",") if value.strip()]
    except ValueError:
        parser.error(f"--refresh-s takes numbers separated by commas, got {args.refresh_s!r}")
    if not refreshes or min(refreshes) <= 0:
        parser.error(f"--refresh-s takes seconds > 0, got {args.refresh_s!r}")
    backends = usable_backends(args.backend)  # without OpenVINO where it is not installed (said so)
    cores = usable_cpu_count()
    print(f"{cores} usable cores; half = {threads_per_model()}")
    modes = {DEFAULT_MODE: MODES[DEFAULT_MODE]} if args.only_default else dict(MODES)
    decoded = None
    if args.in_memory:
        for name in ("worker thread, half the cores per model", "worker thread, every core per model"):
            modes[name + IN_MEMORY] = MODES[name]
        decoded = decode(video, args.frames)
    # A loop setting: (appearance refresh in seconds, camera motion compensated), printed as its label.
    settings = [(refresh_s, motion) for refresh_s in refreshes for motion in ((True, False) if args.without_camera_motion else (True,))]
    labels = {setting: f"{setting[0]:g} s" + ("" if setting[1] else ", no camera motion") for setting in settings}
    results: dict[tuple[str, str, str], list[tuple[float, float, float, float]]] = {}
    identities: dict[tuple[str, str, str], list[tuple[int, ...]]] = {}  # first repeat's, per frame
    for repeat in range(1, args.repeats + 1):
        for (refresh_s, motion), label in labels.items():
            for backend in backends:
                for name, (threads, prefetch) in modes.items():
                    frames = decoded if name.endswith(IN_MEMORY) else video
                    fps, cpu_ms, embedded, stage_ms, seen = run_once(frames, args.frames, backend, threads, prefetch, refresh_s, motion)
                    identities.setdefault((label, backend, name), seen)
                    results.setdefault((label, backend, name), []).append((fps, cpu_ms, embedded, stage_ms.get("embed", 0.0)))
                    stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in stage_ms.items())
                    busy = cpu_ms * fps / 1000.0 / cores
                    print(f"repeat {repeat} | refresh {label} | {backend:11s} | {name:66s} | {fps:6.1f} fps | "
                          f"{embedded:.2f} emb/frame | CPU {cpu_ms:5.1f} ms/frame ({busy:.0%} of {cores} cores) | "
                          f"ms/frame: {stages}", flush=True)
    print("\n| appearance refresh | backend | mode | fps per repeat | median fps | embeddings per frame | embed ms per frame "
          "(median) | CPU ms per frame (median) | cores busy |\n|---:|---|---|---|---:|---:|---:|---:|---:|")
    medians: dict[tuple[str, str, str], float] = {}
    for (label, backend, name), runs in results.items():
        fps, cpu_ms, embedded, embed_ms = (statistics.median(column) for column in zip(*runs))
        medians[(label, backend, name)] = fps
        print(f"| {label} | {backend} | {name} | {', '.join(f'{run[0]:.1f}' for run in runs)} | {fps:.1f} | "
              f"{embedded:.2f} | {embed_ms:.1f} | {cpu_ms:.1f} | {cpu_ms * fps / 1000.0 / cores:.0%} |")
    if len(backends) > 1:
        print(f"\nmedian fps as a ratio to {backends[0]}'s, same mode and refresh; the same identity ids in every frame:")
        for (label, backend, name), fps in medians.items():
            if backend != backends[0]:
                reference = (label, backends[0], name)
                same = "yes" if identities[(label, backend, name)] == identities[reference] else "no"
                print(f"  refresh {label} | {name} | {backend}: x{fps / medians[reference]:.2f} | same identities: {same}")
    if args.without_camera_motion:
        print("\nmedian fps with camera-motion compensation (the default) as a ratio to without it, same backend, mode and refresh:")
        for (refresh_s, motion), label in labels.items():
            if not motion:
                for backend in backends:
                    for name in modes:
                        with_it = medians[(labels[(refresh_s, True)], backend, name)]
                        print(f"  refresh {refresh_s:g} s | {backend} | {name}: x{with_it / medians[(label, backend, name)]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
