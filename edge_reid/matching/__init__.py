"""Matching embeddings: the fused top-k cosine search and the embedding store."""

from edge_reid.matching.store import EmbeddingStore
from edge_reid.matching.topk import TopK, topk_cosine

__all__ = ["EmbeddingStore", "TopK", "topk_cosine"]
