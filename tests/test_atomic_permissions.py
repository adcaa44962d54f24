"""A file replaced by an atomic write keeps who may read it: its owner (root saving a user's gallery) and its group,
and where the group cannot be kept, its readers are not widened to the writer's group."""

from __future__ import annotations

import os
import stat

import pytest

from edge_reid import atomic
from edge_reid.atomic import atomic_write_bytes

NOBODY = 65534


def _other_gid() -> int:
    """A group this process may give a file that is not its own group (root: any), else skip."""
    if os.geteuid() == 0:
        return NOBODY if os.getegid() != NOBODY else 4
    others = [gid for gid in os.getgroups() if gid != os.getegid()]
    if not others:
        pytest.skip("needs root or a supplementary group")
    return others[0]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root may give a file to another user")
def test_root_saving_a_users_owner_only_file_leaves_it_to_that_user(tmp_path):
    """`sudo edge-reid gallery rename ...` on alice's chmod-600 gallery left it root's 0600: alice could no longer
    read her own gallery (before owner-only copies it was root's 0644, which she could)."""
    path = tmp_path / "people.edgereid"
    path.write_bytes(b"old")
    os.chown(path, NOBODY, NOBODY)
    path.chmod(0o600)
    atomic_write_bytes(path, b"new")
    info = path.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (NOBODY, 0o600)
    assert path.read_bytes() == b"new"


def test_a_replaced_file_keeps_its_group(tmp_path):
    gid = _other_gid()
    path = tmp_path / "people.edgereid"
    path.write_bytes(b"old")
    os.chown(path, -1, gid)
    path.chmod(0o640)
    atomic_write_bytes(path, b"new")
    assert path.stat().st_gid == gid and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_group_that_cannot_be_kept_gets_no_access_in_the_writers_group(tmp_path, monkeypatch):
    """A writer not in the file's group (its chown refused) kept 0640 with its own group: that group's members,
    who could not read the file before, could read it after the save."""
    gid = _other_gid()
    path = tmp_path / "people.edgereid"
    path.write_bytes(b"old")
    os.chown(path, -1, gid)
    path.chmod(0o640)

    def refuse(fd, uid, group):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(atomic.os, "fchown", refuse)
    atomic_write_bytes(path, b"new")
    info = path.stat()
    assert info.st_gid != gid
    assert stat.S_IMODE(info.st_mode) == 0o600 and path.read_bytes() == b"new"


def test_a_read_only_file_is_still_replaced_and_stays_read_only(tmp_path):
    path = tmp_path / "summary.json"
    path.write_bytes(b"{}")
    path.chmod(0o444)
    atomic_write_bytes(path, b"[]")
    assert path.read_bytes() == b"[]" and stat.S_IMODE(path.stat().st_mode) == 0o444
