"""The interfaces every backend implements (ONNX Runtime, OpenVINO, TensorRT).

Modelled on NVIDIA polygraphy's split of loaders and runners: a backend is
built from a model path, owns preallocated arrays, and runs the model on them.
Two kinds of model run on a backend:

- :class:`EmbeddingBackend`: the ReID model, on the first ``n`` rows of its
  :class:`BatchBuffers` (dynamic batch).
- :class:`DetectorBackend`: the person detector, one fixed-shape image tensor in,
  one tensor out.
"""

from __future__ import annotations


from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_reid.batching import BatchBuffers
from edge_reid.closing import Closable
from edge_reid.errors import ModelError
from edge_reid.spec import ModelSpec


#: Precisions a backend may be asked to compute in (``--precision``).
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
#: Precisions the person detector may be asked to compute in (``--detector-precision``); no INT8
#: detector is made by this package.
DETECTOR_PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class BackendOptions:
    """Settings that some backends use and the others ignore.

    Attributes:
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"``, ``"int8"`` or None (the backend's
            default: FP32 on CPUs, the newest current engine on TensorRT). A backend that
            cannot compute in it refuses with the reason; none changes it silently.
        device: OpenVINO device, ``"CPU"`` (None: CPU), ``"GPU"`` (Intel GPU) or ``"NPU"``.
        engines_dir: TensorRT: folder of engines built by ``edge-reid build``.
        rebuild: TensorRT: build the engine when none is current.
        side_by_side: the model runs at the same time as another model on the CPU (the
            loop's detector beside its ReID model). When no thread count is given, ONNX
            Runtime, whose sessions each keep their own thread pool, then takes half the
            usable cores (:func:`edge_reid.cpu.threads_per_model`), so that the two pools do
            not fight over the cores; OpenVINO keeps every core: its models draw their threads
            from one process-wide pool (oneTBB), which shares the cores between them.
    """

    precision: str | None = None
    device: str | None = None
    engines_dir: str | Path = "engines"
    rebuild: bool = False
    side_by_side: bool = False

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")


class EmbeddingBackend(Closable, ABC):
    """Runs an embedding model over a preallocated batch buffer.

    Use: write up to :attr:`max_batch` preprocessed crops into
    ``backend.buffers.input[:n]``, call :meth:`infer` with ``n``, read the
    returned ``(n, D)`` view before the next call.
    """

    #: short backend name shown to users ("onnxruntime", "openvino", "tensorrt").
    name: str = "abstract"
    #: why :func:`edge_reid.backends.create_backend` picked this backend (one line, for ``--backend auto``).
    selection_reason: str = ""
    #: what the factory adds to that line (TensorRT: the engine file), or "".
    selection_detail: str = ""
    #: whether the model computes on this machine's CPU cores (False: a GPU or NPU), so that a
    #: detector running beside it must share the cores (:attr:`BackendOptions.side_by_side`).
    runs_on_cpu: bool = True

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
            ModelError: the runtime failed to run the model (the message names the model file).
        """

    def describe(self) -> str:
        """One line naming the backend and its device, for logs and summaries (also after :meth:`close`)."""
        return self.name

    def close(self) -> None:
        """Release sessions and device memory. Safe to call twice."""

    def _check_n(self, n: int) -> None:
        if not 1 <= n <= self.max_batch:
            raise ValueError(f"batch of {n} outside 1..{self.max_batch}")


def threads_label(threads: int) -> str:
    """``"1 thread"``, ``"2 threads"``: a thread count for ``describe()`` lines."""
    return f"{threads} thread{'s' if threads != 1 else ''}"


def first_line(exc: BaseException) -> str:
    """One informative line of a runtime's exception message, or its type name.

    Runtimes raise pages of C++ context: OpenVINO's start with ``Exception from <file>:<line>:`` and
    ``Check '...' failed at <file>`` lines, so the first line that is neither is taken.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    for line in lines:
        if not line.startswith(("Exception from ", "Check '")):
            return line
    return lines[0] if lines else type(exc).__name__


