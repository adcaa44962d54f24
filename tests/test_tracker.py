"""The tracker on synthetic scenes: crossings, occlusion, lifecycle, bad input."""

import re
import warnings

import numpy as np
import pytest

from edge_reid.detections import Detections
from edge_reid.tracking import CameraMotion, Tracker, TrackerConfig, TrackState

FPS = 10.0
W, H = 40.0, 100.0


def _box(x: float, y: float = 300.0) -> list[float]:
    return [x - W / 2, y - H / 2, x + W / 2, y + H / 2]


def _unit(vector) -> np.ndarray:
    v = np.asarray(vector, np.float32)
    return v / np.linalg.norm(v)


def _look(seed: int, dim: int = 32) -> np.ndarray:
    return _unit(np.random.default_rng(seed).normal(size=dim))


def _alike(base: np.ndarray, seed: int, spread: float = 0.05) -> np.ndarray:
    return _unit(base + spread * np.random.default_rng(seed).normal(size=base.shape))


def _run(tracker, frames, looks=None):
    """frames: list of per-frame lists of (person, x) or None; returns per frame {person: track id}."""
    seen = []
    for index, people in enumerate(frames):
        boxes = [_box(x) for _, x in people]
        detections = Detections.from_boxes(np.array(boxes).reshape(-1, 4), [0.9] * len(people))
        embeddings = None
        if looks is not None:
            embeddings = np.array([_alike(looks[p], 1000 * index + k) for k, (p, _) in enumerate(people)]).reshape(len(people), -1)
        tracked = tracker.update(detections, embeddings, index / FPS)
        by_box = {tuple(np.round(b, 0)): t for b, t in zip(tracked.boxes, tracked.track_ids)}
        ids = {}
        for (person, x), box in zip(people, boxes):
            # the reported (filtered) box lies near the detection
            near = [t for b, t in by_box.items() if abs((b[0] + b[2]) / 2 - x) < 15]
            if len(near) == 1:
                ids[person] = int(near[0])
        seen.append(ids)
    return seen


def _crossing(bounce: bool):
    """A walks right, B walks left on the same line; they meet (10 px apart) and pass, or turn back."""
    frames = []
    for i in range(40):
        a, b = 105 + 10 * i, 595 - 10 * i
        if bounce and i > 24:  # at i = 24 they stand at 345 and 355; both turn back
            a, b = 345 - 10 * (i - 24), 355 + 10 * (i - 24)
        frames.append([("A", a), ("B", b)])
    return frames


def _kept_identity(seen, person, before, after) -> bool:
    return seen[before][person] == seen[after][person]


def test_crossing_with_similar_appearance_is_carried_by_motion():
    looks = {"A": _look(1)}
    looks["B"] = _alike(looks["A"], 2, spread=0.1)  # cosine ~0.9: appearance cannot tell them apart
    assert float(looks["A"] @ looks["B"]) > 0.8
    seen = _run(Tracker(), _crossing(bounce=False), looks)
    assert seen[10]["A"] != seen[10]["B"]
    assert _kept_identity(seen, "A", 10, 39) and _kept_identity(seen, "B", 10, 39)


def test_turning_back_with_different_appearance_is_kept_by_appearance():
    looks = {"A": _look(1), "B": _look(2)}
    assert abs(float(looks["A"] @ looks["B"])) < 0.5
    seen = _run(Tracker(), _crossing(bounce=True), looks)
    assert _kept_identity(seen, "A", 10, 39) and _kept_identity(seen, "B", 10, 39)
    # Without appearance, motion alone predicts them passing through each other and swaps them.
    motion_only = _run(Tracker(), _crossing(bounce=True))
    assert motion_only[39].get("A") == motion_only[10]["B"] or motion_only[39].get("B") == motion_only[10]["A"]


def test_occluded_for_most_of_a_second_keeps_its_track():
    frames = [[("A", 100 + 10 * i)] if not 15 <= i < 23 else [] for i in range(35)]
    seen = _run(Tracker(), frames)
    assert all("A" not in seen[i] for i in range(15, 23))
    assert _kept_identity(seen, "A", 10, 30)


