"""Where edge-reid keeps what it can rebuild: tuning results, compiled models, cached detections."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Folder of edge-reid's caches: ``$EDGE_REID_CACHE_DIR``, else ``$XDG_CACHE_HOME/edge-reid``, else ``~/.cache/edge-reid``."""
    if os.environ.get("EDGE_REID_CACHE_DIR"):
        return Path(os.environ["EDGE_REID_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-reid"


def writable_cache_folder(name: str) -> Path | None:
    """``cache_dir() / name``, made if missing, or None when it cannot be made or written
    (a read-only home, a full disk): a cache is an optimisation, never a reason to fail."""
    folder = cache_dir() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None
