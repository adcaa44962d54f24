"""Data set layouts users have beyond Market-1501 itself: DukeMTMC-reID, CUHK03-np and MSMT17 names in
Market-1501 folders, stray files and folders, and MOTChallenge files as other tools write them.

The re-identification crops are real (mot17-reid-mini), renamed; scores are checked against a port of
torchreid's ``eval_market1501`` (torchreid/metrics/rank.py), itself checked on a matrix worked out by hand.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_reid.data.images import describe_skipped
from edge_reid.data.market1501 import load_market1501, load_split
from edge_reid.errors import DataError
from edge_reid.evaluation.market_eval import embed_files, evaluate_market
from edge_reid.evaluation.metrics import cosine_distance
from edge_reid.evaluation.threshold import labelled_images
from edge_reid.motchallenge import read_rows


def _torchreid_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=10):
    """torchreid's eval_market1501 (numpy path), ported line by line; its loaders already dropped junk (-1).
    A CMC row shorter than ``max_rank`` (a tiny gallery, less same-camera crops) is padded with its last value."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1, kind="stable")
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap = [], []
    for q_idx in range(num_q):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        raw_cmc = matches[q_idx][np.invert(remove)]
        if not np.any(raw_cmc):
            continue
        cmc = raw_cmc.cumsum()
        cmc[cmc > 1] = 1
        all_cmc.append(np.pad(cmc, (0, max(0, max_rank - len(cmc))), mode="edge")[:max_rank])  # tiny gallery: pad
        tmp_cmc = np.asarray([x / (i + 1.0) for i, x in enumerate(raw_cmc.cumsum())]) * raw_cmc
        all_ap.append(tmp_cmc.sum() / raw_cmc.sum())
    return np.asarray(all_cmc, np.float64).mean(axis=0), float(np.mean(all_ap)), len(all_cmc)


def test_torchreid_port_on_a_hand_worked_matrix():
    # Gallery g0..g3: person 0 camera 12, person 0 camera 1, person 1 camera 2, person 2 camera 3.
    # q0 (person 0, camera 12) ranks g0 g1 g2 g3: g0 is its own camera, removed; g1 a hit at rank 1: AP 1.
    # q1 (person 1, camera 13) ranks g1 g2 g3 g0: first hit g2 at rank 2: AP 1/2.
    dist = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.1, 0.2, 0.3]])
    cmc, ap, valid = _torchreid_eval(dist, np.array([0, 1]), np.array([0, 0, 1, 2]), np.array([12, 13]), np.array([12, 1, 2, 3]))
    assert valid == 2 and cmc[0] == pytest.approx(0.5) and cmc[1] == pytest.approx(1.0) and ap == pytest.approx(0.75)


class _Crops:
    """Real crops of mot17-reid-mini, person by person (each holds 4-5 crops)."""

    def __init__(self, mini: Path):
        self.files = sorted((mini / "bounding_box_test").glob("00[6-9]*.jpg")) + sorted((mini / "query").glob("00[6-9]*.jpg"))

    def of(self, person: int) -> list[Path]:
        return [p for p in self.files if p.name.startswith(f"{person:04d}_")]


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _msmt17_tree(root: Path, crops: _Crops) -> None:
    """MSMT17 in Market-1501 layout: people numbered from 0000, cameras up to c15."""
    a, b, c, d, e = (crops.of(person) for person in (60, 61, 62, 63, 64))
    query, gallery = root / "query", root / "bounding_box_test"
    _copy(a[0], query / "0000_c12_0001.jpg")  # person 0: matches on cameras 13 and 3
    _copy(a[1], gallery / "0000_c13_0002.jpg")
    _copy(a[2], gallery / "0000_c3_0003.jpg")
    _copy(b[0], query / "0001_c12_0004.jpg")  # person 1: one same-camera crop (removed), one on camera 14
    _copy(b[1], gallery / "0001_c12_0005.jpg")
    _copy(b[2], gallery / "0001_c14_0006.jpg")
    _copy(c[0], query / "0002_c12_0007.jpg")  # person 2: not in the gallery: not counted
    _copy(d[0], query / "0003_c12_0008.jpg")  # person 3: only on its own camera: not counted
    _copy(d[1], gallery / "0003_c12_0009.jpg")
    _copy(e[0], gallery / "0004_c1_0010.jpg")
    _copy(e[1], gallery / "0004_c15_0011.jpg")


