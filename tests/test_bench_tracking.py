"""benchmarks/bench_tracking.py: sequences, ground truth, scoring and the side-by-side run.

No speed or accuracy targets here (they live in docs/benchmarks.md): only that the harness feeds
the right frames, scores what it is given correctly, and reports numbers of the right shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import load_benchmark_script

from edge_reid.detections import Detections
from edge_reid.errors import DataError


@pytest.fixture(scope="module")
def bench():
    return load_benchmark_script("bench_tracking")


def _write_sequence(folder: Path, rows: list[list[float]], length: int, frame_rate: int = 10) -> Path:
    (folder / "gt").mkdir(parents=True)
    (folder / "seqinfo.ini").write_text(f"[Sequence]\nname={folder.name}\nframeRate={frame_rate}\nseqLength={length}\n")
    (folder / "gt" / "gt.txt").write_text("".join(",".join(f"{v:g}" for v in row) + "\n" for row in rows))
    return folder


def _two_walkers(length: int) -> list[list[float]]:
    """Ground truth: person 1 walks right, person 2 walks left, both visible every frame; one ignored box."""
    rows = []
    for frame in range(1, length + 1):
        rows.append([frame, 1, 10 + 5 * frame, 50, 30, 80, 1, -1, -1, -1])
        rows.append([frame, 2, 400 - 5 * frame, 60, 30, 80, 1, -1, -1, -1])
    rows.append([1, 3, 600, 300, 20, 40, 0, -1, -1, -1])  # conf 0: ignored by the MOT15 protocol
    return rows


def _sequence_for(bench, ground_truth, frame_step: int = 1):
    frames = [
        bench.SequenceFrame(number + 1, index, index / 10.0, Detections.empty())
        for number, index in enumerate(range(0, ground_truth.length, frame_step))
    ]
    return bench.Sequence(ground_truth.folder.name, frames, 10.0 / frame_step, 1.0, None, frame_step)


def _run_from_ground_truth(bench, rows: np.ndarray, name: str = "perfect"):
    keep = rows[:, 6] != 0
    return bench.TrackerRun(name, name, rows=np.concatenate((rows[keep, :6], np.ones((keep.sum(), 1))), axis=1))


def test_load_ground_truth_reads_seqinfo_and_rows(bench, tmp_path):
    folder = _write_sequence(tmp_path / "walk", _two_walkers(20), length=25)
    ground_truth = bench.load_ground_truth(folder)
    assert ground_truth.frame_rate == 10.0
    assert ground_truth.length == 25  # seqLength wins over the last annotated frame
    assert ground_truth.rows.shape == (41, 10)
    assert ground_truth.image_folder is None


def test_load_ground_truth_names_the_missing_file(bench, tmp_path):
    with pytest.raises(DataError, match="seqinfo.ini"):
        bench.load_ground_truth(tmp_path)
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nseqLength=5\n")
    with pytest.raises(DataError, match="gt.txt"):
        bench.load_ground_truth(tmp_path)


def test_evaluated_ground_truth_keeps_the_stepped_frames_renumbered(bench, tmp_path):
    ground_truth = bench.load_ground_truth(_write_sequence(tmp_path / "walk", _two_walkers(10), length=10))
    sequence = _sequence_for(bench, ground_truth, frame_step=3)  # source frames 1, 4, 7, 10
    rows = bench.evaluated_ground_truth(ground_truth, sequence)
    assert sorted(set(rows[:, 0].astype(int))) == [1, 2, 3, 4]
    person1 = rows[rows[:, 1] == 1]
    np.testing.assert_allclose(person1[:, 2], [15, 30, 45, 60])  # left = 10 + 5 * source frame


def test_read_mot_detections_groups_by_frame_and_defaults_scores(bench, tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,40,-1,-1,-1,-1\n1,-1,100,20,30,40,0.9,-1,-1,-1\n3,7,5,6,7,8,0.5,-1,-1,-1\n")
    detections = bench.read_mot_detections(path)
    assert sorted(detections) == [1, 3]
    np.testing.assert_allclose(detections[1].scores, [1.0, 0.9])  # -1 -> 1.0, sorted by score
    np.testing.assert_allclose(detections[1].boxes[0], [10, 20, 40, 60])  # left, top, w, h -> x1, y1, x2, y2
    with pytest.raises(DataError, match="missing.txt does not exist"):
        bench.read_mot_detections(tmp_path / "missing.txt")
    dpm = tmp_path / "dpm.txt"  # MOT16 / MOT17-DPM rows: raw detector scores above 1
    dpm.write_text("1,-1,10,20,30,40,2.3092,-1,-1,-1\n1,-1,100,20,30,40,0.33276,-1,-1,-1\n")
    np.testing.assert_allclose(bench.read_mot_detections(dpm)[1].scores, [1.0, 0.33276], rtol=1e-6)


def test_score_is_perfect_for_the_ground_truth_and_counts_a_swap(bench, tmp_path):
    pytest.importorskip("trackeval", reason="TrackEval is not installed (pip install trackeval)")
    ground_truth = bench.load_ground_truth(_write_sequence(tmp_path / "walk", _two_walkers(30), length=30))
    sequence = _sequence_for(bench, ground_truth)
    perfect = _run_from_ground_truth(bench, ground_truth.rows)
    swapped_rows = perfect.rows.copy()
    late = swapped_rows[:, 0] > 15
    swapped_rows[late, 1] = 3 - swapped_rows[late, 1]  # ids 1 and 2 trade places halfway
    swapped = bench.TrackerRun("swapped", "swapped", rows=swapped_rows)
    skipped = bench.TrackerRun("absent", "absent", skipped="not installed")
    results = bench.score([perfect, swapped, skipped], ground_truth, sequence)
    assert set(results) == {"perfect", "swapped"}
    for key in ("HOTA", "DetA", "AssA", "IDF1", "MOTA"):
        assert results["perfect"][key] == pytest.approx(100.0)
    assert results["perfect"]["IDSW"] == 0
    assert results["swapped"]["IDSW"] == 2
    assert results["swapped"]["DetA"] == pytest.approx(100.0)
    assert results["swapped"]["AssA"] < 60.0
    assert results["swapped"]["IDF1"] < 60.0


def test_unknown_tracker_is_a_one_line_error(bench, capsys):
    assert bench.main(["--trackers", "nosuchtracker", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "unknown tracker(s) nosuchtracker" in error and "rf-bytetrack" in error
    assert "Traceback" not in error


def test_embedding_trackers_are_skipped_without_frames(bench):
    choices = bench.tracker_choices()
    selected = [choices["edge-reid"], choices["edge-reid-live"]]
    built, skipped = bench.build_trackers(selected, bench.BuildContext(10.0), have_frames=False)
    assert built == []
    assert all("needs frames" in run.skipped for run in skipped) and len(skipped) == 2


@pytest.mark.slow
def test_motion_peers_side_by_side_on_a_vtest_slice(bench, shared_dir, tmp_path, capsys):
    pytest.importorskip("trackers", reason="roboflow trackers is not installed (pip install '.[bench]')")
    pytest.importorskip("trackeval", reason="TrackEval is not installed (pip install '.[bench]')")
    out = tmp_path / "bench.json"
    argv = ["--trackers", "rf-bytetrack,rf-ocsort,edge-reid", "--max-frames", "40", "--no-progress"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--json", str(out)]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| ByteTrack (trackers) |" in printed and "| OC-SORT (trackers) |" in printed
    assert "| edge-reid (Pipeline: tracker + identities) |" in printed  # a row, with numbers or "n/a" and its reason
    document = json.loads(out.read_text())
    assert document["schema"] == "edge-reid-bench-tracking/1"
    assert document["sequence"]["frames"] == 40
    assert document["sequence"]["detections_per_frame"] > 1
    by_name = {entry["name"]: entry for entry in document["trackers"]}
    assert list(by_name) == ["edge-reid", "rf-bytetrack", "rf-ocsort"]
    for name in ("rf-bytetrack", "rf-ocsort"):
        entry = by_name[name]
        assert entry["status"] == "ok"
        for key in ("HOTA", "DetA", "AssA", "IDF1", "MOTA"):
            assert 0.0 < entry["metrics"][key] <= 100.0  # real tracks on real people: not zero
        assert entry["metrics"]["IDSW"] >= 0
        assert entry["fps_tracker"] > 0 and entry["embeddings_per_frame"] is None
    assert document["peers"]["trackers"]
    assert list((tmp_path / "cache").glob("*.npz")), "detections were not cached"


def test_detector_size_runs_the_detector_there_and_keys_the_cache(bench, vtest_path, tmp_path):
    cache = tmp_path / "cache"
    default = bench.detect_sequence(str(vtest_path), "vtest", max_frames=3, cache_dir=cache, progress=False)
    larger = bench.detect_sequence(str(vtest_path), "vtest", max_frames=3, detector_size=640, cache_dir=cache, progress=False)
    assert "detector_size" not in default.settings and larger.settings["detector_size"] == 640
    assert len(list(cache.glob("*.npz"))) == 2, "each size has its own cached detections"
    boxes = lambda sequence: np.concatenate([frame.detections.boxes for frame in sequence.frames])
    assert boxes(default).shape != boxes(larger).shape or not np.allclose(boxes(default), boxes(larger), atol=0.5)
    assert "detector input 640 px long side" in larger.conditions() and "detector input" not in default.conditions()
    for size in (100, 0):  # 0 too, though a cached run at the default size exists: refused before the cache is read
        with pytest.raises(bench.BenchError, match="--detector-size: input_size must be a whole number of pixels, a multiple of 32"):
            bench.detect_sequence(str(vtest_path), "vtest", max_frames=3, detector_size=size, cache_dir=cache, progress=False)


def test_detector_size_with_a_detections_file_is_a_one_line_error(bench, tmp_path, capsys):
    sequence = _write_sequence(tmp_path / "seq", _two_walkers(3), 3)
    detections = tmp_path / "det.txt"
    detections.write_text("1,-1,10,50,30,80,0.9,-1,-1,-1\n")
    for size in ("640", "0"):
        argv = ["--gt", str(sequence), "--detections", str(detections), "--detector-size", size, "--trackers", "rf-bytetrack", "--no-progress"]
        assert bench.main(argv) == 2
        assert "--detector-size need frames to detect in" in capsys.readouterr().err


def test_tiled_sequence_puts_four_stretches_side_by_side_with_their_ground_truth(vtest_path, shared_dir, tmp_path):

    tiled = load_benchmark_script("tiled_sequence")
    video, sequence, length = tiled.tiled_sequence(vtest_path, shared_dir / "data" / "vtest-mot", tmp_path, max_frames=3)
    assert length == 3
    frames = tiled.read_frames(video)
    originals = tiled.read_frames(vtest_path)
    assert frames[0].shape == (1152, 1536, 3)
    quarter = 795 // 4
    assert np.array_equal(frames[1][:576, :768], originals[1]), "tile 0: the first quarter, lossless"
    assert np.array_equal(frames[1][576:, 768:], originals[3 * quarter + 1]), "tile 3: the last quarter, bottom right"
    source_rows = np.loadtxt(shared_dir / "data" / "vtest-mot" / "gt" / "gt.txt", delimiter=",")
    rows = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",")
    expected = source_rows[source_rows[:, 0] == 2 * quarter + 2]  # frame 2 of tile 2 (bottom left)
    moved = rows[(rows[:, 0] == 2) & (rows[:, 1] >= 2000) & (rows[:, 1] < 3000)]
    assert len(moved) == len(expected) > 0
    assert np.allclose(moved[:, 2:6], expected[:, 2:6] + [0, 576, 0, 0], atol=1e-3) and np.array_equal(moved[:, 1] - 2000, expected[:, 1])
    assert "frameRate=10" in (sequence / "seqinfo.ini").read_text() and "seqLength=3" in (sequence / "seqinfo.ini").read_text()


def test_reversed_sequence_plays_the_frames_backwards_with_their_ground_truth(vtest_path, shared_dir, tmp_path):

    reverse = load_benchmark_script("reversed_sequence")
    video, sequence, length = reverse.reversed_sequence(vtest_path, shared_dir / "data" / "vtest-mot", tmp_path, max_frames=5)
    assert length == 5
    frames = reverse.read_frames(video)
    originals = reverse.read_frames(vtest_path, 5)
    assert all(np.array_equal(frames[k], originals[4 - k]) for k in range(5)), "frame k is the source's 4 - k, lossless"
    source_rows = np.loadtxt(shared_dir / "data" / "vtest-mot" / "gt" / "gt.txt", delimiter=",")
    rows = np.loadtxt(sequence / "gt" / "gt.txt", delimiter=",")
    for frame in range(1, 6):  # MOTChallenge frames are 1-based: output frame f is source frame 6 - f
        expected = source_rows[source_rows[:, 0] == 6 - frame]
        got = rows[rows[:, 0] == frame]
        assert len(got) == len(expected) > 0
        assert np.allclose(got[np.argsort(got[:, 1]), 1:6], expected[np.argsort(expected[:, 1]), 1:6], atol=1e-3)
    assert rows[:, 0].max() == 5 and "seqLength=5" in (sequence / "seqinfo.ini").read_text()


def test_detections_are_cached_in_edge_reids_cache_folder(bench, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path / "cache"))
    assert bench.default_cache_dir() == tmp_path / "cache" / "bench_tracking"
