import json
import os
import stat

import pytest

from edge_reid.atomic import atomic_write_bytes, write_json_atomic
from edge_reid.errors import OutputPathError


def test_atomic_write_replaces_whole_files_with_ordinary_permissions(tmp_path):
    target = tmp_path / "sub" / "report.json"
    write_json_atomic(target, {"fps": 28.7})
    assert json.loads(target.read_text()) == {"fps": 28.7}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    atomic_write_bytes(target, b"ab", b"cd")
    assert target.read_bytes() == b"abcd"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"], "no temporary files left"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the umask from Linux's /proc/self/status")
def test_writing_a_file_never_changes_the_process_umask(tmp_path, monkeypatch):
    """The umask is process-wide: setting it to 0 for an instant (to read it) gave files another thread
    of the host application created in that instant mode 0666 under the application's umask 077."""
    old = os.umask(0o077)
    try:
        calls = []
        real_umask = os.umask
        monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real_umask(mask))
        target = write_json_atomic(tmp_path / "summary.json", {"frames": 1})
        assert calls == [], "the process umask was changed while writing"
        assert stat.S_IMODE(target.stat().st_mode) == 0o600, "0666 less the application's umask 077"
    finally:
        os.umask(old)


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "gallery.edgereid"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, b"new", object())  # fails half-way through writing
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gallery.edgereid"]
    with pytest.raises(OutputPathError, match="does not exist"):
        atomic_write_bytes(tmp_path / "missing" / "g.edgereid", b"x", what="gallery", create_parent=False)


def test_a_link_keeps_pointing_at_the_file_it_names(tmp_path):
    target = tmp_path / "reports" / "summary.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "summary.json"
    os.symlink(target, link)
    write_json_atomic(link, {"frames": 3})
    assert link.is_symlink() and json.loads(target.read_text()) == {"frames": 3}


def test_interrupts_held_arrive_when_the_block_ends():
    """A Ctrl-C during the moves of a set of files (calibrate's model, spec, table, report) is held back until
    the last is in place, then raised."""
    import signal

    # Python's own handler, as in a terminal (a job started in the background with & inherits SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    done = []
    try:
        _interrupt_during_moves(done)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert done == ["first", "second"]


def _interrupt_during_moves(done: list) -> None:
    import os
    import signal

    from edge_reid.atomic import interrupts_held

    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("first")
            done.append("second")
        done.append("after")  # never: the interrupt arrives as the block ends
