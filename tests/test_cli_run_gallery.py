"""`edge-reid run --gallery`: identities survive across runs; the gallery is saved on Ctrl-C and periodically."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edge_reid.cli import main
from edge_reid.matching import Gallery

REPO = Path(__file__).resolve().parents[1]


def _events(path: Path) -> list[dict]:
    """The live lines (past-frame lines repeat earlier frames' boxes)."""
    return [record for line in path.read_text().splitlines() if not (record := json.loads(line)).get("past_frame")]


def test_second_run_of_the_same_video_reuses_the_first_runs_identities(tmp_path, vtest_path):
    g = tmp_path / "g.edgereid"
    runs = []
    for n in (1, 2):
        events = tmp_path / f"e{n}.jsonl"
        assert main(["run", "--source", str(vtest_path), "--max-frames", "12", "--gallery", str(g),
                     "--events", str(events)]) == 0
        runs.append(_events(events))
    first, second = runs
    assert len(first) == len(second) > 20
    ids_first = {r["identity"] for r in first}
    assert sum(r["new"] for r in first) == len(ids_first)
    assert not any(r["new"] for r in second), "second run created identities for people it already knew"
    assert [r["identity"] for r in second] == [r["identity"] for r in first]  # same detections, same ids
    assert all(r["similarity"] >= 0.6 for r in second)
    gallery = Gallery.load(g)
    assert {i.identity_id for i in gallery.identities} == ids_first
    assert all(i.count >= 2 for i in gallery.identities)


def test_gallery_of_another_model_is_refused_before_running(tmp_path, vtest_path):
    g = tmp_path / "g.edgereid"
    other = Gallery(512, model_id="f" * 64, model_name="someone_elses.onnx")
    other.add(np.ones(512, np.float32))
    other.save(g)
    before = g.read_bytes()
    result = subprocess.run([sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--max-frames", "2",
                             "--gallery", str(g)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "someone_elses.onnx" in result.stderr and "Traceback" not in result.stderr
    assert g.read_bytes() == before


def test_ctrl_c_saves_the_gallery(tmp_path, vtest_path):
    g, events = tmp_path / "g.edgereid", tmp_path / "e.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--gallery", str(g),
         "--events", str(events), "--save-every", "1000"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (events.exists() and events.stat().st_size > 0):
        time.sleep(0.2)
    time.sleep(1.0)
    assert not g.exists(), "saved before the end although --save-every is long"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    gallery = Gallery.load(g)
    assert len(gallery) == len({r["identity"] for r in _events(events)}) > 0


def test_periodic_saves_during_the_run(tmp_path, vtest_path):
    g, events = tmp_path / "g.edgereid", tmp_path / "e.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--gallery", str(g),
         "--events", str(events), "--save-every", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not g.exists():
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.1)
        assert g.exists(), "no periodic save within 120 s"
        assert len(Gallery.load(g)) > 0  # loadable while the run goes on
    finally:
        process.kill()  # SIGKILL: the file saved last stays valid
        process.communicate(timeout=60)
    assert len(Gallery.load(g)) > 0
