"""Folders given by the user: an error that says what the path is instead (missing, a file, unreadable)."""

from __future__ import annotations

from pathlib import Path

from edge_reid.errors import DataError


def require_folder(folder: str | Path, what: str = "folder", hint: str = "") -> Path:
    """``folder`` as a :class:`~pathlib.Path` when it is a folder; else the error says what it is.

    Args:
        folder: the path given.
        what: how the folder is named in the message (``"dataset folder"``).
        hint: what to give instead, appended after ``; `` (e.g. ``"give the folder holding query/"``).

    Raises:
        DataError: ``folder`` does not exist, or is a file.
    """
    folder = Path(folder)
    if folder.is_dir():
        return folder
    found = f"is a file, not a {what}" if folder.exists() else f"{what} not found"
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
