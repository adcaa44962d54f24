"""Image quality as cameras give it: grey frames (IR night mode) are warned of once per tracker
(edge_reid/tracking/embedding_policy.py), and benchmarks/image_quality.py's transforms and
similarity statistics do what its table says (docs/tracking.md, "Image quality")."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from edge_reid.detections import Detections
from edge_reid.errors import EdgeReidWarning
from edge_reid.tracking import Tracker
from edge_reid.tracking.embedding_policy import GREY_WARNING, is_grey, plan_embeddings
from conftest import load_benchmark_script

image_quality = load_benchmark_script("image_quality")

ONE_PERSON = Detections(np.array([[100.0, 50.0, 140.0, 170.0]], np.float32), np.array([0.9], np.float32))


def _colour_frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (240, 320, 3), dtype=np.uint8)


def _grey_frame(seed: int = 0) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(_colour_frame(seed), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _grey_warnings(tracker: Tracker, frames, detections: Detections = ONE_PERSON) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for index, frame in enumerate(frames):
            plan_embeddings(tracker, detections, index * 0.1, image=frame)
    return sum(issubclass(w.category, EdgeReidWarning) and str(w.message) == GREY_WARNING for w in caught)


def test_grey_frames_warn_once_per_tracker():
    """Three grey frames warn once (filters set to "always": the once is the tracker's, not the filter's);
    another tracker (another camera) is warned on its own."""
    frames = [_grey_frame(seed) for seed in range(3)]
    assert _grey_warnings(Tracker(), frames) == 1
    assert _grey_warnings(Tracker(), frames[:1]) == 1


def test_colour_frames_do_not_warn_even_when_dim():
    """Colour frames, bright or at a tenth of their brightness, and a dark noisy colour frame: no warning."""
    colour = _colour_frame()
    dim = np.rint(colour * 0.1).astype(np.uint8)
    noisy = image_quality.dark(colour, 0.0, np.random.default_rng(0))
    assert not any(map(is_grey, (colour, dim, noisy)))
    assert _grey_warnings(Tracker(), [colour, dim, noisy]) == 0


def test_a_codec_colour_cast_is_still_grey():
    """A grey stream decoded with a constant cast (MPEG-4's YUV -> BGR rounding left G 3 levels above B)."""
    frame = _grey_frame().astype(np.int16)
    frame[..., 1] += 3
    frame[..., 2] += 1
    assert is_grey(np.clip(frame, 0, 255).astype(np.uint8))


def test_grey_frame_without_anyone_to_embed_does_not_warn():
    """A frame with no confident detection embeds nothing (a covered lens, an empty night scene): no warning yet."""
    nobody = Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))
    weak = Detections(ONE_PERSON.boxes, np.array([0.3], np.float32))
    tracker = Tracker()
    assert _grey_warnings(tracker, [_grey_frame()], nobody) == 0
    assert _grey_warnings(tracker, [_grey_frame()], weak) == 0
    assert _grey_warnings(tracker, [_grey_frame()]) == 1  # the first person to embed


def test_pipeline_warns_on_grey_vtest_frames_only(vtest_frames, osnet_path, yolox_path):
    """The real models on vtest's first frames: the grey copy warns once, the original never."""
    from edge_reid.pipeline import Pipeline

    def count(frames) -> int:
        pipeline = Pipeline()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for index, frame in enumerate(frames):
                pipeline.process(frame, index * 0.1, index)
        return sum(str(w.message) == GREY_WARNING for w in caught)

    frames = vtest_frames[:4]
    assert count(frames) == 0
    assert count([image_quality.grey(frame, 0.0, None) for frame in frames]) == 1


def test_transforms_keep_the_frame_and_change_what_they_say():
    colour = _colour_frame()
    rng = np.random.default_rng(0)
    for name, transform in image_quality.TRANSFORMS.items():
        out = transform(colour, 0.0, rng)
        assert out.shape == colour.shape and out.dtype == np.uint8, name
    grey = image_quality.grey(colour, 0.0, rng)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    flat = np.full((8, 8, 3), 100, np.uint8)
    assert (image_quality.exposure(flat, 1.25, rng) == 140).all()  # a quarter period: +40%
    assert (image_quality.exposure(flat, 3.75, rng) == 60).all()   # three quarters: -40%
    dark = image_quality.dark(flat, 0.0, np.random.default_rng(0)).astype(np.float64)
    assert abs(dark.mean() - 25) < 1.5 and 6 < dark.std() < 10  # x0.25, sigma 8
    blurred = image_quality.blur(colour, 0.0, rng)
    assert np.abs(np.diff(blurred.astype(np.int16), axis=1)).mean() < np.abs(np.diff(colour.astype(np.int16), axis=1)).mean() / 3
    assert not np.array_equal(image_quality.jpeg15(colour, 0.0, rng), colour)


def test_similarity_stats_separate_people_and_measure_drift():
    """Two people, two crops each in different frames: same-person pairs above every different-person pair (AUC 1)."""
    a, b = np.eye(4, dtype=np.float32)[:2]
    near_a = np.array([0.8, 0.0, 0.6, 0.0], np.float32)
    near_b = np.array([0.0, 0.8, 0.0, 0.6], np.float32)
    embeddings = np.stack([a, near_a, b, near_b])
    stats = image_quality.similarity_stats(embeddings, np.array([1, 1, 2, 2]), np.array([1, 11, 1, 11]), embeddings)
    assert stats["auc"] == pytest.approx(1.0)
    assert stats["same_mean"] == pytest.approx(0.8)
    assert stats["different_mean"] == pytest.approx(0.0)
    assert stats["to_original"] == pytest.approx(1.0)
    swapped = image_quality.similarity_stats(embeddings, np.array([1, 2, 1, 2]), np.array([1, 11, 21, 31]), embeddings)
    assert swapped["auc"] < 0.5


@pytest.mark.parametrize("frame", [
    np.full((1, 1, 3), 90, np.uint8),  # a one-pixel frame: no colour to see, nothing to tell
    np.full((40, 40, 3), (30, 60, 200), np.uint8),  # too small to judge
    np.full((480, 640, 3), (200, 120, 40), np.uint8),  # one flat colour (a covered lens, a test card)
])
def test_frames_too_small_or_flat_to_tell_are_not_grey(frame):
    """A 1x1 frame and a frame of one colour have channels that differ by the same amount everywhere: they were
    taken for IR night mode (the warning fired on test_frame_geometry's tiny frames)."""
    assert not is_grey(frame)
