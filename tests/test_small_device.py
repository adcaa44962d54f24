"""A small device's limits through the CLI: memory running out (a Jetson Nano's 4 GB, a `ulimit -v`)
and open files running out (`ulimit -n`) are one line saying what to do, not a traceback or a
bug report (docs/benchmarks.md, "Memory of each command")."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from edge_reid.cli import main
from edge_reid.errors import ModelError

REPO = Path(__file__).resolve().parents[1]


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("edge-reid: ")]


def _raiser(exc: BaseException):
    def raise_it(*args, **kwargs):
        raise exc

    return raise_it


def _patch_command(monkeypatch, command: str, exc: BaseException) -> None:
    """Make ``command``'s first step after its option checks raise ``exc``."""
    if command == "calibrate":
        import edge_reid.calibration.calibrate as calibrate

        monkeypatch.setattr(calibrate, "calibrate_model", _raiser(exc))
    else:
        import edge_reid.data.market1501 as market1501

        monkeypatch.setattr(market1501, "load_market1501", _raiser(exc))


def _arguments(command: str, tmp_path: Path) -> list[str]:
    data = tmp_path / "crops"
    (data / "bounding_box_train").mkdir(parents=True, exist_ok=True)
    if command == "calibrate":
        return ["calibrate", "--data", str(data), "--out", str(tmp_path / "out")]
    return ["eval", "--data", str(data)]


@pytest.mark.parametrize("command, lowers", [("calibrate", "run it on a larger machine"), ("eval", "try --batch 8")])
def test_memory_running_out_in_a_command_is_one_line_naming_what_lowers_it(command, lowers, monkeypatch, tmp_path, capsys):
    """A MemoryError (numpy's "Unable to allocate ...") was an "internal error ... please report it" with a
    saved traceback; it is the device's limit, not a bug: one line, exit 1, what lowers it or where to run the command."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _patch_command(monkeypatch, command, MemoryError("Unable to allocate 2.00 GiB for an array with shape (500, 1048576)"))
    assert main(_arguments(command, tmp_path)) == 1
    err = capsys.readouterr().err
    lines = _error_lines(err)
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("edge-reid: error: out of memory (Unable to allocate 2.00 GiB"), lines[0]
    assert lowers in lines[0] and "internal error" not in lines[0], lines[0]
    assert not list(tmp_path.glob("edge-reid-error-*.txt")), "memory running out is not a bug to report"


def test_a_backend_that_cannot_allocate_says_out_of_memory_not_only_a_model_error(monkeypatch, tmp_path, capsys):
    """ONNX Runtime's std::bad_alloc under a memory limit reached the user as "<model>: inference failed: ...
    bad_alloc", which reads as a broken model: the line now says memory ran out and what lowers it."""
    message = "yolox_nano.onnx: inference failed: Non-zero status code returned while running Conv node. Status Message: std::bad_alloc"
    _patch_command(monkeypatch, "eval", ModelError(message))
    assert main(_arguments("eval", tmp_path)) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"edge-reid: error: {message}; out of memory"), lines
    assert "--batch 8" in lines[0]


def test_a_model_error_about_something_else_is_unchanged(monkeypatch, tmp_path, capsys):
    _patch_command(monkeypatch, "eval", ModelError("m.onnx: input 0 has 4 dimensions, expected 4"))
    assert main(_arguments("eval", tmp_path)) == 2
    assert _error_lines(capsys.readouterr().err) == ["edge-reid: error: m.onnx: input 0 has 4 dimensions, expected 4"]


def test_too_many_open_files_is_one_line_naming_the_limit(monkeypatch, tmp_path, capsys):
    """EMFILE (a `ulimit -n` lower than the models' libraries need) was an "internal error ... please report it"."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _patch_command(monkeypatch, "eval", OSError(errno.EMFILE, os.strerror(errno.EMFILE), "/x/onnxruntime/METADATA"))
    assert main(_arguments("eval", tmp_path)) == 1
    err = capsys.readouterr().err
    lines = _error_lines(err)
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("edge-reid: error: too many open files (") and "ulimit -n" in lines[0], lines[0]
    assert not list(tmp_path.glob("edge-reid-error-*.txt"))


_FAIL_ON_IMPORT = """
import sys

class NoMemory:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise ImportError("libopenblas.so.0: failed to map segment from shared object")

sys.meta_path.insert(0, NoMemory())
from edge_reid.entry_point import main   # what the edge-reid console script does
sys.exit(main(["run", "--help"]))
"""


def test_memory_running_out_while_the_commands_load_is_one_line():
    """The console script imports the commands (numpy, OpenCV) before edge_reid.cli.main can catch anything:
    a library that could not be mapped for lack of memory printed Python's import traceback."""
    result = subprocess.run([sys.executable, "-c", _FAIL_ON_IMPORT.format(module="numpy")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().startswith("edge-reid: error: out of memory while loading its libraries (libopenblas"), result.stderr
    assert "ulimit -v" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS as Linux counts it")
@pytest.mark.parametrize("mib", [64, 128])
def test_a_real_address_space_limit_while_loading_is_one_line(mib):
    """The same with a real limit: 64 MiB of address space is too little to map numpy's libraries; at 128 MiB
    numpy's OpenBLAS failed in its own words and ended the process itself (on Python 3.12+ at 64 MiB too)."""
    script = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({mib} << 20, {mib} << 20)); "
              "from edge_reid.entry_point import main; sys.exit(main(['run', '--help']))")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("edge-reid: error: out of memory"), result.stderr
