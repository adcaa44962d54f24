"""install_jetson.sh: syntax, the non-Jetson stop, and L4T detection (dry run: nothing is installed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "install_jetson.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

JETPACK6 = "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024\n"
JETPACK5 = "# R35 (release), REVISION: 5.0, GCID: 35550185, BOARD: t186ref, EABI: aarch64, DATE: Tue Feb 20 04:46:31 UTC 2024\n"


def script(*args: str, release: Path | None = None, arch: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "EDGE_REID_TEGRA_RELEASE": str(release or "/nonexistent/nv_tegra_release")}
    if arch:
        env["EDGE_REID_ARCH"] = arch
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env, cwd=REPO)


def release_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nv_tegra_release"
    path.write_text(text)
    return path


def test_syntax():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_stops_on_a_machine_that_is_not_a_jetson():
    if subprocess.run(["sh", "-c", "dpkg-query -W nvidia-l4t-core"], capture_output=True).returncode == 0:
        pytest.skip("this machine has nvidia-l4t-core: it is a Jetson")
    result = script()
    assert result.returncode != 0
    assert "not an NVIDIA Jetson" in result.stderr and "python3 -m pip install ." in result.stderr


def test_stops_when_not_aarch64(tmp_path):
    result = script(release=release_file(tmp_path, JETPACK6), arch="x86_64")
    assert result.returncode != 0 and "L4T 36.4.0" in result.stderr and "not aarch64" in result.stderr


def test_jetpack5_is_refused_with_the_reason(tmp_path):
    result = script(release=release_file(tmp_path, JETPACK5), arch="aarch64")
    assert result.returncode != 0 and "JetPack 5" in result.stderr and "Python >= 3.10" in result.stderr


def test_unreadable_release_file(tmp_path):
    result = script(release=release_file(tmp_path, "garbage\n"), arch="aarch64")
    assert result.returncode != 0 and "does not look like an L4T release file" in result.stderr


def test_unknown_option():
    result = script("--frobnicate")
    assert result.returncode != 0 and "unknown option --frobnicate" in result.stderr


def test_dry_run_on_jetpack6_plans_the_install_and_changes_nothing(tmp_path):
    venv = tmp_path / "venv"
    result = script("--dry-run", "--skip-apt", "--system-opencv", "--venv", str(venv), release=release_file(tmp_path, JETPACK6), arch="aarch64")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "found L4T 36.4.0 (JetPack 6) on aarch64" in out
    assert re.search(r"cuda-python==\d+\.\d+\.\*", out)
    assert f"-m venv --system-site-packages {venv}" in out
    assert re.search(r"pip install -c \S+ " + re.escape(f"{REPO}[jetson]"), out)
    assert "pip uninstall -y opencv-python-headless" in out
    assert f"{venv}/bin/edge-reid doctor" in out
    assert not venv.exists()


def test_help():
    result = script("--help")
    assert result.returncode == 0 and "--system-opencv" in result.stdout and "GStreamer" in result.stdout
