"""What halving or doubling each main tracking constant does to HOTA and IDF1, on cached detections.

The video is detected once (bundled YOLOX-Nano, scores down to the tracker's low threshold)
and every box embedded once (bundled OSNet); the cache is a scratch ``.npz``. Each variant then
runs the real :class:`~edge_reid.pipeline.Pipeline` (tracker, embedding plan, identities)
over the cached detections, with an embedder that looks the planned crops up in the cache,
and writes MOTChallenge rows scored by TrackEval (:func:`~edge_reid.evaluation.mot.evaluate_mot`).

Conditions other than the video as it is (the same real data, changed):

- ``--every 2``: every 2nd frame, timestamps kept (half the frame rate); the ground truth is
  cut to the same frames.
- ``--scale 0.5``: frames downscaled before detection (people half as tall); the ground
  truth is scaled the same way.

For docs/benchmarks.md (each run prints one table):

    python benchmarks/tracking_sensitivity.py --cache /tmp/vtest-dets.npz
    python benchmarks/tracking_sensitivity.py --cache /tmp/vtest-dets-half-fps.npz --every 2 --only-defaults
    python benchmarks/tracking_sensitivity.py --cache /tmp/vtest-dets-half-size.npz --scale 0.5 --only-defaults
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_reid import defaults  # noqa: E402
from edge_reid.detections import Detections  # noqa: E402
from edge_reid.evaluation.mot import evaluate_mot  # noqa: E402
from edge_reid.motchallenge import read_rows, read_sequence_info, write_rows  # noqa: E402
from edge_reid.tracking import Tracker, TrackerConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

#: (name, where it lives, default); each is run at half and double its default.
CONSTANTS = [
    ("high_score", "tracker", TrackerConfig.high_score),
    ("new_track_score", "tracker", TrackerConfig.new_track_score),
    ("low_score", "tracker", TrackerConfig.low_score),
    ("min_iou", "tracker", TrackerConfig.min_iou),
    ("proximity", "tracker", TrackerConfig.proximity),
    ("appearance_thresh", "tracker", TrackerConfig.appearance_thresh),
    ("veto_similarity", "tracker", TrackerConfig.veto_similarity),
    ("confirm_hits", "tracker", TrackerConfig.confirm_hits),
    ("max_lost_s", "tracker", TrackerConfig.max_lost_s),
    ("overlap", "tracker", TrackerConfig.overlap),
    ("threshold", "pipeline", defaults.THRESHOLD),
    ("reid_threshold", "pipeline", defaults.REID_THRESHOLD),
    ("refresh_s", "pipeline", defaults.REFRESH_S),
]


#: Constants bounded by 1 (scores, IoUs, cosine similarities): "doubled" past 1 means halfway to 1.
BOUNDED = {"high_score", "new_track_score", "low_score", "min_iou", "proximity", "appearance_thresh",
           "veto_similarity", "overlap", "threshold", "reid_threshold"}


class CachedEmbedder:
    """Stands in for :class:`~edge_reid.embedder.Embedder`: returns the cached embedding of each box."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.max_batch = 32
        self.model_id = "cached"
        self.model_path = Path("cached.onnx")
        self.last_seconds = {"preprocess": 0.0, "embed": 0.0}
        self.lookup: dict[tuple, np.ndarray] = {}
        self.calls = 0

    def embed_boxes(self, frame, boxes, out=None):
        self.calls += len(boxes)
        return np.stack([self.lookup[tuple(np.round(box, 2))] for box in np.asarray(boxes)]).astype(np.float32)


def build_cache(video: Path, cache: Path, scale: float) -> None:
    """Detect every frame (scores >= the tracker's low threshold) and embed every box; save to ``cache``."""
    import cv2

    from edge_reid.detector import PersonDetector
    from edge_reid.embedder import Embedder

    detector = PersonDetector(score_threshold=TrackerConfig.low_score, min_box_height=32.0 * scale)
    embedder = Embedder(max_batch=32)
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    boxes, scores, frames, embeddings, shape = [], [], [], [], None
    index = 0
    started = time.perf_counter()
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if scale != 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        shape = image.shape
        found = detector.detect(image)
        boxes.append(found.boxes)
        scores.append(found.scores)
        frames.append(np.full(len(found), index))
        embeddings.append(np.array(embedder.embed_boxes(image, found.boxes)) if len(found) else np.zeros((0, embedder.dim), np.float32))
        index += 1
    capture.release()
    np.savez(cache, boxes=np.concatenate(boxes), scores=np.concatenate(scores), frames=np.concatenate(frames),
             embeddings=np.concatenate(embeddings), fps=fps, count=index, shape=np.array(shape))
    print(f"cached {index} frames, {sum(len(b) for b in boxes)} boxes in {time.perf_counter() - started:.0f} s -> {cache}")


def ground_truth(gt_dir: Path, every: int, scale: float, scratch: Path) -> Path:
    """The ground-truth folder for the condition: frames kept every ``every``, boxes scaled by ``scale``."""
    if every == 1 and scale == 1.0:
        return gt_dir
    info = read_sequence_info(gt_dir)
    rows = read_rows(info.gt_path)
    rows = rows[(rows[:, 0] - 1) % every == 0].copy()
    rows[:, 0] = (rows[:, 0] - 1) // every + 1
    rows[:, 2:6] *= scale
    folder = scratch / f"{gt_dir.name}-every{every}-scale{scale:g}"
    (folder / "gt").mkdir(parents=True, exist_ok=True)
    with open(folder / "gt" / "gt.txt", "w", encoding="utf-8") as handle:
        for row in rows:  # keep the ground truth's conf column (0 = ignored)
            handle.write(f"{int(row[0])},{int(row[1])},{row[2]:.3f},{row[3]:.3f},{row[4]:.3f},{row[5]:.3f},{int(row[6])},-1,-1,-1\n")
    length = (info.length - 1) // every + 1
    (folder / "seqinfo.ini").write_text(
        f"[Sequence]\nname={folder.name}\nframeRate={info.frame_rate / every:g}\nseqLength={length}\n"
        f"imWidth={int(info.width * scale)}\nimHeight={int(info.height * scale)}\n"
    )
    return folder


