"""Matching embeddings to identities: the gallery and one-to-one assignment."""

from edge_reid.matching.assignment import assign_unique
from edge_reid.matching.gallery import Gallery, Identity, MatchResult

__all__ = ["Gallery", "Identity", "MatchResult", "assign_unique"]
