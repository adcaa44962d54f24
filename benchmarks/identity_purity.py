"""Whether a gallery identity stays one person over a long run: the ground-truth people its stored views come from, pass by pass.

Plays a sequence with MOTChallenge ground truth ``--passes`` times through one
:class:`~edge_reid.pipeline.Pipeline` and one in-memory gallery (as a kiosk sees the same crowd
hour after hour). Passes are ``--gap-s`` seconds apart, longer than a lost track is kept, so each
pass's people come back as returning people re-identified on appearance. Every clean embedding a
track makes is recorded with its detection box, and that box is given the ground-truth person it
overlaps (IoU >= 0.5); after each pass every view stored in the gallery (``Gallery.embeddings``) is
traced back to the recorded embedding it is, hence to a ground-truth person. Per pass and gallery
setting:

- ``ids``: identities in the gallery; ``views``: their stored views traced to a ground-truth person, of all
  stored (a view of a box on no ground-truth person is not traced; ``untraced``: a view that is no clean
  embedding, made from a track's latest, overlapped crop when it had no clean one);
- ``mixed``: identities whose views come from two or more people, and ``minority``: the share of
  those identities' views that are not their majority person's (template poisoning);
- ``wrong person``: of the pass's identified person-frames (a tracked box on a ground-truth person),
  those given an identity whose person (the one it is given to in most frames over the whole run) is
  someone else; ``on mixed``: how many of them carry an identity that is mixed after this pass;
- ``turned``: identities whose stored views are mostly of someone other than their own person (all their
  views replaced after their track followed someone else), and the wrong-person frames they carry;
- ``2+ people``: identities given to two or more ground-truth people for at least 1 s each in the pass.

The gallery settings compared: ``default`` (8 recent views, a view added when novel: best
similarity below 0.9, and still alike: at least the threshold), ``history-1`` (one recent view) and
``frozen`` (novelty -1: an identity keeps the one view it was made from, nothing is ever added).
Detections are made once per frame and cached as ``bench_tracking.py`` caches them.

    python benchmarks/identity_purity.py --passes 3
    python benchmarks/reversed_sequence.py --out /tmp/reversed
    python benchmarks/identity_purity.py --video /tmp/reversed/reversed.avi --gt /tmp/reversed/reversed-mot
    python benchmarks/identity_purity.py --frame-step 2 --settings default,frozen
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import benchmark_parser, video_path  # noqa: E402
from bench_tracking import (  # noqa: E402
    RUN_MIN_BOX_HEIGHT, BenchError, default_cache_dir, detect_sequence, iter_source_frames, load_ground_truth,
)

from edge_reid.errors import EdgeReidError  # noqa: E402

#: Least IoU of a box with a ground-truth box for it to be that person (the MOTChallenge match criterion).
GT_IOU = 0.5
#: Least cosine similarity of a stored view with a recorded embedding for it to be that embedding (float rounding only).
SAME_VECTOR = 0.9999
#: Gallery settings by name: (history_size, novelty).
SETTINGS = {"default": (8, 0.9), "history-1": (1, 0.9), "frozen": (8, -1.0)}


def gt_people(rows: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Ground-truth rows by 1-based frame: (ids (M,), boxes (M, 4) x1, y1, x2, y2)."""
    by_frame: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for frame in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == frame]
        by_frame[frame] = (r[:, 1].astype(int), np.column_stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]]))
    return by_frame