def run_variant(data, every: int, gt: Path, scratch: Path, tracker_overrides: dict, pipeline_overrides: dict):
    """One pass of the pipeline over the cached detections; returns (MotMetrics, embeddings per frame)."""
    from edge_reid.pipeline import Pipeline

    embedder = CachedEmbedder(data["embeddings"].shape[1])
    config = TrackerConfig(**tracker_overrides)
    pipeline = Pipeline(embedder, use_detector=False, tracker=Tracker(config), **pipeline_overrides)
    image = np.zeros(tuple(int(v) for v in data["shape"]), np.uint8)
    fps = float(data["fps"])
    rows = []
    frames_seen = 0
    for index in range(0, int(data["count"]), every):
        mask = data["frames"] == index
        boxes, scores = data["boxes"][mask], data["scores"][mask]
        embedder.lookup = {tuple(np.round(box, 2)): vector for box, vector in zip(boxes, data["embeddings"][mask])}
        result = pipeline.process(image, index / fps, index, detections=Detections(boxes, scores))
        frames_seen += 1
        for box, score, identity in zip(result.tracked.boxes, result.tracked.scores, result.identities.identity_ids):
            if identity >= 1:
                rows.append([index // every + 1, identity, box[0], box[1], box[2] - box[0], box[3] - box[1], score, -1, -1, -1])
    path = scratch / "result.txt"
    write_rows(path, np.array(rows).reshape(-1, 10))
    return evaluate_mot(path, gt), embedder.calls / max(frames_seen, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SHARED / "data" / "vtest.avi")
    parser.add_argument("--gt", type=Path, default=SHARED / "data" / "vtest-mot")
    parser.add_argument("--cache", type=Path, required=True, help="Scratch .npz of detections + embeddings (made if missing).")
    parser.add_argument("--every", type=int, default=1, help="Use every Nth frame (timestamps kept).")
    parser.add_argument("--scale", type=float, default=1.0, help="Downscale frames by this factor before detection.")
    parser.add_argument("--only-defaults", action="store_true", help="Run the defaults only.")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="Change a constant of the base configuration (repeatable), e.g. --set veto_similarity=-1.")
    args = parser.parse_args()
    if not args.source.is_file() or not args.gt.is_dir():
        print(f"needs {args.source} and {args.gt}", file=sys.stderr)
        return 2
    if not args.cache.is_file():
        build_cache(args.source, args.cache, args.scale)
    data = dict(np.load(args.cache))
    if abs(float(data["shape"][0]) - read_sequence_info(args.gt).height * args.scale) > 1:
        print(f"{args.cache} was made at another --scale; give another --cache", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="edge-reid-sensitivity-") as scratch_name:
        scratch = Path(scratch_name)
        gt = ground_truth(args.gt, args.every, args.scale, scratch)
        base_tracker, base_pipeline = {}, {}
        where_of = {name: where for name, where, _ in CONSTANTS}
        for item in args.set:
            name, _, text = item.partition("=")
            if name not in where_of:
                print(f"--set: unknown constant {name!r}; choose from {', '.join(where_of)}", file=sys.stderr)
                return 2
            value = int(text) if name == "confirm_hits" else float(text)
            (base_tracker if where_of[name] == "tracker" else base_pipeline)[name] = value
        variants = [("defaults" + (" + " + ", ".join(args.set) if args.set else ""), "", None)]
        if not args.only_defaults:
            for name, where, value in CONSTANTS:
                for factor in (0.5, 2.0):
                    changed = type(value)(value * factor) if isinstance(value, int) else value * factor
                    label = f"{name} x{factor:g}"
                    if name in BOUNDED and changed > 1.0:  # a score or similarity cannot pass 1: halve the gap to 1
                        changed, label = (value + 1.0) / 2, f"{name} ->(1+v)/2"
                    variants.append((label, where, (name, changed)))
        print(f"condition: every {args.every} frame(s), scale {args.scale:g}; HOTA/IDF1 by TrackEval (MOT15 settings)")
        print(f"{'variant':44.44s} {'value':>7s} {'HOTA':>6s} {'DetA':>6s} {'AssA':>6s} {'IDF1':>6s} {'IDSW':>5s} {'emb/frame':>9s}")
        for label, where, change in variants:
            tracker_overrides, pipeline_overrides = dict(base_tracker), dict(base_pipeline)
            if change is not None:
                (tracker_overrides if where == "tracker" else pipeline_overrides)[change[0]] = change[1]
            try:
                metrics, per_frame = run_variant(data, args.every, gt, scratch, tracker_overrides, pipeline_overrides)
            except ValueError as exc:  # e.g. a doubled score above 1
                print(f"{label:44.44s} {change[1]:7.3g}  (invalid: {exc})")
                continue
            value = f"{change[1]:7.3g}" if change is not None else "       "
            print(f"{label:44.44s} {value} {metrics.hota:6.1f} {metrics.deta:6.1f} {metrics.assa:6.1f} {metrics.idf1:6.1f} "
                  f"{metrics.id_switches:5d} {per_frame:9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
