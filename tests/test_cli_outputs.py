"""Outputs through the CLI: never on an input or on each other, standard output with `-`, image file
names in events and MOT rows."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from conftest import unwrapped
from edge_reid.cli import main
from edge_reid.motchallenge import read_rows

REPO = Path(__file__).resolve().parents[1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def video_copy(tmp_path, vtest_path) -> Path:
    copy = tmp_path / "copy.avi"
    shutil.copyfile(vtest_path, copy)
    return copy


@pytest.mark.parametrize("option", ["--output", "--events", "--mot", "--summary", "--gallery"])
def test_an_output_on_the_source_is_refused_and_the_source_kept(option, video_copy, capsys):
    """The issue's row: `cp vtest.avi copy.avi; edge-reid run --source copy.avi --max-frames 3 --output copy.avi`."""
    before = _sha(video_copy)
    link = video_copy.with_name("link.avi")
    os.symlink(video_copy, link)
    for target in (video_copy, link):
        assert main(["run", "--source", str(video_copy), "--max-frames", "3", option, str(target)]) == 2
        err = capsys.readouterr().err
        assert err.strip() == (
            f"edge-reid: error: {option} {target} is the same file as --source {video_copy}: writing it would destroy the input; "
            f"give {option} another path"
        )
    assert _sha(video_copy) == before


def test_two_outputs_on_one_path_are_refused_before_anything_is_written(tmp_path, vtest_path, capsys):
    """The issue's row: `--events x --output x`."""
    x = tmp_path / "x"
    assert main(["run", "--source", str(vtest_path), "--max-frames", "3", "--events", str(x), "--output", str(x)]) == 2
    assert capsys.readouterr().err.strip() == f"edge-reid: error: --events {x} and --output {x} are the same file: each output needs its own path"
    assert not x.exists()
    hard = tmp_path / "summary.json"
    hard.write_text("{}")
    os.link(hard, tmp_path / "events.jsonl")
    assert main(["run", "--source", str(vtest_path), "--summary", str(hard), "--events", str(tmp_path / "events.jsonl")]) == 2
    assert "are the same file" in capsys.readouterr().err


def test_the_model_and_its_spec_are_inputs_too(tmp_path, vtest_path, osnet_path, capsys):
    model = tmp_path / "reid.onnx"
    shutil.copyfile(osnet_path, model)
    (tmp_path / "reid.json").write_text('{"embedding_dim": 512}')
    assert main(["run", "--source", str(vtest_path), "--model", str(model), "--events", str(model)]) == 2
    assert main(["run", "--source", str(vtest_path), "--model", str(model), "--summary", str(tmp_path / "reid.json")]) == 2
    err = capsys.readouterr().err
    assert "is the same file as --model" in err and "is the same file as the spec of --model" in err


