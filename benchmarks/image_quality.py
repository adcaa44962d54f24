"""Tracking and ReID under the image quality real cameras give: grey (IR night mode), dark and noisy, JPEG-compressed, motion-blurred, swinging exposure.

Writes transformed copies of a video with ground truth (default: vtest.avi and vtest-mot), runs
``edge-reid run --source COPY --mot FILE`` on the original and on each copy, one after another,
scores each with TrackEval (as ``edge-reid eval-mot``), and prints one table: HOTA, DetA, AssA,
IDF1, ID switches, identities made. A second table explains it from the ReID model alone: the
bundled OSNet's embeddings of ground-truth crops (every ``--crop-step``-th frame, cut with the
ground-truth boxes, so the detector plays no part) of the same person and of different people,
on the original and on each copy (docs/tracking.md, "Image quality").

The transforms (each frame of the copy has the source's size; copies are written losslessly,
FFV1, so only the transform changes the pixels):

- ``grey``: ``cv2.cvtColor`` BGR -> GRAY -> BGR, 3 equal channels (a camera's IR night mode);
- ``dark``: pixel values x0.25 (a quarter of the brightness the camera encodes), then Gaussian
  sensor noise of sigma 8 grey levels (fixed seed), rounded and clipped to 0..255;
- ``jpeg15``: each frame JPEG-encoded at quality 15 and decoded (a cheap camera or a starved stream);
- ``blur``: a 9-pixel horizontal box kernel (a robot turning, a person walking past a slow shutter);
- ``exposure``: pixel values x (1 + 0.4 sin(2 pi t / 5 s)), clipped (auto-exposure swinging
  +-40% with a 5 s period; t from the frame number and the sequence's frame rate).

    python benchmarks/image_quality.py                         # all transforms on vtest, ~7 min on 2 cores
    python benchmarks/image_quality.py --transforms grey --json grey.json
    python benchmarks/image_quality.py --out /tmp/iq --keep    # keep the copies and MOT files
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when imported by the tests
from _common import REPO, benchmark_parser, video_path  # noqa: E402

#: Seed of the ``dark`` transform's sensor noise.
NOISE_SEED = 0


def grey(frame: np.ndarray, time_s: float, rng: np.random.Generator) -> np.ndarray:
    """Three equal channels, as a camera in IR night mode delivers them."""
    import cv2

    return cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def dark(frame: np.ndarray, time_s: float, rng: np.random.Generator) -> np.ndarray:
    """A quarter of the brightness, plus Gaussian sensor noise of sigma 8 grey levels."""
    noisy = frame.astype(np.float32) * 0.25 + rng.normal(0.0, 8.0, frame.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg15(frame: np.ndarray, time_s: float, rng: np.random.Generator) -> np.ndarray:
    """The frame JPEG-encoded at quality 15 and decoded again."""
    import cv2

    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 15])
    if not ok:
        raise OSError("OpenCV cannot encode a JPEG here")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def blur(frame: np.ndarray, time_s: float, rng: np.random.Generator) -> np.ndarray:
    """Horizontal motion blur: the mean of 9 neighbouring pixels of a row."""
    import cv2

    return cv2.blur(frame, (9, 1))


def exposure(frame: np.ndarray, time_s: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness x (1 + 0.4 sin(2 pi t / 5 s)): auto-exposure swinging +-40% with a 5 s period."""
    gain = 1.0 + 0.4 * math.sin(2.0 * math.pi * time_s / 5.0)
    return np.clip(np.rint(frame.astype(np.float32) * gain), 0, 255).astype(np.uint8)


#: The transforms by name, in the table's order.
TRANSFORMS = {"grey": grey, "dark": dark, "jpeg15": jpeg15, "blur": blur, "exposure": exposure}


