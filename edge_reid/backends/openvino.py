"""OpenVINO backend: Intel's runtime for x86 CPUs (AVX2, AVX-512, VNNI, AMX), Intel GPUs and NPUs.

The model is read from the same ONNX file as on ONNX Runtime and compiled for a
device (``CPU`` by default). Input and output are OpenVINO tensors built on the
backend's numpy buffers (``ov.Tensor(array, shared_memory=True)``), so a call
copies nothing in or out.

Static shapes: OpenVINO's CPU plugin runs a model compiled for one batch size
faster than the same model compiled with a dynamic batch (it plans kernels and
memory for known shapes; docs/benchmarks.md measures the difference), much as
TensorRT builds for an optimization profile. A model whose batch is dynamic is
therefore compiled twice: for batch 1 on all the backend's threads (OpenVINO's
latency mode), and for batch ``STATIC_CHUNK`` as several streams (OpenVINO's
throughput mode: each stream runs its own request on its share of the threads;
one stream per thread, but no more streams than a full batch has chunks, see
:func:`stream_count`).
A call of ``n`` rows runs whole chunks of ``STATIC_CHUNK`` rows side by side on
the streams, as many rounds as keep every stream busy; a last round too short to
fill the streams runs its chunks in latency mode on every thread (a third
compilation, made only where there are several streams); the rest runs one row
at a time on every thread. Each request is bound to its own slice of the same
buffers: no padding, no copies. So a single crop (the common case in ``run``)
keeps every thread, and a large batch (``eval``, ``gallery``) keeps every core
busy without the synchronisation cost of splitting one small image over threads.
The cost is the extra compiled models (each its own copy of the weights).

Precision is always explicit: OpenVINO's CPU plugin computes in bf16 by default
on CPUs with AMX or AVX512-BF16, a silent change of arithmetic; here
``INFERENCE_PRECISION_HINT`` is f32 unless bf16 or fp16 is asked for, and a
device that cannot do what was asked refuses. A Q/DQ (INT8) model from
``edge-reid calibrate`` runs on OpenVINO's integer kernels (its low-precision
transformations turn Q/DQ pairs around convolutions into INT8 convolutions).

Compiled models are cached (OpenVINO's model caching, ``CACHE_DIR``) in ``openvino/`` of
edge-reid's cache folder (:func:`edge_reid.cache_folder.cache_dir`): a later start with the same
model, device, settings and OpenVINO version loads the compiled model instead of compiling it
again (OpenVINO keys the cache by all of these). Where that folder cannot be written the models
are compiled every time (:func:`~edge_reid.cache_folder.warn_uncached` says so once).

Importing this module does not import ``openvino``; creating a backend does.
"""

from __future__ import annotations

