"""Running a :class:`~edge_reid.pipeline.Pipeline` over a whole source: what ``edge-reid run`` does.

:class:`Runner` feeds every frame's result to the sinks (:mod:`edge_reid.sinks`), stops
cleanly on Ctrl-C / SIGTERM (or a sink's quit request) after writing out what was
produced, keeps a persistent gallery (loaded by the caller, saved every few seconds
and on every exit, pruned of old strangers but never of people in view), and returns
the :class:`~edge_reid.summary.RunSummary`. The CLI adds only its options, a progress
bar and the printed table.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from edge_reid.defaults import PRUNE_MIN_AGE_S
from edge_reid.pipeline import FrameResult, Pipeline
from edge_reid.sources import FrameSource, open_source
from edge_reid.summary import RunSummary


class Sink(Protocol):
    """Where frame results go (:mod:`edge_reid.sinks`): written in frame order, closed once at the end."""

    def write(self, result: FrameResult) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class GallerySaving:
    """Keeping a gallery on disk during a run.

    Attributes:
        path: the ``.edgereid`` file to write (atomically).
        every_s: seconds of wall-clock time between saves (and one save on every exit).
        prune_after_s: before each save, forget unnamed identities not seen for this many
            seconds (None: never). Identities held by a live track are always kept.

    Raises:
        ValueError: ``every_s`` not positive, or ``prune_after_s`` below :data:`PRUNE_MIN_AGE_S`
            (pruning sooner would drop people who are merely hidden for a moment, and give
            them a new identity when they reappear).
    """

    path: Path
    every_s: float = 60.0
    prune_after_s: float | None = None

    def __post_init__(self) -> None:
        if not self.every_s > 0:
            raise ValueError(f"gallery save interval must be > 0 seconds, got {self.every_s}")
        if self.prune_after_s is not None and not self.prune_after_s >= PRUNE_MIN_AGE_S:
            raise ValueError(
                f"prune-after {self.prune_after_s:g} s is below the minimum of {PRUNE_MIN_AGE_S:g} s: people hidden "
                "for a moment (behind someone, out of view) would lose their identity and come back as new ones"
            )


class Runner:
    """Runs a pipeline over a source into sinks, with stop on signal, gallery saving and a summary.

    Args:
        pipeline: the :class:`~edge_reid.pipeline.Pipeline` (its gallery is the one saved).
        sinks: objects with ``write(result)`` and ``close()`` (e.g. :class:`~edge_reid.sinks.EventsSink`);
            a sink with a true ``quit_requested`` attribute (the display window's ``q``) ends the run.
        gallery_saving: :class:`GallerySaving`, or None to keep the gallery in memory only.
        handle_signals: stop cleanly on SIGINT (Ctrl-C) and SIGTERM while running (only
            possible in the main thread; elsewhere call :meth:`stop`).

    Example:
        >>> runner = Runner(Pipeline(), [EventsSink("events.jsonl"), MotSink("out.txt")])   # doctest: +SKIP
        >>> summary = runner.run("video.mp4")                                                # doctest: +SKIP
    """

    def __init__(
        self,
        pipeline: Pipeline,
        sinks: Sequence[Sink] = (),
        gallery_saving: GallerySaving | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.sinks = list(sinks)
        self.gallery_saving = gallery_saving
        self.handle_signals = handle_signals
        self._stop = threading.Event()
        self._frames: FrameSource | None = None

    def backends(self) -> str:
        """Where the models run, e.g. ``onnxruntime (CPU)``, or ``openvino (CPU); detector onnxruntime (CPU)``."""
        described = self.pipeline.embedder.backend.describe()
        detector = getattr(self.pipeline.detector, "describe", None)
        if detector is not None and detector() != described:
            described += f"; detector {detector()}"
        return described

    def stop(self) -> None:
        """Ask the run to end after the current frame (thread-safe; the outputs are still written)."""
        self._stop.set()
        if self._frames is not None:
            self._frames.stop()

    def save_gallery(self) -> None:
        """Prune (when configured) and save the gallery now; nothing without :class:`GallerySaving`."""
        saving = self.gallery_saving
        if saving is None:
            return
        gallery = self.pipeline.gallery
        if saving.prune_after_s is not None:
            gallery.prune(saving.prune_after_s, keep=self.pipeline.identities.held_identities())
        gallery.save(saving.path)

    def run(
        self,
        source: FrameSource | str | int,
        max_frames: int | None = None,
        on_frame: Callable[[FrameResult, RunSummary], None] | None = None,
    ) -> RunSummary:
        """Process the source to its end, to ``max_frames`` or to a stop; returns the summary.

        Every sink is closed and the gallery saved on every exit, an error included.

        Args:
            source: a :class:`~edge_reid.sources.FrameSource`, or what :func:`~edge_reid.sources.open_source` takes.
            max_frames: stop after this many frames (None: until the source ends or a stop).
            on_frame: called after each frame with its result and the running summary (e.g. a progress bar).

        Raises:
            SourceError: the source cannot be opened. Errors of the pipeline and the sinks propagate
            after the outputs are closed.
        """
        frames = source if isinstance(source, FrameSource) else open_source(source)
        self._stop.clear()
        self._frames = frames
        pipeline = self.pipeline
        embedder = pipeline.embedder
        summary = RunSummary(
            source=frames.name, backend=self.backends(), model=str(embedder.model_path),
            detector=str(getattr(pipeline.detector, "model_path", "") or ""),
        )
        previous = self._install_signals()
        started = time.perf_counter()
        last_save = started
        embeddings_before = pipeline.embeddings_total
        confirmed_before = pipeline.tracker.confirmed_total
        try:
            with ExitStack() as stack:
                stack.callback(self.save_gallery)  # on every exit: end of source, Ctrl-C, SIGTERM, an error
                for sink in self.sinks:
                    stack.callback(sink.close)
                for result in pipeline.run(frames, max_frames=max_frames):
                    for sink in self.sinks:
                        sink.write(result)
                    summary.frames += 1
                    summary.people += len(result)
                    summary.detections += result.detections
                    summary.skipped_boxes += result.skipped_boxes
                    if on_frame is not None:
                        summary.seconds = time.perf_counter() - started
                        summary.identities = len(pipeline.gallery)
                        on_frame(result, summary)
                    if self.gallery_saving is not None and time.perf_counter() - last_save >= self.gallery_saving.every_s:
                        self.save_gallery()
                        last_save = time.perf_counter()
                    if any(getattr(sink, "quit_requested", False) for sink in self.sinks):
                        self.stop()
                    if self._stop.is_set():
                        break  # frames decoded ahead are dropped: stop means now
        finally:
            self._restore_signals(previous)
            self._frames = None
            summary.interrupted = self._stop.is_set()
            summary.seconds = time.perf_counter() - started
            summary.fps = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
            summary.identities = len(pipeline.gallery)
            summary.tracks = pipeline.tracker.confirmed_total - confirmed_before
            summary.embeddings = pipeline.embeddings_total - embeddings_before
            summary.embeddings_per_frame = summary.embeddings / summary.frames if summary.frames else 0.0
            summary.corrupt_frames = frames.stats.corrupt_frames
            summary.reconnects = frames.stats.reconnects
            summary.source_gave_up = frames.stats.gave_up
            summary.stage_ms = pipeline.timer.mean_ms()
        return summary

    def _install_signals(self) -> dict:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, lambda signum, frame: self.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
