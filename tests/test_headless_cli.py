"""The CLI without an interactive terminal, or with an unusual one: a service's journal or a log file, an
ASCII locale, a narrow terminal, a closed terminal (SIGHUP), a reader of standard output that goes away."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from edge_reid.cli import main

REPO = Path(__file__).resolve().parents[1]
#: An ASCII locale as `LC_ALL=C` gives it when Python's UTF-8 mode is off.
ASCII_LOCALE = {"LANG": "C", "LC_ALL": "C", "PYTHONUTF8": "0"}


def _sighup_as_a_terminal_leaves_it() -> None:
    """In a child: SIGHUP's default action, as a shell in a terminal starts a command with (the suite itself may run
    under `nohup`, whose ignored SIGHUP children inherit and edge-reid rightly leaves alone)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _cli(args: list, env: dict | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_reid", *args], cwd=REPO, capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, **kwargs)


def test_sighup_stops_a_run_and_writes_every_output(tmp_path, vtest_path):
    """SIGHUP (the terminal or SSH session closed) ended `run` where it stood: exit 129, an mp4 without its
    index (unplayable), no summary, the gallery unsaved. Now it stops the run as SIGTERM does."""
    events, video, summary, gallery = tmp_path / "e.jsonl", tmp_path / "o.mp4", tmp_path / "s.json", tmp_path / "g.edgereid"
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--events", str(events),
         "--output", str(video), "--summary", str(summary), "--gallery", str(gallery)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sighup_as_a_terminal_leaves_it,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (events.exists() and events.stat().st_size > 0):
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGHUP)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    report = json.loads(summary.read_text())
    assert report["interrupted"] is True and 0 < report["frames"] < 795
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) == report["frames"], "video finalised"
    assert gallery.is_file() and report["identities"] > 0


def test_sighup_in_another_command_ends_it_with_129():
    """Commands other than `run` unwind on SIGHUP as on SIGTERM (scratch files removed): exit 129 and one line,
    where the signal killed them where they stood."""
    script = """
import os, signal, sys, time
signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as from a terminal (the suite may run under nohup)
import edge_reid.doctor as doctor
def hung_up(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGHUP)
    time.sleep(5)
    print("still running", file=sys.stderr)
doctor.collect_report = hung_up
from edge_reid.entry_point import main
sys.exit(main(["doctor"]))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 129, (result.returncode, result.stderr)
    assert result.stderr.strip().splitlines()[-1] == "edge-reid: hung up (SIGHUP)"
    assert "Traceback" not in result.stderr


def test_sighup_is_left_ignored_under_nohup():
    """`nohup edge-reid ...` ignores SIGHUP so that the command outlives its terminal: main must not put its own
    handler in place of that SIG_IGN (the command would end with 129 when the SSH session closed)."""
    script = """
import os, signal, sys
signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup leaves it
import edge_reid.doctor as doctor
collect = doctor.collect_report
def hung_up(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGHUP)
    print("still running", file=sys.stderr)
    return collect(*args, **kwargs)
doctor.collect_report = hung_up
from edge_reid.entry_point import main
sys.exit(main(["doctor"]))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "still running" in result.stderr and "hung up" not in result.stderr, result.stderr
    assert result.returncode != 129


def test_sighup_handlers_are_given_back_to_a_caller(monkeypatch):
    """main(argv) called from Python leaves the caller's SIGHUP handler as it found it."""
    before = signal.getsignal(signal.SIGHUP)
    assert main(["--version"]) == 0
    assert signal.getsignal(signal.SIGHUP) is before


def test_environment_is_given_back_to_a_caller(monkeypatch):
    """main(argv) left OMP_WAIT_POLICY, OPENCV_LOG_LEVEL and OPENCV_FFMPEG_LOGLEVEL set in the caller's os.environ,
    silencing OpenCV for the rest of the host process and its children. They hold the program's values while the
    command runs (a user's own value winning) and are put back as they were, absent ones removed."""
    import edge_reid.cli

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL", raising=False)
    monkeypatch.setenv("OPENCV_LOG_LEVEL", "INFO")
    before = dict(os.environ)
    seen = {}
    app = edge_reid.cli.app

    def recording_app(*args, **kwargs):
        seen.update({name: os.environ.get(name) for name in ("OMP_WAIT_POLICY", "OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL")})
        return app(*args, **kwargs)

    monkeypatch.setattr(edge_reid.cli, "app", recording_app)
    assert main(["--version"]) == 0
    assert seen == {"OMP_WAIT_POLICY": "PASSIVE", "OPENCV_LOG_LEVEL": "INFO", "OPENCV_FFMPEG_LOGLEVEL": "-8"}
    assert dict(os.environ) == before
    assert main(["run", "--source", str(REPO / "no-such-video.avi")]) == 2  # a refused command gives them back too
    assert dict(os.environ) == before


