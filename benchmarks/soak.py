"""Soak test of `edge-reid run`: a video played in a loop with a persistent gallery, for many minutes.

Runs ``edge-reid run --source VIDEO --repeat 0 --gallery G --save-every S --events E --mot M
--summary J`` (the command itself, through ``edge_reid.cli.main`` in this process, so that the
process's own memory and file descriptors are the command's) and, each minute, prints:

- resident memory (``VmRSS`` of ``/proc/self/status``, MB) and open file descriptors;
- the tracker's live tracks (tentative, tracked and lost; the mean and the most over the minute,
  sampled every few seconds);
- identities in the gallery, identities created in that minute (pruned ones included) and
  embeddings stored;
- frames processed in the minute and passes over the video.

After ``--minutes`` it stops the run as SIGTERM would (outputs flushed, gallery saved) and
prints the growth after ``--warmup`` minutes: the least-squares slope of resident memory
(MB per 10 minutes), the range of descriptors, live tracks in the first and the second half,
and identities created per minute once the video repeats. Targets: memory < 1 MB per
10 minutes, descriptors flat, live tracks and identities not growing.

For docs/benchmarks.md (under ``nice`` on a shared machine: the figures that matter are growth,
not speed); the second run bounds the gallery, so that what remains is the process's own growth:

    nice -n 10 python benchmarks/soak.py --minutes 20
    nice -n 10 python benchmarks/soak.py --minutes 20 --prune-after 60
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when imported by the tests
from _common import benchmark_parser, video_path  # noqa: E402

from edge_reid import runner as runner_module  # noqa: E402


@dataclass
class Minute:
    """What one minute of the run looked like (its end state, and live tracks over it)."""

    minute: int
    seconds: float
    frames: int
    passes: int
    rss_mb: float
    fds: int
    live_tracks_mean: float
    live_tracks_max: int
    identities: int
    identities_created: int
    stored_embeddings: int
    fps: float = 0.0


def resident_mb() -> float:
    """Resident memory of this process (VmRSS), MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def open_descriptors() -> int:
    """Open file descriptors of this process (entries of /proc/self/fd, the listing's own excluded)."""
    return len(os.listdir("/proc/self/fd")) - 1


def identities_created(gallery) -> int:
    """Identities a gallery has ever created (ids are never reused: pruned ones still count)."""
    return gallery.metadata()["next_identity_id"] - 1


def slope_per_10_minutes(minutes: list[float], values: list[float]) -> float:
    """Least-squares slope of ``values`` over ``minutes``, per 10 minutes (0 with fewer than 2 points)."""
    if len(minutes) < 2:
        return 0.0
    return 10.0 * statistics.linear_regression(minutes, values).slope


class Observer:
    """Samples the running command: finds its Runner, then records a :class:`Minute` each minute."""

    def __init__(self, minutes: float, sample_s: float, video_frames: int) -> None:
        self.minutes = minutes
        self.sample_s = sample_s
        self.video_frames = video_frames
        self.runner = None
        self.rows: list[Minute] = []
        self.done = threading.Event()

    def attach(self) -> None:
        """Wrap Runner.run so that the command's runner is known once it starts."""
        original = runner_module.Runner.run
        observer = self

        def observed(runner, *args, **kwargs):
            observer.runner = runner
            return original(runner, *args, **kwargs)

        runner_module.Runner.run = observed

    def _frames(self) -> int:
        return self.runner.pipeline.timer.frames

    def watch(self) -> None:
        """The sampling thread: waits for the first frame, then samples until the time is up, then stops the run."""
        while (self.runner is None or self._frames() == 0) and not self.done.is_set():
            time.sleep(0.2)
        if self.done.is_set():
            return
        pipeline = self.runner.pipeline
        start = time.monotonic()
        frames_before, created_before = self._frames(), identities_created(pipeline.gallery)
        live: list[int] = []
        minute = 1
        print(f"{'min':>3} {'frames':>7} {'fps':>5} {'passes':>6} {'RSS MB':>8} {'fds':>4} {'live tracks':>12} "
              f"{'identities':>10} {'new':>4} {'stored emb':>10}", flush=True)
        while not self.done.is_set():
            live.append(len(pipeline.tracker.tracks))
            elapsed = time.monotonic() - start
            if elapsed >= 60.0 * minute:
                frames = self._frames()
                identities, created = len(pipeline.gallery), identities_created(pipeline.gallery)
                row = Minute(
                    minute=minute, seconds=round(elapsed, 1), frames=frames, passes=frames // self.video_frames,
                    rss_mb=round(resident_mb(), 2), fds=open_descriptors(),
                    live_tracks_mean=round(statistics.fmean(live), 2), live_tracks_max=max(live),
                    identities=identities, identities_created=created - created_before,
                    stored_embeddings=len(pipeline.gallery.store),
                    fps=round((frames - frames_before) / 60.0, 2),
                )
                self.rows.append(row)
                print(f"{row.minute:>3} {row.frames:>7} {row.fps:>5.1f} {row.passes:>6} {row.rss_mb:>8.1f} {row.fds:>4} "
                      f"{row.live_tracks_mean:>7.1f} ({row.live_tracks_max:>2}) {row.identities:>10} "
                      f"{row.identities_created:>4} {row.stored_embeddings:>10}", flush=True)
                frames_before, created_before, live = frames, created, []
                if minute >= self.minutes:
                    self.runner.stop()
                    return
                minute += 1
            self.done.wait(self.sample_s)


