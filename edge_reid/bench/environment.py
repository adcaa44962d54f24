"""The machine and library versions a benchmark ran on."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np

from edge_reid.cpu import cpu_isa_flags, cpu_model, cpu_quota, usable_cpu_count


def _gpu() -> str | None:
    """GPU name from nvidia-smi, or the Jetson board model, or None."""
    board = Path("/proc/device-tree/model")
    if board.is_file():
        name = board.read_text(errors="replace").strip("\x00 \n")
        if "jetson" in name.lower() or "nvidia" in name.lower():
            return name
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
            )
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and names:
                return ", ".join(names)
        except (OSError, subprocess.SubprocessError):
            pass
    return None


def _version(module: str) -> str | None:
    try:
        imported = __import__(module)
    except Exception:
        return None
    return str(getattr(imported, "__version__", "unknown"))


def environment() -> dict:
    """The machine and library versions a benchmark ran with (JSON-ready).

    Keys: ``cpu`` (model name), ``cpu_flags`` (:func:`edge_reid.cpu.cpu_isa_flags`), ``cpu_cores`` (``os.cpu_count()``), ``cpu_usable``
    (cores this process may use: :func:`edge_reid.cpu.usable_cpu_count`, its affinity and CPU quota), ``cpu_quota``
    (a cgroup's CPU quota in cores, e.g. 1.5 for ``docker --cpus=1.5``, or None), ``gpu`` (name or None), ``platform``,
    ``python``, ``libraries`` (numpy, onnxruntime, openvino, opencv, numba, scipy,
    tensorrt: version or None when absent), ``onnxruntime_providers``, ``numpy_blas``
    (the BLAS behind numpy's matmul, which the plain matcher uses) and ``thread_env``
    (thread-count environment variables that are set, e.g. ``OPENBLAS_NUM_THREADS``).
    """
    try:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    except Exception:
        providers = []
    from edge_reid import __version__

    try:
        blas_info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas_info.get('name', '?')} {blas_info.get('version', '')}".strip()
    except Exception:
        blas = None
    thread_variables = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER")
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_isa_flags(),
        "cpu_cores": os.cpu_count(),
        "cpu_usable": usable_cpu_count(),
        "cpu_quota": quota.cores if (quota := cpu_quota()) else None,
        "gpu": _gpu(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": {
            "edge_reid": __version__,
            "numpy": _version("numpy"),
            "onnxruntime": _version("onnxruntime"),
            "openvino": (_version("openvino") or "").split("-")[0] or None,
            "opencv": _version("cv2"),
            "numba": _version("numba"),
            "scipy": _version("scipy"),
            "tensorrt": _version("tensorrt"),
        },
        "onnxruntime_providers": providers,
        "numpy_blas": blas,
        "thread_env": {name: os.environ[name] for name in thread_variables if name in os.environ},
    }
