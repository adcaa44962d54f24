"""Check the speed targets of the embedding loop on this machine (issue 6), with repeats and medians.

Targets (2-core CPU, bundled OSNet x0.25, ONNX Runtime FP32, batch 32):
  - loop_efficiency >= 0.85 (loop images/s over model-only images/s, measured side by side), for the
    loop as edge-reid runs it (EmbeddingLoop: the next batch embedded while this one is matched);
    the plain loop (one step after the other) is printed beside it;
  - preprocessing >= 3000 crops/s, and faster than the plain numpy/OpenCV reference in the same run;
  - ``edge-reid run`` on vtest.avi (``--run``): the slowest stage is the detector or the embedding model.

Usage (from the repository root):

    python benchmarks/loop_targets.py --repeats 3 --seconds 5 [--run] [--json targets.json]

Prints one table row per repeat, the medians and PASS/FAIL per target; exits 1 when a target fails.
Other programs on the machine move absolute numbers; ratios are measured side by side within each run.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from _common import benchmark_parser, real_crops, video_path

from edge_reid.bench import BenchConfig, environment, run_bench

TARGET_EFFICIENCY = 0.85
TARGET_PREPROCESS = 3000.0
BATCH = 32


def run_stage_shares(video: Path, max_frames: int | None) -> dict:
    """Run the whole pipeline on ``video``; fps and each stage's share of the per-frame time."""
    from edge_reid.pipeline import Pipeline

    pipeline = Pipeline()
    start = time.perf_counter()
    for _ in pipeline.run(str(video), max_frames=max_frames):
        pass
    seconds = time.perf_counter() - start
    stage_ms = pipeline.timer.mean_ms()
    total = sum(stage_ms.values())
    return {
        "frames": pipeline.timer.frames,
        "fps": pipeline.timer.frames / seconds,
        "stage_ms": stage_ms,
        "stage_share": {stage: ms / total for stage, ms in stage_ms.items()},
        "slowest": max(stage_ms, key=stage_ms.get),
    }


def main() -> int:
    parser = benchmark_parser(__doc__, crops=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement")
    parser.add_argument("--run", action="store_true", help="also run the whole pipeline on the video for stage shares")
    parser.add_argument("--max-frames", type=int, default=None, help="frames of the video for --run (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="write every repeat and the medians here")
    args = parser.parse_args()

    video = video_path(args)
    pool = real_crops(args)
    config = BenchConfig(batches=(BATCH,), seconds=args.seconds)
    rows = []
    print(f"{'repeat':>6} {'model img/s':>12} {'loop img/s':>11} {'efficiency':>10} {'plain eff.':>10} {'pre ms':>7} {'embed ms':>9} "
          f"{'match ms':>9} {'fused crops/s':>14} {'reference':>10}")
    for repeat in range(1, args.repeats + 1):
        report = run_bench(config, pool).to_dict()
        row, pre = report["batches"][0], report["preprocess"]
        rows.append({"batch": row, "preprocess": pre})
        stages = row["sequential_loop_stage_ms"]  # the plain loop's stages add up to its step
        print(f"{repeat:>6} {row['images_per_s']:>12.1f} {row['loop_images_per_s']:>11.1f} {row['loop_efficiency']:>10.3f} "
              f"{row['sequential_loop_efficiency']:>10.3f} {stages['preprocess']:>7.2f} {stages['embed']:>9.2f} {stages['match']:>9.2f} "
              f"{pre['fused_crops_per_s']:>14.0f} {pre['reference_crops_per_s']:>10.0f}")

    def median(get) -> float:
        return statistics.median(get(r) for r in rows)

    medians = {
        "images_per_s": median(lambda r: r["batch"]["images_per_s"]),
        "loop_images_per_s": median(lambda r: r["batch"]["loop_images_per_s"]),
        "loop_efficiency": median(lambda r: r["batch"]["loop_efficiency"]),
        "sequential_loop_efficiency": median(lambda r: r["batch"]["sequential_loop_efficiency"]),
        "match_share_of_plain_loop": median(
            lambda r: r["batch"]["sequential_loop_stage_ms"]["match"] / r["batch"]["sequential_loop_latency_ms"]["mean"]
        ),
        "preprocess_share_of_plain_loop": median(
            lambda r: r["batch"]["sequential_loop_stage_ms"]["preprocess"] / r["batch"]["sequential_loop_latency_ms"]["mean"]
        ),
        "fused_crops_per_s": median(lambda r: r["preprocess"]["fused_crops_per_s"]),
        "reference_crops_per_s": median(lambda r: r["preprocess"]["reference_crops_per_s"]),
        "preprocess_speedup": median(lambda r: r["preprocess"]["speedup"]),
    }
    print(f"{'median':>6} {medians['images_per_s']:>12.1f} {medians['loop_images_per_s']:>11.1f} {medians['loop_efficiency']:>10.3f} "
          f"{medians['sequential_loop_efficiency']:>10.3f} {'':>27} {medians['fused_crops_per_s']:>14.0f} "
          f"{medians['reference_crops_per_s']:>10.0f}")
    print(f"plain loop time shares (median): match {medians['match_share_of_plain_loop']:.1%}, "
          f"preprocess {medians['preprocess_share_of_plain_loop']:.1%}")

    verdicts = {
        f"loop_efficiency >= {TARGET_EFFICIENCY}": medians["loop_efficiency"] >= TARGET_EFFICIENCY,
        f"preprocess >= {TARGET_PREPROCESS:.0f} crops/s": medians["fused_crops_per_s"] >= TARGET_PREPROCESS,
        "preprocess faster than reference": all(r["preprocess"]["speedup"] > 1.0 for r in rows),
    }
    result = {"repeats": rows, "medians": medians, "environment": environment()}
    if args.run:
        shares = run_stage_shares(video, args.max_frames)
        result["run"] = shares
        print(f"edge-reid run on {video.name}: {shares['frames']} frames, {shares['fps']:.2f} fps; "
              + ", ".join(f"{s} {ms:.1f} ms ({shares['stage_share'][s]:.1%})" for s, ms in shares["stage_ms"].items()))
        verdicts["run: slowest stage is detect or embed"] = shares["slowest"] in ("detect", "embed")
    for name, ok in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    result["verdicts"] = verdicts
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
