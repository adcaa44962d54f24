"""`--help` of every command reads on an 80-column terminal (a Jetson's serial console, an SSH session)."""

from __future__ import annotations

import re

import pytest
import typer

from edge_reid.cli import app, main


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths = [[]]
    for name, command in root.commands.items():
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    return paths


COMMANDS = _command_paths()
#: an option's line: "  -s, --source <str>   Video file, ..." (the text after two or more spaces)
OPTION_LINE = re.compile(r"^  (?:-\w, )?--[\w-]+(?: / --[\w-]+)?(?: \S+)?( {2,})\S")


def test_every_command_and_gallery_subcommand_is_covered():
    names = {" ".join(path) for path in COMMANDS}
    assert {"", "run", "build", "doctor", "bench", "calibrate", "eval", "eval-mot", "gallery", "gallery enroll"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "edge-reid")
def test_help_fits_80_columns_and_leaves_the_explanations_room(path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main([*path, "--help"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("Usage: edge-reid"), lines[0]
    too_long = [line for line in lines if len(line) > 80]
    assert not too_long, f"lines wider than 80 columns: {too_long}"
    assert "<bool>" not in text, "a flag takes no value; its help must not show one"
    assert "\\[" not in text, "Rich markup escapes must not reach plain help"
    for line in lines:
        match = OPTION_LINE.match(line)
        if match:
            assert match.end() - 1 <= 40, f"the explanation starts at column {match.end() - 1}: {line!r}"


def test_examples_keep_their_lines(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["run", "--help"]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "edge-reid run --camera /dev/video0 --display" in lines
    assert "edge-reid eval-mot --gt vtest-mot vtest.txt         # then score it" in lines
    assert "edge-reid run --source vtest.avi --mot vtest.txt" in lines, "one example per line, not run together"
