"""Single slow frames of the run loop: a gallery save during a run is written off the frame loop's thread.

Each save used to be written in the loop's thread holding the gallery's lock: with 10,000 identities every
``--save-every`` froze the frames for the whole write (about 1 s here, seconds on an SD card). These tests
assert behaviour, never timing (benchmarks/loop_hiccups.py measures the frame times).
"""

import threading

import numpy as np
import pytest

import edge_reid.matching.gallery as gallery_module
from edge_reid.errors import OutputWriteError
from edge_reid.matching.gallery import Gallery
from edge_reid.matching.gallery_file import read_gallery_file
from edge_reid.pipeline import Pipeline
from edge_reid.runner import GallerySaving, Runner


def _unit(rng, rows, dim):
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_save_during_a_run_does_not_hold_up_frames(tmp_path, embedder, detector, vtest_path, monkeypatch):
    """A gallery write made to block: frames go on while it is blocked, and a stop still ends with the file complete."""
    real_write = gallery_module.write_gallery_file
    loop_thread = threading.current_thread()
    writers, writing, release = [], threading.Event(), threading.Event()

    def blocking_write(*args, **kwargs):
        writers.append(threading.current_thread())
        if threading.current_thread() is not loop_thread:
            writing.set()
            release.wait(120)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(gallery_module, "write_gallery_file", blocking_write)
    path = tmp_path / "g.edgereid"
    pipeline = Pipeline(embedder, detector)
    runner = Runner(pipeline, [], GallerySaving(path, every_s=1e-6), handle_signals=False)
    during = []

    def on_frame(result, summary) -> None:
        if writing.is_set() and not release.is_set():
            during.append(result.frame_index)
            if len(during) == 5:
                runner.stop()  # a Ctrl-C while the write is blocked: the run still ends with the gallery saved
                release.set()

    try:
        summary = runner.run(str(vtest_path), max_frames=40, on_frame=on_frame)
    finally:
        release.set()
    assert writers and writers[0] is not loop_thread, "the save during the run was written in the frame loop's thread"
    assert len(during) == 5, "frames waited for the gallery's write"
    assert summary.interrupted and not summary.write_errors
    assert writers[-1] is loop_thread, "the save at the end is written before run() returns"
    assert len(Gallery.load(path)) == len(pipeline.gallery) == summary.identities > 0


@pytest.mark.parametrize("spare_rows", [gallery_module.SNAPSHOT_SPARE_ROWS, -10], ids=["spare", "rows added meanwhile"])
def test_a_snapshot_written_later_is_the_gallery_when_it_was_taken(tmp_path, monkeypatch, spare_rows):
    """The copy is a copy: adding and removing identities after it (rows move in the store) changes nothing in
    the file it makes, which holds what a synchronous save at that moment holds; also when more rows were added
    between the two holds of the lock than the copy's memory made beforehand has room for (spare_rows < 0)."""
    monkeypatch.setattr(gallery_module, "SNAPSHOT_SPARE_ROWS", spare_rows)
    rng = np.random.default_rng(1)
    gallery = Gallery(16, model_id="m")
    ids = [gallery.add(_unit(rng, 3, 16), timestamp=1000.0 + i) for i in range(20)]
    gallery.enroll("Alice", _unit(rng, 2, 16), timestamp=2000.0)
    gallery.remove(ids[3])  # swap-with-last: rows out of identity order
    gallery.save(tmp_path / "sync.edgereid")
    snapshot = gallery.snapshot()
    for identity in ids[5:12]:
        gallery.remove(identity)
    gallery.add(_unit(rng, 8, 16), timestamp=3000.0)
    gallery.observe(ids[0], _unit(rng, 1, 16)[0], timestamp=4000.0, threshold=-1.0)
    gallery.write_snapshot(snapshot, tmp_path / "later.edgereid")
    sync_header, sync_payload = read_gallery_file(tmp_path / "sync.edgereid")
    later_header, later_payload = read_gallery_file(tmp_path / "later.edgereid")
    sync_header.pop("saved_at"), later_header.pop("saved_at")
    assert later_header == sync_header and np.array_equal(later_payload, sync_payload)
    assert gallery.source_path == tmp_path / "later.edgereid" and not gallery.changed_on_disk()


