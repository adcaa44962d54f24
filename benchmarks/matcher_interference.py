"""Does the matcher slow down the next model call? infer(32) timed after four kinds of step, alternating.

Steps: ``model`` (infer only), ``preprocess+model``, ``model+match`` and ``preprocess+model+match``
(match = the loop benchmark's matcher against a 10k gallery). Run it with and without
``OPENBLAS_NUM_THREADS=1`` to see whether numpy's BLAS threads (used by the plain matcher's
``q @ templates.T``) compete with ONNX Runtime's. For docs/benchmarks.md:

    python benchmarks/matcher_interference.py
    OPENBLAS_NUM_THREADS=1 python benchmarks/matcher_interference.py
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from _common import benchmark_parser, real_crops

from edge_reid.bench import match_queries, synthetic_gallery
from edge_reid.embedder import Embedder


def main() -> int:
    parser = benchmark_parser(__doc__, crops=256)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=4, help="steps of each kind per round")
    args = parser.parse_args()
    pool = real_crops(args)
    batches = pool.batches(32)
    embedder = Embedder(max_batch=32)
    backend = embedder.backend
    gallery = synthetic_gallery(embedder.embed_crops(pool.crops), 10_000)
    kinds = {"model": (False, False), "preprocess+model": (True, False), "model+match": (False, True), "preprocess+model+match": (True, True)}
    infer_s: dict[str, list[float]] = {kind: [] for kind in kinds}
    cursor = 0
    for _ in range(args.rounds):
        for kind, (preprocess, match) in kinds.items():
            for _ in range(args.steps):
                if preprocess:
                    embedder.preprocessor.write_crops(batches[cursor % len(batches)], backend.buffers.input)
                    cursor += 1
                start = time.perf_counter()
                embeddings = backend.infer(32)
                infer_s[kind].append(time.perf_counter() - start)
                if match:  # unit length, as the Embedder hands them out (the gallery refuses anything else)
                    match_queries(gallery, embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True))
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    for kind, values in infer_s.items():
        print(f"  infer(32) after {kind:24s} median {1000 * np.median(values):6.1f} ms  ({len(values)} calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
