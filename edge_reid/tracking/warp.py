"""The warp of no camera motion, apart from :mod:`edge_reid.tracking.camera_motion` (which needs
OpenCV), so that a :class:`~edge_reid.tracking.tracker.Tracker` of a fixed camera loads no OpenCV."""

from __future__ import annotations

import numpy as np

#: The warp of no motion, (2, 3) float64, read-only: what :meth:`CameraMotion.estimate
#: <edge_reid.tracking.camera_motion.CameraMotion.estimate>` returns whenever it finds no motion
#: (tell it by identity, ``warp is IDENTITY_WARP``, to skip moving tracks).
IDENTITY_WARP = np.eye(2, 3)
IDENTITY_WARP.setflags(write=False)
