"""Atomic file writes: a crash or power loss never leaves a half-written file.

Every file edge-reid writes as a whole (galleries, summaries, reports, engines,
manifests, calibration caches) goes through :func:`atomic_write_bytes`: the bytes
go to a temporary file in the target's folder, which is fsync'ed and renamed over
the target with :func:`os.replace` (atomic on POSIX), then the folder is fsync'ed
so the rename itself survives a power loss. Readers see the old file or the new
one, never a mix. A file replaced keeps its permissions (and, where the writer may set it, its group):
an operator who made a gallery owner-only (``chmod 600``) finds it so after the next save. A new file gets
ordinary permissions (0666 less the umask), or owner-only ones (0600 less the umask) when it holds personal
data (``private=True``: galleries of people, exports of their names).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from edge_reid.errors import OutputPathError, OutputWriteError

#: OSError numbers of a write that failed for lack of room or a failing device (exit 3), as opposed
#: to a path that cannot be written at all (exit 2).
WRITE_FAILURES = frozenset(
    code for code in (getattr(errno, name, None) for name in ("ENOSPC", "EDQUOT", "EIO", "EFBIG", "EROFS")) if code is not None
)


def write_error(what: str, path, exc: OSError) -> "OutputPathError | OutputWriteError":
    """The edge-reid error for an OSError while writing ``what`` at ``path``: :class:`OutputWriteError`
    (exit 3) when the disk is full or failing, else :class:`OutputPathError` (exit 2)."""
    message = f"cannot write {what} {path}: {exc.strerror or exc}"
    return OutputWriteError(message, path) if exc.errno in WRITE_FAILURES else OutputPathError(message)


def fsync_directory(directory: str | Path) -> None:
    """Make a rename in ``directory`` durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def give_ordinary_permissions(fd: int) -> None:
    """Give the open file ``fd`` the permissions a plain ``open()`` would (0666 less the umask):
    :func:`tempfile.mkstemp` makes 0600 files, which other users (a service account, a container's
    user) then cannot read once renamed into place.

    Raises:
        OSError: the permissions cannot be changed.
    """
    os.fchmod(fd, 0o666 & ~current_umask())


def take_permissions_of(fd: int, path: str | os.PathLike, private: bool = False) -> None:
    """Give the open file ``fd``, about to replace ``path``, the permissions ``path`` has (its read/write/execute
    bits, and its owner and group where this process may set them), so that replacing a file never widens who may
    read it nor takes it from its owner (``sudo edge-reid gallery ...`` on a user's owner-only gallery); when its
    group cannot be kept (not a member of it), the group bits are cleared, as the writer's own group takes its
    place. When ``path`` does not exist: 0600 less the umask if ``private`` (personal data: a gallery of people,
    like an ssh key readable by its owner only), else 0666 less the umask (:func:`give_ordinary_permissions`).

    Raises:
        OSError: the permissions cannot be changed.
    """
    try:
        existing = os.stat(path)
    except OSError:
        os.fchmod(fd, (0o600 if private else 0o666) & ~current_umask())
        return
    mode = stat.S_IMODE(existing.st_mode) & 0o777
    os.fchmod(fd, mode)
    if existing.st_uid != os.fstat(fd).st_uid:
        with contextlib.suppress(OSError):  # only root may give a file away: another writer owns the new file
            os.fchown(fd, existing.st_uid, -1)
    if existing.st_gid != os.fstat(fd).st_gid:
        try:
            os.fchown(fd, -1, existing.st_gid)
        except OSError:  # not a member of that group: the writer's own group, given none of the old group's access
            os.fchmod(fd, mode & ~0o070)


