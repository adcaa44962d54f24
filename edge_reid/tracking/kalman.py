"""Constant-velocity Kalman filter on a person's box, with time steps in seconds.

State (8,): box centre x, y, width w, height h (pixels) and their velocities
(pixels per second). The box is measured directly (x, y, w, h). This is the
BoT-SORT state and noise model (N. Aharon et al., "BoT-SORT: Robust Associations
Multi-Pedestrian Tracking", 2022, ``tracker/kalman_filter.py``; ByteTrack and
DeepSORT use the same filter on x, y, aspect, h): every standard deviation is a
fraction of the box's own width (for x, w) or height (for y, h), so the filter
behaves the same for near and far people.

The published filter steps once per frame and its noise was set for 30 fps
video. Here a step lasts ``dt`` seconds, taken from the frame timestamps, so
live sources with uneven frame intervals work: the velocity coupling is ``dt``
and the process noise variances grow linearly with ``dt`` (a random walk),
scaled so that one step of :data:`REFERENCE_STEP_S` (1/30 s) adds exactly the
published per-frame noise.
"""

from __future__ import annotations

import numpy as np

#: Frame interval (seconds) the published per-frame noise weights were set for.
REFERENCE_STEP_S = 1.0 / 30.0
#: Position (and measurement) standard deviation per reference step, fraction of w or h (BoT-SORT: 1/20).
STD_WEIGHT_POSITION = 1.0 / 20.0
#: 0.95 quantile of the chi-square distribution with 4 degrees of freedom: the gate on
#: :meth:`BoxKalmanFilter.gating_distance` (DeepSORT's ``chi2inv95[4]``).
GATE_CHI2_95 = 9.4877
#: Velocity standard deviation per reference step, fraction of w or h per step (BoT-SORT: 1/160).
STD_WEIGHT_VELOCITY = 1.0 / 160.0


def _scales(boxes_xywh: np.ndarray) -> np.ndarray:
    """(N, 4) per-coordinate size scale: w, h, w, h."""
    return np.stack((boxes_xywh[:, 2], boxes_xywh[:, 3], boxes_xywh[:, 2], boxes_xywh[:, 3]), axis=1)


class BoxKalmanFilter:
    """Kalman filter for N boxes at once (vectorised over tracks).

    All methods take and return arrays: ``mean`` (N, 8) float64 and ``covariance``
    (N, 8, 8) float64, boxes as (N, 4) centre x, centre y, width, height in pixels.
    """

    def initiate(self, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks from their first box: velocity 0 with a wide uncertainty.

        Args:
            boxes_xywh: (N, 4) centre x, centre y, w, h in pixels.

        Returns:
            ``(mean (N, 8), covariance (N, 8, 8))``.
        """
        boxes = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
        mean = np.concatenate((boxes, np.zeros_like(boxes)), axis=1)
        scale = _scales(boxes)
        std = np.concatenate(
            (2.0 * STD_WEIGHT_POSITION * scale, 10.0 * STD_WEIGHT_VELOCITY * scale / REFERENCE_STEP_S), axis=1
        )
        covariance = np.zeros((boxes.shape[0], 8, 8))
        covariance[:, np.arange(8), np.arange(8)] = std**2
        return mean, covariance

    def predict(self, mean: np.ndarray, covariance: np.ndarray, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Move the states ``dt_s`` seconds forward (constant velocity).

        Args:
            mean: (N, 8) states.
            covariance: (N, 8, 8) covariances.
            dt_s: seconds since the last step, >= 0 (0 leaves the states unchanged).

        Returns:
            ``(mean, covariance)`` predicted (new arrays).

        Raises:
            ValueError: ``dt_s`` is negative or not finite.
        """
        if not np.isfinite(dt_s) or dt_s < 0:
            raise ValueError(f"dt_s must be a finite number of seconds >= 0, got {dt_s}")
        if dt_s == 0 or mean.shape[0] == 0:
            return mean.copy(), covariance.copy()
        motion = np.eye(8)
        motion[np.arange(4), np.arange(4) + 4] = dt_s
        scale = _scales(mean[:, :4])
        ratio = dt_s / REFERENCE_STEP_S
        std = np.concatenate((STD_WEIGHT_POSITION * scale, STD_WEIGHT_VELOCITY * scale / REFERENCE_STEP_S), axis=1)
        noise = np.zeros_like(covariance)
        noise[:, np.arange(8), np.arange(8)] = std**2 * ratio
        predicted_mean = mean @ motion.T
        predicted_cov = motion @ covariance @ motion.T + noise
        return predicted_mean, predicted_cov

    def update(
        self, mean: np.ndarray, covariance: np.ndarray, boxes_xywh: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Correct the states with measured boxes.

        Args:
            mean: (N, 8) predicted states.
            covariance: (N, 8, 8) predicted covariances.
            boxes_xywh: (N, 4) measured centre x, centre y, w, h in pixels.

        Returns:
            ``(mean, covariance)`` corrected (new arrays).
        """
        boxes = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
        measurement_std = STD_WEIGHT_POSITION * _scales(mean[:, :4])
        projected_cov = covariance[:, :4, :4].copy()
        projected_cov[:, np.arange(4), np.arange(4)] += measurement_std**2
        cross = covariance[:, :, :4]  # (N, 8, 4) = P H^T
        gain = np.linalg.solve(projected_cov, np.transpose(cross, (0, 2, 1))).transpose(0, 2, 1)  # P H^T S^-1
        innovation = boxes - mean[:, :4]
        new_mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        new_cov = covariance - gain @ np.transpose(cross, (0, 2, 1))
        return new_mean, new_cov

    def gating_distance(self, mean: np.ndarray, covariance: np.ndarray, boxes_xywh: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of boxes to each state's predicted box (DeepSORT's gate).

        Args:
            mean: (N, 8) states.
            covariance: (N, 8, 8) covariances.
            boxes_xywh: (M, 4) centre x, centre y, w, h in pixels.

        Returns:
            (N, M) float64; compare with :data:`GATE_CHI2_95`.
        """
        boxes = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
        measurement_std = STD_WEIGHT_POSITION * _scales(mean[:, :4])
        projected = covariance[:, :4, :4].copy()
        projected[:, np.arange(4), np.arange(4)] += measurement_std**2
        difference = boxes[None, :, :] - mean[:, None, :4]  # (N, M, 4)
        solved = np.linalg.solve(projected, difference.transpose(0, 2, 1))  # (N, 4, M): one system per track, M right-hand sides
        return np.einsum("nmi,nim->nm", difference, solved)
