"""edge-reid's caches on restricted filesystems: a package installed read-only, a service user whose home
and ``XDG_CACHE_HOME`` cannot be written, cache files cut short by a power loss. A cache is an optimisation:
it moves to ``EDGE_REID_CACHE_DIR`` where that is the one writable place, a damaged file is rebuilt, and a
cache that cannot be kept is said once, never a failure.

Permissions are simulated with paths under a regular file (``ENOTDIR`` for every user, root included,
whom mode bits do not stop)."""

from __future__ import annotations

import importlib.util
import threading
import warnings

import pytest

import edge_reid.cache_folder as cache_folder
from edge_reid.cache_folder import read_cache_entries, write_cache_entry
from edge_reid.errors import EdgeReidWarning
from edge_reid.jit import cached_njit

KERNEL = "def add_one(x):\n    return x + 1\n"


@pytest.fixture
def read_only_install(tmp_path, monkeypatch):
    """A module whose folder Numba cannot cache in (``__pycache__`` is a file), a home and ``XDG_CACHE_HOME``
    that cannot be written, no ``NUMBA_CACHE_DIR``: Numba has nowhere of its own to keep compiled code.
    Returns the module's ``add_one``; a fresh process's warning state."""
    package = tmp_path / "site-packages"
    package.mkdir()
    (package / "__pycache__").write_text("not a folder")
    (package / "kernel.py").write_text(KERNEL)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, so nothing can be made under it")
    monkeypatch.setenv("HOME", str(blocked / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked / "xdg"))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    import numba.core.config

    monkeypatch.setattr(numba.core.config, "CACHE_DIR", "")
    monkeypatch.setattr(cache_folder, "_warned_uncached", threading.Event(), raising=False)
    spec = importlib.util.spec_from_file_location("kernel_in_a_read_only_folder", package / "kernel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.add_one


def _edge_reid_numba_files(folder):
    return sorted(path.name for path in (folder / "numba").rglob("*") if path.is_file())


def test_numba_keeps_compiled_code_in_edge_reids_cache_folder_where_it_has_no_place_of_its_own(read_only_install, tmp_path, monkeypatch):
    """A service user with a read-only install and home: Numba compiled every kernel again at every start
    (about 2 s over the first frames of `edge-reid run` on 2 cores) even with EDGE_REID_CACHE_DIR naming a writable folder."""
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path / "cache"))
    first = cached_njit()(read_only_install)
    assert first(41) == 42
    assert any(name.endswith(".nbi") for name in _edge_reid_numba_files(tmp_path / "cache")), "kept in EDGE_REID_CACHE_DIR/numba"
    again = cached_njit()(read_only_install)  # as the next process: a new dispatcher of the same function
    assert again(1) == 2 and again.stats.cache_hits and not again.stats.cache_misses, "loaded, not compiled again"


@pytest.mark.parametrize("damage", ["truncate", "zeros", "folder"])
@pytest.mark.parametrize("which", [".nbi", ".nbc"])
def test_a_damaged_numba_cache_file_is_compiled_again_not_raised(read_only_install, tmp_path, monkeypatch, damage, which):
    """A truncated or zeroed index or data file (a power cut while Numba wrote it) ended every later start of
    `edge-reid run` with 'internal error: UnpicklingError: pickle data was truncated'; a folder in a file's
    place or an unreadable file with IsADirectoryError or PermissionError. Here in NUMBA_CACHE_DIR, Numba's
    own setting (the same in the package's __pycache__, the user's or edge-reid's cache folder)."""
    import numba.core.config

    monkeypatch.setattr(numba.core.config, "CACHE_DIR", str(tmp_path / "numba-cache"))
    assert cached_njit()(read_only_install)(41) == 42
    (damaged,) = [path for path in (tmp_path / "numba-cache").rglob(f"*{which}")]
    size = damaged.stat().st_size
    if damage == "truncate":
        damaged.write_bytes(damaged.read_bytes()[: size // 2])
    elif damage == "zeros":
        damaged.write_bytes(bytes(size))
    else:
        damaged.unlink()
        damaged.mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cached_njit()(read_only_install)(41) == 42, "compiled again"
    healed = cached_njit()(read_only_install)
    assert healed(1) == 2
    if damage == "folder":  # a folder in a file's place cannot be replaced: said, not raised
        assert len([w for w in caught if issubclass(w.category, EdgeReidWarning)]) == 1
    else:
        assert healed.stats.cache_hits, "the damaged file was rewritten: the next start loads it"


def test_no_writable_cache_folder_is_said_once_naming_the_folder_and_the_setting(read_only_install, tmp_path, monkeypatch):
    """With nowhere to keep anything every start re-measured, re-tuned and re-compiled (about 8 s to the
    first frame against 2 s warm for `edge-reid run` on 2 cores) and nothing said why."""
    monkeypatch.delenv("EDGE_REID_CACHE_DIR", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cached_njit()(read_only_install)(41) == 42
        path = cache_folder.cache_file("onnxruntime-tuning.json")
        write_cache_entry(path, "schema/1", "key", {"level": "all"}, "ONNX Runtime tuning cache")
        write_cache_entry(cache_folder.cache_file("cpu-backend-choice.json"), "schema/1", "key", {}, "CPU backend choice cache")
    messages = [str(w.message) for w in caught if issubclass(w.category, EdgeReidWarning)]
    assert len(messages) == 1, messages
    assert "Numba kernel cache" in messages[0] and str(tmp_path / "blocked" / "xdg" / "edge-reid") in messages[0]
    assert "EDGE_REID_CACHE_DIR" in messages[0]


def test_a_writable_cache_folder_says_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_folder, "_warned_uncached", threading.Event(), raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EdgeReidWarning)
        write_cache_entry(cache_folder.cache_file("a.json"), "schema/1", "key", {"ms": 1.0}, "a cache")


def test_a_folder_in_place_of_a_json_cache_file_is_replaced(tmp_path, monkeypatch):
    """An empty folder where onnxruntime-tuning.json or cpu-backend-choice.json goes: the file was never written
    again, so every start tuned and measured again, silently."""
    monkeypatch.setattr(cache_folder, "_warned_uncached", threading.Event(), raising=False)
    path = tmp_path / "onnxruntime-tuning.json"
    path.mkdir()
    write_cache_entry(path, "schema/1", "key", {"level": "all"}, "ONNX Runtime tuning cache")
    assert read_cache_entries(path, "schema/1")["key"]["level"] == "all"


def test_without_a_home_numba_makes_no_tilde_folder_in_the_working_folder(read_only_install, tmp_path, monkeypatch):
    """A user id without a passwd entry and no HOME (`docker run --user 4242`): Numba's user-wide cache folder
    '~/.cache/numba' stayed relative, and `edge-reid run` left a folder named '~' in the working folder."""
    import pwd

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.delenv("HOME")
    monkeypatch.delenv("XDG_CACHE_HOME")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path / "cache"))
    assert cached_njit()(read_only_install)(41) == 42
    assert not (work / "~").exists()
    assert any(name.endswith(".nbi") for name in _edge_reid_numba_files(tmp_path / "cache"))
