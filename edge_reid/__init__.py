"""edge-reid: person re-identification on the edge.

Public API (shapes and units in each docstring):

- :class:`Embedder`: person crops or frame + boxes -> (N, D) float32 L2-normalised embeddings.
- :class:`PersonDetector`: BGR frame -> :class:`Detections` (boxes in pixels, scores).
- :class:`Gallery`: identities matched by cosine similarity, one-to-one per frame.
- :class:`Pipeline`: frames -> :class:`FrameResult` per frame (detect, embed, match).
- :func:`load_spec` / :class:`ModelSpec`: what a ReID model expects.
"""

from edge_reid.detections import Detections
from edge_reid.detector import PersonDetector
from edge_reid.embedder import Embedder
from edge_reid.errors import EdgeReidError
from edge_reid.matching import Gallery, MatchResult
from edge_reid.pipeline import FrameResult, Person, Pipeline
from edge_reid.sources import Frame, open_source
from edge_reid.spec import ModelSpec, load_spec

__version__ = "0.1.0"

__all__ = [
    "Detections",
    "EdgeReidError",
    "Embedder",
    "Frame",
    "FrameResult",
    "Gallery",
    "MatchResult",
    "ModelSpec",
    "Person",
    "PersonDetector",
    "Pipeline",
    "load_spec",
    "open_source",
]
