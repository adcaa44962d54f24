"""Multi-object tracking: Kalman prediction, two-stage motion + appearance association, track lifecycle.

- :class:`Tracker` / :class:`TrackerConfig`: ``Tracker.update(detections, embeddings_or_None, timestamp_s)``.
- :class:`Track` / :class:`TrackState`: one person followed over frames.
- :class:`CameraMotion`: optional compensation of a moving camera.
- :func:`plan_embeddings`: which detections of a frame need a ReID embedding.
"""

from edge_reid.tracking.camera_motion import CameraMotion
from edge_reid.tracking.embedding_policy import plan_embeddings
from edge_reid.tracking.track import Track, TrackState
from edge_reid.tracking.tracker import Tracker, TrackerConfig

__all__ = ["CameraMotion", "Track", "TrackState", "Tracker", "TrackerConfig", "plan_embeddings"]
