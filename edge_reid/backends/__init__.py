"""Embedding backends behind one interface; :func:`create_backend` picks one by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_reid.backends.base import EmbeddingBackend
from edge_reid.errors import BackendUnavailableError
from edge_reid.spec import ModelSpec

BACKEND_NAMES = ("auto", "onnxruntime", "tensorrt")


def tensorrt_available() -> tuple[bool, str]:
    """(True, "TensorRT X on GPU") when TensorRT (>= 8.5), cuda-python and a CUDA GPU can be used, else (False, why)."""
    from edge_reid.tensorrt.env import tensorrt_status

    status = tensorrt_status()
    if not status.usable:
        return False, status.reason
    return True, f"TensorRT {status.tensorrt_version} on {status.gpu.gpu.describe()}"


@dataclass(frozen=True)
class BackendChoice:
    """Which backend a ``--backend`` value resolves to, and why.

    Attributes:
        name: ``"onnxruntime"`` or ``"tensorrt"``.
        reason: one line for the user, e.g. ``"auto: TensorRT 10.3.0.30 on Orin (...)"``.
    """

    name: str
    reason: str


def choose_backend(requested: str, availability: Callable[[], tuple[bool, str]] | None = None) -> BackendChoice:
    """Resolve ``--backend``: ``auto`` is TensorRT when it and a GPU are present, else ONNX Runtime.

    Args:
        requested: ``"auto"``, ``"onnxruntime"`` or ``"tensorrt"``.
        availability: returns (usable, detail); :func:`tensorrt_available` when None
            (looked up at call time, so tests can monkeypatch it).

    Raises:
        ValueError: unknown name.
        BackendUnavailableError: ``tensorrt`` asked for but unusable; the message names
            TensorRT and what is missing (the CLI exits 2).
    """
    if requested not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {requested!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if requested == "onnxruntime":
        return BackendChoice("onnxruntime", "onnxruntime: requested with --backend onnxruntime")
    ok, detail = (availability or tensorrt_available)()
    if requested == "tensorrt":
        if not ok:
            raise BackendUnavailableError(f"--backend tensorrt: TensorRT cannot be used here: {detail}")
        return BackendChoice("tensorrt", f"tensorrt: {detail}")
    if ok:
        return BackendChoice("tensorrt", f"auto chose TensorRT: {detail}")
    return BackendChoice("onnxruntime", f"auto chose ONNX Runtime (CPU): {detail}")


def create_backend(
    name: str,
    model_path: str | Path,
    spec: ModelSpec,
    max_batch: int = 32,
    threads: int | None = None,
    *,
    precision: str | None = None,
    engines_dir: str | Path = "engines",
    rebuild: bool = False,
) -> EmbeddingBackend:
    """Create the backend called ``name`` for a model.

    The returned backend's ``selection_reason`` says which backend was chosen and
    why (print it for ``--backend auto``).

    Args:
        name: ``"onnxruntime"``, ``"tensorrt"`` or ``"auto"`` (TensorRT when it, a GPU
            and a current engine for the model are present, else ONNX Runtime).
        model_path: the ONNX model.
        spec: its spec.
        max_batch: rows of the batch buffer (ONNX Runtime); TensorRT uses its
            engine profile's max batch instead.
        threads: CPU threads for ONNX Runtime (None: its default).
        precision: TensorRT engine precision to load (None: the newest current engine).
        engines_dir: folder of TensorRT engines and manifests.
        rebuild: TensorRT: build the engine when none is current.

    Raises:
        BackendUnavailableError: ``tensorrt`` was asked for but cannot be used (names
            TensorRT), or it has no current engine (says how to build one).
        ValueError: unknown backend name.
        ModelError: the model cannot be loaded.
    """
    choice = choose_backend(name)
    if choice.name == "tensorrt":
        from edge_reid.backends.tensorrt import open_tensorrt_backend
        from edge_reid.tensorrt.errors import EngineNotFoundError

        try:
            backend = open_tensorrt_backend(model_path, spec, precision=precision, engines_dir=engines_dir, rebuild=rebuild)
            backend.selection_reason = f"{choice.reason}; engine {backend.engine_path.name}"
            return backend
        except EngineNotFoundError as exc:
            if name == "tensorrt":
                raise
            choice = BackendChoice("onnxruntime", f"auto chose ONNX Runtime (CPU): {exc}")
    from edge_reid.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(model_path, spec, max_batch=max_batch, threads=threads)
    backend.selection_reason = choice.reason
    return backend


__all__ = [
    "BACKEND_NAMES",
    "BackendChoice",
    "EmbeddingBackend",
    "choose_backend",
    "create_backend",
    "tensorrt_available",
]
