"""Fused top-k cosine search: queries (Q, D) against a gallery (N, D), never building (Q, N).

Method (the blocked "GEMM + running top-k" scheme of FAISS's ``IndexFlatIP``
search and of BLAS-backed k-NN libraries, written here in Numba):

1. The gallery is cut into blocks of ``block_rows`` rows (about 1 MiB of
   float32 gallery per block: large enough that each BLAS call is efficient,
   small enough that the block's scores, (rows, Q) float32, stay in cache).
2. ``prange`` hands the blocks dynamically to the Numba threads. Each thread
   scores its block with one single-threaded BLAS ``sgemm``:
   ``scores (rows, Q) = block (rows, D) @ queries.T (D, Q)``, into a per-thread
   scratch array. A float16 gallery block is first widened into a per-thread
   float32 scratch (``vcvtph2ps`` on x86 with F16C, ``fcvt`` on ARM); scores
   are always float32.
3. Each thread keeps its own sorted top-k per query. A row of scores is first
   compared against the current k-th score of every query (a vectorised
   "any above threshold" test); only rows that pass go to the insertion step.
4. After the loop the per-thread lists are merged into the answer.

Memory per call: O(threads * (block_rows * (Q + D) + Q * k)), independent of N.

Order and ties: results are sorted by descending score; equal scores are
ordered by ascending gallery row, i.e. exactly what a stable descending sort of
``queries @ gallery.T`` gives. When every dot product is exactly representable
in float32 (as in the tests) the output is identical to that numpy reference.
In general the blocked GEMM sums in a different order than one big numpy
matmul, so scores can differ from numpy's in the last bits (about 1e-7) and
two gallery rows whose scores are that close may swap places.

Inputs must be finite; queries and gallery rows are expected to be
L2-normalised (the kernel computes inner products, which are cosine
similarities in [-1, 1] only for unit vectors).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core.extending import intrinsic, overload

from edge_reid.cpu import usable_cpu_count
from edge_reid.jit import cached_njit
from edge_reid.matching._blas_threads import single_threaded_blas

#: Target bytes of float32 gallery per block: a block and its scores stay in a core's L2 cache.
BLOCK_BYTES = 1024 * 1024
#: Cap on a block's score scratch, (block_rows, Q) float32: many queries get shorter blocks.
SCORE_SCRATCH_FLOATS = 2**17
#: Galleries with at most this many elements (N * D) are searched on the calling
#: thread only: waking the thread pool costs more than it saves there (8 MiB of float32).
SERIAL_MAX_ELEMENTS = 2**21
#: OpenBLAS runs a GEMM of m*n*k below this on one thread anyway (its default
#: SMP threshold, 65536 * GEMM_MULTITHREAD_THRESHOLD=4), so smaller searches skip
#: the BLAS thread-limit switch (tens of microseconds).
BLAS_SINGLE_THREAD_BELOW = 65536 * 4


@dataclass(frozen=True)
class TopK:
    """The k best gallery rows of each query.

    Attributes:
        scores: (Q, k') float32 cosine similarities in [-1, 1], descending per row.
        indices: (Q, k') int64 gallery row numbers; ``k' = min(k, N)``: when the
            gallery has fewer than ``k`` rows every row is returned and the
            output is narrower (no padding); an empty gallery gives (Q, 0). A slot no row
            could fill (a query holding NaN beats no row) holds score -inf and index -1.
    """

    scores: np.ndarray
    indices: np.ndarray


# ---------------------------------------------------------------------------
# float16 -> float32 widening, one element, compiled to the CPU's native convert.


@intrinsic
def _half_bits_to_float32(typingctx, bits):
    """float32 value of the IEEE 754 binary16 number whose bits are ``bits`` (uint16)."""
    if bits != types.uint16:
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.uint16), codegen


def _block_as_float32(gallery, start, stop, scratch):
    """Rows ``start:stop`` of ``gallery`` as a float32 (rows, D) array (Numba only)."""
    raise NotImplementedError  # replaced by the overload below inside Numba code


@overload(_block_as_float32)
def _block_as_float32_impl(gallery, start, stop, scratch):
    if gallery.dtype == types.float32:

        def impl(gallery, start, stop, scratch):
            return gallery[start:stop]

        return impl
    if gallery.dtype == types.uint16:  # float16 storage seen through a uint16 view

        def impl(gallery, start, stop, scratch):
            rows = stop - start
            dim = gallery.shape[1]
            for r in range(rows):
                for c in range(dim):
                    scratch[r, c] = _half_bits_to_float32(gallery[start + r, c])
            return scratch[:rows]

        return impl
    return None


# ---------------------------------------------------------------------------
# Kernel pieces.


@cached_njit(nogil=True, inline="always")
def _insert(top_scores, top_index, score, index):
    """Insert (score, index) into one query's sorted list if it beats the last entry.

    Order: higher score first; equal scores by lower index. Empty slots hold
    (-inf, -1) and lose to any finite candidate.
    """
    k = top_scores.shape[0]
    last = k - 1
    if score < top_scores[last] or (
        score == top_scores[last] and top_index[last] >= 0 and index > top_index[last]
    ):
        return
    pos = last
    while pos > 0:
        prev_score = top_scores[pos - 1]
        if prev_score > score or (prev_score == score and top_index[pos - 1] < index):
            break
        top_scores[pos] = prev_score
        top_index[pos] = top_index[pos - 1]
        pos -= 1
    top_scores[pos] = score
    top_index[pos] = index


@cached_njit(nogil=True)
def _search_block(queries_t, gallery, start, stop, gallery_scratch, score_scratch, top_scores, top_index, thresholds):
    """Score gallery rows start:stop against all queries and fold them into one thread's top-k.

    queries_t: (D, Q) float32; score_scratch: (block_rows, Q) float32;
    top_scores/top_index: (Q, k); thresholds: (Q,) current k-th score per query.
    """
    rows = stop - start
    block = _block_as_float32(gallery, start, stop, gallery_scratch)
    scores = score_scratch[:rows]
    np.dot(block, queries_t, scores)
    n_queries = queries_t.shape[1]
    k = top_scores.shape[1]
    for r in range(rows):
        hit = False
        for j in range(n_queries):
            hit |= scores[r, j] >= thresholds[j]
        if not hit:
            continue
        for j in range(n_queries):
            value = scores[r, j]
            if value >= thresholds[j]:
                _insert(top_scores[j], top_index[j], value, start + r)
                thresholds[j] = top_scores[j, k - 1]


@cached_njit(nogil=True)
def _merge(part_scores, part_index, out_scores, out_index):
    """Merge per-thread lists (T, Q, k) into out (Q, k) with the same ordering rules."""
    n_parts, n_queries, k = part_scores.shape
    for j in range(n_queries):
        for c in range(k):
            out_scores[j, c] = -np.inf
            out_index[j, c] = -1
        for t in range(n_parts):
            for c in range(k):
                index = part_index[t, j, c]
                if index < 0:
                    break
                _insert(out_scores[j], out_index[j], part_scores[t, j, c], index)


@cached_njit(nogil=True, parallel=True)
def _topk_parallel(queries_t, gallery, block_rows, n_slots, gallery_scratch, out_scores, out_index):
    """Parallel fused search; see the module docstring. Writes out_scores/out_index (Q, k)."""
    n_rows = gallery.shape[0]
    n_queries = queries_t.shape[1]
    k = out_scores.shape[1]
    n_blocks = (n_rows + block_rows - 1) // block_rows
    part_scores = np.full((n_slots, n_queries, k), -np.inf, dtype=np.float32)
    part_index = np.full((n_slots, n_queries, k), -1, dtype=np.int64)
    thresholds = np.full((n_slots, n_queries), -np.inf, dtype=np.float32)
    score_scratch = np.empty((n_slots, block_rows, n_queries), dtype=np.float32)
    for b in prange(n_blocks):
        t = numba.get_thread_id()
        start = b * block_rows
        stop = min(n_rows, start + block_rows)
        _search_block(
            queries_t, gallery, start, stop, gallery_scratch[t], score_scratch[t],
            part_scores[t], part_index[t], thresholds[t],
        )
    _merge(part_scores, part_index, out_scores, out_index)


@cached_njit(nogil=True)
def _topk_serial(queries_t, gallery, block_rows, gallery_scratch, out_scores, out_index):
    """Single-thread fused search (small galleries). Writes out_scores/out_index (Q, k)."""
    n_rows = gallery.shape[0]
    n_queries = queries_t.shape[1]
    k = out_scores.shape[1]
    for j in range(n_queries):
        for c in range(k):
            out_scores[j, c] = -np.inf
            out_index[j, c] = -1
    thresholds = np.full(n_queries, -np.inf, dtype=np.float32)
    score_scratch = np.empty((block_rows, n_queries), dtype=np.float32)
    for start in range(0, n_rows, block_rows):
        stop = min(n_rows, start + block_rows)
        _search_block(
            queries_t, gallery, start, stop, gallery_scratch, score_scratch, out_scores, out_index, thresholds
        )


@functools.cache
def _usable_cores() -> int:
    """:func:`edge_reid.cpu.usable_cpu_count`, read once per process (its cgroup files cost about as much as a small search)."""
    return usable_cpu_count()


# ---------------------------------------------------------------------------
# Public API.


def default_block_rows(dim: int) -> int:
    """Gallery rows per block for embedding size ``dim``: a power of two, 64..4096, ~BLOCK_BYTES of float32."""
    rows = max(1, BLOCK_BYTES // (4 * max(1, dim)))
    return int(min(4096, max(64, 1 << (rows.bit_length() - 1))))


def _as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.asarray(queries)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"queries must have shape (Q, {dim}), got {np.shape(queries)}")
    if not np.issubdtype(q.dtype, np.floating):
        raise ValueError(f"queries must be floating point, got {q.dtype}")
    return q


def topk_cosine(
    queries: np.ndarray,
    gallery: np.ndarray,
    k: int,
    *,
    block_rows: int | None = None,
    parallel: bool | None = None,
    limit_blas_threads: bool = True,
) -> TopK:
    """The ``k`` gallery rows most similar to each query, by inner product (cosine for unit vectors).

    Args:
        queries: (Q, D) (or (D,), treated as Q=1) floating point, L2-normalised.
        gallery: (N, D) float32 or float16, C-contiguous, L2-normalised rows.
            float16 halves the memory read per search; scores are still float32.
        k: how many rows per query, >= 1. ``k > N`` returns all N rows.
        block_rows: gallery rows per block (default :func:`default_block_rows`, fewer
            for many queries so that a block's scores stay within 512 KiB).
        parallel: force (True) or forbid (False) the multi-threaded kernel;
            default: parallel when N * D > :data:`SERIAL_MAX_ELEMENTS`. Threads: Numba's
            (``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``), at most
            :func:`edge_reid.cpu.usable_cpu_count` (a CPU quota's cores).
        limit_blas_threads: run BLAS single-threaded during the search (see
            :mod:`edge_reid.matching._blas_threads`); False only for benchmarks.

    Returns:
        :class:`TopK` with (Q, min(k, N)) scores (float32, descending) and
        indices (int64; ties by lower index).

    Raises:
        ValueError: bad shapes, dtypes, a gallery that is not a NumPy array (a list, say) or not
            C-contiguous, or k < 1.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if not isinstance(gallery, np.ndarray):  # no silent copy of a gallery: it is searched where it lies
        raise ValueError(f"gallery must be a NumPy array (N, D) of float32 or float16, got {type(gallery).__name__}")
    if gallery.ndim != 2:
        raise ValueError(f"gallery must have shape (N, D), got {gallery.shape}")
    if gallery.dtype not in (np.float32, np.float16):
        raise ValueError(f"gallery must be float32 or float16, got {gallery.dtype}")
    if not gallery.flags.c_contiguous:
        raise ValueError("gallery must be C-contiguous (use np.ascontiguousarray)")
    n_rows, dim = gallery.shape
    q = _as_queries(queries, dim)
    n_queries = q.shape[0]
    k_eff = int(min(k, n_rows))
    out_scores = np.empty((n_queries, k_eff), dtype=np.float32)
    out_index = np.empty((n_queries, k_eff), dtype=np.int64)
    if k_eff == 0 or n_queries == 0:
        return TopK(out_scores, out_index)
    queries_t = np.ascontiguousarray(q.T, dtype=np.float32)
    if block_rows is None:
        rows = min(default_block_rows(dim), max(64, SCORE_SCRATCH_FLOATS // n_queries))
    else:
        rows = int(block_rows)
    if rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    rows = min(rows, n_rows)
    fp16 = gallery.dtype == np.float16
    data = gallery.view(np.uint16) if fp16 else gallery
    use_parallel = parallel if parallel is not None else n_rows * dim > SERIAL_MAX_ELEMENTS
    # Single-threaded BLAS in both kernels: in the parallel one each Numba thread runs its own
    # GEMMs; in the serial one the per-block GEMMs are too small to gain from BLAS threads
    # (and multi-threaded OpenBLAS slowed small searches many times on 2 busy cores).
    tiny = rows * dim * n_queries < BLAS_SINGLE_THREAD_BELOW
    blas_limit = single_threaded_blas() if limit_blas_threads and not tiny else contextlib.nullcontext()
    if not use_parallel:
        scratch = np.empty((rows, dim) if fp16 else (0, dim), dtype=np.float32)
        with blas_limit:
            _topk_serial(queries_t, data, rows, scratch, out_scores, out_index)
        return TopK(out_scores, out_index)
    n_slots = int(numba.config.NUMBA_NUM_THREADS)
    scratch = np.empty((n_slots, rows, dim) if fp16 else (n_slots, 0, dim), dtype=np.float32)
    threads = numba.get_num_threads()  # this thread's setting; Numba's pool counts cores, not a CPU quota
    with blas_limit, numba.parallel_chunksize(1):
        numba.set_num_threads(min(threads, _usable_cores()))
        try:
            _topk_parallel(queries_t, data, rows, n_slots, scratch, out_scores, out_index)
        finally:
            numba.set_num_threads(threads)
    return TopK(out_scores, out_index)
