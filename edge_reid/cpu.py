"""How many CPU cores this process may use, and how the two models share them."""

from __future__ import annotations

import os


def usable_cpu_count() -> int:
    """Cores this process may run on (its CPU affinity on Linux, else ``os.cpu_count()``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API on this platform
        return os.cpu_count() or 1


def threads_per_model() -> int:
    """CPU threads for each of the two models (detector, ReID) when they run side by side.

    The main loop runs the detector in a worker thread while the ReID model embeds
    the previous frame, so each model gets half the cores this process may use (at
    least one): two models each taking every core in turn fight over them
    (``benchmarks/run_modes.py`` compares both; figures in docs/benchmarks.md).
    Every backend (ONNX Runtime, OpenVINO) takes its thread count from here.
    """
    return max(1, usable_cpu_count() // 2)
