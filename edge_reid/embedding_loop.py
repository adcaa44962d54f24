"""Batches of person crops in, matched embeddings out, with embedding and matching overlapped.

A plain loop does, per batch, preprocess -> model -> normalise -> match, one after
the other, so the model waits while the batch is matched. :class:`EmbeddingLoop`
embeds batch ``i + 1`` (preprocessing, model, normalisation: one
:meth:`Embedder.embed_crops <edge_reid.embedder.Embedder.embed_crops>` call) on a
worker thread while the caller's thread matches batch ``i``: software pipelining
with one batch in flight, the double-buffering scheme of GPU inference servers.
It is meant for a model that runs on a device leaving the CPU free (a GPU with
TensorRT), where matching can hide behind the model. On a CPU the model and the
matcher share the cores, so the gain is small, and for batches of one crop the
hand-off to the worker thread costs more than it hides: there, call
``Embedder.embed_crops`` and match in turn. Measurements and their commands:
docs/benchmarks.md (``edge-reid bench``, ``benchmarks/loop_targets.py``).

Results are exactly those of the plain loop, in the same order: the embedder is
used by the worker thread only, ``match`` is called on the caller's thread in batch
order, and the model's output does not depend on the gallery. A matcher that
updates a gallery therefore sees the same gallery state for every batch as it would
in the plain loop.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from edge_reid.closing import Closable
from edge_reid.embedder import Embedder

T = TypeVar("T")


@dataclass(frozen=True)
class LoopResult(Generic[T]):
    """One batch through the loop.

    Attributes:
        index: batch number, from 0 in input order.
        embeddings: (N, D) float32 L2-normalised embeddings of the batch's crops
            (a fresh array owned by the caller).
        matched: what ``match(embeddings)`` returned, e.g. a
            :class:`~edge_reid.matching.gallery.MatchResult`.
    """

    index: int
    embeddings: np.ndarray
    matched: T


class EmbeddingLoop(Closable, Generic[T]):
    """Embeds batches of crops and matches them, the next batch's embedding overlapping this batch's matching.

    Args:
        embedder: the :class:`~edge_reid.embedder.Embedder` (used from the loop's worker
            thread only while :meth:`run` is going: do not call it elsewhere meanwhile).
        match: called on the caller's thread with each batch's (N, D) float32
            embeddings, in batch order; its return value is :attr:`LoopResult.matched`.
            For example ``lambda e: gallery.match(e)``.

    Attributes:
        seconds: totals over the loop's life, in seconds: ``"preprocess"`` and ``"embed"``
            (model + normalisation) as the worker measured them, ``"match"`` (the caller's
            thread in ``match``) and ``"wait"`` (the caller's thread blocked waiting for
            embeddings: the part of the model's time that matching did not hide).

    Example::

        loop = EmbeddingLoop(embedder, lambda e: gallery.match(e, timestamp=now))
        for result in loop.run(batches_of_crops):
            print(result.index, result.matched.identity_ids)
    """

    def __init__(self, embedder: Embedder, match: Callable[[np.ndarray], T]) -> None:
        self.embedder = embedder
        self.match = match
        self.seconds = {"preprocess": 0.0, "embed": 0.0, "match": 0.0, "wait": 0.0}
        self._runs: set[threading.Event] = set()  # one per run not yet ended: close() sets them all
        self._runs_lock = threading.Lock()

    def _embed(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, dict[str, float]]:
        """Worker thread: embeddings of one batch and the embedder's stage seconds for it."""
        embeddings = self.embedder.embed_crops(crops)
        return embeddings, dict(self.embedder.last_seconds)

    def _collect(self, index: int, pending: Future) -> LoopResult[T]:
        """Caller's thread: wait for a batch's embeddings, then match them."""
        start = time.perf_counter()
        embeddings, stage_seconds = pending.result()
        matched_at = time.perf_counter()
        matched = self.match(embeddings)
        self.seconds["wait"] += matched_at - start
        self.seconds["match"] += time.perf_counter() - matched_at
        self.seconds["preprocess"] += stage_seconds["preprocess"]
        self.seconds["embed"] += stage_seconds["embed"]
        return LoopResult(index, embeddings, matched)

    def run(self, batches: Iterable[Sequence[np.ndarray]]) -> Iterator[LoopResult[T]]:
        """Embed and match each batch; yields one :class:`LoopResult` per batch, in order.

        Args:
            batches: each a sequence of N BGR uint8 crops (h, w, 3), any N >= 0 (more than
                the embedder's ``max_batch`` are split into sub-batches, never dropped).
                A batch's crops must stay unchanged until its result is yielded.

        Yields:
            :class:`LoopResult`, batch ``i`` while batch ``i + 1`` is being embedded.

        Raises:
            ValueError: a crop is empty or not (h, w, 3) uint8 (raised at that batch's
                turn, after the results of the batches before it).
            ModelError: the model returned NaN/Inf (likewise).
            Anything ``match`` raises, and anything ``batches`` raises (after the result of
            every batch it gave before).

        Stopping early (``break``, an exception, Ctrl-C in the caller) waits for the batch
        in flight, drops its result and leaves no thread running. :meth:`close` (from another
        thread) ends a run at its next batch, likewise.
        """
        closing = threading.Event()  # made now, not at the first next(): a close() before that counts
        with self._runs_lock:
            self._runs.add(closing)
        return self._run(batches, closing)

    def _run(self, batches: Iterable[Sequence[np.ndarray]], closing: threading.Event) -> Iterator[LoopResult[T]]:
        worker = ThreadPoolExecutor(1, thread_name_prefix="edge-reid-embed")  # this run's own: close() or a second run cannot take it away
        pending: tuple[int, Future] | None = None
        iterator = iter(batches)
        try:
            for index in itertools.count():
                if closing.is_set():
                    return
                try:
                    crops = next(iterator)
                except StopIteration:
                    break
                except Exception:
                    if pending is not None:  # the batch taken before the error is embedded: its result first
                        collected, pending = self._collect(*pending), None
                        yield collected
                    raise
                submitted = worker.submit(self._embed, crops)
                if pending is not None:
                    yield self._collect(*pending)
                pending = (index, submitted)
            if pending is not None:
                yield self._collect(*pending)
        finally:
            worker.shutdown(wait=True)  # waits for a batch still in flight; its result or error is dropped
            with self._runs_lock:
                self._runs.discard(closing)

    def close(self) -> None:
        """End every run of this loop not yet ended (one going on in another thread, or one made but not
        started) at its next batch; their worker threads then stop. Safe to call at any time, and twice;
        a later :meth:`run` works as usual."""
        with self._runs_lock:
            for closing in self._runs:
                closing.set()
