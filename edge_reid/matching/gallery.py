"""The identity gallery: one L2-normalised template per identity, matched by cosine similarity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_reid.matching.assignment import assign_unique


@dataclass
class Identity:
    """One person known to the gallery.

    Attributes:
        identity_id: stable integer id, from 1 upwards in order of creation.
        name: optional label (e.g. an enrolled person's name).
        first_seen: timestamp in seconds of the first sighting.
        last_seen: timestamp in seconds of the latest sighting.
        count: number of sightings (matches plus the creating one).
    """

    identity_id: int
    name: str | None
    first_seen: float
    last_seen: float
    count: int = 1


@dataclass(frozen=True)
class MatchResult:
    """Identities given to N query embeddings.

    Attributes:
        identity_ids: (N,) int64 identity id per query; -1 when no identity
            matched and none was created.
        similarities: (N,) float32 cosine similarity in [-1, 1] to the matched
            identity's template before the update; 0 for new or unmatched queries.
        is_new: (N,) bool, True where the query created a new identity.
    """

    identity_ids: np.ndarray
    similarities: np.ndarray
    is_new: np.ndarray


class Gallery:
    """Identities with moving-average templates, matched one-to-one per frame.

    Each identity keeps one template: the exponential moving average of its
    matched embeddings, renormalised, ``t <- normalise(momentum * t + (1 - momentum) * e)``.
    A query matches an identity when their cosine similarity is at least
    ``threshold``; within one call no two queries get the same identity
    (:func:`edge_reid.matching.assignment.assign_unique`).

    Args:
        dim: embedding length D.
        threshold: lowest cosine similarity in [-1, 1] that counts as the same person.
        momentum: weight of the old template in the moving average, in [0, 1).

    Raises:
        ValueError: ``dim`` < 1, or ``momentum`` outside [0, 1).
    """

    def __init__(self, dim: int, threshold: float = 0.6, momentum: float = 0.8, initial_capacity: int = 64) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.dim = int(dim)
        self.threshold = float(threshold)
        self.momentum = float(momentum)
        self._templates = np.zeros((max(1, initial_capacity), self.dim), np.float32)
        self.identities: list[Identity] = []

    def __len__(self) -> int:
        return len(self.identities)

    @property
    def templates(self) -> np.ndarray:
        """(M, D) float32 L2-normalised templates, row i belonging to ``identities[i]``."""
        return self._templates[: len(self.identities)]

    def add(self, embedding: np.ndarray, name: str | None = None, timestamp: float = 0.0) -> int:
        """Create an identity from one (D,) L2-normalised embedding; returns its id.

        Raises:
            ValueError: ``embedding`` is not (D,).
        """
        embedding = np.asarray(embedding, np.float32)
        if embedding.shape != (self.dim,):
            raise ValueError(f"embedding must be ({self.dim},), got {embedding.shape}")
        count = len(self.identities)
        if count == self._templates.shape[0]:
            grown = np.zeros((2 * count, self.dim), np.float32)
            grown[:count] = self._templates
            self._templates = grown
        self._templates[count] = embedding
        identity_id = self.identities[-1].identity_id + 1 if self.identities else 1
        self.identities.append(Identity(identity_id, name, float(timestamp), float(timestamp)))
        return identity_id

    def match(self, embeddings: np.ndarray, timestamp: float = 0.0, update: bool = True, create: bool = True) -> MatchResult:
        """Give each of N embeddings an identity.

        Args:
            embeddings: (N, D) float32 L2-normalised embeddings, e.g. the people of one frame.
            timestamp: time of the sighting in seconds (for first/last seen).
            update: move matched identities' templates towards the new embeddings.
            create: make a new identity for each unmatched embedding.

        Returns:
            :class:`MatchResult`.

        Raises:
            ValueError: ``embeddings`` is not (N, D).
        """
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise ValueError(f"embeddings must be (N, {self.dim}), got {embeddings.shape}")
        count = embeddings.shape[0]
        similarity = embeddings @ self.templates.T  # (N, M); the fast blocked matcher replaces this for large M
        columns = assign_unique(similarity, self.threshold)
        identity_ids = np.full(count, -1, np.int64)
        similarities = np.zeros(count, np.float32)
        is_new = np.zeros(count, bool)
        for row, column in enumerate(columns):
            if column >= 0:
                identity = self.identities[column]
                identity_ids[row] = identity.identity_id
                similarities[row] = similarity[row, column]
                identity.last_seen = float(timestamp)
                identity.count += 1
                if update:
                    template = self._templates[column]
                    template *= self.momentum
                    template += (1.0 - self.momentum) * embeddings[row]
                    template /= max(float(np.linalg.norm(template)), 1e-12)
            elif create:
                identity_ids[row] = self.add(embeddings[row], timestamp=timestamp)
                is_new[row] = True
        return MatchResult(identity_ids, similarities, is_new)
