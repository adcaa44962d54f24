"""Several cameras, one gallery: a pipeline per camera, each fed from its own thread, sharing one Gallery,
one Embedder and one PersonDetector (a robot or kiosk with two cameras). The cameras are vtest.avi's
frames cut into a left and a right view (columns 0-480 and 288-768: 192 px seen by both)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edge_reid.detector import PersonDetector
from edge_reid.matching.gallery import Gallery
from edge_reid.pipeline import Pipeline
from edge_reid.tracking import Tracker, TrackerConfig

FPS = 10.0


def _cameras(frames: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return [f[:, :480] for f in frames], [f[:, 288:] for f in frames]


@pytest.fixture(scope="module")
def detector(yolox_path):
    """This module's own detector: its input is fitted to the cut frames (conftest's, to whole ones)."""
    with PersonDetector(yolox_path, score_threshold=TrackerConfig().low_score) as made:
        yield made


def _pipeline(embedder, gallery: Gallery, detector: PersonDetector) -> Pipeline:
    return Pipeline(embedder, detector=detector, gallery=gallery, tracker=Tracker())


def test_pipelines_in_two_threads_sharing_a_detector_take_turns_on_it(yolox_path, embedder, vtest_frames):
    detector = PersonDetector(yolox_path, score_threshold=TrackerConfig().low_score)
    cameras = _cameras(vtest_frames[:6])
    detector.detect(cameras[0][0])  # fits its input to these frames (both cameras' shape) before its backend is wrapped
    alone = [[len(detector.detect(frame)) for frame in camera] for camera in cameras]
    run, inside, most, count = detector.backend.run, [0], [0], threading.Lock()

    def slow_run():  # widens the window in which two threads' letterboxed frames and outputs could mix
        with count:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.02)
            return run()
        finally:
            with count:
                inside[0] -= 1

    detector.backend.run = slow_run
    gallery = Gallery(embedder.dim, model_id=embedder.model_id)
    pipelines = [_pipeline(embedder, gallery, detector) for _ in cameras]
    together, found, errors = threading.Barrier(2, timeout=30), [[], []], []

    def camera(k: int) -> None:
        try:
            for index, frame in enumerate(cameras[k]):
                together.wait()  # both cameras' frames start at once
                found[k].append(pipelines[k].process(frame, index / FPS).detections)
        except BaseException as exc:
            errors.append(exc)
            together.abort()

    threads = [threading.Thread(target=camera, args=(k,)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    assert most[0] == 1, "two threads ran the shared detector at once"
    assert found == alone, "each camera's frames get the detections they get alone"


def test_a_person_seen_by_two_cameras_at_once_can_share_one_identity(embedder, detector, vtest_frames):
    """A track of another camera does not hold an identity away from a track of this one (the cameras may
    overlap): two cameras with the same view give their tracks the same identities, no second set."""
    gallery = Gallery(embedder.dim, model_id=embedder.model_id)
    first, second = _pipeline(embedder, gallery, detector), _pipeline(embedder, gallery, detector)
    for index, frame in enumerate(vtest_frames[:8]):  # interleaved in one thread: the two identity steps take turns
        a, b = first.process(frame, index / FPS), second.process(frame, index / FPS)
    ids = a.identities.identity_ids
    assert len(ids) >= 3 and (ids >= 1).all()
    assert b.identities.identity_ids.tolist() == ids.tolist()
    assert len(gallery) == len(ids), "no identity made twice for one person"


def test_identities_removed_or_pruned_while_both_cameras_hold_them(embedder, detector, vtest_frames):
    """A kiosk's UI thread between two cameras' frames: pruning that keeps the identities both pipelines hold
    changes nothing; a removed identity ("forget me") is dropped by both cameras' tracks, which get new ones."""
    gallery = Gallery(embedder.dim, model_id=embedder.model_id)
    left, right = (_pipeline(embedder, gallery, detector) for _ in range(2))
    cameras = _cameras(vtest_frames)
    for index in range(8):
        left.process(cameras[0][index], index / FPS)
        right.process(cameras[1][index], index / FPS)
    with gallery.lock:  # one step: no frame's identity step in between
        held = left.identities.held_identities() | right.identities.held_identities()
        pruned = gallery.prune(10.0, now=time.time() + 3600, keep=held)
    assert held and held <= {i.identity_id for i in gallery.identities} and not set(pruned) & held
    before = [p.identities.identity_ids.copy() for p in (
        left.process(cameras[0][8], 8 / FPS), right.process(cameras[1][8], 8 / FPS))]
    gone = int(before[0][0])
    gallery.remove(gone)
    after = [left.process(cameras[0][9], 9 / FPS), right.process(cameras[1][9], 9 / FPS)]
    for result in after:
        ids = result.identities.identity_ids
        assert gone not in ids.tolist() and (ids >= 1).all() and len(set(ids.tolist())) == len(ids)


def test_two_camera_threads_and_a_ui_thread_do_not_deadlock(embedder, detector, vtest_frames):
    gallery = Gallery(embedder.dim, model_id=embedder.model_id)
    pipelines = [_pipeline(embedder, gallery, detector) for _ in range(2)]
    cameras, done, errors = _cameras(vtest_frames), threading.Event(), []
    alice = embedder.embed_boxes(vtest_frames[0], np.array([[10.0, 10.0, 60.0, 150.0]], np.float32))

    def camera(k: int) -> None:
        try:
            for index, frame in enumerate(cameras[k]):
                pipelines[k].process(frame, index / FPS)
        except BaseException as exc:
            errors.append(exc)

    def ui() -> None:
        try:
            while not done.is_set():
                enrolled = gallery.enroll("alice", alice)
                with gallery.lock:
                    held = pipelines[0].identities.held_identities() | pipelines[1].identities.held_identities()
                    gallery.prune(10.0, now=time.time() + 3600, keep=held)
                gallery.remove(enrolled)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=camera, args=(k,)) for k in (0, 1)]
    kiosk = threading.Thread(target=ui)
    for thread in (*threads, kiosk):
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    kiosk.join(10)
    assert not any(t.is_alive() for t in (*threads, kiosk)), "a thread is stuck"
    assert not errors, errors


def test_closing_a_detector_while_another_thread_detects_waits_for_that_frame(yolox_path, vtest_frames):
    """close() released the backend while another thread's frame was inside it (a camera thread and a
    UI thread that shuts down): now the close takes its turn."""
    detector = PersonDetector(yolox_path)
    detector.detect(vtest_frames[0])  # fits its input to the frames (a new backend) before that backend is wrapped
    run, inside, events = detector.backend.run, threading.Event(), []

    def slow_run():
        inside.set()
        time.sleep(0.2)
        events.append("ran")
        return run()

    detector.backend.run = slow_run
    close = detector.backend.close
    detector.backend.close = lambda: (events.append("closed"), close())
    found = []
    worker = threading.Thread(target=lambda: found.append(len(detector.detect(vtest_frames[0]))))
    worker.start()
    assert inside.wait(10)
    detector.close()
    worker.join(10)
    assert events == ["ran", "closed"] and found and found[0] > 0
    with pytest.raises(ValueError, match="was closed"):
        detector.detect(vtest_frames[0])