import functools
import platform
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from edge_reid.backends.base import (
    DETECTOR_PRECISIONS,
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
from edge_reid.cache_folder import warn_uncached, writable_cache_folder
from edge_reid.cpu import quota_threads
from edge_reid.errors import BackendUnavailableError, ModelError
from edge_reid.spec import ModelSpec, embedding_output_name

#: ``--precision`` -> OpenVINO's ``INFERENCE_PRECISION_HINT`` and the device capability it needs.
PRECISION_HINTS = {"fp32": ("f32", "FP32"), "bf16": ("bf16", "BF16"), "fp16": ("f16", "FP16"), "int8": ("f32", "INT8")}
X86_64 = ("x86_64", "amd64")
#: Rows per call of the throughput compilation (one stream, one thread): one thread's images/s of
#: a ReID net level off from about 4 rows (docs/benchmarks.md), and a small chunk leaves fewer rows
#: of a call to the batch-1 model.
STATIC_CHUNK = 4


#: x86 instructions that add 8-bit products up in 32 bits (Intel DL Boost: VNNI, and AMX).
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_saturation(flags: list[str], machine: str | None = None) -> str:
    """Why OpenVINO's CPU kernels cannot run a Q/DQ INT8 model correctly on an x86 CPU with these
    :func:`~edge_reid.cpu.cpu_isa_flags`, or "" when they can (or the flags are unknown).

    Without VNNI or AMX, 8-bit convolutions add pairs of products into 16 bits, which saturate: OpenVINO's
    documentation ("Saturation (overflow) issue") says accuracy then drops unpredictably and that the
    problem does not occur on CPUs with VNNI. Measured in docs/benchmarks.md.

    Other CPUs (``machine``, default ``platform.machine()``): "". On Arm, OpenVINO runs quantized models in
    floating point (its CPU device documentation: "Arm platforms execute quantized models in simulation mode";
    its 8-bit types are x86-64 only), so nothing saturates, and nothing is faster than the FP32 model either
    (docs/jetson.md, "The Jetson's CPU").
    """
    machine = (machine or platform.machine()).lower()
    if machine not in X86_64 or not flags or any(flag in flags for flag in VNNI_FLAGS):
        return ""
    return (
        "this CPU has no VNNI or AMX, so OpenVINO's 8-bit kernels add products up in 16 bits, which saturate "
        "(OpenVINO's 'saturation issue'): INT8 embeddings drift far from FP32. Run the INT8 model with the "
        "onnxruntime backend, or the FP32 model on OpenVINO (--backend and --model, or backend= and model_path= in Python)"
    )


def availability() -> tuple[bool, str]:
    """(True, "OpenVINO X") when the ``openvino`` package is installed, else (False, why); imports nothing."""
    try:
        return True, f"OpenVINO {metadata.version('openvino')}"
    except metadata.PackageNotFoundError:
        return False, "the openvino package is not installed (pip install openvino)"


def auto_availability() -> tuple[bool, str]:
    """Whether ``--backend auto`` should use OpenVINO: installed, and an x86-64 CPU (where its kernels are Intel's own)."""
    ok, detail = availability()
    if ok and platform.machine().lower() not in X86_64:
        return False, f"{detail} is installed, but auto uses it only on x86-64 CPUs (this is {platform.machine()})"
    return ok, detail


def import_openvino():
    """The ``openvino`` module.

    Raises:
        BackendUnavailableError: not installed or broken, with the install command; or, with no home
            folder (``HOME`` unset and a user id without a passwd entry), what to set: OpenVINO's
            import reads the home folder (2026.4: its telemetry) and fails without one.
    """
    try:
        import openvino
    except ImportError as exc:
        raise BackendUnavailableError(f"OpenVINO cannot be imported ({exc}); install it with: pip install openvino") from None
    except RuntimeError as exc:
        from edge_reid.cache_folder import cache_dir

        hint = "; set HOME (e.g. HOME=/tmp) for it" if cache_dir() is None else ""
        raise BackendUnavailableError(f"OpenVINO cannot be imported ({exc}){hint}") from None
    return openvino


@functools.lru_cache(maxsize=1)
def _core():
    return import_openvino().Core()


def _check_device(device: str) -> str:
    available = list(_core().available_devices)
    if not any(name == device or name.split(".")[0] == device for name in available):
        raise BackendUnavailableError(f"OpenVINO has no {device} device here (devices: {', '.join(available) or 'none'})")
    return device


def _threads_note(compiled) -> str:
    """``", 2 threads"`` for a model compiled for the CPU, else ""."""
    try:
        threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))
    except Exception:  # devices other than the CPU have no such property
        return ""
    return f", {threads_label(threads)}" if threads > 0 else ""


def _read_model(model_path: str | Path, model: bytes | None = None):
    """The file's model, or ``model`` (a serialised rewrite of it) named by the file in errors."""
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        return _core().read_model(model if model is not None else str(path))
    except Exception as exc:
        raise ModelError(f"{path}: OpenVINO cannot read this model: {first_line(exc)}") from None


