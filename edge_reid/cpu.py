"""This CPU: its model and instruction sets, how many cores this process may use, and how the two models share them."""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: Instruction-set flags that decide which kernels the CPU runtimes pick.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else the platform's processor or machine name)."""
    text = _cpuinfo()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_isa_flags() -> list[str]:
    """The :data:`ISA_FLAGS` this CPU reports in ``/proc/cpuinfo`` (empty where it cannot be read)."""
    present: set[str] = set()
    for line in _cpuinfo().splitlines():
        if line.split(":")[0].strip() in ("flags", "Features"):
            present.update(line.split(":", 1)[1].split())
    return [flag for flag in ISA_FLAGS if flag in present]


def usable_cpu_count() -> int:
    """Cores this process may run on (its CPU affinity on Linux, else ``os.cpu_count()``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API on this platform
        return os.cpu_count() or 1


def threads_per_model() -> int:
    """CPU threads for each of two models that keep their own thread pools and run side by side.

    The main loop runs the detector in a worker thread while the ReID model embeds
    the previous frame. Runtimes with a thread pool per model (ONNX Runtime) then get
    half the cores this process may use each (at least one): two such pools each taking
    every core fight over them (``benchmarks/run_modes.py`` compares both; figures in
    docs/benchmarks.md). OpenVINO's models share one pool and keep every core; see
    :class:`edge_reid.backends.BackendOptions` (``side_by_side``).
    """
    return max(1, usable_cpu_count() // 2)
