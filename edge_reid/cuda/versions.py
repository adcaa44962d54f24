"""Which CUDA the device has, and which cuda-python matches it.

The device's CUDA is what its NVIDIA driver supports (``cudaDriverGetVersion``; on a Jetson,
JetPack's CUDA: 12.2 on JetPack 6.0, 12.6 on 6.1/6.2, 13.0 on JetPack 7) and, where the toolkit is installed,
its version (``/usr/local/cuda/version.json``, else ``nvcc``, else the ``cuda-cudart-X-Y`` package). cuda-python X.Y is built for CUDA X.Y; its runtime calls need a
driver of the same major version (cuda-python 13 on a CUDA 12 driver returns
``cudaErrorInsufficientDriver``), so the matching install is ``cuda-python==X.Y.*`` for the
device's X.Y (what ``install_jetson.sh`` pins, within the bound of the ``jetson`` extra, JetPack 6,
or the ``jetpack7`` extra, JetPack 7).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

#: Where the CUDA toolkit records its version (CUDA 11.1 and later, JetPack included).
CUDA_VERSION_JSON = Path("/usr/local/cuda/version.json")

#: The CUDA compiler of the toolkit (JetPack installs it here, not on PATH).
CUDA_NVCC = Path("/usr/local/cuda/bin/nvcc")


def toolkit_version(path: Path | None = None) -> str:
    """The installed CUDA toolkit's ``"major.minor"``, found as ``install_jetson.sh`` finds it, or "" when
    nothing says.

    In order: the toolkit's ``version.json`` (``path``, default :data:`CUDA_VERSION_JSON`); ``nvcc --version``
    (:data:`CUDA_NVCC`, else ``nvcc`` on ``PATH``); the newest installed ``cuda-cudart-X-Y`` package
    (``dpkg-query``, Debian and Ubuntu, JetPack included).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "version.json"
    >>> _ = p.write_text('{"cuda": {"name": "CUDA SDK", "version": "12.6.68"}}')
    >>> toolkit_version(p)
    '12.6'
    """
    try:
        version = str(json.loads(Path(path or CUDA_VERSION_JSON).read_text())["cuda"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        version = ""
    parts = version.split(".")
    if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]):
        return ".".join(parts[:2])
    return _nvcc_version() or _cudart_package_version()


def _run(command: list[str]) -> str:
    """The standard output of ``command``, or "" when it cannot run, fails or takes over 10 s."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout if result.returncode == 0 else ""


def _nvcc_version() -> str:
    """``"12.6"`` from ``nvcc --version`` ("Cuda compilation tools, release 12.6, V12.6.68"), or ""."""
    nvcc = str(CUDA_NVCC) if os.access(CUDA_NVCC, os.X_OK) else shutil.which("nvcc")
    match = re.search(r"release (\d+)\.(\d+)", _run([nvcc, "--version"])) if nvcc else None
    return f"{match.group(1)}.{match.group(2)}" if match else ""


def _cudart_package_version() -> str:
    """``"12.6"`` from the newest installed ``cuda-cudart-12-6`` package (``dpkg-query``), or ""."""
    if shutil.which("dpkg-query") is None:
        return ""
    listed = _run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Package}\n", "cuda-cudart-[0-9]*"])
    found = [tuple(int(v) for v in m.groups()) for m in re.finditer(r"^ii\s+cuda-cudart-(\d+)-(\d+)$", listed, re.MULTILINE)]
    return "{}.{}".format(*max(found)) if found else ""


def cuda_python_version() -> str:
    """The installed cuda-python (or cuda-bindings) distribution's version, or ""."""
    for name in ("cuda-python", "cuda-bindings"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return ""


def cuda_python_requirement(cuda_version: str) -> str:
    """The pip requirement of the cuda-python matching CUDA ``"X.Y"``.

    >>> cuda_python_requirement("12.6")
    'cuda-python==12.6.*'
    """
    major, minor = cuda_version.split(".")[:2]
    return f"cuda-python=={int(major)}.{int(minor)}.*"


def cuda_python_mismatch(installed: str, device_cuda: str) -> str:
    """Empty when cuda-python ``installed`` can run on a device with CUDA ``device_cuda``, else why not and what to install.

    cuda-python must not be of a newer major version than the device's CUDA (its runtime calls
    then fail with ``cudaErrorInsufficientDriver``); within a major version the matching minor is
    recommended.

    >>> cuda_python_mismatch("13.0.3", "12.6")
    "cuda-python 13.0.3 needs a CUDA 13 driver; this device has CUDA 12.6: pip install 'cuda-python==12.6.*'"
    >>> cuda_python_mismatch("12.6.2.post1", "12.6")
    ''
    """
    versions = _major_minors(installed, device_cuda)
    if versions is None:
        return ""
    have, want = versions
    if have[0] > want[0]:
        return f"cuda-python {installed} needs a CUDA {have[0]} driver; this device has CUDA {device_cuda}: pip install '{cuda_python_requirement(device_cuda)}'"
    if have != want:
        return f"cuda-python {installed} is for CUDA {have[0]}.{have[1]}; this device has CUDA {device_cuda}: pip install '{cuda_python_requirement(device_cuda)}' matches it"
    return ""


def cuda_python_too_new(installed: str, device_cuda: str) -> bool:
    """True when cuda-python ``installed`` is of a newer major version than the device's CUDA ``device_cuda``:
    its runtime calls then fail (``cudaErrorInsufficientDriver``). A newer minor of the same major runs under
    CUDA's minor-version compatibility (seen: cuda-python 13.3.1 on a CUDA 13.0 driver, an H200), so it is
    no fault, only not the exact match :func:`cuda_python_mismatch` recommends.

    >>> cuda_python_too_new("13.0.3", "12.6"), cuda_python_too_new("13.3.1", "13.0")
    (True, False)
    """
    versions = _major_minors(installed, device_cuda)
    return versions is not None and versions[0][0] > versions[1][0]


def _major_minors(installed: str, device_cuda: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    if not installed or not device_cuda:
        return None
    try:
        return tuple(int(p) for p in installed.split(".")[:2]), tuple(int(p) for p in device_cuda.split(".")[:2])
    except ValueError:
        return None


@dataclass(frozen=True)
class DeviceCuda:
    """The device's CUDA, as recorded in engine manifests and shown by ``doctor``.

    Attributes:
        driver: CUDA version the NVIDIA driver supports (``cudaDriverGetVersion``), ``"12.6"``; "" unknown.
        toolkit: installed toolkit's version (:func:`toolkit_version`: ``/usr/local/cuda/version.json``, nvcc or
            the cuda-cudart package), ``"12.6"``; "" when absent.
    """

    driver: str = ""
    toolkit: str = ""

    @classmethod
    def here(cls, driver_version: str) -> "DeviceCuda":
        """This machine's: ``driver_version`` (from :func:`edge_reid.cuda.runtime.gpu_status`) and :func:`toolkit_version`."""
        return cls(driver_version, toolkit_version())

    @property
    def version(self) -> str:
        """The device's CUDA ``"X.Y"``: the driver's, else the toolkit's, else ""."""
        return self.driver or self.toolkit

    def describe(self) -> str:
        """``"driver 12.6, toolkit 12.6"`` or ``"unknown"``."""
        parts = [f"driver {self.driver}" if self.driver else "", f"toolkit {self.toolkit}" if self.toolkit else ""]
        return ", ".join(p for p in parts if p) or "unknown"
