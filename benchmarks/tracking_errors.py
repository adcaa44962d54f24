"""Where a tracker's HOTA is lost: its errors on one sequence, counted by cause.

Runs edge-reid's tracking ``Pipeline`` on ``bench_tracking.py``'s cached detections (or reads a
``--mot`` result), records what the tracker knew in every frame (each live track's state and the
detection it took), and explains each error against the ground truth:

- **false positives**: reported boxes on no counted person, split into boxes on people the ground
  truth marks "ignore" (``conf`` 0), boxes of tracks that are (almost) never on a person (a still
  object), boxes near a person but at IoU < 0.5 (localisation), second boxes on a person, others;
- **misses**: counted people without a reported box, split by what the tracker had at that place:
  no detection at all (>= the tracker's ``low_score``), only low-score detections, a tentative track
  (not reported before its ``confirm_hits``-th hit), a lost track, a confirmed track's box off the
  person, a detection no track took;
- **identity changes** of each person (the reported id of one ground-truth person changes), split by
  the time since the person was last reported and by what the new id is: a new identity, or an
  identity that was someone else's (a wrong re-identification merge), or one of the person's own
  earlier ids;
- **what each kind of error costs in HOTA**, by TrackEval on corrected copies of the result
  ("oracle" rows): without the false positives of each cause, with every reported box snapped to its
  person's ground-truth box (localisation), and with ids made perfect on the reported boxes (the
  association ceiling of these boxes).

The metric stays TrackEval's (``edge_reid.evaluation.mot``, MOT15 settings); boxes are matched here
only to explain errors: one-to-one per frame, Hungarian on IoU, pairs at IoU >= 0.5 (the CLEAR MOT
and IDF1 threshold; HOTA averages over 0.05..0.95, so its counts differ a little).

Examples::

    python benchmarks/tracking_errors.py                           # vtest, edge-reid's defaults
    python benchmarks/tracking_errors.py --scale 0.5               # the half-size stand-in
    python benchmarks/tracking_errors.py --frame-step 2 --json e.json
    python benchmarks/tracking_errors.py --set max_lost_s=2        # a changed constant
    python benchmarks/tracking_errors.py --mot vtest.txt           # a result file (no tracker state)
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_tracking as bench  # noqa: E402
from _common import benchmark_parser  # noqa: E402

#: The Pipeline's constants that ``--set`` may change (TrackerConfig's are found by name).
PIPELINE_CONSTANTS = ("threshold", "reid_threshold", "unnamed_reid_threshold", "refresh_s")
#: IoU at which a reported box counts as on a person (CLEAR MOT, IDF1).
MATCH_IOU = 0.5
#: IoU from which an unmatched box counts as *near* a person (a localisation error rather than a stray box).
NEAR_IOU = 0.2
#: A track on a person in fewer than this fraction of its reported frames is "never on a person".
NON_PERSON_FRACTION = 0.1


@dataclass
class TrackSnapshot:
    """One live track in one frame: id, state, whether it took a detection, its boxes (x1, y1, x2, y2 pixels)."""

    track_id: int
    state: str
    matched: bool
    box: np.ndarray
    kalman_box: np.ndarray


@dataclass
class FrameRecord:
    """What the tracker had in one evaluated frame (pixels of the source frame)."""

    number: int
    detections: np.ndarray  # (N, 4) x1, y1, x2, y2
    scores: np.ndarray  # (N,)
    tracks: list[TrackSnapshot] = field(default_factory=list)


class RecordingEdgeReid(bench.EdgeReidTracker):
    """edge-reid's Pipeline as the benchmark drives it, recording each frame's tracks."""

    def __init__(self, embedder, tracker_overrides=None, pipeline_overrides=None, scale: float = 1.0) -> None:
        super().__init__(embedder, tracker_overrides, pipeline_overrides)
        self.scale = scale
        self.records: list[FrameRecord] = []

    def update(self, frame, image):
        result = super().update(frame, image)
        record = FrameRecord(frame.number, frame.detections.boxes / self.scale, frame.detections.scores)
        for track in self.pipeline.tracker.tracks:
            record.tracks.append(
                TrackSnapshot(track.track_id, track.state.value, track.detection_index >= 0, track.box / self.scale, track.kalman_box / self.scale)
            )
        self.records.append(record)
        return result


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) IoU of boxes x1, y1, x2, y2."""
    from edge_reid.tracking.boxes import iou_matrix

    return iou_matrix(np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4))