#: What to do when an embedding model cannot take the batches the backend compiles it for.
BATCH_RESHAPE_HINT = (
    "the graph likely fixes its batch inside although its input's batch is dynamic: export it with a batch that works "
    "throughout (e.g. torch.onnx.export(..., dynamic_axes={input: {0: 'batch'}, output: {0: 'batch'}})), or with the "
    "batch fixed in its input shape too"
)


def _reshape(model, model_path: Path, name: str, shape: list[int], hint: str) -> None:
    """``model.reshape`` of input ``name`` to ``shape``, its failure a :class:`ModelError` naming the file,
    the shape and ``hint`` (what to do). A graph that fixes the batch inside (a Reshape to ``[1, ...]``,
    say) behind an input whose batch is dynamic cannot take another batch.
    """
    try:
        model.reshape({name: list(shape)})
    except Exception as exc:
        raise ModelError(
            f"{model_path}: OpenVINO cannot reshape input {name!r} to {list(shape)}: {first_line(exc).rstrip(':')}; {hint}"
        ) from None


def stream_count(threads: int, max_batch: int, chunk_rows: int = STATIC_CHUNK) -> int:
    """Streams for the chunk model: one per thread, but no more than the chunks of a full batch
    (``max_batch // chunk_rows``, so a full batch fills at least one round), at least 1.

    E.g. 2 threads, batch 8: 2 streams of one thread; 16 threads, batch 32: 8 streams of 2 threads.
    """
    return max(1, min(threads, max_batch // chunk_rows))


def precision_unavailable(precision: str, device: str = "CPU") -> str:
    """Why OpenVINO's ``device`` here cannot compute in ``precision`` (one line), or "" when it can
    (the device lists it in ``OPTIMIZATION_CAPABILITIES``).

    Args:
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"int8"`` (:data:`PRECISION_HINTS`).
        device: an OpenVINO device name (``CPU``, ``GPU``, ``NPU``).

    Raises:
        BackendUnavailableError: OpenVINO is not installed.
    """
    capability = PRECISION_HINTS[precision][1]
    capabilities = list(_core().get_property(device, "OPTIMIZATION_CAPABILITIES"))
    if capability in capabilities:
        return ""
    return f"OpenVINO's {device} device here cannot compute in {capability} (it offers {', '.join(capabilities)})"


def _compile(
    model, model_path: Path, device: str, threads: int | None, precision: str, streams: int = 0, option: str = "--precision"
):
    """Compile ``model`` for ``device`` in ``precision``; refuse a precision the device lacks, and check it was applied.

    ``streams`` > 0 (CPU only): OpenVINO's throughput mode with that many streams sharing
    ``threads`` threads; otherwise its latency mode on ``threads`` threads (None: every core, or a CPU quota's cores:
    :func:`edge_reid.cpu.quota_threads`).
    ``option``: the command-line option that chose ``precision``, named in the refusal.
    """
    if why := precision_unavailable(precision, device):
        raise BackendUnavailableError(f"{option} {precision}: {why}; use {option} fp32")
    hint = PRECISION_HINTS[precision][0]
    config: dict = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    if device == "CPU":
        # The two models and our own threads share the cores: let the OS place threads rather than
        # pinning each model's threads to cores another model also pins to.
        config["ENABLE_CPU_PINNING"] = False
        if streams:
            config.update(PERFORMANCE_HINT="THROUGHPUT", NUM_STREAMS=int(streams))
        threads = threads or quota_threads()  # OpenVINO counts cores, not a `docker --cpus` quota
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
    cache = writable_cache_folder("openvino")
    if cache is not None:
        config["CACHE_DIR"] = str(cache)
    else:
        warn_uncached("OpenVINO model cache")
    try:
        compiled = _core().compile_model(model, device, config)
    except Exception as exc:
        raise ModelError(f"{model_path}: OpenVINO cannot compile this model for {device}: {first_line(exc)}") from None
    applied = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    if applied != hint:
        raise BackendUnavailableError(f"OpenVINO's {device} device computes in {applied}, not the {hint} asked for")
    return compiled


def _static_dims(partial_shape) -> list[int | None]:
    return [d.get_length() if d.is_static else None for d in partial_shape]


def kernel_precisions(compiled) -> Counter:
    """How many convolutions of a compiled model run kernels of each precision (e.g. ``{"i8": 180, "f32": 7}``).

    Read from the runtime (executed) graph: the suffix of each convolution's kernel name
    (``primitiveType``, e.g. ``brgconv_avx512_1x1_bf16``). Shows what really computes, e.g.
    whether a Q/DQ model runs on integer kernels.
    """
    counts: Counter = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) == "Convolution":
            counts[info["primitiveType"].astype(str).rsplit("_", 1)[-1]] += 1
    return counts


@dataclass(frozen=True)
class _StaticModel:
    """A model compiled for one batch size, with its input and output ports."""

    compiled: object
    input_port: object
    output_port: object
    rows: int
    requests: tuple  # one per stream (one in latency mode)


class OpenVinoBackend(EmbeddingBackend):
    """Embedding model on OpenVINO, any batch up to ``max_batch``, zero-copy input and output.

    A model with a dynamic batch is compiled for batch 1 (latency mode, all ``threads``) and for
    batch :data:`STATIC_CHUNK` (:func:`stream_count` streams, and latency mode where there are
    several streams), see the module's docstring; a model whose
    file fixes the batch runs that batch, rows past ``n`` ignored.

    Args:
        model_path: the ``.onnx`` file (FP32, or a Q/DQ INT8 model from ``edge-reid calibrate``).
        spec: its :class:`ModelSpec`.
        max_batch: rows of the batch buffer; the model's batch size when it fixes one.
        threads: CPU inference threads (None: OpenVINO's default, every core).
        precision: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"`` (inference precision of the
            float layers), or ``"int8"`` (a Q/DQ model; float layers in f32).
        device: ``"CPU"``, ``"GPU"`` (Intel GPU) or ``"NPU"``.

    Raises:
        BackendUnavailableError: OpenVINO missing, the device absent, the precision not
            available on it, or INT8 on an x86 CPU without VNNI/AMX (:func:`int8_saturation`).
        ModelError: the model cannot be read, reshaped to the batches it runs or compiled, its input/output names or input size
            disagree with the spec, or ``precision`` is int8 and the model is not a Q/DQ model.
    """

    name = "openvino"

    def __init__(
        self,
        model_path: str | Path,
        spec: ModelSpec,
        max_batch: int = 32,
        threads: int | None = None,
        *,
        precision: str = "fp32",
        device: str = "CPU",
    ) -> None:
        self._ov = import_openvino()
        self.model_path = Path(model_path)
        self.device = _check_device(device)
        self.runs_on_cpu = self.device.split(".")[0] == "CPU"
        self.precision = precision
        if precision == "int8":
            from edge_reid.onnx_graph import is_qdq_model

            if not is_qdq_model(self.model_path):
                raise ModelError(
                    f"{self.model_path} is not an INT8 (Q/DQ) model, so precision int8 cannot run it: make one first with "
                    "`edge-reid calibrate`, then give the model it writes (--model, or model_path= in Python)"
                )
            if self.runs_on_cpu:
                from edge_reid.cpu import cpu_isa_flags

                saturation = int8_saturation(cpu_isa_flags())
                if saturation:
                    raise BackendUnavailableError(f"OpenVINO cannot run {self.model_path.name} in INT8 here: {saturation}")
        model = _read_model(self.model_path)
        model_input = next((port for port in model.inputs if spec.input_name in port.get_names()), None)
        if model_input is None:
            names = sorted(name for port in model.inputs for name in port.get_names())
            raise ModelError(f"{model_path}: no input named {spec.input_name!r} (inputs: {names})")
        output_names = [sorted(port.get_names())[0] if port.get_names() else "" for port in model.outputs]
        self.output_name = embedding_output_name(model_path, spec, output_names)
        output_port = model.outputs[output_names.index(self.output_name)]
        check_embedding_output(model_path, self.output_name, _static_dims(output_port.get_partial_shape()), spec)
        dims = _static_dims(model_input.get_partial_shape())
        if len(dims) != 4 or any(d is not None and d != want for d, want in zip(dims[1:], (3, spec.height, spec.width))):
            raise ModelError(f"{model_path}: input {spec.input_name!r} {dims} does not take (N, 3, {spec.height}, {spec.width}) crops")
        self._fixed_batch = dims[0]
        if self._fixed_batch is not None:
            max_batch = self._fixed_batch
        super().__init__(spec, numpy_buffers(spec, max_batch))

        def compiled_for(rows: int, threads: int | None, streams: int = 0) -> _StaticModel:
            sized = model.clone()
            _reshape(sized, self.model_path, spec.input_name, [rows, 3, spec.height, spec.width], f"batch {rows}: {BATCH_RESHAPE_HINT}")
            compiled = _compile(sized, self.model_path, self.device, threads, precision, streams)
            requests = tuple(compiled.create_infer_request() for _ in range(max(streams, 1)))
            return _StaticModel(compiled, compiled.input(spec.input_name), compiled.output(self.output_name), rows, requests)

        #: single rows (or the file's fixed batch), latency mode on every thread.
        self._single = compiled_for(self._fixed_batch or 1, threads)
        #: chunks of STATIC_CHUNK rows, one request per stream (throughput mode), and, where there are
        #: several streams, the same chunk in latency mode for a last round too short to fill them.
        self._chunks = self._last_chunks = None
        if self._fixed_batch is None and max_batch > 1:
            rows = min(STATIC_CHUNK, max_batch)
            streams, used_threads = 0, threads
            if self.runs_on_cpu:
                used_threads = int(self._single.compiled.get_property("INFERENCE_NUM_THREADS"))
                streams = stream_count(used_threads, max_batch, rows)
            self._chunks = compiled_for(rows, used_threads, streams)
            if streams > 1:
                self._last_chunks = compiled_for(rows, used_threads)
        self._tensors: dict[tuple[int, int], tuple] = {}  # (rows, offset) -> OpenVINO tensors on those buffer rows
        self._bound: dict[int, tuple[int, int]] = {}  # id(request) -> (rows, offset) its tensors are bound to

    def _models(self) -> list["_StaticModel"]:
        return [model for model in (self._chunks, self._last_chunks, self._single) if model is not None]

    @property
    def compiled(self):
        """The compiled model that runs most rows of a large batch (what :func:`kernel_precisions` inspects)."""
        return self._models()[0].compiled

    @property
    def static_batches(self) -> tuple[int, ...]:
        """The batch sizes compiled, largest first, e.g. ``(4, 1)``."""
        return tuple(sorted({model.rows for model in self._models()}, reverse=True))

    @property
    def streams(self) -> int:
        """Requests that run chunks side by side (:func:`stream_count` on the CPU; 0 without a chunk model)."""
        return len(self._chunks.requests) if self._chunks else 0

    def _plan(self, n: int) -> list[tuple["_StaticModel", list[int]]]:
        """Which model runs which rows: (model, first row of each of its calls), covering rows ``0..n-1``.

        Whole rounds of chunks on the streams (one chunk per stream, so none idles while another
        works), then a last short round of chunks in latency mode on every thread, then single rows.
        """
        if self._chunks is None:
            return [(self._single, [0] if self._fixed_batch else list(range(n)))]
        rows = self._chunks.rows
        chunks = n // rows
        rounds = chunks - chunks % self.streams
        plan = [
            (self._chunks, [k * rows for k in range(rounds)]),
            (self._last_chunks, [k * rows for k in range(rounds, chunks)]),  # empty with one stream
            (self._single, list(range(chunks * rows, n))),
        ]
        return [(model, offsets) for model, offsets in plan if offsets]

    def _bind(self, request, model: "_StaticModel", offset: int) -> None:
        """Point ``request`` at buffer rows ``offset .. offset + model.rows`` (tensors made once per slice)."""
        key = (model.rows, offset)
        if self._bound.get(id(request)) == key:
            return
        if key not in self._tensors:
            ov, end = self._ov, offset + model.rows
            self._tensors[key] = (
                ov.Tensor(self.buffers.input[offset:end], shared_memory=True),
                ov.Tensor(self.buffers.output[offset:end], shared_memory=True),
            )
        try:
            request.set_tensor(model.input_port, self._tensors[key][0])
            request.set_tensor(model.output_port, self._tensors[key][1])
        except Exception as exc:
            raise ModelError(f"{self.model_path}: OpenVINO refused the batch buffers: {first_line(exc)}") from None
        self._bound[id(request)] = key

    def _run(self, model: "_StaticModel", offsets: list[int]) -> None:
        """One call of ``model`` per offset, spread round-robin over its requests (several run at once)."""
        requests = model.requests
        running = set()
        try:
            for k, offset in enumerate(offsets):
                request = requests[k % len(requests)]
                if id(request) in running:
                    request.wait()
                self._bind(request, model, offset)
                request.start_async()
                running.add(id(request))
        finally:
            for request in requests:
                if id(request) in running:
                    request.wait()  # never leave a request writing into the buffers after we return

    def infer(self, n: int) -> np.ndarray:
        """Run the model on ``buffers.input[:n]``; see :meth:`EmbeddingBackend.infer`."""
        self._check_n(n)
        try:
            for model, offsets in self._plan(n):
                self._run(model, offsets)
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"{self.model_path}: inference failed: {first_line(exc)}") from None
        return self.buffers.output[:n]

    def shares_buffers(self) -> bool:
        """True when every request's input and output tensors are views of the backend's buffers (no copies)."""
        for model in self._models():
            for request in model.requests:
                if id(request) not in self._bound:
                    self._bind(request, model, 0)
                if not (
                    np.shares_memory(request.get_tensor(model.input_port).data, self.buffers.input)
                    and np.shares_memory(request.get_tensor(model.output_port).data, self.buffers.output)
                ):
                    return False
        return True

    def describe(self) -> str:
        if self._single is None:  # closed: the line it gave while open
            return self._description_when_closed
        label = "int8 Q/DQ, float layers f32" if self.precision == "int8" else self.precision
        return f"openvino {self._ov.__version__.split('-')[0]} {self.device} {label}{_threads_note(self._single.compiled)}"

    def close(self) -> None:
        if self._single is not None:
            self._description_when_closed = self.describe()
        self._single = self._chunks = self._last_chunks = None
        self._tensors, self._bound = {}, {}


