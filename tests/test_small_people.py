"""People too small to re-identify are skipped, counted, and a run that skips most of them says how to keep them."""

from __future__ import annotations

import cv2

from edge_reid.cli.run_command import small_people_hint
from edge_reid.detector import PersonDetector
from edge_reid.pipeline import Pipeline
from edge_reid.summary import RunSummary


def test_the_detector_counts_the_people_it_leaves_out_for_their_height(yolox_path, vtest_frames):
    small = cv2.resize(vtest_frames[0], (192, 144), interpolation=cv2.INTER_AREA)  # people ~20-30 px tall
    everyone = PersonDetector(yolox_path, min_box_height=0.0, backend="onnxruntime").detect(small)
    tall_only = PersonDetector(yolox_path, min_box_height=32.0, backend="onnxruntime").detect(small)
    short = int(((everyone.boxes[:, 3] - everyone.boxes[:, 1]) < 32.0).sum())
    assert short > 0 and everyone.too_small == 0
    assert tall_only.too_small == short and len(tall_only) == len(everyone) - short


def test_a_frame_of_small_people_reports_them_as_skipped_boxes(embedder, yolox_path, vtest_frames):
    small = cv2.resize(vtest_frames[0], (192, 144), interpolation=cv2.INTER_AREA)
    detector = PersonDetector(yolox_path, min_box_height=32.0, backend="onnxruntime")
    result = Pipeline(embedder, detector).process(small, 0.0, 0)
    assert result.detections == 0 and result.skipped_boxes == detector.detect(small).too_small > 0


def test_the_summary_hints_at_a_lower_minimum_height_only_when_most_boxes_were_skipped():
    summary = RunSummary("tiny.avi", detections=1, skipped_boxes=307, min_box_height=32.0)
    assert "--min-box-height 16" in small_people_hint(summary) and "307 boxes were skipped against 1 kept" in small_people_hint(summary)
    assert small_people_hint(RunSummary("vtest.avi", detections=2000, skipped_boxes=300, min_box_height=32.0)) == ""
    assert small_people_hint(RunSummary("x", detections=0, skipped_boxes=5, min_box_height=0.0)) == "", "nothing to lower"


def test_a_track_does_not_carry_across_images_of_another_size(embedder, vtest_frames):
    """A folder of images of different sizes: boxes of a larger image are in other pixels, so the track starts
    again at the first smaller image, and its past-frame boxes are those of the smaller images only."""
    from edge_reid.detections import Detections

    large = cv2.resize(vtest_frames[0], (1024, 768))
    small = cv2.resize(vtest_frames[0], (384, 288))
    pipeline = Pipeline(embedder, use_detector=False)
    person = Detections.from_boxes([[300, 200, 350, 300]], [0.9])
    pipeline.process(large, 0.0, 0, detections=person)
    pipeline.process(large, 0.1, 1, detections=person)
    assert len(pipeline.process(small, 0.2, 2, detections=person)) == 0, "a new track: tentative, not confirmed by the large images"
    pipeline.process(small, 0.3, 3, detections=person)
    result = pipeline.process(small, 0.4, 4, detections=person)  # its third hit confirms it
    assert len(result) == 1 and result.tracked.boxes[0, 3] == 288.0, "this frame's box is clipped to this frame"
    assert [(p.frame_index, p.bbox) for p in result.past] == [(2, (300.0, 200.0, 350.0, 288.0)), (3, (300.0, 200.0, 350.0, 288.0))]