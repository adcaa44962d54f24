"""What a command's `--help` states about its behaviour is what the code does (docs24's review of today's changes)."""

from __future__ import annotations

import numpy as np

from edge_reid.assets import DEFAULT_REID_MODEL
from edge_reid.cli import main
from edge_reid.cli.gallery_command import too_small_crop
from edge_reid.spec import load_spec


def _help(capsys, monkeypatch, *path: str) -> str:
    monkeypatch.setenv("COLUMNS", "200")  # one paragraph a line: the claims are not broken across lines
    assert main([*path, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_enroll_help_gives_the_smallest_crop_it_takes(capsys, monkeypatch):
    """`gallery enroll` skips crops under the ReID input / 8 (a 2x76 px sliver matched strangers): its help says
    so, with the bundled model's size, and that size is the edge of what too_small_crop refuses."""
    text = _help(capsys, monkeypatch, "gallery", "enroll")
    assert "16x32 px, width x height, for the bundled OSNet" in text, text
    spec = load_spec(DEFAULT_REID_MODEL)
    assert too_small_crop(np.zeros((32, 16, 3), np.uint8), spec.height, spec.width) is None
    assert too_small_crop(np.zeros((32, 15, 3), np.uint8), spec.height, spec.width) is not None
    assert too_small_crop(np.zeros((31, 16, 3), np.uint8), spec.height, spec.width) is not None


def test_doctor_help_names_the_cache_folder_check(capsys, monkeypatch):
    """`doctor` reports the cache folder and whether it can be written (docs/caches.md); its help listed only the rest."""
    assert "the cache folder and whether it can be written" in _help(capsys, monkeypatch, "doctor")