class OpenVinoDetector(DetectorBackend):
    """A detector model on OpenVINO, input and output tensors on preallocated arrays.

    Args:
        model_path: the ``.onnx`` file (one image input (1, 3, H, W) with fixed H, W).
        threads: CPU inference threads (None: OpenVINO's default).
        device: ``"CPU"``, ``"GPU"`` or ``"NPU"``.
        input_size: (height, width) to run the model at instead of its file's size (see
            :func:`~edge_reid.backends.detector_graph.load_detector_graph`).
        precision: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"`` (OpenVINO's inference
            precision, ``--detector-precision``). Reduced precision moves boxes and scores
            slightly (docs/benchmarks.md measures what it costs the tracking).

    Raises:
        BackendUnavailableError: OpenVINO or the device missing, or the device cannot compute
            in ``precision``.
        ModelError: the model cannot be read, reshaped to its input size, compiled or run, or its input is not an
            image tensor of fixed size.
    """

    name = "openvino"

    def __init__(
        self, model_path: str | Path, threads: int | None = None, *, device: str = "CPU", input_size: tuple[int, int] | None = None,
        precision: str = "fp32",
    ) -> None:
        if precision not in DETECTOR_PRECISIONS:
            raise ValueError(f"unknown detector precision {precision!r}; choose one of {', '.join(DETECTOR_PRECISIONS)}")
        ov = import_openvino()
        self.device = _check_device(device)
        graph = load_detector_graph(model_path, input_size)
        self.graph_rewrites = graph.rewrites
        model = _read_model(model_path, graph.model)
        model_input = model.inputs[0]
        name = model_input.get_any_name()
        shape = detector_input_shape(model_path, name, _static_dims(model_input.get_partial_shape()))
        _reshape(model, Path(model_path), name, list(shape), "run it at its file's input size (no --detector-size), or export it with a dynamic H and W")
        super().__init__(model_path, shape)
        self.precision = precision
        self.compiled = _compile(model, self.model_path, self.device, threads, precision, option="--detector-precision")
        self._request = self.compiled.create_infer_request()
        self._request.set_input_tensor(ov.Tensor(self.input, shared_memory=True))
        try:
            self._request.infer()
        except Exception as exc:
            raise ModelError(f"{self.model_path}: inference failed: {first_line(exc)}") from None
        # The run at load's output kept (as ONNX Runtime's backend keeps it): the detector checks it.
        self.output = np.array(self._request.get_output_tensor().data, np.float32, copy=True, order="C")
        self._request.set_output_tensor(ov.Tensor(self.output, shared_memory=True))
        self._version = ov.__version__.split("-")[0]

    def run(self) -> np.ndarray:
        """Run the model on :attr:`input`; see :meth:`DetectorBackend.run`."""
        try:
            self._request.infer()
        except Exception as exc:
            raise ModelError(f"{self.model_path}: inference failed: {first_line(exc)}") from None
        return self.output

    def describe(self) -> str:
        if self.compiled is None:  # closed: the line it gave while open
            return self._description_when_closed
        return ", ".join((f"openvino {self._version} {self.device} {self.precision}{_threads_note(self.compiled)}", *self.graph_rewrites))

    def close(self) -> None:
        if self.compiled is not None:
            self._description_when_closed = self.describe()
        self._request = None
        self.compiled = None


