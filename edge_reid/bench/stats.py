"""Latency statistics of repeated timed calls (p50/p90/p99, images per second) and the --batch parser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``samples``, linear interpolation between order statistics.

    Same definition as ``numpy.percentile`` (method ``"linear"``, Hyndman & Fan type 7),
    which is what trtexec-style reports use for p50/p90/p99.

    Args:
        samples: one or more values (any unit; the result has the same unit).
        q: percentile in [0, 100].

    Raises:
        ValueError: no samples, or ``q`` outside [0, 100].
    """
    if len(samples) == 0:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    return float(np.percentile(np.asarray(samples, np.float64), q))


@dataclass(frozen=True)
class LatencyStats:
    """Latency of repeated calls that each process ``batch`` images.

    Attributes:
        batch: images per call.
        iterations: number of timed calls.
        total_s: seconds of all timed calls together.
        p50_ms, p90_ms, p99_ms: latency percentiles of one call, ms.
        mean_ms, min_ms, max_ms: mean, fastest and slowest call, ms.
        images_per_s: ``batch * iterations / total_s`` (= batch / mean latency).
    """

    batch: int
    iterations: int
    total_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    images_per_s: float

    @classmethod
    def from_samples(cls, samples_s: Sequence[float], batch: int) -> "LatencyStats":
        """Statistics of per-call durations in seconds.

        Raises:
            ValueError: no samples, a negative duration, or ``batch`` < 1.
        """
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        values = np.asarray(samples_s, np.float64)
        if values.size == 0:
            raise ValueError("no timing samples")
        if (values < 0).any():
            raise ValueError("negative duration in timing samples")
        total = float(values.sum())
        ms = values * 1000.0
        return cls(
            batch=int(batch),
            iterations=int(values.size),
            total_s=total,
            p50_ms=percentile(ms, 50),
            p90_ms=percentile(ms, 90),
            p99_ms=percentile(ms, 99),
            mean_ms=float(ms.mean()),
            min_ms=float(ms.min()),
            max_ms=float(ms.max()),
            images_per_s=batch * values.size / total if total > 0 else float("inf"),
        )

    def latency_ms(self) -> dict[str, float]:
        """{"p50", "p90", "p99", "mean", "min", "max"} in ms, rounded for JSON."""
        return {
            "p50": round(self.p50_ms, 4),
            "p90": round(self.p90_ms, 4),
            "p99": round(self.p99_ms, 4),
            "mean": round(self.mean_ms, 4),
            "min": round(self.min_ms, 4),
            "max": round(self.max_ms, 4),
        }


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """Parse ``"1,8,32"`` into ``(1, 8, 32)``.

    Raises:
        ValueError: empty, not integers, below 1, or repeated; the message names the bad part.
    """
    parts = [part.strip() for part in str(text).split(",")]
    if not text or not text.strip() or any(part == "" for part in parts):
        raise ValueError(f"batch sizes must be comma-separated integers like 1,8,32, got {text!r}")
    sizes = []
    for part in parts:
        try:
            size = int(part)
        except ValueError:
            raise ValueError(f"batch size {part!r} in {text!r} is not an integer; use e.g. 1,8,32") from None
        if size < 1:
            raise ValueError(f"batch size {size} in {text!r} must be >= 1")
        if size in sizes:
            raise ValueError(f"batch size {size} appears twice in {text!r}")
        sizes.append(size)
    return tuple(sizes)
