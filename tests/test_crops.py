"""Crops: one rule from box to pixels (run, enroll and crop pools agree); crops cut from a real video."""

import re

import cv2
import numpy as np
import pytest

from edge_reid.crops import cut_person_crops, sample_step
from edge_reid.tracking.boxes import iou_matrix
from edge_reid.preprocess import box_pixels, crop_box


def test_cut_crops_from_real_video(vtest_path, detector):
    pool = cut_person_crops(vtest_path, detector, max_crops=15, every_n_frames=10, min_box_height=48)
    crops = pool.crops
    assert len(crops) == 15 and len(pool.frames) == 15 and all(f % 10 == 0 for f in pool.frames)
    assert all(c.ndim == 3 and c.shape[2] == 3 and c.shape[0] >= 48 and c.shape[0] > c.shape[1] for c in crops)


def test_a_box_covers_every_pixel_it_touches_clipped_to_the_frame():
    assert box_pixels((10.2, 20.7, 30.5, 60.01), 100, 100) == (10, 20, 31, 61)
    assert box_pixels((10.0, 20.0, 30.0, 60.0), 100, 100) == (10, 20, 30, 60)  # whole pixels stay whole
    assert box_pixels((-3.5, -0.2, 120.4, 99.9), 100, 110) == (0, 0, 110, 100)
    frame = np.arange(100 * 110 * 3, dtype=np.uint8).reshape(100, 110, 3)
    crop = crop_box(frame, (10.2, 20.7, 30.5, 60.01))
    assert crop.shape == (41, 21, 3) and np.shares_memory(crop, frame)
    for empty in ((10, 10, 10, 50), (5, 60, 20, 60), (200, 10, 300, 50)):
        with pytest.raises(ValueError, match="empty inside a 110x100 frame"):
            box_pixels(empty, 100, 110)


def test_enroll_and_run_crop_the_same_pixels(vtest_frames, detector, embedder):
    """`gallery enroll --mode detect` and `run` cut a person out of the same photo identically."""
    from edge_reid.cli.gallery_command import person_crop

    frame = vtest_frames[0]
    boxes = detector.detect(frame).boxes
    x1, y1, x2, y2 = boxes[np.argmax(boxes[:, 3] - boxes[:, 1])].astype(int)
    person = cv2.resize(frame[y1:y2, x1:x2], None, fx=3, fy=3)
    photo = np.full((480, 640, 3), 127, np.uint8)  # one person on a plain background
    photo[50 : 50 + person.shape[0], 200 : 200 + person.shape[1]] = person
    box = detector.detect(photo).boxes
    assert len(box) == 1
    left, top, right, bottom = box_pixels(box[0], *photo.shape[:2])
    assert [round(float(v)) for v in box[0]] != [left, top, right, bottom], "a box where rounding would cut other pixels"

    enrolled, reason = person_crop(photo, detector, "detect")
    assert reason is None
    np.testing.assert_array_equal(enrolled, photo[top:bottom, left:right])
    # The embeddings of the two paths are the same vectors, not just close ones.
    np.testing.assert_allclose(embedder.embed_crops([enrolled]), embedder.embed_boxes(photo, box), rtol=0, atol=1e-6)


def test_sample_step_covers_the_whole_video_at_least_a_second_apart():
    assert sample_step(795, 10.0, 500) == 10  # vtest: one frame a second, 80 samples
    assert sample_step(795, 10.0, 20) == 40  # few crops wanted: still spread over all 795 frames
    assert sample_step(90_000, 25.0, 500) == 180  # an hour at 25 fps: 500 samples over the hour
    assert sample_step(None, 30.0, 500) == 30  # a live source: one frame a second
    assert sample_step(None, None, 500) == 1 and sample_step(100, None, 500) == 1


def test_spread_crops_cover_the_video_without_repeating_a_place(vtest_path, detector, monkeypatch):
    import edge_reid.crops as crops_module

    cut_boxes = []
    cut = crops_module.crop_box

    def recording_crop_box(image, box):
        cut_boxes.append((np.asarray(box, float), image))
        return cut(image, box)

    monkeypatch.setattr(crops_module, "crop_box", recording_crop_box)
    pool = cut_person_crops(vtest_path, detector, max_crops=20)
    assert 0 < len(pool.crops) <= 20 and len(pool.frames) == len(pool.crops)
    frames = np.array(pool.frames)
    assert np.all(np.diff(frames) >= 0) and np.all(frames % 40 == 0)  # 795 frames / 20 crops: every 40th frame
    assert frames[-1] - frames[0] >= 795 // 2  # spread over the video, not its first seconds
    # Every person cut at one sample is in another place than everyone cut at the sample before.
    by_frame: dict[int, list] = {}
    for box, image in cut_boxes:
        by_frame.setdefault(id(image), []).append(box)
    samples = list(by_frame.values())
    assert len(samples) >= 10
    for before, here in zip(samples, samples[1:]):
        assert iou_matrix(np.array(here), np.array(before)).max() <= 0.5


def test_a_box_with_a_nan_or_infinite_coordinate_is_a_value_error_naming_it(embedder, vtest_frames):
    """An infinite coordinate raised OverflowError ('cannot convert float infinity to integer') from
    Embedder.embed_boxes, whose docstring promises ValueError."""
    for bad in ((10.0, 20.0, float("inf"), 60.0), (float("nan"), 20.0, 30.0, 60.0)):
        with pytest.raises(ValueError, match="has a NaN or infinite coordinate"):
            box_pixels(bad, 100, 110)
    with pytest.raises(ValueError, match=r"box 1: box \(10.0, 20.0, inf, 60.0\) has a NaN or infinite coordinate"):
        embedder.embed_boxes(vtest_frames[0], np.array([[10, 20, 30, 60], [10, 20, np.inf, 60]], np.float32))


def test_a_small_cameras_people_are_cut_down_to_the_height_asked_and_those_left_out_are_counted(tmp_path, vtest_frames):
    """A 160x120 camera's people are 16 to 32 pixels tall: ``min_box_height=16`` cuts them (the default detector's
    own 32 px dropped every one, giving an empty pool), and the default 48 px says in the pool's source how many
    it left out (a calibration pool from such a video failed with "only 0 readable crops" and no reason)."""
    video = tmp_path / "small.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for frame in vtest_frames:
        writer.write(cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA))
    writer.release()

    small = cut_person_crops(video, max_crops=50, every_n_frames=4, min_box_height=16)
    assert len(small.crops) >= 5 and all(16 <= crop.shape[0] < 48 for crop in small.crops), [c.shape for c in small.crops]

    default = cut_person_crops(video, max_crops=50, every_n_frames=4)
    assert default.crops == []
    assert re.search(r"; (\d+) boxes shorter than 48 px left out", default.source), default.source
    assert int(re.search(r"; (\d+) boxes", default.source).group(1)) >= len(small.crops)
