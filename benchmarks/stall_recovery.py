"""How many people keep their track across a stall of a live stream, and how many tracks end on another person.

A stream that stops for N seconds and comes back finds people moved on. On a video's real detections
(cached as ``bench_tracking.py`` caches them) and its MOTChallenge ground truth: at 32 points of the video
the tracker follows 6 s of frames, the next N seconds of frames are skipped, and the first frame after
is given at its true time. Of the ground-truth people on a track before the stall (IoU > 0.5 with a
reported box), "same track" counts those on the same track after it, "wrong" the tracks that were on one
person before and are on another after. With the embeddings ``plan_embeddings`` asks for, as ``run``
chooses them (the bundled OSNet on the video's boxes), and, with ``--motion-only``, none.

Compare code versions by running this script from each (e.g. with ``PYTHONPATH`` at a throwaway
worktree of the older commit): docs/tracking.md, "After a stall".

Examples::

    python benchmarks/stall_recovery.py                     # stalls of 0.1, 1, 3, 5 and 10 s
    python benchmarks/stall_recovery.py --motion-only --stalls 3
"""

from __future__ import annotations

import sys

import numpy as np

from _common import benchmark_parser, video_path
from bench_tracking import default_cache_dir, detect_sequence


def _ground_truth(path) -> dict[int, dict[int, np.ndarray]]:
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    frames: dict[int, dict[int, np.ndarray]] = {}
    for frame, person, x, y, w, h in rows[:, :6]:
        frames.setdefault(int(frame), {})[int(person)] = np.array([x, y, x + w, y + h])
    return frames


def _tracks_of(tracked, people: dict[int, np.ndarray]) -> dict[int, int]:
    """Ground-truth person -> the track reported on them (IoU > 0.5)."""
    from edge_reid.tracking.boxes import iou_matrix

    found = {}
    for person, box in people.items():
        if len(tracked):
            iou = iou_matrix(box[None], tracked.boxes.astype(np.float64))[0]
            best = int(np.argmax(iou))
            if iou[best] > 0.5:
                found[person] = int(tracked.track_ids[best])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--gt", default=None, help="ground truth gt.txt (default: shared/data/vtest-mot/gt/gt.txt beside the video)")
    parser.add_argument("--stalls", default="0.1,1,3,5,10", help="comma-separated stall lengths, seconds")
    parser.add_argument("--motion-only", action="store_true", help="give the tracker no embeddings")
    args = parser.parse_args(argv)
    video = video_path(args)
    gt_path = args.gt or video.parent / "vtest-mot" / "gt" / "gt.txt"
    ground_truth = _ground_truth(gt_path)
    frames = detect_sequence(str(video), video.stem, cache_dir=default_cache_dir(), progress=False).frames
    embeddings = None if args.motion_only else _embed(video, frames)

    from edge_reid.tracking import Tracker, plan_embeddings

    def update(tracker, k: int, timestamp: float):
        detections = frames[k].detections
        if embeddings is None:
            return tracker.update(detections, None, timestamp)
        wanted = plan_embeddings(tracker, detections, timestamp)
        return tracker.update(detections, embeddings[k], timestamp, embedded=wanted)

    fps = 1.0 / float(np.median(np.diff([f.timestamp_s for f in frames])))
    print(f"{video.name}: {len(frames)} frames at {fps:g} fps; {'motion only' if embeddings is None else 'embeddings as run plans them'}")
    print("| stall | same track | wrong |\n|---|---:|---:|")
    for stall in (float(s) for s in args.stalls.split(",")):
        kept = total = wrong = 0
        for last in range(60, min(700, len(frames) - int(round(stall * fps)) - 1), 20):
            tracker = Tracker()
            for k in range(last - 60, last):
                tracked = update(tracker, k, frames[k].timestamp_s)
            before = _tracks_of(tracked, ground_truth.get(frames[last - 1].source_index + 1, {}))
            after_k = last + int(round(stall * fps)) - 1
            after_people = ground_truth.get(frames[after_k].source_index + 1, {})
            after = _tracks_of(update(tracker, after_k, frames[last - 1].timestamp_s + stall), after_people)
            owner = {track: person for person, track in before.items()}
            wrong += sum(1 for person, track in after.items() if track in owner and owner[track] != person)
            for person, track in before.items():
                if person in after_people:
                    total += 1
                    kept += after.get(person) == track
        print(f"| {stall:g} s | {kept} of {total} | {wrong} |")
    return 0


def _embed(video, frames) -> list[np.ndarray]:
    """Each frame's embeddings of its detected boxes (the bundled OSNet), in the frames' order."""
    import cv2

    from edge_reid.embedder import Embedder

    index = {f.source_index: k for k, f in enumerate(frames)}
    embeddings: list[np.ndarray | None] = [None] * len(frames)
    capture = cv2.VideoCapture(str(video))
    with Embedder(threads=1) as embedder:
        position = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if position in index:
                boxes = np.asarray(frames[index[position]].detections.boxes, np.float32)
                embeddings[index[position]] = embedder.embed_boxes(image, boxes) if len(boxes) else np.zeros((0, embedder.dim), np.float32)
            position += 1
    capture.release()
    return [e if e is not None else np.zeros((0, 1), np.float32) for e in embeddings]


if __name__ == "__main__":
    sys.exit(main())
