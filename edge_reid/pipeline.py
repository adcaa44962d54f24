"""The main loop: frame -> person detector -> crops -> one batched embedding call -> gallery -> identities."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from edge_reid.cpu import threads_per_model
from edge_reid.detections import Detections, sanitize_boxes
from edge_reid.detector import PersonDetector
from edge_reid.embedder import Embedder
from edge_reid.matching.gallery import Gallery
from edge_reid.sources import Frame, FrameSource, open_source
from edge_reid.timing import StageTimer


@dataclass(frozen=True)
class Person:
    """One detected person with an identity.

    Attributes:
        bbox: (x1, y1, x2, y2) in pixels of the frame.
        score: detector confidence in [0, 1].
        identity_id: gallery identity id (>= 1).
        similarity: best cosine similarity in [-1, 1] to the identity's stored embeddings; 0 for a new identity.
        is_new: True when this detection created the identity.
    """

    bbox: tuple[float, float, float, float]
    score: float
    identity_id: int
    similarity: float
    is_new: bool


@dataclass(frozen=True)
class FrameResult:
    """Identities found in one frame.

    Attributes:
        frame_index: 0-based index of the frame in its source.
        timestamp_s: time of the frame in seconds.
        image: (H, W, 3) uint8 BGR frame (not copied: do not keep it past the next frame of a live source
            if you modify it).
        boxes: (N, 4) float32 x1, y1, x2, y2 pixels, clipped to the frame.
        scores: (N,) float32 detector confidence.
        identity_ids: (N,) int64 identity ids (>= 1).
        similarities: (N,) float32 best cosine similarity to the matched identity's embeddings (0 for new identities).
        is_new: (N,) bool.
        skipped_boxes: boxes dropped as empty, outside the frame or too small.
    """

    frame_index: int
    timestamp_s: float
    image: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    identity_ids: np.ndarray
    similarities: np.ndarray
    is_new: np.ndarray
    skipped_boxes: int = 0

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def people(self) -> list[Person]:
        """The detections as :class:`Person` objects."""
        return [
            Person(tuple(float(v) for v in box), float(score), int(identity), float(sim), bool(new))
            for box, score, identity, sim, new in zip(self.boxes, self.scores, self.identity_ids, self.similarities, self.is_new)
        ]


class Pipeline:
    """Re-identifies people frame by frame; usable without the CLI.

    Args:
        embedder: the ReID :class:`Embedder` (default: bundled OSNet on ONNX Runtime,
            :func:`~edge_reid.cpu.threads_per_model` threads).
        detector: a :class:`PersonDetector` (default: bundled YOLOX-Nano); ignored when
            ``use_detector`` is False, for callers that always pass their own boxes.
        gallery: the identity :class:`Gallery` (default: a new one with ``threshold``,
            tagged with the embedder's model id so that it can be saved and reloaded).
        threshold: cosine similarity in [-1, 1] for a new gallery's matching.
        min_box_height: caller-supplied boxes shorter than this (pixels) are skipped.
        use_detector: False for a pipeline without a detector (boxes come with each frame).

    Example:
        >>> pipeline = Pipeline()                                  # doctest: +SKIP
        >>> for result in pipeline.run("video.mp4"):               # doctest: +SKIP
        ...     print(result.frame_index, result.identity_ids)
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        detector: PersonDetector | None = None,
        gallery: Gallery | None = None,
        threshold: float = 0.6,
        min_box_height: float = 0.0,
        use_detector: bool = True,
    ) -> None:
        self.embedder = embedder or Embedder(threads=threads_per_model())
        self.detector = detector if detector is not None or not use_detector else PersonDetector(threads=threads_per_model())
        self.gallery = gallery if gallery is not None else Gallery(
            self.embedder.dim, threshold=threshold, model_id=self.embedder.model_id, model_name=self.embedder.model_path.name
        )
        self.min_box_height = float(min_box_height)
        self.timer = StageTimer()
        self._embeddings = np.zeros((self.embedder.max_batch, self.embedder.dim), np.float32)

    def _embedding_buffer(self, count: int) -> np.ndarray:
        if count > self._embeddings.shape[0]:
            self._embeddings = np.zeros((max(count, 2 * self._embeddings.shape[0]), self.embedder.dim), np.float32)
        return self._embeddings

    def process(
        self,
        image: np.ndarray,
        timestamp_s: float = 0.0,
        frame_index: int = 0,
        detections: Detections | None = None,
    ) -> FrameResult:
        """Re-identify the people of one frame.

        Args:
            image: (H, W, 3) uint8 BGR frame.
            timestamp_s: time of the frame, seconds.
            frame_index: index of the frame (carried into the result).
            detections: boxes from the caller's own detector (pixels, x1, y1, x2, y2);
                None runs this pipeline's detector. Boxes are clipped to the frame;
                empty, outside or too-small ones are skipped and counted.

        Raises:
            ValueError: no detections given and the pipeline has no detector.
            ModelError: the ReID model returned NaN/Inf.
        """
        timer = self.timer
        if detections is None:
            if self.detector is None:
                raise ValueError("this Pipeline has no detector: pass detections=Detections.from_boxes(...)")
            start = time.perf_counter()
            detections = self.detector.detect(image)
            timer.add("detect", time.perf_counter() - start)
        boxes, keep = sanitize_boxes(detections.boxes, image.shape[0], image.shape[1], self.min_box_height)
        skipped = int((~keep).sum())
        boxes, scores = boxes[keep], detections.scores[keep]
        embeddings = self.embedder.embed_boxes(image, boxes, out=self._embedding_buffer(len(boxes)))
        timer.add("preprocess", self.embedder.last_seconds["preprocess"])
        timer.add("embed", self.embedder.last_seconds["embed"])
        start = time.perf_counter()
        match = self.gallery.match(embeddings)  # gallery times are wall-clock (they outlive this run)
        timer.add("match", time.perf_counter() - start)
        timer.frames += 1
        return FrameResult(
            frame_index, timestamp_s, image, boxes, scores, match.identity_ids, match.similarities, match.is_new, skipped
        )

    def run(
        self, source: FrameSource | str | int, max_frames: int | None = None, prefetch: int = 2
    ) -> Iterator[FrameResult]:
        """Yield a :class:`FrameResult` per frame of ``source``, at most ``max_frames``.

        Args:
            source: a :class:`FrameSource`, or what :func:`edge_reid.sources.open_source` takes.
            max_frames: stop after this many frames (None: until the source ends or is stopped).
            prefetch: frames decoded and detected ahead in a worker thread while this
                thread embeds and matches the previous frame (0: everything in this thread).
                Results always come in frame order.

        Raises:
            SourceError: the source cannot be opened.
        """
        frames = source if isinstance(source, FrameSource) else open_source(source)
        staged = self._staged_threaded(frames, max_frames, prefetch) if prefetch > 0 else self._staged(frames, max_frames)
        try:
            for frame, detections in staged:
                yield self.process(frame.image, frame.timestamp_s, frame.index, detections=detections)
        finally:
            staged.close()
            frames.close()

    def _staged(self, frames: FrameSource, max_frames: int | None) -> Iterator[tuple[Frame, Detections | None]]:
        """Decode and detect, in the calling thread."""
        iterator = iter(frames)
        produced = 0
        while max_frames is None or produced < max_frames:
            start = time.perf_counter()
            frame = next(iterator, None)
            self.timer.add("decode", time.perf_counter() - start)
            if frame is None:
                return
            detections = None
            if self.detector is not None:
                start = time.perf_counter()
                detections = self.detector.detect(frame.image)
                self.timer.add("detect", time.perf_counter() - start)
            yield frame, detections
            produced += 1

    def _staged_threaded(self, frames: FrameSource, max_frames: int | None, depth: int) -> Iterator[tuple[Frame, Detections | None]]:
        """Decode and detect in a worker thread, ``depth`` frames ahead; re-raises its errors here."""
        handoff: queue.Queue = queue.Queue(maxsize=depth)
        finished = threading.Event()
        end = object()

        def put(item) -> None:
            while not finished.is_set():
                try:
                    handoff.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def produce() -> None:
            try:
                for item in self._staged(frames, max_frames):
                    if finished.is_set():
                        break
                    put(item)
            except BaseException as exc:  # handed to the consumer, raised there
                put(exc)
            finally:
                put(end)

        worker = threading.Thread(target=produce, name="edge-reid-decode-detect", daemon=True)
        worker.start()
        try:
            while True:
                item = handoff.get()
                if item is end:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            finished.set()
            frames.stop()
            worker.join(timeout=10.0)