@dataclass(frozen=True)
class Row:
    """One video's tracking scores (percentages as TrackEval's) and its ground-truth crops' similarities."""

    name: str
    hota: float
    deta: float
    assa: float
    idf1: float
    id_switches: int
    identities: int
    same_mean: float        # mean cosine similarity of pairs of one person's crops (different frames)
    different_mean: float   # mean of pairs of two people's crops
    auc: float              # probability that a same-person pair scores above a different-person pair
    different_over_060: float  # share of different-person pairs at or above 0.6 (re-found people, appearance cost)
    different_over_091: float  # share at or above 0.91 (open-set re-identification of unnamed identities)
    same_under_050: float   # share of same-person pairs under 0.5 (the tracker's veto would refuse them)
    to_original: float      # median similarity of a crop to the same crop of the original


def write_copy(video: Path, transform, output: Path, fps: float) -> int:
    """Write ``transform`` of every frame of ``video`` to ``output`` (FFV1); returns the frame count.

    Raises:
        ValueError: no frame could be read. OSError: the copy cannot be written.
    """
    import cv2

    capture = cv2.VideoCapture(str(video))
    rng = np.random.default_rng(NOISE_SEED)
    writer = None
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if writer is None:
            height, width = frame.shape[:2]
            writer = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"FFV1"), float(fps), (width, height))
            if not writer.isOpened():
                raise OSError(f"{output}: OpenCV cannot write an FFV1 video here")
        writer.write(transform(frame, count / fps, rng))
        count += 1
    capture.release()
    if writer is None:
        raise ValueError(f"{video}: no frame could be read")
    writer.release()
    return count


def ground_truth_crops(video: Path, gt_rows: np.ndarray, step: int, min_height: float) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Crops of every ground-truth box (conf != 0) of every ``step``-th frame (1, 1 + step, ...), clipped to
    the frame, of at least ``min_height`` pixels: (crops, person ids, frame numbers)."""
    import cv2

    rows = gt_rows[(gt_rows[:, 6] != 0) & ((gt_rows[:, 0] - 1) % step == 0)]
    capture = cv2.VideoCapture(str(video))
    crops, ids, frames = [], [], []
    number = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        number += 1
        height, width = frame.shape[:2]
        for row in rows[rows[:, 0] == number]:
            x1, y1 = max(0, int(round(row[2]))), max(0, int(round(row[3])))
            x2, y2 = min(width, int(round(row[2] + row[4]))), min(height, int(round(row[3] + row[5])))
            if x2 - x1 >= 8 and y2 - y1 >= min_height:
                crops.append(frame[y1:y2, x1:x2].copy())
                ids.append(int(row[1]))
                frames.append(number)
    capture.release()
    return crops, np.asarray(ids), np.asarray(frames)


def similarity_stats(embeddings: np.ndarray, ids: np.ndarray, frames: np.ndarray, original: np.ndarray) -> dict[str, float]:
    """The similarity columns of :class:`Row` for (N, D) unit ``embeddings`` of crops of persons ``ids``
    in ``frames``; ``original``: the same crops' embeddings from the original video."""
    similarity = embeddings @ embeddings.T
    upper = np.triu(np.ones_like(similarity, bool), 1)
    same = similarity[upper & (ids[:, None] == ids[None, :]) & (frames[:, None] != frames[None, :])]
    different = similarity[upper & (ids[:, None] != ids[None, :])]
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([same, different]))  # AUC = Mann-Whitney U / (P M), ties counted half
    auc = (ranks[: len(same)].sum() - len(same) * (len(same) + 1) / 2) / (len(same) * len(different))
    return {
        "same_mean": float(same.mean()), "different_mean": float(different.mean()), "auc": float(auc),
        "different_over_060": float((different >= 0.6).mean()), "different_over_091": float((different >= 0.91).mean()),
        "same_under_050": float((same < 0.5).mean()),
        "to_original": float(np.median(np.sum(embeddings * original, axis=1))),
    }


