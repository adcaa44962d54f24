"""One writer per gallery file: a run and a gallery command (or two commands) never undo each other's changes."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from conftest import save_alice_gallery
from edge_reid.cli import main
from edge_reid.errors import OutputPathError
from edge_reid.matching.gallery import Gallery
from edge_reid.matching.gallery_lock import GalleryInUseError, gallery_lock, lock_path
from edge_reid.pipeline import Pipeline
from edge_reid.runner import GallerySaving, Runner


def test_a_gallery_command_during_a_run_is_refused_and_the_run_keeps_every_change(tmp_path, embedder, detector, vtest_path, capsys):
    path = save_alice_gallery(embedder, tmp_path / "people.edgereid")
    pipeline = Pipeline(embedder, detector, gallery=Gallery.open(path, embedder.dim, embedder.model_id))
    codes = []

    def rename_during_the_run(result, running) -> None:
        if running.frames == 3:
            codes.append(main(["gallery", "rename", "-g", str(path), "--id", "1", "--name", "Bob"]))

    Runner(pipeline, [], GallerySaving(path), handle_signals=False).run(str(vtest_path), max_frames=5, on_frame=rename_during_the_run)
    err = " ".join(capsys.readouterr().err.split())
    assert codes == [2] and "is in use by edge-reid run (pid" in err and "Stop the run (Ctrl-C saves it)" in err
    saved = Gallery.load(path)
    assert saved.identities[0].name == "Alice" and len(saved) > 1, "the run's save holds its own identities and Alice"
    assert main(["gallery", "rename", "-g", str(path), "--id", "1", "--name", "Bob"]) == 0, "free again after the run"
    assert lock_path(path).read_text() == "", "no holder left named"


def test_a_second_writer_waits_for_a_command_and_is_refused_past_its_wait(tmp_path):
    path = tmp_path / "people.edgereid"
    released = threading.Event()

    def hold() -> None:
        with gallery_lock(path, "edge-reid gallery enroll"):
            time.sleep(0.6)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    with pytest.raises(GalleryInUseError, match=r"is being changed by edge-reid gallery enroll \(pid \d+\)"):
        with gallery_lock(path, "edge-reid gallery rename", wait_s=0.1):
            pass
    started = time.monotonic()
    with gallery_lock(path, "edge-reid gallery rename", wait_s=10.0):
        assert released.is_set() and time.monotonic() - started < 5, "waited for the first to finish"
    holder.join()


def test_a_run_never_saves_over_a_change_made_after_its_gallery_was_read(tmp_path, embedder, detector, vtest_path):
    path = save_alice_gallery(embedder, tmp_path / "people.edgereid")
    stale = Gallery.open(path, embedder.dim, embedder.model_id)
    time.sleep(0.01)
    assert main(["gallery", "rename", "-g", str(path), "--id", "1", "--name", "Bob"]) == 0  # made while the run was being set up
    before = path.read_bytes()
    with pytest.raises(OutputPathError, match="changed since this pipeline's gallery was read from it"):
        Runner(Pipeline(embedder, detector, gallery=stale), [], GallerySaving(path), handle_signals=False).run(str(vtest_path), max_frames=3)
    assert path.read_bytes() == before and Gallery.load(path).identities[0].name == "Bob"


def test_a_save_killed_midway_leaves_no_temporary_file_once_the_gallery_is_next_written(tmp_path):
    """``kill -9`` during a save leaves its temporary file (as large as the gallery) beside the gallery, which
    stays whole; the next writer to take the lock removes it, and only it: another file's temporaries stay."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "people.edgereid"
    gallery = Gallery(8)
    gallery.add(np.eye(8, dtype=np.float32)[:1], name="Alice")
    gallery.save(path)
    saving = textwrap.dedent(f"""
        import os, sys, time
        import numpy as np
        from edge_reid.matching.gallery import Gallery
        from edge_reid.matching.gallery_lock import gallery_lock
        gallery = Gallery.load({str(path)!r})
        gallery.add(np.eye(8, dtype=np.float32)[1:2], name="Bob")
        os.fsync = lambda fd: (print("writing", flush=True), time.sleep(60))  # stopped inside the save
        with gallery_lock({str(path)!r}, "test"):
            gallery.save({str(path)!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", saving], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    leftovers = [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".people.edgereid.") and leftovers[0].stat().st_size > 0
    assert main(["gallery", "rename", "-g", str(path), "--id", "1", "--name", "Alicia"]) == 0
    assert leftovers[0].exists(), "modified just now: it could be a save in progress (another program, no lock)"
    an_hour_ago = time.time() - 3600
    os.utime(leftovers[0], (an_hour_ago, an_hour_ago))
    others = [tmp_path / ".people.edgereid.bak.abcd1234.tmp", tmp_path / ".friends.edgereid.abcd1234.tmp"]
    for other in others:
        other.write_bytes(b"another file's save in progress")
        os.utime(other, (an_hour_ago, an_hour_ago))
    assert [i.name for i in Gallery.load(path).identities] == ["Alicia"], "the gallery stayed whole"
    assert main(["gallery", "rename", "-g", str(path), "--id", "1", "--name", "Alice"]) == 0
    assert not leftovers[0].exists() and all(other.exists() for other in others)
    assert [i.name for i in Gallery.load(path).identities] == ["Alice"] and os.path.exists(lock_path(path))


def test_leftovers_of_a_linked_gallery_are_removed_where_its_saves_write_them(tmp_path):
    """A gallery reached through a link is saved beside the file the link points to, under that file's name
    (:func:`edge_reid.atomic.atomic_write_bytes`): its leftovers are looked for there, not beside the link."""
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "real.edgereid"
    Gallery(8).save(target)
    link = tmp_path / "people.edgereid"
    link.symlink_to(target)
    leftover = tmp_path / "store" / ".real.edgereid.abcd1234.tmp"
    leftover.write_bytes(b"a save killed midway")
    beside_link = tmp_path / ".people.edgereid.abcd1234.tmp"  # no save of this gallery writes here
    beside_link.write_bytes(b"not this gallery's")
    an_hour_ago = time.time() - 3600
    for old in (leftover, beside_link):
        os.utime(old, (an_hour_ago, an_hour_ago))
    with gallery_lock(link, "test"):
        pass
    assert not leftover.exists() and beside_link.exists() and target.is_file()
