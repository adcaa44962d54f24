"""Embedding backends behind one interface; :func:`create_backend` picks one by name."""

from __future__ import annotations

from pathlib import Path

from edge_reid.backends.base import EmbeddingBackend
from edge_reid.backends.buffers import BatchBuffers, numpy_buffers, plan_sub_batches
from edge_reid.errors import BackendUnavailableError
from edge_reid.spec import ModelSpec

BACKEND_NAMES = ("auto", "onnxruntime", "tensorrt")


def tensorrt_available() -> tuple[bool, str]:
    """(True, "") when TensorRT and a CUDA GPU can be used, else (False, why)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False, "TensorRT's Python package is not installed (on a Jetson run install_jetson.sh)"
    return False, "the TensorRT backend is not part of this build yet"


def create_backend(
    name: str,
    model_path: str | Path,
    spec: ModelSpec,
    max_batch: int = 32,
    threads: int | None = None,
) -> EmbeddingBackend:
    """Create the backend called ``name`` for a model.

    Args:
        name: ``"onnxruntime"``, ``"tensorrt"`` or ``"auto"`` (TensorRT when it and
            a GPU are present, else ONNX Runtime).
        model_path: the ONNX model.
        spec: its spec.
        max_batch: rows of the batch buffer.
        threads: CPU threads for ONNX Runtime (None: its default).

    Raises:
        BackendUnavailableError: ``tensorrt`` was asked for but cannot be used.
        ValueError: unknown backend name.
        ModelError: the model cannot be loaded.
    """
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if name in ("tensorrt", "auto"):
        ok, why = tensorrt_available()
        if not ok and name == "tensorrt":
            raise BackendUnavailableError(f"--backend tensorrt: TensorRT cannot be used here: {why}")
    from edge_reid.backends.onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend(model_path, spec, max_batch=max_batch, threads=threads)


__all__ = [
    "BACKEND_NAMES",
    "BatchBuffers",
    "EmbeddingBackend",
    "create_backend",
    "numpy_buffers",
    "plan_sub_batches",
    "tensorrt_available",
]
