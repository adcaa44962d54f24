"""edge-reid: person re-identification on the edge.

Public API (shapes and units in each docstring):

- :class:`Embedder`: person crops or frame + boxes -> (N, D) float32 L2-normalised embeddings.
- :class:`PersonDetector`: BGR frame -> :class:`Detections` (boxes in pixels, scores).
- :class:`Gallery`: identities matched by cosine similarity, one-to-one per frame.
- :class:`Pipeline`: frames -> :class:`FrameResult` per frame (detect, embed, match).
- :class:`EmbeddingLoop`: batches of crops -> embeddings matched by your function, the next
  batch embedded while this one is matched.
- :func:`load_spec` / :class:`ModelSpec`: what a ReID model expects.
"""

import os

# OpenMP threads (Numba's "omp" threading layer for the matcher and preprocessing)
# sleep as soon as a parallel region ends instead of spinning: on a 2-6 core
# device a spinning thread steals the core that ONNX Runtime, TensorRT's host
# thread or the detector needs next. Measured on 2 cores (docs/benchmarks.md):
# bench_matcher 27.4 -> 20.9 ms at N=100k, D=256, Q=32. Set before any OpenMP
# runtime starts; a user's own OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:  # a declared dependency everywhere but on a Jetson, where JetPack's OpenCV is meant to be used
    import cv2  # noqa: F401,E402
except ImportError as _exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "edge-reid needs OpenCV: on a Jetson run install_jetson.sh (JetPack's OpenCV, with GStreamer) or "
        "pip install 'edge-reid[opencv]'; elsewhere pip install opencv-python-headless"
    ) from _exc

from edge_reid.detections import Detections  # noqa: E402
from edge_reid.detector import PersonDetector  # noqa: E402
from edge_reid.embedder import Embedder  # noqa: E402
from edge_reid.embedding_loop import EmbeddingLoop, LoopResult  # noqa: E402
from edge_reid.errors import EdgeReidError  # noqa: E402
from edge_reid.matching import Gallery, MatchResult  # noqa: E402
from edge_reid.pipeline import FrameResult, Person, Pipeline  # noqa: E402
from edge_reid.sources import Frame, open_source  # noqa: E402
from edge_reid.spec import ModelSpec, load_spec  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Detections",
    "EdgeReidError",
    "Embedder",
    "EmbeddingLoop",
    "Frame",
    "FrameResult",
    "Gallery",
    "LoopResult",
    "MatchResult",
    "ModelSpec",
    "Person",
    "PersonDetector",
    "Pipeline",
    "load_spec",
    "open_source",
]