def test_one_and_two_frame_false_detections_are_never_reported():
    tracker = Tracker()
    for index in range(20):
        people = [("A", 100 + 5 * index)]
        if index == 5:
            people.append(("ghost", 600))
        if index in (10, 11):
            people.append(("ghost2", 500))
        boxes = np.array([_box(x) for _, x in people])
        tracked = tracker.update(Detections.from_boxes(boxes, [0.9] * len(people)), None, index / FPS)
        assert len(tracked) == (0 if index < 2 else 1), f"frame {index}: {tracked.track_ids}"
    assert tracker.confirmed_total == 1


def test_a_track_is_reported_from_its_third_hit():
    tracker = Tracker()
    counts = [len(tracker.update(Detections.from_boxes([_box(100 + 5 * i)], [0.9]), None, i / FPS)) for i in range(4)]
    assert counts == [0, 0, 1, 1]
    track = tracker.tracks[0]
    assert track.state == TrackState.TRACKED and track.hits == 4


def test_lost_track_is_refound_and_then_removed_after_max_lost():
    tracker = Tracker(TrackerConfig(max_lost_s=1.0))
    for i in range(5):
        tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, i / FPS)
    (track,) = tracker.tracks
    tracker.update(Detections.empty(), None, 0.5)
    assert track.state == TrackState.LOST
    refound = tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, 0.6)
    assert refound.track_ids.tolist() == [track.track_id] and track.refound
    for i in range(7, 20):
        tracker.update(Detections.empty(), None, i / FPS)
    assert tracker.tracks == []  # lost at 0.7 s, removed once unseen for more than 1 s


def test_low_score_detections_only_extend_tracks():
    tracker = Tracker()
    for i in range(4):
        tracker.update(Detections.from_boxes([_box(100 + 5 * i)], [0.9]), None, i / FPS)
    (track,) = tracker.tracks
    kept = tracker.update(Detections.from_boxes([_box(120), _box(500)], [0.3, 0.3]), None, 0.4)
    assert kept.track_ids.tolist() == [track.track_id]  # occluded person scored low: still tracked
    assert len(tracker.tracks) == 1  # a weak detection alone never starts a track
    tracker.update(Detections.empty(), None, 0.5)  # missed: the track is lost
    assert track.state == TrackState.LOST
    weak = tracker.update(Detections.from_boxes([_box(130)], [0.3]), None, 0.6)
    assert len(weak) == 0 and track.state == TrackState.LOST  # ByteTrack: weak boxes extend only tracks tracked a frame ago


def test_a_lost_track_keeps_its_size_while_it_moves_on():
    """BoT-SORT: a lost (or tentative) track's size velocity is zeroed before each prediction: a person
    walking towards the camera who is then hidden keeps the size they had, not one growing without end."""
    tracker = Tracker()
    for i in range(8):  # 4 px taller each frame
        tracker.update(Detections.from_boxes([[80, 250, 120, 350 + 4 * i]], [0.9]), None, i / FPS)
    (track,) = tracker.tracks
    heights, tops = [], []
    for i in range(8, 12):
        tracker.update(Detections.empty(), None, i / FPS)
        heights.append(track.kalman_box[3] - track.kalman_box[1])
        tops.append(track.kalman_box[1])
    assert track.state == TrackState.LOST
    assert max(heights) - min(heights) < 1e-6  # the size is held ...
    assert tops[-1] > tops[0] + 1.0  # ... while the position goes on moving


def test_a_young_track_on_a_lost_older_one_is_removed_as_its_duplicate():
    """ByteTrack's ``remove_duplicate_stracks``: a tracked and a lost track whose boxes overlap at
    ``duplicate_iou`` or more are one person twice; the one with the shorter history goes. Here a
    person of another appearance stands where a lost track is: their new track is confirmed at its
    third hit and removed at once, while the old one stays lost."""
    person, other = np.eye(8, dtype=np.float32)[:2]
    tracker = Tracker()
    for i in range(10):
        tracker.update(Detections.from_boxes([_box(100)], [0.9]), person[None], i / FPS)
    (old,) = tracker.tracks
    reported = [tracker.update(Detections.from_boxes([_box(100)], [0.9]), other[None], i / FPS) for i in range(10, 13)]
    assert [len(r) for r in reported] == [0, 0, 0]  # the third hit would report it: removed as the duplicate
    assert [t.track_id for t in tracker.tracks] == [old.track_id] and old.state == TrackState.LOST


