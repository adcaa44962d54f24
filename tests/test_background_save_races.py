"""A gallery written by a background thread (Runner's saves during a run) while other threads use it.

Gallery.write_snapshot writes without the gallery's lock, so that frames go on; these tests pin what other
threads see meanwhile: no write of the gallery's own taken for another program's change, and no earlier copy
written over a later one.
"""

import threading

import numpy as np
import pytest

import edge_reid.matching.gallery as gallery_module
from edge_reid.matching.gallery import Gallery
from edge_reid.pipeline import Pipeline
from edge_reid.runner import GallerySaving, Runner


def _unit(rng, rows, dim):
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _gallery(identities: int = 4) -> Gallery:
    rng = np.random.default_rng(3)
    gallery = Gallery(16, model_id="m")
    for i in range(identities):
        gallery.add(_unit(rng, 2, 16), timestamp=1000.0 + i)
    return gallery


def test_a_write_of_its_own_under_way_is_not_a_change_by_another_program(tmp_path, monkeypatch):
    """changed_on_disk() asked while a background write has replaced the file but not yet recorded it (the
    directory's fsync) answers for the file once recorded: False. A True made Runner divert the run's saves
    to people.run-*.edgereid, leaving people.edgereid stale for the next run."""
    path = tmp_path / "g.edgereid"
    gallery = _gallery()
    gallery.save(path)
    real_write = gallery_module.write_gallery_file
    replaced, release = threading.Event(), threading.Event()

    def slow_after_replace(*args, **kwargs):
        real_write(*args, **kwargs)
        replaced.set()
        release.wait(30)

    monkeypatch.setattr(gallery_module, "write_gallery_file", slow_after_replace)
    gallery.add(_unit(np.random.default_rng(4), 3, 16), timestamp=3000.0)  # the file's size changes
    writer = threading.Thread(target=lambda: gallery.write_snapshot(gallery.snapshot(), path))
    writer.start()
    try:
        assert replaced.wait(30)
        answers = []
        asker = threading.Thread(target=lambda: answers.append(gallery.changed_on_disk()))
        asker.start()
        asker.join(0.3)
        release.set()
        asker.join(30)
    finally:
        release.set()
        writer.join(30)
    assert answers == [False], "the gallery's own write in the background was taken for another program's"
    assert not gallery.changed_on_disk() and len(Gallery.load(path)) == len(gallery) == 5


def test_an_earlier_snapshot_is_not_written_over_a_later_save(tmp_path):
    """A background writer's copy taken before another thread's save of the same file, written after it: the
    file keeps the later save (the lock of Gallery.save no longer covers the background write)."""
    path = tmp_path / "g.edgereid"
    gallery = _gallery()
    earlier = gallery.snapshot()  # the background thread's copy, its write still to come
    gallery.add(_unit(np.random.default_rng(5), 2, 16), timestamp=2000.0)
    gallery.save(str(path))  # another thread's save (a str: the same file however spelled)
    gallery.write_snapshot(earlier, path)
    assert len(Gallery.load(path)) == len(gallery) == 5, "an earlier copy of the gallery was written over a later one"
    assert not gallery.changed_on_disk()
    gallery.write_snapshot(earlier, tmp_path / "other.edgereid")  # another file: written
    assert len(Gallery.load(tmp_path / "other.edgereid")) == 4
    later = gallery.snapshot()
    gallery.add(_unit(np.random.default_rng(6), 2, 16), timestamp=2500.0)
    gallery.write_snapshot(later, path)  # later than the file's: written
    assert len(Gallery.load(path)) == 5 and gallery.source_path == path


def test_a_gallery_copied_or_pickled_still_saves(tmp_path):
    """The lock of the file's writes is left out of a copy, as the gallery's lock is, and the copy gets its own."""
    import copy
    import pickle

    gallery = _gallery()
    for twin in (copy.deepcopy(gallery), pickle.loads(pickle.dumps(gallery))):
        twin.save(tmp_path / "twin.edgereid")
        assert len(Gallery.load(tmp_path / "twin.edgereid")) == 4 and not twin.changed_on_disk()


@pytest.mark.parametrize("error", [RuntimeError("a sink's own fault"), KeyboardInterrupt()])
def test_a_run_ended_by_an_error_waits_for_its_background_write(tmp_path, embedder, detector, vtest_path, monkeypatch, error):
    """A sink raising (or a Ctrl-C raised as KeyboardInterrupt: handle_signals=False) while a save is being written
    in the background: run() raises it only after that write ended and the gallery was saved in its thread, so no
    writer thread outlives the run (nor the gallery's lock file) and the file holds the gallery as it ended."""
    real_write = gallery_module.write_gallery_file
    loop_thread = threading.current_thread()
    writing, release, order = threading.Event(), threading.Event(), []

    def blocking_write(*args, **kwargs):
        if threading.current_thread() is not loop_thread:
            writing.set()
            release.wait(60)
        real_write(*args, **kwargs)
        order.append(threading.current_thread() is loop_thread)

    monkeypatch.setattr(gallery_module, "write_gallery_file", blocking_write)

    class FailingSink:
        def write(self, result) -> None:
            if writing.is_set() and len(pipeline.gallery):  # the write blocked, people in the gallery
                threading.Timer(0.3, release.set).start()
                raise error

        def close(self) -> None:
            pass

    path = tmp_path / "g.edgereid"
    pipeline = Pipeline(embedder, detector)
    runner = Runner(pipeline, [FailingSink()], GallerySaving(path, every_s=1e-6), handle_signals=False)
    try:
        with pytest.raises(type(error)):
            runner.run(str(vtest_path), max_frames=40)
    finally:
        release.set()
    assert not [t for t in threading.enumerate() if t.name == "edge-reid gallery save"], "a writer outlived run()"
    assert order[-2:] == [False, True], "the save on exit was not written after the background one"
    assert len(Gallery.load(path)) == len(pipeline.gallery) > 0
