"""The interface every embedding backend implements (ONNX Runtime, TensorRT).

Modelled on NVIDIA polygraphy's split of loaders and runners: a backend is
built from a model path and spec, owns its :class:`BatchBuffers`, and runs the
model on the first ``n`` rows of its input buffer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from edge_reid.batching import BatchBuffers
from edge_reid.spec import ModelSpec


class EmbeddingBackend(ABC):
    """Runs an embedding model over a preallocated batch buffer.

    Use: write up to :attr:`max_batch` preprocessed crops into
    ``backend.buffers.input[:n]``, call :meth:`infer` with ``n``, read the
    returned ``(n, D)`` view before the next call.
    """

    #: short backend name shown to users ("onnxruntime", "tensorrt").
    name: str = "abstract"
    #: why :func:`edge_reid.backends.create_backend` picked this backend (one line, for ``--backend auto``).
    selection_reason: str = ""

    def __init__(self, spec: ModelSpec, buffers: BatchBuffers) -> None:
        self.spec = spec
        self.buffers = buffers

    @property
    def max_batch(self) -> int:
        """Largest batch one :meth:`infer` call takes."""
        return self.buffers.max_batch

    @abstractmethod
    def infer(self, n: int) -> np.ndarray:
        """Run the model on ``buffers.input[:n]``.

        Args:
            n: number of filled rows, 1 <= n <= max_batch.

        Returns:
            (n, D) float32 view of ``buffers.output``; overwritten by the next call.

        Raises:
            ValueError: ``n`` out of range.
        """

    def describe(self) -> str:
        """One line naming the backend and its device, for logs and summaries."""
        return self.name

    def close(self) -> None:
        """Release sessions and device memory. Safe to call twice."""

    def __enter__(self) -> "EmbeddingBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_n(self, n: int) -> None:
        if not 1 <= n <= self.max_batch:
            raise ValueError(f"batch of {n} outside 1..{self.max_batch}")
