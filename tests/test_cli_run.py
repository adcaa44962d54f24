import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from conftest import unwrapped

from edge_reid.cli import main
from onnx_builders import fixed_grid_yolox, rank2_model

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_reid", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_run_writes_events_mot_video_and_summary(tmp_path, vtest_path, capsys):
    events, video, summary, mot = tmp_path / "e.jsonl", tmp_path / "o.mp4", tmp_path / "s.json", tmp_path / "m.txt"
    code = main(["run", "--source", str(vtest_path), "--events", str(events), "--output", str(video),
                 "--summary", str(summary), "--mot", str(mot), "--max-frames", "8"])
    assert code == 0
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    records = [r for r in lines if not r.get("past_frame")]
    # Tracks are confirmed on their third hit: nothing is reported live before frame 2 ...
    assert records and {r["frame"] for r in records} == set(range(2, 8))
    # ... and a track's first two hits follow, as past-frame lines, once it is confirmed.
    past = [r for r in lines if r.get("past_frame")]
    assert past and {r["frame"] for r in past} <= {0, 1, 2, 3, 4, 5} and all(r["reported_at"] > r["frame"] for r in past)
    assert {r["state"] for r in past} <= {"tentative", "interpolated"}
    assert {r["track_id"] for r in past} <= {r["track_id"] for r in records}
    first = records[0]
    assert set(first) == {"frame", "timestamp_s", "bbox", "score", "track_id", "identity", "name", "similarity", "new", "state"}
    assert len(first["bbox"]) == 4 and first["bbox"][2] > first["bbox"][0] and first["bbox"][3] > first["bbox"][1]
    assert first["new"] is True and first["state"] == "new" and first["identity"] >= 1 and 0.0 < first["score"] <= 1.0
    assert first["name"] is None and first["track_id"] >= 1
    assert {r["state"] for r in records if r["frame"] == 3} == {"tracked"}
    assert records[-1]["timestamp_s"] == pytest.approx(0.7)
    for frame in range(2, 8):  # identities and tracks unique within a frame
        rows = [r for r in records if r["frame"] == frame]
        assert len({r["identity"] for r in rows}) == len(rows) == len({r["track_id"] for r in rows})
    by_track = {}
    for r in records:
        assert by_track.setdefault(r["track_id"], r["identity"]) == r["identity"], "a track keeps its identity"
    report = json.loads(summary.read_text())
    assert report["frames"] == 8 and report["people"] == len(records) and report["interrupted"] is False
    assert report["identities"] == len({r["identity"] for r in records}) == report["tracks"]
    assert report["detections"] >= report["people"]
    assert 0 < report["embeddings"] < report["detections"] and report["embeddings_per_frame"] == pytest.approx(report["embeddings"] / 8, abs=1e-3)
    assert set(report["stage_ms"]) == {"decode", "detect", "preprocess", "embed", "track", "match"}
    assert report["camera_motion"] is True, "camera motion is compensated by default"
    rows = [line.split(",") for line in mot.read_text().splitlines()]
    identified = [r for r in lines if r["identity"] >= 1]  # MOT rows need an id
    assert len(identified) >= len(records) and [(int(r[0]), int(r[1])) for r in rows] == [(r["frame"] + 1, r["identity"]) for r in identified]
    assert all(r[7:] == ["-1", "-1", "-1"] for r in rows)
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    ok, image = capture.read()
    assert ok and image.shape == (576, 768, 3)
    assert "identities" in capsys.readouterr().err


def test_save_every_without_a_gallery_is_refused(vtest_path, capsys):
    """`--save-every 5` without --gallery ran to the end: nothing saved, nothing said. (`--prune-after`
    without --gallery prunes the gallery kept in memory: tests/test_runner.py.)"""
    assert main(["run", "--source", str(vtest_path), "--save-every", "5"]) == 2
    assert "--save-every: only applies to a gallery: add --gallery" in capsys.readouterr().err


def test_prune_after_without_a_gallery_prunes_the_gallery_kept_in_memory(vtest_path, monkeypatch, tmp_path):
    """A camera run for weeks without --gallery kept one identity for every stranger it ever saw."""
    import edge_reid.runner as runner_module

    from edge_reid.matching.gallery import Gallery

    pruned = []
    real_prune = Gallery.prune
    monkeypatch.setattr(runner_module, "MEMORY_PRUNE_EVERY_S", 0.0)
    monkeypatch.setattr(Gallery, "prune", lambda self, *args, **kwargs: pruned.append(args[0]) or real_prune(self, *args, **kwargs))
    assert main(["run", "--source", str(vtest_path), "--max-frames", "5", "--prune-after", "100", "--mot", str(tmp_path / "m.txt")]) == 0
    assert pruned and set(pruned) == {100.0}


