"""Single slow frames of `edge-reid run`'s loop: per-frame wall time (p50, p99, max) and what the slowest frames did.

A kiosk greeting people or a robot following one needs every frame on time: a freeze of a second every
minute is a defect even at a good mean frame rate. Each scenario runs :class:`edge_reid.runner.Runner` over
the video (repeated) for ``--seconds``, with the CLI's defaults (camera-motion compensation on), and records
the wall time between consecutive frames (the Runner's ``on_frame`` callback: what is done after a frame, a
save or a prune, counts in the next one). Scenarios, one after the other in this process (the models loaded once):

- ``default``: no gallery file (identities kept in memory), as ``edge-reid run --source VIDEO``.
- ``gallery N, save in loop``: ``--gallery`` of N identities made beforehand (random unit vectors, 8 views
  each, tagged with the bundled model's id, as ``gallery_memory.py`` makes them) and ``--save-every S``, each
  save written in the frame loop's thread, holding the gallery's lock, as before 2026-12-02 (a subclass of the
  Runner that saves synchronously).
- ``gallery N, save in background``: the same with the Runner as it is: the loop prunes and copies the gallery
  (:meth:`Gallery.snapshot <edge_reid.matching.gallery.Gallery.snapshot>`), a thread writes the copy.
- ``prune M strangers``: no gallery file, ``--prune-after 60`` and an in-memory gallery holding M strangers
  last seen an hour ago: the first prune (60 s into the run) removes them all in the loop.

For the slowest frames of each scenario the table names what ran in their interval: a save (its time in
the loop), the gallery's copy, a prune, Python's garbage collector (pauses above 1 ms, from
:data:`gc.callbacks`), the first frame with a number of crops embedded not seen before (a new batch size for
the ReID model), the first frame of a pass over the video.

Examples::

    python benchmarks/loop_hiccups.py                                 # 10k and 50k identities, 60 s each
    python benchmarks/loop_hiccups.py --identities 10000 --seconds 30 --save-every 10
"""

from __future__ import annotations

import gc
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from _common import benchmark_parser, shared_dir

#: Python collector pauses shorter than this are not named among a slow frame's causes.
GC_NOTED_S = 0.001


@dataclass
class Recording:
    """Per-frame times and the suspects' intervals of one scenario (perf_counter seconds)."""

    frame_ends: list[float] = field(default_factory=list)
    embedded: list[int] = field(default_factory=list)
    frame_index: list[int] = field(default_factory=list)
    events: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, what)


def _timed(recording: Recording, what: str, method):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            end = time.perf_counter()
            recording.events.append((start, end, f"{what} {1000 * (end - start):.0f} ms"))
    return wrapper


def _make_gallery(identities: int, embedder, rng: np.random.Generator, last_seen: float):
    from edge_reid.matching.gallery import Gallery

    gallery = Gallery(embedder.dim, model_id=embedder.model_id, model_name=embedder.model_path.name)
    for _ in range(identities):
        views = rng.normal(size=(gallery.history_size, embedder.dim)).astype(np.float32)
        gallery.add(views / np.linalg.norm(views, axis=1, keepdims=True), timestamp=last_seen)
    return gallery


def _run(name: str, embedder, detector, gallery, seconds: float, video: Path, runner_class, **runner_args) -> dict:
    from edge_reid.pipeline import Pipeline
    from edge_reid.sources import open_source
    from edge_reid.tracking import CameraMotion, Tracker, TrackerConfig

    pipeline = Pipeline(embedder, detector, gallery=gallery, tracker=Tracker(TrackerConfig(), camera_motion=CameraMotion()))
    recording = Recording()
    gallery = pipeline.gallery
    for method, what in (("save", "save in loop"), ("snapshot", "gallery copy"), ("write_snapshot", "file write"), ("prune", "prune")):
        setattr(gallery, method, _timed(recording, what, getattr(gallery, method)))

    def collector(phase: str, info: dict, started: list[float] = [0.0]) -> None:  # noqa: B006 - the pause's start
        if phase == "start":
            started[0] = time.perf_counter()
        elif time.perf_counter() - started[0] >= GC_NOTED_S:
            end = time.perf_counter()
            recording.events.append((started[0], end, f"gc gen{info['generation']} {1000 * (end - started[0]):.0f} ms"))

    runner = runner_class(pipeline, handle_signals=False, **runner_args)
    start = time.perf_counter()

    def on_frame(result, summary) -> None:
        recording.frame_ends.append(time.perf_counter())
        recording.embedded.append(result.embedded)
        recording.frame_index.append(result.frame_index)
        if recording.frame_ends[-1] - start >= seconds:
            runner.stop()

    gc.callbacks.append(collector)
    try:
        runner.run(open_source(str(video), repeat=0), on_frame=on_frame)
    finally:
        gc.callbacks.remove(collector)
    return _summarise(name, recording, start)