def test_standard_streams_are_given_back_to_a_caller_in_an_ascii_locale():
    """In an ASCII locale main(argv) makes standard output and error escape what they cannot encode while the command
    runs; the caller's streams get their own error handling back (a host that wants UnicodeEncodeError keeps it)."""
    script = """
import sys
from edge_reid.cli import main
before = (sys.stdout.errors, sys.stderr.errors)
assert main(["--version"]) == 0
print("ERRORS", before == (sys.stdout.errors, sys.stderr.errors), sys.stdout.errors, sys.stderr.errors)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, **ASCII_LOCALE})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("ERRORS True"), result.stdout


@pytest.fixture(scope="module")
def named_gallery(tmp_path_factory, shared_dir) -> Path:
    """A gallery holding one identity, enrolled from two crops."""
    crops = sorted((shared_dir / "data" / "mot17-reid-mini" / "query").glob("*.jpg"))[:2]
    if len(crops) < 2:
        pytest.skip("mot17-reid-mini crops missing")
    gallery = tmp_path_factory.mktemp("gallery") / "people.edgereid"
    result = _cli(["gallery", "enroll", "-g", str(gallery), "-n", "Somebody", *map(str, crops)])
    assert result.returncode == 0, result.stderr
    return gallery


def _stored_name(gallery: Path) -> str:
    exported = _cli(["gallery", "export", "-g", str(gallery)])
    assert exported.returncode == 0, exported.stderr
    return json.loads(exported.stdout)["identities"][0]["name"]


def test_gallery_list_in_an_ascii_locale_escapes_a_name_it_cannot_show(named_gallery):
    """`gallery list` in LC_ALL=C with PYTHONUTF8=0 (a cron job, a service without LANG and UTF-8 mode off) ended
    in an internal error (UnicodeEncodeError) on any name outside ASCII."""
    renamed = _cli(["gallery", "rename", "-g", str(named_gallery), "--id", "1", "-n", "José"], env={"PYTHONUTF8": "1"})
    assert renamed.returncode == 0, renamed.stderr
    listed = _cli(["gallery", "list", "-g", str(named_gallery)], env=ASCII_LOCALE)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[2].split(b"\t")[:2] == [b"1", b"Jos\\xe9"], "an escape, not a crash"


def test_a_name_typed_in_an_ascii_locale_is_stored_as_typed(named_gallery):
    """In LC_ALL=C with PYTHONUTF8=0, `gallery rename -n José` stored "Jos\\udcc3\\udca9" (the bytes Python could
    not decode): exported as that, and never matched by a `--name José` typed in a UTF-8 terminal."""
    renamed = _cli(["gallery", "rename", "-g", str(named_gallery), "--id", "1", "-n", "René".encode()], env=ASCII_LOCALE)
    assert renamed.returncode == 0, renamed.stderr
    assert _stored_name(named_gallery) == "René"
    not_utf8 = _cli(["gallery", "rename", "-g", str(named_gallery), "--id", "1", "-n", b"Ren\xe9"], env=ASCII_LOCALE)
    assert not_utf8.returncode == 2 and b"is not UTF-8 text" in not_utf8.stderr, not_utf8.stderr
    assert _stored_name(named_gallery) == "René", "nothing stored"


@pytest.mark.parametrize("args", [["--help"], ["gallery", "--help"]])
def test_a_reader_of_standard_output_that_goes_away_ends_the_command_quietly_with_exit_3(args):
    """`edge-reid --help | true`: Click's handler ended it with exit 1, which the README calls a bug."""
    process = subprocess.Popen([sys.executable, "-m", "edge_reid", *args], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the command writes
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 3
    assert stderr == b"", "quiet: no traceback, no 'Exception ignored'"


def test_force_color_does_not_flood_a_log_with_progress_redraws(tmp_path, vtest_path):
    """FORCE_COLOR (colour in CI and container logs) made Rich take the log for a terminal: the progress bar
    was redrawn about ten times a second into it (carriage returns and cursor moves)."""
    log = tmp_path / "run.log"
    with open(log, "wb") as stderr:
        result = subprocess.run(
            [sys.executable, "-m", "edge_reid", "run", "--source", str(vtest_path), "--max-frames", "30",
             "--events", str(tmp_path / "e.jsonl")],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, timeout=300, env={**os.environ, "FORCE_COLOR": "1"},
        )
    text = log.read_bytes()
    assert result.returncode == 0, text
    assert b"\r" not in text and text.count(b"30/30") == 1, text
    assert b"\x1b[" in text, "colour, as asked"


def test_a_narrow_terminal_does_not_cut_a_table(tmp_path, shared_dir):
    """At COLUMNS=40, eval-mot's table cut every cell to an ellipsis (`mot2.…`, `1…`): no number could be read."""
    gt = shared_dir / "data" / "vtest-mot"
    if not (gt / "gt" / "gt.txt").is_file():
        pytest.skip("vtest-mot missing")
    result_file = tmp_path / "mine.txt"
    result_file.write_bytes((gt / "gt" / "gt.txt").read_bytes())
    result = _cli(["eval-mot", "--gt", str(gt), str(result_file)], env={"COLUMNS": "40"})
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    rows = [line for line in err.splitlines() if "mine.txt" in line]
    assert "…" not in err and len(rows) == 1 and "(4476)" in rows[0] and "ids (gt)" in err, err


def test_a_closed_terminal_still_gets_the_summary_written(tmp_path, vtest_path, monkeypatch):
    """Standard error gone while frames flow (a closed SSH session: EIO): the progress bar's last write raised,
    the summary file was never written and the run ended in an internal error (exit 1)."""
    import edge_reid.cli.run_command as run_command

    class Terminal:
        gone = False

        def write(self, text):
            if self.gone:
                raise OSError(errno.EIO, "Input/output error")
            return len(text)

        def flush(self):
            if self.gone:
                raise OSError(errno.EIO, "Input/output error")

        def isatty(self):
            return False

    terminal = Terminal()
    # Rich keeps a file given in ``_file`` (None: sys.stderr at each write); patching ``file`` would leave the console
    # bound for good to this test's captured stderr, which later tests' output would go to
    monkeypatch.setattr(run_command.console, "_file", terminal)

    def gone_at_the_first_frame(*args, **kwargs):
        terminal.gone = True
        return ""

    monkeypatch.setattr(run_command, "detector_size_hint", gone_at_the_first_frame)
    summary = tmp_path / "s.json"
    assert main(["run", "--source", str(vtest_path), "--max-frames", "5", "--summary", str(summary)]) == 0
    assert terminal.gone and json.loads(summary.read_text())["frames"] == 5


def test_an_internal_error_without_a_writable_temporary_folder_still_ends_in_one_line(monkeypatch):
    """A read-only container (no writable /tmp, /var/tmp or working folder): ``tempfile.gettempdir()`` itself
    raises, and saving the traceback of an internal error ended in a second traceback."""
    import tempfile

    from edge_reid.cli import _save_traceback

    def no_temporary_folder():
        raise FileNotFoundError(2, "No usable temporary directory found in ['/tmp', '/var/tmp', '/usr/tmp']")

    monkeypatch.setattr(tempfile, "gettempdir", no_temporary_folder)
    said = _save_traceback(ValueError("a bug"))
    assert said.startswith("the traceback could not be saved") and "No usable temporary directory" in said


@pytest.mark.parametrize("command", [
    ["run", "--source", "{long}.avi", "--max-frames", "1"],
    ["gallery", "enroll", "--gallery", "{tmp}/g.edgereid", "--name", "A", "{long}.jpg"],
    ["doctor", "--engines-dir", "{long}"],
])
def test_a_path_too_long_for_the_file_system_is_one_line_and_exit_2(tmp_path, capsys, command):
    """A name over 255 bytes: os.stat raises ENAMETOOLONG where a missing file is looked for, which every
    command reached as an internal error (exit 1 and a traceback file)."""
    from edge_reid.cli import main

    long = str(tmp_path / ("x" * 300))
    code = main([part.format(long=long, tmp=tmp_path) for part in command])
    err = capsys.readouterr().err
    assert code == 2 and "internal error" not in err, err
    assert "too long" in err and len(err.strip().splitlines()) == 1, err
