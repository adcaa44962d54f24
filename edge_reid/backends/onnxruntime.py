"""ONNX Runtime backend: runs everywhere, and the reference every other backend is checked against.

Inputs and outputs are bound once per batch size with ONNX Runtime's IOBinding
to the backend's numpy buffers, so a call copies nothing in or out. Importing
this module does not import ``onnxruntime``: that happens when a session is made.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np

from edge_reid.backends.base import (
    BackendOptions,
    DetectorBackend,
    EmbeddingBackend,
    check_embedding_output,
    detector_input_shape,
    first_line,
    threads_label,
)
from edge_reid.backends.detector_graph import load_detector_graph
from edge_reid.batching import numpy_buffers
from edge_reid.cpu import quota_threads, threads_per_model
from edge_reid.errors import BackendUnavailableError, ModelError
from edge_reid.onnx_graph import is_qdq_model, model_precision
from edge_reid.spec import ModelSpec, embedding_output_name

#: ONNX Runtime graph optimisation levels, by the names of ``onnxruntime.GraphOptimizationLevel``.
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
#: The level of a session made without tuning, and the tie-breaker of tuning
#: (:mod:`edge_reid.backends.onnxruntime_tuning`). ONNX Runtime's own default is ``all``.
DEFAULT_OPTIMIZATION_LEVEL = "extended"
#: Batch at which an embedding model's level is tuned (a typical crowded frame; the timing uses its own arrays).
TUNING_BATCH = 8


def availability() -> tuple[bool, str]:
    """(True, "ONNX Runtime X (CPU)") when the ``onnxruntime`` package is installed, else (False, why).

    Reads the installed version without importing ``onnxruntime``.
    """
    try:
        return True, f"ONNX Runtime {metadata.version('onnxruntime')} (CPU)"
    except metadata.PackageNotFoundError:
        return False, "the onnxruntime package is not installed (pip install onnxruntime)"


def create_session(
    model_path: str | Path,
    threads: int | None = None,
    providers: list[str] | None = None,
    *,
    optimization_level: str = DEFAULT_OPTIMIZATION_LEVEL,
    stop_spinning_after_run: bool = True,
    model: bytes | None = None,
):
    """An ``onnxruntime.InferenceSession`` for a model, with a clear error for bad files.

    Q/DQ (INT8) models run with ONNX Runtime's Q/DQ-to-integer-kernel fusion off,
    i.e. with the exact arithmetic their graph specifies (what TensorRT computes):
    on x86 CPUs without VNNI the fused u8s8 kernels saturate 16-bit partial sums
    and change results by far more than the quantization itself, so ONNX Runtime
    runs Q/DQ models as the reference (docs/calibration.md has the measurements).

    With ``stop_spinning_after_run`` the intra-op threads stop spinning when a run
    returns (``session.force_spinning_stop``, ONNX Runtime PR #11841). By default
    they busy-wait for the next run, and in our loop the next thing to run is our
    own code (matching, preprocessing), whose core the spinning thread would take
    (``benchmarks/loop_spinning.py`` compares both). Spinning inside a run, between
    its operators, is kept.

    Args:
        model_path: the ``.onnx`` file.
        threads: intra-op threads (None: ONNX Runtime's default, one per physical core, which ignores a CPU quota).
        providers: execution providers (default ``["CPUExecutionProvider"]``).
        optimization_level: one of :data:`OPTIMIZATION_LEVELS`.
        stop_spinning_after_run: stop the intra-op threads spinning between runs.
        model: the serialised model to load instead of the file's bytes (an exact rewrite of
            it, see :mod:`edge_reid.backends.detector_graph`); ``model_path`` still names it.

    Raises:
        ModelError: the file is missing or ONNX Runtime cannot load it.
        ValueError: unknown ``optimization_level``.
        BackendUnavailableError: onnxruntime is not installed.
    """
    if optimization_level not in OPTIMIZATION_LEVELS:
        raise ValueError(f"unknown optimization level {optimization_level!r}; choose one of {', '.join(OPTIMIZATION_LEVELS)}")
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailableError(f"ONNX Runtime cannot be imported: {exc}") from None

    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    options = ort.SessionOptions()
    # Fatal only: every error ONNX Runtime meets is also raised, and edge-reid reports it in one line
    # (at "error" its C++ log printed the same failure again, raw, before that line).
    options.log_severity_level = 4
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, "ORT_DISABLE_ALL" if optimization_level == "disable" else f"ORT_ENABLE_{optimization_level.upper()}"
    )
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if stop_spinning_after_run:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    if is_qdq_model(path):
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return ort.InferenceSession(model if model is not None else str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ModelError(f"{path}: ONNX Runtime cannot load this model: {first_line(exc)}") from None


def _session(
    model_path, threads: int | None, level: str | None, batch: int, graph_label: str = "", image_size: tuple[int, int] | None = None,
    **options,
):
    """(session, :class:`~edge_reid.backends.onnxruntime_tuning.TuningResult`) at ``level``, or tuned when None
    (``graph_label``: the rewrite of the file's graph that ``options["model"]`` holds, part of the tuning key;
    ``image_size``: (height, width) the model runs at, its input timed at that size). ``threads`` None under a
    CPU quota: the quota's cores (:func:`edge_reid.cpu.quota_threads`; ONNX Runtime counts cores, not the quota)."""
    from edge_reid.backends.onnxruntime_tuning import TuningResult, tuned_session

    threads = threads or quota_threads()
    if level is not None:
        return create_session(model_path, threads, optimization_level=level, **options), TuningResult(level, "default", {})
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return tuned_session(
        path, threads, batch, lambda candidate: create_session(path, threads, optimization_level=candidate, **options),
        DEFAULT_OPTIMIZATION_LEVEL, graph=graph_label, image_size=image_size,
    )


def _describe_session(session) -> str:
    """``onnxruntime (CPU, 2 threads)``: providers and intra-op threads (0 in the options: ONNX Runtime's default)."""
    providers = ",".join(p.replace("ExecutionProvider", "") for p in session.get_providers())
    threads = session.get_session_options().intra_op_num_threads
    return f"onnxruntime ({providers}, {threads_label(threads) if threads else 'its default threads'})"


class OnnxRuntimeBackend(EmbeddingBackend):
    """Embedding model on ONNX Runtime (CPU by default).

    Args:
        model_path: the ``.onnx`` file.
        spec: its :class:`ModelSpec`.
        max_batch: rows of the batch buffer; lowered to the model's batch size
            when the model fixes one.
        threads: intra-op threads (None: ONNX Runtime's default).
        providers: ONNX Runtime execution providers.
        optimization_level: graph optimisation level, one of :data:`OPTIMIZATION_LEVELS`, or None:
            the level measured fastest for this model on this machine
            (:func:`~edge_reid.backends.onnxruntime_tuning.tuned_session`, cached on disk).
        stop_spinning_after_run: see :func:`create_session`.

    Raises:
        ModelError: the model cannot be loaded, or its input/output names
            disagree with the spec.
    """

    name = "onnxruntime"

    def __init__(
        self,
        model_path: str | Path,
        spec: ModelSpec,
        max_batch: int = 32,
        threads: int | None = None,
        providers: list[str] | None = None,
        *,
        optimization_level: str | None = None,
        stop_spinning_after_run: bool = True,
    ) -> None:
        self.model_path = Path(model_path)
        self.session, self.tuning = _session(
            model_path, threads, optimization_level, TUNING_BATCH, image_size=(spec.height, spec.width), providers=providers,
            stop_spinning_after_run=stop_spinning_after_run,
        )
        inputs = {i.name: i for i in self.session.get_inputs()}
        if spec.input_name not in inputs:
            raise ModelError(f"{model_path}: no input named {spec.input_name!r} (inputs: {sorted(inputs)})")
        outputs = {o.name: o for o in self.session.get_outputs()}
        self.output_name = embedding_output_name(model_path, spec, list(outputs))
        check_embedding_output(model_path, self.output_name, outputs[self.output_name].shape, spec)
        fixed_batch = inputs[spec.input_name].shape[0]
        if isinstance(fixed_batch, int) and fixed_batch > 0:
            max_batch = fixed_batch
        super().__init__(spec, numpy_buffers(spec, max_batch))
        self._fixed_batch = fixed_batch if isinstance(fixed_batch, int) and fixed_batch > 0 else None
        self._bindings: dict[int, object] = {}

    def _binding(self, n: int):
        binding = self._bindings.get(n)
        if binding is None:
            spec, buffers = self.spec, self.buffers
            binding = self.session.io_binding()
            binding.bind_input(
                spec.input_name, "cpu", 0, np.float32, [n, 3, spec.height, spec.width], buffers.input.ctypes.data
            )
            binding.bind_output(self.output_name, "cpu", 0, np.float32, [n, spec.embedding_dim], buffers.output.ctypes.data)
            self._bindings[n] = binding
        return binding

    def infer(self, n: int) -> np.ndarray:
        """Run the model on ``buffers.input[:n]``; see :meth:`EmbeddingBackend.infer`."""
        self._check_n(n)
        if self._fixed_batch is not None:
            n_run = self._fixed_batch  # a fixed-batch model always runs its full batch
        else:
            n_run = n
        try:
            self.session.run_with_iobinding(self._binding(n_run))
        except Exception as exc:
            raise ModelError(f"{self.model_path}: inference failed: {first_line(exc)}") from None
        return self.buffers.output[:n]

    def describe(self) -> str:
        return f"{_describe_session(self.session)}, {self.tuning.describe()}"

    def close(self) -> None:
        self._bindings.clear()


class OnnxRuntimeDetector(DetectorBackend):
    """A detector model on ONNX Runtime, its input and output bound to preallocated arrays.

    Args:
        model_path: the ``.onnx`` file (one image input (1, 3, H, W) with fixed H, W).
        threads: intra-op threads (None: ONNX Runtime's default).
        optimization_level: graph optimisation level, one of :data:`OPTIMIZATION_LEVELS`, or None
            (tuned, as :class:`OnnxRuntimeBackend`).
        input_size: (height, width) to run the model at instead of its file's size (see
            :func:`~edge_reid.backends.detector_graph.load_detector_graph`).

    Raises:
        ModelError: the model is missing, cannot be loaded, its input is not an
            image tensor of fixed size, or its first run fails.
    """

    name = "onnxruntime"

    def __init__(
        self, model_path: str | Path, threads: int | None = None, *, optimization_level: str | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        graph = load_detector_graph(model_path, input_size)
        self.graph_rewrites = graph.rewrites
        self.session, self.tuning = _session(model_path, threads, optimization_level, 1, graph.label, model=graph.model)
        model_input = self.session.get_inputs()[0]
        super().__init__(model_path, detector_input_shape(model_path, model_input.name, model_input.shape))
        self.input_name = model_input.name
        self.output_name = self.session.get_outputs()[0].name
        try:
            self.output = self.session.run([self.output_name], {self.input_name: self.input})[0]
        except Exception as exc:
            raise ModelError(f"{self.model_path}: inference failed: {first_line(exc)}") from None
        if self.output.dtype != np.float32:
            raise ModelError(f"{self.model_path}: detector output is {self.output.dtype}, expected float32")
        self._binding = self.session.io_binding()
        self._binding.bind_input(self.input_name, "cpu", 0, np.float32, list(self.input.shape), self.input.ctypes.data)
        self._binding.bind_output(self.output_name, "cpu", 0, np.float32, list(self.output.shape), self.output.ctypes.data)

    def run(self) -> np.ndarray:
        """Run the model on :attr:`input`; see :meth:`DetectorBackend.run`."""
        try:
            self.session.run_with_iobinding(self._binding)
        except Exception as exc:
            raise ModelError(f"{self.model_path}: inference failed: {first_line(exc)}") from None
        return self.output

    def describe(self) -> str:
        return ", ".join((_describe_session(self.session), self.tuning.describe(), *self.graph_rewrites))


def open_embedding_backend(
    model_path: str | Path, spec: ModelSpec, max_batch: int, threads: int | None, options: BackendOptions
) -> OnnxRuntimeBackend:
    """The registry's factory: :class:`OnnxRuntimeBackend` for a model.

    ONNX Runtime runs the model file's own precision; ``options.precision`` may only be
    None, ``"fp32"``, or ``"int8"`` for a Q/DQ model (FP16 and INT8 models come from
    ``edge-reid calibrate``).

    Raises:
        BackendUnavailableError: another ``precision`` was asked for.
        ModelError: the model cannot be loaded.
    """
    actual = model_precision(model_path) if options.precision is not None else None
    if options.precision not in (None, actual):
        if actual != "fp32":
            raise BackendUnavailableError(
                f"{model_path} is an {actual.upper()} model, not {options.precision.upper()}: ONNX Runtime runs the model "
                f"file's own precision; give {actual} or leave the precision out (--precision, or "
                "backend_options={'precision': ...} in Python)"
            )
        raise BackendUnavailableError(
            f"ONNX Runtime runs the model file's own precision, not {options.precision} (--precision, or "
            "backend_options={'precision': ...} in Python): use the openvino backend for bf16/fp16 on a CPU, or a model "
            "made by `edge-reid calibrate`"
        )
    return OnnxRuntimeBackend(model_path, spec, max_batch=max_batch, threads=_threads(threads, options))


def open_detector_backend(
    model_path: str | Path, threads: int | None, options: BackendOptions, input_size: tuple[int, int] | None = None
) -> OnnxRuntimeDetector:
    """The registry's factory: :class:`OnnxRuntimeDetector` for a detector model, in FP32.

    Raises:
        BackendUnavailableError: ``options.precision`` is not None or ``"fp32"``.
        ModelError: the model cannot be loaded.
    """
    if options.precision not in (None, "fp32"):
        raise BackendUnavailableError(
            f"ONNX Runtime runs the detector in fp32 only, not {options.precision} (--detector-precision, or "
            f"PersonDetector(precision=) in Python): use the openvino backend on a CPU that has {options.precision}, or fp32"
        )
    return OnnxRuntimeDetector(model_path, threads=_threads(threads, options), input_size=input_size)


def _threads(threads: int | None, options: BackendOptions) -> int | None:
    """``threads``, or half the usable cores for a model running beside another (see :class:`BackendOptions`)."""
    if threads:
        return threads
    return threads_per_model() if options.side_by_side else None