def _summarise(name: str, recording: Recording, start: float) -> dict:
    ends = np.array(recording.frame_ends)
    times = np.diff(np.concatenate([[start], ends]))
    batch_seen: set[int] = set()
    tags: list[list[str]] = []
    for i, (began, ended) in enumerate(zip(np.concatenate([[start], ends[:-1]]), ends)):
        tag = [what for s, e, what in recording.events if s < ended and e > began]
        if recording.embedded[i] not in batch_seen:
            batch_seen.add(recording.embedded[i])
            tag.append(f"first batch of {recording.embedded[i]}")
        if recording.frame_index[i] == 0:
            tag.append("first frame of a pass")
        tags.append(tag)
    slowest = np.argsort(-times)[:3]
    described = "; ".join(f"{1000 * times[i]:.0f} ms: {', '.join(tags[i]) or 'none of the suspects'}" for i in slowest)
    return {"scenario": name, "frames": len(times), "p50": 1000 * np.percentile(times, 50),
            "p99": 1000 * np.percentile(times, 99), "max": 1000 * times.max(), "slowest": described}


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--identities", type=int, nargs="+", default=[10_000, 50_000], help="sizes of the pre-made gallery")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds each scenario runs (default: %(default)s)")
    parser.add_argument("--save-every", type=float, default=10.0, help="seconds between saves (default: %(default)s)")
    parser.add_argument("--strangers", type=int, default=10_000, help="strangers the prune scenario removes (0: no such scenario)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["default", "loop", "background"],
                        help="scenarios to leave out")
    args = parser.parse_args()

    from edge_reid.detector import PersonDetector
    from edge_reid.embedder import Embedder
    from edge_reid.runner import GallerySaving, Runner
    from edge_reid.tracking import TrackerConfig

    class SavesInLoop(Runner):
        """The Runner before 2026-12-02: each save during the run written in the frame loop's thread."""

        def _save_gallery(self, saving, background=False):
            return super()._save_gallery(saving, background=False)

    video = args.video or shared_dir() / "data" / "vtest.avi"
    embedder = Embedder(backend_options={"side_by_side": True})
    detector = PersonDetector(score_threshold=TrackerConfig().low_score, side_by_side=embedder.backend.runs_on_cpu)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if "default" not in args.skip:
            rows.append(_run("default", embedder, detector, None, args.seconds, video, Runner))
        for identities in args.identities:
            path = Path(folder) / f"g{identities}.edgereid"
            _make_gallery(identities, embedder, rng, time.time()).save(path)
            from edge_reid.matching.gallery import Gallery

            for label, runner_class in (("loop", SavesInLoop), ("background", Runner)):
                if label in args.skip:
                    continue
                gallery = Gallery.load(path, model_id=embedder.model_id, model_name=embedder.model_path.name)
                saving = GallerySaving(path, args.save_every)
                rows.append(_run(f"gallery {identities:,}, save in {label}", embedder, detector, gallery, args.seconds, video,
                                 runner_class, gallery_saving=saving))
                del gallery
                gc.collect()
        if args.strangers:
            gallery = _make_gallery(args.strangers, embedder, rng, time.time() - 3600)
            rows.append(_run(f"prune {args.strangers:,} strangers", embedder, detector, gallery, max(args.seconds, 70.0), video,
                             Runner, prune_after_s=60.0))
    print("| scenario | frames | p50 ms | p99 ms | max ms | the 3 slowest frames: what ran in them |")
    print("|---|---:|---:|---:|---:|---|")
    for row in rows:
        print(f"| {row['scenario']} | {row['frames']} | {row['p50']:.1f} | {row['p99']:.1f} | {row['max']:.0f} | {row['slowest']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
