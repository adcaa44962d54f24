"""A path given where a folder is expected: the error says what it is (missing, a file, unreadable)."""

from __future__ import annotations

import os

import pytest

from edge_reid.cli import main
from edge_reid.errors import DataError
from edge_reid.folders import folder_entries, require_folder


def test_a_missing_folder_and_a_file_are_told_apart(tmp_path):
    a_file = tmp_path / "photo.jpg"
    a_file.write_bytes(b"x")
    with pytest.raises(DataError, match=r"photo.jpg: is a file, not a dataset folder; give the folder holding query/"):
        require_folder(a_file, "dataset folder", "give the folder holding query/")
    with pytest.raises(DataError, match=r"nope: dataset folder not found$"):
        require_folder(tmp_path / "nope", "dataset folder")
    assert require_folder(tmp_path) == tmp_path


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root (or non-POSIX systems)")
def test_an_unreadable_folder_is_a_data_error_naming_it(tmp_path):
    locked = tmp_path / "bounding_box_test"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(DataError, match=r"bounding_box_test: cannot be read \(Permission denied\); check its permissions"):
            folder_entries(locked)
    finally:
        locked.chmod(0o755)


def test_the_commands_say_a_file_is_not_a_folder(mot17_dir, tmp_path, capsys):
    query_image = next((mot17_dir / "query").iterdir())
    assert main(["eval", "--data", str(query_image)]) == 2
    assert f"{query_image}: is a file, not a dataset folder" in " ".join(capsys.readouterr().err.split())
    empty = tmp_path / "photos"
    empty.mkdir()
    assert main(["gallery", "enroll", "-g", str(tmp_path / "g.edgereid"), "-n", "Eve", str(empty)]) == 2
    assert f"no usable image to enroll 'Eve' (no image file (.jpg, .png, ...) in {empty})" in " ".join(capsys.readouterr().err.split())