def run_and_score(source: Path, gt: Path, mot: Path) -> dict:
    """``edge-reid run --source SOURCE --mot MOT`` (this repository's), then its TrackEval scores."""
    from edge_reid.evaluation.mot import evaluate_mot

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(
        [sys.executable, "-m", "edge_reid", "run", "--source", str(source), "--mot", str(mot)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"edge-reid run --source {source} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    metrics = evaluate_mot(mot, gt)
    rows = np.loadtxt(mot, delimiter=",", ndmin=2)
    return {"hota": metrics.hota, "deta": metrics.deta, "assa": metrics.assa, "idf1": metrics.idf1,
            "id_switches": metrics.id_switches, "identities": len(np.unique(rows[:, 1])) if rows.size else 0}


def print_table(rows: list[Row]) -> None:
    print("| video | HOTA | DetA | AssA | IDF1 | ID switches | identities |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row.name} | {row.hota:.1f} | {row.deta:.1f} | {row.assa:.1f} | {row.idf1:.1f} | {row.id_switches} | {row.identities} |")
    print()
    print("| video | same-person mean | different-person mean | AUC | different >= 0.6 | different >= 0.91 | same < 0.5 | to the original (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row.name} | {row.same_mean:.3f} | {row.different_mean:.3f} | {row.auc:.3f} | {row.different_over_060:.1%} "
              f"| {row.different_over_091:.2%} | {row.same_under_050:.1%} | {row.to_original:.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--gt", type=Path, help="the video's MOTChallenge ground truth (default: vtest-mot beside the video)")
    parser.add_argument("--transforms", default=",".join(TRANSFORMS), help="comma-separated, of: " + ", ".join(TRANSFORMS) + " (default: all)")
    parser.add_argument("--out", type=Path, help="folder for the copies and MOT files (default: a temporary one, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the copies in --out")
    parser.add_argument("--crop-step", type=int, default=10, help="ground-truth crops from every Nth frame (default 10: 1 s at 10 fps)")
    parser.add_argument("--min-crop-height", type=float, default=32.0, help="smallest crop, pixels (default 32, as edge-reid run)")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.transforms.split(",") if name.strip()]
    unknown = [name for name in names if name not in TRANSFORMS]
    if unknown or not names:
        parser.error(f"--transforms: unknown {', '.join(unknown) or 'none given'}; known: {', '.join(TRANSFORMS)}")
    if args.crop_step < 1:
        parser.error("--crop-step must be >= 1")
    video = video_path(args)
    gt = args.gt or video.parent / "vtest-mot"
    from edge_reid.embedder import Embedder
    from edge_reid.errors import EdgeReidError
    from edge_reid.motchallenge import read_sequence_info

    try:
        info = read_sequence_info(gt)
        gt_rows = np.loadtxt(info.gt_path, delimiter=",", ndmin=2)
    except (OSError, ValueError, EdgeReidError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    temporary = None if args.out else tempfile.TemporaryDirectory(prefix="image_quality_")
    out = args.out or Path(temporary.name)
    out.mkdir(parents=True, exist_ok=True)
    embedder = Embedder()
    rows = []
    try:
        original = None
        for name in ["original", *names]:
            source = video
            if name != "original":
                source = out / f"{name}.avi"
                count = write_copy(video, TRANSFORMS[name], source, info.frame_rate)
                print(f"{name}: wrote {source} ({count} frames); running edge-reid run ...", flush=True)
            scores = run_and_score(source, gt, out / f"{name}.txt")
            crops, ids, frames = ground_truth_crops(source, gt_rows, args.crop_step, args.min_crop_height)
            embeddings = embedder.embed_crops(crops)
            original = embeddings if original is None else original
            rows.append(Row(name, **scores, **similarity_stats(embeddings, ids, frames, original)))
            if name != "original" and not args.keep:
                source.unlink()
    except (OSError, ValueError, RuntimeError, EdgeReidError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        embedder.close()
        if temporary is not None:
            temporary.cleanup()
    print(f"\n{len(crops)} ground-truth crops (every {args.crop_step}th frame, >= {args.min_crop_height:g} px tall) of {len(np.unique(ids))} people\n")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