def test_help_shows_the_ranges_that_are_accepted(capsys):
    """--help said [0.0<=x<=1.0] for --det-threshold, which refused 0.05, and [x>=0.0] for --prune-after,
    which refused 5."""
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "[default: 0.6; 0.1<=x<=1.0]" in text and "[x>=0.0]" not in text
    assert main(["run", "--source", "v.avi", "--det-threshold", "0.05"]) == 2


def test_prune_after_below_the_minimum_is_refused(tmp_path, vtest_path, capsys):
    code = main(["run", "--source", str(vtest_path), "--gallery", str(tmp_path / "g.edgereid"), "--prune-after", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--prune-after" in err and "minimum of 10 s" in err
    assert not (tmp_path / "g.edgereid").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--source", "missing_video.mp4"], "source not found: missing_video.mp4"),
        (["--model", "missing_model.onnx"], "model file not found: missing_model.onnx"),
        (["--detector", "missing_det.onnx"], "model file not found: missing_det.onnx"),
    ],
)
def test_missing_inputs_exit_2_with_one_line(extra, message, vtest_path):
    args = ["run", "--source", str(vtest_path), "--max-frames", "1"]
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    result = _cli(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 1


def test_bad_models_exit_2(tmp_path, vtest_path):
    junk = tmp_path / "junk.onnx"
    junk.write_text("hello")
    result = _cli("run", "--source", str(vtest_path), "--model", str(junk), "--max-frames", "1")
    assert result.returncode == 2 and "junk.onnx: not an ONNX model" in result.stderr and "Traceback" not in result.stderr
    result = _cli("run", "--source", str(vtest_path), "--model", str(rank2_model(tmp_path / "flat.onnx")), "--max-frames", "1")
    assert result.returncode == 2 and "flat.onnx" in result.stderr and "rank 2" in result.stderr


def test_unwritable_output_fails_before_any_work(tmp_path, vtest_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    events = tmp_path / "e.jsonl"
    code = main(["run", "--source", str(vtest_path), "--events", str(events), "--output", str(blocker / "o.mp4")])
    assert code == 2
    assert not events.exists(), "no work may start when an output path is unwritable"
    assert main(["run", "--source", str(vtest_path), "--summary", str(tmp_path)]) == 2


def test_usage_errors_exit_2():
    assert main(["run"]) == 2
    assert main(["run", "--source", "a.mp4", "--camera", "0"]) == 2
    assert main(["run", "--source", "a.mp4", "--backend", "cuda"]) == 2
    assert main(["run", "--source", "a.mp4", "--detector-precision", "int8"]) == 2


def test_detector_precision_onnxruntime_cannot_compute_in_is_refused_before_any_frame(tmp_path, vtest_path):
    events = tmp_path / "e.jsonl"
    result = _cli("run", "--source", str(vtest_path), "--backend", "onnxruntime", "--detector-precision", "bf16",
                  "--events", str(events))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "ONNX Runtime runs the detector in fp32 only, not bf16 (--detector-precision" in result.stderr
    assert not events.exists() or events.read_text() == ""


def test_detector_size_reaches_the_detector_and_a_bad_one_is_refused_before_any_work(tmp_path, vtest_path, capsys):
    summary, events = tmp_path / "s.json", tmp_path / "e.jsonl"
    for size in ("100", "16", "abc"):
        assert main(["run", "--source", str(vtest_path), "--detector-size", size, "--events", str(events)]) == 2
        assert not events.exists()
    assert "100 is not a multiple of 32" in capsys.readouterr().err
    code = main(["run", "--source", str(vtest_path), "--detector-size", "640", "--backend", "onnxruntime",
                 "--max-frames", "3", "--summary", str(summary)])
    assert code == 0
    assert "input 480x640" in json.loads(summary.read_text())["backend"]


def test_no_camera_motion_turns_the_compensation_off(tmp_path, vtest_path, capsys):
    summary = tmp_path / "s.json"
    assert main(["run", "--source", str(vtest_path), "--no-camera-motion", "--max-frames", "2", "--summary", str(summary)]) == 0
    assert json.loads(summary.read_text())["camera_motion"] is False
    assert "not compensated" in unwrapped(capsys.readouterr().err)


def test_both_reid_thresholds_reach_the_identities(vtest_path, monkeypatch):
    from edge_reid.identities import TrackIdentities

    chosen = []
    original = TrackIdentities.__init__

    def recording(self, gallery, reid_threshold, unnamed_reid_threshold):
        chosen.append((reid_threshold, unnamed_reid_threshold))
        original(self, gallery, reid_threshold, unnamed_reid_threshold)

    monkeypatch.setattr(TrackIdentities, "__init__", recording)
    assert main(["run", "--source", str(vtest_path), "--max-frames", "1", "--reid-threshold", "0.7",
                 "--unnamed-reid-threshold", "0.95"]) == 0
    assert chosen and set(chosen) == {(0.7, 0.95)}


def test_a_detector_that_cannot_run_at_the_size_asked_is_one_line_naming_the_option(tmp_path, vtest_path, yolox_path):
    model = fixed_grid_yolox(yolox_path, tmp_path / "yolox_fixed.onnx")
    mot = tmp_path / "m.txt"
    result = _cli("run", "--source", str(vtest_path), "--detector", str(model), "--backend", "onnxruntime",
                  "--detector-size", "640", "--mot", str(mot))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and not mot.exists()
    assert len(lines) == 1, f"one line, not ONNX Runtime's own log too: {lines}"
    assert lines[0].startswith("edge-reid: error:") and "could not be run at input 640x640" in lines[0]
    assert "leave out --detector-size" in lines[0]


def test_help_teaches():
    result = _cli("run", "--help")
    assert result.returncode == 0
    for text in ("--camera", "--events", "--mot", "--output", "--summary", "--max-frames", "--no-camera-motion", "--detector-precision", "--detector-size", "Ctrl-C"):
        assert text in result.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_signal_flushes_outputs_and_exits_0(tmp_path, vtest_path, sig):
    events, video, summary = tmp_path / "e.jsonl", tmp_path / "o.mp4", tmp_path / "s.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--events", str(events),
         "--output", str(video), "--summary", str(summary)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (events.exists() and events.stat().st_size > 0):
        time.sleep(0.2)
    time.sleep(1.0)  # the events file is buffered: it has only a part of what was produced
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    report = json.loads(summary.read_text())
    assert report["interrupted"] is True and 0 < report["frames"] < 795
    records = [json.loads(line) for line in events.read_text().splitlines()]
    live = [r for r in records if not r.get("past_frame")]  # past-frame lines are earlier frames' boxes
    assert len(live) == report["people"] and max(r["frame"] for r in records) <= report["frames"] - 1
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == report["frames"], "video finalised with every frame"
    assert "interrupted" in stderr


def test_run_called_from_another_thread_runs(tmp_path, vtest_path):
    """main(argv) from a thread other than the main one ("for tests and embedding") ended `run` with an
    internal error: it set signal handlers, which only the main thread may."""
    import threading

    codes = []
    worker = threading.Thread(target=lambda: codes.append(
        main(["run", "--source", str(vtest_path), "--max-frames", "3", "--mot", str(tmp_path / "m.txt")])))
    worker.start()
    worker.join(timeout=300)
    assert codes == [0] and (tmp_path / "m.txt").is_file()


def test_detector_size_hint_only_below_half_scale():
    from edge_reid.cli.run_command import detector_size_hint

    hint = detector_size_hint(416 / 1920, 1080, 1920)
    assert "these 1920x1080 frames at 0.22x" in hint and "--detector-size 960 shows them at 0.50x" in hint
    assert "about 4.9x the detector's work (its input 960x544 instead of 416x256" in hint, "the inputs' areas"
    assert detector_size_hint(416 / 768, 576, 768) == "", "vtest as recorded: seen at 0.54x"
    assert "--detector-size 2048" in detector_size_hint(416 / 7680, 4320, 7680), "capped at the largest size accepted"


def test_run_hints_at_detector_size_for_large_frames_unless_one_is_given(tmp_path, vtest_frames):
    video = tmp_path / "large.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (1920, 1440))
    for frame in vtest_frames[:3]:
        writer.write(cv2.resize(frame, (1920, 1440)))
    writer.release()
    plain = _cli("run", "--source", str(video), "--backend", "onnxruntime", "--max-frames", "2")
    assert plain.returncode == 0
    assert "--detector-size 960 shows them at 0.50x" in " ".join(plain.stderr.split()), plain.stderr
    chosen = _cli("run", "--source", str(video), "--backend", "onnxruntime", "--max-frames", "2", "--detector-size", "416")
    assert chosen.returncode == 0 and "hint:" not in chosen.stderr and "--detector-size 960" not in chosen.stderr