def test_frames_without_detections_and_hundreds_of_detections():
    tracker = Tracker()
    assert len(tracker.update(Detections.empty(), None, 0.0)) == 0
    grid = np.array([[x, y, x + 20, y + 50] for x in range(0, 1500, 50) for y in range(0, 600, 60)], np.float32)
    assert len(grid) == 300
    for i in range(3):
        tracked = tracker.update(Detections.from_boxes(grid, np.full(len(grid), 0.9)), None, 0.1 * (i + 1))
    assert len(tracked) == 300 and len(set(tracked.track_ids.tolist())) == 300


def test_nan_boxes_are_an_error_and_empty_boxes_are_ignored():
    tracker = Tracker()
    with pytest.raises(ValueError, match="NaN or infinite"):
        tracker.update(Detections.from_boxes([[0, 0, np.nan, 10]], [0.9]), None, 0.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        tracker.update(Detections(np.array([[0, 0, 10, 10]], np.float32), np.array([np.inf], np.float32)), None, 0.0)
    for i in range(3):
        tracked = tracker.update(Detections.from_boxes([_box(100), [50, 50, 50, 90], [10, 10, 30, 10]], [0.9] * 3), None, i / FPS)
    assert len(tracked) == 1 and tracker.ignored_boxes == 6
    with pytest.raises(ValueError, match="timestamp_s"):
        tracker.update(Detections.empty(), None, float("nan"))
    with pytest.raises(ValueError, match="embeddings must be"):
        tracker.update(Detections.from_boxes([_box(100)], [0.9]), np.zeros((2, 8), np.float32), 1.0)


def test_repeated_and_backward_timestamps_do_not_jump():
    tracker = Tracker()
    times = [5.0, 5.1, 5.2, 5.2, 5.3, 0.0, 0.1, 0.2]  # a repeat, then a camera reconnect restarting its clock
    ids = set()
    for step, when in enumerate(times):
        tracked = tracker.update(Detections.from_boxes([_box(100 + 3 * step)], [0.9]), None, when)
        ids.update(tracked.track_ids.tolist())
        assert np.isfinite(tracker.tracks[0].mean).all()
    assert len(ids) == 1 and len(tracker.tracks) == 1
    assert tracker.clock_s == pytest.approx(0.5)  # forward steps only: 0.3 s before, 0.2 s after


def test_jittery_timestamps_add_no_time():
    """Frames out of order: each step forward is measured from the newest timestamp, not the one before."""
    jittery, ordered = Tracker(), Tracker()
    for tracker in (jittery, ordered):
        for i in range(3):
            tracker.update(Detections.from_boxes([_box(100 + 20 * i)], [0.9]), None, i / FPS)
    for when in (0.3, 0.1, 0.4, 0.2, 0.5, 0.3, 0.6, 0.4, 0.7):
        jittery.update(Detections.empty(), None, when)
    for when in (0.3, 0.4, 0.5, 0.6, 0.7):
        ordered.update(Detections.empty(), None, when)
    assert jittery.clock_s == pytest.approx(0.7) == ordered.clock_s
    (track,), (same,) = jittery.tracks, ordered.tracks
    assert track.state == TrackState.LOST, "hidden 0.5 s: kept for max_lost_s = 1 s"
    np.testing.assert_allclose(track.mean, same.mean)  # the Kalman filter moved it 0.5 s, not 1.3 s
    tracked = jittery.update(Detections.from_boxes([track.kalman_box], [0.9]), None, 0.75)
    assert tracked.track_ids.tolist() == [track.track_id]


def test_a_gap_of_many_seconds_starts_afresh():
    tracker = Tracker()
    for i in range(5):
        tracker.update(Detections.from_boxes([_box(100 + 10 * i)], [0.9]), None, i / FPS)
    old = tracker.tracks[0].track_id
    for i in range(4):
        tracked = tracker.update(Detections.from_boxes([_box(400)], [0.9]), None, 60.0 + i / FPS)
    assert old not in [t.track_id for t in tracker.tracks]
    assert len(tracked) == 1 and tracked.track_ids[0] != old
    assert np.isfinite(tracked.boxes).all()


def test_camera_motion_moves_the_predictions():
    rng = np.random.default_rng(0)
    scene = (rng.random((600, 800)) * 255).astype(np.uint8)
    import cv2

    scene = cv2.GaussianBlur(scene, (5, 5), 1.5)
    motion = CameraMotion()
    first = np.ascontiguousarray(scene[50:530, 50:690])
    shifted = np.ascontiguousarray(scene[50:530, 30:670])  # the camera panned left: content moves 20 px right
    assert np.allclose(motion.estimate(first), np.eye(2, 3))
    warp = motion.estimate(shifted)
    assert warp[0, 2] == pytest.approx(20.0, abs=1.0) and warp[1, 2] == pytest.approx(0.0, abs=1.0)
    tracker = Tracker(camera_motion=CameraMotion())
    box = [300, 200, 340, 300]
    for i, image in enumerate([first, first, first, shifted]):
        moved = image is shifted
        tracked = tracker.update(Detections.from_boxes([[b + (20 if moved and k % 2 == 0 else 0) for k, b in enumerate(box)]], [0.9]),
                                 None, i / FPS, image=cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    assert len(tracked) == 1 and tracked.boxes[0, 0] == pytest.approx(320, abs=2)
    with pytest.raises(ValueError, match="image"):
        tracker.update(Detections.empty(), None, 1.0)


def test_config_is_checked():
    with pytest.raises(ValueError, match="low_score"):
        TrackerConfig(low_score=0.7, high_score=0.5)
    with pytest.raises(ValueError, match="max_lost_s"):
        TrackerConfig(max_lost_s=-1)
    with pytest.raises(ValueError, match="veto_similarity"):
        TrackerConfig(veto_similarity=2)
    with pytest.raises(ValueError, match="tentative_gate_chi2"):
        TrackerConfig(tentative_gate_chi2=-1)
    with pytest.raises(ValueError, match="tentative_gate_chi2"):
        TrackerConfig(tentative_gate_chi2=float("inf"))


def test_confirmed_track_hands_out_its_tentative_hits_once_as_past_boxes():
    tracker = Tracker(TrackerConfig(confirm_hits=3))
    for index in range(2):
        reported = tracker.update(Detections.from_boxes([_box(100 + 5 * index)], [0.9]), None, index / FPS)
        assert len(reported) == 0 and tracker.tracks[0].past == []  # tentative: nothing reported yet
    reported = tracker.update(Detections.from_boxes([_box(110)], [0.9]), None, 0.2)
    track = tracker.tracks[0]
    assert reported.track_ids.tolist() == [track.track_id] and track.confirmed_now
    assert [(p.update, p.timestamp_s, p.kind) for p in track.past] == [(0, 0.0, "tentative"), (1, 0.1, "tentative")]
    assert abs((track.past[0].box[0] + track.past[0].box[2]) / 2 - 100) < 1e-6  # the first hit's own box
    assert track.past[1].score == pytest.approx(0.9)
    tracker.update(Detections.from_boxes([_box(115)], [0.9]), None, 0.3)
    assert track.past == []  # handed out once


def test_refound_track_hands_out_its_lost_gap_interpolated_in_time():
    tracker = Tracker(TrackerConfig(confirm_hits=1, max_lost_s=1.0))
    tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, 0.0)
    track = tracker.tracks[0]
    start = track.kalman_box.copy()
    for stamp in (0.1, 0.3):  # frames without the person; the second after a longer interval
        tracker.update(Detections.empty(), None, stamp)
        assert track.state == TrackState.LOST and track.past == []
    tracker.update(Detections.from_boxes([_box(104)], [0.7]), None, 0.4)
    end = track.kalman_box
    assert track.refound
    assert [(p.update, p.timestamp_s, p.kind) for p in track.past] == [(1, 0.1, "interpolated"), (2, 0.3, "interpolated")]
    np.testing.assert_allclose(track.past[0].box, 0.75 * start + 0.25 * end)  # 0.1 s of 0.4 s
    np.testing.assert_allclose(track.past[1].box, 0.25 * start + 0.75 * end)
    assert track.past[0].score == pytest.approx(0.7)  # the lower of the two detections around the gap


def test_a_clock_that_stands_still_is_warned_of_once():
    """A live camera's CAP_PROP_POS_MSEC often reads 0: with that as every frame's time, tracks stood still and lost
    ones never expired (54 tracks after 1500 frames, each frame slower), without a word."""
    from edge_reid.errors import TimestampWarning
    from edge_reid.tracking.tracker import STILL_CLOCK_UPDATES

    moving = Tracker()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimestampWarning)
        for step in range(2 * STILL_CLOCK_UPDATES):
            moving.update(Detections.from_boxes([_box(100 + step % 7)], [0.9]), None, step / FPS)
        stuck = Tracker()
        for _ in range(STILL_CLOCK_UPDATES - 1):
            stuck.update(Detections.from_boxes([_box(100)], [0.9]), None, 0.0)
    with pytest.warns(TimestampWarning, match=r"not moved forward for 100 frames in a row \(it reads 0.0\).*milliseconds") as said:
        stuck.update(Detections.from_boxes([_box(100)], [0.9]), None, 0.0)
    assert said[0].filename == __file__  # it names the caller's line, not one inside edge_reid
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimestampWarning)
        for _ in range(STILL_CLOCK_UPDATES):
            stuck.update(Detections.from_boxes([_box(100)], [0.9]), None, 0.0)  # said once


