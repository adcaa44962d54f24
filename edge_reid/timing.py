"""Per-stage wall-clock accounting for the main loop."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

STAGES = ("decode", "detect", "preprocess", "embed", "track", "match")


class StageTimer:
    """Accumulates seconds per named stage; reports mean milliseconds per frame.

    Stages are those of :data:`STAGES`: decode, detect, preprocess, embed, track (tracker and
    embedding plan), match (identities against the gallery).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {stage: 0.0 for stage in STAGES}
        self.frames = 0

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage``."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        """Time the ``with`` block into ``stage``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per frame of each stage (0 before the first frame)."""
        frames = max(self.frames, 1)
        return {stage: 1000.0 * total / frames for stage, total in self.seconds.items()}


class StreamClock:
    """Seconds since the first reading, on the monotonic clock: the time of a frame that came with
    none (a live camera handed to :meth:`Pipeline.process <edge_reid.pipeline.Pipeline.process>` or
    :meth:`Tracker.update <edge_reid.tracking.Tracker.update>` without a timestamp)."""

    def __init__(self) -> None:
        self._origin: float | None = None

    def seconds(self) -> float:
        """0.0 at the first call, then the seconds elapsed since it."""
        now = time.monotonic()
        if self._origin is None:
            self._origin = now
        return now - self._origin
