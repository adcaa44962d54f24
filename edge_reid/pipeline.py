"""The main loop: frame -> person detector -> tracker -> embeddings of the crops that need one -> identities.

Data flows one way: :class:`~edge_reid.detections.Detections` from the detector (or the
caller), tracked by :class:`~edge_reid.tracking.Tracker` (motion first, appearance where
it decides), embedded only where :func:`~edge_reid.tracking.plan_embeddings` says so,
identified by :class:`~edge_reid.identities.TrackIdentities` against the
:class:`~edge_reid.matching.Gallery`, and returned as a :class:`~edge_reid.results.FrameResult` built from
those three results.
"""

from __future__ import annotations

import contextlib
import inspect
import queue
import threading
import warnings
import weakref
from dataclasses import dataclass
from typing import Generator, Iterator

import numpy as np

from edge_reid.closing import Closable
from edge_reid.data.images import check_bgr_image
from edge_reid.defaults import MIN_BOX_HEIGHT, REFRESH_S, REID_THRESHOLD, THRESHOLD, UNNAMED_REID_THRESHOLD
from edge_reid.detections import Detections, sanitize_boxes
from edge_reid.detector import PersonDetector
from edge_reid.embedder import Embedder
from edge_reid.errors import DataError, TimestampWarning, caller_stacklevel
from edge_reid.identities import Identities, TrackIdentities
from edge_reid.matching.gallery import Gallery
from edge_reid.results import FrameResult, PastPerson
from edge_reid.sources import Frame, FrameSource, open_source
from edge_reid.timing import StageTimer, StreamClock
from edge_reid.values import is_integer, is_real
from edge_reid.tracking import CameraMotion, Tracker, TrackerConfig, plan_embeddings


@dataclass
class _PendingFrame:
    """A frame that past-frame boxes may still belong to: its index, time, image file name and size
    (height, width in pixels: a folder's images may differ), and the identities already reported in
    it (a frame gets each identity once)."""

    index: int
    timestamp_s: float
    file_name: str | None
    identities: set[int]
    shape: tuple[int, int]


def _state(track) -> str:
    if track.confirmed_now:
        return "new"
    return "refound" if track.refound else "tracked"


