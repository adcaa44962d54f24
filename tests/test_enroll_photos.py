"""`edge-reid gallery enroll` on the photos a kiosk operator has: phone-sized, EXIF-rotated, HEIC, padded names."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from edge_reid.cli import main
from edge_reid.matching import Gallery


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory, vtest_path) -> Path:
    """A 12 MP portrait phone photo (3000 x 4000) that one real vtest walker fills top to bottom."""
    capture = cv2.VideoCapture(str(vtest_path))
    for _ in range(60):
        ok, frame = capture.read()
    capture.release()
    assert ok
    person = frame[225:356, 600:680]  # one walker, no one else in this part of frame 60
    tall = cv2.resize(person, (round(4000 * person.shape[1] / person.shape[0]), 4000), interpolation=cv2.INTER_CUBIC)
    side = 3000 - tall.shape[1]
    photo = cv2.copyMakeBorder(tall, 0, 0, side // 2, side - side // 2, cv2.BORDER_REPLICATE)
    path = tmp_path_factory.mktemp("photos") / "upright.jpg"
    cv2.imwrite(str(path), photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def _enroll(capsys, *args: str) -> str:
    code = main(["gallery", "enroll", *args])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 0, err
    return err


def test_many_phone_photos_are_enrolled_in_the_memory_of_one(tmp_path, phone_photo, capsys):
    """Every photo's person crop (16 MB for this 12 MP photo, 140 MB at 48 MP) was kept until all were
    read: a hundred phone photos took gigabytes. Four photos now take about the memory of one."""
    _enroll(capsys, "-g", str(tmp_path / "warm.edgereid"), "-n", "Ann", str(phone_photo))  # imports, first-use caches
    peaks = []
    for count in (1, 4):
        tracemalloc.start()
        try:
            _enroll(capsys, "-g", str(tmp_path / f"g{count}.edgereid"), "-n", "Ann", *[str(phone_photo)] * count)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    crop_bytes = 4000 * 650 * 3  # the walker's box in the photo
    assert peaks[1] < peaks[0] + crop_bytes, f"peak {peaks[1] / 1e6:.0f} MB for 4 photos, {peaks[0] / 1e6:.0f} MB for 1"


def test_an_exif_rotated_phone_photo_is_enrolled_upright(tmp_path, phone_photo, capsys):
    """A phone stores a portrait photo sideways with an EXIF orientation (6: turn 90 degrees clockwise); the
    reader turns it upright, so the person is found and enrolled as the upright photo is."""
    upright = cv2.imread(str(phone_photo))
    sideways = tmp_path / "IMG_0001.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))[..., ::-1]).save(sideways, exif=exif, quality=90)
    g = tmp_path / "g.edgereid"
    _enroll(capsys, "-g", str(g), "-n", "Ann", str(phone_photo))
    err = _enroll(capsys, "-g", str(g), "-n", "Bob", str(sideways))
    assert "enrolled 1 image(s) as 'Bob'" in err
    gallery = Gallery.load(g)
    ann, bob = (np.asarray(gallery.embeddings(i)).reshape(-1, gallery.dim)[0] for i in (1, 2))
    assert float(ann @ bob) > 0.98  # the same upright person, within JPEG noise


def test_heic_photos_are_skipped_by_name_with_what_to_do(tmp_path, mot17_dir, capsys):
    """An iPhone's HEIC photos in a folder were left out unsaid, and one given by name was "not a decodable
    image": both are now named as HEIC, with the fix (convert to JPEG)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    crop = sorted((mot17_dir / "query").iterdir())[0]
    (folder / "a.jpg").write_bytes(crop.read_bytes())
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200)  # the start of an iPhone photo
    (folder / "IMG_0002.HEIC").write_bytes(heic)
    (folder / "notes.txt").write_text("not a photo")
    err = _enroll(capsys, "-g", str(tmp_path / "g.edgereid"), "-n", "Ann", str(folder))
    assert "enrolled 1 image(s) as 'Ann'" in err
    assert "skipped 1 file: IMG_0002.HEIC (HEIC/HEIF photo, which OpenCV cannot decode: convert it to JPEG or PNG)" in err
    renamed = tmp_path / "photo.dat"  # the bytes tell, whatever the name
    renamed.write_bytes(heic)
    assert main(["gallery", "enroll", "-g", str(tmp_path / "g.edgereid"), "-n", "Ann", str(renamed)]) == 2
    assert "photo.dat (HEIC/HEIF photo, which OpenCV cannot decode: convert it to JPEG" in " ".join(capsys.readouterr().err.split())


def test_the_name_is_reported_as_stored(tmp_path, mot17_dir, capsys):
    """A name typed with spaces around it is stored without them (one person, one name); the line said the
    name as typed, as if "  Ann " were another person's."""
    crop = str(sorted((mot17_dir / "query").iterdir())[0])
    err = _enroll(capsys, "-g", str(tmp_path / "g.edgereid"), "-n", "  Ann ", crop)
    assert "enrolled 1 image(s) as 'Ann' (identity 1)" in err


def test_a_photo_without_colour_is_enrolled_with_a_warning(tmp_path, mot17_dir, capsys):
    """A black-and-white photo was enrolled silently, yet the person seen in colour is below --reid-threshold
    (0.82) against it (0.76 for a vtest walker): the person would not be recognised. Enrolling it warns."""
    crops = sorted((mot17_dir / "query").iterdir())[:2]
    grey = tmp_path / "bw.jpg"
    cv2.imwrite(str(grey), cv2.cvtColor(cv2.imread(str(crops[0])), cv2.COLOR_BGR2GRAY))
    err = _enroll(capsys, "-g", str(tmp_path / "g.edgereid"), "-n", "Ann", str(grey), str(crops[1]))
    assert "enrolled 2 image(s) as 'Ann'" in err
    assert "warning: 1 photo(s) without colour (bw.jpg)" in err
    assert crops[1].name not in err


def test_enrolling_shows_a_progress_bar_on_a_terminal(tmp_path, phone_photo, monkeypatch):
    """A hundred phone photos took 5-10 s here (longer on a Jetson) with nothing on the screen."""
    import io

    from rich.console import Console

    import edge_reid.cli.gallery_command as gallery_command

    screen = io.StringIO()
    monkeypatch.setattr(gallery_command, "console", Console(file=screen, force_terminal=True, width=100))
    assert main(["gallery", "enroll", "-g", str(tmp_path / "g.edgereid"), "-n", "Ann", str(phone_photo), str(phone_photo)]) == 0
    import re

    shown = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue()).split())
    assert re.search(r"enrolling ━+ [0-2]/2", shown), shown  # the bar, of the two photos
    assert "enrolled 1 image(s) as 'Ann'" in shown
