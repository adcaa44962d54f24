"""Tracking at a few frames per second: a new track's second box is admitted by the Kalman
filter's gate, which widens with the time between frames, where the IoU gate refuses it."""

from __future__ import annotations

import cv2
import numpy as np

from edge_reid.detections import Detections
from edge_reid.motchallenge import read_rows
from edge_reid.tracking import Tracker, TrackerConfig
from edge_reid.tracking.boxes import iou_matrix
from edge_reid.tracking.kalman import GATE_CHI2_95

W, H = 40.0, 100.0
STEP_PX = 30.0  # consecutive boxes 40 px wide, 30 px apart: IoU 10/70 = 0.14, below min_iou_tentative 0.3


def _box(x: float) -> list[float]:
    return [x - W / 2, 300 - H / 2, x + W / 2, 300 + H / 2]


def _walk(config: TrackerConfig | None, fps: float, frames: int = 6) -> list[int]:
    """A person walking STEP_PX per frame at ``fps``; how many tracks are reported in each frame."""
    tracker = Tracker(config)
    return [len(tracker.update(Detections.from_boxes([_box(100 + STEP_PX * i)], [0.9]), None, i / fps)) for i in range(frames)]


def test_the_default_gate_is_deepsorts_chi_square_gate():
    assert TrackerConfig().tentative_gate_chi2 == GATE_CHI2_95


def test_a_person_far_between_frames_at_low_frame_rate_is_confirmed_from_the_third_hit():
    assert _walk(None, fps=2.5) == [0, 0, 1, 1, 1, 1]
    # The IoU gate alone (ByteTrack, DeepSORT) never joins the boxes: each starts a new tentative track.
    assert _walk(TrackerConfig(tentative_gate_chi2=0.0), fps=2.5) == [0] * 6


def test_the_same_distance_in_a_thirtieth_of_a_second_is_not_one_person():
    """The gate follows the time between frames: 30 px in 1/30 s is 900 px/s, no walk."""
    assert _walk(None, fps=30.0) == [0] * 6


def test_a_clearly_different_person_is_not_joined_by_the_wider_gate():
    rng = np.random.default_rng(0)
    a, b = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 32)).astype(np.float32))
    assert abs(float(a @ b)) < 0.5
    tracker = Tracker()
    reported = []
    for i in range(4):
        look = a if i % 2 == 0 else b  # A and B take turns, 30 px apart, 0.4 s between frames
        tracked = tracker.update(Detections.from_boxes([_box(100 + STEP_PX * i)], [0.9]), look[None], i / 2.5)
        reported.append(len(tracked))
    assert reported == [0, 0, 0, 0]


def test_low_frame_rate_on_real_frames_reports_more_people_as_precisely(vtest_path, vtest_gt_dir, detector):
    """vtest at 2.5 fps (every 4th frame of the first 320): the boxes reported by the default tracker
    and by the IoU gate alone, side by side, against the ground truth (IoU >= 0.5)."""
    ground_truth = read_rows(vtest_gt_dir / "gt" / "gt.txt")
    trackers = {"gated": Tracker(), "iou only": Tracker(TrackerConfig(tentative_gate_chi2=0.0))}
    found = {name: 0 for name in trackers}
    false = {name: 0 for name in trackers}
    people = 0
    capture = cv2.VideoCapture(str(vtest_path))
    try:
        for index in range(320):
            ok, image = capture.read()
            assert ok, "vtest.avi ended early"
            if index % 4:
                continue
            detections = detector.detect(image)
            truth = ground_truth[(ground_truth[:, 0] == index + 1) & (ground_truth[:, 6] != 0)][:, 2:6].copy()
            truth[:, 2:] += truth[:, :2]
            people += len(truth)
            for name, tracker in trackers.items():
                boxes = tracker.update(detections, None, index / 10.0).boxes
                matched = (iou_matrix(np.asarray(boxes, np.float64), truth) >= 0.5).any(axis=1) if len(truth) else np.zeros(len(boxes), bool)
                found[name] += int(matched.sum())
                false[name] += int((~matched).sum())
    finally:
        capture.release()
    assert people > 300
    recall = {name: found[name] / people for name in trackers}
    precision = {name: found[name] / max(found[name] + false[name], 1) for name in trackers}
    assert recall["gated"] >= recall["iou only"] + 0.05, recall  # measured 0.81 against 0.62
    assert precision["gated"] >= precision["iou only"] - 0.02, precision  # measured 0.86 against 0.85


def _sideways_reach(admitted) -> int:
    """The largest sideways shift, whole pixels, of a 40 x 100 box that ``admitted(shift)`` accepts."""
    return max(shift for shift in range(0, 400) if admitted(shift))


def test_the_filters_gate_is_narrower_than_the_iou_gate_at_30_fps_and_wider_at_a_few_fps():
    """The reach docs/tracking.md gives ("Low frame rates"): a new track's next box, 40 x 100 px."""
    from edge_reid.tracking.boxes import iou_matrix
    from edge_reid.tracking.kalman import BoxKalmanFilter

    iou_reach = _sideways_reach(lambda s: iou_matrix(np.array([_box(100)]), np.array([_box(100 + s)]))[0, 0] >= 0.3)
    kalman = BoxKalmanFilter()

    def gate_reach(dt_s: float) -> int:
        mean, covariance = kalman.predict(*kalman.initiate(np.array([[100.0, 300.0, W, H]])), dt_s)
        return _sideways_reach(
            lambda s: kalman.gating_distance(mean, covariance, np.array([[100.0 + s, 300.0, W, H]]))[0, 0] <= GATE_CHI2_95
        )

    reach = {fps: gate_reach(1.0 / fps) for fps in (30, 10, 5, 2.5)}
    assert iou_reach == 21
    assert reach == {30: 16, 10: 28, 5: 50, 2.5: 95}, reach
