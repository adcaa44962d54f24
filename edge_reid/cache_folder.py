"""Where edge-reid keeps what it can rebuild: tuning results, compiled models, cached detections.

Every cache is an optimisation, never a reason to fail: one that cannot be read is rebuilt, one that
cannot be written is skipped, and the first cache skipped in a process says so in one warning
(:func:`warn_uncached`), naming the folder and ``EDGE_REID_CACHE_DIR``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

_warned_uncached = threading.Event()  # set once the process has said its caches are off
_warning_uncached = threading.Lock()  # two threads (two cameras) starting at once: one says it


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


def warn_uncached(what: str, reason: str = "") -> None:
    """Say, once per process (an :class:`~edge_reid.errors.EdgeReidWarning`), that the cache ``what`` (e.g.
    "ONNX Runtime tuning cache") cannot be kept, why (``reason``; else no home folder, or the folder and its
    error) and how to give edge-reid a folder; later calls say nothing (every cache shares the folder, so one
    cause, one line)."""
    import warnings

    from edge_reid.errors import EdgeReidWarning

    with _warning_uncached:
        if _warned_uncached.is_set():
            return
        _warned_uncached.set()
    if reason:  # this one cache could not be written: say what stopped it
        warnings.warn(
            f"cannot keep the {what} ({reason}): it is remade at every start, which slows each start; "
            "fix that path, or set EDGE_REID_CACHE_DIR to a writable folder", EdgeReidWarning, stacklevel=2,
        )
        return
    folder = cache_dir()
    why = "no home folder: HOME is not set" if folder is None else f"{folder} cannot be written"
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            why = f"{folder}: {exc.strerror or exc}"
    warnings.warn(
        f"edge-reid's caches are off ({why}): the {what} and the others are remade at every start, which slows "
        "each start; set EDGE_REID_CACHE_DIR to a writable folder", EdgeReidWarning, stacklevel=2,
    )


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
    skipped, never an error (:func:`warn_uncached` says so once). An empty folder in the file's place
    (no writer of edge-reid's makes one) is removed first."""
    from edge_reid.atomic import write_json_atomic

    if path is None:
        warn_uncached(what)
        return
    entries = read_cache_entries(path, schema)
    entries[key] = {**value, "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()  # fails (and the cache is skipped) where the folder holds something
        write_json_atomic(path, {"schema": schema, "entries": entries}, what=what)
    except Exception as exc:  # noqa: BLE001 - measure again next time rather than fail
        warn_uncached(what, str(exc))