def test_a_lost_track_is_re_found_in_the_frame_after_max_lost_s_but_never_after_a_stall():
    """Defect: lost tracks were expired only after association, so after a stall (frames far apart, a
    slow loop) a lost track unseen for any time was still re-found (and its gap interpolated). ByteTrack's
    grace of one frame after ``max_lost_s`` stays; it is bounded by LOST_STALE_FACTOR x ``max_lost_s``."""
    from edge_reid.tracking.tracker import LOST_STALE_FACTOR

    def lost_then_seen_again_at(seconds):
        tracker = Tracker(TrackerConfig(max_lost_s=1.0))
        for i in range(4):
            tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, i / FPS)
        (track,) = tracker.tracks
        tracker.update(Detections.empty(), None, 0.4)
        assert track.state == TrackState.LOST  # last seen at 0.3 s
        return tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, seconds).track_ids.tolist()

    assert LOST_STALE_FACTOR == 2.0
    assert lost_then_seen_again_at(0.3 + 1.9) == [1]  # unseen 1.9 s, within 1 s at the previous frame: re-found
    assert lost_then_seen_again_at(0.3 + 2.1) == []  # unseen 2.1 s: a stall, the person starts a new track
    # At 1 image/s a track survives one missed detection, as with ByteTrack's rule.
    sparse = Tracker(TrackerConfig(max_lost_s=1.0))
    seen = [True, True, True, False, True, True]
    ids = [sparse.update(Detections.from_boxes([_box(100)], [0.9]) if s else Detections.empty(), None, float(i)).track_ids.tolist()
           for i, s in enumerate(seen)]
    assert ids == [[], [], [1], [], [1], [1]]


