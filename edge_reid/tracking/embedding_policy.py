"""Which detections of a frame need a ReID embedding.

The ReID model is the dominant per-frame cost, and most people in most frames are
followed without doubt by motion alone. A high-score detection is embedded when
its appearance can change a decision or is due:

- **no sure owner**: it does not overlap (IoU >= ``proximity``) exactly one predicted
  box of a track that is confirmed and tracked in the previous frame: a new person,
  a tentative track still on probation, a lost track being re-found, or two
  candidate tracks;
- **shared**: its sure owner also overlaps another detection that much;
- **overlapped**: more than ``overlap`` of its box is covered by another detection
  or by another track's predicted box: people crossing, where motion alone swaps
  identities;
- **due**: its owner's latest clean embedding is ``refresh_s`` seconds old or more,
  so every track's appearance history keeps up with the person (DeepStream's
  ``reidExtractionInterval``, in seconds).

Low-score detections are never embedded: they are matched by IoU only (ByteTrack's
second stage). Whether an embedding is *clean* (may join a track's history and the
gallery) is decided by the tracker: no other detection overlaps it.

Frames without colour (a camera in IR night mode sends grey frames in 3 equal channels) are
warned of once per tracker, here where a frame's crops are about to be embedded: the ReID model
was trained on colour, and without it different people look more alike and a person stored from
colour frames matches their own grey views weakly (docs/tracking.md, "Image quality"). Nothing is
changed for them: thresholds calibrated on greyed labelled crops made vtest's grey copy worse.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from edge_reid.defaults import REFRESH_S
from edge_reid.detections import Detections
from edge_reid.errors import EdgeReidWarning, caller_stacklevel
from edge_reid.tracking.boxes import coverage_matrix, iou_matrix
from edge_reid.tracking.track import TIME_TOLERANCE_S, TrackState, kalman_boxes
from edge_reid.thresholds import at_least
from edge_reid.tracking.tracker import Tracker

#: A frame is grey when the per-pixel differences between its channels (B - G and G - R, on every
#: :data:`GREY_SAMPLE_STEP`-th pixel of every such row) vary by less than this many levels
#: (standard deviation; a constant colour cast, as a codec's YUV -> BGR rounding leaves, is still
#: grey). Measured on every 5th frame of vtest.avi: 30.7-31.4 in colour, 3.1 or more at a tenth of the brightness;
#: the same frames made grey 0.0 through FFV1 or JPEG, 0.16-0.23 through MPEG-4 (a 1-3 level cast).
GREY_CHANNEL_STD = 1.0
#: Every this-many-th row and column is looked at (a 768x576 frame: 96x72 pixels, tens of microseconds).
GREY_SAMPLE_STEP = 8
#: Fewest pixels looked at for a frame to be judged grey (8x8: a 64x64 frame); a smaller one is not judged, nor is a
#: frame of one flat colour (its brightness varying less than :data:`GREY_CHANNEL_STD`), whose channels differ by the
#: same amount everywhere whatever the camera's mode.
GREY_MIN_SAMPLES = 64
#: The message of the warning about grey frames (an :class:`~edge_reid.errors.EdgeReidWarning`).
GREY_WARNING = (
    "the camera's frames are grey (no colour: IR night mode?); the ReID model was trained on colour, so "
    "different people look more alike and people seen in colour match their grey views weakly: expect more "
    "identity mix-ups, and enrolled people recognised less often (docs/tracking.md, \"Image quality\")"
)
_warned_grey: "weakref.WeakSet[Tracker]" = weakref.WeakSet()  # trackers whose frames were found grey


def is_grey(image: np.ndarray) -> bool:
    """Whether a (H, W, 3) uint8 BGR frame carries no colour (:data:`GREY_CHANNEL_STD`); False for any other shape,
    for frames too small to tell (:data:`GREY_MIN_SAMPLES`) and for frames of one flat colour."""
    if image.ndim != 3 or image.shape[2] != 3:
        return False
    sample = image[::GREY_SAMPLE_STEP, ::GREY_SAMPLE_STEP].astype(np.int16)
    if sample.shape[0] * sample.shape[1] < GREY_MIN_SAMPLES:  # a thumbnail or a sliver: too few pixels to tell
        return False
    if np.std(sample[..., 1]) < GREY_CHANNEL_STD:  # one flat colour (a covered lens, a test card): nothing to tell by
        return False
    return bool(np.std(sample[..., 0] - sample[..., 1]) < GREY_CHANNEL_STD
                and np.std(sample[..., 1] - sample[..., 2]) < GREY_CHANNEL_STD)


def plan_embeddings(tracker: Tracker, detections: Detections, timestamp_s: float | None, refresh_s: float = REFRESH_S,
                    image: np.ndarray | None = None) -> np.ndarray:
    """Decide which detections to embed in this frame.

    Predicts the tracker to ``timestamp_s`` (:meth:`Tracker.predict`, idempotent), then
    applies the rules of this module.

    Args:
        tracker: the tracker that will receive this frame's detections.
        detections: the frame's detections (boxes x1, y1, x2, y2 pixels, scores in [0, 1]).
        timestamp_s: the frame's time in seconds; None, as in :meth:`Tracker.update`: the time of
            this call on the tracker's stream clock (read once: ``tracker.update(..., None)`` for the
            same frame keeps it).
        refresh_s: seconds after which a track's appearance is refreshed, > 0.
        image: (H, W, 3) uint8 BGR frame, for the tracker's camera-motion compensation and to warn of grey frames (None: neither).

    Returns:
        (N,) bool: True for the detections to embed.

    Raises:
        ValueError: ``refresh_s`` is not positive, or what :meth:`Tracker.predict` raises.

    Warns:
        EdgeReidWarning: once per tracker, the first time a detection of a grey ``image``
            (:func:`is_grey`) is to be embedded (:data:`GREY_WARNING`).
    """
    if not refresh_s > 0:
        raise ValueError(f"refresh_s must be > 0 seconds, got {refresh_s}")
    tracker.predict(timestamp_s, image)
    config = tracker.config
    boxes = np.asarray(detections.boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(detections.scores, np.float64).reshape(-1)
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    valid = finite & ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
    high = valid & at_least(scores, config.high_score)
    embed = high.copy()
    if not high.any():
        return embed
    if image is not None and tracker not in _warned_grey and is_grey(image):
        _warned_grey.add(tracker)
        warnings.warn(GREY_WARNING, EdgeReidWarning, stacklevel=caller_stacklevel())
    considered = np.flatnonzero(valid & at_least(scores, config.low_score))
    candidates = np.flatnonzero(high)
    tracks = tracker.tracks
    predicted = kalman_boxes(tracks)
    sure = np.array([t.state == TrackState.TRACKED for t in tracks], bool)

    det_cover = coverage_matrix(boxes[candidates], boxes[considered])
    det_cover[candidates[:, None] == considered[None, :]] = 0.0
    overlapped = (det_cover > config.overlap).any(axis=1)
    track_iou = iou_matrix(boxes[candidates], predicted)  # (C, T)
    track_cover = coverage_matrix(boxes[candidates], predicted)
    near = track_iou >= config.proximity
    all_iou = iou_matrix(predicted, boxes[considered])  # (T, K)
    now = tracker.clock_s
    for row, index in enumerate(candidates):
        owners = np.flatnonzero(near[row])
        if overlapped[row] or owners.size != 1 or not sure[owners[0]]:
            continue
        owner = owners[0]
        others_cover = np.delete(track_cover[row], owner)
        if (others_cover > config.overlap).any():
            continue
        if ((all_iou[owner] >= config.proximity).sum()) > 1:
            continue
        last = tracks[owner].last_embedded_s
        if last is None or now - last >= refresh_s - TIME_TOLERANCE_S:  # float timestamps (0.7 - 0.2 < 0.5)
            continue
        embed[index] = False
    return embed
