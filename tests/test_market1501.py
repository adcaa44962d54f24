"""Market-1501 names, split loading and the calibration sampler."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_reid.data.images import read_crop_folder, read_images
from edge_reid.data.market1501 import (
    MarketName,
    calibration_order,
    load_market1501,
    load_split,
    parse_market_name,
    sample_calibration_images,
)
from edge_reid.errors import DataError


def test_parse_regular_name():
    assert parse_market_name("0001_c1s1_001051_00.jpg") == MarketName(pid=1, camid=1, sequence=1, frame=1051)
    assert parse_market_name("1501_c6s4_001902_02.jpg") == MarketName(pid=1501, camid=6, sequence=4, frame=1902)


def test_parse_junk_and_distractor():
    assert parse_market_name("-1_c3s2_000100_01.jpg").pid == -1
    distractor = parse_market_name("0000_c2s1_000151_04.jpg")
    assert distractor.pid == 0 and distractor.camid == 2


def test_parse_ignores_everything_after_the_third_underscore():
    assert parse_market_name("0007_c2s3_000070_99_extra_fields.png") == MarketName(7, 2, 3, 70)
    assert parse_market_name("0007_c2s3_000070.jpg") == MarketName(7, 2, 3, 70)


def test_dukemtmc_reid_names_parse(tmp_path):
    """Defect: DukeMTMC-reID names (``PPPP_cC_fFFFFFFF.jpg``: no sequence, frame prefixed f) were malformed,
    so a DukeMTMC-reID folder (the same query/ and bounding_box_test/ layout) could not be evaluated."""
    assert parse_market_name("0005_c2_f0046985.jpg") == MarketName(pid=5, camid=2, sequence=0, frame=46985)
    assert parse_market_name("0000_c8_f0170000.jpg") == MarketName(pid=0, camid=8, sequence=0, frame=170000)
    for split in ("query", "bounding_box_test"):
        (tmp_path / split).mkdir()
        for name in ("0005_c2_f0046985.jpg", "0005_c5_f0051100.jpg"):
            _write_crop(tmp_path / split / name, 90)
    dataset = load_market1501(tmp_path)
    assert dataset.gallery.pids.tolist() == [5, 5] and dataset.gallery.camids.tolist() == [2, 5]
    assert dataset.gallery.skipped == []


@pytest.mark.parametrize(
    "name",
    [
        "Thumbs.db",
        "person.jpg",
        "0001c1s1_001051_00.jpg",  # missing separator
        "0001_c1s1.jpg",  # no frame
        "x001_c1s1_001051_00.jpg",  # id not a number
        "-2_c1s1_001051_00.jpg",  # only -1 is a valid negative id
        "0001_c1s1_00a051_00.jpg",  # frame not a number
        "0001_C1S1_001051_00.jpg",  # camera field is lower-case c..s..
        "0001_c1s_001051_00.jpg",  # s without a sequence number
        "0001_c1_g0046985.jpg",  # frame prefix other than f
    ],
)
def test_parse_malformed_names(name):
    assert parse_market_name(name) is None


def _write_crop(path: Path, value: int) -> None:
    image = np.full((64, 32, 3), value, np.uint8)
    image[::4] = 255 - value
    assert cv2.imwrite(str(path), image)


def test_load_split_skips_and_lists_malformed_names(tmp_path):
    _write_crop(tmp_path / "0001_c1s1_000001_00.jpg", 10)
    _write_crop(tmp_path / "-1_c2s1_000002_00.jpg", 20)
    _write_crop(tmp_path / "0000_c3s1_000003_00.jpg", 30)
    _write_crop(tmp_path / "not_a_market_name.jpg", 40)
    (tmp_path / "Thumbs.db").write_bytes(b"\0" * 10)
    split = load_split(tmp_path)
    assert [p.name for p in split.paths] == ["-1_c2s1_000002_00.jpg", "0000_c3s1_000003_00.jpg", "0001_c1s1_000001_00.jpg"]
    assert split.pids.tolist() == [-1, 0, 1] and split.camids.tolist() == [2, 3, 1]
    assert sorted((s.path.name, s.reason.split(" (")[0]) for s in split.skipped) == [
        ("Thumbs.db", "not an image file"),
        ("not_a_market_name.jpg", "malformed name"),
    ]


def test_folder_without_usable_image_is_a_clear_error(tmp_path):
    _write_crop(tmp_path / "holiday.jpg", 10)
    with pytest.raises(DataError, match="no usable image"):
        load_split(tmp_path)
    with pytest.raises(DataError, match="missing: folder not found"):
        load_split(tmp_path / "missing")
    with pytest.raises(DataError, match="query"):
        load_market1501(tmp_path)


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    _write_crop(tmp_path / "a.jpg", 10)
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg at all")
    _write_crop(tmp_path / "c.png", 30)
    images, used, skipped = read_crop_folder(tmp_path)
    assert [p.name for p in used] == ["a.jpg", "c.png"] and len(images) == 2
    assert [(s.path.name, s.reason) for s in skipped] == [("b.jpg", "not a decodable image")]
    images, used, _ = read_images(sorted(tmp_path.iterdir()), limit=1)
    assert [p.name for p in used] == ["a.jpg"]
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "c.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="no readable image"):
        read_crop_folder(tmp_path)


def _market_tree(root: Path, persons: int = 6, cameras: int = 3, per_camera: int = 2) -> None:
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (root / split).mkdir(parents=True)
    for pid in range(1, persons + 1):
        for cam in range(1, cameras + 1):
            for frame in range(per_camera):
                _write_crop(root / "bounding_box_train" / f"{pid:04d}_c{cam}s1_{frame:06d}_00.jpg", pid * 10 + cam)
    _write_crop(root / "bounding_box_train" / "-1_c1s1_000000_00.jpg", 1)
    _write_crop(root / "query" / "0100_c1s1_000000_00.jpg", 2)
    _write_crop(root / "bounding_box_test" / "0100_c2s1_000000_00.jpg", 3)


def test_calibration_sampler_is_seeded_spread_and_train_only(tmp_path):
    _market_tree(tmp_path)
    first = sample_calibration_images(tmp_path, 12, seed=3)
    assert first == sample_calibration_images(tmp_path, 12, seed=3)
    assert first != sample_calibration_images(tmp_path, 12, seed=4)
    assert all(p.parent.name == "bounding_box_train" for p in first)
    names = [parse_market_name(p.name) for p in first]
    assert all(n.pid != -1 for n in names)
    # The first 6 cover all 6 persons; the first 12 give every person two different cameras.
    assert len({n.pid for n in names[:6]}) == 6
    for pid in range(1, 7):
        assert len({n.camid for n in names if n.pid == pid}) == 2
    everything = calibration_order(tmp_path, seed=3)
    assert len(everything) == 36 == len(set(everything))
    assert sample_calibration_images(tmp_path, 1000, seed=3) == everything


def test_calibration_from_a_plain_folder_and_never_from_test_splits(tmp_path):
    for i in range(5):
        _write_crop(tmp_path / f"crop_{i:05d}.jpg", i)
    picked = sample_calibration_images(tmp_path, 3, seed=0)
    assert len(picked) == 3 and len(set(picked)) == 3
    query = tmp_path / "query"
    query.mkdir()
    _write_crop(query / "0001_c1s1_000000_00.jpg", 1)
    with pytest.raises(DataError, match="test split"):
        sample_calibration_images(query, 1)


def test_real_mini_set(mot17_dir):
    data = load_market1501(mot17_dir)
    assert len(data.query) == 54 and len(data.gallery) == 304
    assert (data.gallery.pids == -1).sum() == 24 and (data.gallery.pids == 0).sum() == 48
    sample = sample_calibration_images(mot17_dir, 54, seed=0)
    assert len({parse_market_name(p.name).pid for p in sample}) == 54


def test_the_test_split_is_refused_however_it_is_named(tmp_path, monkeypatch):
    """`calibrate --data .` inside query/ (the name of "." is "") or a link to bounding_box_test calibrated on the test split."""
    from edge_reid.data.market1501 import calibration_source

    query = tmp_path / "query"
    query.mkdir()
    _write_crop(query / "0001_c1s1_000000_00.jpg", 1)
    (tmp_path / "crops").symlink_to(query)
    monkeypatch.chdir(query)
    for given in (Path("."), tmp_path / "crops"):
        with pytest.raises(DataError, match=r"must not come from the test split \(query/\)"):
            calibration_source(given)


def test_a_broken_link_with_an_image_name_is_skipped_by_name_not_dropped(tmp_path):
    """Dangling links and link loops were left out of the listings silently: never counted, never named."""
    from edge_reid.data.images import list_images

    _write_crop(tmp_path / "0001_c1s1_000001_00.jpg", 1)
    (tmp_path / "0001_c1s1_000002_00.jpg").symlink_to(tmp_path / "missing.jpg")
    (tmp_path / "0001_c1s1_000003_00.jpg").symlink_to(tmp_path / "0001_c1s1_000003_00.jpg")  # a loop
    assert [p.name for p in list_images(tmp_path)] == ["0001_c1s1_000001_00.jpg", "0001_c1s1_000002_00.jpg", "0001_c1s1_000003_00.jpg"]
    images, used, skipped = read_crop_folder(tmp_path)
    assert [p.name for p in used] == ["0001_c1s1_000001_00.jpg"]
    assert [s.path.name for s in skipped] == ["0001_c1s1_000002_00.jpg", "0001_c1s1_000003_00.jpg"]
    split = load_split(tmp_path)
    assert len(split.paths) == 3, "listed; the reader skips the two by name"
