"""Crops: one rule from box to pixels (run, enroll and crop pools agree); crops cut from a real video."""

import cv2
import numpy as np
import pytest

from edge_reid.crops import cut_person_crops, save_crops
from edge_reid.preprocess import box_pixels, crop_box


def test_cut_crops_from_real_video(vtest_path, detector, tmp_path):
    crops = cut_person_crops(vtest_path, detector, max_crops=15, every_n_frames=10, min_box_height=48)
    assert len(crops) == 15
    assert all(c.ndim == 3 and c.shape[2] == 3 and c.shape[0] >= 48 and c.shape[0] > c.shape[1] for c in crops)
    paths = save_crops(crops[:3], tmp_path / "pool")
    assert [p.name for p in paths] == ["crop_00000.jpg", "crop_00001.jpg", "crop_00002.jpg"]
    assert cv2.imread(str(paths[0])).shape == crops[0].shape


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