def test_msmt17_person_0000_is_scored_as_torchreid_scores_it(tmp_path, mot17_dir, osnet_path):
    from edge_reid.embedder import Embedder

    _msmt17_tree(tmp_path, _Crops(mot17_dir))
    dataset = load_market1501(tmp_path)
    assert dataset.query.camids.tolist() == [12, 12, 12, 12] and 15 in dataset.gallery.camids.tolist()
    embedder = Embedder(osnet_path)
    try:
        result = evaluate_market(embedder, dataset)
        query = embed_files(embedder, dataset.query.paths).embeddings
        gallery = embed_files(embedder, dataset.gallery.paths).embeddings
    finally:
        embedder.close()
    # Persons 0 and 1 have a match on another camera; person 2 has none, person 3 only on its own camera.
    assert result.scores.num_valid_queries == 2 and result.scores.num_queries == 4
    cmc, ap, valid = _torchreid_eval(cosine_distance(query, gallery), dataset.query.pids, dataset.gallery.pids,
                                     dataset.query.camids, dataset.gallery.camids)
    assert valid == 2
    np.testing.assert_allclose(result.scores.cmc[: len(cmc)], cmc)
    assert result.scores.mAP == pytest.approx(ap)


def test_market1501_junk_and_distractors_stay_as_they_were(tmp_path, mot17_dir):
    # No query is 0000 in Market-1501: the gallery's 0000 crops stay distractors, -1 junk.
    crops = _Crops(mot17_dir)
    _copy(crops.of(60)[0], tmp_path / "query" / "0060_c1s1_000001_00.jpg")
    _copy(crops.of(60)[1], tmp_path / "bounding_box_test" / "0060_c2s1_000002_00.jpg")
    _copy(crops.of(61)[0], tmp_path / "bounding_box_test" / "0000_c2s1_000003_00.jpg")
    _copy(crops.of(62)[0], tmp_path / "bounding_box_test" / "-1_c2s1_000004_00.jpg")
    gallery = load_market1501(tmp_path).gallery
    assert gallery.pids.tolist() == [-1, 0, 60]


def test_threshold_keeps_training_people_apart_from_test_people(tmp_path, mot17_dir):
    # MSMT17 numbers training and test people from 0 each: training 0001 is not test 0001.
    crops = _Crops(mot17_dir)
    _copy(crops.of(60)[0], tmp_path / "bounding_box_train" / "0001_c1_0001.jpg")
    _copy(crops.of(60)[1], tmp_path / "bounding_box_train" / "0001_c2_0002.jpg")
    _copy(crops.of(61)[0], tmp_path / "query" / "0001_c13_0003.jpg")
    _copy(crops.of(61)[1], tmp_path / "bounding_box_test" / "0001_c2_0004.jpg")
    _copy(crops.of(62)[0], tmp_path / "bounding_box_test" / "0002_c3_0005.jpg")
    paths, pids, cams, skipped = labelled_images(tmp_path)
    person = dict(zip((p.parent.name + "/" + p.name for p in paths), pids.tolist()))
    train, test = person["bounding_box_train/0001_c1_0001.jpg"], person["query/0001_c13_0003.jpg"]
    assert person["bounding_box_train/0001_c2_0002.jpg"] == train
    assert person["bounding_box_test/0001_c2_0004.jpg"] == test
    assert train != test and train != person["bounding_box_test/0002_c3_0005.jpg"]
    assert len(set(pids.tolist())) == 3 and skipped == 0


