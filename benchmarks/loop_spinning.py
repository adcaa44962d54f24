"""The embedding loop with ONNX Runtime's threads spinning after each run, and stopped, alternating.

ONNX Runtime's intra-op threads busy-wait after a run for the next one by default. In the
embedding loop the next work is ours (matching, preprocessing), so a spinning thread takes a core
from it. ``edge_reid.backends.onnxruntime`` sets ``session.force_spinning_stop`` (spinning stops when
a run returns; it is kept inside a run; ``stop_spinning_after_run`` of ``OnnxRuntimeBackend``). This
script measures both ways side by side, batch 32:

    python benchmarks/loop_spinning.py --repeats 4 --seconds 5

Prints one row per run (model-only images/s; efficiency of the overlapped loop (EmbeddingLoop)
and of the plain loop; the plain loop's ms per step of preprocess / embed / match) and the
medians of each setting.
"""

from __future__ import annotations

import statistics
import sys

from _common import benchmark_parser, real_crops

from edge_reid.assets import DEFAULT_REID_MODEL
from edge_reid.backends.onnxruntime import OnnxRuntimeBackend
from edge_reid.bench import BenchConfig, match_queries, measure_batch, synthetic_gallery
from edge_reid.embedder import Embedder
from edge_reid.spec import load_spec

SETTINGS = (("spin after run (ORT default)", False), ("stop spinning (edge-reid)", True))


def main() -> int:
    parser = benchmark_parser(__doc__, crops=256)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    pool = real_crops(args)
    config = BenchConfig(batches=(args.batch,), seconds=args.seconds, preprocess=False)
    spec = load_spec(DEFAULT_REID_MODEL)
    embedders = {
        name: Embedder(DEFAULT_REID_MODEL, backend=OnnxRuntimeBackend(DEFAULT_REID_MODEL, spec, args.batch, stop_spinning_after_run=stop))
        for name, stop in SETTINGS
    }
    gallery = synthetic_gallery(embedders[SETTINGS[0][0]].embed_crops(pool.crops), config.gallery_size, config.threshold)
    rows: dict[str, list[dict]] = {name: [] for name, _ in SETTINGS}
    print(f"{'setting':30s} {'model img/s':>11} {'loop eff.':>9} {'plain eff.':>10} {'plain ms: pre':>13} {'embed':>7} {'match':>6}")
    for _ in range(args.repeats):
        for name, _stop in SETTINGS:
            row = measure_batch(embedders[name], args.batch, config, pool, gallery, match_queries).to_dict()
            rows[name].append(row)
            stages = row["sequential_loop_stage_ms"]
            print(f"{name:30s} {row['images_per_s']:>11.1f} {row['loop_efficiency']:>9.3f} {row['sequential_loop_efficiency']:>10.3f} "
                  f"{stages['preprocess']:>13.2f} {stages['embed']:>7.2f} {stages['match']:>6.2f}")
    print("medians:")
    for name, runs in rows.items():
        med = lambda get: statistics.median(get(r) for r in runs)  # noqa: E731
        print(f"{name:30s} {med(lambda r: r['images_per_s']):>11.1f} {med(lambda r: r['loop_efficiency']):>9.3f} "
              f"{med(lambda r: r['sequential_loop_efficiency']):>10.3f} "
              f"{med(lambda r: r['sequential_loop_stage_ms']['preprocess']):>13.2f} "
              f"{med(lambda r: r['sequential_loop_stage_ms']['embed']):>7.2f} "
              f"{med(lambda r: r['sequential_loop_stage_ms']['match']):>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
