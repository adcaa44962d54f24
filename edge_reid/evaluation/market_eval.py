"""Embed a Market-1501 query/gallery split with an :class:`~edge_reid.embedder.Embedder` and score it.

The same code path serves ``edge-reid eval`` and the calibration guard, so the
numbers in a calibration report are the numbers ``eval`` prints for the same model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from edge_reid.data.images import SkippedFile, read_images_in_chunks
from edge_reid.data.market1501 import MarketDataset, MarketSplit
from edge_reid.errors import DataError
from edge_reid.evaluation.metrics import DISTRACTOR_PID, JUNK_PID, RetrievalScores, cosine_distance, evaluate_market1501
from edge_reid.evaluation.rerank import re_ranking_embeddings, re_ranking_steps


def embed_crops(embedder, crops: Sequence[np.ndarray], flip: bool = False) -> np.ndarray:
    """(N, D) float32 L2-normalised embeddings of BGR crops.

    With ``flip``, each crop and its left-right mirror are embedded, the two
    embeddings averaged and the mean re-normalised (test-time flip augmentation, e.g. fast-reid's
    ``TEST.FLIP.ENABLED``).

    Raises:
        ValueError: a crop is not a non-empty (h, w, 3) uint8 image. ModelError: the model failed.
    """
    embeddings = np.array(embedder.embed_crops(crops), np.float32, copy=True)
    if flip:
        mirrored = embedder.embed_crops([cv2.flip(crop, 1) for crop in crops])
        embeddings += mirrored
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        embeddings /= np.where(norms > 0, norms, 1.0)
    return embeddings


@dataclass
class EmbeddedFiles:
    """Embeddings of image files.

    Attributes:
        embeddings: (M, D) float32, one row per readable file.
        kept: (N,) bool over the input paths: True where the file was readable.
        skipped: unreadable files.
        model_seconds: time in preprocessing + model (reading files excluded).
    """

    embeddings: np.ndarray
    kept: np.ndarray
    skipped: list[SkippedFile]
    model_seconds: float


def embed_files(
    embedder,
    paths: Sequence[Path],
    flip: bool = False,
    chunk: int = 256,
    on_progress: Callable[[int], None] | None = None,
) -> EmbeddedFiles:
    """Read and embed image files in chunks (constant memory), skipping unreadable ones.

    Args:
        embedder: an :class:`edge_reid.embedder.Embedder`.
        paths: image files.
        flip: add the mirror image (see :func:`embed_crops`).
        chunk: files read per step.
        on_progress: called with the number of files handled after each chunk.

    Returns:
        :class:`EmbeddedFiles`: the readable files' (M, D) float32 embeddings, which of ``paths`` they are,
        the skipped files with the reason, and the model's seconds.

    Raises:
        ModelError: the model failed.
    """
    rows: list[np.ndarray] = []
    kept = np.zeros(len(paths), bool)
    skipped: list[SkippedFile] = []
    model_seconds = 0.0
    for part in read_images_in_chunks(paths, chunk):
        skipped.extend(part.skipped)
        if part.images:
            started = time.perf_counter()
            rows.append(embed_crops(embedder, part.images, flip))
            model_seconds += time.perf_counter() - started
            kept[part.indices] = True
        if on_progress is not None:
            on_progress(len(part.images) + len(part.skipped))
    dim = embedder.dim
    embeddings = np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)
    return EmbeddedFiles(embeddings, kept, skipped, model_seconds)


@dataclass
class MarketEvaluation:
    """Result of evaluating one model on a query/gallery split.

    Attributes:
        scores: the protocol's CMC/mAP.
        query_images: query images embedded.
        gallery_images: gallery images embedded (junk, id -1, included; it is not scored).
        ms_per_image: preprocessing + model milliseconds per image (flip counts one image).
        seconds: wall-clock seconds of the whole evaluation.
        flip: flip averaging used.
        rerank: k-reciprocal re-ranking used.
        skipped: files left out (malformed names, unreadable images).
    """

    scores: RetrievalScores
    query_images: int
    gallery_images: int
    ms_per_image: float
    seconds: float
    flip: bool = False
    rerank: bool = False
    skipped: list[SkippedFile] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready dict: rank1/5/10 and mAP in percent, counts, timing, skipped files."""
        return {
            **self.scores.to_dict(),
            "query_images": self.query_images,
            "gallery_images": self.gallery_images,
            "ms_per_image": round(self.ms_per_image, 3),
            "seconds": round(self.seconds, 2),
            "flip": self.flip,
            "rerank": self.rerank,
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
        }


