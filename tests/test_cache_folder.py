"""edge-reid's cache folder when there is none to be had: no ``HOME`` and a user id without a passwd entry
(a container run with an arbitrary ``--user`` and a bare environment). A cache is an optimisation, never a
reason to fail: tuning and the CPU backend choice are measured and not kept."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

import edge_reid.backends.cpu_choice as cpu_choice
from edge_reid.backends import BackendChoice
from edge_reid.backends.onnxruntime import OnnxRuntimeBackend
from edge_reid.cache_folder import cache_dir, cache_file, read_cache_entries, writable_cache_folder, write_cache_entry
from edge_reid.spec import ModelSpec
from onnx_builders import mean_model


@pytest.fixture
def no_home(monkeypatch):
    for name in ("EDGE_REID_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)

    def home(cls=None):
        raise RuntimeError("Could not determine home directory.")  # what Python 3.12 raises then (KeyError before)

    monkeypatch.setattr(pathlib.Path, "home", classmethod(home))


def test_the_folder_follows_the_documented_order(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "mine" and cache_file("a.json") == tmp_path / "mine" / "a.json"
    monkeypatch.delenv("EDGE_REID_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "edge-reid"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "edge-reid"


def test_without_a_home_nothing_is_cached_and_nothing_fails(no_home):
    assert cache_dir() is None and cache_file("tuning.json") is None
    assert writable_cache_folder("openvino") is None
    assert read_cache_entries(None, "schema") == {}
    write_cache_entry(None, "schema", "key", {"ms": 1.0}, "a cache")  # skipped, no error


def test_without_a_home_onnx_runtime_is_still_tuned(no_home, tmp_path):
    spec = ModelSpec(name="means", input_name="images", height=256, width=128, embedding_dim=3)
    backend = OnnxRuntimeBackend(mean_model(tmp_path / "means.onnx"), spec, threads=1)
    assert backend.tuning.source == "measured" and backend.infer(2).shape == (2, 3)


def test_without_a_home_auto_still_times_both_cpu_backends(no_home, tmp_path, monkeypatch):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model bytes")
    monkeypatch.setattr(cpu_choice, "time_calls", lambda calls, clock: {"openvino": 40.0, "onnxruntime": 20.0})

    class Stand:
        def run(self) -> None:
            pass

        def close(self) -> None:
            pass

    tried = [BackendChoice("openvino", "auto chose OpenVINO"), BackendChoice("onnxruntime", "auto chose ONNX Runtime")]
    ordered = cpu_choice.order_by_speed(tried, "detector", model, "threads 1", lambda name: Stand(), lambda b: b.run)
    assert [choice.name for choice in ordered] == ["onnxruntime", "openvino"] and "(measured now)" in ordered[0].reason


def test_without_a_home_openvino_is_passed_over_with_what_to_set():
    """OpenVINO 2026.4's import reads the home folder (its telemetry) and raised RuntimeError without one, which
    ended `edge-reid run` (auto picks OpenVINO on x86-64) as an internal error. A fresh process: pytest's has
    OpenVINO imported already."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    script = """
import os, pwd
for name in ("HOME", "XDG_CACHE_HOME", "EDGE_REID_CACHE_DIR"):
    os.environ.pop(name, None)
def no_entry(uid):
    raise KeyError(f"getpwuid(): uid not found: {uid}")
pwd.getpwuid = no_entry  # a user id without a passwd entry
from edge_reid.backends.openvino import import_openvino
from edge_reid.errors import BackendUnavailableError
try:
    import_openvino()
    print("imported")
except BackendUnavailableError as error:
    print("unavailable:", error)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported") or (
        result.stdout.startswith("unavailable:") and "set HOME (e.g. HOME=/tmp)" in result.stdout
    ), result.stdout
