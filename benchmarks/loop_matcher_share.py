"""The embedding loop at batch 32 with the gallery's matcher and with matching left out, alternating.

Shows how much of the gap between loop and model-only throughput is the matcher (10k identities)
and how much is the rest of the loop (preprocessing, normalisation, bookkeeping). For docs/benchmarks.md:

    python benchmarks/loop_matcher_share.py --repeats 3 --seconds 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_reid.bench import BenchConfig, crops_from_video, default_video, match_queries, run_bench  # noqa: E402


def no_matching(gallery, queries) -> None:
    """Leaves matching out: the loop is then preprocess + embed + normalise only."""
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    video = default_video()
    if video is None:
        print("needs ../shared/data/vtest.avi", file=sys.stderr)
        return 2
    pool = crops_from_video(video, 256)
    config = BenchConfig(batches=(args.batch,), seconds=args.seconds, preprocess=False)
    for repeat in range(1, args.repeats + 1):
        for name, matcher in (("Gallery.match (10k)", match_queries), ("no matching", no_matching)):
            row = run_bench(config, pool, matcher=matcher).to_dict()["batches"][0]
            stages = row["loop_stage_ms"]
            print(f"{repeat} {name:20s} model {row['images_per_s']:6.1f} img/s  loop {row['loop_images_per_s']:6.1f} img/s  "
                  f"efficiency {row['loop_efficiency']:.3f}  ms preprocess {stages['preprocess']:.1f} "
                  f"embed {stages['embed']:.1f} match {stages['match']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
