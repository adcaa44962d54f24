"""Matching embeddings to identities: the fused top-k search, the embedding store, the gallery."""

from edge_reid.matching.assignment import assign_unique
from edge_reid.matching.gallery import Gallery, Identity, MatchResult
from edge_reid.matching.store import EmbeddingStore
from edge_reid.matching.topk import TopK, topk_cosine

__all__ = ["EmbeddingStore", "Gallery", "Identity", "MatchResult", "TopK", "assign_unique", "topk_cosine"]
