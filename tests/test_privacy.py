"""A gallery as personal data: who may read it, what `gallery remove` leaves behind, how long strangers are
kept, how an operator sees one person's data, and enrolment refusing crops too small to tell people apart."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_reid.atomic import atomic_write_bytes
from edge_reid.cli import main
from edge_reid.matching import Gallery

DIM = 16


def _unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _gallery(path: Path) -> Path:
    """Alice (id 1, enrolled) and Bob (id 2, enrolled) saved at ``path``."""
    gallery = Gallery(DIM, model_id="m")
    gallery.enroll("Alice Secret", _unit(1))
    gallery.enroll("Bob", _unit(2))
    gallery.save(path)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_gallery_is_readable_by_its_owner_only(tmp_path, umask_022):
    """A gallery holds people's embeddings, names and times: under the usual umask 022 it was written 0644,
    readable by every user of the machine."""
    assert _mode(_gallery(tmp_path / "people.edgereid")) == 0o600


def test_a_gallery_made_owner_only_stays_so_when_saved_again(tmp_path, umask_022, capsys):
    """An operator's `chmod 600 people.edgereid` was undone by the next save (the atomic replace made a new
    file of 0666 less the umask): the gallery became world-readable again without a word."""
    path = _gallery(tmp_path / "people.edgereid")
    path.chmod(0o600)
    Gallery.load(path).save(path)
    assert _mode(path) == 0o600
    assert main(["gallery", "rename", "-g", str(path), "--id", "2", "--name", "Robert"]) == 0
    assert _mode(path) == 0o600, "the CLI's save widened it"
    path.chmod(0o640)  # shared with a group on purpose: kept too, not narrowed
    assert main(["gallery", "remove", "-g", str(path), "--id", "2"]) == 0
    assert _mode(path) == 0o640


def test_any_replaced_file_keeps_its_permissions_and_a_new_one_gets_ordinary_ones(tmp_path, umask_022):
    target = tmp_path / "summary.json"
    atomic_write_bytes(target, b"{}")
    assert _mode(target) == 0o644
    target.chmod(0o600)
    atomic_write_bytes(target, b"[]")
    assert _mode(target) == 0o600 and target.read_bytes() == b"[]"


def test_an_export_to_a_file_is_readable_by_its_owner_only(tmp_path, umask_022, capsys):
    path = _gallery(tmp_path / "people.edgereid")
    out = tmp_path / "people.json"
    assert main(["gallery", "export", "-g", str(path), "-o", str(out)]) == 0
    assert _mode(out) == 0o600 and "Alice Secret" in out.read_text()


def test_remove_leaves_nothing_of_the_person_in_the_gallery_and_names_temporaries_that_may(tmp_path, capsys):
    """After `gallery remove` neither the name nor the bytes of a stored view are in the gallery or its lock
    file; a temporary file a save killed minutes ago left (a copy of the gallery with the person in it) is
    kept (a save in progress would fail) but named, with what to do: it used to stay there unsaid."""
    path = _gallery(tmp_path / "people.edgereid")
    view = Gallery.load(path).embeddings(1)[0].astype("<f4").tobytes()
    leftover = tmp_path / ".people.edgereid.k1ll3d0x.tmp"
    leftover.write_bytes(path.read_bytes())  # what a save killed before its rename leaves
    assert main(["gallery", "remove", "-g", str(path), "--name", "Alice Secret"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "removed 1 identity; 1 left" in err
    for kept in (path, tmp_path / "people.edgereid.lock"):
        data = kept.read_bytes()
        assert b"Alice Secret" not in data and view not in data, kept.name
    assert "temporary file(s)" in err and "may still hold what was removed" in err
    assert ".people.edgereid.k1ll3d0x.tmp" in "".join(err.split()), "named (a long path is folded)"
    assert leftover.exists()
    leftover.unlink()
    assert main(["gallery", "remove", "-g", str(path), "--name", "Bob"]) == 0
    assert "temporary" not in capsys.readouterr().err, "no warning when none is left"


def test_export_shows_one_persons_data(tmp_path, capsys):
    """What is stored about one person (a subject's access request): export --name / --id, not the whole gallery."""
    path = _gallery(tmp_path / "people.edgereid")
    assert main(["gallery", "export", "-g", str(path), "--name", "Bob"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [(i["identity_id"], i["name"], i["enrolled"]) for i in exported["identities"]] == [(2, "Bob", 1)]
    assert "Alice" not in json.dumps(exported)
    assert main(["gallery", "export", "-g", str(path), "--id", "1", "--id", "2"]) == 0
    assert len(json.loads(capsys.readouterr().out)["identities"]) == 2
    assert main(["gallery", "export", "-g", str(path), "--name", "Nobody"]) == 2
    assert "no identity named 'Nobody'" in capsys.readouterr().err


def test_pruned_strangers_leave_no_view_in_the_file_and_named_people_stay(tmp_path):
    """`--prune-after`'s Gallery.prune: strangers unseen for longer are dropped with every stored view (their
    bytes are not in the next save); a named person unseen as long stays; a stranger seen since stays."""
    gallery = Gallery(DIM, model_id="m")
    now = 1_800_000_000.0
    old = gallery.add(_unit(3), timestamp=now - 3600)
    other = gallery.add(_unit(6), timestamp=now - 700)
    recent = gallery.add(_unit(4), timestamp=now - 5)
    named = gallery.enroll("Carol", _unit(5), timestamp=now - 3600)
    stale_views = [row.astype("<f4").tobytes() for i in gallery.identities if i.identity_id not in (recent, named)
                   for row in gallery.embeddings(i.identity_id)]
    assert sorted(gallery.prune(600, now=now)) == [old, other]
    path = tmp_path / "people.edgereid"
    gallery.save(path)
    data = path.read_bytes()
    assert not [view for view in stale_views if view in data]
    assert [i.identity_id for i in Gallery.load(path).identities] == [recent, named]


def test_enroll_refuses_a_sliver_too_small_to_tell_people_apart(tmp_path, mot17_dir, capsys):
    """A 2x76 px sliver of a crop passed --mode auto's crop test and was enrolled under a name: slivers of
    different people embed alike (cosine up to 0.89, above the 0.82 named-person threshold), so it
    would be matched to strangers. Crops under 1/8 of the ReID input each way (16x32 px for 256x128) are
    skipped, naming the file; a real crop beside it is enrolled."""
    crop_path = sorted((mot17_dir / "bounding_box_train").glob("0013_*.jpg"))[0]
    crop = cv2.imread(str(crop_path))
    sliver = tmp_path / "sliver.png"
    middle = crop.shape[1] // 2
    cv2.imwrite(str(sliver), crop[:76, middle - 1 : middle + 1])
    g = tmp_path / "people.edgereid"
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Sliver", str(sliver)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "sliver.png (the person's crop is 2x76 px (width x height), smaller than 16x32 px" in err
    assert not g.exists()
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Dee", str(sliver), str(crop_path)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "enrolled 1 image(s) as 'Dee'" in err and "skipped 1 file: sliver.png (the person's crop is 2x76 px" in err
