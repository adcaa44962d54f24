"""Benchmark scripts that the docs tell users to run: each runs, shortened, to its table.

No speed figures are checked here (they live in docs/benchmarks.md): only that the documented
commands still run against today's library (each of these once broke when the library changed
under it: a new keyword of ``Pipeline.process``, the gallery refusing queries that are not unit
length, ``FrameSource.stopped``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_run_tracking_fps_runs_both_loops(vtest_path):
    result = _script("benchmarks/run_tracking_fps.py", "--video", str(vtest_path), "--frames", "3", "--repeats", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| appearance only |" in result.stdout and "| tracking        |" in result.stdout
    assert "ratio tracking/appearance-only" in result.stdout


@pytest.mark.slow
def test_matcher_interference_matches_unit_length_embeddings(vtest_path):
    result = _script("benchmarks/matcher_interference.py", "--video", str(vtest_path), "--rounds", "1", "--steps", "1", "--max-crops", "32")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "infer(32) after preprocess+model+match" in result.stdout


def test_camera_motion_cost_measures_both_estimates_against_the_known_motion(vtest_path):
    result = _script("benchmarks/camera_motion_cost.py", "--video", str(vtest_path), "--frames", "6", "--rounds", "1", "--sizes", "320x240",
                     "--jumps", "40")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| 768x576 |" in result.stdout and "| 320x240 |" in result.stdout
    tables = result.stdout.split("\n\n")
    errors = [line for line in tables[1].splitlines() if line.startswith(("| BoT-SORT", "| edge-reid"))]
    reach = [line for line in next(t for t in tables if "| jump 40 px |" in t).splitlines() if line.startswith(("| BoT-SORT", "| edge-reid"))]
    assert len(errors) == 3 and all(float(line.split("|")[2]) < 3.0 for line in errors), errors
    assert "| jump 40 px |" in result.stdout and [line.split("|")[2].strip() for line in reach] == ["1/1", "1/1", "1/1"], reach
    assert "a cut to the mirrored view" in result.stdout
    assert result.stdout.count("| moving stand-in (640x480) |") == len(errors)  # each estimate timed on the stand-in


@pytest.mark.slow
def test_run_modes_compares_the_loop_with_and_without_camera_motion(vtest_path):
    result = _script("benchmarks/run_modes.py", "--video", str(vtest_path), "--backend", "onnxruntime", "--frames", "3",
                     "--repeats", "1", "--only-default", "--without-camera-motion")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| 1 s | onnxruntime |" in result.stdout and "| 1 s, no camera motion | onnxruntime |" in result.stdout
    assert "ratio to without it" in result.stdout


def test_frames_in_memory_stop_ends_the_iteration(vtest_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from conftest import load_benchmark_script

    run_modes = load_benchmark_script("run_modes")
    frames = run_modes.decode(vtest_path, 3)
    source = run_modes.FramesInMemory(frames)
    assert source.stopped is False, "the loop asks while it waits for a frame"
    seen = []
    for frame in source:
        seen.append(frame.index)
        source.stop()
    assert seen == [0] and source.stopped is True


def test_live_camera_runs_both_modes_on_a_camera_faster_than_the_loop(vtest_path, vtest_gt_dir):
    result = _script("benchmarks/live_camera.py", "--video", str(vtest_path), "--gt", str(vtest_gt_dir), "--speed", "40",
                     "--max-frames", "60", "--backend", "onnxruntime")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in result.stdout.splitlines() if line.startswith("| newest") or line.startswith("| every")}
    newest, every = rows["newest frame (default)"], rows["every frame (--all-frames)"]
    assert every[0] == "60 of 60" and every[1] == "0"  # every frame, in order, late
    processed, read = (int(n) for n in newest[0].split(" of "))
    assert read == 60 and processed + int(newest[1]) == 60 and int(newest[1]) > 0  # a 400 fps camera: frames dropped
    assert all(0.0 <= float(cell) <= 100.0 for cell in newest[4:] + every[4:])
