"""Benchmarks behind ``edge-reid bench``: what a model costs, and what the loop around it adds.

Three measurements, all on the caller's machine and backend:

1. **Model only** (trtexec style, NVIDIA TensorRT's ``trtexec`` report): per batch
   size, the latency of ``backend.infer(batch)`` on the preallocated batch buffer
   (p50/p90/p99 in ms) and images per second.
2. **The embedding loop** at the same batch sizes: real person crops are
   preprocessed into the batch buffer, embedded, L2-normalised
   (:meth:`edge_reid.embedder.Embedder.embed_crops`) and matched against a gallery
   of 10,000 identities (:func:`match_queries`). ``loop_efficiency`` = loop
   images/s / model-only images/s: 1.0 means the code around the model is free.
3. **Preprocessing alone**: crops per second of the fused path
   (:class:`edge_reid.preprocess.CropPreprocessor`) and of the plain numpy/OpenCV
   reference (:func:`edge_reid.preprocess.reference_preprocess`), same crops.

``edge-reid bench`` runs all three for each backend asked for (default: every backend usable
here) on the same crops and prints one table (:func:`bench_backends`).

Other programs on the machine shift absolute numbers, so every comparison here
is measured side by side: model-only and loop (and fused and reference
preprocessing) run in alternating rounds, so a burst of outside load hits both.

Use from Python::

    from edge_reid.bench import BenchConfig, run_bench, crops_from_video
    report = run_bench(BenchConfig(batches=(1, 8, 32), seconds=5.0), crops_from_video("vtest.avi"))
    print(report.to_dict()["batches"][-1]["loop_efficiency"])
"""

from __future__ import annotations

from edge_reid.bench.compare import COMPARISON_SCHEMA, BackendComparison, bench_backend_names, bench_backends
from edge_reid.bench.crop_pool import CropPool, crops_from_folder, crops_from_video, default_video, shared_folder
from edge_reid.bench.environment import environment
from edge_reid.bench.matcher import DEFAULT_GALLERY_SIZE, Matcher, match_queries, synthetic_gallery
from edge_reid.bench.precision import PRECISIONS, backend_options_for, backend_precision, resolve_precision
from edge_reid.bench.runner import (
    SCHEMA,
    BatchResult,
    BenchConfig,
    BenchReport,
    LoopStep,
    PreprocessResult,
    measure_batch,
    measure_preprocess,
    run_bench,
)
from edge_reid.bench.stats import LatencyStats, parse_batch_sizes, percentile

__all__ = [
    "COMPARISON_SCHEMA",
    "DEFAULT_GALLERY_SIZE",
    "PRECISIONS",
    "SCHEMA",
    "BackendComparison",
    "BatchResult",
    "BenchConfig",
    "BenchReport",
    "CropPool",
    "LatencyStats",
    "LoopStep",
    "Matcher",
    "PreprocessResult",
    "backend_options_for",
    "bench_backend_names",
    "bench_backends",
    "backend_precision",
    "crops_from_folder",
    "crops_from_video",
    "default_video",
    "shared_folder",
    "environment",
    "match_queries",
    "measure_batch",
    "measure_preprocess",
    "parse_batch_sizes",
    "percentile",
    "resolve_precision",
    "run_bench",
    "synthetic_gallery",
]