def xyxy(rows: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 of MOTChallenge rows (left, top, width, height in columns 2-5)."""
    return np.concatenate((rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]), axis=1)


def match(gt_boxes: np.ndarray, boxes: np.ndarray, threshold: float = MATCH_IOU) -> list[tuple[int, int]]:
    """One-to-one pairs (gt row, box row) of maximum total IoU, each at IoU >= ``threshold``."""
    from scipy.optimize import linear_sum_assignment

    if len(gt_boxes) == 0 or len(boxes) == 0:
        return []
    overlap = iou(gt_boxes, boxes)
    rows, cols = linear_sum_assignment(-np.where(overlap >= threshold, overlap, 0.0))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if overlap[r, c] >= threshold]


@dataclass
class Analysis:
    """Counts by cause, and the per-row matches the oracle corrections use."""

    gt_boxes: int = 0
    reported: int = 0
    matched: int = 0
    false_positives: Counter = field(default_factory=Counter)
    misses: Counter = field(default_factory=Counter)
    id_changes: Counter = field(default_factory=Counter)
    events: list = field(default_factory=list)  # (frame, gt id, old id, new id, cause) per identity change
    fp_rows: dict = field(default_factory=dict)  # cause -> list of result row indices
    gt_of_row: dict = field(default_factory=dict)  # result row -> (gt id, gt box)
    merged_identities: int = 0


def analyse(rows: np.ndarray, gt_rows: np.ndarray, records: list[FrameRecord] | None, low_score: float, high_score: float,
            fps: float, max_lost_s: float) -> Analysis:
    """Explain the errors of result ``rows`` (MOTChallenge, frame numbers of the evaluated sequence) against ``gt_rows``."""
    out = Analysis()
    counted = gt_rows[gt_rows[:, 6] != 0]
    ignored = gt_rows[gt_rows[:, 6] == 0]
    out.gt_boxes, out.reported = len(counted), len(rows)
    record_of = {r.number: r for r in records} if records else {}
    frames = np.unique(np.concatenate((counted[:, 0], rows[:, 0]))).astype(int)
    on_person = defaultdict(lambda: [0, 0])  # result id -> [matched rows, rows]
    sequence_of_gt: dict[int, list[tuple[int, int]]] = defaultdict(list)  # gt id -> [(frame, result id)]
    unmatched_rows: list[tuple[int, int]] = []  # (row index, frame)
    for frame in frames:
        gt_index = np.flatnonzero(counted[:, 0] == frame)
        row_index = np.flatnonzero(rows[:, 0] == frame)
        gt_boxes, boxes = xyxy(counted[gt_index]), xyxy(rows[row_index])
        pairs = match(gt_boxes, boxes)
        matched_gt = {g for g, _ in pairs}
        matched_box = {b for _, b in pairs}
        for g, b in pairs:
            row = int(row_index[b])
            out.gt_of_row[row] = (int(counted[gt_index[g], 1]), gt_boxes[g])
            sequence_of_gt[int(counted[gt_index[g], 1])].append((int(frame), int(rows[row, 1])))
        out.matched += len(pairs)
        for b, row in enumerate(row_index):
            on_person[int(rows[row, 1])][1] += 1
            on_person[int(rows[row, 1])][0] += int(b in matched_box)
            if b not in matched_box:
                unmatched_rows.append((int(row), int(frame)))
        record = record_of.get(int(frame))
        for g in range(len(gt_index)):
            if g not in matched_gt:
                out.misses[_miss_cause(gt_boxes[g], boxes, record, low_score, high_score)] += 1
    # false positives, by cause
    for row, frame in unmatched_rows:
        box = xyxy(rows[row : row + 1])
        share = on_person[int(rows[row, 1])]
        ignore_boxes = xyxy(ignored[ignored[:, 0] == frame])
        frame_gt = xyxy(counted[counted[:, 0] == frame])
        if len(ignore_boxes) and iou(box, ignore_boxes).max() >= MATCH_IOU:
            cause = "on a person the ground truth ignores"
        elif share[0] < NON_PERSON_FRACTION * share[1]:
            cause = "track (almost) never on a person"
        elif len(frame_gt) and iou(box, frame_gt).max() >= MATCH_IOU:
            cause = "second box on a person"
        elif len(frame_gt) and iou(box, frame_gt).max() >= NEAR_IOU:
            cause = "near a person, IoU < 0.5"
        else:
            cause = "elsewhere"
        out.false_positives[cause] += 1
        out.fp_rows.setdefault(cause, []).append(row)
    # identity changes of each person
    owner_first: dict[int, tuple[int, int]] = {}  # result id -> (first frame, gt id)
    for gt_id, seq in sequence_of_gt.items():
        for frame, result_id in seq:
            if result_id not in owner_first or frame < owner_first[result_id][0]:
                owner_first[result_id] = (frame, gt_id)
    gts_of_id = defaultdict(set)
    for gt_id, seq in sequence_of_gt.items():
        for _, result_id in seq:
            gts_of_id[result_id].add(gt_id)
    out.merged_identities = sum(len(g) > 1 for g in gts_of_id.values())
    for gt_id, seq in sequence_of_gt.items():
        seq.sort()
        seen = set()
        for (f0, a), (f1, b) in zip(seq, seq[1:]):
            seen.add(a)
            if a == b:
                continue
            gap_s = (f1 - f0 - 1) / fps
            when = "no gap" if f1 == f0 + 1 else (f"gap <= {max_lost_s:g} s (lost period)" if gap_s <= max_lost_s else f"gap > {max_lost_s:g} s")
            if b in seen:
                what = "back to an earlier id of the person"
            elif owner_first.get(b, (0, gt_id))[1] != gt_id and owner_first[b][0] < f1:
                what = "an id that was someone else's"
            else:
                what = "a new id"
            out.id_changes[f"{when}: {what}"] += 1
            out.events.append((f1, gt_id, a, b, f"{when}: {what}"))
    return out


def _miss_cause(gt_box, boxes, record: FrameRecord | None, low_score: float, high_score: float) -> str:
    if len(boxes) and iou(gt_box, boxes).max() >= NEAR_IOU:
        return "reported box off the person (IoU < 0.5)"
    if record is None:
        return "not reported (no tracker state: --mot)"
    detection_iou = iou(gt_box, record.detections)[0] if len(record.detections) else np.zeros(0)
    usable = (detection_iou >= MATCH_IOU) & (record.scores >= np.float32(low_score))
    if not usable.any():
        return "no detection"
    for track in record.tracks:
        if not track.matched or iou(gt_box, track.box)[0, 0] < MATCH_IOU:
            continue
        if track.state == "tentative":
            return "tentative track (not yet confirmed)"
        return "confirmed track without an identity"
    lost = [t for t in record.tracks if t.state == "lost" and iou(gt_box, t.kalman_box)[0, 0] >= NEAR_IOU]
    if record.scores[usable].max() < np.float32(high_score):  # float32, as the tracker compares
        return "low-score detection only, " + ("a lost track near" if lost else "no track near")
    return "high-score detection no track took, " + ("a lost track near" if lost else "no track near")


def oracle_rows(rows: np.ndarray, analysis: Analysis) -> dict[str, np.ndarray]:
    """Corrected copies of ``rows``: each kind of false positive removed, boxes snapped, ids made perfect."""
    variants = {}
    for cause, indices in sorted(analysis.fp_rows.items()):
        variants[f"without FPs '{cause}'"] = np.delete(rows, indices, axis=0)
    every_fp = [i for indices in analysis.fp_rows.values() for i in indices]
    variants["without any FP"] = np.delete(rows, every_fp, axis=0)
    snapped = rows.copy()
    for row, (_, box) in analysis.gt_of_row.items():
        snapped[row, 2:6] = (box[0], box[1], box[2] - box[0], box[3] - box[1])
    variants["boxes snapped to their person (localisation)"] = snapped
    perfect = rows.copy()
    spare = int(rows[:, 1].max(initial=0)) + 100000
    for row in range(len(rows)):
        perfect[row, 1] = analysis.gt_of_row[row][0] if row in analysis.gt_of_row else spare + int(rows[row, 1])
    variants["ids made perfect on these boxes (association ceiling)"] = perfect
    return variants


def build_parser() -> argparse.ArgumentParser:
    parser = benchmark_parser(__doc__, video=False, prog="tracking_errors.py")
    parser.add_argument("--mot", help="analyse this MOTChallenge result file instead of running edge-reid (no tracker state: misses are not split)")
    parser.add_argument("--list", action="store_true", help="also list every identity change (frame, person, old and new id)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="change a TrackerConfig or Pipeline constant (threshold, reid_threshold, unnamed_reid_threshold, refresh_s), repeatable",
    )
    bench.add_sequence_arguments(parser)
    return parser


def _overrides(items: list[str]) -> tuple[dict, dict]:
    from dataclasses import fields

    from edge_reid.tracking import TrackerConfig

    tracker_names = {f.name: f.type for f in fields(TrackerConfig)}
    tracker, pipeline = {}, {}
    for item in items:
        name, value = bench.number_setting(item)
        if name in tracker_names:
            tracker[name] = int(value) if tracker_names[name] in (int, "int") else value
        elif name in PIPELINE_CONSTANTS:
            pipeline[name] = value
        else:
            raise bench.BenchError(f"--set: unknown constant {name!r} (TrackerConfig's, or {', '.join(PIPELINE_CONSTANTS)})")
    return tracker, pipeline


def _print_counter(title: str, counter: Counter, total: int | None = None) -> None:
    print(f"\n{title}" + (f" ({sum(counter.values())} of {total})" if total is not None else f" ({sum(counter.values())})"))
    print("| cause | count |\n|---|---:|")
    for cause, count in counter.most_common():
        print(f"| {cause} | {count} |")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from edge_reid.tracking import TrackerConfig

        tracker_overrides, pipeline_overrides = _overrides(args.set)
        try:
            config = TrackerConfig(**tracker_overrides)
        except (TypeError, ValueError) as exc:  # a value the tracker refuses: one line, as for an unknown name
            raise bench.BenchError(f"--set: {exc}") from None
        ground_truth, sequence = bench.resolve_inputs(args)
        records = None
        if args.mot:
            from edge_reid.motchallenge import read_rows

            run = bench.TrackerRun("result", Path(args.mot).name, rows=read_rows(args.mot, "result")[:, :7])
        else:
            context = bench.BuildContext(sequence.fps)
            tracker = RecordingEdgeReid(context.embedder(), tracker_overrides, pipeline_overrides, scale=sequence.scale)
            run = bench.run_trackers(sequence, [tracker], progress=not args.no_progress)[0]
            records = tracker.records
        gt_rows = bench.evaluated_ground_truth(ground_truth, sequence)
        analysis = analyse(run.rows, gt_rows, records, config.low_score, config.high_score, sequence.fps, config.max_lost_s)
        variants = oracle_rows(run.rows, analysis)
        runs = [run] + [bench.TrackerRun(f"v{i}", label, rows=rows) for i, (label, rows) in enumerate(variants.items())]
        metrics = bench.score(runs, ground_truth, sequence)
    except bench.EdgeReidError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    changed = f"; changed: {', '.join(args.set)}" if args.set else ""
    print(f"{run.label} on {sequence.name}: {len(sequence.frames)} frames at {sequence.fps:g} fps (scale {sequence.scale:g}){changed}")
    print(f"counted ground-truth boxes {analysis.gt_boxes}, reported boxes {analysis.reported}, on a person at IoU >= 0.5: {analysis.matched}")
    _print_counter("False positives (reported boxes on no counted person)", analysis.false_positives, analysis.reported)
    _print_counter("Misses (counted people without a reported box)", analysis.misses, analysis.gt_boxes)
    _print_counter("Identity changes of a person (consecutive reported frames with different ids)", analysis.id_changes)
    print(f"reported ids on more than one person: {analysis.merged_identities}")
    if args.list:
        print("\n| frame | person (gt id) | id before | id after | cause |\n|---:|---:|---:|---:|---|")
        for frame, gt_id, before, after, cause in sorted(analysis.events):
            print(f"| {frame} | {gt_id} | {before} | {after} | {cause} |")
    base = metrics[run.name]
    print("\nWhat each correction of the result would give (TrackEval)")
    print("| result | HOTA | DetA | AssA | IDF1 | ID sw. | change HOTA |\n|---|---:|---:|---:|---:|---:|---:|")
    for entry in runs:
        m = metrics[entry.name]
        print(f"| {'as reported' if entry is run else entry.label} | {m['HOTA']:.1f} | {m['DetA']:.1f} | {m['AssA']:.1f} | {m['IDF1']:.1f} "
              f"| {m['IDSW']:.0f} | {m['HOTA'] - base['HOTA']:+.1f} |")
    if args.json:
        bench.write_json(args.json, {
            "schema": "edge-reid-tracking-errors/1",
            "sequence": {"name": sequence.name, "frames": len(sequence.frames), "fps": sequence.fps, "scale": sequence.scale},
            "changed": args.set,
            "false_positives": dict(analysis.false_positives),
            "misses": dict(analysis.misses),
            "id_changes": dict(analysis.id_changes),
            "merged_identities": analysis.merged_identities,
            "metrics": {("as reported" if e is run else e.label): metrics[e.name] for e in runs},
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
