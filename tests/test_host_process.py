"""edge_reid as a library inside someone else's long-lived process (a ROS node, a kiosk app, a web server):
pipelines opened and closed many times, from threads other than the main one, leave nothing behind."""

import threading
import time

import pytest

from edge_reid.detections import Detections
from edge_reid.pipeline import Pipeline
from edge_reid.sources import FrameSource


class _Camera:
    """A live camera (30 frames a second) over the test video's frames; records whether it was released."""

    def __init__(self, frames) -> None:
        self.frames, self.read_count, self.released = frames, 0, False

    def isOpened(self):
        return not self.released

    def read(self):
        time.sleep(1 / 30)
        self.read_count += 1
        return True, self.frames[self.read_count % len(self.frames)]

    def get(self, prop):
        return 0.0

    def release(self):
        self.released = True


class _NoPeople:
    """The caller's own detector: finds nobody."""

    min_box_height = 0.0

    def detect(self, image):
        return Detections.empty()


def _edge_reid_threads(before: set) -> list[str]:
    """edge-reid's threads that were not running at ``before`` (a ``set(threading.enumerate())``: threads of models
    other tests share, such as a session embedder's preprocessing pool, are not this test's)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("edge-reid") and t not in before]


def _wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("newest_only", [True, False])
def test_close_ends_a_run_whose_results_are_still_held(embedder, vtest_frames, prefetch, newest_only):
    """A kiosk keeps ``results = pipeline.run(0)`` and takes a frame per timer tick; its settings page closes the
    pipeline and opens another on the same camera. close() left the run's decode thread and the camera open as
    long as the results were referenced: the new pipeline could not open the camera (a V4L2 device is busy)."""
    before = set(threading.enumerate())
    camera = _Camera(vtest_frames)
    source = FrameSource("/dev/video0", "camera", capture_factory=lambda kind, name: camera, newest_only=newest_only)
    pipeline = Pipeline(embedder, _NoPeople())  # the caller's models: close() closes none of them
    results = pipeline.run(source, prefetch=prefetch)
    assert next(results).frame_index == 0
    pipeline.close()
    assert _wait_for(lambda: camera.released), "the camera stays held after close()"
    assert _wait_for(lambda: not _edge_reid_threads(before)), f"threads left after close(): {_edge_reid_threads(before)}"
    with pytest.raises(StopIteration):
        next(results)  # the run ended with close(): no frame processed by a closed pipeline


def _iterate_in_worker(pipeline: Pipeline, source: FrameSource, **run_options) -> tuple[threading.Thread, list, list]:
    """An app's worker thread iterating ``pipeline.run(source, **run_options)``, started; returns it, the frame
    indices it has seen and the exceptions that ended its loop (appended as they come)."""
    seen, errors = [], []

    def work() -> None:
        try:
            for result in pipeline.run(source, **run_options):
                seen.append(result.frame_index)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    worker = threading.Thread(target=work, name="app-worker")
    worker.start()
    return worker, seen, errors


def test_close_from_another_thread_ends_a_run_in_progress_cleanly(vtest_frames):
    """A Qt worker thread iterates ``pipeline.run(camera)``; the UI thread closes the pipeline. The worker's loop
    ended with a ValueError ("this Embedder ... was closed") raised out of a frame in flight; now the frame in
    flight finishes and the loop ends as after a stop."""
    before = set(threading.enumerate())
    camera = _Camera(vtest_frames)
    source = FrameSource("/dev/video0", "camera", capture_factory=lambda kind, name: camera)
    pipeline = Pipeline()  # its own models: close() closes them
    worker, seen, errors = _iterate_in_worker(pipeline, source)
    assert _wait_for(lambda: seen, 60)
    pipeline.close()
    worker.join(10)
    assert not worker.is_alive()
    assert errors == [], f"the run ended with {errors!r}"
    assert camera.released
    assert _wait_for(lambda: not _edge_reid_threads(before)), f"threads left after close(): {_edge_reid_threads(before)}"


def test_close_while_a_run_without_prefetch_reads_a_frame_ends_it_cleanly(vtest_frames):
    """``run(source, prefetch=0)`` decodes and detects in the caller's thread. A close() from another thread while a
    frame was being read closed the pipeline's detector, and the run then detected on it: the loop ended with
    ValueError("this PersonDetector ... was closed") instead of as after a stop."""
    camera = _Camera(vtest_frames)
    reading, release = threading.Event(), threading.Event()
    read = camera.read

    def slow_read():
        if camera.read_count:  # the second frame: held until the pipeline is closed
            reading.set()
            release.wait(30)
        return read()

    camera.read = slow_read
    source = FrameSource("/dev/video0", "camera", capture_factory=lambda kind, name: camera, newest_only=False)
    pipeline = Pipeline()  # its own models: close() closes them
    worker, seen, errors = _iterate_in_worker(pipeline, source, prefetch=0)
    assert reading.wait(120)
    closer = threading.Thread(target=pipeline.close)
    closer.start()
    closer.join(30)  # close() need not wait for a read (a camera may block for seconds)
    release.set()
    worker.join(30)
    assert not worker.is_alive() and not closer.is_alive()
    assert errors == [], f"the run ended with {errors!r}"
    assert seen == [0]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_close_while_the_pipelines_detector_detects_ends_the_run_cleanly(vtest_frames, prefetch):
    """close() from another thread while the pipeline's own detector works on a frame (in the caller's thread, or
    the decoding thread ahead of it): the run ends as after a stop, not with a closed-model error."""
    camera = _Camera(vtest_frames)
    source = FrameSource("/dev/video0", "camera", capture_factory=lambda kind, name: camera, newest_only=False)
    pipeline = Pipeline()
    detecting, release = threading.Event(), threading.Event()
    detect, calls = pipeline.detector.detect, []

    def slow_detect(image):
        calls.append(1)
        if len(calls) == 2:  # the second frame: held until close() has begun
            detecting.set()
            release.wait(30)
        return detect(image)

    pipeline.detector.detect = slow_detect
    worker, _, errors = _iterate_in_worker(pipeline, source, prefetch=prefetch)
    assert detecting.wait(120)
    closer = threading.Thread(target=pipeline.close)
    closer.start()
    time.sleep(0.3)  # close() has begun: its run told to end, waiting for the frame in flight or closing models
    release.set()
    closer.join(30)
    worker.join(30)
    assert not worker.is_alive() and not closer.is_alive()
    assert errors == [], f"the run ended with {errors!r}"


def _open_fds() -> set[str]:
    import os

    names = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            names.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return names


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="needs /proc (Linux)")
def test_opening_and_closing_pipelines_leaves_no_thread_file_or_process_state(embedder, detector, vtest_path, tmp_path):
    """A long-lived host opens and closes pipelines over and over (a camera replugged, a settings page), some runs
    ending in its own exception: no thread, no open file, and none of the process-wide state a library must leave
    to its host (environment, signal handlers, logging, warnings filters, OpenCV's log level, umask, folder)."""
    import logging
    import os
    import signal
    import warnings

    import cv2

    from edge_reid.runner import Runner
    from edge_reid.sinks import EventsSink

    def state():
        umask = os.umask(0o022)
        os.umask(umask)
        root = logging.getLogger()
        return (
            dict(os.environ), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), root.level,
            list(root.handlers), list(warnings.filters), cv2.utils.logging.getLogLevel(), umask, os.getcwd(),
        )

    list(Pipeline(embedder, detector).run(str(vtest_path), max_frames=1))  # lazy imports done before the snapshot
    threads, files, before = set(threading.enumerate()), _open_fds(), state()
    for cycle in range(6):
        try:
            with Pipeline(embedder, detector) as pipeline:
                if cycle % 3 == 2:
                    Runner(pipeline, [EventsSink(tmp_path / "events.jsonl")]).run(str(vtest_path), max_frames=2)
                for result in pipeline.run(str(vtest_path), max_frames=3):
                    if cycle % 3 == 1:
                        raise KeyError("the host's own error")
        except KeyError:
            pass
    assert _wait_for(lambda: set(threading.enumerate()) == threads), f"threads left: {set(threading.enumerate()) - threads}"
    assert _open_fds() - files == set(), "files left open"
    assert state() == before


def test_close_waits_for_a_frame_given_to_process_in_another_thread(vtest_frames):
    """An app calling ``pipeline.process(frame)`` from its camera thread while its UI thread closes the pipeline:
    close() closed the models under the frame (ValueError "this Embedder ... was closed"); now it waits for it."""
    pipeline = Pipeline()
    detecting, release = threading.Event(), threading.Event()
    detect = pipeline.detector.detect

    def slow_detect(image):
        detecting.set()
        release.wait(30)
        return detect(image)

    pipeline.detector.detect = slow_detect
    results, errors = [], []

    def work() -> None:
        try:
            results.append(pipeline.process(vtest_frames[0], timestamp_s=0.0))
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    worker = threading.Thread(target=work, name="app-camera")
    worker.start()
    assert detecting.wait(60)
    closer = threading.Thread(target=pipeline.close)
    closer.start()
    time.sleep(0.3)  # close() has begun
    release.set()
    worker.join(30)
    closer.join(30)
    assert errors == [], f"the frame ended with {errors!r}"
    assert len(results) == 1 and results[0].frame_index == 0 and results[0].detections > 0, "the frame was processed whole"
