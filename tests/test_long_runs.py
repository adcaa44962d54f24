"""A camera left running for weeks: time far from 0 and a crowd that keeps changing.

Guards for an always-on ``edge-reid run --camera``: tracking must not depend on the clock's origin
(frame times a month into the process, or seconds since 1970, where float32 would step by 0.0625 s
and 128 s), and the per-stream state (tracks, recent frames, frames awaiting past boxes, track
identities) must stay bounded while new people keep coming and going.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_reid.detections import Detections
from edge_reid.pipeline import Pipeline
from edge_reid.tracking import Tracker, TrackerConfig

MONTH_S = 3e6  # a month of monotonic uptime
EPOCH_S = 1.7e9  # seconds since 1970


def _crowd(frame: int, lanes: int = 4, crossing: int = 90) -> np.ndarray:
    """(lanes, 4) boxes: one person per lane walking across, a new person every ``crossing`` frames."""
    phase = (frame + 15 * np.arange(lanes)) % crossing
    x = 10.0 + 6.0 * phase
    y = 20.0 + 60.0 * np.arange(lanes)
    return np.stack([x, y, x + 40.0, y + 100.0], axis=1)


def _track(origin_s: float, frames: int) -> list[tuple[list[int], np.ndarray, list[tuple[int, int, float]]]]:
    """Per frame: reported track ids, boxes, and the past boxes handed out (update, track id, time since origin)."""
    rng = np.random.default_rng(1)
    tracker = Tracker(TrackerConfig())
    out, t = [], 0.0
    for frame in range(frames):
        t += 1 / 30 + rng.uniform(-0.004, 0.004) + (0.6 if frame % 200 == 199 else 0.0)  # jitter and stalls
        boxes = _crowd(frame)
        keep = rng.random(len(boxes)) > 0.15  # missed detections: tracks lost and re-found
        tracked = tracker.update(Detections.from_boxes(boxes[keep], np.full(int(keep.sum()), 0.9)), None, origin_s + t)
        past = sorted((p.update, track.track_id, p.timestamp_s - origin_s) for track in tracker.tracks for p in track.past)
        out.append((tracked.track_ids.tolist(), tracked.boxes.copy(), past))
    return out


@pytest.mark.parametrize("origin_s", [MONTH_S, EPOCH_S])
def test_tracking_a_month_or_decades_from_the_clocks_origin_is_tracking_from_0(origin_s):
    frames = 600
    reference, far = _track(0.0, frames), _track(origin_s, frames)
    assert sum(len(past) for _, _, past in reference) > 0  # lost tracks were re-found, gaps interpolated
    for (ids, boxes, past), (far_ids, far_boxes, far_past) in zip(reference, far):
        assert far_ids == ids
        np.testing.assert_allclose(far_boxes, boxes, atol=1e-3)
        assert [p[:2] for p in far_past] == [p[:2] for p in past]
        np.testing.assert_allclose([p[2] for p in far_past], [p[2] for p in past], atol=1e-5)  # float64 times


def test_a_crowd_that_keeps_changing_leaves_no_state_behind(embedder, vtest_frames):
    """New people every few frames for a long time: what the pipeline keeps per stream stays the size of
    the people in view, not of the frames or tracks seen so far."""
    pipeline = Pipeline(embedder, use_detector=False, tracker=Tracker(TrackerConfig()))
    image = vtest_frames[0]
    sizes = []
    for frame in range(540):
        boxes = _crowd(frame, crossing=45)
        pipeline.process(image, EPOCH_S + frame / 30, detections=Detections.from_boxes(boxes, np.full(len(boxes), 0.9)))
        if frame in (179, 539):
            sizes.append((len(pipeline.tracker.tracks), len(pipeline.tracker._recent), len(pipeline._pending),
                          len(pipeline.identities._identity_of)))
    assert pipeline.tracker.confirmed_total >= 40  # many people came and went
    early, late = sizes
    assert all(size <= 40 for size in late), sizes  # a few lanes' people and max_lost_s of frames, not 540
    assert late[0] <= early[0] + 2 and late[3] <= early[3] + 2, sizes
