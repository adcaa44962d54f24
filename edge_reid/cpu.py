"""How many CPU cores this process may use."""

from __future__ import annotations

import os


def usable_cpu_count() -> int:
    """Cores this process may run on (its CPU affinity on Linux, else ``os.cpu_count()``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API on this platform
        return os.cpu_count() or 1
