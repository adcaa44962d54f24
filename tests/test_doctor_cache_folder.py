"""`edge-reid doctor`'s line for the cache folder (edge_reid/doctor.py cache_folder_item; docs/caches.md)."""

from __future__ import annotations

import edge_reid.cache_folder as cache_folder
from edge_reid.doctor import cache_folder_item


def test_a_writable_folder_is_named_and_nothing_is_made(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path))
    item = cache_folder_item()
    assert (item.name, item.ok) == ("cache folder", True) and item.value.startswith(f"{tmp_path} (writable")
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path / "new" / "cache"))
    item = cache_folder_item()
    assert item.ok is True and f"made at the first run in {tmp_path}" in item.value
    assert not (tmp_path / "new").exists(), "doctor only looks"


def test_a_folder_that_cannot_be_made_says_why_and_what_to_do(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    item = cache_folder_item()
    assert item.ok is False and f"({tmp_path / 'a-file'} is not a folder)" in item.value and "EDGE_REID_CACHE_DIR" in item.value
    monkeypatch.setattr(cache_folder, "cache_dir", lambda: None)  # HOME unset, a user id without a passwd entry
    item = cache_folder_item()
    assert item.ok is False and item.value.startswith("none: no home folder")


def test_the_report_has_the_line(tmp_path, monkeypatch):
    from edge_reid.doctor import collect_report

    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path))
    items = {item.name: item for item in collect_report(tmp_path / "engines")[0]}
    assert items["cache folder"].value.startswith(str(tmp_path)) and items["cache folder"].ok is True


def test_a_folder_every_user_may_write_is_named_as_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "shared-cache"
    shared.mkdir()
    shared.chmod(0o777)  # the caches refuse it (docs/caches.md, "Who may write the cache folder"): doctor must not say "writable"
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(shared))
    item = cache_folder_item()
    assert item.ok is False and "not used" in item.value and "can be written by every user" in item.value
    assert "only you can write" in item.value