def follow_own_links(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` with its symbolic links resolved (the file a write through it lands in), refusing a link that
    another user may have planted: one in a folder every user may write with the sticky bit (``/tmp``), owned
    by neither this user nor the folder's owner. That is the rule of Linux's ``fs.protected_symlinks``, which
    the kernel applies when it follows a link itself, but not to a path resolved here (``os.path.realpath``)
    to replace the file it points to; without it another user's ``/tmp/gallery.edgereid -> ~/.bashrc`` would
    have a user's save replace their own file.

    Raises:
        OutputPathError: such a link is on the way (names it, its owner and where it points).
    """
    path = Path(path)
    for _ in range(40):  # as the kernel's limit of links followed in one lookup
        try:
            link = os.lstat(path)
            if not stat.S_ISLNK(link.st_mode):
                break
            folder = os.stat(path.parent if str(path.parent) else ".")
            target = Path(os.readlink(path))
        except OSError:
            break  # not there, or the folder cannot be read: the write itself reports it
        shared = folder.st_mode & stat.S_ISVTX and folder.st_mode & stat.S_IWOTH
        if shared and hasattr(os, "geteuid") and link.st_uid not in (os.geteuid(), folder.st_uid):
            raise OutputPathError(
                f"cannot write {what} {path}: it is a symbolic link to {target}, in a folder every user may write "
                f"({path.parent}), and another user's (uid {link.st_uid}): it could be there to have this write "
                "replace that file; remove the link, or write elsewhere"
            )
        path = path.parent / target
    return Path(os.path.realpath(path))


def current_umask() -> int:
    """The process's umask (e.g. ``0o022``), read without changing it.

    Linux (4.7 and later) reports it in ``/proc/self/status``. Elsewhere the only way is to set a
    umask and put the old one back, which for that instant gives files another thread of the host
    application creates the wrong permissions; that fallback is used only where the line is missing.
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_bytes(
    path: str | os.PathLike, *chunks: bytes | memoryview, what: str = "file", create_parent: bool = True, private: bool = False
) -> Path:
    """Write the concatenation of ``chunks`` to ``path`` atomically; returns the path. A file replaced keeps its
    permissions; a new one gets 0666, or 0600 when ``private``, less the umask (:func:`take_permissions_of`).

    Args:
        path: the file to (re)place; a symbolic link is followed (the file it points to is
            replaced, the link kept), unless another user may have planted it (:func:`follow_own_links`).
        chunks: byte strings (or memoryviews of them) written one after the other (no joined copy is made).
        what: what the file is, for error messages ("gallery", "engine", ...).
        create_parent: create missing parent folders; False requires the folder to exist.
        private: the bytes are personal data (a gallery of people): a new file is readable by its owner only.

    Raises:
        OutputPathError: the folder is missing (``create_parent=False``) or cannot be
            created or written, or ``path`` is a link another user may have planted (:func:`follow_own_links`);
            the temporary file is removed and the old file kept.
        OutputWriteError: the disk is full or failing (:data:`WRITE_FAILURES`); the old file is kept.
    """
    path = follow_own_links(path, what) if os.path.islink(path) else Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        if create_parent:
            directory.mkdir(parents=True, exist_ok=True)
        elif not directory.is_dir():
            raise OutputPathError(f"cannot write {what} {path}: folder {directory} does not exist")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise write_error(what, path, exc) from None
    try:
        take_permissions_of(fd, path, private)
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise write_error(what, path, exc) from None
        raise
    fsync_directory(directory)
    return path


def write_json_atomic(path: str | os.PathLike, payload: Any, what: str = "JSON file", private: bool = False) -> Path:
    """Write ``payload`` as indented JSON (UTF-8, trailing newline) atomically; returns the path (``private``:
    personal data, see :func:`atomic_write_bytes`).

    Raises:
        OutputPathError, OutputWriteError: the file cannot be written (see :func:`atomic_write_bytes`).
    """
    return atomic_write_bytes(path, (json.dumps(payload, indent=2) + "\n").encode("utf-8"), what=what, private=private)


@contextlib.contextmanager
def interrupts_held():
    """Hold SIGINT and SIGTERM back while a set of files is moved into place together: a signal that arrives
    meanwhile is recorded and handed to the handler it would have reached (Python's KeyboardInterrupt, the
    CLI's SIGTERM unwinding) when the block ends, so a Ctrl-C or a service stop cannot leave some new files
    beside some old ones. Python runs signal handlers in the main thread whichever thread the signal reached
    (a signal mask would hold it back from one thread only); off the main thread this is a no-op."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    held = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous = {number: signal.signal(number, lambda signum, frame: received.append(signum)) for number in held}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            number, handler = received[0], previous[received[0]]
            if callable(handler):
                handler(number, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)
