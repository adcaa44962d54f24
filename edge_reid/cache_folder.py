"""Where edge-reid keeps what it can rebuild: tuning results, compiled models, cached detections."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def cache_dir() -> Path | None:
    """Folder of edge-reid's caches: ``$EDGE_REID_CACHE_DIR``, else ``$XDG_CACHE_HOME/edge-reid``, else
    ``~/.cache/edge-reid``; None when there is no home to put it in (``HOME`` unset and a user id with no
    passwd entry, as in a container run with an arbitrary ``--user``): then nothing is cached."""
    if os.environ.get("EDGE_REID_CACHE_DIR"):
        return Path(os.environ["EDGE_REID_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "edge-reid"
    try:
        home = Path.home()
    except (RuntimeError, KeyError):  # no HOME and no passwd entry (RuntimeError; KeyError before Python 3.12)
        return None
    return home / ".cache" / "edge-reid"


def cache_file(name: str) -> Path | None:
    """``cache_dir() / name``, or None when there is no cache folder (:func:`cache_dir`)."""
    folder = cache_dir()
    return None if folder is None else folder / name


def writable_cache_folder(name: str) -> Path | None:
    """``cache_dir() / name``, made if missing, or None when there is no cache folder or it cannot be made
    or written (a read-only home, a full disk): a cache is an optimisation, never a reason to fail."""
    folder = cache_file(name)
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None


def read_cache_entries(path: Path | None, schema: str) -> dict:
    """The ``entries`` of a JSON cache file ``{"schema": schema, "entries": {key: value}}``; ``{}`` when the file
    is missing, unreadable, not JSON or of another schema (a cache is rebuilt, never trusted blindly), or
    ``path`` is None (no cache folder: :func:`cache_file`)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("schema") != schema or not isinstance(data.get("entries"), dict):
        return {}
    return data["entries"]


def timings_in_ms(value: object, names) -> bool:
    """Whether a cached entry's timings ``value`` are a dict holding a finite number >= 0 for each of ``names``:
    a hand-edited or damaged entry is then measured again (a cache is never trusted blindly)."""
    import math

    return isinstance(value, dict) and all(
        isinstance(value.get(name), (int, float)) and not isinstance(value.get(name), bool)
        and math.isfinite(value[name]) and value[name] >= 0 for name in names
    )


def write_cache_entry(path: Path | None, schema: str, key: str, value: dict, what: str) -> None:
    """Add ``value`` (with the UTC time it was measured) under ``key`` to the cache file, atomically;
    a cache that cannot be written (a read-only home, a full disk, no cache folder: ``path`` None) is
    skipped, never an error."""
    from edge_reid.atomic import write_json_atomic

    if path is None:
        return
    entries = read_cache_entries(path, schema)
    entries[key] = {**value, "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        write_json_atomic(path, {"schema": schema, "entries": entries}, what=what)
    except Exception:  # noqa: BLE001 - measure again next time rather than fail
        pass
