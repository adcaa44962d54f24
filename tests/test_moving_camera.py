"""A moving camera: the stand-in sequence of ``benchmarks/moving_camera_sequence.py`` and the
camera-motion estimate on its real frames, where the true motion between frames is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import load_benchmark_script

from edge_reid.tracking import CameraMotion
from edge_reid.tracking.camera_motion import IDENTITY_WARP, working_downscale


@pytest.fixture(scope="module")
def moving():
    return load_benchmark_script("moving_camera_sequence")


@pytest.fixture(scope="module")
def stand_in(moving, vtest_path, shared_dir, tmp_path_factory):
    """The first 80 frames of the stand-in, written and read back, with their ground truth."""
    out = tmp_path_factory.mktemp("moving")
    video, sequence, length = moving.moving_camera_sequence(vtest_path, shared_dir / "data" / "vtest-mot", out, max_frames=80)
    return load_benchmark_script("_common").read_frames(video), sequence, length


def test_the_window_moves_fast_stays_inside_the_frame_and_is_the_same_every_run(moving):
    windows = np.array([moving.window(t, 768, 576) for t in range(795)])
    left, top, width = windows.T
    height = width * 3 / 4
    assert (left >= 0).all() and (top >= 0).all() and (left + width <= 768 + 1e-9).all() and (top + height <= 576 + 1e-9).all()
    step = np.hypot(np.diff(left), np.diff(top)) * moving.OUTPUT_SIZE[0] / width[1:]
    assert 15 < step.max() < 40, "the view moves by tens of output pixels a frame at its fastest"
    assert np.array_equal(windows, np.array([moving.window(t, 768, 576) for t in range(795)]))


def test_ground_truth_is_moved_scaled_clipped_and_slivers_are_left_out(moving):
    rows = np.array([
        [1, 1, 100, 100, 20, 50, 1, -1, -1, -1],  # inside
        [1, 2, 40, 100, 20, 50, 1, -1, -1, -1],  # left half outside the view (left edge at 50)
        [1, 3, 32, 100, 20, 50, 1, -1, -1, -1],  # 10% inside: a sliver
    ])
    moved = moving.moved_ground_truth(rows, left=50.0, top=20.0, scale=2.0)
    assert moved[:, 1].tolist() == [1, 2]
    assert np.allclose(moved[0, 2:6], [100, 160, 40, 100])
    assert np.allclose(moved[1, 2:6], [0, 160, 20, 100]), "clipped to the view"
    assert np.array_equal(moved[:, 6:], rows[:2, 6:])


def test_stand_in_frames_are_the_windows_of_the_source(moving, stand_in, vtest_path):
    import cv2

    frames, sequence, length = stand_in
    assert length == len(frames) == 80 and frames[0].shape == (480, 640, 3)
    source = cv2.VideoCapture(str(vtest_path))
    original = [source.read()[1] for _ in range(8)][7]
    source.release()
    left, top, width = moving.window(7, 768, 576)
    scale = 640 / width
    expected = cv2.warpAffine(original, np.array([[scale, 0, -left * scale], [0, scale, -top * scale]]), (640, 480),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.array_equal(frames[7], expected), "lossless: frame 8 is exactly the resized window"
    info = (sequence / "seqinfo.ini").read_text()
    assert "frameRate=10" in info and "seqLength=80" in info and "imWidth=640" in info


def test_camera_motion_recovers_the_known_motion_of_real_frames(moving, stand_in):
    """On the stand-in's real frames (people walking through the view, as outliers) the estimated
    warp maps points of one frame to the next as the known window motion does: half a pixel at the
    median, within 3 px at worst (the view moves by up to ~25 px), in full-resolution pixels (the
    estimate runs on frames shrunk by 2)."""
    frames, _, _ = stand_in
    motion = CameraMotion()
    motion.estimate(frames[0])
    grid = np.array([[x, y, 1.0] for x in range(40, 640, 80) for y in range(40, 480, 80)])
    shifts, errors = [], []
    for number in range(1, len(frames)):
        estimated = motion.estimate(frames[number])
        truth = moving.true_warp(number - 1, number, 768, 576)
        shifts.append(np.abs(grid @ truth.T - grid[:, :2]).max())
        errors.append(np.abs(grid @ estimated.T - grid @ truth.T).max())
    assert max(shifts) > 10, "the test frames really move"
    assert np.median(errors) < 1.0 and max(errors) < 3.0, f"median {np.median(errors):.2f}, worst {max(errors):.2f} px"


def _id_switches(frames, sequence, process) -> tuple[int, int]:
    """Feed the ground-truth boxes (score 0.9) of each stand-in frame to ``process(image, t, detections)``
    and count ID switches: a person whose track id changes from one reported frame to the next.

    Returns:
        (switches, person-frames reported).
    """
    from edge_reid.detections import Detections

    rows = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",")
    last: dict[int, int] = {}
    switches = reported = 0
    for number, image in enumerate(frames):
        here = rows[rows[:, 0] == number + 1]
        boxes = np.column_stack([here[:, 2], here[:, 3], here[:, 2] + here[:, 4], here[:, 3] + here[:, 5]])
        tracked = process(image, number / 10.0, Detections.from_boxes(boxes, np.full(len(boxes), 0.9)))
        for box, track_id in zip(tracked.boxes, tracked.track_ids):
            person = int(here[np.argmin(np.abs(boxes - box).sum(axis=1)), 1])
            reported += 1
            switches += person in last and last[person] != int(track_id)
            last[person] = int(track_id)
    return switches, reported


def test_compensation_keeps_people_on_their_tracks_when_the_camera_moves(stand_in):
    """Motion only, the exact boxes given: without compensation the view's motion (up to ~25 px a
    frame, turning every 6-7 frames) throws the Kalman predictions off people and tracks swap or
    restart; with it they hold."""
    from edge_reid.tracking import Tracker

    frames, sequence, _ = stand_in
    fixed, moving = Tracker(), Tracker(camera_motion=CameraMotion())
    without, seen_without = _id_switches(frames, sequence, lambda image, t, d: fixed.update(d, None, t))
    with_motion, seen_with = _id_switches(frames, sequence, lambda image, t, d: moving.update(d, None, t, image=image))
    assert seen_with >= seen_without > 100
    assert with_motion <= 3 and 5 * max(with_motion, 1) < without, (with_motion, without)


def test_the_default_pipeline_compensates_camera_motion(embedder, stand_in):
    from edge_reid.pipeline import Pipeline
    from edge_reid.tracking import Tracker

    frames, sequence, _ = stand_in
    default = Pipeline(embedder, use_detector=False)
    fixed = Pipeline(embedder, use_detector=False, tracker=Tracker())

    def run(pipeline):
        return _id_switches(frames, sequence, lambda image, t, d: pipeline.process(image, t, detections=d).tracked)

    (default_switches, _), (fixed_switches, _) = run(default), run(fixed)
    assert 5 * max(default_switches, 1) < fixed_switches, (default_switches, fixed_switches)


@pytest.mark.parametrize(("size", "factor"), [((768, 576), 2), ((640, 480), 2), ((1280, 720), 3), ((1920, 1080), 4), ((3840, 2160), 8), ((64, 48), 2)])
def test_the_working_image_is_at_most_480_pixels_long_and_at_least_halved(size, factor):
    assert working_downscale(*size) == factor


def test_a_1080p_frame_is_searched_small_and_the_warp_is_in_full_size_pixels():
    import cv2

    rng = np.random.default_rng(1)
    scene = cv2.GaussianBlur((rng.random((1200, 2100)) * 255).astype(np.uint8), (9, 9), 3.0)
    motion = CameraMotion()
    motion.estimate(np.ascontiguousarray(scene[60:1140, 60:1980]))
    warp = motion.estimate(np.ascontiguousarray(scene[60:1140, 20:1940]))  # panned left: content moves 40 px right
    assert warp[0, 2] == pytest.approx(40.0, abs=2.0) and warp[1, 2] == pytest.approx(0.0, abs=2.0)
    assert np.allclose(warp[:, :2], np.eye(2), atol=0.01)


@pytest.mark.parametrize("options", [{"downscale": 0}, {"max_corners": 5}, {"flow_window": 2}, {"redetect_every": 0}])
def test_bad_settings_are_refused(options):
    with pytest.raises(ValueError):
        CameraMotion(**options)


def test_a_wholly_changed_view_is_not_taken_for_camera_motion(vtest_frames, mot17_dir):
    """Between unrelated frames (a scene cut, the next image of a folder of other scenes) RANSAC
    fits noise with a few corners; such a warp would throw every track hundreds of pixels away.
    The identity is returned instead, and real motion right after is still found."""
    import cv2

    frame = vtest_frames[0]
    crop = cv2.resize(cv2.imread(str(sorted((mot17_dir / "bounding_box_test").glob("*.jpg"))[0])), (frame.shape[1], frame.shape[0]))
    for other in (frame[:, ::-1].copy(), frame[::-1].copy(), crop):
        motion = CameraMotion()
        motion.estimate(frame)
        assert np.allclose(motion.estimate(other), np.eye(2, 3)), "no motion from unrelated frames"
    motion = CameraMotion()
    motion.estimate(frame)
    shifted = np.ascontiguousarray(np.roll(vtest_frames[0], 12, axis=1))
    assert motion.estimate(shifted)[0, 2] == pytest.approx(12.0, abs=1.0)


def test_with_no_track_to_move_there_is_no_search_and_the_next_warp_is_from_that_frame(vtest_frames):
    frame = vtest_frames[0]
    motion = CameraMotion()
    motion.estimate(frame)
    once = np.ascontiguousarray(np.roll(frame, 10, axis=1))
    twice = np.ascontiguousarray(np.roll(frame, 22, axis=1))
    assert np.allclose(motion.estimate(once, needed=False), np.eye(2, 3)), "not needed: no search"
    assert motion.estimate(twice)[0, 2] == pytest.approx(12.0, abs=1.0), "from the frame kept, not the one before"


def test_the_same_timestamp_on_every_frame_still_compensates(stand_in):
    """``Pipeline.process``'s default timestamp is 0.0: frames that share a timestamp are still
    frames, each with its own camera motion (the estimate used to be skipped after the first, as
    if the frame had been predicted already). Without time the Kalman filter stands still, so
    tracking is worse either way; the compensation must still take out most of the switches."""
    from edge_reid.tracking import Tracker

    frames, sequence, _ = stand_in
    compensated, fixed = Tracker(camera_motion=CameraMotion()), Tracker()
    with_motion, _ = _id_switches(frames, sequence, lambda image, t, d: compensated.update(d, None, 0.0, image=image))
    without, _ = _id_switches(frames, sequence, lambda image, t, d: fixed.update(d, None, 0.0))
    assert 2 * with_motion < without, (with_motion, without)


def test_a_new_frame_size_is_no_motion_even_when_both_shrink_to_the_same_working_size(vtest_frames):
    import cv2

    motion = CameraMotion()
    motion.estimate(cv2.resize(vtest_frames[0], (1440, 1080)))
    assert np.allclose(motion.estimate(cv2.resize(vtest_frames[1], (960, 720))), np.eye(2, 3))


@pytest.mark.parametrize("image", [np.zeros((48, 64, 3), np.float64), np.zeros((48, 64, 3), np.int32), np.zeros((0, 64, 3), np.uint8),
                                   np.zeros((48, 64, 4), np.uint8)], ids=["float64", "int32", "empty", "bgra"])
def test_a_frame_that_cannot_be_searched_is_refused_before_any_track_moves(image, vtest_frames):
    from edge_reid.detections import Detections
    from edge_reid.tracking import Tracker

    tracker = Tracker(camera_motion=CameraMotion())
    tracker.update(Detections.from_boxes([[100, 100, 140, 200]], [0.9]), None, 0.0, image=vtest_frames[0])
    before = tracker.tracks[0].mean.copy()
    with pytest.raises(ValueError, match="camera-motion compensation needs"):
        tracker.update(Detections.from_boxes([[104, 100, 144, 200]], [0.9]), None, 0.1, image=image)
    assert np.array_equal(tracker.tracks[0].mean, before)


def test_a_refound_gap_is_filled_along_the_camera_motion(stand_in):
    """A person hidden for 5 frames while the view sways: the gap's boxes, handed out when the
    track is re-found, follow the camera's motion (linear between the two ends in the image, they
    drifted off the person)."""
    from edge_reid.tracking.boxes import iou_matrix
    from edge_reid.detections import Detections
    from edge_reid.tracking import Tracker

    frames, sequence, _ = stand_in
    rows = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",")
    present = [set(rows[rows[:, 0] == n + 1, 1].astype(int)) for n in range(len(frames))]
    person = min(set.intersection(*present[10:40]))
    hidden = range(25, 30)
    tracker = Tracker(camera_motion=CameraMotion())
    gaps: dict[int, dict[int, np.ndarray]] = {}  # track id -> {update: interpolated box}
    for number in range(40):
        here = rows[(rows[:, 0] == number + 1) & ~((rows[:, 1] == person) & (number in hidden))]
        boxes = np.column_stack([here[:, 2], here[:, 3], here[:, 2] + here[:, 4], here[:, 3] + here[:, 5]])
        tracker.update(Detections.from_boxes(boxes, np.full(len(boxes), 0.9)), None, number / 10.0, image=frames[number])
        for track in tracker.tracks:
            gaps.setdefault(track.track_id, {}).update({p.update: p.box for p in track.past if p.kind == "interpolated"})
    filled = [boxes for boxes in gaps.values() if sorted(boxes) == list(hidden)]  # the hidden person's track
    assert len(filled) == 1, {track_id: sorted(boxes) for track_id, boxes in gaps.items() if boxes}
    gap_boxes = filled[0]
    for number in hidden:
        truth = rows[(rows[:, 0] == number + 1) & (rows[:, 1] == person)][0, 2:6]
        overlap = iou_matrix(gap_boxes[number][None], np.array([[truth[0], truth[1], truth[0] + truth[2], truth[1] + truth[3]]]))[0, 0]
        assert overlap > 0.6, (number, overlap)


def test_a_fast_pan_is_followed(vtest_frames):
    """The optical flow's pyramid follows a view that jumps 60 px sideways and 40 px down between
    two frames (a robot turning fast; a tenth of the frame's width): the smaller window
    (:data:`~edge_reid.tracking.camera_motion.FLOW_WINDOW`) keeps the reach of OpenCV's default."""
    for frame in vtest_frames[::3]:
        motion = CameraMotion()
        motion.estimate(np.ascontiguousarray(frame[100:476, 100:668]))
        warp = motion.estimate(np.ascontiguousarray(frame[140:516, 160:728]))
        assert warp[0, 2] == pytest.approx(-60.0, abs=1.5) and warp[1, 2] == pytest.approx(-40.0, abs=1.5), warp


def test_a_grey_frame_in_a_reused_buffer_is_still_compared_with_the_last_one(vtest_frames):
    """With downscale=1 a grey frame was kept by reference: a camera SDK writing every frame into one buffer
    overwrote the kept frame, and an 8-pixel pan was measured as no motion."""
    gray = cv2.cvtColor(vtest_frames[0], cv2.COLOR_BGR2GRAY)
    buffer = np.empty((376, 568), np.uint8)
    motion = CameraMotion(downscale=1)
    buffer[:] = gray[100:476, 100:668]
    motion.estimate(buffer)
    buffer[:] = gray[100:476, 108:676]  # the view 8 px to the right, written into the same buffer
    warp = motion.estimate(buffer)
    assert warp[0, 2] == pytest.approx(-8.0, abs=0.5) and warp[1, 2] == pytest.approx(0.0, abs=0.5), warp


def test_a_warp_moves_many_states_as_it_moves_each():
    """``CameraMotion.apply`` on (N, 8) states equals applying it to each (8,) state, and moves a
    state as the warp moves points: the centre fully, sizes and velocities by the rotation/scale only."""
    rng = np.random.default_rng(3)
    angle, scale = 0.1, 1.05
    warp = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 12.0], [scale * np.sin(angle), scale * np.cos(angle), -7.0]])
    means = rng.normal(100.0, 30.0, (5, 8))
    roots = rng.normal(size=(5, 8, 8))
    covariances = roots @ roots.transpose(0, 2, 1)
    moved, moved_covariances = CameraMotion.apply(warp, means, covariances)
    for mean, covariance, expected_mean, expected_covariance in zip(means, covariances, moved, moved_covariances):
        one_mean, one_covariance = CameraMotion.apply(warp, mean, covariance)
        assert np.allclose(one_mean, expected_mean) and np.allclose(one_covariance, expected_covariance)
    assert np.allclose(moved[:, :2], means[:, :2] @ warp[:, :2].T + warp[:, 2])
    assert np.allclose(moved[:, 4:6], means[:, 4:6] @ warp[:, :2].T)
    assert moved.shape == (5, 8) and moved_covariances.shape == (5, 8, 8)


