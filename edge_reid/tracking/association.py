"""Cost matrices between tracks and detections, and their one-to-one assignment.

Costs follow BoT-SORT (N. Aharon et al., 2022, ``tracker/bot_sort.py``):

- motion: ``1 - IoU`` of the track's predicted box and the detection's box;
- appearance: half the cosine distance, ``(1 - s) / 2`` in [0, 1], where ``s`` is
  the best cosine similarity between the detection's embedding and the track's
  embedding history (DeepSORT's nearest-neighbour metric, N. Wojke et al., 2017);
- fused: ``min(motion, appearance)``, where appearance only counts for pairs that
  are close (IoU >= ``proximity``) and alike (``s`` >= ``1 - 2 * appearance_thresh``).
  So appearance can only make a nearby pair cheaper, never join far-apart boxes.
  Added here: pairs whose appearance is *clearly different* (``s`` below a
  veto similarity) are forbidden whatever their IoU, so motion alone cannot
  join two different people either.
- gated (tentative tracks only, :func:`gated_motion_cost`): a pair the IoU gate refuses may
  still be made when the track's Kalman filter places the detection inside its 95% chi-square
  gate (DeepSORT's gate, N. Wojke et al., 2017). A tentative track's velocity is not yet known,
  and the filter's uncertainty grows with the seconds since its last box, so at low frame rates
  this gate widens with the distance a person can walk, where a fixed IoU gate does not.

Assignment minimises the total cost with a per-pair cost limit, as ByteTrack's
``lap.lapjv(..., extend_cost=True, cost_limit=thresh)``: a pair is made only when
its cost is below the limit, and a cheap pair is never given up to make two
costly ones. Solved with ``scipy.optimize.linear_sum_assignment`` on the usual
augmented matrix (every row and column may stay unmatched at half the limit).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from edge_reid.tracking.boxes import iou_matrix

#: Cost of a forbidden pair (larger than any real cost and any limit).
FORBIDDEN = 1.0e6


def iou_cost(track_boxes: np.ndarray, detection_boxes: np.ndarray) -> np.ndarray:
    """(T, D) float64 ``1 - IoU`` of T predicted track boxes and D detection boxes (x1, y1, x2, y2 pixels)."""
    return 1.0 - iou_matrix(track_boxes, detection_boxes)


def appearance_similarity(
    histories: list[np.ndarray | None], embeddings: np.ndarray | None, embedded: np.ndarray, wanted: np.ndarray | None = None
) -> np.ndarray:
    """Best cosine similarity of each detection's embedding to each track's embedding history.

    Args:
        histories: per track, an (H, D) float32 array of L2-normalised embeddings, or None / empty.
        embeddings: (N, D) float32 L2-normalised detection embeddings (rows where ``embedded`` is
            False are ignored), or None.
        embedded: (N,) bool, which detections have an embedding.
        wanted: (T, N) bool, the pairs to score, or None for all: the tracker scores only the
            pairs whose cost appearance can still bring under the assignment limit
            (:func:`pairs_appearance_can_change`); a track's history holds up to 100 views, so
            scoring every pair of a crowd cost tracks x detections x 100 dot products a frame.

    Returns:
        (T, N) float64 cosine similarities in [-1, 1]; NaN where the track has no
        history, the detection no embedding, or the pair is not ``wanted``.
    """
    count = embedded.shape[0]
    similarity = np.full((len(histories), count), np.nan)
    if embeddings is None or count == 0 or not embedded.any():
        return similarity
    columns = np.flatnonzero(embedded)
    for row, history in enumerate(histories):
        if history is None or len(history) == 0:
            continue
        scored = columns if wanted is None else np.flatnonzero(embedded & wanted[row])
        if scored.size:
            queries = np.asarray(embeddings[scored], np.float32)
            similarity[row, scored] = (np.asarray(history, np.float32) @ queries.T).max(axis=0)
    return similarity


def pairs_appearance_can_change(motion: np.ndarray, limit: float, proximity: float) -> np.ndarray:
    """(T, D) bool: the pairs whose :func:`fuse_costs` result can depend on appearance and still be
    assigned: those motion admits (cost below ``limit``: appearance may lower or veto them) and
    those close enough for appearance to lower (cost <= ``1 - proximity``, which passes the limit
    only when ``proximity`` is below the IoU gate). Every other pair stays at or above ``limit``
    whatever the similarity, so scoring it would change no assignment."""
    return (motion < limit) | (motion <= 1.0 - proximity)


def fuse_costs(
    motion: np.ndarray,
    similarity: np.ndarray,
    proximity: float,
    appearance_thresh: float,
    veto_similarity: float,
) -> np.ndarray:
    """BoT-SORT's fused cost, with a veto on clearly different appearance.

    Args:
        motion: (T, D) ``1 - IoU``.
        similarity: (T, D) best cosine similarities, NaN where unknown.
        proximity: lowest IoU at which appearance may lower the cost (BoT-SORT: 0.5).
        appearance_thresh: largest half cosine distance that counts as alike (BoT-SORT: 0.25,
            i.e. similarity >= 0.5).
        veto_similarity: pairs with a known similarity below this are forbidden.

    Returns:
        (T, D) float64 cost; :data:`FORBIDDEN` for vetoed pairs.
    """
    known = ~np.isnan(similarity)
    distance = np.where(known, (1.0 - np.nan_to_num(similarity)) / 2.0, 1.0)
    usable = known & (distance <= appearance_thresh) & (motion <= 1.0 - proximity)
    cost = np.where(usable, np.minimum(motion, distance), motion)
    cost[known & (np.nan_to_num(similarity, nan=1.0) < veto_similarity)] = FORBIDDEN
    return cost


def gated_motion_cost(motion: np.ndarray, mahalanobis_sq: np.ndarray, min_iou: float, gate_chi2: float) -> np.ndarray:
    """Motion cost where either the IoU gate or the Kalman filter's gate admits a pair.

    Pairs at IoU >= ``min_iou`` keep their cost ``1 - IoU`` (at most ``1 - min_iou``). Pairs
    below it but inside the filter's gate (squared Mahalanobis distance <= ``gate_chi2``)
    cost ``(1 - min_iou) + min_iou * d2 / gate_chi2``, in ``(1 - min_iou, 1]``: after every
    pair the IoU gate admits, nearer ones first. Every other pair is :data:`FORBIDDEN`.
    Assign with ``limit`` just above 1 (:data:`GATED_LIMIT`).

    Args:
        motion: (T, D) ``1 - IoU`` (:func:`iou_cost`).
        mahalanobis_sq: (T, D) squared Mahalanobis distances of the detections to each
            track's predicted box (:meth:`~edge_reid.tracking.kalman.BoxKalmanFilter.gating_distance`).
        min_iou: the IoU gate, in [0, 1].
        gate_chi2: the filter's gate, > 0 (DeepSORT: 9.4877, chi-square 0.95 with 4 degrees of freedom).

    Returns:
        (T, D) float64 cost.

    Raises:
        ValueError: ``gate_chi2`` is not positive.
    """
    if not gate_chi2 > 0:
        raise ValueError(f"gate_chi2 must be > 0, got {gate_chi2}")
    iou_limit = 1.0 - min_iou
    inside = mahalanobis_sq <= gate_chi2
    beyond_iou = iou_limit + min_iou * np.minimum(mahalanobis_sq, gate_chi2) / gate_chi2
    return np.where(motion <= iou_limit, motion, np.where(inside, beyond_iou, FORBIDDEN))


#: The assignment limit for :func:`gated_motion_cost`: admits every cost up to 1.
GATED_LIMIT = 1.0 + 1e-9


def linear_assignment(cost: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one pairs of minimum total cost, each pair's cost below ``limit``.

    Args:
        cost: (T, D) costs; entries >= ``limit`` (e.g. :data:`FORBIDDEN`) are never paired.
        limit: the largest cost a pair may have (exclusive).

    Returns:
        ``(matches (K, 2) int64 rows of (track, detection), unmatched_tracks (T - K,),
        unmatched_detections (D - K,))``, index arrays in increasing order.
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return np.zeros((0, 2), np.int64), np.arange(rows), np.arange(cols)
    allowed = cost < limit
    size = rows + cols
    augmented = np.full((size, size), FORBIDDEN)
    augmented[:rows, :cols] = np.where(allowed, cost, FORBIDDEN)
    augmented[np.arange(rows), cols + np.arange(rows)] = limit / 2.0  # track left unmatched
    augmented[rows + np.arange(cols), np.arange(cols)] = limit / 2.0  # detection left unmatched
    augmented[rows:, cols:] = 0.0
    row_index, col_index = linear_sum_assignment(augmented)
    pair = (row_index < rows) & (col_index < cols)
    pair &= allowed[np.minimum(row_index, rows - 1), np.minimum(col_index, cols - 1)]
    matches = np.stack((row_index[pair], col_index[pair]), axis=1).astype(np.int64)
    unmatched_tracks = np.delete(np.arange(rows), matches[:, 0])  # ascending, as setdiff1d gave (an index is matched once)
    unmatched_detections = np.delete(np.arange(cols), matches[:, 1])
    return matches, unmatched_tracks, unmatched_detections