def test_scores_exactly_at_a_threshold_count_as_at_or_above_it():
    """Defect: scores are float32 and 0.9 is stored as 0.89999998, so a detection scored exactly at
    ``high_score``/``new_track_score`` (or ``low_score``) was treated as below it."""
    tracker = Tracker(TrackerConfig(high_score=0.9, new_track_score=0.9, low_score=0.7, confirm_hits=1))
    started = tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, 0.0)
    assert started.track_ids.tolist() == [1]  # at high_score and new_track_score: starts a track
    kept = tracker.update(Detections.from_boxes([_box(102)], [0.7]), None, 0.1)
    assert kept.track_ids.tolist() == [1]  # at low_score: extends it


def test_embeddings_of_another_width_are_refused_before_anything_changes():
    """Defect: embeddings whose dimension changed between frames failed deep in association with numpy's
    matmul message, after the tracker had moved its clock and counted the update."""
    tracker = Tracker()
    for i in range(3):
        tracker.update(Detections.from_boxes([_box(100)], [0.9]), _look(i, dim=32)[None], i / FPS)
    before = (tracker.updates, tracker.clock_s, tracker.tracks[0].detection_index)
    with pytest.raises(ValueError, match="embeddings are 16-d, this tracker's tracks hold 32-d ones"):
        tracker.update(Detections.from_boxes([_box(100)], [0.9]), _look(9, dim=16)[None], 0.3)
    assert (tracker.updates, tracker.clock_s, tracker.tracks[0].detection_index) == before
    with pytest.raises(ValueError, match="D >= 1"):
        Tracker().update(Detections.from_boxes([_box(100)], [0.9]), np.zeros((1, 0), np.float32), 0.0)


