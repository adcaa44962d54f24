"""The engine's optimization profile over the batch dimension, and batch planning against it.

A TensorRT engine with a dynamic batch is built for one optimization profile:
batches from ``min`` to ``max`` rows, tuned for ``opt`` (TensorRT
``IOptimizationProfile.set_shape(name, min, opt, max)``). Requests above ``max``
are split into sub-batches of at most ``max`` (:func:`edge_reid.batching.plan_sub_batches`,
by the Embedder); a batch below ``min`` is run at
``min`` rows (the extra rows are ignored).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_reid.tensorrt.errors import EngineBuildError

#: Default profile: single crops up to a crowded frame; tuned for 16 people.
DEFAULT_MIN_BATCH = 1
DEFAULT_OPT_BATCH = 16
DEFAULT_MAX_BATCH = 64


@dataclass(frozen=True)
class BatchProfile:
    """Batch sizes of one optimization profile.

    Attributes:
        min: smallest batch the engine accepts (>= 1).
        opt: batch TensorRT tunes kernels for (min <= opt <= max).
        max: largest batch; the buffers are allocated at this size.

    Raises:
        EngineBuildError: the sizes are not 1 <= min <= opt <= max (message names the values).
    """

    min: int = DEFAULT_MIN_BATCH
    opt: int = DEFAULT_OPT_BATCH
    max: int = DEFAULT_MAX_BATCH

    def __post_init__(self) -> None:
        values = (self.min, self.opt, self.max)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise EngineBuildError(f"batch profile sizes must be integers, got min={self.min!r} opt={self.opt!r} max={self.max!r}")
        if not 1 <= self.min <= self.opt <= self.max:
            raise EngineBuildError(
                f"batch profile needs 1 <= --min-batch <= --opt-batch <= --max-batch, "
                f"got min={self.min}, opt={self.opt}, max={self.max}"
            )

    def shapes(self, chw: tuple[int, int, int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) input shapes ``(B, C, H, W)`` for ``set_shape``."""
        c, h, w = chw
        return (self.min, c, h, w), (self.opt, c, h, w), (self.max, c, h, w)

    def execution_batch(self, n: int) -> int:
        """Rows to run for a request of ``n`` rows (1 <= n <= max): ``max(n, min)``.

        Raises:
            ValueError: ``n`` outside 1..max (split larger requests with
                :func:`edge_reid.batching.plan_sub_batches`).
        """
        if not 1 <= n <= self.max:
            raise ValueError(f"batch of {n} outside 1..{self.max}; split it with plan_sub_batches")
        return max(n, self.min)

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min, "opt": self.opt, "max": self.max}

    @classmethod
    def from_dict(cls, data: dict) -> "BatchProfile":
        """Inverse of :meth:`to_dict`.

        Raises:
            EngineBuildError: missing keys or invalid sizes.
        """
        try:
            return cls(min=data["min"], opt=data["opt"], max=data["max"])
        except (KeyError, TypeError):
            raise EngineBuildError(f"batch profile needs min/opt/max, got {data!r}") from None

    def __str__(self) -> str:
        return f"{self.min}/{self.opt}/{self.max}"
