"""Multi-object tracking: Kalman prediction, two-stage motion + appearance association, track lifecycle.

- :class:`Tracker` / :class:`TrackerConfig`: ``Tracker.update(detections, embeddings_or_None, timestamp_s)``.
- :class:`Track` / :class:`TrackState`: one person followed over frames; :class:`PastBox`: a box
  of an earlier frame learned late (past-frame output).
- :class:`CameraMotion`: optional compensation of a moving camera.
- :func:`plan_embeddings`: which detections of a frame need a ReID embedding.

Names are imported on first use (OpenCV and SciPy load only when tracking does).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CameraMotion": "edge_reid.tracking.camera_motion",
    "PastBox": "edge_reid.tracking.track",
    "Track": "edge_reid.tracking.track",
    "TrackState": "edge_reid.tracking.track",
    "Tracker": "edge_reid.tracking.tracker",
    "TrackerConfig": "edge_reid.tracking.config",
    "plan_embeddings": "edge_reid.tracking.embedding_policy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