def test_events_to_standard_output(vtest_path, tmp_path):
    """The issue's row: `--events -` writes JSON lines to standard output; the summary and progress stay on standard error."""
    mot = tmp_path / "m.txt"
    result = subprocess.run(
        [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--max-frames", "6", "--events", "-", "--mot", str(mot)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]  # every line of standard output is an event
    assert records and {r["frame"] for r in records if not r.get("past_frame")} == set(range(2, 6))
    identified = [r for r in records if r["identity"] >= 1]
    assert [(r["frame"] + 1, r["identity"]) for r in identified] == [(int(row[0]), int(row[1])) for row in read_rows(mot)]
    assert "edge-reid run" in result.stderr and "{" not in result.stderr
    assert not (REPO / "-").exists() and not Path("-").exists()


def test_mot_rows_and_the_summary_to_standard_output(vtest_path, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--max-frames", "5", "--mot", "-"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split(",") for line in result.stdout.splitlines()]
    assert rows and all(len(row) == 10 and row[7:] == ["-1", "-1", "-1"] for row in rows)
    assert {int(row[0]) for row in rows} == {1, 2, 3, 4, 5}, "frames 3-5 live, 1-2 as the confirmed tracks' first hits"
    assert main(["run", "--source", str(vtest_path), "--max-frames", "2", "--events", "-", "--summary", "-"]) == 2


def test_events_and_mot_rows_name_the_image_of_each_frame(tmp_path, vtest_frames, capsys):
    """Each image keeps its place in the folder's listing as its frame number (an unreadable one leaves
    a gap, so the numbers match a ground truth's), the events carry each image's file name, and the MOT
    file gets a sidecar naming each frame's image."""
    folder = tmp_path / "frames"
    folder.mkdir()
    names = ["a_000.jpg", "a_001.jpg", "a_002.jpg", "b_broken.jpg", "c_003.jpg", "c_004.jpg", "c_005.jpg"]
    for index, name in enumerate(names):
        if name == "b_broken.jpg":
            (folder / name).write_bytes(b"not an image")
        else:
            cv2.imwrite(str(folder / name), vtest_frames[index])
    events, mot = tmp_path / "e.jsonl", tmp_path / "m.txt"
    assert main(["run", "--source", str(folder), "--events", str(events), "--mot", str(mot)]) == 0
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert records and all(r["file"] == names[r["frame"]] for r in records)
    assert {r["file"] for r in records} >= {"c_003.jpg", "c_004.jpg", "c_005.jpg"}
    sidecar = [json.loads(line) for line in Path(f"{mot}.frames.jsonl").read_text().splitlines()]
    assert sidecar == [{"frame": index + 1, "file": name} for index, name in enumerate(names) if name != "b_broken.jpg"]
    rows = read_rows(mot)
    assert {int(frame) for frame in rows[:, 0]} <= {entry["frame"] for entry in sidecar}
    assert "b_broken.jpg (not a decodable image)" in unwrapped(capsys.readouterr().err)


def test_the_mot_sidecar_is_an_output_too(tmp_path, vtest_frames, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.jpg"), vtest_frames[0])
    mot = tmp_path / "m.txt"
    assert main(["run", "--source", str(folder), "--mot", str(mot), "--events", f"{mot}.frames.jsonl"]) == 2
    assert "the frame names of --mot" in capsys.readouterr().err


def test_every_command_that_writes_refuses_to_write_over_its_inputs(tmp_path, mot17_dir, vtest_gt_dir, osnet_path, capsys):
    results = tmp_path / "results.txt"
    results.write_text("1,1,10,10,20,40,1,-1,-1,-1\n")
    gallery = tmp_path / "g.edgereid"
    gallery.write_bytes(b"not read: the check comes first")
    crop = sorted((mot17_dir / "query").glob("*.jpg"))[0]
    before = {path: _sha(path) for path in (results, gallery, crop)}
    model = tmp_path / "m.onnx"
    shutil.copyfile(osnet_path, model)
    cases = [
        (["eval-mot", "--gt", str(vtest_gt_dir), str(results), "--json", str(results)], "--json"),
        (["gallery", "export", "-g", str(gallery), "-o", str(gallery)], "--output"),
        (["gallery", "enroll", "-g", str(crop), "-n", "Alice", str(crop)], "--gallery"),
        (["bench", "--model", str(model), "--model-only", "--json", str(model)], "--json"),
        (["eval", "--model", str(model), "--data", str(mot17_dir), "--json", str(model)], "--json"),
        (["calibrate", "--model", str(model), "--data", str(mot17_dir), "--out", str(mot17_dir)], "--out"),
    ]
    for argv, option in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"edge-reid: error: {option} ") and "is the same " in err and len(err.splitlines()) == 1, err
    assert {path: _sha(path) for path in before} == before
    assert not list(mot17_dir.glob("*.onnx")), "nothing written into the data folder"


def test_a_source_given_with_spaces_around_it_is_still_an_input(video_copy, capsys):
    """--source "copy.avi " was opened as copy.avi (stripped) but checked as "copy.avi ": --mot copy.avi emptied the video."""
    before = _sha(video_copy)
    assert main(["run", "--source", f"{video_copy} ", "--max-frames", "2", "--mot", str(video_copy)]) == 2
    assert "is the same file as --source" in unwrapped(capsys.readouterr().err) and _sha(video_copy) == before


def test_outputs_that_would_be_read_as_frames_of_an_image_folder_are_refused(tmp_path, vtest_frames, capsys):
    """An image-named output inside a folder source: new ones were read as frames next time ('not a decodable image'),
    and `--output 'frames/img_%04d.jpg'` wrote over every input image (OpenCV's image-sequence pattern)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(2):
        cv2.imwrite(str(folder / f"img_{index + 1:04d}.jpg"), vtest_frames[index])
    before = {path.name: _sha(path) for path in folder.iterdir()}
    for option, path in (("--mot", folder / "rows.jpg"), ("--output", folder / "img_%04d.jpg"), ("--output", tmp_path / "video.jpg"),
                         ("--output", tmp_path / "video.gif")):
        assert main(["run", "--source", str(folder), option, str(path)]) == 2
        err = unwrapped(capsys.readouterr().err)
        assert "would be read as part of the input" in err or "not a video file name" in err, err
    assert {path.name: _sha(path) for path in folder.iterdir()} == before


def test_dev_stdout_counts_as_standard_output(vtest_path, tmp_path):
    """--events /dev/stdout with --mot - (or --summary -): both wrote into standard output at their own offsets,
    garbling each other, exit 0."""
    captured = tmp_path / "out.txt"
    with captured.open("w") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--max-frames", "2", "--events", "/dev/stdout",
             "--mot", "-"], cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300,
        )
    assert result.returncode == 2 and "all go to standard output" in result.stderr and captured.read_text() == ""


def test_the_gallerys_lock_file_and_a_sequences_seqinfo_are_no_outputs(tmp_path, vtest_frames, vtest_path, capsys):
    gallery = tmp_path / "g.edgereid"
    assert main(["run", "--source", str(vtest_path), "--max-frames", "2", "--gallery", str(gallery), "--events", f"{gallery}.lock"]) == 2
    assert "the lock file of --gallery" in unwrapped(capsys.readouterr().err)
    sequence = tmp_path / "seq"
    (sequence / "img1").mkdir(parents=True)
    cv2.imwrite(str(sequence / "img1" / "000001.jpg"), vtest_frames[0])
    info = "[Sequence]\nname=seq\nimDir=img1\nframeRate=10\nseqLength=1\nimWidth=768\nimHeight=576\nimExt=.jpg\n"
    (sequence / "seqinfo.ini").write_text(info)
    assert main(["run", "--source", str(sequence / "img1"), "--summary", str(sequence / "seqinfo.ini")]) == 2
    assert "the seqinfo.ini of --source" in unwrapped(capsys.readouterr().err) and (sequence / "seqinfo.ini").read_text() == info


def test_a_run_refused_for_a_gallery_in_use_leaves_its_result_files_alone(tmp_path, vtest_path, capsys):
    """The sinks were opened (files emptied) before the run found the gallery held by another run and exited 2."""
    from edge_reid.matching.gallery_lock import RUN_HOLDER, gallery_lock

    gallery = tmp_path / "g.edgereid"
    kept = tmp_path / "keep.jsonl"
    kept.write_text('{"frame": 0}\n')
    with gallery_lock(gallery, RUN_HOLDER):
        assert main(["run", "--source", str(vtest_path), "--max-frames", "2", "--gallery", str(gallery), "--events", str(kept)]) == 2
    assert "in use by edge-reid run" in unwrapped(capsys.readouterr().err) and kept.read_text() == '{"frame": 0}\n'


def test_the_mot_frame_names_file_is_checked_before_work(tmp_path, vtest_frames, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.jpg"), vtest_frames[0])
    mot = tmp_path / "side.txt"
    Path(f"{mot}.frames.jsonl").mkdir()
    assert main(["run", "--source", str(folder), "--mot", str(mot)]) == 2
    err = unwrapped(capsys.readouterr().err)
    assert "MOT frame names path" in err and "is a folder" in err


def test_a_run_with_no_frame_says_an_earlier_video_is_not_its_own(tmp_path, capsys):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "0.jpg").write_bytes(b"not a jpeg")
    earlier = tmp_path / "out.mp4"
    earlier.write_bytes(b"an earlier run's video")
    assert main(["run", "--source", str(folder), "--output", str(earlier)]) == 0
    assert "no frame was written, so" in unwrapped(capsys.readouterr().err) and earlier.read_bytes() == b"an earlier run's video"
