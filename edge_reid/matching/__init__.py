"""Matching embeddings to identities: the fused top-k search, the embedding store, the gallery.

The names below are imported on first use (PEP 562 module ``__getattr__``): the top-k search
needs Numba and the one-to-one assignment SciPy, which reading, renaming or writing a gallery
(``edge-reid gallery list``) never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_reid.matching.assignment import assign_unique
    from edge_reid.matching.gallery import Gallery, Identity, MatchResult
    from edge_reid.matching.store import EmbeddingStore
    from edge_reid.matching.topk import TopK, topk_cosine

#: public name -> submodule that defines it.
_EXPORTS = {
    "assign_unique": "edge_reid.matching.assignment",
    "Gallery": "edge_reid.matching.gallery",
    "Identity": "edge_reid.matching.gallery",
    "MatchResult": "edge_reid.matching.gallery",
    "EmbeddingStore": "edge_reid.matching.store",
    "TopK": "edge_reid.matching.topk",
    "topk_cosine": "edge_reid.matching.topk",
}

__all__ = ["EmbeddingStore", "Gallery", "Identity", "MatchResult", "TopK", "assign_unique", "topk_cosine"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
