"""The embedding loop at batch 32 with the gallery's matcher and with matching left out, alternating.

Shows how much of the gap between loop and model-only throughput is the matcher (10k identities)
and how much is the rest of the loop (preprocessing, normalisation, bookkeeping). For docs/benchmarks.md:

    python benchmarks/loop_matcher_share.py --repeats 3 --seconds 5
"""

from __future__ import annotations

import sys

from _common import benchmark_parser, real_crops

from edge_reid.bench import BenchConfig, match_queries, run_bench


def no_matching(gallery, queries) -> None:
    """Leaves matching out: the loop is then preprocess + embed + normalise only."""
    return None


def main() -> int:
    parser = benchmark_parser(__doc__, crops=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    pool = real_crops(args)
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