class Pipeline(Closable):
    """Tracks and re-identifies people frame by frame; usable without the CLI.

    Args:
        embedder: the ReID :class:`Embedder` (default: bundled OSNet on ONNX Runtime, half the
            cores: it runs beside the detector, see :class:`~edge_reid.backends.BackendOptions`).
        detector: a :class:`PersonDetector` (default: bundled YOLOX-Nano on ONNX Runtime reporting
            scores down to the tracker's ``low_score``, sharing the cores with the embedder when
            that computes on the CPU, dropping boxes shorter than its own 32 px or a lower
            ``min_box_height`` > 0 asked here); not used when ``use_detector`` is False.
        gallery: the identity :class:`Gallery` (default: a new one with ``threshold``,
            tagged with the embedder's model id so that it can be saved and reloaded).
        threshold: cosine similarity in [-1, 1] for a new gallery: a re-found person whose
            motion supports the match takes a lost identity at or above it.
        min_box_height: boxes (the detector's or the caller's) shorter than this (pixels, after
            clipping to the frame) are skipped and counted. A detector made here keeps boxes down to
            it when it is below the detector's own 32 px (a 160x120 camera: 16); 0 (default) leaves
            the made detector's 32 px. A ``detector`` passed in keeps its own ``min_box_height``
            (``PersonDetector(min_box_height=0)`` for every box).
        use_detector: False for a pipeline without a detector (boxes come with each frame).
        tracker: the :class:`~edge_reid.tracking.Tracker` (default: published defaults and camera-motion
            compensation, ``Tracker(camera_motion=CameraMotion())``, as ``edge-reid run``; a camera that
            never moves can pass ``Tracker()`` to save the optical flow).
        reid_threshold: cosine similarity in [-1, 1] for a new track to take a named identity (an
            enrolled person, or one the user named) without motion support.
        unnamed_reid_threshold: the same for an unnamed identity (someone a run saw, who left and came
            back): stricter by default, see :class:`~edge_reid.identities.TrackIdentities`.
        refresh_s: seconds between two embeddings of a person followed without doubt.
        past_frames: hand out the boxes of earlier frames that a track's confirmation or re-finding
            reveals (:attr:`FrameResult.past`); False: only the current frame's people.

    Raises:
        ValueError: ``refresh_s`` <= 0; ``min_box_height`` negative or not finite; ``reid_threshold`` or
            ``unnamed_reid_threshold`` outside [-1, 1]; a ``gallery``
            whose embedding size is not the embedder's.
        TypeError: ``tracker`` is not a :class:`~edge_reid.tracking.Tracker` (a ``TrackerConfig`` goes
            inside one: ``Tracker(TrackerConfig(...))``).
        DataError: a ``gallery`` tagged with another model's id (its embeddings cannot be compared
            with this model's).

    A pipeline holds one stream's tracks: feed it from one thread at a time. Several cameras: one
    pipeline per camera, each in its own thread, may share one :class:`Embedder`, one
    :class:`PersonDetector` (the calls of each take turns) and one gallery (docs/tracking.md, "Several cameras, one gallery"). :meth:`run` starts each source with no tracks; :meth:`process`
    continues the stream it is given; :meth:`reset` forgets the tracks (identities stay in the gallery).
    :meth:`close` (or the end of a ``with`` block) ends this pipeline's runs and closes the embedder and
    detector the pipeline made itself; those passed in are the caller's to close.

    Example:
        >>> pipeline = Pipeline()                                  # doctest: +SKIP
        >>> for result in pipeline.run("video.mp4"):               # doctest: +SKIP
        ...     print(result.frame_index, [p.identity_id for p in result.people])
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        detector: PersonDetector | None = None,
        gallery: Gallery | None = None,
        threshold: float = THRESHOLD,
        min_box_height: float = 0.0,
        use_detector: bool = True,
        tracker: Tracker | None = None,
        reid_threshold: float = REID_THRESHOLD,
        unnamed_reid_threshold: float = UNNAMED_REID_THRESHOLD,
        refresh_s: float = REFRESH_S,
        past_frames: bool = True,
    ) -> None:
        if not refresh_s > 0:
            raise ValueError(f"refresh_s must be > 0 seconds, got {refresh_s}")
        if not 0 <= min_box_height < float("inf"):
            raise ValueError(f"min_box_height must be a height in pixels >= 0, got {min_box_height}")
        if tracker is not None and not isinstance(tracker, Tracker):
            raise TypeError(f"tracker must be a Tracker, e.g. Tracker(TrackerConfig(...)), got {type(tracker).__name__}")
        self._made: list[Closable] = []  # the models this pipeline made, and so closes (close())
        self._runs: weakref.WeakSet[_ClosesItsSource] = weakref.WeakSet()  # run()'s results, ended by close()
        self._runs_lock = threading.Lock()  # run() in one thread adding while close() in another copies
        self._processing = threading.RLock()  # held over each frame (run()'s and process()'s): close() lets it finish first
        try:  # a model made here is closed again when a later step fails (a detector that cannot load)
            self.embedder = embedder or Embedder(backend_options={"side_by_side": True})
            if embedder is None:
                self._made.append(self.embedder)
            self.tracker = tracker if tracker is not None else Tracker(TrackerConfig(), camera_motion=CameraMotion())
            if not use_detector:
                self.detector = None
            elif detector is not None:
                self.detector = detector
            else:  # its own minimum (32 px) dropped the people of a 160x120 camera that min_box_height=16 asked for
                own = MIN_BOX_HEIGHT
                self.detector = PersonDetector(
                    score_threshold=self.tracker.config.low_score, side_by_side=self.embedder.backend.runs_on_cpu,
                    min_box_height=min(float(min_box_height), own) if min_box_height > 0 else own,
                )
                self._made.append(self.detector)
            self.gallery = gallery if gallery is not None else Gallery(
                self.embedder.dim, threshold=threshold, model_id=self.embedder.model_id, model_name=self.embedder.model_path.name
            )
            if self.gallery.dim != self.embedder.dim:
                raise ValueError(f"the gallery holds {self.gallery.dim}-d embeddings, the model makes {self.embedder.dim}-d ones")
            if self.gallery.model_id is not None and self.gallery.model_id != self.embedder.model_id:
                raise DataError(
                    f"the gallery was made with another model ({self.gallery.model_name or self.gallery.model_id[:12]}), not "
                    f"{self.embedder.model_path.name}: embeddings of two models cannot be compared; use a gallery of this model"
                )
            self.identities = TrackIdentities(
                self.gallery, reid_threshold=reid_threshold, unnamed_reid_threshold=unnamed_reid_threshold
            )
        except BaseException:
            self.close()
            raise
        self.min_box_height = float(min_box_height)
        self.refresh_s = float(refresh_s)
        self.timer = StageTimer()
        self.embeddings_total = 0
        self.past_frames = bool(past_frames)
        self._pending: dict[int, _PendingFrame] = {}  # tracker update number -> frame (pruned in _past_people)
        self._reader_stuck = False  # the decode thread of the last run was left blocked in a read
        self._embeddings = np.zeros((self.embedder.max_batch, self.embedder.dim), np.float32)
        self._stream_clock = StreamClock()  # the time of frames given without one (process())
        self._next_frame_index = 0
        self._timed: bool | None = None  # whether this stream's frames came with their times (None: no frame yet)
        self._warned_mixed_times = False  # a TimestampWarning said that this stream mixes given and clock times
        self._frame_size: tuple[int, int] | None = None  # (H, W) of the last frame: the pixels the tracks are in

    def close(self) -> None:
        """End this pipeline's runs and close the embedder and detector it made itself (not those passed in).

        A run's results, still held (a kiosk's ``results = pipeline.run(0)``) or being iterated in
        another thread, end as after a stop: a frame being processed is finished first, the decoding
        thread ends and the source (a camera) is released, and the next ``next(results)`` raises
        StopIteration. Safe to call twice, and from any thread.
        """
        with self._runs_lock:
            runs = list(self._runs)
        for results in runs:
            results.end()
        with self._processing:
            while self._made:
                self._made.pop().close()

    def reset(self) -> None:
        """Forget every track, as at the start of a new video or camera session.

        The gallery keeps its identities: people seen before are recognised again (named ones at
        ``reid_threshold``, unnamed ones at ``unnamed_reid_threshold``). Track ids start again from 1,
        and :attr:`timer` (the stages' milliseconds per frame) from 0. :meth:`run` calls this first.
        """
        self._forget_tracks()
        self._stream_clock = StreamClock()
        self._next_frame_index = 0
        self._timed = None
        self._warned_mixed_times = False
        self.timer = StageTimer()

    def _forget_tracks(self, keep_counting: bool = False) -> None:
        """New tracker and identities; ``keep_counting``: the same stream goes on, so track ids go on from
        the last one (never reused for another person) and confirmed tracks keep adding up."""
        motion = self.tracker.camera_motion
        if motion is not None:
            motion.reset()
        previous = self.tracker
        self.tracker = Tracker(previous.config, camera_motion=motion)
        if keep_counting:
            self.tracker.continue_counting(previous)
        self.identities = TrackIdentities(
            self.gallery, reid_threshold=self.identities.reid_threshold, unnamed_reid_threshold=self.identities.unnamed_reid_threshold
        )
        self._pending.clear()
        self._frame_size = None

    def _embedding_buffer(self, count: int) -> np.ndarray:
        if count > self._embeddings.shape[0]:
            self._embeddings = np.zeros((max(count, 2 * self._embeddings.shape[0]), self.embedder.dim), np.float32)
        return self._embeddings

    def process(
        self,
        image: np.ndarray,
        timestamp_s: float | None = None,
        frame_index: int | None = None,
        detections: Detections | None = None,
        file_name: str | None = None,
    ) -> FrameResult:
        """Track and re-identify the people of one frame.

        Args:
            image: (H, W, 3) uint8 BGR frame, any numpy layout (``rgb[..., ::-1]``, a crop of a larger
                array, read-only or memory-mapped buffers; see :func:`~edge_reid.data.images.check_bgr_image`).
            timestamp_s: time of the frame, seconds, not milliseconds (frames must come in time
                order; a repeated or earlier time counts as no time passing, and a time that stands
                still for many frames warns: :class:`~edge_reid.errors.TimestampWarning`). None: the time it is
                processed, seconds since this stream's first frame (monotonic clock), right for a
                live camera read as it goes; give a video file's own frame times instead (the
                tracker's motion model and track ages count in these seconds). Give it for every
                frame of a stream or for none (a switch warns, once). Wall-clock seconds since
                1970 and a ROS stamp (``sec + nanosec * 1e-9``) are fine.
            frame_index: index of the frame (carried into the result). None: one more than the
                previous frame's (0 for the first of a stream).
            detections: boxes from the caller's own detector (pixels, x1, y1, x2, y2, with
                scores: below the tracker's ``high_score`` a box only extends a track);
                None runs this pipeline's detector. Boxes are clipped to the frame;
                empty, outside or too-small ones are skipped and counted.
            file_name: the frame's image file name (image-folder sources), carried into the
                result and into later past-frame boxes of this frame.

        A frame of another size than the previous one (a camera that came back at another
        resolution) starts new tracks, as :meth:`reset` does but keeping the stream's clock and
        frame numbers: the old tracks' boxes and motion are in the old frame's pixels, and kept,
        they held their people's identities while new tracks got second ones. The gallery
        re-identifies the people.

        Raises:
            ValueError: ``image`` is not a non-empty (H, W, 3) uint8 array (the message says how to
                convert it); no detections given and the pipeline has no detector; NaN/Inf boxes or
                scores (the message names the rows); a NaN/Inf ``timestamp_s``.
            TypeError: ``detections`` is not a :class:`Detections`; ``timestamp_s`` or ``frame_index``
                is not a number.
            ModelError: the ReID model returned NaN/Inf, or its backend failed.

        Warns:
            TimestampWarning: once per stream, ``timestamp_s`` given for some frames and left out
                for others (and those of :meth:`~edge_reid.tracking.Tracker.update`).

        A :meth:`close` from another thread waits for a frame being processed here to finish.
        """
        with self._processing:
            return self._process(image, timestamp_s, frame_index, detections, file_name)

    def _process(self, image: np.ndarray, timestamp_s: float | None, frame_index: int | None,
                 detections: Detections | None, file_name: str | None) -> FrameResult:
        """:meth:`process`, with the frame lock held."""
        check_bgr_image(image, "image")
        if not isinstance(detections, (Detections, type(None))):
            raise TypeError(f"detections must be a Detections (Detections.from_boxes(boxes, scores)), got {type(detections).__name__}")
        timed = timestamp_s is not None
        if timestamp_s is None:
            timestamp_s = self._stream_clock.seconds()
        frame_index = self._next_frame_index if frame_index is None else frame_index
        if not is_real(timestamp_s) or not is_integer(frame_index):  # "0.1", True, 2.7 and a ROS stamp are refused, not converted
            stamp = "; a ROS stamp: stamp.sec + stamp.nanosec * 1e-9" if hasattr(timestamp_s, "sec") or hasattr(timestamp_s, "secs") else ""
            raise TypeError(
                f"timestamp_s must be seconds (a number) and frame_index an integer, got {timestamp_s!r} and {frame_index!r}{stamp}"
            )
        timestamp_s, frame_index = float(timestamp_s), int(frame_index)  # numpy scalars: JSON-ready in results
        if not np.isfinite(timestamp_s):
            raise ValueError(f"timestamp_s must be a finite number of seconds, got {timestamp_s}")
        self._next_frame_index = frame_index + 1
        if self._frame_size is not None and image.shape[:2] != self._frame_size:
            self._forget_tracks(keep_counting=True)
        self._frame_size = image.shape[:2]
        timer = self.timer
        if detections is None:
            if self.detector is None:
                raise ValueError("this Pipeline has no detector: pass detections=Detections.from_boxes(...)")
            with timer.measure("detect"):
                detections = self.detector.detect(image)
        if self._timed is not None and timed != self._timed and not self._warned_mixed_times:
            self._warned_mixed_times = True  # e.g. seconds since 1970 after seconds since the first frame: tracks all expire
            given, left_out = ("left out", "given") if timed else ("given", "left out")
            warnings.warn(
                f"timestamp_s was {given} for this stream's earlier frames and is {left_out} for this one: the "
                "monotonic clock's seconds since the first frame and the given times are two clocks, and the tracks "
                "see the jump between them (lost, or kept too long); give every frame its time in seconds, or none; "
                "reset() starts a new stream",
                TimestampWarning, stacklevel=caller_stacklevel(),
            )
        self._timed = timed
        scores = np.asarray(detections.scores, np.float32).reshape(-1)
        bad = np.flatnonzero(~np.isfinite(detections.boxes).all(axis=1) | ~np.isfinite(scores))
        if bad.size:
            raise ValueError(
                f"detection rows {bad[:10].tolist()} have NaN or infinite boxes or scores (row {bad[0]}: box "
                f"{detections.boxes[bad[0]].tolist()}, score {float(scores[bad[0]])}): check the detector's output, "
                "or leave those rows out"
            )
        boxes, keep = sanitize_boxes(detections.boxes, image.shape[0], image.shape[1], self.min_box_height)
        found = Detections(boxes[keep], scores[keep])
        with timer.measure("track"):
            wanted = plan_embeddings(self.tracker, found, timestamp_s, self.refresh_s, image)
        count = int(wanted.sum())
        embeddings = np.zeros((len(found), self.embedder.dim), np.float32)
        if count:
            embeddings[wanted] = self.embedder.embed_boxes(image, found.boxes[wanted], out=self._embedding_buffer(count))
            timer.add("preprocess", self.embedder.last_seconds["preprocess"])
            timer.add("embed", self.embedder.last_seconds["embed"])
        self.embeddings_total += count
        with timer.measure("track"):
            update = self.tracker.updates
            tracked = self.tracker.update(found, embeddings, timestamp_s, embedded=wanted, image=image)
        with timer.measure("match"), self.gallery.lock:  # one step for other threads using the gallery; its times are wall-clock
            identities = self.identities.update(self.tracker, tracked)
        if self.past_frames:  # what past-frame boxes need to know of this frame
            known = {i for i in identities.identity_ids.tolist() if i >= 1}
            self._pending[update] = _PendingFrame(int(frame_index), float(timestamp_s), file_name, known, image.shape[:2])
        tracks = [self.tracker.get(int(t)) for t in tracked.track_ids]
        filtered = tracked.boxes.copy()
        filtered[:, 0::2] = np.clip(filtered[:, 0::2], 0.0, float(image.shape[1]))
        filtered[:, 1::2] = np.clip(filtered[:, 1::2], 0.0, float(image.shape[0]))
        past = self._past_people(tracks, identities) if self.past_frames else ()
        timer.frames += 1
        return FrameResult(
            frame_index, timestamp_s, image, Detections(filtered, tracked.scores, tracked.track_ids), identities,
            tuple(_state(t) for t in tracks), detections=len(found), embedded=count, skipped_boxes=int((~keep).sum()) + detections.too_small,
            past=past, file_name=file_name,
        )

    def _past_people(self, tracks, identities: Identities) -> tuple[PastPerson, ...]:
        """The past-frame boxes of the tracks reported in this frame, as :class:`PastPerson` rows,
        each clipped to its own frame (a box that lies wholly outside it is left out).

        A frame never gets an identity twice: a past box is left out where its identity was
        already reported in that frame (a track that took over a lost track's identity, whose
        tentative hits overlap the lost track's last reported frames)."""
        people = []
        for track, identity, name in zip(tracks, identities.identity_ids.tolist(), identities.names):
            for past in track.past:
                frame = self._pending.get(past.update)
                if frame is None or identity in frame.identities:
                    continue
                height, width = frame.shape
                x1, y1, x2, y2 = (float(v) for v in past.box)
                box = (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))
                if box[2] - box[0] < 1.0 or box[3] - box[1] < 1.0:
                    continue
                if identity >= 1:
                    frame.identities.add(identity)
                people.append(PastPerson(frame.index, frame.timestamp_s, box, past.score, track.track_id, int(identity), name,
                                         past.kind, frame.file_name))
        oldest = min((t.oldest_pending_update for t in self.tracker.tracks), default=self.tracker.updates)
        for number in [n for n in self._pending if n < oldest]:
            del self._pending[number]
        return tuple(sorted(people, key=lambda p: (p.frame_index, p.track_id)))

    def run(
        self, source: FrameSource | str | int, max_frames: int | None = None, prefetch: int = 2
    ) -> Iterator[FrameResult]:
        """Yield a :class:`FrameResult` per frame of ``source``, at most ``max_frames``.

        Starts with no tracks (:meth:`reset`): each run is its own stream; the gallery carries
        identities from one run to the next. A :class:`FrameSource` is read once (run closes it).

        Args:
            source: a :class:`FrameSource`, or what :func:`edge_reid.sources.open_source` takes.
            max_frames: stop after this many frames (None: until the source ends or is stopped).
            prefetch: frames decoded and detected ahead in a worker thread while this
                thread embeds and matches the previous frame (0: everything in this thread).
                Results always come in frame order.

        Raises:
            SourceError: the source cannot be opened.
            DataError: an image folder's MOTChallenge ``seqinfo.ini`` is not valid.
            ValueError: ``source`` is a :class:`FrameSource` that was read before.
            ModelError: a model failed (see :meth:`process`).
        """
        if isinstance(source, FrameSource):
            source.check_unread()
        frames = source if isinstance(source, FrameSource) else open_source(source)  # a bad source fails here, not at the first frame
        closing = threading.Event()  # set by close(): the run ends before its next frame
        results = _ClosesItsSource(self._run(frames, max_frames, prefetch, closing), frames, closing)
        with self._runs_lock:
            self._runs.add(results)
        return results

    def _run(self, frames: FrameSource, max_frames: int | None, prefetch: int, closing: threading.Event) -> Iterator[FrameResult]:
        self.reset()
        self._reader_stuck = False
        staged = self._staged_threaded(frames, max_frames, prefetch, closing) if prefetch > 0 else self._staged(frames, max_frames, closing)
        try:
            for frame, detections in staged:
                with self._processing:
                    if closing.is_set():  # closed (its models too, perhaps) while this frame was decoded
                        return
                    result = self.process(frame.image, frame.timestamp_s, frame.index, detections=detections, file_name=frame.name)
                yield result
        finally:
            staged.close()
            if not self._reader_stuck:  # never release a capture that a blocked read still uses
                frames.close()

    def _staged(
        self, frames: FrameSource, max_frames: int | None, closing: threading.Event | None = None
    ) -> Iterator[tuple[Frame, Detections | None]]:
        """Decode and detect, in the calling thread (whose reading of ``frames`` ends here, an error included).
        ``closing`` (set by :meth:`close`, which may have closed the detector while a frame was decoded) ends it."""
        iterator = iter(frames)
        produced = 0
        try:
            while max_frames is None or produced < max_frames:
                with self.timer.measure("decode"):
                    frame = next(iterator, None)
                if frame is None:
                    return
                detections = None
                if self.detector is not None:
                    # in run()'s own thread (not _staged_threaded's worker): close() waits for the detection, or has
                    # set closing and perhaps closed the detector while this frame was decoded
                    with self._processing if closing is not None else contextlib.nullcontext():
                        if closing is not None and closing.is_set():
                            return
                        with self.timer.measure("detect"):
                            detections = self.detector.detect(frame.image)
                yield frame, detections
                produced += 1
        finally:
            iterator.close()  # in this thread, the reading one: the source may release its capture now

    def _staged_threaded(
        self, frames: FrameSource, max_frames: int | None, depth: int, finished: threading.Event
    ) -> Iterator[tuple[Frame, Detections | None]]:
        """Decode and detect in a worker thread, ``depth`` frames ahead; re-raises its errors here.
        ``finished`` (set here at the end, or by :meth:`close`) ends the worker."""
        handoff: queue.Queue = queue.Queue(maxsize=depth)
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
                try:
                    item = handoff.get(timeout=0.1)
                except queue.Empty:
                    if frames.stopped:  # a stop (Ctrl-C) while the worker waits on the source: end now
                        return
                    continue
                if item is end or finished.is_set():  # the end, or close(): a detector it closed may have raised
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            finished.set()
            frames.stop()
            # The worker ends within a frame's decode and detection; a read blocked inside OpenCV (a
            # stalled stream) cannot be interrupted: the (daemon) thread is left to it, not waited for.
            worker.join(timeout=2.0)
            self._reader_stuck = worker.is_alive()


class _ClosesItsSource(Iterator[FrameResult]):
    """:meth:`Pipeline.run`'s results: a generator that also closes the :class:`FrameSource` it was given
    when it is closed before its first frame (a generator's body, and so its ``finally``, never runs then)."""

    def __init__(
        self, results: Generator[FrameResult, None, None], source: FrameSource | None, closing: threading.Event | None = None
    ) -> None:
        self._results = results
        self._source = source
        self._closing = closing

    def __iter__(self) -> "_ClosesItsSource":
        return self

    def __next__(self) -> FrameResult:
        return next(self._results)

    def close(self) -> None:
        """Stop: the decoding thread ends and the source is released (see :meth:`Pipeline.run`)."""
        unstarted = inspect.getgeneratorstate(self._results) == inspect.GEN_CREATED
        self._results.close()
        if unstarted and self._source is not None:
            self._source.close()

    def end(self) -> None:
        """:meth:`Pipeline.close`, from any thread: the run ends before its next frame, and when it is not
        being iterated right now, at once (its decoding thread ended, its source released)."""
        if self._closing is not None:
            self._closing.set()
        if self._source is not None:
            self._source.stop()
        try:
            self.close()
        except ValueError:  # "generator already executing" in another thread: it ends at its next frame (closing)
            pass
