"""Benchmark the fused top-k cosine matcher against numpy, faiss-cpu and the sgemm floor.

    python benchmarks/bench_matcher.py --n 100000 --dim 256 --queries 32 --k 5 --json
    python benchmarks/bench_matcher.py            # table over N, D, Q

Everything is measured in the same process on the same data, and the methods
are interleaved within each repeat (round-robin), so a noisy neighbour slows
all of them alike; every reported time is the median over the repeats, in ms.

- ``edge_reid_ms``: :func:`edge_reid.matching.topk.topk_cosine`, float32 gallery.
- ``edge_reid_fp16_ms``: the same, float16 gallery.
- ``numpy_ms``: ``q @ g.T``, ``argpartition`` for the k best, then a sort of those k.
- ``faiss_ms``: faiss-cpu ``IndexFlatIP.search`` (null when faiss is not installed:
  ``pip install 'edge-reid[bench]'``).
- ``floor_ms``: ``2*Q*N*D`` flops divided by this machine's sgemm rate, measured
  in the same run with a (2048 x 2048) @ (2048 x 2048) float32 numpy matmul on all cores.

JIT compilation and first-touch costs are excluded (one untimed call of each
method before timing).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import numba
import numpy as np
from _common import benchmark_parser

from edge_reid.matching.topk import topk_cosine

try:
    import faiss  # type: ignore[import-not-found]
except ImportError:  # optional: the `bench` extra
    faiss = None

SGEMM_SIZE = 2048


def unit_rows(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    """(rows, dim) float32 random unit vectors."""
    x = rng.standard_normal((rows, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def numpy_topk(q: np.ndarray, g: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """numpy baseline: full (Q, N) scores, argpartition, sort of the k best."""
    scores = q @ g.T
    k = min(k, g.shape[0])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part_scores, order, axis=1), np.take_along_axis(part, order, axis=1)


def measure(methods: dict[str, Callable[[], object]], repeats: int, min_seconds: float = 0.0) -> dict[str, float]:
    """Median wall time (ms) of each method; methods interleaved within each repeat."""
    for fn in methods.values():  # warm-up: JIT, page faults, thread pools
        fn()
    times: dict[str, list[float]] = {name: [] for name in methods}
    start = time.perf_counter()
    done = 0
    while done < repeats or (time.perf_counter() - start < min_seconds and done < 10 * repeats):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
        done += 1
    return {name: float(np.median(v)) for name, v in times.items()}


def run_case(n: int, dim: int, queries: int, k: int, repeats: int, seed: int = 0,
             extra: dict[str, dict] | None = None) -> dict:
    """Time all methods on one (N, D, Q, k) case; returns the JSON-able result."""
    rng = np.random.default_rng(seed)
    g = unit_rows(rng, n, dim)
    g16 = g.astype(np.float16)
    q = unit_rows(rng, queries, dim)
    a = rng.standard_normal((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32)
    b = rng.standard_normal((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32)
    c = np.empty_like(a)

    methods: dict[str, Callable[[], object]] = {
        "edge_reid": lambda: topk_cosine(q, g, k),
        "edge_reid_fp16": lambda: topk_cosine(q, g16, k),
        "numpy": lambda: numpy_topk(q, g, k),
        "sgemm": lambda: np.matmul(a, b, out=c),
    }
    for name, kwargs in (extra or {}).items():
        methods[name] = (lambda kw: (lambda: topk_cosine(q, g, k, **kw)))(kwargs)
    if faiss is not None:
        index = faiss.IndexFlatIP(dim)
        index.add(g)
        methods["faiss"] = lambda: index.search(q, k)

    # Sanity: the matcher agrees with numpy on this data before anything is timed.
    ours = topk_cosine(q, g, k)
    ref_scores, _ = numpy_topk(q, g, k)
    if not np.allclose(ours.scores, ref_scores, atol=1e-5):
        raise SystemExit("edge_reid top-k scores differ from numpy's; not benchmarking a wrong answer")

    med = measure(methods, repeats)
    gflops = 2.0 * SGEMM_SIZE**3 / (med["sgemm"] * 1e-3) / 1e9
    floor_ms = 2.0 * queries * n * dim / (gflops * 1e9) * 1e3
    result = {
        "n": n, "dim": dim, "queries": queries, "k": k, "repeats": repeats,
        "numba_threads": numba.get_num_threads(),
        "edge_reid_ms": round(med["edge_reid"], 3),
        "edge_reid_fp16_ms": round(med["edge_reid_fp16"], 3),
        "numpy_ms": round(med["numpy"], 3),
        "faiss_ms": round(med["faiss"], 3) if "faiss" in med else None,
        "floor_ms": round(floor_ms, 3),
        "sgemm_gflops": round(gflops, 1),
        "speedup_vs_numpy": round(med["numpy"] / med["edge_reid"], 2),
        "speedup_vs_faiss": round(med["faiss"] / med["edge_reid"], 2) if "faiss" in med else None,
        "x_floor": round(med["edge_reid"] / floor_ms, 2),
    }
    for name in extra or {}:
        result[f"{name}_ms"] = round(med[name], 3)
    return result


def default_repeats(n: int, dim: int, queries: int) -> int:
    """Fewer repeats for the big cases so the table finishes in minutes."""
    work = n * dim * max(queries, 4)
    return int(np.clip(2e10 / work, 5, 50))


#: ``--variants``: name -> the topk_cosine keyword arguments that differ from edge-reid's settings.
VARIANTS = {
    "blas_threaded": {"limit_blas_threads": False},
    "serial": {"parallel": False},
    "block_128": {"block_rows": 128},
    "block_512": {"block_rows": 512},
    "block_1024": {"block_rows": 1024},
    "block_2048": {"block_rows": 2048},
}

TABLE_HEADER = (f"{'N':>8} {'D':>4} {'Q':>3}  {'edge_reid':>9} {'fp16':>8} {'numpy':>8} {'faiss':>8} "
                f"{'floor':>7}  {'x numpy':>7} {'x faiss':>7} {'/floor':>6}")
TABLE_FOOTER = "times: medians in ms; x numpy / x faiss: speed-up of edge_reid (float32); /floor: edge_reid / floor_ms"


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        faiss_ms = f"{r['faiss_ms']:8.2f}" if r["faiss_ms"] is not None else f"{'-':>8}"
        vs_faiss = f"{r['speedup_vs_faiss']:7.2f}" if r["speedup_vs_faiss"] is not None else f"{'-':>7}"
        print(f"{r['n']:>8} {r['dim']:>4} {r['queries']:>3}  {r['edge_reid_ms']:9.2f} {r['edge_reid_fp16_ms']:8.2f} "
              f"{r['numpy_ms']:8.2f} {faiss_ms} {r['floor_ms']:7.2f}  {r['speedup_vs_numpy']:7.2f} "
              f"{vs_faiss} {r['x_floor']:6.2f}", flush=True)
        variants = [(key[:-3], value) for key, value in r.items() if key.endswith("_ms") and key[:-3] in VARIANTS]
        if variants:  # --variants: the same search with one setting changed, and its time over edge_reid's
            print("          variants: " + ", ".join(
                f"{name} {ms:.2f} ms (x{ms / r['edge_reid_ms']:.2f})" for name, ms in variants), flush=True)


def print_table(rows: list[dict]) -> None:
    print(TABLE_HEADER)
    print("-" * len(TABLE_HEADER))
    print_rows(rows)
    print(TABLE_FOOTER)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(__doc__, video=False)
    parser.add_argument("--n", type=int, help="gallery rows (default: table over 10k, 100k, 1M)")
    parser.add_argument("--dim", type=int, default=None, help="embedding size D (table: 256, 512)")
    parser.add_argument("--queries", type=int, default=None, help="queries Q (table: 1, 8, 32)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default: by size)")
    parser.add_argument("--json", action="store_true", help="print one JSON object for the given case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", action="store_true",
                        help="also time the matcher with multi-threaded BLAS inside prange, serial, other blocks")
    args = parser.parse_args(argv)

    extra = VARIANTS if args.variants else None
    if args.json or args.n is not None:
        n = args.n if args.n is not None else 100_000
        dim = args.dim or 256
        queries = args.queries or 32
        repeats = args.repeats or default_repeats(n, dim, queries)
        result = run_case(n, dim, queries, args.k, repeats, args.seed, extra)
        if args.json:
            print(json.dumps(result))
        else:
            print_table([result])
        return 0

    print(f"numba threads: {numba.get_num_threads()}, cpus: {os.cpu_count()}, faiss: "
          f"{'yes' if faiss is not None else 'not installed'}, k={args.k}", flush=True)
    print(TABLE_HEADER)
    print("-" * len(TABLE_HEADER), flush=True)
    for n in (10_000, 100_000, 1_000_000):
        for dim in (args.dim,) if args.dim else (256, 512):
            for queries in (args.queries,) if args.queries else (1, 8, 32):
                repeats = args.repeats or default_repeats(n, dim, queries)
                print_rows([run_case(n, dim, queries, args.k, repeats, args.seed, extra)])
    print(TABLE_FOOTER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
