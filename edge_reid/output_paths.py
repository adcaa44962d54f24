"""Output paths: fail before any work starts when a result cannot be written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edge_reid.errors import OutputPathError


def check_writable(path: str | Path, what: str) -> Path:
    """Fail early when ``path`` cannot be written.

    Creates missing parent folders, then creates and removes a probe file there.

    Args:
        path: the file to be written.
        what: how the file is named in the error message (e.g. ``"events"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: the path is a folder, or its folder cannot be created or written.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputPathError(f"{what} path {target} is a folder; give a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".edge-reid-probe-", dir=target.parent)
        os.close(fd)
        os.unlink(probe)
        if target.exists() and not os.access(target, os.W_OK):
            raise PermissionError(f"{target} is read-only")
    except OSError as exc:
        raise OutputPathError(f"cannot write {what} to {target}: {exc.strerror or exc}") from None
    return target


def check_writable_folder(folder: str | Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and fail early when files cannot be written in it.

    Raises:
        OutputPathError: the folder cannot be created or written (one line naming it and the cause).
    """
    target = Path(folder)
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".edge-reid-probe-", dir=target)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"cannot write to {what} {target}: {exc.strerror or exc}") from None
    return target
