"""Camera-motion compensation: the global motion between frames, applied to track predictions.

For a camera on a moving robot, every person's box shifts with the camera; a
constant-velocity filter cannot predict that. As BoT-SORT's GMC
(N. Aharon et al., 2022, ``tracker/gmc.py``, method ``sparseOptFlow``): corners of
the previous frame (OpenCV ``goodFeaturesToTrack``) are followed into the current
frame by pyramidal Lucas-Kanade optical flow (``calcOpticalFlowPyrLK``), and a
similarity transform (rotation, uniform scale, translation) is fitted with RANSAC
(``estimateAffinePartial2D``). The 2x3 warp then moves each track's Kalman state:
the rotation/scale part acts on every (x, y) pair of the state, the translation on
the centre.

Three choices differ from BoT-SORT's, all for cost: the search runs on the frame
shrunk (area averaging) by an integer factor to at most :data:`WORKING_SIDE` pixels on
its long side (BoT-SORT halves every frame, so a 1080p frame is searched at 960x540
and the search's cost grows with the camera's resolution; here only making the grey,
shrunk frame does), and at most :data:`MAX_CORNERS` corners are followed, at least 1/:data:`CORNER_SPACING` of the working image's long side apart
(BoT-SORT: 1000 corners, 1 pixel apart, which crowd on the most textured spots).
A similarity transform has four parameters; a few hundred corners spread over the
frame fit it as well as a thousand clustered ones, and the optical flow's time is
proportional to the corners followed. Each corner is followed with a
:data:`FLOW_WINDOW`-pixel square window (OpenCV's Lucas-Kanade tracking sample,
``samples/python/lk_track.py``; BoT-SORT keeps OpenCV's default 21): the flow's time is
proportional to the window's area, a corner's texture is local, and a smaller window
holds less of the people walking past it; the pyramid keeps OpenCV's
:data:`FLOW_LEVELS` levels above the image, so the largest motion it follows stays
about the same.

A camera's motion changes little from one frame to the next, so each frame's corners start at
where the previous frame's warp sends them (``OPTFLOW_USE_INITIAL_FLOW``, the constant-motion
guess) and the pyramid has only as many levels as that warp's motion needs (:func:`flow_levels`:
one above the image for a still camera): the flow's time is about proportional to the levels
searched. A frame whose motion changed beyond that reach (a sudden start, stop or jump) finds too
few agreeing corners and is followed again as before: from the corners' own positions, with all
:data:`FLOW_LEVELS` levels. (OpenCV's ``buildOpticalFlowPyramid`` would let each frame's pyramid be
built once and reused as the next frame's, but its Python binding cannot pass a pyramid to
``calcOpticalFlowPyrLK``: OpenCV 5.1 refuses the list.)

Corners are found once every :data:`REDETECT_EVERY` frames and followed in between (the
Kanade-Lucas-Tomasi tracker: J. Shi and C. Tomasi, "Good Features to Track", CVPR 1994; OpenCV's
sample re-detects every 5 frames): each frame keeps the corners that agreed on its warp (RANSAC
inliers, the static background) at their new positions as the next frame's corners, so most frames
skip the corner search and fit on background corners only (BoT-SORT searches every frame); a
search also runs when fewer than half of the corners found are left.

One addition for views that jump further than the pyramid reaches (a robot turning in
place while the loop runs at a few frames a second): when too few corners agree on a
warp, the whole view's shift is measured by phase correlation (C. D. Kuglin and
D. C. Hines, 1975; OpenCV ``phaseCorrelate`` with a Hann window) and, if it is larger
than the flow's window, the corners are followed again starting from that shift
(``OPTFLOW_USE_INITIAL_FLOW``); the warp must then pass the same agreement check. A
frame the first search fits costs nothing more. docs/tracking.md ("A moving camera")
gives the measured error against a known camera motion, the reach and the cost.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge_reid.tracking.warp import IDENTITY_WARP  # defined there, without OpenCV, for the Tracker

#: Fewest tracked corners for a warp; below it the frame is taken as not moving.
MIN_CORNERS = 10
#: Least share of the previous frame's corners that must agree on the warp (RANSAC inliers). A
#: camera's motion is shared by the whole static background; when fewer than a quarter of the
#: corners agree on one motion there is no such background (a scene cut, the next image of a
#: folder of unrelated images, a view filled by moving people) and the warp is the identity: the
#: Kalman filter's own prediction. (On vtest and its moving stand-in at least 67% agree; between
#: unrelated frames RANSAC fits noise with under 5%.)
MIN_INLIER_SHARE = 0.25
#: Most corners followed from one frame to the next.
MAX_CORNERS = 300
#: Corners are at least the working image's long side / this apart (6 pixels at 384).
CORNER_SPACING = 64
#: Longest side of the working image, pixels: frames are shrunk by the smallest integer
#: factor (at least 2, BoT-SORT's) that brings them within it (768x576 -> 384x288,
#: 1920x1080 -> 480x270).
WORKING_SIDE = 480
#: Corners are searched afresh at least every this many frames (OpenCV's ``lk_track.py``
#: ``detect_interval``); in between, the previous frame's agreeing corners are followed, until
#: fewer than half of those found remain (corners that left the view or lost the background: the
#: fit would lean on one part of the frame).
REDETECT_EVERY = 5
#: Side of the square window, pixels of the working image, in which each corner is followed
#: (``calcOpticalFlowPyrLK``'s ``winSize``; OpenCV's default and BoT-SORT's: 21).
FLOW_WINDOW = 15
#: Pyramid levels above the working image for the optical flow (``maxLevel``; OpenCV's default
#: and BoT-SORT's): each level doubles the motion a window can follow. The most: fewer are searched
#: while the camera moves little (:func:`flow_levels`).
FLOW_LEVELS = 3


def flow_levels(warp: np.ndarray | None, width: int, height: int, window: int) -> int:
    """Pyramid levels above the working image (1 to :data:`FLOW_LEVELS`) for following corners from
    the guess ``warp`` (2, 3), the previous frame's warp in working pixels (None: none known, so
    :data:`FLOW_LEVELS`), in a (width x height) working image with a ``window``-pixel window.

    The fewest whose reach, about half a window times (2^(levels+1) - 1) working pixels, covers
    twice the largest shift ``warp`` gives a corner of the image plus half a window: a change of
    motion as large as the motion itself (the camera stopping) stays within reach. With the
    15-pixel window: 1 level up to 7 pixels of motion, 2 up to 21, else 3.
    """
    if warp is None:
        return FLOW_LEVELS
    points = np.array([[0.0, 0.0, 1.0], [width, 0.0, 1.0], [0.0, height, 1.0], [width, height, 1.0]])
    shift = float(np.abs(points @ np.asarray(warp, np.float64).T - points[:, :2]).max())
    half = window // 2
    for levels in range(1, FLOW_LEVELS):
        if half * (2 ** (levels + 1) - 1) >= 2 * shift + half:
            return levels
    return FLOW_LEVELS


def working_downscale(width: int, height: int) -> int:
    """The integer factor a (width x height) frame is shrunk by for the search: at least 2, and
    enough to bring its long side to :data:`WORKING_SIDE` pixels or less."""
    return max(2, math.ceil(max(width, height) / WORKING_SIDE))


class CameraMotion:
    """Estimates the 2x3 warp from the previous frame to the current one.

    Args:
        downscale: frames are shrunk by this integer factor before the search; None (default)
            chooses it from the frame size (:func:`working_downscale`).
        max_corners: most corners followed (default :data:`MAX_CORNERS`; BoT-SORT: 1000).
        flow_window: side of the optical flow's window, working-image pixels (default
            :data:`FLOW_WINDOW`; OpenCV's default and BoT-SORT's: 21).
        redetect_every: corners are searched afresh at least every this many frames (default
            :data:`REDETECT_EVERY`; 1: every frame, as BoT-SORT).

    Raises:
        ValueError: ``downscale`` below 1, ``max_corners`` below :data:`MIN_CORNERS`,
            ``flow_window`` below 3, ``redetect_every`` below 1.
    """

    def __init__(
        self,
        downscale: int | None = None,
        max_corners: int = MAX_CORNERS,
        flow_window: int = FLOW_WINDOW,
        redetect_every: int = REDETECT_EVERY,
    ) -> None:
        if downscale is not None and int(downscale) < 1:
            raise ValueError(f"downscale must be an integer >= 1, got {downscale}")
        if int(max_corners) < MIN_CORNERS:
            raise ValueError(f"max_corners must be at least {MIN_CORNERS}, got {max_corners}")
        if int(flow_window) < 3:
            raise ValueError(f"flow_window must be at least 3 pixels, got {flow_window}")
        if int(redetect_every) < 1:
            raise ValueError(f"redetect_every must be at least 1 frame, got {redetect_every}")
        self.downscale = None if downscale is None else int(downscale)
        self.max_corners = int(max_corners)
        self.flow_window = int(flow_window)
        self.redetect_every = int(redetect_every)
        self._previous: np.ndarray | None = None  # the last frame, grey and shrunk
        self._previous_size: tuple[int, ...] | None = None  # its size before shrinking
        self._hann: np.ndarray | None = None  # phase correlation's window, for the working size
        self._corners: np.ndarray | None = None  # (K, 1, 2) float32 corners of the last frame to follow next
        self._corners_age = 0  # frames since they were searched
        self._corners_found = 0  # how many that search found
        self._last: np.ndarray | None = None  # (2, 3) the last frame's warp, working pixels: the next guess

    def reset(self) -> None:
        """Forget the previous frame (the next warp is the identity)."""
        self._previous = None
        self._previous_size = None
        self._corners = None
        self._last = None

    @staticmethod
    def check_image(image: object) -> None:
        """Check that ``image`` is a frame :meth:`estimate` can search.

        Raises:
            ValueError: not a non-empty (H, W, 3) or (H, W) uint8 array.
        """
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0 or not (
            image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
        ):
            shape = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"camera-motion compensation needs a non-empty (H, W, 3) uint8 BGR frame, got {shape}")

    def estimate(self, image: np.ndarray, needed: bool = True) -> np.ndarray:
        """The warp (2, 3) float64 that maps pixel positions of the previous frame to this one
        (:data:`IDENTITY_WARP`, read-only, when there is none to find).

        The identity for the first frame, after a change of frame size, when too few corners
        can be followed (a blank view), and when fewer than :data:`MIN_INLIER_SHARE` of them agree
        on one motion (a wholly changed view), also when followed again from the view's shift
        measured by phase correlation (a jump beyond the pyramid's reach is found so).

        Args:
            image: (H, W, 3) uint8 BGR or (H, W) uint8 gray frame (checked: :meth:`check_image`).
            needed: False when nothing will be moved by this warp (no live track): the frame is
                only kept for the next call (whose search finds its corners), and the identity is
                returned without a search: a camera with nobody in view costs only making the
                grey, shrunk frame.

        Raises:
            ValueError: ``image`` is not a non-empty uint8 BGR or grey frame.
        """
        self.check_image(image)
        size, previous_size = image.shape[:2], self._previous_size
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        scale = self.downscale or working_downscale(gray.shape[1], gray.shape[0])
        if scale > 1:
            gray = cv2.resize(gray, (max(1, gray.shape[1] // scale), max(1, gray.shape[0] // scale)), interpolation=cv2.INTER_AREA)
        elif gray is image:  # kept for the next call: a camera that reuses one buffer would overwrite it
            gray = image.copy()
        previous, self._previous, self._previous_size = self._previous, gray, size
        corners, self._corners = self._corners, None  # kept again below only when this frame's warp is found
        last, self._last = self._last, None  # likewise this frame's warp, the next frame's guess
        if not needed or previous is None or previous_size != size:
            return IDENTITY_WARP
        if corners is None or self._corners_age >= self.redetect_every or 2 * len(corners) < self._corners_found:
            spacing = max(1.0, max(previous.shape) / CORNER_SPACING)
            corners = cv2.goodFeaturesToTrack(previous, maxCorners=self.max_corners, qualityLevel=0.01, minDistance=spacing, blockSize=3)
            if corners is None or len(corners) < MIN_CORNERS:
                return IDENTITY_WARP
            self._corners_age, self._corners_found = 0, len(corners)
        least = max(MIN_CORNERS, MIN_INLIER_SHARE * len(corners))
        levels = flow_levels(last, previous.shape[1], previous.shape[0], self.flow_window)
        guess = None if last is None else cv2.transform(corners, last)  # the motion kept
        fitted, agreeing = _follow(previous, gray, corners, self.flow_window, guess, levels)
        if len(agreeing) < least and guess is not None:  # the motion changed: followed without the guess
            fitted, agreeing = _follow(previous, gray, corners, self.flow_window)
        if len(agreeing) < least:  # a jump beyond the pyramid's reach, or no shared motion at all
            shift = self._view_shift(previous, gray)
            if np.abs(shift).max() > self.flow_window:
                fitted, agreeing = _follow(previous, gray, corners, self.flow_window, corners + shift)
        if fitted is None or len(agreeing) < least:
            return IDENTITY_WARP
        self._corners, self._corners_age, self._last = agreeing, self._corners_age + 1, fitted
        fitted = fitted.astype(np.float64)
        fitted[:, 2] *= scale
        return fitted

    def _view_shift(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """The whole view's shift from ``previous`` to ``current`` (grey working images), (2,) float32
        working pixels, by phase correlation (Hann-windowed)."""
        if self._hann is None or self._hann.shape != previous.shape:
            self._hann = cv2.createHanningWindow((previous.shape[1], previous.shape[0]), cv2.CV_32F)
        (dx, dy), _ = cv2.phaseCorrelate(previous.astype(np.float32), current.astype(np.float32), self._hann)
        return np.array([dx, dy], np.float32)

    @staticmethod
    def apply(warp: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Move Kalman states by a 2x3 warp; returns new arrays.

        Args:
            warp: (2, 3) warp from :meth:`estimate`.
            mean: (8,) state or (N, 8) states: centre x, y, width, height (pixels) and their
                velocities (pixels per second).
            covariance: (8, 8) or (N, 8, 8) covariances of those states.

        Returns:
            The moved (mean, covariance), of the input shapes: the rotation/scale part acts on
            every (x, y) pair of the state, the translation on the centre only.
        """
        warp = np.asarray(warp, np.float64)
        big = np.kron(np.eye(4), warp[:, :2])
        new_mean = np.asarray(mean, np.float64) @ big.T
        new_mean[..., :2] += warp[:, 2]
        return new_mean, big @ np.asarray(covariance, np.float64) @ big.T


#: No corners, (0, 1, 2) float32, read-only: what :func:`_follow` keeps when it finds no warp.
_NO_CORNERS = np.zeros((0, 1, 2), np.float32)
_NO_CORNERS.setflags(write=False)


def _follow(
    previous: np.ndarray, current: np.ndarray, corners: np.ndarray, window: int, start: np.ndarray | None = None,
    levels: int = FLOW_LEVELS,
):
    """Follow ``corners`` (K, 1, 2) float32 of ``previous`` into ``current`` by pyramidal Lucas-Kanade
    in a ``window``-pixel square with ``levels`` pyramid levels above the image (from ``start``, their
    guessed positions, when given) and fit a similarity with RANSAC.

    Returns:
        (the (2, 3) warp in working pixels or None, the corners that agree on it at their
        positions in ``current``, (A, 1, 2) float32).
    """
    flags = 0 if start is None else cv2.OPTFLOW_USE_INITIAL_FLOW
    guess = None if start is None else np.ascontiguousarray(start, np.float32)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(
        previous, current, corners, guess, winSize=(window, window), maxLevel=levels, flags=flags
    )
    good = status.reshape(-1).astype(bool)
    if good.sum() < MIN_CORNERS:
        return None, _NO_CORNERS
    fitted, inliers = cv2.estimateAffinePartial2D(corners[good], moved[good], method=cv2.RANSAC)
    if fitted is None or inliers is None:
        return None, _NO_CORNERS
    return fitted, np.ascontiguousarray(moved[good][inliers.reshape(-1).astype(bool)])
