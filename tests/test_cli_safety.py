"""Bad input and interruptions through the CLI: truncated videos, renamed and unknown models,
galleries of older versions, Ctrl-C during start-up, --version."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import edge_reid
from conftest import unwrapped
from edge_reid.cli import main
from edge_reid.matching import Gallery
from edge_reid.spec import legacy_model_ids, load_spec

REPO = Path(__file__).resolve().parents[1]


def test_version(capsys):
    assert main(["--version"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == f"edge-reid {edge_reid.__version__}"
    try:
        installed = importlib.metadata.version("edge-reid")
    except importlib.metadata.PackageNotFoundError:  # tests run from a source checkout (pyproject's pythonpath)
        return
    assert installed == edge_reid.__version__, "the installed package's version is the one __version__ gives"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--bogus"], "No such option: --bogus (see: edge-reid run --help)"),
        (["run", "--source", "x.avi", "--threshold", "5"], "Invalid value for '--threshold'"),
        (["eval-mot"], "Missing argument 'RESULT_FILE'"),
        (["run", "--source", "x.avi", "--backend", "onnxruntime", "--device", "GPU"], "Invalid value for --device: chooses an OpenVINO device"),
        (["run", "--source", "x.avi", "--device", "FOO"], "Invalid value for --device: FOO is an OpenVINO device: give --backend openvino"),
        (["run", "--camera", "0", "--fps", "30"], "Invalid value for --fps: sets the frame rate of an image folder or a video file"),
    ],
)
def test_a_usage_error_is_one_line_with_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge-reid: error: ") and message in lines[0], captured.err
    assert captured.out == ""


def test_a_missing_camera_is_one_line_without_opencv_logs():
    """OpenCV logs a dozen lines of its own for a camera index that does not exist; the CLI silences
    them (set before cv2 loads, so in a fresh process) and says it once."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    result = subprocess.run([sys.executable, "-m", "edge_reid", "run", "--camera", "9"], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env=environment)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["edge-reid: error: cannot open camera 9: is it connected, and readable "
                                                    "by this user (group 'video')?"], result.stderr


