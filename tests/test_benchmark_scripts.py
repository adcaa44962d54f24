"""Benchmark scripts that the docs tell users to run: each runs, shortened, to its table.

No speed figures are checked here (they live in docs/benchmarks.md): only that the documented
commands still run against today's library (each of these once broke when the library changed
under it: a new keyword of ``Pipeline.process``, the gallery refusing queries that are not unit
length, ``FrameSource.stopped``), that every script's ``--help`` is its docstring, and that a
missing OpenVINO, video or data folder ends a script with one line, not a traceback."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(path.name for path in (REPO / "benchmarks").glob("*.py") if path.name != "_common.py")
OPENVINO_SKIPPED = "openvino: skipped (not installed: pip install openvino)"


def _script(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def without_openvino(tmp_path) -> dict:
    """The environment of a script run where ``import openvino`` fails (a stand-in package first on
    the path), as on a machine without it."""
    stub = tmp_path / "no-openvino" / "openvino"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise ModuleNotFoundError("No module named \'openvino\' (test stand-in)", name="openvino")\n')
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(stub.parent), str(REPO)])}


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_answers_help_with_its_docstring(name):
    doc = ast.get_docstring(ast.parse((REPO / "benchmarks" / name).read_text()))
    assert doc, f"{name} has no module docstring"
    lines = [line.strip() for line in doc.strip().splitlines() if line.strip()]
    result = _script(f"benchmarks/{name}", "--help", env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert lines[0] in result.stdout, result.stdout[:1000]  # the first line, as it is (not re-wrapped)
    assert lines[-1] in result.stdout, result.stdout[-1000:]  # and the rest, down to its last line


def test_docs_index_lists_every_script():
    """docs/benchmarks.md's "The scripts in `benchmarks/`" has a row for each script, saying where its results are."""
    text = (REPO / "docs" / "benchmarks.md").read_text()
    start = text.index("| script | what it measures | results |")
    rows = {row.split("|")[1].strip().strip("`") for row in text[start : text.index("\n\n", start)].splitlines()[2:]}
    assert rows == set(SCRIPTS)


def test_no_script_builds_its_own_path_to_the_shared_assets():
    """Every script finds ``shared/`` through ``_common.shared_dir()`` ($EDGE_REID_SHARED first)."""
    own = [name for name in SCRIPTS if re.search(r"""/\s*["']shared["']""", (REPO / "benchmarks" / name).read_text())]
    assert own == []


def test_a_data_folder_default_follows_edge_reid_shared(tmp_path):
    env = {**os.environ, "EDGE_REID_SHARED": str(tmp_path)}
    line = _one_line_error(_script("benchmarks/reid_resolution.py", "--heights", "64", env=env))
    assert str(tmp_path / "data" / "mot17-reid-mini") in line


def test_openvino_only_script_without_openvino_is_one_line(without_openvino):
    result = _script("benchmarks/openvino_shapes.py", env=without_openvino)
    line = _one_line_error(result)
    assert line.startswith("openvino_shapes.py: ") and "pip install openvino" in line
    assert result.stdout == ""


def test_backend_comparison_without_openvino_keeps_onnxruntime_rows(vtest_path, without_openvino):
    result = _script("benchmarks/detector_input_layout.py", "--video", str(vtest_path), "--threads", "1", "--runs", "1", "--repeats", "1",
                     env=without_openvino)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert OPENVINO_SKIPPED in result.stdout.splitlines()
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and not line.startswith("| backend")]
    assert [row.split("|")[1].strip() for row in rows] == ["onnxruntime"], result.stdout


def test_int8_openvino_without_openvino_stops_before_any_work(tmp_path, without_openvino):
    line = _one_line_error(_script("benchmarks/int8_openvino.py", "--int8", str(tmp_path / "m-int8-qdq.onnx"),
                                   "--video", str(tmp_path / "no.avi"), env=without_openvino))
    assert line.startswith("int8_openvino.py: ") and "pip install openvino" in line


def test_int8_openvino_refuses_a_batch_larger_than_the_crops_before_any_work(tmp_path):
    result = _script("benchmarks/int8_openvino.py", "--int8", str(tmp_path / "m-int8-qdq.onnx"), "--max-crops", "16", "--batch", "1,32")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "--batch 32 is larger than --max-crops 16" in result.stderr


def test_live_camera_names_a_missing_video_before_the_camera_starts(tmp_path):
    missing = tmp_path / "no-such-video.avi"
    line = _one_line_error(_script("benchmarks/live_camera.py", "--video", str(missing), "--backend", "onnxruntime"))
    assert line == f"live_camera.py: video not found: {missing}"


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
