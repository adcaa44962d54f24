"""Batch buffers and sub-batch planning shared by every backend: one input and one output array, allocated once.

The preprocessing code writes crops straight into :attr:`BatchBuffers.input`
and the matcher reads embeddings from :attr:`BatchBuffers.output`. On the CPU
they are plain numpy arrays; the TensorRT backend backs the same two arrays
with CUDA mapped (zero-copy) or pinned host memory, so the code around the
model is identical on both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_reid.spec import ModelSpec


@dataclass(frozen=True)
class BatchBuffers:
    """Preallocated host-visible buffers of one backend.

    Attributes:
        input: (max_batch, 3, H, W) float32, C-contiguous: the model input.
        output: (max_batch, D) float32, C-contiguous: the model output.
    """

    input: np.ndarray
    output: np.ndarray

    @property
    def max_batch(self) -> int:
        """Largest batch the buffers hold."""
        return int(self.input.shape[0])


def numpy_buffers(spec: ModelSpec, max_batch: int) -> BatchBuffers:
    """Plain numpy buffers for CPU backends.

    Args:
        spec: the model's spec (gives H, W and D).
        max_batch: rows to allocate, >= 1.

    Raises:
        ValueError: ``max_batch`` < 1.
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    return BatchBuffers(
        input=np.zeros((max_batch, 3, spec.height, spec.width), dtype=np.float32),
        output=np.zeros((max_batch, spec.embedding_dim), dtype=np.float32),
    )


def plan_sub_batches(count: int, max_batch: int) -> list[tuple[int, int]]:
    """Split ``count`` items into consecutive ``(start, stop)`` ranges of at most ``max_batch``.

    >>> plan_sub_batches(5, 2)
    [(0, 2), (2, 4), (4, 5)]

    Raises:
        ValueError: ``max_batch`` < 1 or ``count`` < 0.
    """
    if max_batch < 1 or count < 0:
        raise ValueError(f"need count >= 0 and max_batch >= 1, got count={count}, max_batch={max_batch}")
    return [(start, min(start + max_batch, count)) for start in range(0, count, max_batch)]
