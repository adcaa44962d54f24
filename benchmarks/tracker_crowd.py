"""The tracker's time per frame in a steady crowd as its tracks' appearance histories fill: appearance scored
only for the pairs whose cost it can change, each history stacked only when scored (edge-reid's tracker)
against every track's history stacked and scored against every embedded detection (as before 2026-12-02),
side by side in one run, with the same tracks.

A synthetic crowd (no model, no video: the tracker alone): PEOPLE people on a grid filling a 1920x1080
frame, walking slowly, detected at score 0.9 with 5% of detections missed, each with its own random
512-d look plus noise; whom to embed is chosen as ``Pipeline`` does (``plan_embeddings``: new, lost
and stale tracks). Both trackers see identical input, interleaved frame by frame; the table gives the
mean ``Tracker.update`` time over each window of seconds and the ratio. A track's history gains a view
about once a second (``refresh_s``) up to 100, so the cost of scoring every pair grows for 100 s.

Examples::

    python benchmarks/tracker_crowd.py                          # 50 and 200 people, 110 s at 5 fps
    python benchmarks/tracker_crowd.py --people 200 --seconds 30
"""

from __future__ import annotations

import time

import numpy as np

from _common import benchmark_parser


def _crowd(people: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    columns = int(np.ceil(np.sqrt(people * 1.8)))
    rows = int(np.ceil(people / columns))
    width, height = 1920 / columns * 0.6, 1080 / rows * 0.8
    x = (np.arange(people) % columns) * (1920 / columns)
    y = (np.arange(people) // columns) * (1080 / rows)
    looks = rng.normal(size=(people, 512)).astype(np.float32)
    looks /= np.linalg.norm(looks, axis=1, keepdims=True)
    return np.stack([x, y, x + width, y + height], axis=1), looks


def measure(people: int, seconds: float, fps: float, window_s: float) -> list[tuple[float, float, float]]:
    """(end of window s, ms per update scoring the pairs appearance can change, ms per update scoring every pair)."""
    import edge_reid.tracking.tracker as tracker_module
    from edge_reid.detections import Detections
    from edge_reid.tracking import Tracker
    from edge_reid.tracking.association import pairs_appearance_can_change
    from edge_reid.tracking.embedding_policy import plan_embeddings

    def every_pair(cost, limit, proximity):
        return np.ones(cost.shape, bool)

    rng = np.random.default_rng(0)
    grid, looks = _crowd(people, rng)
    trackers = {"pairs": Tracker(), "every": Tracker()}
    spent = {name: [] for name in trackers}
    outputs_agree = True
    rows = []
    frames = int(seconds * fps)
    per_window = max(1, int(round(window_s * fps)))
    for frame in range(frames):
        now = frame / fps
        seen = rng.random(people) > 0.05
        boxes = (grid + 3.0 * now + rng.normal(0, 1.0, grid.shape))[seen].astype(np.float32)
        vectors = looks[seen] + rng.normal(0, 0.01, (int(seen.sum()), 512)).astype(np.float32)  # cosine ~0.95 to its look
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        detections = Detections.from_boxes(boxes, np.full(len(boxes), 0.9, np.float32))
        results = {}
        for name, tracker in trackers.items():
            embedded = plan_embeddings(tracker, detections, now)
            tracker_module.pairs_appearance_can_change = pairs_appearance_can_change if name == "pairs" else every_pair
            try:
                start = time.perf_counter()
                results[name] = tracker.update(detections, vectors, now, embedded=embedded)
                spent[name].append(time.perf_counter() - start)
            finally:
                tracker_module.pairs_appearance_can_change = pairs_appearance_can_change
        outputs_agree &= bool(np.array_equal(results["pairs"].track_ids, results["every"].track_ids))
        if (frame + 1) % per_window == 0 or frame + 1 == frames:
            take = slice(-((frame % per_window) + 1), None)
            rows.append((now + 1 / fps, 1e3 * float(np.mean(spent["pairs"][take])), 1e3 * float(np.mean(spent["every"][take]))))
    if not outputs_agree:
        raise SystemExit("tracker_crowd: the two trackers' track ids differ: the pairs left out changed an assignment")
    return rows


def main() -> int:
    parser = benchmark_parser(__doc__, video=False)
    parser.add_argument("--people", default="50,200", help="comma-separated crowd sizes (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=110.0, help="seconds of crowd per size (default %(default)s)")
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second (default %(default)s)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per table row (default %(default)s)")
    args = parser.parse_args()
    print("| people | seconds | scored pairs: ms / update | every pair: ms / update | every / scored |")
    print("|---:|---:|---:|---:|---:|")
    for people in (int(text) for text in args.people.split(",")):
        for end_s, pairs_ms, every_ms in measure(people, args.seconds, args.fps, args.window):
            print(f"| {people} | {end_s:.0f} | {pairs_ms:.1f} | {every_ms:.1f} | x{every_ms / pairs_ms:.1f} |", flush=True)
    print("same track ids in every frame: yes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
