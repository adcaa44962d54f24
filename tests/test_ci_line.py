"""The README's test line is what CI runs, and it installs everything the tests import."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = "# test (the command CI runs)"


def _readme_test_line() -> str:
    lines = [line for line in (REPO / "README.md").read_text().splitlines() if line.rstrip().endswith(MARKER)]
    assert len(lines) == 1, f"README.md needs exactly one line ending in {MARKER!r}"
    return lines[0].rstrip()[: -len(MARKER)].strip()


def test_ci_runs_the_readme_test_line():
    printed = subprocess.run(["bash", str(REPO / ".ci" / "run"), "--print"], capture_output=True, text=True, check=True)
    line = _readme_test_line()
    assert printed.stdout.strip() == line
    install, _, test = line.partition("&&")
    assert re.fullmatch(r"python3? -m pip install '\.\[test\]'", install.strip()), "install the project with its test extra"
    assert test.strip().startswith("python -m pytest")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_test_extra_installs_every_library_the_tests_import():
    """A fresh `pip install '.[test]'` must be enough: no test may import a library it does not bring."""
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")  # tomli: the same parser before 3.11 (pytest brings it there)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirement_names = [re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0] for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    installed_by_line = {_normalise(name) for name in requirement_names}
    local = {path.stem for path in (REPO / "tests").glob("*.py")} | {"edge_reid"}
    imported = set()
    for path in (REPO / "tests").glob("*.py"):
        for node in ast.parse(path.read_text()).body:  # module level: what a test file needs to be collected
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = sorted(m for m in imported - local if m not in sys.stdlib_module_names)
    assert {"pytest", "hypothesis", "numpy"} <= set(third_party)
    distributions = importlib.metadata.packages_distributions()
    missing = [m for m in third_party if not {_normalise(d) for d in distributions.get(m, [m])} & installed_by_line]
    assert not missing, f"tests import {missing}, which neither the dependencies nor the test extra install"