def test_config_values_that_switch_a_gate_off_or_are_no_count_are_refused_by_name():
    """Defect: IoU gates at 0 switched the gate off (boxes that do not overlap matched, every lost track a
    duplicate of every tracked one); confirm_hits=2.5 or True and history_size=1.5 were taken; max_lost_s=None
    raised a TypeError that named no field."""
    for name in ("min_iou", "min_iou_low", "min_iou_tentative", "proximity", "duplicate_iou"):
        with pytest.raises(ValueError, match=rf"TrackerConfig\.{name} must be in \(0, 1\]"):
            TrackerConfig(**{name: 0.0})
        assert getattr(TrackerConfig(**{name: 1.0}), name) == 1.0
    for name, value in (("confirm_hits", 2.5), ("confirm_hits", True), ("history_size", 1.5)):
        with pytest.raises(TypeError, match=rf"TrackerConfig\.{name} must be an integer"):
            TrackerConfig(**{name: value})
    assert TrackerConfig(confirm_hits=np.int64(2)).confirm_hits == 2
    with pytest.raises(TypeError, match=r"TrackerConfig\.max_lost_s must be a number"):
        TrackerConfig(max_lost_s=None)


def test_the_same_person_given_twice_in_a_frame_starts_one_track():
    """Defect: identical duplicate detections (a detector without NMS, two detectors merged) started two
    tracks, so one person got two permanent identities."""
    tracker = Tracker()
    for i in range(4):
        twice = Detections.from_boxes([_box(100 + 5 * i), _box(100 + 5 * i)], [0.9, 0.9])
        tracked = tracker.update(twice, None, i / FPS)
    assert tracked.track_ids.tolist() == [1] and len(tracker.tracks) == 1
    assert tracker.duplicate_boxes == 4  # the second box of each frame


@pytest.mark.parametrize("fps, max_lost_s", [(10.0, 0.2), (10.0, 0.7), (25.0, 0.2), (30.0, 0.1)])
def test_a_track_lost_for_exactly_max_lost_s_lives_as_long_whatever_the_clocks_origin(fps, max_lost_s):
    """Defect: expiry compared ``now - last_seen > max_lost_s`` exactly, and the time between frames is rounded
    otherwise at epoch seconds (~1.7e9) than from 0: a track unseen for exactly ``max_lost_s`` was kept with
    times from 0 and removed a frame earlier with Unix times. Within 1 us, unseen for exactly max_lost_s is kept."""

    def lifecycle(origin):
        tracker = Tracker(TrackerConfig(max_lost_s=max_lost_s))
        states = []
        for i in range(40):
            seen = Detections.from_boxes([_box(100)], [0.9]) if i < 4 else Detections.empty()
            tracker.update(seen, None, origin + i / fps)
            states.append([(t.track_id, t.state.value) for t in tracker.tracks])
        return states

    from_zero = lifecycle(0.0)
    assert lifecycle(1.7e9) == from_zero and lifecycle(1_700_000_000.123) == from_zero
    removed_at = next(i for i, s in enumerate(from_zero) if not s)
    assert removed_at == 3 + round(max_lost_s * fps) + 1  # last seen at frame 3; unseen max_lost_s at the frame before


