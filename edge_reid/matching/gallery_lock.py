"""One writer per gallery file at a time: an advisory lock beside the file (``people.edgereid.lock``).

A gallery is read, changed in memory and written back whole (atomically). Two writers at once
(``edge-reid run --gallery`` saving every minute and ``edge-reid gallery rename`` meanwhile, or two
``enroll`` commands) would each write back their own copy, and the one written last would undo the
other's change without a word. So every writer holds this lock from reading the file to its last
write: a ``run`` for its whole length, a ``gallery`` command for its one change. A second writer
waits for a short command to finish and is refused at once, with the holder named, by a run.

POSIX ``flock`` on a separate lock file (the gallery file itself is replaced by each atomic save,
so a lock on it would not outlive the first save). The lock file stays (empty but for the
holder's description); it is released when its holder exits, a crash included. Where ``fcntl``
does not exist (Windows) nothing is locked.

A writer killed in the middle of a save (``kill -9``, power loss) leaves its temporary file beside
the gallery (the gallery itself stays whole: :mod:`edge_reid.atomic`); as large as the gallery, on a
device with little storage. Whoever takes the lock next removes such leftovers: with the lock held, no
other process can be writing one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from edge_reid.errors import DataError, OutputPathError

#: How long a writer waits for a ``gallery`` command holding the lock (a run is never waited for).
WAIT_FOR_COMMAND_S = 60.0
#: How a run names itself in the lock file (a second writer is refused at once when it reads this).
RUN_HOLDER = "edge-reid run"


class GalleryInUseError(DataError):
    """Another process is writing the gallery file (the message names it and what to do)."""


def lock_path(gallery_path: str | os.PathLike) -> Path:
    """The lock file of a gallery: ``people.edgereid.lock`` beside ``people.edgereid``."""
    path = Path(gallery_path)
    return path.with_name(path.name + ".lock")


@contextmanager
def gallery_lock(
    gallery_path: str | os.PathLike, holder: str, wait_s: float = WAIT_FOR_COMMAND_S, should_stop: Callable[[], bool] | None = None
) -> Iterator[bool]:
    """Hold the gallery's write lock for the ``with`` block, which gets True (``as held``).

    Args:
        gallery_path: the ``.edgereid`` file (it need not exist yet).
        holder: who holds it, for others' messages, e.g. ``"edge-reid run"`` (:data:`RUN_HOLDER`)
            or ``"edge-reid gallery rename"``; the process id is added.
        wait_s: seconds to wait for a holder that is not a run.
        should_stop: checked while waiting (e.g. a run's stop on Ctrl-C); once it is true the wait
            ends and the block gets False: the lock is not held, nothing may be written.

    Raises:
        GalleryInUseError: a run holds it, or another holder did not let go within ``wait_s``.
        OutputPathError: the lock file is a symbolic link (a planted one would have its target truncated).
        OSError: the lock file cannot be created (check the folder is writable first).
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        yield True
        return
    path = lock_path(gallery_path)
    try:  # never through a link (edge-reid makes none): one planted in a shared folder would have this truncate its target
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputPathError(f"cannot lock gallery {gallery_path}: its lock file {path} is a symbolic link, which "
                                  "edge-reid never makes (another user's, in a shared folder?); remove it") from None
        raise
    try:
        deadline = time.monotonic() + wait_s
        while (other := _try_lock(fcntl, descriptor)) is not None:
            if other.startswith(RUN_HOLDER) or time.monotonic() >= deadline:
                raise GalleryInUseError(_in_use_message(gallery_path, other))
            if should_stop is not None and should_stop():
                yield False
                return
            time.sleep(0.2)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{holder} (pid {os.getpid()}) since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        remove_leftover_temporaries(gallery_path)
        try:
            yield True
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


#: A gallery's temporary file unchanged for this long (seconds) is a killed save's leftover. A save in
#: progress holds the lock, but a program of the user's may save with :meth:`Gallery.save` and no lock
#: (README, "Gallery: remember people across runs"): its file is being written, or flushed to a slow card, right now; ten
#: minutes is far beyond any save's pause between writes.
LEFTOVER_AGE_S = 600.0


def remove_leftover_temporaries(gallery_path: str | os.PathLike, older_than_s: float = LEFTOVER_AGE_S) -> list[Path]:
    """Remove the temporary files that saves of ``gallery_path`` killed midway left beside it (named as
    :func:`edge_reid.atomic.atomic_write_bytes` names them: ``.people.edgereid.<8 characters>.tmp``, in the
    folder of the file a link points to, and not modified for ``older_than_s`` seconds, so that a save
    another program makes without the lock is not cut off); returns those removed. Call it only with the
    gallery's lock held (:func:`gallery_lock` does). Files that cannot be removed are left."""
    removed = []
    for leftover in temporaries_of(gallery_path):
        with contextlib.suppress(OSError):
            if time.time() - leftover.stat().st_mtime >= older_than_s:
                leftover.unlink()
                removed.append(leftover)
    return removed


def temporaries_of(gallery_path: str | os.PathLike) -> list[Path]:
    """The temporary files of saves of ``gallery_path`` beside it, whatever their age (named as
    :func:`edge_reid.atomic.atomic_write_bytes` names them: ``.people.edgereid.<8 characters>.tmp``, in the folder of
    the file a link points to; regular files only). Each is a whole or partial copy of the gallery as some save
    had it: after ``gallery remove`` one may still hold the people removed (:func:`remove_leftover_temporaries`
    leaves those younger than :data:`LEFTOVER_AGE_S`). Sorted by name; [] when the folder cannot be read."""
    target = Path(os.path.realpath(gallery_path))
    pattern = re.compile(r"\." + re.escape(target.name) + r"\.[a-z0-9_]{8}\.tmp")
    try:
        names = sorted(os.listdir(target.parent))
    except OSError:
        return []
    found = []
    for name in names:
        path = target.parent / name
        with contextlib.suppress(OSError):
            if pattern.fullmatch(name) and path.is_file() and not path.is_symlink():
                found.append(path)
    return found


def refuse_if_a_run_holds(gallery_path: str | os.PathLike) -> None:
    """Refuse at once, before a command touches any of its outputs, a gallery a run holds (it would be
    refused when it takes the lock anyway, after emptying its result files). Creates no lock file.

    Raises:
        GalleryInUseError: a run holds the gallery's lock.
    """
    try:
        import fcntl
    except ImportError:
        return
    try:
        descriptor = os.open(lock_path(gallery_path), os.O_RDWR)
    except OSError:  # no lock file: nobody holds it
        return
    try:
        other = _try_lock(fcntl, descriptor)
        if other is None:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
        elif other.startswith(RUN_HOLDER):
            raise GalleryInUseError(_in_use_message(gallery_path, other))
    finally:
        os.close(descriptor)


def _try_lock(fcntl, descriptor: int) -> str | None:
    """Take the lock without waiting: None when taken, else who holds it (its lock file's text, "" when unknown)."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return _read_holder(descriptor)


def _read_holder(descriptor: int) -> str:
    try:
        return os.pread(descriptor, 512, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _in_use_message(gallery_path, holder: str) -> str:
    who = holder or "another edge-reid process"
    if holder.startswith(RUN_HOLDER):
        return (
            f"gallery {gallery_path} is in use by {who}, which saves it as it runs: a change made now would be "
            "overwritten by its next save. Stop the run (Ctrl-C saves it), make the change, then start it again"
        )
    return f"gallery {gallery_path} is being changed by {who}; try again when it has finished"
