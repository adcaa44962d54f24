"""Trackers side by side on the same detections: edge-reid and its peers, scored with TrackEval.

Detects once with the bundled YOLOX-Nano (the settings of ``edge-reid run``, down to the low
scores that ByteTrack-style trackers are built to use), then feeds every tracker the same boxes,
frame by frame and interleaved (so machine load falls on all of them alike), and prints one table:
HOTA, DetA, AssA, IDF1, MOTA, ID switches, frames per second of the tracker alone and with its
embedding calls, and embeddings per frame. Metrics come from TrackEval (J. Luiten et al., "HOTA",
IJCV 2021) with the MOT15 settings of the 2D MOT 2015 benchmark.

Peers are never dependencies of edge-reid; a missing one is skipped with a printed reason:

- roboflow ``trackers`` (ByteTrack, OC-SORT, BoT-SORT; motion only, no torch):
  ``pip install '.[bench]'``
- boxmot (BoT-SORT and StrongSORT with the bundled OSNet, embedded by edge-reid's own
  :class:`~edge_reid.embedder.Embedder` so every appearance tracker sees the same embeddings):
  ``pip install torch==2.13.0`` (CPU build) then ``pip install --no-deps boxmot==25.0.0`` and its
  light dependencies (docs/benchmarks.md, "Tracking"). boxmot is AGPL-3.0.

Examples::

    python benchmarks/bench_tracking.py                                  # vtest.avi vs vtest-mot
    python benchmarks/bench_tracking.py --frame-step 2 --json half-rate.json   # 5 fps stand-in
    python benchmarks/bench_tracking.py --scale 0.5                      # people half as tall
    python benchmarks/bench_tracking.py --trackers rf-bytetrack,rf-ocsort --max-frames 100
    python benchmarks/bench_tracking.py --gt /data/MOT17/train/MOT17-04-FRCNN   # frames from its img1/
    python benchmarks/bench_tracking.py --sequence tud-stadtmitte       # motion only, see --help
    python benchmarks/bench_tracking.py --source /tmp/moving/moving.avi --gt /tmp/moving/moving-mot  # moving_camera_sequence.py's stand-in
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import math
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when imported by the tests

from _common import benchmark_parser, shared_dir  # noqa: E402

from edge_reid.detections import Detections  # noqa: E402
from edge_reid.errors import EdgeReidError  # noqa: E402

#: ByteTrack's floor for the low-score detections of its second association (Y. Zhang et al.,
#: "ByteTrack: Multi-Object Tracking by Associating Every Detection Box", ECCV 2022): boxes
#: below 0.1 are discarded, boxes between 0.1 and the high threshold keep occluded people tracked.
LOW_SCORE_FLOOR = 0.1
#: ``edge-reid run``'s ``--min-box-height``: shorter boxes are dropped before tracking.
RUN_MIN_BOX_HEIGHT = 32.0
METRICS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")
SCHEMA = "edge-reid-bench-tracking/1"
REPO = Path(__file__).resolve().parents[1]


class BenchError(EdgeReidError):
    """Bad input to the benchmark: printed as one line, exit status 2 (as every :class:`EdgeReidError` here)."""


# --------------------------------------------------------------------------------------------
# Sequences: frames, timestamps and the detections every tracker is fed
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceFrame:
    """One evaluated frame.

    Attributes:
        number: 1-based frame number in the evaluated sequence (after ``--frame-step``).
        source_index: 0-based index of the frame in the source (ground-truth frame ``source_index + 1``).
        timestamp_s: time of the frame in seconds (kept as recorded, so a frame step is a lower rate).
        detections: boxes (N, 4) float32 x1, y1, x2, y2 in pixels of the frame as fed to the
            trackers (after ``--scale``), scores (N,) in [0, 1], sorted by descending score.
    """

    number: int
    source_index: int
    timestamp_s: float
    detections: Detections


@dataclass
class Sequence:
    """Detections of a whole sequence, ready to feed to trackers.

    Attributes:
        name: sequence name (the ground-truth folder's name).
        frames: the evaluated frames, in order.
        fps: effective frames per second of ``frames`` (source rate / frame step).
        scale: factor applied to the source frames; tracker boxes are divided by it for scoring.
        source: the video or image folder, or None when only external detections exist.
        frame_step: every ``frame_step``-th source frame is used.
        settings: how the detections were made (JSON-ready).
    """

    name: str
    frames: list[SequenceFrame]
    fps: float
    scale: float
    source: str | None
    frame_step: int
    settings: dict = field(default_factory=dict)

    def conditions(self) -> str:
        """The conditions of the frames in words, for the tables' headers: frame step, scale, a detector input size asked for."""
        size = self.settings.get("detector_size")
        return f"frame step {self.frame_step}, scale {self.scale:g}" + (f", detector input {size} px long side" if size else "")


@dataclass(frozen=True)
class GroundTruth:
    """A MOTChallenge sequence folder: ``seqinfo.ini``, ``gt/gt.txt`` and maybe the frames in ``img1/``.

    Attributes:
        info: its :class:`edge_reid.motchallenge.SequenceInfo` (name, frame rate, length).
        rows: (M, 10) float64 ground-truth rows ``frame, id, left, top, width, height, conf, ...``, frame 1-based.
        image_folder: ``img1/`` when it exists (the sequence's frames), else None.
    """

    info: object
    rows: np.ndarray
    image_folder: Path | None

    @property
    def folder(self) -> Path:
        return Path(self.info.folder)

    @property
    def length(self) -> int:
        return int(self.info.length)

    @property
    def frame_rate(self) -> float | None:
        return float(self.info.frame_rate) or None


def load_ground_truth(folder: str | Path) -> GroundTruth:
    """Read a MOTChallenge sequence folder with :mod:`edge_reid.motchallenge`.

    Raises:
        DataError: the folder, ``seqinfo.ini`` or ``gt/gt.txt`` is missing or malformed.
    """
    from edge_reid.motchallenge import read_rows, read_sequence_info

    info = read_sequence_info(folder)
    rows = read_rows(info.gt_path, "ground truth")
    image_folder = Path(folder) / "img1"
    return GroundTruth(info, rows, image_folder if image_folder.is_dir() else None)


def read_mot_detections(path: str | Path) -> dict[int, Detections]:
    """MOTChallenge detections (``det/det.txt`` rows, or a tracker's rows with ids ignored) by 1-based frame.

    Scores below 0 (files without confidences write -1) become 1.0, and scores above 1 (MOT16 / MOT17-DPM's raw
    detector scores, e.g. 2.31) are clipped to 1.0: a confidence in [0, 1], above every threshold as before.

    Raises:
        DataError: the file is missing or not MOTChallenge rows.
    """
    from edge_reid.motchallenge import read_rows

    rows = read_rows(path, "detections file")
    by_frame: dict[int, Detections] = {}
    for frame in np.unique(rows[:, 0]).astype(int):
        chosen = rows[rows[:, 0] == frame]
        boxes = np.concatenate((chosen[:, 2:4], chosen[:, 2:4] + chosen[:, 4:6]), axis=1)
        scores = np.minimum(np.where(chosen[:, 6] < 0, 1.0, chosen[:, 6]), 1.0)
        order = np.argsort(-scores, kind="stable")
        by_frame[int(frame)] = Detections(boxes[order].astype(np.float32), scores[order].astype(np.float32))
    return by_frame


def scaled(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale`` (OpenCV area interpolation when shrinking); itself at 1.0."""
    if scale == 1.0:
        return image
    import cv2

    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)


def iter_source_frames(source: str, frame_step: int, scale: float, max_frames: int | None, folder_fps: float) -> Iterator:
    """Frames of ``source`` kept by ``frame_step`` (at most ``max_frames`` of them), scaled.

    Yields:
        :class:`edge_reid.sources.Frame` with the image scaled and the source's index and timestamp.
    """
    from edge_reid.sources import Frame, open_source

    kept = 0
    source_frames = open_source(source, fps=folder_fps if Path(source).is_dir() else None)
    try:
        for frame in source_frames:
            if frame.index % frame_step:
                continue
            if max_frames is not None and kept >= max_frames:
                return
            kept += 1
            yield Frame(frame.index, frame.timestamp_s, scaled(frame.image, scale))
    finally:
        source_frames.close()


def _file_key(path: str | Path) -> list:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        return [str(path.resolve()), len(files), sum(p.stat().st_size for p in files), max((p.stat().st_mtime_ns for p in files), default=0)]
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def default_cache_dir() -> Path:
    """``bench_tracking/`` in edge-reid's cache folder: ``$EDGE_REID_CACHE_DIR``, else ``$XDG_CACHE_HOME/edge-reid``, else
    ``~/.cache/edge-reid``, else (no home: :func:`edge_reid.cache_folder.cache_dir`) the temporary folder's ``edge-reid/``."""
    import tempfile

    from edge_reid.cache_folder import cache_dir

    return (cache_dir() or Path(tempfile.gettempdir()) / "edge-reid") / "bench_tracking"


def detect_sequence(
    source: str,
    name: str,
    frame_step: int = 1,
    scale: float = 1.0,
    max_frames: int | None = None,
    detection_threshold: float = LOW_SCORE_FLOOR,
    min_box_height: float = RUN_MIN_BOX_HEIGHT,
    detector_model: str | None = None,
    detector_size: int | None = None,
    folder_fps: float = 10.0,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Sequence:
    """Detect people once in every kept frame of ``source`` with :class:`edge_reid.detector.PersonDetector`.

    Detections are cached in ``cache_dir`` (None: no cache) under a key made of the source file
    (path, size, modification time), the detector model's sha256 and every setting, so the sensitivity
    harness and reruns skip the detector. The detector always runs down to ``LOW_SCORE_FLOOR``
    (or lower when asked) and a higher ``detection_threshold`` is applied afterwards: greedy NMS
    visits boxes by descending score, so the boxes above any threshold are the same either way.

    Args:
        source: video file or image folder (what :func:`edge_reid.sources.open_source` takes; no live sources).
        name: the sequence's name (for the tables).
        frame_step: keep every ``frame_step``-th frame (timestamps kept: a lower frame rate).
        scale: resize factor for the frames before detection (0.5: people half as tall).
        max_frames: stop after this many kept frames.
        detection_threshold: detections below this score in [0, 1] are not fed to the trackers.
        min_box_height: boxes shorter than this many pixels (of the scaled frame) are dropped.
        detector_model: YOLOX ONNX file (None: the bundled YOLOX-Nano).
        detector_size: long side of the detector's input in pixels (None: the model's own; as ``edge-reid run --detector-size``).
        folder_fps: frame rate of an image folder (timestamps).
        cache_dir: where detections are cached, or None.
        progress: show a progress bar on stderr.

    Raises:
        BenchError: the source cannot be opened.
    """
    from edge_reid.detector import PersonDetector, check_input_size
    from edge_reid.errors import EdgeReidError
    from edge_reid.sources import open_source

    if detector_size is not None:
        try:
            detector_size = check_input_size(detector_size)
        except ValueError as error:
            raise BenchError(f"--detector-size: {error}") from None
    try:
        probe = open_source(source, fps=folder_fps if Path(source).is_dir() else None)
    except EdgeReidError as error:
        raise BenchError(str(error)) from None
    source_fps, total = probe.fps or folder_fps, probe.total_frames
    probe.close()
    detector_floor = min(detection_threshold, LOW_SCORE_FLOOR)
    settings = {
        "detector": str(detector_model or "bundled yolox_nano.onnx"),
        "detection_threshold": detector_floor,
        "nms_iou": 0.45,
        "min_box_height": min_box_height,
        "rectangular_input": True,  # PersonDetector's default since 2026-11-30: part of the cache key
        **({"detector_size": detector_size} if detector_size is not None else {}),  # absent at the default: earlier caches stay valid
        "frame_step": frame_step,
        "scale": scale,
        "max_frames": max_frames,
        "source_fps": source_fps,
    }
    cache_file = None
    if cache_dir is not None:
        from edge_reid.assets import DEFAULT_DETECTOR

        from edge_reid.spec import file_sha256

        model_key = file_sha256(Path(detector_model or DEFAULT_DETECTOR))  # the same model wherever it lies
        key = json.dumps([_file_key(source), model_key, settings], sort_keys=True)
        cache_file = Path(cache_dir) / f"{Path(source).stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
        if cache_file.is_file():
            sequence = _load_sequence(cache_file, name, source, source_fps / frame_step, scale, frame_step, settings)
            return _above(sequence, detection_threshold)

    try:
        detector = PersonDetector(detector_model, score_threshold=detector_floor, min_box_height=min_box_height, input_size=detector_size)
    except EdgeReidError as error:
        raise BenchError(str(error)) from None
    frames: list[SequenceFrame] = []
    expected = None if total is None else -(-total // frame_step)
    if max_frames is not None:
        expected = max_frames if expected is None else min(expected, max_frames)
    with _progress_bar(progress, "detecting", expected) as advance:
        for frame in iter_source_frames(source, frame_step, scale, max_frames, folder_fps):
            frames.append(SequenceFrame(len(frames) + 1, frame.index, frame.timestamp_s, detector.detect(frame.image)))
            advance()
    if not frames:
        raise BenchError(f"{source}: no frames could be read")
    if cache_file is not None:
        _save_sequence(cache_file, frames)
    return _above(Sequence(name, frames, source_fps / frame_step, scale, source, frame_step, settings), detection_threshold)


def _above(sequence: Sequence, threshold: float) -> Sequence:
    """``sequence`` with only the detections scoring at least ``threshold``."""
    sequence.settings["fed_score_floor"] = threshold
    if threshold <= sequence.settings["detection_threshold"]:
        return sequence
    frames = []
    for frame in sequence.frames:
        keep = frame.detections.scores >= threshold
        frames.append(SequenceFrame(frame.number, frame.source_index, frame.timestamp_s, Detections(frame.detections.boxes[keep], frame.detections.scores[keep])))
    sequence.frames = frames
    return sequence


def _save_sequence(path: Path, frames: list[SequenceFrame]) -> None:
    from edge_reid.atomic import atomic_write_bytes

    counts = np.array([len(f.detections) for f in frames], np.int64)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        source_index=np.array([f.source_index for f in frames], np.int64),
        timestamp_s=np.array([f.timestamp_s for f in frames], np.float64),
        counts=counts,
        boxes=np.concatenate([f.detections.boxes for f in frames]).reshape(-1, 4),
        scores=np.concatenate([f.detections.scores for f in frames]).reshape(-1),
    )
    atomic_write_bytes(path, buffer.getvalue(), what="detection cache")


def _load_sequence(path: Path, name, source, fps, scale, frame_step, settings) -> Sequence:
    with np.load(path) as data:
        offsets = np.concatenate(([0], np.cumsum(data["counts"])))
        frames = [
            SequenceFrame(
                number + 1,
                int(index),
                float(stamp),
                Detections(data["boxes"][offsets[number]:offsets[number + 1]], data["scores"][offsets[number]:offsets[number + 1]]),
            )
            for number, (index, stamp) in enumerate(zip(data["source_index"], data["timestamp_s"]))
        ]
    return Sequence(name, frames, fps, scale, source, frame_step, dict(settings, cached=str(path)))


def sequence_from_detections(
    detections_file: str | Path, ground_truth: GroundTruth, fps: float, frame_step: int = 1, max_frames: int | None = None
) -> Sequence:
    """A :class:`Sequence` from a MOTChallenge detections file instead of the detector (no frames).

    Frames without a row get no detections; timestamps are ``(frame - 1) / fps``.
    """
    by_frame = read_mot_detections(detections_file)
    frames: list[SequenceFrame] = []
    for source_index in range(0, ground_truth.length, frame_step):
        if max_frames is not None and len(frames) >= max_frames:
            break
        detections = by_frame.get(source_index + 1, Detections.empty())
        frames.append(SequenceFrame(len(frames) + 1, source_index, source_index / fps, detections))
    settings = {"detections": str(detections_file), "frame_step": frame_step, "max_frames": max_frames, "source_fps": fps}
    return Sequence(ground_truth.folder.name, frames, fps / frame_step, 1.0, None, frame_step, settings)


# --------------------------------------------------------------------------------------------
# Trackers under test
# --------------------------------------------------------------------------------------------


class CountingEmbedder:
    """Wraps an :class:`edge_reid.embedder.Embedder`: counts the crops it embeds and the seconds it takes.

    Forwards every attribute to the wrapped embedder, so it can stand where an ``Embedder`` is expected.
    Also has boxmot's ReID backend method ``get_features(xyxy, image)``.
    """

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self.count = 0
        self.seconds = 0.0

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def embed_boxes(self, frame: np.ndarray, boxes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """:meth:`Embedder.embed_boxes`, counted and timed."""
        start = time.perf_counter()
        vectors = self._embedder.embed_boxes(frame, boxes, out=out)
        self.seconds += time.perf_counter() - start
        self.count += len(vectors)
        return vectors

    def get_features(self, xyxy: np.ndarray, image: np.ndarray) -> np.ndarray:
        """boxmot's ReID interface: (N, 4) x1, y1, x2, y2 boxes of a BGR frame -> (N, D) float32."""
        from edge_reid.detections import sanitize_boxes

        boxes, keep = sanitize_boxes(np.asarray(xyxy, np.float32), image.shape[0], image.shape[1])
        vectors = np.zeros((len(boxes), self._embedder.dim), np.float32)
        vectors[:, 0] = 1.0  # a box wholly outside the frame: a unit vector rather than a crash
        if keep.any():
            vectors[keep] = self.embed_boxes(image, boxes[keep])
        return vectors


class BenchTracker:
    """One tracker under test: takes a frame's detections, returns confirmed tracks.

    Subclasses set ``name``, ``label`` (for the table), ``needs_image`` and ``embeds``, and
    implement :meth:`update`. The harness times :meth:`update`; trackers that embed report the
    part of that time spent embedding in ``embedder.seconds``.
    """

    name = ""
    label = ""
    needs_image = False
    embeds = False

    def __init__(self) -> None:
        self.embedder: CountingEmbedder | None = None

    def update(self, frame: SequenceFrame, image: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Track one frame.

        Args:
            frame: the frame's timestamp and detections (pixels of the fed frame).
            image: (H, W, 3) uint8 BGR frame when ``needs_image``, else None.

        Returns:
            ``(boxes, ids)``: (K, 4) float x1, y1, x2, y2 pixels and (K,) int ids >= 1 of the
            tracks reported in this frame.
        """
        raise NotImplementedError

    def take_past(self) -> list[tuple[int, int, np.ndarray]]:
        """Boxes of earlier frames learned in the latest :meth:`update` (past-frame output), as
        ``(source frame index, id, (4,) x1, y1, x2, y2 pixels)``; trackers without such output return []."""
        return []


def _no_tracks() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float32), np.zeros((0,), np.int64)


class RoboflowTracker(BenchTracker):
    """A roboflow ``trackers`` tracker fed ``supervision.Detections`` and the frame's timestamp."""

    def __init__(self, name: str, label: str, factory: Callable, needs_image: bool = False) -> None:
        super().__init__()
        self.name, self.label, self.needs_image = name, label, needs_image
        self.tracker = factory()

    def update(self, frame, image):
        import supervision as sv

        detections = sv.Detections(
            xyxy=frame.detections.boxes.astype(np.float32).reshape(-1, 4),
            confidence=frame.detections.scores.astype(np.float32),
            class_id=np.zeros(len(frame.detections), int),
        )
        extra = {"frame": image} if self.needs_image else {}
        tracked = self.tracker.update(detections, timestamp=frame.timestamp_s, **extra)
        confirmed = tracked.tracker_id >= 0
        return tracked.xyxy[confirmed], tracked.tracker_id[confirmed].astype(np.int64) + 1


class BoxmotTracker(BenchTracker):
    """A boxmot tracker fed (N, 6) ``x1, y1, x2, y2, score, class`` rows, embedding through edge-reid's Embedder."""

    needs_image = True
    embeds = True

    def __init__(self, name: str, label: str, factory: Callable, embedder: CountingEmbedder) -> None:
        super().__init__()
        self.name, self.label, self.embedder = name, label, embedder
        self.tracker = factory(embedder)

    def update(self, frame, image):
        rows = np.concatenate(
            (frame.detections.boxes, frame.detections.scores[:, None], np.zeros((len(frame.detections), 1), np.float32)), axis=1
        ).astype(np.float32)
        out = np.asarray(self.tracker.update(rows, image))
        if out.size == 0:
            return _no_tracks()
        return out[:, :4], out[:, 4].astype(np.int64)


class EdgeReidTracker(BenchTracker):
    """edge-reid's :class:`~edge_reid.pipeline.Pipeline` as ``edge-reid run`` drives it (tracker, embedding
    plan, identities), fed the sequence's detections; rows as ``edge-reid run --mot`` writes them:
    the identity id of each tracked person who has one, and the past-frame rows
    (:attr:`~edge_reid.results.FrameResult.past`) under their own frames.

    Args:
        embedder: the shared counting embedder.
        tracker_overrides: keyword overrides of :class:`edge_reid.tracking.TrackerConfig`'s defaults.
        pipeline_overrides: keyword overrides of the Pipeline's own constants (``threshold``,
            ``reid_threshold``, ``unnamed_reid_threshold``, ``refresh_s``, ``past_frames``).
        camera_motion: compensate camera motion, as ``edge-reid run`` does by default (False:
            ``--no-camera-motion``).
    """

    name = "edge-reid"
    label = "edge-reid (Pipeline: tracker + identities)"
    needs_image = True
    embeds = True

    def __init__(
        self, embedder: CountingEmbedder, tracker_overrides: dict | None = None, pipeline_overrides: dict | None = None,
        camera_motion: bool = True,
    ) -> None:
        super().__init__()
        from edge_reid.pipeline import Pipeline
        from edge_reid.tracking import CameraMotion, Tracker, TrackerConfig

        self.embedder = embedder
        tracker = Tracker(TrackerConfig(**(tracker_overrides or {})), camera_motion=CameraMotion() if camera_motion else None)
        self.pipeline = Pipeline(
            embedder, use_detector=False, min_box_height=RUN_MIN_BOX_HEIGHT, tracker=tracker, **(pipeline_overrides or {})
        )
        self._past: list = []

    def update(self, frame, image):
        result = self.pipeline.process(image, frame.timestamp_s, frame.source_index, detections=frame.detections)
        identity_ids = np.asarray(result.identities.identity_ids, np.int64)
        known = identity_ids >= 1
        self._past = [(p.frame_index, p.identity_id, np.asarray(p.bbox)) for p in result.past if p.identity_id >= 1]
        return result.tracked.boxes[known], identity_ids[known]

    def take_past(self):
        past, self._past = self._past, []
        return past


class LiveEdgeReidTracker(EdgeReidTracker):
    """:class:`EdgeReidTracker` without past-frame rows: only what each frame reports for itself."""

    name = "edge-reid-live"
    label = "edge-reid, current-frame rows only (no past-frame rows)"

    def __init__(self, embedder: CountingEmbedder) -> None:
        super().__init__(embedder, pipeline_overrides={"past_frames": False})


class FixedCameraEdgeReidTracker(EdgeReidTracker):
    """:class:`EdgeReidTracker` without camera-motion compensation, as ``edge-reid run --no-camera-motion``."""

    name = "edge-reid-fixed"
    label = "edge-reid --no-camera-motion"

    def __init__(self, embedder: CountingEmbedder) -> None:
        super().__init__(embedder, camera_motion=False)


@dataclass(frozen=True)
class TrackerChoice:
    """A tracker the benchmark knows: how to build it, or why it cannot run here.

    Attributes:
        name: the ``--trackers`` name.
        label: what the table calls it.
        build: ``build(context) -> BenchTracker``, where context has ``fps`` and ``embedder()``.
        missing: None when it can run, else the reason it is skipped.
        embeds: True when it embeds people (needs frames).
    """

    name: str
    label: str
    build: Callable
    missing: Callable[[], str | None]
    embeds: bool = False


def _missing_module(module: str, install: str) -> Callable[[], str | None]:
    def check() -> str | None:
        return None if importlib.util.find_spec(module) is not None else f"{module} is not installed ({install})"

    return check


def _always_available() -> str | None:
    return None


def _boxmot_missing() -> str | None:
    for module in ("boxmot", "torch"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install torch==2.13.0; pip install --no-deps boxmot==25.0.0, see docs/benchmarks.md)"
    return None


def _roboflow(name, label, class_name, needs_image=False, **options) -> Callable:
    def build(context) -> BenchTracker:
        import trackers

        cls = getattr(trackers, class_name)
        return RoboflowTracker(name, label, lambda: cls(frame_rate=context.fps, **options), needs_image=needs_image)

    return build


def _boxmot(name, label, class_name, options: Callable) -> Callable:
    def build(context) -> BenchTracker:
        import logging

        import boxmot

        cls = getattr(boxmot, class_name)

        def quiet_build(reid):
            logging.disable(logging.INFO)  # boxmot's trackers log their settings at INFO when built
            try:
                return cls(reid_model=reid, **options(context))
            finally:
                logging.disable(logging.NOTSET)

        return BoxmotTracker(name, label, quiet_build, context.embedder())

    return build


def tracker_choices() -> dict[str, TrackerChoice]:
    """Every tracker the benchmark knows, by ``--trackers`` name, in table order.

    Peers run with their published defaults; only the frame rate is set to the sequence's, where
    the tracker takes one (roboflow ``trackers`` also get each frame's timestamp).
    """
    rf_install = "pip install '.[bench]'"
    choices = [
        TrackerChoice(
            "edge-reid", EdgeReidTracker.label, lambda context: EdgeReidTracker(context.embedder()), _always_available, embeds=True
        ),
        TrackerChoice(
            "edge-reid-live", LiveEdgeReidTracker.label, lambda context: LiveEdgeReidTracker(context.embedder()),
            _always_available, embeds=True,
        ),
        TrackerChoice(
            "edge-reid-fixed", FixedCameraEdgeReidTracker.label, lambda context: FixedCameraEdgeReidTracker(context.embedder()),
            _always_available, embeds=True,
        ),
        TrackerChoice(
            "rf-bytetrack", "ByteTrack (trackers)", _roboflow("rf-bytetrack", "ByteTrack (trackers)", "ByteTrackTracker"),
            _missing_module("trackers", rf_install),
        ),
        TrackerChoice(
            "rf-ocsort", "OC-SORT (trackers)", _roboflow("rf-ocsort", "OC-SORT (trackers)", "OCSORTTracker"),
            _missing_module("trackers", rf_install),
        ),
        TrackerChoice(
            "rf-botsort", "BoT-SORT (trackers)", _roboflow("rf-botsort", "BoT-SORT (trackers)", "BoTSORTTracker", needs_image=True),
            _missing_module("trackers", rf_install),
        ),
        TrackerChoice(
            "boxmot-botsort", "BoT-SORT + OSNet (boxmot)",
            _boxmot("boxmot-botsort", "BoT-SORT + OSNet (boxmot)", "BotSort", lambda c: {"frame_rate": max(1, round(c.fps))}),
            _boxmot_missing, embeds=True,
        ),
        TrackerChoice(
            "boxmot-strongsort", "StrongSORT + OSNet (boxmot)",
            _boxmot("boxmot-strongsort", "StrongSORT + OSNet (boxmot)", "StrongSort", lambda c: {}),
            _boxmot_missing, embeds=True,
        ),
    ]
    return {choice.name: choice for choice in choices}


class BuildContext:
    """What trackers are built from: the sequence's frame rate and one shared, counting embedder."""

    def __init__(self, fps: float, reid_model: str | None = None) -> None:
        self.fps = float(fps)
        self.reid_model = reid_model
        self._embedder = None

    def model(self):
        """The one :class:`~edge_reid.embedder.Embedder` (bundled OSNet unless ``reid_model``) all trackers share."""
        if self._embedder is None:
            from edge_reid.embedder import Embedder

            self._embedder = Embedder(self.reid_model)
        return self._embedder

    def embedder(self) -> CountingEmbedder:
        """A new counter around :meth:`model`, one per tracker."""
        return CountingEmbedder(self.model())


# --------------------------------------------------------------------------------------------
# Running and scoring
# --------------------------------------------------------------------------------------------


@dataclass
class TrackerRun:
    """What one tracker produced on one sequence.

    Attributes:
        name, label: the tracker.
        rows: (M, 7) float64 MOTChallenge rows ``frame, id, left, top, width, height, score``
            in pixels of the source frames (scale undone), frame numbers of the evaluated sequence.
        seconds: total seconds spent in the tracker's update calls (embedding included).
        embed_seconds: of which embedding (0 for motion-only trackers).
        embeddings: crops embedded.
        frames: frames fed.
        skipped: None, or why the tracker did not run.
    """

    name: str
    label: str
    rows: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))
    seconds: float = 0.0
    embed_seconds: float = 0.0
    embeddings: int = 0
    frames: int = 0
    skipped: str | None = None
    embeds: bool = False

    def speed(self) -> dict:
        """Frames per second of the tracker alone and with its embedding calls, embeddings per frame, ms per frame."""
        tracker_seconds = max(self.seconds - self.embed_seconds, 1e-9)
        return {
            "fps_tracker": self.frames / tracker_seconds if self.frames else None,
            "fps_with_embedding": self.frames / max(self.seconds, 1e-9) if self.frames else None,
            "ms_per_frame_tracker": 1000.0 * tracker_seconds / max(self.frames, 1),
            "ms_per_frame_embedding": 1000.0 * self.embed_seconds / max(self.frames, 1),
            "embeddings_per_frame": self.embeddings / max(self.frames, 1) if self.embeds else None,
        }


def run_trackers(
    sequence: Sequence,
    trackers: list[BenchTracker],
    progress: bool = True,
) -> list[TrackerRun]:
    """Feed every tracker the sequence frame by frame, interleaved, timing each update call.

    Frames are decoded once per frame (only when a tracker uses them) and not timed. A sequence
    without frames (external detections) gives ``image=None`` to every tracker: trackers that
    embed must not be among them (:func:`build_trackers` skips them); BoT-SORT then runs without
    camera-motion compensation.

    Raises:
        BenchError: a tracker that embeds was given a sequence without frames.
    """
    runs = [TrackerRun(t.name, t.label, embeds=t.embeds) for t in trackers]
    rows: list[list] = [[] for _ in trackers]
    number_of = {frame.source_index: frame.number for frame in sequence.frames}
    if sequence.source is None and any(t.embeds for t in trackers):
        raise BenchError("trackers that embed people need frames, but the sequence has only detections: give --source")
    need_images = sequence.source is not None and any(t.needs_image for t in trackers)
    images = (
        iter_source_frames(sequence.source, sequence.frame_step, sequence.scale, len(sequence.frames), sequence.settings.get("source_fps", sequence.fps))
        if need_images
        else None
    )
    with _progress_bar(progress, "tracking", len(sequence.frames)) as advance, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peers warn about unused frames and timing corner cases
        for frame in sequence.frames:
            image = None
            if images is not None:
                decoded = next(images, None)
                if decoded is None or decoded.index != frame.source_index:
                    raise BenchError(f"{sequence.source}: frame {frame.source_index} could not be read again (the source changed?)")
                image = decoded.image
            for tracker, run, tracker_rows in zip(trackers, runs, rows):
                embedded_before = (tracker.embedder.count, tracker.embedder.seconds) if tracker.embedder else (0, 0.0)
                start = time.perf_counter()
                boxes, ids = tracker.update(frame, image if tracker.needs_image else None)
                run.seconds += time.perf_counter() - start
                if tracker.embedder is not None:
                    run.embeddings += tracker.embedder.count - embedded_before[0]
                    run.embed_seconds += tracker.embedder.seconds - embedded_before[1]
                run.frames += 1
                boxes = np.asarray(boxes, np.float64).reshape(-1, 4) / sequence.scale
                for box, track_id in zip(boxes, np.asarray(ids).reshape(-1)):
                    tracker_rows.append([frame.number, int(track_id), box[0], box[1], box[2] - box[0], box[3] - box[1], 1.0])
                for source_index, track_id, box in tracker.take_past():  # rows of earlier frames, learned now
                    box = np.asarray(box, np.float64) / sequence.scale
                    tracker_rows.append([number_of[source_index], int(track_id), box[0], box[1], box[2] - box[0], box[3] - box[1], 1.0])
            advance()
    if images is not None:
        images.close()
    for run, tracker_rows in zip(runs, rows):
        run.rows = np.asarray(tracker_rows, np.float64).reshape(-1, 7)
    return runs


def evaluated_ground_truth(ground_truth: GroundTruth, sequence: Sequence) -> np.ndarray:
    """The ground-truth rows of the evaluated frames, renumbered as the sequence's frames (1..M)."""
    numbers = {frame.source_index + 1: frame.number for frame in sequence.frames}
    rows = ground_truth.rows[np.isin(ground_truth.rows[:, 0].astype(int), list(numbers))].copy()
    rows[:, 0] = [numbers[int(f)] for f in rows[:, 0]]
    return rows


def score(runs: list[TrackerRun], ground_truth: GroundTruth, sequence: Sequence) -> dict[str, dict[str, float]]:
    """HOTA, DetA, AssA, IDF1, MOTA (percent) and ID switches (count) of each run that ran.

    Computed by :func:`edge_reid.evaluation.mot.evaluate_mot` (TrackEval, MOT15 settings: ground-truth
    rows with ``conf`` 0 ignored, no distractor-class preprocessing), on the evaluated frames only:
    the ground truth is cut to the frames kept by ``--frame-step`` and ``--max-frames``, renumbered 1..M.

    Raises:
        MissingDependencyError: TrackEval is not installed.
        DataError: a run's rows are not valid MOTChallenge rows.
    """
    from edge_reid.evaluation.mot import evaluate_mot
    from edge_reid.mot_writer import write_rows

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        folder = Path(tmp) / ground_truth.folder.name
        (folder / "gt").mkdir(parents=True)
        (folder / "seqinfo.ini").write_text(
            f"[Sequence]\nname={ground_truth.info.name}\nframeRate={sequence.fps:g}\nseqLength={len(sequence.frames)}\n"
        )
        write_rows(folder / "gt" / "gt.txt", evaluated_ground_truth(ground_truth, sequence))
        for run in runs:
            if run.skipped is not None:
                continue
            metrics = evaluate_mot(run.rows, folder)
            results[run.name] = {
                "HOTA": metrics.hota, "DetA": metrics.deta, "AssA": metrics.assa,
                "IDF1": metrics.idf1, "MOTA": metrics.mota, "IDSW": float(metrics.id_switches),
            }
    return results


@contextlib.contextmanager
def _progress_bar(enabled: bool, what: str, total: int | None):
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(f"{what:>9}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def peer_versions() -> dict[str, str | None]:
    """Installed versions of the peers and of TrackEval (None: not installed)."""
    versions = {}
    for package in ("trackers", "boxmot", "torch", "trackeval", "supervision"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def report(sequence: Sequence, runs: list[TrackerRun], metrics: dict[str, dict[str, float]]) -> dict:
    """The benchmark's JSON document (schema ``edge-reid-bench-tracking/1``)."""
    from edge_reid.bench.environment import environment

    detections = sum(len(f.detections) for f in sequence.frames)
    return {
        "schema": SCHEMA,
        "sequence": {
            "name": sequence.name,
            "source": sequence.source,
            "frames": len(sequence.frames),
            "fps": sequence.fps,
            "frame_step": sequence.frame_step,
            "scale": sequence.scale,
            "detections_per_frame": detections / max(len(sequence.frames), 1),
            "settings": sequence.settings,
        },
        "trackers": [
            {
                "name": run.name,
                "label": run.label,
                "status": "skipped" if run.skipped else "ok",
                "reason": run.skipped,
                "metrics": metrics.get(run.name),
                **({} if run.skipped else run.speed()),
            }
            for run in runs
        ],
        "peers": peer_versions(),
        "environment": environment(),
    }


def format_table(document: dict) -> str:
    """The Markdown table of a :func:`report` document, plus one line per skipped tracker."""
    header = "| tracker | HOTA | DetA | AssA | IDF1 | MOTA | ID sw. | fps tracker | fps with embedding | embeddings/frame |"
    lines = [header, "|---|" + "---:|" * 9]
    skipped = []
    for entry in document["trackers"]:
        if entry["status"] != "ok":
            skipped.append(f"- {entry['label']}: skipped, {entry['reason']}")
            lines.append(f"| {entry['label']} | " + " | ".join(["n/a"] * 9) + " |")
            continue
        m = entry["metrics"] or {}
        values = [f"{m[key]:.1f}" if key != "IDSW" else f"{m[key]:.0f}" for key in METRICS] if m else ["-"] * 6
        embeds = entry["embeddings_per_frame"] is not None
        values += [
            f"{entry['fps_tracker']:.0f}",
            f"{entry['fps_with_embedding']:.1f}" if embeds else "-",
            f"{entry['embeddings_per_frame']:.2f}" if embeds else "-",
        ]
        lines.append(f"| {entry['label']} | " + " | ".join(values) + " |")
    return "\n".join(lines + ([""] + skipped if skipped else []))


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def number_setting(item: str) -> tuple[str, float]:
    """One ``--set NAME=VALUE`` item as (name, value).

    Raises:
        BenchError: the value is not a number.
    """
    name, _, text = item.partition("=")
    try:
        return name, float(text)
    except ValueError:
        raise BenchError(f"--set {item}: {text!r} is not a number") from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _scale(text: str) -> float:
    value = float(text)
    if not (0.05 <= value <= 4.0) or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be in [0.05, 4], got {text}")
    return value


def add_sequence_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the sequence, its detections and the output (shared with tracking_sensitivity.py)."""
    parser.add_argument("--source", help="video file or image folder (default: data/vtest.avi in $EDGE_REID_SHARED or ../shared, or the --gt folder's img1/)")
    parser.add_argument("--gt", help="MOTChallenge sequence folder with gt/gt.txt (default: data/vtest-mot in $EDGE_REID_SHARED or ../shared)")
    parser.add_argument(
        "--detections", help="MOTChallenge detections file (det/det.txt rows) to feed instead of running the detector; no frames: motion-only trackers"
    )
    parser.add_argument(
        "--sequence", choices=sorted(BUNDLED_SEQUENCES),
        help="a real sequence with ground truth from an installed package (motion only, no frames): see docs/benchmarks.md",
    )
    parser.add_argument("--frame-step", type=_positive_int, default=1, help="use every Nth frame, timestamps kept: a lower frame rate (default 1)")
    parser.add_argument("--scale", type=_scale, default=1.0, help="resize frames by this factor before detection (0.5: people half as tall; default 1)")
    parser.add_argument("--max-frames", type=_positive_int, help="stop after this many (kept) frames")
    parser.add_argument(
        "--det-threshold", type=float, default=LOW_SCORE_FLOOR,
        help=f"detector score floor fed to the trackers (default {LOW_SCORE_FLOOR:g}: ByteTrack's low-score floor; each tracker applies its own thresholds above it)",
    )
    parser.add_argument("--min-box-height", type=float, default=RUN_MIN_BOX_HEIGHT, help=f"drop boxes shorter than this, pixels (default {RUN_MIN_BOX_HEIGHT:g}, as edge-reid run)")
    parser.add_argument(
        "--detector-size", type=int,
        help="long side of the detector's input in pixels, a multiple of 32 (default: the model's own, 416; as edge-reid run --detector-size)",
    )
    parser.add_argument("--fps", type=float, help="frame rate of an image folder or of --detections (default: seqinfo.ini's frameRate, else 10)")
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--cache-dir", default=str(default_cache_dir()), help="where detections are cached (default %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="detect again and do not write the cache")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    names = ", ".join(tracker_choices())
    parser = benchmark_parser(
        __doc__, video=False, prog="bench_tracking.py",
        notes=(
            f"trackers: {names}. Peers that are not installed are skipped and said so. "
            "Detections are cached (see --cache-dir), so a second run starts tracking at once. "
            "Other sequences: --gt DIR of any MOTChallenge sequence; its img1/ frames are used when --source is not given."
        ),
    )
    parser.add_argument("--trackers", default="all", help=f"comma-separated names, or 'all' (default). Known: {names}")
    add_sequence_arguments(parser)
    return parser


def select_trackers(text: str) -> list[TrackerChoice]:
    """The ``--trackers`` selection in table order.

    Raises:
        BenchError: an unknown name.
    """
    choices = tracker_choices()
    if text.strip() == "all":
        return list(choices.values())
    wanted = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in choices]
    if unknown or not wanted:
        raise BenchError(f"unknown tracker(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(choices)}")
    return [choice for name, choice in choices.items() if name in wanted]


def build_trackers(selected: list[TrackerChoice], context: BuildContext, have_frames: bool) -> tuple[list[BenchTracker], list[TrackerRun]]:
    """The trackers that can run, and a skipped :class:`TrackerRun` (with its reason) for each of the others."""
    built, skipped = [], []
    for choice in selected:
        reason = choice.missing()
        if reason is None and choice.embeds and not have_frames:
            reason = "needs frames to embed people; this sequence has detections only"
        if reason is None:
            tracker = choice.build(context)
            if tracker is None:
                reason = "could not be built"
            else:
                built.append(tracker)
                continue
        skipped.append(TrackerRun(choice.name, choice.label, skipped=reason, embeds=choice.embeds))
    return built, skipped


def load_sequence(args, ground_truth: GroundTruth) -> Sequence:
    """The sequence the command line asks for: detected from frames, or read from a detections file."""
    fps = args.fps or ground_truth.frame_rate
    if args.detections:
        if args.scale != 1.0 or args.detector_size is not None:
            raise BenchError("--scale and --detector-size need frames to detect in; they cannot apply to --detections")
        return sequence_from_detections(args.detections, ground_truth, fps or 10.0, args.frame_step, args.max_frames)
    source = args.source
    if source is None:
        source = str(ground_truth.image_folder) if ground_truth.image_folder else None
    if source is None:
        raise BenchError(f"{ground_truth.folder}: no frames (seqinfo.ini imDir); give --source VIDEO or --detections FILE")
    return detect_sequence(
        source,
        ground_truth.folder.name,
        frame_step=args.frame_step,
        scale=args.scale,
        max_frames=args.max_frames,
        detection_threshold=args.det_threshold,
        min_box_height=args.min_box_height,
        detector_size=args.detector_size,
        folder_fps=fps or 10.0,
        cache_dir=None if args.no_cache else Path(args.cache_dir),
        progress=not args.no_progress,
    )


def resolve_inputs(args) -> tuple[GroundTruth, Sequence]:
    """The ground truth and the detected (or read) sequence that the sequence options ask for.

    Raises:
        BenchError: conflicting options, or a missing or unreadable input.
    """
    if args.sequence:
        if args.source or args.gt or args.detections:
            raise BenchError("--sequence brings its own ground truth and detections; drop --source/--gt/--detections")
        args.gt, args.detections = BUNDLED_SEQUENCES[args.sequence](Path(args.cache_dir))
    if args.source is None and args.gt is None and not args.detections:
        args.source = str(shared_dir() / "data" / "vtest.avi")
    ground_truth = load_ground_truth(args.gt or shared_dir() / "data" / "vtest-mot")
    if args.source and not Path(args.source).exists():
        raise BenchError(f"source not found: {args.source}")
    return ground_truth, load_sequence(args, ground_truth)


def write_json(path: str, document: dict) -> None:
    """Write ``document`` atomically and say so."""
    from edge_reid.atomic import write_json_atomic

    write_json_atomic(path, document, what="benchmark JSON")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        selected = select_trackers(args.trackers)
        ground_truth, sequence = resolve_inputs(args)
        trackers, skipped = build_trackers(selected, BuildContext(sequence.fps), have_frames=sequence.source is not None)
        runs = run_trackers(sequence, trackers, progress=not args.no_progress) if trackers else []
        by_name = {run.name: run for run in runs + skipped}
        runs = [by_name[choice.name] for choice in selected]
        metrics = score(runs, ground_truth, sequence)
    except EdgeReidError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    document = report(sequence, runs, metrics)
    print(
        f"{sequence.name}: {len(sequence.frames)} frames at {sequence.fps:g} fps"
        f" ({sequence.conditions()}),"
        f" {document['sequence']['detections_per_frame']:.1f} detections/frame fed to every tracker"
    )
    print(format_table(document))
    versions = ", ".join(f"{k} {v}" for k, v in document["peers"].items() if v)
    print(f"\nTrackEval MOT15 settings; {versions}; CPU: {document['environment']['cpu']}")
    if args.json:
        write_json(args.json, document)
    return 0


# --------------------------------------------------------------------------------------------
# Real sequences with ground truth that an installed package brings
# --------------------------------------------------------------------------------------------


def _motmetrics_sequence(name: str, frame_rate: int, length: int, width: int, height: int) -> Callable[[Path], tuple[str, str]]:
    """A TUD sequence of the 2D MOT 2015 benchmark as py-motmetrics ships it for its own tests.

    The ``motmetrics`` wheel (MIT; the sequences are MOTChallenge's, CC BY-NC-SA 3.0) holds
    ``data/<name>/gt.txt`` (ground truth) and ``data/<name>/test.txt`` (one tracker's output, used
    here as detections with its ids dropped), but not the frames. Materialised as a MOTChallenge
    folder in the cache; seqinfo values are the benchmark's (640x480, 25 fps).
    """

    def materialise(cache_dir: Path) -> tuple[str, str]:
        spec = importlib.util.find_spec("motmetrics")
        if spec is None or spec.origin is None:
            raise BenchError(f"--sequence {name.lower()} needs the motmetrics package: pip install motmetrics==1.4.0")
        data = Path(spec.origin).parent / "data" / name
        if not (data / "gt.txt").is_file():
            raise BenchError(f"{data}: this motmetrics has no {name} ground truth (1.4.0 has it)")
        folder = cache_dir / "sequences" / name
        (folder / "gt").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / "gt.txt", folder / "gt" / "gt.txt")
        (folder / "seqinfo.ini").write_text(
            f"[Sequence]\nname={name}\nimDir=img1\nframeRate={frame_rate}\nseqLength={length}\nimWidth={width}\nimHeight={height}\nimExt=.jpg\n"
        )
        return str(folder), str(data / "test.txt")

    return materialise


BUNDLED_SEQUENCES: dict[str, Callable[[Path], tuple[str, str]]] = {
    "tud-campus": _motmetrics_sequence("TUD-Campus", 25, 71, 640, 480),
    "tud-stadtmitte": _motmetrics_sequence("TUD-Stadtmitte", 25, 179, 640, 480),
}


if __name__ == "__main__":
    sys.exit(main())