def test_duke_cuhk03_png_uppercase_hidden_and_linked_files(tmp_path, mot17_dir):
    crops = _Crops(mot17_dir).of(60)
    split = tmp_path / "query"
    _copy(crops[0], split / "0005_c2_f0046985.jpg")  # DukeMTMC-reID
    import cv2

    cv2.imwrite(str(split / "0001_c1_1.png"), cv2.imread(str(crops[1])))  # CUHK03-np
    _copy(crops[2], split / "0007_c6s1_000100_00.JPG")  # upper-case suffix
    (split / "0008_c11_0001.jpg").symlink_to(crops[3])  # a link; MSMT17 camera 11
    (split / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (split / "Thumbs.db").write_bytes(b"\0")
    loaded = load_split(split)
    assert [p.name for p in loaded.paths] == ["0001_c1_1.png", "0005_c2_f0046985.jpg", "0007_c6s1_000100_00.JPG", "0008_c11_0001.jpg"]
    assert loaded.pids.tolist() == [1, 5, 7, 8] and loaded.camids.tolist() == [1, 2, 6, 11]
    assert sorted(s.path.name for s in loaded.skipped) == [".DS_Store", "Thumbs.db"]


def test_a_subfolder_in_a_split_is_counted_not_silently_passed_over(tmp_path, mot17_dir):
    crops = _Crops(mot17_dir).of(60)
    _copy(crops[0], tmp_path / "0060_c1s1_000001_00.jpg")
    _copy(crops[1], tmp_path / "0061" / "0061_c2s1_000002_00.jpg")  # ImageFolder style: one folder per person
    loaded = load_split(tmp_path)
    assert [p.name for p in loaded.paths] == ["0060_c1s1_000001_00.jpg"]
    assert [(s.path.name, s.reason.split(" (")[0]) for s in loaded.skipped] == [("0061", "a folder")]
    (tmp_path / "0060_c1s1_000001_00.jpg").unlink()
    with pytest.raises(DataError, match=r"no usable image \(skipped 1 file: 0061 \(a folder"):
        load_split(tmp_path)
    assert "0061 (a folder" in describe_skipped(loaded.skipped)


def _sequence(folder: Path, ini: bytes, gt: bytes) -> Path:
    (folder / "gt").mkdir(parents=True)
    (folder / "seqinfo.ini").write_bytes(ini)
    (folder / "gt" / "gt.txt").write_bytes(gt)
    return folder


def test_mot_files_with_byte_order_marks_crlf_unsorted_rows_and_blank_lines(tmp_path, vtest_gt_dir):
    pytest.importorskip("trackeval")
    from edge_reid.evaluation.mot import evaluate_mot

    rows = [line for line in (vtest_gt_dir / "gt" / "gt.txt").read_text().splitlines() if line and int(line.split(",")[0]) <= 40]
    ini = (vtest_gt_dir / "seqinfo.ini").read_text().replace("seqLength=795", "seqLength=40")
    result = tmp_path / "result.txt"  # a result that drops every fifth box and swaps ids after frame 20
    result.write_text("".join(
        ",".join([f[0], str(int(f[1]) + (100 if int(f[0]) > 20 and int(f[1]) % 3 == 0 else 0))] + f[2:6]) + ",1,-1,-1,-1\n"
        for index, f in enumerate(line.split(",") for line in rows) if index % 5
    ))
    plain = evaluate_mot(result, _sequence(tmp_path / "plain", ini.encode(), ("\n".join(rows) + "\n").encode()))
    bom = b"\xef\xbb\xbf"
    windows = _sequence(tmp_path / "windows", bom + ini.replace("\n", "\r\n").encode(),
                        bom + ("\r\n".join(reversed(rows)) + "\r\n\r\n").encode())
    assert evaluate_mot(result, windows).to_dict() == {**plain.to_dict()}
    assert plain.gt_boxes == len(rows) and 0 < plain.idf1 < 100
    result.write_bytes(bom + result.read_bytes())
    assert evaluate_mot(result, windows).to_dict() == plain.to_dict()


def test_mot_frames_counted_from_zero_are_refused_with_what_to_do(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("0,1,10,20,30,60,1,-1,-1,-1\n1,1,11,20,30,60,1,-1,-1,-1\n")
    with pytest.raises(DataError, match=r"gt\.txt, line 1: frame 0 .*needs 1 added to every frame"):
        read_rows(path)
    path.write_text("1,1,10,20,30,60,1,-1,-1,-1,0.5,7\n2,1,11,20,30,60\n")  # extra columns, too few (MOT15 defaults)
    np.testing.assert_array_equal(read_rows(path)[:, 6:], [[1, -1, -1, -1], [1, -1, -1, -1]])
