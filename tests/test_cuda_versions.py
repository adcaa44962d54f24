"""The device's CUDA version and the cuda-python that matches it (doctor, manifests, install_jetson.sh)."""

from __future__ import annotations

import pytest

import edge_reid.cuda.versions as versions
import edge_reid.doctor as doctor
from edge_reid.cuda.runtime import gpu_status
from edge_reid.cuda.versions import DeviceCuda, cuda_python_mismatch, cuda_python_requirement, toolkit_version
from fake_cudart import FakeCudaRuntime


@pytest.fixture
def no_cuda_tools(monkeypatch, tmp_path):
    """No nvcc and no dpkg-query to ask: the toolkit version comes from version.json alone."""
    monkeypatch.setattr(versions, "CUDA_NVCC", tmp_path / "no-nvcc")
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))


def _tool(path, output: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\nprintf '{output}'\n")
    path.chmod(0o755)
    return path


def test_toolkit_version_falls_back_to_nvcc_then_dpkg_as_install_jetson_does(tmp_path, monkeypatch, no_cuda_tools):
    """doctor said CUDA unknown where /usr/local/cuda/version.json was missing but nvcc was there, while
    install_jetson.sh found the version with nvcc (or, without it, the cuda-cudart-X-Y package)."""
    missing = tmp_path / "missing.json"
    nvcc = _tool(tmp_path / "cuda" / "bin" / "nvcc", "nvcc: NVIDIA (R) Cuda compiler driver\\nCuda compilation tools, release 12.6, V12.6.68\\n")
    monkeypatch.setattr(versions, "CUDA_NVCC", nvcc)
    assert toolkit_version(missing) == "12.6"
    monkeypatch.setattr(versions, "CUDA_NVCC", tmp_path / "no-nvcc")
    _tool(tmp_path / "dpkg" / "dpkg-query", "ii  cuda-cudart-12-2\\nii  cuda-cudart-12-6\\nrc  cuda-cudart-13-0\\nii  cuda-cudart-dev-12-6\\n")
    monkeypatch.setenv("PATH", str(tmp_path / "dpkg"))
    assert toolkit_version(missing) == "12.6"  # the newest installed one; "rc" is removed, config files left
    assert DeviceCuda.here("").describe() == "toolkit 12.6"


def test_toolkit_version_from_version_json(tmp_path, no_cuda_tools):
    path = tmp_path / "version.json"
    path.write_text('{"cuda": {"name": "CUDA SDK", "version": "12.6.68"}, "cuda_cudart": {"version": "12.6.68"}}')
    assert toolkit_version(path) == "12.6"
    path.write_text("{broken")
    assert toolkit_version(path) == ""
    assert toolkit_version(tmp_path / "missing.json") == ""


def test_requirement_and_mismatch():
    assert cuda_python_requirement("12.2") == "cuda-python==12.2.*"
    assert cuda_python_mismatch("12.6.2.post1", "12.6") == ""
    assert "needs a CUDA 13 driver; this device has CUDA 12.6: pip install 'cuda-python==12.6.*'" in cuda_python_mismatch("13.4.4", "12.6")
    assert "is for CUDA 12.9" in cuda_python_mismatch("12.9.10", "12.6")  # runs, but the matching minor is recommended
    assert cuda_python_mismatch("12.6.0", "") == "" and cuda_python_mismatch("", "12.6") == ""


def test_device_cuda_prefers_the_driver_and_falls_back_to_the_toolkit(tmp_path, monkeypatch, no_cuda_tools):
    path = tmp_path / "version.json"
    path.write_text('{"cuda": {"version": "12.6.68"}}')
    monkeypatch.setattr(versions, "CUDA_VERSION_JSON", path)
    assert DeviceCuda.here("12.8") == DeviceCuda("12.8", "12.6") and DeviceCuda.here("12.8").version == "12.8"
    assert DeviceCuda("", "12.6").version == "12.6" and DeviceCuda().describe() == "unknown"


@pytest.mark.parametrize(
    "installed, driver_version, ok, words",
    [
        ("12.6.2.post1", 12060, True, "12.6.2.post1, built for CUDA 12.6"),
        ("13.4.4", 12060, False, "needs a CUDA 13 driver; this device has CUDA 12.6: pip install 'cuda-python==12.6.*'"),
        # Seen on an H200: cuda-python 13.3.1 on a CUDA 13.0 driver ran the buffer check, yet doctor said "missing".
        ("13.3.1", 13000, None, "is for CUDA 13.3; this device has CUDA 13.0: pip install 'cuda-python==13.0.*' matches it"),
    ],
)
def test_doctor_shows_the_devices_cuda_and_whether_cuda_python_matches(monkeypatch, no_cuda_tools, installed, driver_version, ok, words):
    version = "12.6" if installed.startswith("12.6") else "13"
    monkeypatch.setattr(versions, "cuda_python_version", lambda: installed)
    monkeypatch.setattr(versions, "CUDA_VERSION_JSON", versions.Path("/nonexistent/version.json"))
    items = {item.name: item for item in doctor.cuda_items(gpu_status(FakeCudaRuntime(version=version, driver_version=driver_version)))}
    device = f"{driver_version // 1000}.{driver_version % 1000 // 10}"
    assert items["CUDA"].value == f"{device} (driver {device})"
    assert words in items["cuda-python"].value and items["cuda-python"].ok is ok