@pytest.mark.parametrize(("dx", "dy"), [(200, 0), (-150, 60)])
def test_a_jump_beyond_the_pyramids_reach_is_found_from_the_views_shift(vtest_frames, dx, dy):
    """A view that jumps 200 px (over 40% of its width; a robot turning in place while the loop
    runs at a few frames a second) is beyond the optical flow's pyramid, and too few corners agree
    on a warp; phase correlation measures the view's shift and the corners are followed again
    from there (before: the identity, every track left behind)."""
    width, height = 448, 400
    for frame in vtest_frames[::4]:
        x0, y0 = 20 + max(0, -dx), 20 + max(0, -dy)
        motion = CameraMotion()
        motion.estimate(np.ascontiguousarray(frame[y0:y0 + height, x0:x0 + width]))
        warp = motion.estimate(np.ascontiguousarray(frame[y0 + dy:y0 + dy + height, x0 + dx:x0 + dx + width]))
        assert warp[0, 2] == pytest.approx(-dx, abs=1.5) and warp[1, 2] == pytest.approx(-dy, abs=1.5), warp


def test_the_views_shift_is_measured_only_when_the_flow_fails(stand_in, monkeypatch):
    """Frames the first search fits cost nothing more: phase correlation is not run for them."""
    import edge_reid.tracking.camera_motion as camera_motion

    def refuse(*args, **kwargs):
        raise AssertionError("phase correlation ran for a frame the optical flow fitted")

    frames, _, _ = stand_in
    motion = CameraMotion()
    motion.estimate(frames[0])
    monkeypatch.setattr(camera_motion.cv2, "phaseCorrelate", refuse)
    assert all(motion.estimate(frame) is not camera_motion.IDENTITY_WARP for frame in frames[1:20])


