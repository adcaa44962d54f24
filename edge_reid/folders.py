"""Folders given by the user: an error that says what the path is instead (missing, a file, unreadable)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from edge_reid.errors import DataError


def require_folder(folder: str | Path, what: str = "folder", hint: str = "") -> Path:
    """``folder`` as a :class:`~pathlib.Path` when it is a folder; else the error says what it is.

    Args:
        folder: the path given.
        what: how the folder is named in the message (``"dataset folder"``).
        hint: what to give instead, appended after ``; `` (e.g. ``"give the folder holding query/"``).

    Raises:
        DataError: ``folder`` does not exist, is a file, or cannot be looked up (a name too long, no permission).
    """
    folder = Path(folder)
    try:
        if folder.is_dir():
            return folder
        found = f"is a file, not a {what}" if folder.exists() else f"{what} not found"
    except OSError as exc:  # a name too long for the file system, a folder on the way that cannot be searched
        found = f"cannot be read ({exc.strerror or exc})"
    raise DataError(f"{folder}: {found}" + (f"; {hint}" if hint else ""))


def folder_entries(folder: str | Path, what: str = "folder", hint: str = "") -> list[Path]:
    """The entries of ``folder``, sorted by name (``what`` and ``hint``: as :func:`require_folder`).

    Raises:
        DataError: ``folder`` is missing, a file, or cannot be read (permissions): the message names it.
    """
    folder = require_folder(folder, what, hint)
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(f"{folder}: cannot be read ({exc.strerror or exc}); check its permissions") from None


def read_regular_file(path: str | os.PathLike, most: int = -1) -> bytes | None:
    """The bytes of the file ``path`` (at most ``most``; -1: all), or None when it is not a regular file
    (a pipe, device or socket: reading it would block or never end). Opened with ``O_NONBLOCK``, so that a
    pipe without a writer does not wait; the descriptor is closed whatever happens.

    Raises:
        OSError: the file cannot be opened or read; IsADirectoryError for a folder.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            return None
        with open(descriptor, "rb", closefd=False) as handle:
            return handle.read(most)
    finally:
        os.close(descriptor)
