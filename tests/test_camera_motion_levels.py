"""Camera-motion estimate: corners start where the last warp sends them, and the optical flow's
pyramid has only the levels that warp's motion needs; a changed motion is followed again in full."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import load_benchmark_script

import edge_reid.tracking.camera_motion as camera_motion
from edge_reid.tracking import CameraMotion
from edge_reid.tracking.camera_motion import FLOW_LEVELS, FLOW_WINDOW, IDENTITY_WARP, flow_levels


@pytest.fixture(scope="module")
def stand_in_frames(vtest_path, shared_dir, tmp_path_factory):
    """The first 30 frames of the moving-camera stand-in and its known motion (``true_warp``)."""
    moving = load_benchmark_script("moving_camera_sequence")
    out = tmp_path_factory.mktemp("moving")
    video, _, _ = moving.moving_camera_sequence(vtest_path, shared_dir / "data" / "vtest-mot", out, max_frames=30)
    return load_benchmark_script("_common").read_frames(video), moving.true_warp


@pytest.fixture
def flow_calls(monkeypatch):
    """Each ``calcOpticalFlowPyrLK`` call's (maxLevel, whether it started from a guess)."""
    calls = []
    follow = cv2.calcOpticalFlowPyrLK

    def recording(*args, **kwargs):
        calls.append((kwargs["maxLevel"], bool(kwargs.get("flags", 0) & cv2.OPTFLOW_USE_INITIAL_FLOW)))
        return follow(*args, **kwargs)

    monkeypatch.setattr(camera_motion.cv2, "calcOpticalFlowPyrLK", recording)
    return calls


def shifted(dx: float, dy: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return np.array([[scale, 0.0, dx], [0.0, scale, dy]])


@pytest.mark.parametrize(
    ("warp", "levels"),
    [(None, FLOW_LEVELS), (IDENTITY_WARP, 1), (shifted(7.0), 1), (shifted(-8.0, 3.0), 2), (shifted(0.0, 21.0), 2),
     (shifted(22.0), 3), (shifted(0.0, 0.0, 1.05), 2)],  # a 5% zoom moves the far corner of 384x288 by 24 px
)
def test_the_levels_cover_twice_the_last_motion(warp, levels):
    """15-px window (reach about 7 x (2^(levels+1) - 1) px): 1 level up to 7 px of motion, 2 up to 21."""
    assert FLOW_WINDOW == 15 and FLOW_LEVELS == 3
    assert flow_levels(warp, 384, 288, FLOW_WINDOW) == levels


def test_a_still_camera_is_followed_with_one_level_from_the_last_warp(vtest_frames, flow_calls):
    """vtest's camera does not move: after the first warp (no guess, all levels) each frame is
    followed once, from the last warp, with one pyramid level (before: every frame with all three)."""
    motion = CameraMotion()
    warps = [motion.estimate(frame) for frame in vtest_frames]
    assert flow_calls[0] == (FLOW_LEVELS, False)
    assert flow_calls[1:] == [(1, True)] * (len(vtest_frames) - 2), flow_calls
    for warp in warps[1:]:
        assert np.abs(warp - IDENTITY_WARP).max() < 0.5, warp


def test_a_steady_pan_is_followed_once_a_frame_within_its_known_motion(stand_in_frames, flow_calls):
    """On the moving stand-in every frame is fitted by the first, guessed, reduced search (no second
    search) and its warp stays within 2 output pixels of the known motion."""
    frames, true_warp = stand_in_frames
    height, width = 576, 768  # vtest, the stand-in's source
    grid = np.array([[x, y, 1.0] for x in range(40, 640, 80) for y in range(40, 480, 80)])
    motion = CameraMotion()
    for number, frame in enumerate(frames):
        warp = motion.estimate(frame)
        if number:
            error = np.abs(grid @ warp.T - grid @ true_warp(number - 1, number, width, height).T).max()
            assert error < 2.0, (number, error)
    assert len(flow_calls) == len(frames) - 1 and all(guessed for _, guessed in flow_calls[1:])
    assert all(levels < FLOW_LEVELS for levels, _ in flow_calls[1:]), flow_calls


@pytest.mark.parametrize(("dx", "dy", "searches"), [(-24, 0, 1), (60, 40, 2), (200, 0, 2)])
def test_a_camera_that_starts_suddenly_is_still_followed(vtest_frames, flow_calls, dx, dy, searches):
    """After still frames (one level searched) the view jumps: 12 working px (the frames are halved)
    are within one level's reach; 30 and 20 are not, and the corners are followed again without the
    guess, with all levels (100, at the edge of their reach, may need a third search from phase
    correlation's shift). Each jump is found."""
    width, height = 448, 400
    for frame in vtest_frames[::4]:
        x0, y0 = 20 + max(0, -dx), 20 + max(0, -dy)
        view = np.ascontiguousarray(frame[y0:y0 + height, x0:x0 + width])
        motion = CameraMotion()
        motion.estimate(view)
        motion.estimate(view.copy())
        flow_calls.clear()
        warp = motion.estimate(np.ascontiguousarray(frame[y0 + dy:y0 + dy + height, x0 + dx:x0 + dx + width]))
        assert warp[0, 2] == pytest.approx(-dx, abs=1.5) and warp[1, 2] == pytest.approx(-dy, abs=1.5), warp
        assert flow_calls[:searches] == [(1, True), (FLOW_LEVELS, False)][:searches], flow_calls
        assert len(flow_calls) == searches or (dx == 200 and flow_calls[2:] == [(FLOW_LEVELS, True)]), flow_calls


def test_a_camera_that_stops_after_a_fast_pan_is_still_followed(vtest_frames):
    """A pan of 40 px a frame (the guess) that stops dead: the stop is measured as no motion."""
    frame = vtest_frames[0]
    motion = CameraMotion()
    for x in (40, 80, 120):
        warp = motion.estimate(np.ascontiguousarray(frame[60:460, x:x + 448]))
    assert warp[0, 2] == pytest.approx(-40.0, abs=1.5)
    warp = motion.estimate(np.ascontiguousarray(frame[60:460, 120:568]))
    assert np.abs(warp[:, 2]).max() < 1.0 and np.abs(warp[:, :2] - np.eye(2)).max() < 0.01, warp


def test_no_guess_is_kept_across_a_reset_or_a_frame_without_search(vtest_frames, flow_calls):
    """The guess is the warp between the last two frames: after ``reset`` or a frame estimated with
    ``needed=False`` (no search, no warp) the next search has no guess and all levels."""
    motion = CameraMotion()
    for frame in vtest_frames[:3]:
        motion.estimate(frame)
    motion.estimate(vtest_frames[3], needed=False)
    flow_calls.clear()
    motion.estimate(vtest_frames[4])
    assert flow_calls == [(FLOW_LEVELS, False)]
    motion.estimate(vtest_frames[5])
    motion.reset()
    motion.estimate(vtest_frames[6])
    flow_calls.clear()
    motion.estimate(vtest_frames[7])
    assert flow_calls == [(FLOW_LEVELS, False)]
