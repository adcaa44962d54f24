"""A pool of real person crops: what calibration checks and benchmarks embed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, TypeVar

import numpy as np

from edge_reid.data.images import SkippedFile

T = TypeVar("T")


@dataclass
class CropPool:
    """Real person crops, where they came from, and the files left out.

    Attributes:
        crops: BGR uint8 images (h, w, 3) of any size, in source order (frame order for a video).
        source: where they came from, for reports (e.g. ``"video:PATH"``, ``"folder:PATH"``).
        skipped: files that could not be read (folders only), with the reason.
        frames: for crops cut from a video, the 0-based frame index of each crop
            (non-decreasing); None for other pools.
    """

    crops: list[np.ndarray]
    source: str
    skipped: list[SkippedFile] = field(default_factory=list)
    frames: list[int] | None = None

    def batches(self, batch: int) -> list[list[np.ndarray]]:
        """Consecutive batches of ``batch`` crops covering the pool once, wrapping at the end
        (so every batch is full, even when the pool is smaller than ``batch``)."""
        count = len(self.crops)
        steps = max(1, -(-count // batch))
        return [[self.crops[(start * batch + k) % count] for k in range(batch)] for start in range(steps)]


def spread(items: Sequence[T], count: int) -> list[T]:
    """``count`` items evenly spaced over ``items`` (all of them when fewer), keeping order."""
    if len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]