def check_embedding_output(model_path: str | Path, output_name: str, dims, spec: ModelSpec) -> None:
    """Refuse a model whose declared output is not ``(N, D)`` embeddings with the spec's D.

    Args:
        model_path: the model (named in the error).
        output_name: the embedding output's name.
        dims: its declared shape; unknown dimensions as None or strings (checked later by a real run).
        spec: the model's spec (gives D).

    Raises:
        ModelError: the rank is not 2 (a detector, say), or a fixed D differs from ``spec.embedding_dim``
            (the message gives the sidecar line that says the model's D).
    """
    dims = list(dims)
    width = dims[1] if len(dims) == 2 else None
    if len(dims) != 2:
        raise ModelError(
            f"{model_path}: output {output_name!r} has shape {tuple(dims)}, not (N, {spec.embedding_dim}) embeddings: "
            "is this a ReID model? (a person detector goes to --detector, or to PersonDetector in Python)"
        )
    if isinstance(width, int) and width != spec.embedding_dim:  # (N, D) of another D: a graph that did not declare it, say
        sidecar = Path(model_path).with_suffix(".json")
        raise ModelError(
            f"{model_path}: output {output_name!r} gives {width}-value embeddings, but the model's spec says "
            f"{spec.embedding_dim}: if {width} is right, write it in {sidecar}: " f'{{"embedding_dim": {width}}}'
            " (in Python, a ModelSpec with embedding_dim)"
        )


def detector_input_shape(model_path: str | Path, input_name: str, shape) -> tuple[int, int, int, int]:
    """The ``(1, 3, H, W)`` input shape of a detector model, from the shape its graph declares.

    Args:
        model_path: the model (named in errors).
        input_name: its input's name.
        shape: the declared shape; the batch dimension may be dynamic (it is run at 1),
            H and W must be fixed.

    Raises:
        ModelError: not a 4-D input with 3 channels and fixed H, W.
    """
    dims = list(shape)
    if len(dims) != 4 or not all(isinstance(d, int) and d > 0 for d in dims[1:]) or dims[1] != 3:
        raise ModelError(f"{model_path}: detector input {input_name!r} must be (1, 3, H, W) with fixed H, W; got {tuple(dims)}")
    return 1, 3, int(dims[2]), int(dims[3])


class DetectorBackend(Closable, ABC):
    """Runs a detector model: one fixed-shape image tensor in, one tensor out.

    Use: write the preprocessed image into :attr:`input`, call :meth:`run`, read
    the returned array before the next call. The model ran once at load, on the
    blank (all-zero) :attr:`input`, and :attr:`output` holds what it returned (the
    detector checks it): a model that cannot run is refused before any work starts.

    Attributes:
        model_path: the model file.
        input: (1, 3, H, W) float32, C-contiguous: the model input, written by the caller.
        output: the model output (YOLOX: (1, A, 5 + classes) float32), overwritten by each run.
    """

    name: str = "abstract"
    #: why :func:`edge_reid.backends.create_detector_backend` picked this backend (one line).
    selection_reason: str = ""
    #: what was rewritten in the model's graph at load (:mod:`edge_reid.backends.detector_graph`),
    #: e.g. ``("Focus stem as one strided conv", "input 320x416")``.
    graph_rewrites: tuple[str, ...] = ()

    def __init__(self, model_path: str | Path, input_shape: tuple[int, ...]) -> None:
        self.model_path = Path(model_path)
        self.input = np.zeros(input_shape, np.float32)
        self.output = np.zeros((0,), np.float32)

    @abstractmethod
    def run(self) -> np.ndarray:
        """Run the model on :attr:`input`; returns :attr:`output` (overwritten by the next call).

        Raises:
            ModelError: the runtime failed.
        """

    def describe(self) -> str:
        """One line naming the backend and its device (also after :meth:`close`)."""
        return self.name

    def close(self) -> None:
        """Release the runtime's session or compiled model. Safe to call twice."""