def open_embedding_backend(
    model_path: str | Path, spec: ModelSpec, max_batch: int, threads: int | None, options: BackendOptions
) -> OpenVinoBackend:
    """The registry's factory: :class:`OpenVinoBackend` for a model on ``options.device`` (default CPU).

    Precision ``options.precision``; None means the model's own: ``"int8"`` for a Q/DQ model, else ``"fp32"``.
    """
    from edge_reid.onnx_graph import is_qdq_model

    precision = options.precision or ("int8" if is_qdq_model(model_path) else "fp32")
    # options.side_by_side does not lower the thread count: OpenVINO's models take their threads from
    # one process-wide oneTBB pool, so two models running at once share the cores instead of
    # oversubscribing them (benchmarks/run_modes.py measures both splits).
    return OpenVinoBackend(model_path, spec, max_batch=max_batch, threads=threads, precision=precision, device=options.device or "CPU")


def open_detector_backend(
    model_path: str | Path, threads: int | None, options: BackendOptions, input_size: tuple[int, int] | None = None
) -> OpenVinoDetector:
    """The registry's factory: :class:`OpenVinoDetector` on ``options.device`` in ``options.precision`` (None:
    FP32); every core beside another model too (see :func:`open_embedding_backend`)."""
    return OpenVinoDetector(
        model_path, threads=threads, device=options.device or "CPU", input_size=input_size, precision=options.precision or "fp32"
    )
