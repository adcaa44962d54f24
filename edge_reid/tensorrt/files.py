"""Atomic file writes for engines, manifests, caches: a crash never leaves a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edge_reid.errors import OutputPathError


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    Creates the parent folder. Returns the path.

    Raises:
        OutputPathError: the folder cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