def report(rows: list[Minute], warmup: int, video_frames: int) -> dict:
    """Growth after warm-up, printed and returned for --json."""
    after = [row for row in rows if row.minute > warmup]
    if len(after) < 2:
        print(f"too short to measure growth: {len(rows)} minutes with a warm-up of {warmup}")
        return {}
    minutes = [float(row.minute) for row in after]
    rss_slope = slope_per_10_minutes(minutes, [row.rss_mb for row in after])
    half = len(after) // 2
    first, second = after[:half], after[half:]
    # Minutes that began after the first pass over the video: everyone in them has been seen before.
    repeating = [row for previous, row in zip(rows, rows[1:]) if previous.frames >= video_frames]
    result = {
        "warmup_minutes": warmup,
        "rss_mb_start": after[0].rss_mb,
        "rss_mb_end": after[-1].rss_mb,
        "rss_mb_per_10_minutes": round(rss_slope, 3),
        "fds_min": min(row.fds for row in after),
        "fds_max": max(row.fds for row in after),
        "live_tracks_first_half": round(statistics.fmean(row.live_tracks_mean for row in first), 2),
        "live_tracks_second_half": round(statistics.fmean(row.live_tracks_mean for row in second), 2),
        "live_tracks_max": max(row.live_tracks_max for row in after),
        "identities_created_per_minute_while_repeating": [row.identities_created for row in repeating],
        "identities_end": rows[-1].identities,
        "stored_embeddings_end": rows[-1].stored_embeddings,
        "passes": rows[-1].passes,
    }
    print()
    print(f"after {warmup} minutes of warm-up (minutes {warmup + 1}..{rows[-1].minute}):")
    print(f"  resident memory: {result['rss_mb_start']:.1f} -> {result['rss_mb_end']:.1f} MB, "
          f"slope {rss_slope:+.2f} MB per 10 minutes (target < 1)")
    print(f"  file descriptors: {result['fds_min']}..{result['fds_max']}")
    print(f"  live tracks (mean per minute): first half {result['live_tracks_first_half']:.1f}, second half "
          f"{result['live_tracks_second_half']:.1f}; most at once {result['live_tracks_max']}")
    print(f"  identities created per minute once the video repeats: {result['identities_created_per_minute_while_repeating']}")
    print(f"  identities at the end: {result['identities_end']}, embeddings stored: {result['stored_embeddings_end']}, "
          f"passes over the video: {result['passes']}")
    return result


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument(
        "--minutes", type=int, default=20, help="whole minutes to run after the first frame (one row per minute; default: %(default)s)"
    )
    parser.add_argument("--warmup", type=int, default=5, help="minutes left out of the growth figures (default: %(default)s)")
    parser.add_argument("--save-every", type=float, default=10.0, help="seconds between gallery saves (default: %(default)s)")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples of the live tracks (default: %(default)s)")
    parser.add_argument("--prune-after", type=float, default=None,
                        help="edge-reid run --prune-after: a gallery bounded by forgetting unnamed identities not seen for "
                        "this many seconds (default: never, the gallery grows with every identity created)")
    parser.add_argument("--backend", default="auto", help="edge-reid run --backend (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the gallery, events, MOT rows and summary (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the minutes and the growth figures here")
    args = parser.parse_args()
    video = video_path(args)

    import cv2

    capture = cv2.VideoCapture(str(video))
    video_frames = max(1, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    capture.release()

    out = args.out or Path(tempfile.mkdtemp(prefix="edge-reid-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        "run", "--source", str(video), "--repeat", "0", "--backend", args.backend,
        "--gallery", str(out / "soak.edgereid"), "--save-every", str(args.save_every),
        "--events", str(out / "events.jsonl"), "--mot", str(out / "mot.txt"), "--summary", str(out / "summary.json"),
    ] + (["--prune-after", str(args.prune_after)] if args.prune_after is not None else [])
    print(f"soak: edge-reid {' '.join(argv)}", flush=True)
    print(f"for {args.minutes:g} minutes after the first frame; outputs in {out}", flush=True)

    from edge_reid.cli import main as edge_reid_main

    observer = Observer(args.minutes, args.sample_s, video_frames)
    observer.attach()
    watcher = threading.Thread(target=observer.watch, name="soak-observer", daemon=True)
    watcher.start()
    try:
        code = edge_reid_main(argv)
    finally:
        observer.done.set()
        watcher.join(timeout=10.0)
    print(f"edge-reid run exited with {code}")
    result = report(observer.rows, args.warmup, video_frames)
    if args.json is not None:
        payload = {"command": argv, "video_frames": video_frames, "minutes": [asdict(row) for row in observer.rows], "growth": result}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