def _embed_split(embedder, split: MarketSplit, flip: bool, on_progress) -> tuple[EmbeddedFiles, MarketSplit]:
    embedded = embed_files(embedder, split.paths, flip=flip, on_progress=on_progress)
    if not embedded.kept.any():
        raise DataError(f"{split.folder}: no readable image ({len(embedded.skipped)} unreadable)")
    return embedded, split.subset(embedded.kept)


def _person_zero_as_person(q_pids: np.ndarray, g_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Query and gallery ids with id 0 given an unused id when a query has id 0, else as they are.

    Market-1501's ``0000`` crops are gallery distractors and never queries. A query with id 0 says
    the data set numbers people from 0 (MSMT17 in Market-1501 layout): 0 is then a person, scored
    like any other, as torchreid scores it (its loaders give id 0 no special meaning).
    """
    if not (q_pids == DISTRACTOR_PID).any():
        return q_pids, g_pids
    person = max(int(q_pids.max()), int(g_pids.max()) if g_pids.size else 0) + 1
    return np.where(q_pids == DISTRACTOR_PID, person, q_pids), np.where(g_pids == DISTRACTOR_PID, person, g_pids)


def evaluate_market(
    embedder,
    dataset: MarketDataset,
    flip: bool = False,
    rerank: bool = False,
    on_progress: Callable[[int], None] | None = None,
    on_stage: Callable[[str, int], Callable[[int], None]] | None = None,
) -> MarketEvaluation:
    """Embed the query and gallery of ``dataset`` and score them under the Market-1501 protocol.

    Args:
        embedder: an :class:`edge_reid.embedder.Embedder` (any backend, FP32 or quantized model).
        dataset: from :func:`edge_reid.data.market1501.load_market1501`.
        flip: flip averaging.
        rerank: k-reciprocal re-ranking (Zhong et al., CVPR 2017), k1=20, k2=6, lambda=0.3.
        on_progress: called with the number of files handled after each chunk.
        on_stage: called as ``on_stage(description, total)`` when a stage after the embedding starts
            (``"re-ranking"``, in :func:`~edge_reid.evaluation.rerank.re_ranking_steps`; ``"scoring"``, in
            queries); what it returns is called with the steps done as they pass.

    Junk gallery images (person id -1) are embedded and counted in ``gallery_images`` but left out
    before any distance is computed, as torchreid and fast-reid leave them out when loading: they
    are neither ranked nor, with ``rerank``, anyone's k-reciprocal neighbour. Id ``0000`` crops are
    distractors (wrong matches for every query) unless a query has id 0: then the data set numbers
    people from 0 (MSMT17 in Market-1501 layout) and 0 is a person like any other, as torchreid scores it.

    Returns:
        :class:`MarketEvaluation`: the CMC curve and mAP, counts, the skipped files and the time per image (ms).

    Raises:
        DataError: a split has no readable image, or no query has a match in the gallery.
        ModelError: the model failed.
    """
    started = time.perf_counter()
    query, query_split = _embed_split(embedder, dataset.query, flip, on_progress)
    gallery, gallery_split = _embed_split(embedder, dataset.gallery, flip, on_progress)
    # Junk gallery images (id -1) leave before any distance, as torchreid and fast-reid drop them when loading:
    # the protocol ignores them anyway, but re-ranking would count them as neighbours.
    scored = gallery_split.pids != JUNK_PID
    gallery_embeddings, gallery_split = gallery.embeddings[scored], gallery_split.subset(scored)
    stage = on_stage or (lambda description, total: None)
    if rerank:  # from the embeddings, a block of rows at a time: no (Q+G)^2 matrix (35 GB for MSMT17)
        distances = re_ranking_embeddings(
            query.embeddings, gallery_embeddings,
            on_progress=stage("re-ranking", re_ranking_steps(len(query.embeddings), len(gallery_embeddings))),
        )
    else:
        distances = cosine_distance(query.embeddings, gallery_embeddings)
    q_pids, g_pids = _person_zero_as_person(query_split.pids, gallery_split.pids)
    try:
        scores = evaluate_market1501(
            distances, q_pids, g_pids, query_split.camids, gallery_split.camids,
            on_progress=stage("scoring", len(distances)),
        )
    except ValueError as exc:
        raise DataError(f"{dataset.root}: {exc}") from None
    images = len(query.embeddings) + len(gallery.embeddings)
    return MarketEvaluation(
        scores=scores,
        query_images=len(query.embeddings),
        gallery_images=len(gallery.embeddings),
        ms_per_image=1000.0 * (query.model_seconds + gallery.model_seconds) / max(images, 1),
        seconds=time.perf_counter() - started,
        flip=flip,
        rerank=rerank,
        skipped=dataset.query.skipped + dataset.gallery.skipped + query.skipped + gallery.skipped,
    )
