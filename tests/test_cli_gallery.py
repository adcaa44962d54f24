"""`edge-reid gallery ...` on real crops and frames: enroll (crops, full images, skips), list, remove, export, threshold."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_reid.cli import main
from edge_reid.matching import Gallery

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_reid", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def person_images(tmp_path_factory, mot17_dir, vtest_path, yolox_path) -> dict[str, list[Path]]:
    """Real inputs: crops of two MOT17 people, one full image with one person, one frame with several."""
    from edge_reid.detector import PersonDetector

    folder = tmp_path_factory.mktemp("images")
    crops_a = sorted((mot17_dir / "bounding_box_test").glob("0055_*.jpg"))
    crops_b = sorted((mot17_dir / "bounding_box_test").glob("0056_*.jpg"))
    capture = cv2.VideoCapture(str(vtest_path))
    ok, frame = capture.read()
    capture.release()
    assert ok
    crowd = folder / "crowd.jpg"
    cv2.imwrite(str(crowd), frame)
    boxes = PersonDetector(yolox_path).detect(frame).boxes
    x1, y1, x2, y2 = boxes[np.argmax(boxes[:, 3] - boxes[:, 1])].astype(int)
    person = cv2.resize(frame[y1:y2, x1:x2], None, fx=3, fy=3)
    canvas = np.full((480, 640, 3), 127, np.uint8)  # a full (landscape) image with exactly one person
    canvas[50 : 50 + person.shape[0], 200 : 200 + person.shape[1]] = person
    single = folder / "single.png"
    cv2.imwrite(str(single), canvas)
    empty = folder / "empty.png"
    cv2.imwrite(str(empty), np.full((480, 640, 3), 127, np.uint8))
    broken = folder / "broken.jpg"
    broken.write_bytes(b"not an image")
    return {"a": crops_a, "b": crops_b, "single": [single], "crowd": [crowd], "empty": [empty], "broken": [broken]}


def test_enroll_list_export_remove(tmp_path, person_images, capsys):
    g = tmp_path / "people.edgereid"
    a, b = person_images["a"], person_images["b"]
    assert len(a) >= 2 and len(b) >= 2
    assert main(["gallery", "enroll", "-g", str(g), "--name", "Alice", *map(str, a[:2]),
                 *map(str, person_images["broken"] + person_images["empty"] + person_images["crowd"])]) == 0
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines at the console width
    assert "enrolled 2 image(s) as 'Alice'" in err
    assert "skipped 3 files: broken.jpg (not a decodable image), empty.png (no person found), crowd.jpg (" in err
    assert re.search(r"crowd\.jpg \([2-9]\d* people: crop it to the one to enroll\)", err), err  # how many, what to do
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Alice", str(a[2 % len(a)])]) == 0  # adds to Alice
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Bob", *map(str, b)]) == 0
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Carol", "--mode", "detect", *map(str, person_images["single"])]) == 0
    capsys.readouterr()

    gallery = Gallery.load(g)
    assert [(i.name, gallery.embedding_counts(i.identity_id)) for i in gallery.identities] == [
        ("Alice", (3, 0)), ("Bob", (len(b), 0)), ("Carol", (1, 0))]
    # The enrolled embeddings recognise the same people in their other crops, and not each other.
    from edge_reid.embedder import Embedder

    embedder = Embedder()
    assert gallery.model_id == embedder.model_id
    probe = embedder.embed_crops([cv2.imread(str(a[-1])), cv2.imread(str(b[-1]))])
    assert gallery.match(probe, update=False, create=False).identity_ids.tolist() == [1, 2]

    assert main(["gallery", "list", "-g", str(g)]) == 0
    listing = capsys.readouterr().out
    assert "Alice" in listing and "Bob" in listing and "3 identities" in listing
    out = tmp_path / "export.json"
    assert main(["gallery", "export", "-g", str(g), "-o", str(out)]) == 0
    exported = json.loads(out.read_text())
    assert [i["name"] for i in exported["identities"]] == ["Alice", "Bob", "Carol"]
    assert exported["identities"][0]["enrolled"] == 3 and "embedding" not in out.read_text()
    assert main(["gallery", "remove", "-g", str(g), "--name", "Bob"]) == 0
    assert [i.name for i in Gallery.load(g).identities] == ["Alice", "Carol"]

    # rename: name someone `run` met; a name two identities share is never removed by name.
    assert main(["gallery", "rename", "-g", str(g), "--id", "3", "--name", " Alice "]) == 0
    assert "identity 3 now has 'Alice' (also the name of id 1)" in " ".join(capsys.readouterr().err.split())
    assert [i.name for i in Gallery.load(g).identities] == ["Alice", "Alice"]
    assert main(["gallery", "remove", "-g", str(g), "--name", "Alice"]) == 2
    assert "2 identities are named 'Alice'" in capsys.readouterr().err and len(Gallery.load(g)) == 2
    before = g.read_bytes()
    # Spaces do not make another person, and with two named Alice, which one to add to is not guessed.
    assert main(["gallery", "enroll", "-g", str(g), "-n", " Alice", str(a[0])]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "2 identities are named 'Alice'" in err and "(edge-reid gallery rename --id 3 --name ...)" in err
    assert g.read_bytes() == before, "nothing added"
    assert main(["gallery", "rename", "-g", str(g), "--id", "9", "--name", "Dan"]) == 2
    assert main(["gallery", "rename", "-g", str(g), "--id", "3", "--name", ""]) == 0
    assert [i.name for i in Gallery.load(g).identities] == ["Alice", None]


def test_user_errors_exit_2_with_one_line(tmp_path, person_images, capsys):
    g = tmp_path / "g.edgereid"
    assert main(["gallery", "enroll", "-g", str(g), "-n", "X", *map(str, person_images["empty"] + person_images["broken"])]) == 2
    assert "no usable image to enroll 'X' (skipped 2 files: empty.png (no person found), broken.jpg (not a decodable image))" in capsys.readouterr().err
    assert not g.exists()
    other = Gallery(512, model_id="0" * 64, model_name="other_model.onnx")
    other.add(np.ones(512, np.float32))
    other.save(g)
    before = g.read_bytes()
    assert main(["gallery", "enroll", "-g", str(g), "-n", "X", str(person_images["a"][0])]) == 2
    err = capsys.readouterr().err
    assert "made with other_model.onnx" in err and "not comparable" in err
    assert main(["gallery", "remove", "-g", str(g), "--name", "Nobody"]) == 2
    assert "no identity named 'Nobody'" in capsys.readouterr().err
    assert g.read_bytes() == before
    g.write_bytes(before[:-10])
    result = _cli("gallery", "list", "-g", str(g))  # as a user sees it: one line, no traceback
    assert result.returncode == 2 and "truncated" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert g.read_bytes() == before[:-10]  # never replaced


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_name_is_a_usage_error_naming_the_option(tmp_path, name, capsys):
    g = tmp_path / "g.edgereid"
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), np.full((256, 128, 3), 127, np.uint8))
    assert main(["gallery", "enroll", "-g", str(g), "--name", name, str(photo)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--name" in err[0] and "give the person's name" in err[0] and "internal error" not in err[0]
    assert not g.exists()


def test_threshold_on_market_layout(tmp_path, mot17_dir, capsys):
    report_path = tmp_path / "t.json"
    assert main(["gallery", "threshold", "--data", str(mot17_dir), "--fmr", "0.01", "--max-images", "240",
                 "--json", str(report_path)]) == 0
    captured = capsys.readouterr()
    report = json.loads(report_path.read_text())
    assert float(captured.out.strip().splitlines()[-1]) == pytest.approx(report["threshold"], abs=1e-4)
    assert 0.2 < report["threshold"] < 0.95
    assert report["false_match_rate"] <= 0.01 and report["true_match_rate"] > 0.9  # an easy set: rank-1 is 100%
    assert report["positive_pairs"] > 50 and report["negative_pairs"] > 1000
    hist = report["histogram"]
    assert len(hist["edges"]) == 21 and sum(hist["positive"]) == pytest.approx(1) and sum(hist["negative"]) == pytest.approx(1)
    assert "same person" in captured.out and "true-match rate" in captured.err


def test_threshold_data_that_is_a_file_is_named_a_file(tmp_path, capsys):
    video = tmp_path / "v.avi"
    video.write_bytes(b"x")
    assert main(["gallery", "threshold", "--data", str(video)]) == 2
    assert f"edge-reid: error: {video} is a file, not a data folder" in capsys.readouterr().err
    assert main(["gallery", "threshold", "--data", str(tmp_path / "missing")]) == 2
    assert f"data folder {tmp_path / 'missing'} does not exist" in capsys.readouterr().err


def test_threshold_on_a_folder_without_labels_is_a_data_error(tmp_path, capsys):
    (tmp_path / "photo.jpg").write_bytes(b"x")
    assert main(["gallery", "threshold", "--data", str(tmp_path)]) == 2
    assert "Market-1501 layout" in capsys.readouterr().err


def test_a_name_with_control_characters_is_refused(tmp_path, capsys):
    """Names are printed on terminals and drawn on frames: a line break or an escape code is refused."""
    import numpy as np

    g = tmp_path / "g.edgereid"
    gallery = Gallery(4)
    gallery.enroll("Ann", np.eye(4, dtype=np.float32)[:1])
    gallery.save(g)
    for name in ("Bo\nb", "\x1b[31mEve"):
        assert main(["gallery", "rename", "-g", str(g), "--id", "1", "--name", name]) == 2
        assert "cannot hold control characters" in capsys.readouterr().err
    assert Gallery.load(g).identities[0].name == "Ann"
    with pytest.raises(ValueError, match="control characters"):
        gallery.enroll("Tab\tName", np.eye(4, dtype=np.float32)[1:2])


def test_the_same_photo_is_enrolled_once(tmp_path, mot17_dir, capsys):
    """Enrolling a photo again (the same command run twice, or a file given twice) stored it again."""
    photo = str(sorted((mot17_dir / "query").iterdir())[0])
    g = tmp_path / "g.edgereid"
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Ann", photo, photo, photo]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "enrolled 1 image(s) as 'Ann' (identity 1)" in err and "2 already enrolled, not stored twice" in err
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Ann", photo]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "enrolled 0 image(s) as 'Ann' (identity 1)" in err and "1 already enrolled, not stored twice" in err
    assert Gallery.load(g).embedding_counts(1) == (1, 0)


def test_enrolling_one_person_under_a_second_name_warns_that_neither_would_be_recognised(tmp_path, mot17_dir, capsys):
    """The same person's photos under two names: a run finds both alike and takes neither (identities.py), which
    showed only later, as names missing from the events. Enrolling warns, naming the other identity (never its
    own name's); another person's photos do not warn."""
    def photos(person: str) -> list[str]:
        return [str(p) for p in sorted((mot17_dir / "bounding_box_test").glob(f"{person}_*.jpg"))[:4]]

    g = tmp_path / "g.edgereid"
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Gina", *photos("0055")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Hana", *photos("0055")[:2]]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: these photos look like identity 1 'Gina'" in err and "recognises neither" in err
    assert "enrolled 2 image(s) as 'Hana' (identity 2)" in err, "enrolled all the same"
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Gina", *photos("0055")[2:]]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "look like identity 2 'Hana'" in err and "look like identity 1" not in err, "not about its own name"
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Ivo", *photos("0056")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_gallery_saved_without_a_model_is_taken_with_a_warning_line(tmp_path, mot17_dir, capsys):
    """A gallery saved from Gallery(dim) (no model_id) was taken by any model of its dimension and re-tagged as
    that model without a word: its provenance unknown, its matches possibly meaningless."""
    from edge_reid.embedder import Embedder
    from edge_reid.errors import GalleryWarning

    photo = str(sorted((mot17_dir / "query").iterdir())[0])
    g = tmp_path / "untagged.edgereid"
    rng = np.random.default_rng(0)
    with Embedder(threads=1) as embedder:
        dim, model_id = embedder.dim, embedder.model_id
    made_elsewhere = rng.standard_normal((1, dim)).astype(np.float32)
    untagged = Gallery(dim)
    untagged.enroll("Bob", made_elsewhere / np.linalg.norm(made_elsewhere))
    untagged.save(g)
    with pytest.warns(GalleryWarning, match="records no model"):
        Gallery.load(g, model_id=model_id)
    assert Gallery.load(g).model_id is None  # no model asked: nothing to say, nothing recorded
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Ann", photo]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "edge-reid: warning: gallery" in err and "records no model" in err and "enroll the people again" in err
    assert Gallery.load(g).model_id == model_id  # said once, then recorded


def test_names_and_paths_with_square_brackets_are_shown_as_given(tmp_path, mot17_dir, capsys):
    """Rich read them as markup: 'Anna [guest]' showed as 'Anna ', and 'Bo [/b]' saved the name, then ended the command
    with an internal error (MarkupError), and every later `gallery list` too: the gallery could no longer be listed."""
    from conftest import unwrapped

    photo = str(sorted((mot17_dir / "query").iterdir())[0])
    folder = tmp_path / "[site] one"
    folder.mkdir()
    g = folder / "g.edgereid"
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Cy [/i]", photo]) == 0
    assert "'Cy [/i]'" in unwrapped(capsys.readouterr().err)
    for name in ("Anna [guest]", "Bo [/b]"):
        assert main(["gallery", "rename", "-g", str(g), "--id", "1", "--name", name]) == 0
        assert f"now has '{name}'" in unwrapped(capsys.readouterr().err)
        assert main(["gallery", "list", "-g", str(g)]) == 0
        shown = unwrapped(capsys.readouterr().out)
        assert name in shown and "[site] one" in shown


def test_remove_and_rename_on_a_gallery_that_does_not_exist_are_input_errors(tmp_path, capsys):
    """In a folder that does not exist: an internal error (FileNotFoundError on the lock file); in one that does, the
    refused command left a lock file behind."""
    for gallery in (tmp_path / "nodir" / "x.edgereid", tmp_path / "x.edgereid"):
        assert main(["gallery", "remove", "-g", str(gallery), "--id", "1"]) == 2
        assert main(["gallery", "rename", "-g", str(gallery), "--id", "1", "--name", "A"]) == 2
        err = capsys.readouterr().err
        assert "does not exist" in err and "internal error" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no lock file, no folder left"


def test_printed_threshold_is_rounded_up_so_it_keeps_the_false_match_rate(tmp_path, monkeypatch, capsys):
    """Defect: the threshold was printed to 4 decimals rounded to nearest, which can land below the exact
    threshold and let through negatives it excludes (mot17-reid-mini at --fmr 0.01: exact 0.635806, printed
    0.6358, false-match rate 1.0006%). Here the only negatives score 0.50002: at --fmr 0 the exact threshold is
    just above that, 0.5000 would pass them all; 0.5001 (rounded up) passes none."""
    import edge_reid.embedder

    angle = np.arccos(0.50002)
    vectors = {10: [1.0, 0.0], 20: [np.cos(angle), np.sin(angle)]}  # crop brightness -> embedding

    class FakeEmbedder:
        model_path, model_id = Path("fake.onnx"), "fake"

        def __init__(self, *args, **kwargs):
            pass

        def embed_crops(self, crops):
            return np.array([vectors[int(crop[0, 0, 0])] for crop in crops], np.float32)

    monkeypatch.setattr(edge_reid.embedder, "Embedder", FakeEmbedder)
    for person, value in ((1, 10), (2, 20)):
        for camera in (1, 2):
            cv2.imwrite(str(tmp_path / f"{person:04d}_c{camera}s1_000001_00.png"), np.full((16, 8, 3), value, np.uint8))
    report_path = tmp_path / "t.json"
    assert main(["gallery", "threshold", "--data", str(tmp_path), "--fmr", "0", "--json", str(report_path)]) == 0
    captured = capsys.readouterr()
    printed = captured.out.strip().splitlines()[-1]
    assert printed == "0.5001"
    report = json.loads(report_path.read_text())
    assert 0.50002 < report["threshold"] <= float(printed) and report["false_match_rate"] == 0.0
    assert "threshold 0.5001 " in captured.err and "false-match rate 0.0000%" in captured.err


def test_list_to_a_pipe_or_of_many_identities_is_one_tab_separated_line_each(tmp_path, capsys, monkeypatch):
    """Rich measured every cell before printing any (100,000 identities took 3 minutes), and piped output wrapped
    each identity over 3 lines at 80 columns; to a file or pipe (and above 1000 identities) the list is lines."""
    rng = np.random.default_rng(0)
    gallery = Gallery(8)
    for index in range(3000):
        vector = rng.normal(size=8).astype(np.float32)
        gallery.add(vector / np.linalg.norm(vector), name="Ann [x]" if index == 1 else None, timestamp=0.0)
    g = tmp_path / "big.edgereid"
    gallery.save(g)
    assert main(["gallery", "list", "-g", str(g)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3002 and lines[0].startswith(f"# 3000 identities: {g}")
    assert lines[1].split("\t") == ["id", "name", "enrolled", "recent", "count", "first seen", "last seen"]
    rows = [line.split("\t") for line in lines[2:]]
    assert all(len(row) == 7 for row in rows) and [row[0] for row in rows] == [str(i) for i in range(1, 3001)]
    assert rows[1][1] == "Ann [x]" and rows[0][1] == "" and rows[0][5] == "1970-01-01 00:00:00 UTC"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)  # on a terminal too, above 1000
    assert main(["gallery", "list", "-g", str(g)]) == 0
    assert capsys.readouterr().out.splitlines() == lines


def test_list_with_standard_output_closed_is_one_error_line(tmp_path):
    gallery = Gallery(4)
    gallery.add(np.eye(4, dtype=np.float32)[0], timestamp=0.0)
    g = tmp_path / "g.edgereid"
    gallery.save(g)
    result = subprocess.run(["bash", "-c", f'"{sys.executable}" -m edge_reid gallery list -g "{g}" >&-'], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "standard output is closed" in result.stderr and "internal error" not in result.stderr


def test_list_of_a_few_identities_is_lines_to_a_pipe_and_a_table_on_a_terminal(tmp_path, capsys, monkeypatch):
    gallery = Gallery(4)
    for index in range(3):
        gallery.add(np.eye(4, dtype=np.float32)[index], name="Ann" if index == 0 else None, timestamp=0.0)
    g = tmp_path / "g.edgereid"
    gallery.save(g)
    assert main(["gallery", "list", "-g", str(g)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and lines[2].split("\t")[:2] == ["1", "Ann"], "to a pipe: lines"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert main(["gallery", "list", "-g", str(g)]) == 0
    shown = capsys.readouterr().out
    assert "3 identities" in shown and "\t" not in shown and "Ann" in shown, "on a terminal: a table"


def test_enroll_warns_of_other_names_only(tmp_path, mot17_dir, capsys):
    """More photos under a name given with spaces around it are its own (no warning); photos of someone a run met
    (an unnamed identity) are fine to enrol (the one-name rule), so no warning either."""
    photos = [str(p) for p in sorted((mot17_dir / "bounding_box_test").glob("0055_*.jpg"))[:4]]
    g = tmp_path / "g.edgereid"
    assert main(["gallery", "enroll", "-g", str(g), "-n", "Gina", *photos[:2]]) == 0
    assert main(["gallery", "enroll", "-g", str(g), "-n", " Gina ", *photos[2:]]) == 0
    assert "warning" not in capsys.readouterr().err
    unnamed = tmp_path / "unnamed.edgereid"
    assert main(["gallery", "enroll", "-g", str(unnamed), "-n", "Gina", *photos[:2]]) == 0
    assert main(["gallery", "rename", "-g", str(unnamed), "--id", "1", "--name", ""]) == 0  # now like a run's identity
    assert Gallery.load(unnamed).get(1).name is None
    capsys.readouterr()
    assert main(["gallery", "enroll", "-g", str(unnamed), "-n", "Hana", *photos[2:]]) == 0
    assert "warning" not in capsys.readouterr().err