def test_display_without_a_screen_is_refused_before_outputs_are_touched(tmp_path, vtest_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    events = tmp_path / "events.jsonl"
    events.write_text("an earlier run's events\n")
    assert main(["run", "--source", str(vtest_path), "--events", str(events), "--display"]) == 2
    assert "a display window (--display, DisplaySink) needs a screen" in capsys.readouterr().err
    assert events.read_text() == "an earlier run's events\n"


def _unreachable_display() -> str:
    number = next(n for n in range(97, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    return f":{number}"


@pytest.mark.skipif(os.name == "nt", reason="X11 DISPLAY numbers are a Linux/macOS notion")
def test_display_on_a_screen_that_cannot_be_reached_is_one_error_line_not_an_abort(tmp_path, vtest_path):
    """OpenCV's Qt build aborts the process (SIGABRT) when DISPLAY names a screen it cannot reach;
    the run refuses first, in one line, and leaves an earlier output as it was (a fresh process:
    on the code before, the abort would take pytest with it)."""
    events = tmp_path / "events.jsonl"
    events.write_text("an earlier run's events\n")
    environment = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"} | {"DISPLAY": _unreachable_display()}
    result = subprocess.run(
        [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--events", str(events), "--display",
         "--max-frames", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=180, env=environment,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge-reid: error: --display"), result.stderr
    assert "check DISPLAY or use --output" in lines[0] or "no GUI support" in lines[0]
    assert events.read_text() == "an earlier run's events\n"


@pytest.mark.parametrize(
    "probe, message",
    [
        ("import sys; sys.exit(3)", "this OpenCV has no GUI support (opencv-python-headless)"),
        ("import sys; sys.stderr.write('\\nqt.qpa.xcb: could not connect to display :5\\nmore\\n'); sys.exit(134)",
         "cannot open a window on screen ':5' (qt.qpa.xcb: could not connect to display :5)"),
        ("import os; os.abort()", "cannot open a window on screen ':5' (the probe exited with status -6)"),
    ],
)
def test_display_probe_outcomes_become_errors_that_name_the_cause(monkeypatch, probe, message):
    """The mapping from the child probe's exit to the error (the probe's script replaced; the real
    probe on an unreachable screen is the test above)."""
    from edge_reid import sinks
    from edge_reid.errors import OutputPathError

    monkeypatch.setenv("DISPLAY", ":5")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sinks, "_WINDOW_PROBE", probe)
    with pytest.raises(OutputPathError, match=re.escape(message)):
        sinks.DisplaySink.check_screen()
    monkeypatch.setattr(sinks, "_WINDOW_PROBE", "pass")
    sinks.DisplaySink.check_screen()


def test_the_display_probe_runs_once_for_the_early_check_and_the_window(monkeypatch):
    """`run --display` checks the screen before work and again when the window is made: one child process."""
    from edge_reid import sinks

    started = []
    real_run = subprocess.run
    monkeypatch.setattr(sinks.subprocess, "run", lambda *a, **k: started.append(a) or real_run(*a, **k))
    monkeypatch.setenv("DISPLAY", ":6")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sinks, "_WINDOW_PROBE", "import sys; sys.exit(3)  # once")
    for _ in range(2):
        with pytest.raises(sinks.OutputPathError, match="no GUI support"):
            sinks.DisplaySink.check_screen()
    assert len(started) == 1


def test_standard_output_closed_is_refused_before_work(vtest_path):
    result = subprocess.run(
        [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--events", "-", "--max-frames", "3"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120,
        preexec_fn=lambda: os.close(1),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["edge-reid: error: --events -: standard output is closed; give a file name"]


def test_no_command_shows_the_help(capsys):
    assert main([]) == 2
    assert "Commands" in capsys.readouterr().out


def test_truncated_video_run_says_where_the_file_ended(tmp_path, vtest_frames, capsys):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (768, 576))
    for frame in vtest_frames[:8]:
        writer.write(frame)
    writer.release()
    half = tmp_path / "half.avi"
    half.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert main(["run", "--source", str(half), "--summary", str(tmp_path / "s.json")]) == 0
    # `run` ignores Ctrl-C once it is stopping (a second one cannot cut the summary short); called
    # from Python, main gives the caller its own handlers back.
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    report = json.loads((tmp_path / "s.json").read_text())
    assert 0 < report["frames"] < 8 and report["frames"] <= report["ended_at_frame"] < 8
    assert report["declared_frames"] == 8 and report["end_reason"] == "truncated" and report["corrupt_limit"] == 50
    assert report["end_message"] == f"ended at frame {report['ended_at_frame']} of 8: file truncated?"
    err = unwrapped(capsys.readouterr().err)
    assert f"source end {report['end_message']}" in err, "the printed summary says it too"


@pytest.fixture(scope="module")
def crops(mot17_dir) -> list[str]:
    paths = sorted((mot17_dir / "bounding_box_test").glob("0055_*.jpg"))[:2]
    assert len(paths) == 2
    return [str(p) for p in paths]


def test_a_renamed_copy_of_the_model_keeps_its_gallery_and_warns_once(tmp_path, osnet_path, crops, capsys):
    gallery = tmp_path / "g.edgereid"
    assert main(["gallery", "enroll", "-g", str(gallery), "-n", "Alice", "--model", str(osnet_path), crops[0]]) == 0
    assert "warning" not in capsys.readouterr().err
    copy = tmp_path / "reid_v2.onnx"
    shutil.copyfile(osnet_path, copy)
    assert main(["gallery", "enroll", "-g", str(gallery), "-n", "Alice", "--model", str(copy), crops[1]]) == 0
    err = capsys.readouterr().err
    assert err.count("edge-reid: warning: reid_v2.onnx: the file name matches no built-in model spec") == 1
    assert "assuming OSNet's preprocessing" in err and "reid_v2.json" in err
    loaded = Gallery.load(gallery)
    assert [(i.name, loaded.embedding_counts(i.identity_id)) for i in loaded.identities] == [("Alice", (2, 0))]


def test_a_gallery_saved_under_the_old_model_id_is_kept(tmp_path, osnet_path, crops, capsys):
    """Galleries saved before the identity stopped hashing the spec's name are recognised, then re-tagged."""
    from edge_reid.embedder import Embedder

    spec = load_spec(osnet_path)
    old = Gallery(512, model_id=legacy_model_ids(osnet_path, spec)[0], model_name=osnet_path.name)
    old.add(np.eye(512, dtype=np.float32)[0])
    path = tmp_path / "old.edgereid"
    old.save(path)
    assert main(["gallery", "enroll", "-g", str(path), "-n", "Bob", "--model", str(osnet_path), crops[0]]) == 0
    loaded = Gallery.load(path)
    assert len(loaded) == 2 and loaded.model_id == Embedder(osnet_path).model_id
    other = Gallery(512, model_id="e" * 64, model_name="other.onnx")
    other.add(np.eye(512, dtype=np.float32)[0])
    other.save(path)
    capsys.readouterr()
    assert main(["gallery", "enroll", "-g", str(path), "-n", "Bob", "--model", str(osnet_path), crops[0]]) == 2
    assert "was made with other.onnx" in capsys.readouterr().err


@pytest.mark.parametrize("stage", ["edge_reid.embedder.Embedder", "edge_reid.detector.PersonDetector", "edge_reid.sources.open_source"])
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(stage, vtest_path, monkeypatch, capsys):
    module, name = stage.rsplit(".", 1)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(f"{module}.{name}", interrupted)
    assert main(["run", "--source", str(vtest_path), "--max-frames", "2"]) == 130
    err = capsys.readouterr().err
    assert err.strip().endswith("edge-reid: interrupted") and "Traceback" not in err


def test_sigint_in_a_starting_process_exits_quietly(vtest_path):
    """A real SIGINT while `run` loads its models: the child says "ready" from inside the ReID model's
    loading, then the signal is sent."""
    script = f"""
import signal, sys
# As at a terminal: a process started in the background by a non-interactive shell (as CI may run
# the tests) inherits SIGINT ignored; Ctrl-C at a terminal raises KeyboardInterrupt.
signal.signal(signal.SIGINT, signal.default_int_handler)
import edge_reid.embedder
load = edge_reid.embedder.Embedder.__init__
def announced(self, *args, **kwargs):
    print("ready", flush=True)
    load(self, *args, **kwargs)
edge_reid.embedder.Embedder.__init__ = announced
from edge_reid.cli import main
sys.exit(main(["run", "--source", {str(vtest_path)!r}, "--max-frames", "3"]))
"""
    process = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert "Traceback" not in err, err
    # The signal lands while the models load (130); were this process held up long enough for the run
    # to start first, the run stops cleanly with its summary (0). Either way: no traceback.
    assert process.returncode == 130 and err.strip().endswith("edge-reid: interrupted") or (
        process.returncode == 0 and "interrupted" in err
    ), (process.returncode, err)


_INTERRUPT_ON_IMPORT = """
import sys

class InterruptOnImport:
    '''Ctrl-C landing while {module} is being imported.'''
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, InterruptOnImport())
from edge_reid.entry_point import main   # what the edge-reid console script does
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize("module", ["edge_reid.cli.build_command", "numpy"])
def test_ctrl_c_while_the_commands_load_exits_quietly(module, vtest_path):
    """A Ctrl-C in the first second of `edge-reid run` (while the console script imported edge_reid.cli and
    its commands) printed Python's KeyboardInterrupt traceback: the script's target was edge_reid.cli:main."""
    assert 'edge-reid = "edge_reid.entry_point:main"' in (REPO / "pyproject.toml").read_text()
    argv = ["run", "--source", str(vtest_path), "--max-frames", "2"]
    result = subprocess.run([sys.executable, "-c", _INTERRUPT_ON_IMPORT.format(module=module, argv=argv)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 130, f"exit {result.returncode}: was {module} imported at all?\n{result.stderr}"
    assert "Traceback" not in result.stderr and result.stderr.strip() == "edge-reid: interrupted", result.stderr


@pytest.mark.parametrize(
    "module, backend",
    [("onnxruntime", "onnxruntime"), ("openvino", "openvino"), ("cv2", "onnxruntime"), ("numba", "onnxruntime"), ("scipy", "onnxruntime")],
)
def test_ctrl_c_while_a_heavy_library_is_imported_exits_quietly(module, backend, vtest_path):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed here")
    loaded_early = subprocess.run(
        [sys.executable, "-c", f"import sys, edge_reid.cli; print({module!r} in sys.modules)"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    ).stdout.strip()
    if loaded_early == "True":
        pytest.skip(f"importing edge_reid.cli imports {module}, before main() can catch Ctrl-C (needs lazy imports)")
    argv = ["run", "--source", str(vtest_path), "--max-frames", "2", "--backend", backend]
    result = subprocess.run([sys.executable, "-c", _INTERRUPT_ON_IMPORT.format(module=module, argv=argv)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 130, f"exit {result.returncode}: was {module} imported at all?\n{result.stderr}"
    assert "Traceback" not in result.stderr and result.stderr.strip().endswith("edge-reid: interrupted"), result.stderr


def test_image_folder_run_names_the_images_it_skipped(tmp_path, vtest_frames, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(2):
        cv2.imwrite(str(folder / f"{index:03d}.jpg"), vtest_frames[index])
    data = (folder / "000.jpg").read_bytes()
    (folder / "002.jpg").write_bytes(data[: len(data) // 2])
    (folder / "003.jpg").write_bytes(b"")
    summary = tmp_path / "s.json"
    assert main(["run", "--source", str(folder), "--summary", str(summary)]) == 0
    err = unwrapped(capsys.readouterr().err)
    assert "skipped images 2 files: 002.jpg (truncated JPEG (no end-of-image marker)), 003.jpg (empty file)" in err
    report = json.loads(summary.read_text())
    assert report["frames"] == 2 and report["corrupt_frames"] == 2 and report["declared_frames"] == 4
    assert report["skipped_files"] == [
        {"file": "002.jpg", "reason": "truncated JPEG (no end-of-image marker)"}, {"file": "003.jpg", "reason": "empty file"}
    ]
    assert report["corrupt_limit"] is None, "the corrupt-frame limit is a video file's"


def test_a_bug_prints_one_line_and_saves_its_traceback(monkeypatch, tmp_path, capsys):
    """An unexpected exception (not bad input) exits 1 with one line naming it and the file that holds
    the traceback, which is written there in full; no traceback on the terminal."""
    import tempfile

    import edge_reid.calibration.calibrate as calibrate

    def broken(*args, **kwargs):
        raise IndexError("list index out of range")

    monkeypatch.setattr(calibrate, "calibrate_model", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = tmp_path / "crops"
    (data / "bounding_box_train").mkdir(parents=True)
    assert main(["calibrate", "--data", str(data), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("edge-reid: ")]
    assert "Traceback" not in err and "File " not in err and len(lines) == 1
    assert lines[0].startswith("edge-reid: internal error: IndexError: list index out of range (the traceback is in ")
    saved = list(tmp_path.glob("edge-reid-error-*.txt"))
    assert len(saved) == 1 and str(saved[0]) in lines[0]
    text = saved[0].read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text and "IndexError: list index out of range" in text


@pytest.mark.parametrize("arguments, named", [
    (["gallery", "enroll", "-g", "{g}", "-n", "Alice", ""], "argument 7"),
    (["run", "--source", "{video}", "--max-frames", "2", "--model", ""], "the value of --model"),
    (["run", "--source", "{video}", "--max-frames", "2", "--gallery="], "--gallery"),
    (["run", "--source", "", "--max-frames", "2"], "the value of --source"),
    (["run", "--source", "{video}", "--device", " "], "the value of --device"),
])
def test_an_empty_argument_is_refused_not_taken_for_the_current_folder(arguments, named, tmp_path, vtest_path, capsys):
    """An unset shell variable gives "": as a path it was the current folder (``enroll -n Alice "$DIR"`` enrolled
    every image there under Alice), elsewhere an internal error or a silent default."""
    g = tmp_path / "g.edgereid"
    filled = [a.format(g=g, video=vtest_path) for a in arguments]
    assert main(filled) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"edge-reid: error: {named} is empty; give a value" in err
    assert not g.exists()


def test_an_empty_name_still_clears_a_name(tmp_path, capsys):
    gallery = Gallery(4)
    gallery.enroll("Ann", np.eye(4, dtype=np.float32)[:1])
    g = tmp_path / "g.edgereid"
    gallery.save(g)
    assert main(["gallery", "rename", "-g", str(g), "--id", "1", "--name", ""]) == 0
    assert Gallery.load(g).get(1).name is None


@pytest.mark.parametrize("arguments, option", [
    (["run", "--source", "{video}", "--fps", "inf"], "--fps"),
    (["run", "--source", "{video}", "--min-box-height", "inf"], "--min-box-height"),
    (["run", "--source", "{video}", "--gallery", "{g}", "--prune-after", "nan"], "--prune-after"),
    (["run", "--source", "{video}", "--batch", "1000000000"], "--batch"),
    (["run", "--source", "{video}", "--threads", "99999999999999999999"], "--threads"),
    (["eval", "--data", "{video}", "--batch", "1000000000"], "--batch"),
    (["bench", "--seconds", "inf"], "--seconds"),
    (["bench", "--warmup", "inf"], "--warmup"),
    (["bench", "--batch", "1,100000"], "--batch"),
    (["bench", "--gallery-size", "100000000"], "--gallery-size"),
    (["calibrate", "--data", "{video}", "--seed", "-1"], "--seed"),
    (["gallery", "threshold", "--data", "{video}", "--bins", "1000000000"], "--bins"),
])
def test_values_no_run_can_use_are_usage_errors_before_any_work(arguments, option, tmp_path, vtest_path, capsys):
    """inf and NaN passed the range checks (an internal error after the models loaded, or a benchmark that never
    ended), and sizes without an upper bound asked for terabytes (MemoryError) or got the process killed."""
    g = tmp_path / "g.edgereid"
    assert main([a.format(g=g, video=vtest_path) for a in arguments]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Invalid value for" in err and option in err and "internal error" not in err
    assert not g.exists()