def test_a_time_that_is_text_or_a_bool_is_a_type_error_before_anything_changes():
    """Defect: update took "0.1" and True as times (float() converts both), where Pipeline refuses them."""
    tracker = Tracker()
    tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, 0.0)
    before = (tracker.updates, tracker.clock_s, len(tracker.tracks))
    for wrong in ("0.1", True, np.bool_(True), [0.1]):
        with pytest.raises(TypeError, match=re.escape(f"timestamp_s must be seconds (a number), got {wrong!r}")):
            tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, wrong)
        with pytest.raises(TypeError, match="timestamp_s must be seconds"):
            tracker.predict(wrong)
    assert (tracker.updates, tracker.clock_s, len(tracker.tracks)) == before
    for right in (np.float32(0.1), np.int64(1), 2):  # numpy's numbers are numbers
        tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, right)
    assert tracker.clock_s == pytest.approx(2.0)


def test_times_in_milliseconds_or_nanoseconds_are_warned_of_once():
    """Defect: a camera's CAP_PROP_POS_MSEC or time.time_ns() given as timestamp_s was tracked without a word, every
    lost track then unseen for 'ages' of max_lost_s. Times after 1e11 s (the year 5138) warn, once; Unix seconds do not."""
    from edge_reid.errors import TimestampWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", TimestampWarning)
        seconds = Tracker()
        for i in range(5):
            seconds.update(Detections.from_boxes([_box(100)], [0.9]), None, 1.7e9 + i / FPS)
    for start, step in ((1.7e12, 1000 / FPS), (1.7e18, 1e9 / FPS)):
        tracker = Tracker()
        with pytest.warns(TimestampWarning, match=r"after the year 5138: it looks like milliseconds or nanoseconds since "
                                                  r"1970, but seconds are expected") as said:
            tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, start)
        assert len(said) == 1 and said[0].filename == __file__  # it names the caller's line
        with warnings.catch_warnings():
            warnings.simplefilter("error", TimestampWarning)
            for i in range(1, 5):
                tracker.update(Detections.from_boxes([_box(100)], [0.9]), None, start + i * step)  # said once


def test_history_array_follows_every_change_of_the_history_and_kalman_boxes_match_each_track():
    from edge_reid.tracking.track import Track, kalman_boxes

    rng = np.random.default_rng(3)
    track = Track(1, np.zeros(8), np.eye(8), np.array([0.0, 0.0, 10.0, 20.0]), 0.9, 0.0, history_size=4)
    assert track.history_array() is None
    for step in range(11):  # past the history's size: the oldest views drop out, the length stays 4
        vector = rng.normal(size=8).astype(np.float32)
        track.add_embedding(vector / np.linalg.norm(vector), float(step), clean=step % 3 != 2)
        stacked = track.history_array()
        np.testing.assert_array_equal(stacked, np.stack(track.history))
        assert stacked is track.history_array() and not stacked.flags.writeable  # stacked once per change
    track.history.append(track.history[0].copy())  # appended by hand: seen too
    np.testing.assert_array_equal(track.history_array(), np.stack(track.history))
    track.history.clear()
    assert track.history_array() is None
    tracks = []
    for _ in range(5):
        t = Track(1, np.zeros(8), np.eye(8), np.zeros(4), 0.5, 0.0, history_size=2)
        t.mean = rng.uniform(-50, 500, 8)
        tracks.append(t)
    np.testing.assert_array_equal(kalman_boxes(tracks), np.stack([t.kalman_box for t in tracks]))
    assert kalman_boxes([]).shape == (0, 4)
