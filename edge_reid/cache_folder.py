"""Where edge-reid keeps what it can rebuild: tuning results, compiled models, cached detections.

Every cache is an optimisation, never a reason to fail: one that cannot be read is rebuilt, one that
cannot be written is skipped, and the first cache skipped in a process says so in one warning
(:func:`warn_uncached`), naming the folder and ``EDGE_REID_CACHE_DIR``.

A cache folder another local user could write into is not used at all (:func:`folder_trust_problem`):
Numba's cache files are pickles, which run code when loaded, and a JSON cache file could be replaced by a
link to one of this user's files, which the next write would overwrite (docs/caches.md, "Who may write the
cache folder").
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import time
from pathlib import Path

#: Size above which a JSON cache file is taken as damaged and rebuilt: edge-reid's hold a few hundred bytes per
#: model and setting measured.
_MAX_CACHE_FILE_BYTES = 16 << 20

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


def folder_trust_problem(folder: str | os.PathLike) -> str | None:
    """Why another local user could put files into ``folder`` (or swap it for a folder of theirs), as
    ``"<folder> is owned by user 1000 (alice)"``; None when only this user and root can.

    A cache folder is trusted as ssh trusts ``~/.ssh`` (``StrictModes``, with Debian's allowance for a
    user's own group): the folder (links resolved; a link that is the folder itself must be this user's or
    root's too) and every folder above it that exists, up to this user's home folder where it lies in it
    (whoever may write above the home can replace the home and its ``~/.bashrc`` anyway, so ssh looks no
    higher either), must belong to this user or root, and be writable
    neither by every user (a sticky folder such as ``/tmp`` above it excepted: no one may rename or remove
    another's entries there; the folder itself may not be one, as others could add files to it) nor by a
    group other than this user's own (its primary group, with no other members: the ``umask 002`` of user
    private groups). A folder not made yet is judged by the nearest one above it (this user makes it); a
    path that cannot be looked up is left to the code that uses it. The check holds when it is made: someone
    who can write a folder above only later is not seen.
    """
    try:
        path = Path(os.path.realpath(folder))
    except (OSError, ValueError):
        return None
    me = os.geteuid() if hasattr(os, "geteuid") else None
    if me is None:  # Windows: no owners nor mode bits of this kind
        return None
    with contextlib.suppress(OSError):  # a link another user made (``/tmp/x -> ...``) could be pointed elsewhere later
        link = os.lstat(folder)
        if stat.S_ISLNK(link.st_mode) and link.st_uid not in (me, 0):
            return f"{folder} is a symbolic link owned by {_user_name(link.st_uid)}"
    home = _home_folder()
    for current in (path, *path.parents):
        try:
            status = os.stat(current)
        except OSError:
            continue  # not made yet: the folders above decide
        if not stat.S_ISDIR(status.st_mode):
            return None  # a file in a folder's place: not a cache folder at all, its users report that
        mode = stat.S_IMODE(status.st_mode)
        if status.st_uid not in (me, 0):
            return f"{current} is owned by {_user_name(status.st_uid)}"
        shared_safely = current != path and mode & stat.S_ISVTX  # above the folder: /tmp's kind keeps it ours
        if mode & stat.S_IWOTH and not shared_safely:
            return f"{current} can be written by every user (mode {mode:o})"
        if mode & stat.S_IWGRP and not shared_safely and not _own_group(status.st_gid):
            return f"{current} can be written by the group {_group_name(status.st_gid)} (mode {mode:o})"
        if current == home:
            break  # the home is the user's: those above it are the system's
    return None


def _home_folder() -> Path | None:
    """This user's home folder (``~``: ``$HOME``, else the passwd entry), links resolved; None where there is none."""
    home = os.path.expanduser("~")
    if home == "~":
        return None
    try:
        return Path(os.path.realpath(home))
    except (OSError, ValueError):
        return None


def _user_name(uid: int) -> str:
    try:
        import pwd

        return f"user {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"user {uid}"


def _group_name(gid: int) -> str:
    try:
        import grp

        return f"{gid} ({grp.getgrgid(gid).gr_name})"
    except (ImportError, KeyError):
        return str(gid)


def _own_group(gid: int) -> bool:
    """Whether group ``gid`` is this user's own: its primary group, listing no other member."""
    try:
        import grp
        import pwd

        me = pwd.getpwuid(os.geteuid())
        return gid == me.pw_gid and set(grp.getgrgid(gid).gr_mem) <= {me.pw_name}
    except (ImportError, KeyError):
        return False


def _trusted_cache_dir() -> Path | None:
    """:func:`cache_dir`, or None where there is none or another user could write it (:func:`folder_trust_problem`)."""
    folder = cache_dir()
    return None if folder is None or folder_trust_problem(folder) else folder


def cache_file(name: str) -> Path | None:
    """``cache_dir() / name``, or None when there is no cache folder (:func:`cache_dir`) or another user could
    write it (:func:`folder_trust_problem`): then nothing is read from it nor written to it."""
    folder = _trusted_cache_dir()
    return None if folder is None else folder / name


def writable_cache_folder(name: str) -> Path | None:
    """``cache_dir() / name``, made if missing, or None when there is no cache folder or it cannot be made
    or written (a read-only home, a full disk) or another user could write it or ``name`` in it
    (:func:`folder_trust_problem`): a cache is an optimisation, never a reason to fail."""
    folder = cache_file(name)
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if folder_trust_problem(folder):  # checked again once made: a folder someone made there first is theirs
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
    problem = None if folder is None else folder_trust_problem(folder)
    if problem:
        warnings.warn(
            f"edge-reid's caches are off ({problem}: another user could put files there that edge-reid would "
            f"load, code included): the {what} and the others are remade at every start, which slows each start; "
            "set EDGE_REID_CACHE_DIR to a folder only you can write", EdgeReidWarning, stacklevel=2,
        )
        return
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
    is missing, unreadable, not a regular file, over :data:`_MAX_CACHE_FILE_BYTES`, not JSON (or nested too deeply
    for it) or of another schema (a cache is rebuilt, never trusted blindly), or ``path`` is None (no cache
    folder: :func:`cache_file`)."""
    if path is None:
        return {}
    from edge_reid.folders import read_regular_file

    try:
        text = read_regular_file(path, _MAX_CACHE_FILE_BYTES + 1)
        if text is None or len(text) > _MAX_CACHE_FILE_BYTES:  # a pipe (reading would wait for ever), or no cache of ours
            return {}
        data = json.loads(text)
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deeply for json
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
        with contextlib.suppress(OSError):  # where it cannot be made, the write below says why
            path.parent.mkdir(parents=True, exist_ok=True)
        if problem := folder_trust_problem(path.parent):  # someone made the folder first, since cache_file looked
            warn_uncached(what, problem)
            return
        if path.is_dir() and not path.is_symlink():
            path.rmdir()  # fails (and the cache is skipped) where the folder holds something
        write_json_atomic(path, {"schema": schema, "entries": entries}, what=what)
    except Exception as exc:  # noqa: BLE001 - measure again next time rather than fail
        warn_uncached(what, str(exc))