def person_of(boxes: np.ndarray, truth: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """(N,) ground-truth id of each box (best IoU >= :data:`GT_IOU`), 0 where none."""
    from edge_reid.tracking.boxes import iou_matrix

    out = np.zeros(len(boxes), int)
    if truth is None or not len(boxes):
        return out
    iou = iou_matrix(np.asarray(boxes, np.float64).reshape(-1, 4), truth[1])
    best = iou.argmax(axis=1)
    hit = iou[np.arange(len(boxes)), best] >= GT_IOU
    out[hit] = truth[0][best[hit]]
    return out


def majority(counter: collections.Counter) -> int:
    """The most common key of a non-empty counter (ties: the smallest key)."""
    top = max(counter.values())
    return min(k for k, v in counter.items() if v == top)


def run_setting(name: str, sequence, source: str, frame_step: int, truth: dict, passes: int, gap_s: float, embedder) -> list[dict]:
    """Play the sequence ``passes`` times with one gallery of setting ``name``; one row of counts per pass."""
    from edge_reid.defaults import THRESHOLD
    from edge_reid.matching.gallery import Gallery
    from edge_reid.pipeline import Pipeline
    from edge_reid.tracking import CameraMotion, Tracker, TrackerConfig

    history_size, novelty = SETTINGS[name]
    gallery = Gallery(embedder.dim, threshold=THRESHOLD, history_size=history_size, novelty=novelty, model_id=embedder.model_id)
    pipeline = Pipeline(
        embedder, gallery=gallery, use_detector=False, min_box_height=RUN_MIN_BOX_HEIGHT,
        tracker=Tracker(TrackerConfig(), camera_motion=CameraMotion()),
    )
    frames = sequence.frames
    span = frames[-1].timestamp_s - frames[0].timestamp_s + gap_s
    min_frames = max(1, round(sequence.fps))  # 1 s of a person
    vectors: list[np.ndarray] = []  # every clean embedding made, and its ground-truth person
    origins: list[int] = []
    rows = []
    for index in range(passes):
        given: collections.defaultdict = collections.defaultdict(collections.Counter)  # identity -> person -> frames
        frame_rows = []  # (identity, person) of each identified person-frame
        images = iter_source_frames(source, frame_step, 1.0, None, sequence.fps * frame_step)
        for frame, image in zip(frames, images):
            if frame.source_index != image.index:
                raise BenchError(f"{source}: frame {image.index} read where the detections have {frame.source_index}")
            result = pipeline.process(image.image, index * span + frame.timestamp_s, frame.source_index, detections=frame.detections)
            people = truth.get(frame.source_index + 1)
            tracker = pipeline.tracker
            fresh = [t for t in tracker.tracks if t.history and t.last_embedded_s == tracker.clock_s]
            if fresh:
                vectors.extend(t.history[-1] for t in fresh)
                origins.extend(person_of(np.stack([t.box for t in fresh]), people).tolist())
            ids = np.asarray(result.identities.identity_ids)
            for identity, person in zip(ids.tolist(), person_of(result.tracked.boxes, people).tolist()):
                if identity >= 1 and person:
                    given[identity][person] += 1
                    frame_rows.append((identity, person))
        recorded = np.stack(vectors) if vectors else np.zeros((0, embedder.dim), np.float32)
        views: dict[int, collections.Counter] = {}
        stored_rows = untraced = 0
        for identity in gallery.identities:
            stored = gallery.embeddings(identity.identity_id)
            stored_rows += len(stored)
            if not len(recorded):
                untraced += len(stored)
                continue
            similarity = stored @ recorded.T
            found = similarity.argmax(axis=1)
            same = similarity[np.arange(len(found)), found] >= SAME_VECTOR
            untraced += int((~same).sum())  # not a recorded clean embedding (should not happen)
            known = [origins[j] for j in found[same] if origins[j]]
            if known:
                views[identity.identity_id] = collections.Counter(known)
        now_majority = {identity: majority(c) for identity, c in views.items()}
        mixed = {identity for identity, c in views.items() if len(c) >= 2}
        rows.append({
            "pass": index + 1, "ids": len(gallery), "views": sum(sum(c.values()) for c in views.values()), "stored": stored_rows,
            "untraced": untraced, "mixed": len(mixed), "mixed_ids": mixed,
            "mixed_detail": {i: dict(views[i].most_common()) for i in sorted(mixed)},
            "minority": sum(sum(views[i].values()) - views[i][now_majority[i]] for i in mixed),
            "mixed_views": sum(sum(views[i].values()) for i in mixed), "frame_rows": frame_rows, "view_person": now_majority,
            "two_people": sum(1 for c in given.values() if sum(1 for n in c.values() if n >= min_frames) >= 2),
        })
    # An identity's person: the one it is given to in most frames over the whole run.
    run_given: collections.defaultdict = collections.defaultdict(collections.Counter)
    for row in rows:
        for identity, person in row["frame_rows"]:
            run_given[identity][person] += 1
    owner = {identity: majority(c) for identity, c in run_given.items()}
    for row in rows:
        frame_rows = row.pop("frame_rows")
        wrong = [identity for identity, person in frame_rows if owner[identity] != person]
        row["frames"] = len(frame_rows)
        row["wrong"] = len(wrong)
        row["wrong_on_mixed"] = sum(1 for identity in wrong if identity in row["mixed_ids"])
        turned = {i for i, person in row.pop("view_person").items() if i in owner and owner[i] != person}
        row["turned"] = len(turned)
        row["wrong_on_turned"] = sum(1 for identity in wrong if identity in turned)
    pipeline.close()
    return rows


def untraced(row: dict) -> str:
    return f" ({row['untraced']} untraced)" if row["untraced"] else ""


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--gt", type=Path, help="the video's MOTChallenge ground truth (default: vtest-mot beside the video)")
    parser.add_argument("--passes", type=int, default=3, help="passes over the video (default: %(default)s)")
    parser.add_argument("--frame-step", type=int, default=1, help="use every N-th frame (default: %(default)s)")
    parser.add_argument("--gap-s", type=float, default=10.0, help="seconds between passes (default: %(default)s)")
    parser.add_argument("--details", action="store_true", help="list each mixed identity's views by person after the last pass")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"gallery settings, comma-separated, of: {', '.join(SETTINGS)} (default: all)")
    args = parser.parse_args()
    video = video_path(args)
    chosen = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SETTINGS]
    problem = (
        f"--settings takes {', '.join(SETTINGS)}, got {args.settings!r}" if unknown or not chosen
        else f"--passes must be >= 1, got {args.passes}" if args.passes < 1
        else f"--frame-step must be >= 1, got {args.frame_step}" if args.frame_step < 1
        else f"--gap-s must be >= 0 seconds, got {args.gap_s}" if not args.gap_s >= 0 else None
    )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        ground_truth = load_ground_truth(args.gt or video.parent / "vtest-mot")
        fps = ground_truth.frame_rate or 10.0
        sequence = detect_sequence(str(video), ground_truth.folder.name, frame_step=args.frame_step, folder_fps=fps,
                                   cache_dir=default_cache_dir(), progress=False)
        from edge_reid.embedder import Embedder

        embedder = Embedder(backend_options={"side_by_side": True})
    except EdgeReidError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    truth = gt_people(ground_truth.rows)
    print(f"{video}: {len(sequence.frames)} frames a pass (frame step {args.frame_step}), {args.passes} passes {args.gap_s:g} s apart\n")
    print("| gallery | pass | ids | views traced / stored | mixed | minority views of mixed | identified frames | wrong person | wrong on mixed | turned (wrong frames) | 2+ people |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    details = []
    for name in chosen:
        try:
            rows = run_setting(name, sequence, str(video), args.frame_step, truth, args.passes, args.gap_s, embedder)
        except EdgeReidError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        details.append((name, rows[-1]["mixed_detail"]))
        for row in rows:
            print(f"| {name} | {row['pass']} | {row['ids']} | {row['views']}/{row['stored']}{untraced(row)} | {row['mixed']} | "
                  f"{row['minority']}/{row['mixed_views']} ({percent(row['minority'], row['mixed_views'])}) | {row['frames']} | "
                  f"{row['wrong']} ({percent(row['wrong'], row['frames'])}) | {row['wrong_on_mixed']} | {row['turned']} ({row['wrong_on_turned']}) | {row['two_people']} |", flush=True)
    for name, mixed in details if args.details else ():
        print(f"\n{name}, after pass {args.passes}: mixed identity -> {{ground-truth person: views}}")
        for identity, counts in mixed.items():
            print(f"  {identity}: {counts}")
    embedder.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
