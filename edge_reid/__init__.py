"""edge-reid: person re-identification on the edge.

Public API (shapes and units in each docstring):

- :class:`Embedder`: person crops or frame + boxes -> (N, D) float32 L2-normalised embeddings.
- :class:`PersonDetector`: BGR frame -> :class:`Detections` (boxes in pixels, scores).
- :class:`Gallery`: identities matched by cosine similarity, one-to-one per frame.
- :class:`Pipeline`: frames -> :class:`FrameResult` per frame (detect, track, embed what needs it, identify).
- :class:`Tracker` / :class:`TrackerConfig`: motion + appearance tracking of your own detections.
- :class:`Runner` / :class:`GallerySaving`: a pipeline over a whole source into sinks, with Ctrl-C,
  gallery saving and a :class:`RunSummary` (what ``edge-reid run`` does).
- :class:`EmbeddingLoop`: batches of crops -> embeddings matched by your function, the next
  batch embedded while this one is matched.
- :func:`load_spec` / :class:`ModelSpec`: what a ReID model expects.

Importing the package imports none of its heavy libraries (OpenCV, Numba, SciPy, ONNX
Runtime, OpenVINO): each name above is imported on first use (PEP 562 module
``__getattr__``). Nor does it change the process environment. The ``edge-reid`` command
sets ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads sleep when a parallel region ends instead
of spinning on the cores the models need); a program using the library on a machine with
few cores should do the same before its first OpenMP use, e.g.
``os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")`` before importing edge_reid.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> module that defines it.
_EXPORTS = {
    "Detections": "edge_reid.detections",
    "EdgeReidError": "edge_reid.errors",
    "EdgeReidWarning": "edge_reid.errors",
    "Embedder": "edge_reid.embedder",
    "EmbeddingLoop": "edge_reid.embedding_loop",
    "Frame": "edge_reid.sources",
    "FrameResult": "edge_reid.results",
    "Gallery": "edge_reid.matching",
    "GallerySaving": "edge_reid.runner",
    "Identities": "edge_reid.identities",
    "LoopResult": "edge_reid.embedding_loop",
    "MatchResult": "edge_reid.matching",
    "ModelSpec": "edge_reid.spec",
    "Person": "edge_reid.results",
    "PersonDetector": "edge_reid.detector",
    "Pipeline": "edge_reid.pipeline",
    "RunSummary": "edge_reid.summary",
    "Runner": "edge_reid.runner",
    "Tracker": "edge_reid.tracking.tracker",
    "TrackerConfig": "edge_reid.tracking.config",
    "load_spec": "edge_reid.spec",
    "open_source": "edge_reid.sources",
}

__all__ = sorted(_EXPORTS, key=lambda name: (name[0].islower(), name))


#: OpenCV is a declared dependency everywhere but on a Jetson, where JetPack's OpenCV is meant to be used.
OPENCV_MISSING = (
    "edge-reid needs OpenCV: on a Jetson run install_jetson.sh (JetPack's OpenCV, with GStreamer) or "
    "pip install 'edge-reid[opencv]'; elsewhere pip install opencv-python-headless"
)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edge_reid' has no attribute {name!r}")
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        if exc.name == "cv2":
            raise ImportError(OPENCV_MISSING) from exc
        raise
    value = getattr(imported, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