def test_corners_are_searched_every_fifth_frame_and_followed_in_between(stand_in, monkeypatch):
    """The Kanade-Lucas-Tomasi way: a frame's agreeing corners are followed into the next frame, and
    corners are searched afresh every :data:`~edge_reid.tracking.camera_motion.REDETECT_EVERY` frames
    (before: every frame); the warps stay within a pixel or two of the known motion."""
    import cv2

    from edge_reid.tracking.camera_motion import REDETECT_EVERY

    frames, _, _ = stand_in
    searches = []
    search = cv2.goodFeaturesToTrack
    monkeypatch.setattr(cv2, "goodFeaturesToTrack", lambda *args, **kwargs: searches.append(1) or search(*args, **kwargs))
    motion = CameraMotion()
    warps = [motion.estimate(frame) for frame in frames[:21]]
    assert REDETECT_EVERY == 5 and len(searches) == 4, len(searches)  # 20 warps, a search for each 5
    assert all(warp is not IDENTITY_WARP for warp in warps[1:])


def test_motion_is_found_again_right_after_a_refused_frame(vtest_frames):
    """A frame whose warp is refused (a cut to another view) keeps no corners to follow: the next
    warp, in the new view, is found from corners searched there."""
    frame = vtest_frames[0]
    other = np.ascontiguousarray(frame[::-1])
    motion = CameraMotion()
    for image in vtest_frames[:3]:
        motion.estimate(image)
    assert motion.estimate(other) is IDENTITY_WARP, "a cut is no motion"
    assert motion.estimate(np.ascontiguousarray(np.roll(other, 12, axis=1)))[0, 2] == pytest.approx(12.0, abs=1.0)


def test_corners_are_searched_afresh_when_fewer_than_half_remain(vtest_frames, monkeypatch):
    """A jump that takes most corners out of the view leaves the next fit leaning on one corner of
    the frame: the next frame searches corners afresh instead of following the few left."""
    import cv2

    width, height = 448, 400
    search = cv2.goodFeaturesToTrack
    for frame in vtest_frames[::4]:
        motion = CameraMotion()
        motion.estimate(np.ascontiguousarray(frame[20:20 + height, 20:20 + width]))
        jumped = motion.estimate(np.ascontiguousarray(frame[100:100 + height, 140:140 + width]))  # 120 px right, 80 down
        assert jumped[0, 2] == pytest.approx(-120.0, abs=1.5) and jumped[1, 2] == pytest.approx(-80.0, abs=1.5)
        searches = []
        monkeypatch.setattr(cv2, "goodFeaturesToTrack", lambda *args, **kwargs: searches.append(1) or search(*args, **kwargs))
        after = motion.estimate(np.ascontiguousarray(frame[100:100 + height, 144:144 + width]))
        monkeypatch.setattr(cv2, "goodFeaturesToTrack", search)
        assert searches == [1] and after[0, 2] == pytest.approx(-4.0, abs=1.0)
