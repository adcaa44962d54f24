"""Running a :class:`~edge_reid.pipeline.Pipeline` over a whole source: what ``edge-reid run`` does.

:class:`Runner` feeds every frame's result to the sinks (:mod:`edge_reid.sinks`), stops
cleanly on Ctrl-C / SIGTERM (or a sink's quit request) after writing out what was
produced, keeps a persistent gallery (loaded by the caller, saved every few seconds by a
background thread, so that no frame waits for the disk, and on every exit, pruned of old
strangers but never of people in view), and returns
the :class:`~edge_reid.summary.RunSummary`. An output that fails while being written
(disk full, I/O error) ends the run the same way, and is raised afterwards as
:class:`~edge_reid.errors.OutputWriteError` carrying the summary. The CLI adds only its
options, a progress bar and the printed table.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from edge_reid.defaults import GALLERY_SAVE_EVERY_S, PRUNE_MIN_AGE_S
from edge_reid.errors import OutputPathError, OutputWriteError
from edge_reid.line_output import describe_os_error
from edge_reid.matching.gallery_lock import RUN_HOLDER, gallery_lock
from edge_reid.output_paths import check_writable, same_file
from edge_reid.pipeline import Pipeline
from edge_reid.results import FrameResult
from edge_reid.sources import FrameSource, open_source
from edge_reid.summary import RunSummary


class Sink(Protocol):
    """Where frame results go (:mod:`edge_reid.sinks`): written in frame order, closed once at the end.

    An application may add its own: any object with these two methods.
    """

    def write(self, result: FrameResult) -> None:
        """Take one frame's :class:`~edge_reid.results.FrameResult` (its ``image`` is the source's
        frame, not a copy: copy it to keep or change it).

        Raises:
            OutputWriteError: the output failed; the run stops and reports it (exit code 3).
        """
        ...

    def close(self) -> None:
        """Flush and finish the output; called once, also after Ctrl-C or a failure.

        Raises:
            OutputWriteError: the output could not be finished.
        """
        ...


@dataclass(frozen=True)
class GallerySaving:
    """Keeping a gallery on disk during a run.

    Attributes:
        path: the ``.edgereid`` file to write (atomically).
        every_s: seconds between saves, on the monotonic clock (a jump of the wall clock neither
            hastens nor delays one), and one save on every exit. The saves during a run are written by a
            background thread (the frame loop only prunes; the thread copies the gallery, holding its lock for
            the copy only, and writes the copy), counted from the end of the previous one; the save on exit is
            written before :meth:`Runner.run` returns.
        prune_after_s: before each save, forget unnamed identities not seen for this many
            seconds (None: never), measured as :meth:`Gallery.prune <edge_reid.matching.gallery.Gallery.prune>`
            does without ``now`` (within a run, on the monotonic clock). Identities held by a live track are always kept.

    Raises:
        ValueError: ``every_s`` not positive, or ``prune_after_s`` below :data:`PRUNE_MIN_AGE_S`
            (pruning sooner would drop people who are merely hidden for a moment, and give
            them a new identity when they reappear).
    """

    path: Path
    every_s: float = GALLERY_SAVE_EVERY_S
    prune_after_s: float | None = None

    def __post_init__(self) -> None:
        if not self.every_s > 0:
            raise ValueError(f"gallery save interval must be > 0 seconds, got {self.every_s}")
        if self.prune_after_s is not None and not self.prune_after_s >= PRUNE_MIN_AGE_S:
            raise ValueError(
                f"prune-after {self.prune_after_s:g} s is below the minimum of {PRUNE_MIN_AGE_S:g} s: people hidden "
                "for a moment (behind someone, out of view) would lose their identity and come back as new ones"
            )


#: Seconds between two prunes of a gallery kept in memory only (:class:`Runner`'s ``prune_after_s``), as
#: often as a persistent gallery is saved and pruned by default.
MEMORY_PRUNE_EVERY_S = GALLERY_SAVE_EVERY_S

#: How :meth:`Runner.save_gallery` names itself in the gallery's lock file when called outside a run.
SAVE_HOLDER = "edge-reid Runner.save_gallery"


def _gallery_write_error(exc: Exception, target: Path) -> OutputWriteError:
    """A failed gallery save as an :class:`OutputWriteError` that says whether an earlier save is kept."""
    kept = f"{target} keeps the gallery saved before" if target.is_file() else "no earlier save exists"
    return OutputWriteError(f"{exc}; {kept}", target)


def write_failure(summary: RunSummary, path=None) -> OutputWriteError:
    """The error that ends a run whose outputs failed: the first of ``summary.write_errors``, with how many more.

    Args:
        summary: the run's summary, with at least one write error.
        path: the file that failed, when known.
    """
    more = len(summary.write_errors) - 1
    error = OutputWriteError(summary.write_errors[0] + (f" (and {more} more write error{'s' if more > 1 else ''})" if more else ""), path)
    error.summary = summary
    return error


class Runner:
    """Runs a pipeline over a source into sinks, with stop on signal, gallery saving and a summary.

    Args:
        pipeline: the :class:`~edge_reid.pipeline.Pipeline` (its gallery is the one saved).
        sinks: objects with ``write(result)`` and ``close()`` (e.g. :class:`~edge_reid.sinks.EventsSink`);
            a sink with a true ``quit_requested`` attribute (the display window's ``q``) ends the run.
        gallery_saving: :class:`GallerySaving`, or None to keep the gallery in memory only.
        prune_after_s: with the gallery in memory only (no ``gallery_saving``), forget unnamed identities not
            seen for this many seconds, every :data:`MEMORY_PRUNE_EVERY_S` seconds of the run (a camera run for
            weeks would otherwise keep one identity for every stranger it ever saw: about 4-25 kB each, and
            matching slows in proportion). None: never. A persistent gallery is pruned by its
            :class:`GallerySaving`'s own ``prune_after_s`` instead.
        handle_signals: stop cleanly on SIGINT (Ctrl-C) and SIGTERM while running (only
            possible in the main thread; elsewhere call :meth:`stop`). The handlers set with
            :func:`signal.signal` before the run are put back after it; one a C extension installed
            itself (with ``sigaction``, outside Python's :mod:`signal`) cannot be, and is replaced by
            Python's: in such a process pass False and call :meth:`stop` from the application's own handler.

    Raises:
        ValueError: ``prune_after_s`` below :data:`~edge_reid.defaults.PRUNE_MIN_AGE_S`, or given with
            ``gallery_saving``.

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
        prune_after_s: float | None = None,
    ) -> None:
        if prune_after_s is not None and gallery_saving is not None:
            raise ValueError("prune_after_s is for a gallery kept in memory: give GallerySaving(..., prune_after_s=...) instead")
        if prune_after_s is not None:
            GallerySaving(Path("memory"), prune_after_s=prune_after_s)  # the same check of the age (ValueError)
        self.prune_after_s = prune_after_s
        self.pipeline = pipeline
        self.sinks = list(sinks)
        self.gallery_saving = gallery_saving
        self.handle_signals = handle_signals
        self._stop = threading.Event()
        self._frames: FrameSource | None = None
        self._holds_lock = False  # run() holds the gallery's lock (save_gallery() takes it otherwise)
        self._saving_to: Path | None = None  # where saves go after the gallery file was changed by another program
        self._writer: threading.Thread | None = None  # the save being written in the background, if any
        self._writer_error: BaseException | None = None  # what that save raised, for the frame loop to raise
        self._saved_at = 0.0  # perf_counter() when the last save during the run ended

    def backends(self) -> str:
        """Where the models run, e.g. ``onnxruntime (CPU, 1 thread), graph level extended (tuned)``, or ``openvino 2026.4.1 CPU fp32, 2 threads; detector ...``."""
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
        """Prune (when configured) and save the gallery now; nothing without :class:`GallerySaving`.

        Outside :meth:`run` it holds the gallery's lock while saving (:mod:`edge_reid.matching.gallery_lock`).
        A gallery file changed by another program since this gallery read or wrote it (e.g. a
        ``Gallery.save`` of its own) is not saved over: this gallery goes to a file beside it,
        ``people.run-YYYYmmdd-HHMMSS.edgereid``, and so do its later saves.

        Raises:
            OutputWriteError: the file could not be written (disk full, I/O error); it keeps the
                gallery saved before (saves are atomic), which the message says, or that none exists.
                Also when the file was changed by another program (the message names where this
                gallery was saved instead).
            GalleryInUseError: outside :meth:`run`, another process holds the gallery's lock.
        """
        saving = self.gallery_saving
        if saving is None:
            return
        self._wait_for_writer()  # a save of the run being written in the background: finished first
        if self._holds_lock:
            self._save_gallery(saving)
            return
        try:
            path = check_writable(saving.path, "gallery")
        except OutputPathError as exc:
            raise _gallery_write_error(exc, Path(saving.path)) from None
        with gallery_lock(path, SAVE_HOLDER):
            self._save_gallery(saving)

    def _save_gallery(self, saving: GallerySaving, background: bool = False) -> None:
        """Prune and save; ``background``: only prune here, and copy and write the gallery in a thread
        (:meth:`_writer_done` raises its failure), unless the file was changed by another program."""
        gallery = self.pipeline.gallery
        if saving.prune_after_s is not None:
            gallery.prune(saving.prune_after_s, keep=self.pipeline.identities.held_identities())
        changed = self._saving_to is None and self._saves_over_origin(saving.path) and gallery.changed_on_disk()
        if changed:
            stem, suffix = Path(saving.path).stem, Path(saving.path).suffix or ".edgereid"
            self._saving_to = Path(saving.path).with_name(f"{stem}.run-{time.strftime('%Y%m%d-%H%M%S')}{suffix}")
        target = self._saving_to or Path(saving.path)
        if background and not changed:
            self._writer = threading.Thread(target=self._write_in_background, args=(target,), name="edge-reid gallery save")
            self._writer.start()
            return
        try:
            gallery.save(target)
        except (OutputPathError, OutputWriteError) as exc:
            raise _gallery_write_error(exc, target) from None
        if changed:
            raise OutputWriteError(
                f"gallery file {saving.path} was changed by another program during this run: not saved over (its change "
                f"is kept); this run's gallery was saved to {target} instead", saving.path,
            )

    def _write_in_background(self, target: Path) -> None:
        """The thread of a save during a run: copy the gallery (its lock held for the copy only: frames wait for a
        memory copy at most, never for the disk) and write the copy; what it raised is kept for the frame loop."""
        gallery = self.pipeline.gallery
        try:
            gallery.write_snapshot(gallery.snapshot(), target)
        except (OutputPathError, OutputWriteError) as exc:
            self._writer_error = _gallery_write_error(exc, target)
        except BaseException as exc:  # raised again in the frame loop's thread
            self._writer_error = exc
        finally:
            self._saved_at = time.perf_counter()

    def _writer_done(self) -> bool:
        """Whether no save is being written in the background; the failure of one that ended is raised here
        (:class:`OutputWriteError` as a save in the loop would have raised it), once."""
        writer = self._writer
        if writer is None:
            return True
        if writer.is_alive():
            return False
        writer.join()
        self._writer = None
        error, self._writer_error = self._writer_error, None
        if error is not None:
            raise error
        return True

    def _wait_for_writer(self) -> None:
        """Wait for a save being written in the background to end; raises its failure (:meth:`_writer_done`)."""
        if self._writer is not None:
            self._writer.join()
        self._writer_done()

    def check_gallery_path(self) -> None:
        """Refuse, before any work, a gallery file that cannot be written or that saving would replace.

        Saving writes the pipeline's gallery over ``GallerySaving.path``: when that file exists but
        the gallery was not loaded from it (nor saved to it), or it was changed since (e.g. by
        ``edge-reid gallery rename``), what it holds would be lost.

        Raises:
            OutputPathError: the path is a folder or its folder cannot be written (missing folders
                are created), or it is an existing gallery file this pipeline's gallery did not
                come from or that changed since it was read.
        """
        saving = self.gallery_saving
        if saving is None:
            return
        self._check_gallery_is_ours(check_writable(saving.path, "gallery"))

    def _saves_over_origin(self, path) -> bool:
        """True when ``path`` is the existing file the gallery was read from or last saved to."""
        origin = self.pipeline.gallery.source_path
        return origin is not None and origin.exists() and Path(path).exists() and same_file(origin, path)

    def _check_gallery_is_ours(self, path: Path) -> None:
        """The half of :meth:`check_gallery_path` after the path was found writable."""
        if path.exists() and not self._saves_over_origin(path):
            raise OutputPathError(
                f"gallery file {path} already exists and this pipeline's gallery was not loaded from it: saving would "
                f"replace the identities it holds. Load it first (Pipeline(gallery=Gallery.open({str(path)!r}, embedder.dim, "
                "embedder.model_id))), or save to a new file"
            )
        if self.pipeline.gallery.changed_on_disk():
            raise OutputPathError(
                f"gallery file {path} changed since this pipeline's gallery was read from it (another program saved "
                "it): saving would undo that change. Start again (a run reads it afresh; in Python, Gallery.open it "
                "again and make a new Pipeline)"
            )

    def run(
        self,
        source: FrameSource | str | int,
        max_frames: int | None = None,
        on_frame: Callable[[FrameResult, RunSummary], None] | None = None,
    ) -> RunSummary:
        """Process the source to its end, to ``max_frames`` or to a stop; returns the summary.

        Every sink is closed and the gallery saved on every exit, an error included. A write that
        fails (a sink or a gallery save: disk full, I/O error) ends the run like a stop: the other
        outputs are closed and the gallery saved, then the error is raised with the summary.

        Args:
            source: a :class:`~edge_reid.sources.FrameSource`, or what :func:`~edge_reid.sources.open_source` takes.
            max_frames: stop after this many frames (None: until the source ends or a stop).
            on_frame: called after each frame with its result and the running summary (e.g. a progress bar).

        Raises:
            SourceError: the source cannot be opened.
            DataError: an image folder's MOTChallenge ``seqinfo.ini`` is not valid.
            ValueError: ``source`` is a :class:`~edge_reid.sources.FrameSource` that was read before.
            OutputPathError: the gallery file cannot be written, or exists and is not the pipeline
                gallery's own (:meth:`check_gallery_path`; raised before the source is opened).
            GalleryInUseError: another run is saving the same gallery file (its lock is held for
                the whole run: :mod:`edge_reid.matching.gallery_lock`).
            OutputWriteError: an output failed while being written; its ``summary`` attribute is the
                run's :class:`~edge_reid.summary.RunSummary`, whose ``write_errors`` lists every
                failure (the error's message is the first). Other errors of the pipeline and the
                sinks propagate after the outputs are closed.
        """
        if isinstance(source, FrameSource):
            source.check_unread()
        self._stop.clear()  # here, not later: a stop (Ctrl-C) while the lock is awaited or the source opens still counts
        previous = self._install_signals()
        try:
            saving = self.gallery_saving
            if saving is None:
                return self._run(source, max_frames, on_frame)
            path = check_writable(saving.path, "gallery")  # its folder made, before the lock file goes there
            with gallery_lock(path, RUN_HOLDER, should_stop=self._stop.is_set) as held:
                if not held:  # stopped while a gallery command held it: no frame is read, nothing saved
                    return self._run(source, max_frames, on_frame, save=False)
                self._holds_lock = True
                try:
                    self._check_gallery_is_ours(path)
                    return self._run(source, max_frames, on_frame)
                finally:
                    self._holds_lock = False
        finally:
            self._restore_signals(previous)

    def _run(self, source, max_frames, on_frame, save: bool = True) -> RunSummary:
        """The run itself; ``save``: False when the gallery's lock is not held (nothing may be written)."""
        frames = source if isinstance(source, FrameSource) else open_source(source)
        self._frames = frames
        if self._stop.is_set():
            frames.stop()  # a stop that came before the source was known
        pipeline = self.pipeline
        embedder = pipeline.embedder
        summary = RunSummary(
            source=frames.name, backend=self.backends(), model=str(embedder.model_path),
            detector=str(getattr(pipeline.detector, "model_path", "") or ""),
            camera_motion=pipeline.tracker.camera_motion is not None,
            min_box_height=max(pipeline.min_box_height, float(getattr(pipeline.detector, "min_box_height", 0.0))),
        )
        started = time.perf_counter()
        last_save = self._saved_at = started
        pipeline.reset()  # as pipeline.run() does at its first frame: this run's tracks and stage times from 0
        embeddings_before = pipeline.embeddings_total
        results = pipeline.run(frames, max_frames=max_frames)
        unexpected: BaseException | None = None  # a sink's close() failing otherwise than in writing
        try:
            try:
                for result in results if not self._stop.is_set() else ():
                    for sink in self.sinks:
                        _write(sink, result)
                    summary.frames += 1
                    summary.people += len(result)
                    summary.detections += result.detections
                    summary.skipped_boxes += result.skipped_boxes
                    if on_frame is not None:
                        summary.seconds = time.perf_counter() - started
                        summary.identities = len(pipeline.gallery)
                        on_frame(result, summary)
                    if save and self.gallery_saving is not None:
                        if self._writer_done() and time.perf_counter() - self._saved_at >= self.gallery_saving.every_s:
                            self._save_gallery(self.gallery_saving, background=True)  # the lock is held: run() took it
                            self._saved_at = time.perf_counter()  # the writer sets it again when it ends
                    elif self.prune_after_s is not None and time.perf_counter() - last_save >= MEMORY_PRUNE_EVERY_S:
                        pipeline.gallery.prune(self.prune_after_s, keep=pipeline.identities.held_identities())
                        last_save = time.perf_counter()
                    if any(getattr(sink, "quit_requested", False) for sink in self.sinks):
                        self.stop()
                    if self._stop.is_set():
                        break  # frames decoded ahead are dropped: stop means now
            except OutputWriteError as exc:
                summary.write_errors.append(str(exc))
            finally:
                results.close()  # the decoding thread stops and the source is released now
                messages, unexpected = self._close_outputs(save)  # on every exit: end of source, a stop, an error
                for message in messages:
                    if message not in summary.write_errors:
                        summary.write_errors.append(message)
        finally:
            self._frames = None
            summary.interrupted = self._stop.is_set()
            summary.seconds = time.perf_counter() - started
            summary.fps = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
            summary.identities = len(pipeline.gallery)
            summary.tracks = pipeline.tracker.confirmed_total
            summary.embeddings = pipeline.embeddings_total - embeddings_before
            summary.embeddings_per_frame = summary.embeddings / summary.frames if summary.frames else 0.0
            summary.stage_ms = pipeline.timer.mean_ms()
            summary.backend = self.backends()  # again: the detector fits its input to the first frame
            _summarise_source(summary, frames)
        if unexpected is not None:
            raise unexpected  # after every output was closed and the gallery saved
        if summary.write_errors:
            raise write_failure(summary)
        return summary

    def _close_outputs(self, save: bool = True) -> tuple[list[str], BaseException | None]:
        """Close every sink, then save the gallery (when ``save``), every step tried whatever the others do: the
        write failures' messages, and the first other error of a sink's ``close()`` (to raise when
        no error of the run itself is on its way)."""
        failures: list[str] = []
        unexpected: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except OutputWriteError as exc:
                failures.append(str(exc))
            except OSError as exc:
                failures.append(f"cannot write {_sink_name(sink)}: {describe_os_error(exc)}")
            except Exception as exc:  # a custom sink's own fault: the others are still closed, the gallery still saved
                unexpected = unexpected or exc
        try:
            if save:
                self._wait_for_writer()  # a save written in the background: its failure is reported too
        except OutputWriteError as exc:
            failures.append(str(exc))
        except Exception as exc:
            unexpected = unexpected or exc
        try:
            if save:
                self.save_gallery()
        except OutputWriteError as exc:
            failures.append(str(exc))
        return failures, unexpected

    def _install_signals(self) -> dict:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, lambda signum, frame: self.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _sink_name(sink: Sink) -> str:
    path = getattr(sink, "path", None)
    return f"to {path}" if path is not None else f"to {type(sink).__name__}"


def _write(sink: Sink, result: FrameResult) -> None:
    """``sink.write(result)``, with an :class:`OSError` of a sink of the caller's own turned into an
    :class:`~edge_reid.errors.OutputWriteError` (the sinks of :mod:`edge_reid.sinks` raise that already)."""
    try:
        sink.write(result)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {_sink_name(sink)}: {describe_os_error(exc)}", getattr(sink, "path", None)) from None


def _summarise_source(summary: RunSummary, frames: FrameSource) -> None:
    """Copy what happened to the source into the summary (counts, an early end, skipped images)."""
    stats = frames.stats
    summary.corrupt_frames = stats.corrupt_frames
    summary.reconnects = stats.reconnects
    summary.dropped_frames = stats.dropped_frames
    summary.source_gave_up = stats.gave_up
    summary.declared_frames = stats.declared_frames
    summary.ended_at_frame = stats.ended_at_frame
    summary.end_reason = stats.end_reason
    summary.end_message = stats.end_message
    summary.corrupt_limit = stats.corrupt_limit if frames.kind == "file" else None
    summary.skipped_files = [{"file": skipped.path.name, "reason": skipped.reason} for skipped in stats.skipped_files]
    summary.passes = stats.passes