def test_a_failing_background_write_ends_the_run_with_the_write_error(tmp_path, embedder, detector, vtest_path, monkeypatch):
    """A disk full during a save written off the loop: the run ends as a failing save always did (OutputWriteError
    with the summary's write_errors: exit 3 in the CLI), and the save on exit is still tried and made."""
    real_write = gallery_module.write_gallery_file
    loop_thread = threading.current_thread()
    failed = []

    def full_disk(path, *args, **kwargs):
        if threading.current_thread() is not loop_thread and not failed:
            failed.append(path)
            raise OutputWriteError(f"cannot write gallery {path}: No space left on device", path)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(gallery_module, "write_gallery_file", full_disk)
    path = tmp_path / "g.edgereid"
    pipeline = Pipeline(embedder, detector)
    runner = Runner(pipeline, [], GallerySaving(path, every_s=1e-6), handle_signals=False)
    with pytest.raises(OutputWriteError, match="No space left on device") as caught:
        runner.run(str(vtest_path), max_frames=40)
    summary = caught.value.summary
    assert failed, "no save was written off the frame loop's thread"
    assert summary is not None and len(summary.write_errors) == 1 and "no earlier save exists" in summary.write_errors[0]
    assert summary.frames < 40, "the failure ended the run"
    assert len(Gallery.load(path)) == len(pipeline.gallery) == summary.identities


def test_a_background_write_failing_as_the_run_stops_is_reported_and_the_save_on_exit_made(
    tmp_path, embedder, detector, vtest_path, monkeypatch
):
    """The failure of a save still being written when the loop ends (a stop, the source's end) is one of the run's
    write errors, and the save on exit is still made after it."""
    real_write = gallery_module.write_gallery_file
    loop_thread = threading.current_thread()
    writing, release = threading.Event(), threading.Event()

    def failing_late(path, *args, **kwargs):
        if threading.current_thread() is not loop_thread:
            writing.set()
            release.wait(60)
            raise OutputWriteError(f"cannot write gallery {path}: Input/output error", path)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(gallery_module, "write_gallery_file", failing_late)
    path = tmp_path / "g.edgereid"
    pipeline = Pipeline(embedder, detector)
    runner = Runner(pipeline, [], GallerySaving(path, every_s=1e-6), handle_signals=False)

    def on_frame(result, summary) -> None:
        if writing.is_set() and len(pipeline.gallery) and not runner._stop.is_set():
            runner.stop()  # the loop ends now; the write fails after that
            threading.Timer(0.3, release.set).start()

    try:
        with pytest.raises(OutputWriteError, match="Input/output error") as caught:
            runner.run(str(vtest_path), max_frames=40, on_frame=on_frame)
    finally:
        release.set()
    summary = caught.value.summary
    assert summary.interrupted and len(summary.write_errors) == 1 and "Input/output error" in summary.write_errors[0]
    assert len(Gallery.load(path)) == len(pipeline.gallery) == summary.identities > 0


def test_an_unexpected_error_of_the_background_save_is_raised_by_the_run(tmp_path, embedder, detector, vtest_path, monkeypatch):
    """Not a write failure (out of memory while copying the gallery): raised by run() as it would have been in the
    loop's thread, after the save on exit, never lost with the thread."""
    path = tmp_path / "g.edgereid"
    pipeline = Pipeline(embedder, detector)
    gallery, loop_thread = pipeline.gallery, threading.current_thread()
    real_snapshot = gallery.snapshot

    def no_memory():
        if threading.current_thread() is not loop_thread:
            raise MemoryError("copying the gallery")
        return real_snapshot()

    monkeypatch.setattr(gallery, "snapshot", no_memory)
    runner = Runner(pipeline, [], GallerySaving(path, every_s=1e-6), handle_signals=False)
    with pytest.raises(MemoryError, match="copying the gallery"):
        runner.run(str(vtest_path), max_frames=40)
    assert len(Gallery.load(path)) == len(gallery)
