"""Camera-motion compensation: the global motion between frames, applied to track predictions.

For a camera on a moving robot, every person's box shifts with the camera; a
constant-velocity filter cannot predict that. As BoT-SORT's GMC
(N. Aharon et al., 2022, ``tracker/gmc.py``, method ``sparseOptFlow``): corners of
the previous frame (OpenCV ``goodFeaturesToTrack``) are followed into the current
frame by pyramidal Lucas-Kanade optical flow (``calcOpticalFlowPyrLK``), and a
similarity transform (rotation, uniform scale, translation) is fitted with RANSAC
(``estimateAffinePartial2D``), on frames downscaled by 2. The 2x3 warp then
moves each track's Kalman state: the rotation/scale part acts on every (x, y)
pair of the state, the translation on the centre.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Fewest tracked corners for a warp; below it the frame is taken as not moving.
MIN_CORNERS = 10


class CameraMotion:
    """Estimates the 2x3 warp from the previous frame to the current one.

    Args:
        downscale: frames are shrunk by this integer factor before the search (BoT-SORT: 2).
        max_corners: most corners followed (BoT-SORT: 1000).
    """

    def __init__(self, downscale: int = 2, max_corners: int = 1000) -> None:
        self.downscale = max(1, int(downscale))
        self.max_corners = int(max_corners)
        self._previous: np.ndarray | None = None
        self._corners: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame (the next warp is the identity)."""
        self._previous = None
        self._corners = None

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """The warp (2, 3) float64 that maps pixel positions of the previous frame to this one.

        The identity for the first frame, after a change of frame size, and when too few
        corners can be followed (a blank or wholly changed view).

        Args:
            image: (H, W, 3) uint8 BGR or (H, W) uint8 gray frame.
        """
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.downscale > 1:
            gray = cv2.resize(gray, (gray.shape[1] // self.downscale, gray.shape[0] // self.downscale))
        warp = np.eye(2, 3)
        corners = cv2.goodFeaturesToTrack(gray, maxCorners=self.max_corners, qualityLevel=0.01, minDistance=1, blockSize=3)
        previous, previous_corners = self._previous, self._corners
        self._previous, self._corners = gray, corners
        if previous is None or previous.shape != gray.shape or previous_corners is None or len(previous_corners) < MIN_CORNERS:
            return warp
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, gray, previous_corners, None)
        good = status.reshape(-1).astype(bool)
        if good.sum() < MIN_CORNERS:
            return warp
        fitted, _ = cv2.estimateAffinePartial2D(previous_corners[good], moved[good], method=cv2.RANSAC)
        if fitted is None:
            return warp
        fitted = fitted.astype(np.float64)
        fitted[:, 2] *= self.downscale
        return fitted

    @staticmethod
    def apply(warp: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Move one Kalman state (8,) and covariance (8, 8) by a 2x3 warp; returns new arrays."""
        rotation = np.asarray(warp, np.float64)[:, :2]
        big = np.kron(np.eye(4), rotation)
        new_mean = big @ mean
        new_mean[:2] += warp[:, 2]
        return new_mean, big @ covariance @ big.T
