"""What a release carries: the sdist (distributions build from it and run its tests) holds every tracked
test, benchmark and doc file and the Jetson installer; the wheel built from that sdist holds the bundled
models, their notices, edge-reid's LICENSE and ``py.typed`` (PEP 561). Built with ``python -m build``, in
isolation as pip builds (the build backend comes from the package registry)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files to compare the sdist with are unknown")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name and (REPO / name).is_file()]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("build", reason="python -m build is in the test extra: pip install '.[test]'")
    tracked = _tracked_files()
    source = tmp_path_factory.mktemp("source")
    for name in tracked:  # the working tree's files, as a clean clone would have them
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,), (wheel,) = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    return tracked, sdist, wheel


def test_the_sdist_holds_the_tests_their_helpers_benchmarks_docs_and_installer(built):
    tracked, sdist, _ = built
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    wanted = [name for name in tracked if name.startswith(("tests/", "benchmarks/", "docs/", "edge_reid/"))]
    wanted += ["install_jetson.sh", "LICENSE", "README.md", "pyproject.toml", "MANIFEST.in"]
    assert {"tests/conftest.py", "tests/onnx_builders.py", "tests/fake_tensorrt.py"} <= set(wanted)
    assert [name for name in wanted if name not in names] == []
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_wheel_holds_the_models_their_licenses_and_py_typed(built):
    _, _, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        licenses = {name.rsplit("/", 1)[1]: name for name in names if ".dist-info/licenses/" in name}
        license_text = archive.read(licenses["LICENSE"]).decode()
        notices = archive.read("edge_reid/assets/THIRD_PARTY_NOTICES.md").decode()
    assert {"edge_reid/py.typed", "edge_reid/assets/osnet_x0_25_msmt17.onnx", "edge_reid/assets/yolox_nano.onnx"} <= names
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "THIRD_PARTY_NOTICES.md" in licenses
    assert "Copyright (c) 2018 Kaiyang Zhou" in notices and "Permission is hereby granted" in notices
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/", "docs/"))]
