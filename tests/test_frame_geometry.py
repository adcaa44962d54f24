"""Frames and boxes of unusual shapes through the real models: portrait (kiosk), panoramic (robot),
small USB-camera frames, tiny and one-pixel-thin frames, 4K; boxes at the frame's edges.

The people are vtest.avi's: each test frame is made from a real frame by cropping and resizing, so
the same people appear and the boxes of one shape can be compared with those of another."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from edge_reid.detections import Detections
from edge_reid.tracking.boxes import iou_matrix


def _scene(frame: np.ndarray, kind: str) -> np.ndarray:
    """A view of the 768x576 frame with the aspect of ``kind``: portrait 9:16, panoramic 8:3, landscape 4:3."""
    if kind == "portrait":
        return frame[:, 222:546]
    if kind == "panoramic":
        return frame[144:432]
    return frame


@pytest.mark.parametrize("input_size", [None, 640])
@pytest.mark.parametrize(
    ("kind", "size"),
    [
        ("landscape", (160, 120)),  # a cheap USB camera's frame, smaller than the detector's input
        ("portrait", (108, 192)),  # a kiosk camera mounted upright, small
        ("portrait", (1080, 1920)),
        ("panoramic", (384, 144)),  # a robot's wide view
        ("panoramic", (3840, 1440)),
        ("landscape", (3840, 2880)),  # larger than 4K
    ],
)
def test_boxes_map_back_to_the_frame_for_every_aspect(yolox_path, vtest_frames, kind, size, input_size):
    """A frame (on the smallest rectangle that holds it) and the same frame padded at the right and bottom to a
    square with the letterbox's grey (on the full square input) are seen at the same scale at the same place:
    their boxes, each mapped back to its own frame's pixels, must agree. Portrait frames are scaled by their
    height, panoramic ones by their width, small ones up and large ones down."""
    from edge_reid.detector import PAD_VALUE, PersonDetector

    fitted = PersonDetector(yolox_path, min_box_height=0, input_size=input_size)
    square_input = PersonDetector(yolox_path, min_box_height=0, input_size=input_size, rectangular=False)
    ious, counts = [], [0, 0]
    for frame in vtest_frames[::11]:
        image = cv2.resize(_scene(frame, kind), size, interpolation=cv2.INTER_AREA if size[0] < 768 else cv2.INTER_LINEAR)
        side = max(size)
        square = cv2.copyMakeBorder(image, 0, side - size[1], 0, side - size[0], cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
        found = fitted.detect(image).boxes
        padded = square_input.detect(square).boxes
        assert (found >= 0).all() and (found[:, 0::2] <= size[0]).all() and (found[:, 1::2] <= size[1]).all()
        assert (fitted.input_height, fitted.input_width) != (fitted.model_height, fitted.model_width)  # on a rectangle
        counts[0] += len(found)
        counts[1] += len(padded)
        overlap = iou_matrix(found, padded)
        rows, cols = linear_sum_assignment(-overlap)
        ious += overlap[rows, cols].tolist()
    assert counts[0] >= 3 and abs(counts[0] - counts[1]) <= 1, counts
    assert np.mean(ious) > 0.95 and np.min(ious) > 0.8, ious


@pytest.fixture(scope="module")
def detector(yolox_path):
    """This module's own detector: frames of new shapes move a detector to its full input for good, which the
    session's shared one must not carry into other tests."""
    from edge_reid.detector import PersonDetector

    with PersonDetector(yolox_path) as own:
        yield own


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (33, 17), (7, 640), (640, 7), (4000, 2), (2, 4000)])
def test_tiny_and_thin_frames_run_everywhere(detector, embedder, vtest_frames, size):
    """Frames too small or thin to hold a person find nobody, and crash nothing: the detector (upscaled to its input),
    the ReID model on a box of the whole frame, the camera-motion search and the whole pipeline."""
    from edge_reid.pipeline import Pipeline
    from edge_reid.tracking.camera_motion import CameraMotion

    frames = [cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in vtest_frames[:4]]
    height, width = frames[0].shape[:2]
    found = detector.detect(frames[0])
    assert (found.boxes[:, 0::2] <= width).all() and (found.boxes[:, 1::2] <= height).all()
    vector = embedder.embed_boxes(frames[0], np.array([[0, 0, width, height]], np.float32))
    assert vector.shape == (1, embedder.dim) and abs(np.linalg.norm(vector) - 1) < 1e-4
    motion = CameraMotion()
    for frame in frames:
        warp = motion.estimate(frame)
        assert warp.shape == (2, 3) and np.isfinite(warp).all()
    pipeline = Pipeline(embedder=embedder, detector=detector)
    for index, frame in enumerate(frames):  # boxes of a caller's detector: one over the edge, one of the whole frame
        given = Detections.from_boxes([[-5, -5, width / 2, height + 5], [0, 0, width, height]], [0.9, 0.8])
        result = pipeline.process(frame, timestamp_s=index / 10, detections=given)
        for person in result.people:
            x1, y1, x2, y2 = person.bbox
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def _pan(frame: np.ndarray, out_size: tuple[int, int], view: tuple[int, int], steps: int, step: int) -> list[np.ndarray]:
    """Frames of a camera panning right ``step`` pixels of a 3x upscaled ``frame`` per frame: views of ``view``
    (width, height) pixels of it, each resized to ``out_size`` (width, height)."""
    big = cv2.resize(frame, (frame.shape[1] * 3, frame.shape[0] * 3))
    return [
        cv2.resize(big[20:20 + view[1], 20 + step * k:20 + step * k + view[0]], out_size, interpolation=cv2.INTER_AREA)
        for k in range(steps)
    ]


@pytest.mark.parametrize(
    ("out_size", "view", "step", "tolerance"),
    [
        ((160, 120), (1200, 900), 10, 0.25),  # working image 80x60: smaller than the flow's pyramid of 15-pixel windows
        ((1080, 1920), (500, 900), 40, 1.0),  # portrait
        ((3840, 960), (1400, 350), 40, 1.0),  # panoramic
    ],
)
def test_camera_motion_on_small_portrait_and_panoramic_frames(vtest_frames, out_size, view, step, tolerance):
    """A known pan is measured on a 160x120 frame and on portrait and panoramic ones (the warp's translation, in
    frame pixels)."""
    from edge_reid.tracking.camera_motion import CameraMotion

    frames = _pan(vtest_frames[0], out_size, view, 5, step)
    expected = -step * out_size[0] / view[0]
    motion = CameraMotion()
    motion.estimate(frames[0])
    for frame in frames[1:]:
        warp = motion.estimate(frame)
        assert abs(warp[0, 2] - expected) < tolerance and abs(warp[1, 2]) < tolerance, (warp, expected)


def test_crops_of_any_aspect_are_resized_plainly_as_the_model_was_trained(embedder, vtest_frames):
    """A box's crop goes to the model as a plain resize to its 256x128 input, stretched, not letterboxed: as torchreid
    trains and tests (``Resize((256, 128))``) and boxmot crops; a box two pixels wide or tall included."""
    frame = vtest_frames[0]
    boxes = np.array([[300, 100, 302, 400], [100, 300, 600, 302], [0, 0, 768, 576], [-40, 500, 30, 700]], np.float32)
    crops = [frame[100:400, 300:302], frame[300:302, 100:600], frame, frame[500:576, 0:30]]
    spec = embedder.spec
    plain = [cv2.resize(crop, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR) for crop in crops]
    np.testing.assert_allclose(embedder.embed_boxes(frame, boxes), embedder.embed_crops(plain), atol=1e-5)
