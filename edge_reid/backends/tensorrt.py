"""TensorRT backend: a prebuilt engine run over CUDA batch buffers that the CPU code uses directly.

TensorRT 8.5+/10 name-based API: ``Runtime.deserialize_cuda_engine`` -> one
``IExecutionContext`` -> ``set_tensor_address`` for input and output (once: the
buffers never move) -> per call ``set_input_shape`` (only when the batch size
changes), ``execute_async_v3(stream)``, then ``cudaStreamSynchronize`` before the
output is read. On Jetson the buffers are mapped host memory (zero copy); on
discrete GPUs the first ``n`` rows are copied on the same stream.

Batches larger than the engine's profile max are split by the caller: the
backend's ``max_batch`` is that max (the Embedder sub-batches by ``backend.max_batch``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from edge_reid.backends.base import EmbeddingBackend
from edge_reid.cuda.buffers import CudaBatchBuffers, CudaStream, MemoryMode, allocate_batch_buffers, choose_memory_mode
from edge_reid.cuda.runtime import GpuInfo, query_gpu
from edge_reid.errors import ModelError
from edge_reid.spec import ModelSpec, model_sha256
from edge_reid.tensorrt.env import TensorRTStatus, import_tensorrt, require_tensorrt
from edge_reid.tensorrt.manifest import EngineCheck, EngineManifest, select_engine
from edge_reid.tensorrt.profile import BatchProfile
from edge_reid.tensorrt.startup import create_runtime, make_logger


class TensorRTBackend(EmbeddingBackend):
    """An embedding engine on TensorRT.

    Args:
        engine_path: the ``.engine`` file (its manifest must already be checked
            current: see :func:`open_tensorrt_backend`).
        manifest: its manifest.
        spec: the model's spec (must agree with the manifest's I/O).
        gpu: the CUDA device (default: device 0, queried).
        trt: the ``tensorrt`` module (default: imported).
        memory_mode: ``"mapped"`` or ``"pinned"`` buffers; None chooses for the GPU
            (:func:`~edge_reid.cuda.buffers.choose_memory_mode`). The device check times both.

    Raises:
        BackendUnavailableError: TensorRT or cuda-python missing, or TensorRT cannot start CUDA
            (the message has TensorRT's log and the likely causes).
        ModelError: the engine cannot be deserialized or its I/O disagrees with the spec.
        CudaError: a CUDA allocation or stream call failed.
    """

    name = "tensorrt"
    runs_on_cpu = False

    def __init__(
        self,
        engine_path: str | Path,
        manifest: EngineManifest,
        spec: ModelSpec,
        gpu: GpuInfo | None = None,
        trt: ModuleType | None = None,
        memory_mode: MemoryMode | None = None,
    ) -> None:
        trt = trt or import_tensorrt()
        self.engine_path = Path(engine_path)
        self.manifest = manifest
        self.profile: BatchProfile = manifest.profile
        self.gpu = gpu or query_gpu(0)
        self._closed = False
        self._logger = make_logger(trt, echo=lambda line: print(line, file=sys.stderr))  # as trt.Logger(WARNING) did
        self._runtime = create_runtime(trt, self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            raise ModelError(
                f"{self.engine_path}: TensorRT cannot deserialize this engine (TensorRT said: {self._logger.summary()}); "
                "rebuild it with edge-reid build --rebuild"
            )
        self.input_name, self.output_name = manifest.input_name, manifest.output_name
        self._check_io(trt, spec)
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise ModelError(f"{self.engine_path}: cannot create an execution context (out of GPU memory?)")
        self.memory_mode: MemoryMode = memory_mode or choose_memory_mode(self.gpu)
        self._stream = CudaStream()
        try:
            self._cuda: CudaBatchBuffers = allocate_batch_buffers(
                self.profile.max, (3, spec.height, spec.width), spec.embedding_dim, self.memory_mode
            )
        except Exception:
            self._stream.close()
            raise
        super().__init__(spec, self._cuda.buffers)
        # Addresses are bound once; the buffers live as long as the backend.
        if not (
            self._context.set_tensor_address(self.input_name, self._cuda.input_device_ptr)
            and self._context.set_tensor_address(self.output_name, self._cuda.output_device_ptr)
        ):
            self.close()
            raise ModelError(f"{self.engine_path}: TensorRT refused the buffer addresses for {self.input_name!r}/{self.output_name!r}")
        self._bound_rows = 0

    def _check_io(self, trt: ModuleType, spec: ModelSpec) -> None:
        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        for tensor, mode in ((self.input_name, trt.TensorIOMode.INPUT), (self.output_name, trt.TensorIOMode.OUTPUT)):
            if tensor not in names:
                raise ModelError(f"{self.engine_path}: engine has no tensor {tensor!r} (tensors: {names}); rebuild it")
            if engine.get_tensor_mode(tensor) != mode:
                raise ModelError(f"{self.engine_path}: tensor {tensor!r} is not an engine {mode.name.lower()}")
            if engine.get_tensor_dtype(tensor) != trt.DataType.FLOAT:
                raise ModelError(f"{self.engine_path}: tensor {tensor!r} is {engine.get_tensor_dtype(tensor)}, expected float32 I/O")
        shape = tuple(engine.get_tensor_shape(self.input_name))
        if tuple(shape[1:]) != (3, spec.height, spec.width):
            raise ModelError(f"{self.engine_path}: engine input {shape} does not take (N, 3, {spec.height}, {spec.width}) crops")
        # get_tensor_profile_shape(name, profile_index) -> [min, opt, max] shapes.
        pmin, popt, pmax = (tuple(s) for s in engine.get_tensor_profile_shape(self.input_name, 0))
        if (pmin[0], popt[0], pmax[0]) != (self.profile.min, self.profile.opt, self.profile.max):
            raise ModelError(
                f"{self.engine_path}: engine profile {pmin[0]}/{popt[0]}/{pmax[0]} differs from its manifest {self.profile}; rebuild it"
            )
        out_shape = tuple(engine.get_tensor_shape(self.output_name))
        if len(out_shape) != 2 or out_shape[1] != spec.embedding_dim:
            raise ModelError(f"{self.engine_path}: engine output {out_shape} is not (N, {spec.embedding_dim})")

    def infer(self, n: int) -> np.ndarray:
        """Run the engine on ``buffers.input[:n]``; see :meth:`EmbeddingBackend.infer`.

        Raises:
            ValueError: ``n`` outside 1..max_batch.
            ModelError: TensorRT rejected the shape or failed to enqueue.
            CudaError: a copy or the synchronisation failed.
        """
        self._check_n(n)
        rows = self.profile.execution_batch(n)
        if rows != self._bound_rows:
            if not self._context.set_input_shape(self.input_name, (rows, 3, self.spec.height, self.spec.width)):
                raise ModelError(f"{self.engine_path}: TensorRT rejected batch {rows} (profile {self.profile})")
            self._bound_rows = rows
        self._cuda.upload(rows, self._stream)
        if not self._context.execute_async_v3(self._stream.handle):
            raise ModelError(f"{self.engine_path}: TensorRT failed to enqueue inference for batch {rows}")
        self._cuda.download(rows, self._stream)
        self._stream.synchronize()
        return self.buffers.output[:n]

    def describe(self) -> str:
        m = self.manifest
        return f"tensorrt {m.tensorrt_version} {m.precision} on {self.gpu.name} ({self.memory_mode} buffers, batch {self.profile})"

    def close(self) -> None:
        """Release context, engine, CUDA buffers and stream (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        self._context = None
        self._engine = None
        self._runtime = None
        try:
            self._cuda.close()
        finally:
            self._stream.close()


def open_tensorrt_backend(
    model_path: str | Path,
    spec: ModelSpec,
    precision: str | None = None,
    engines_dir: str | Path = "engines",
    rebuild: bool = False,
) -> TensorRTBackend:
    """Load the current engine for ``model_path`` from ``engines_dir`` (building one with ``rebuild``).

    Args:
        model_path: the FP32 ONNX model (engines are matched by its sha256 and spec).
        spec: its spec.
        precision: ``"fp16"``/``"int8"`` or None for the newest current engine.
        engines_dir: folder of engines and manifests.
        rebuild: when no engine is current, build an FP16 one (default profile) or,
            for a stale one, rebuild it with its manifest's settings (Q/DQ INT8 included).

    Raises:
        BackendUnavailableError: TensorRT, cuda-python or a GPU is missing.
        EngineNotFoundError: no current engine and ``rebuild`` is False; the message
            says why each existing one cannot be used and how to rebuild.
        EngineBuildError: ``rebuild`` failed.
    """
    from edge_reid.tensorrt.errors import EngineNotFoundError

    trt, status = require_tensorrt()
    machine = status.machine
    model_sha = model_sha256(model_path)
    try:
        chosen: EngineCheck = select_engine(engines_dir, model_path, model_sha, spec.fingerprint(), machine, precision)
    except EngineNotFoundError:
        if not rebuild:
            raise
        chosen = _rebuild(model_path, spec, precision, engines_dir, trt, status)
    return TensorRTBackend(chosen.engine_path, chosen.manifest, spec, gpu=status.gpu.gpu, trt=trt)


def _rebuild(model_path, spec: ModelSpec, precision: str | None, engines_dir, trt, status: TensorRTStatus) -> EngineCheck:
    """Build the engine ``open_tensorrt_backend(rebuild=True)`` needs, reusing a stale manifest's settings."""
    from edge_reid.cuda.versions import DeviceCuda
    from edge_reid.tensorrt.builder import DEFAULT_WORKSPACE_MB, BuildOptions, build_engine, plan_build
    from edge_reid.tensorrt.errors import EngineBuildError
    from edge_reid.tensorrt.manifest import EngineStatus, check_manifest, rebuild_command, scan_engines
    from edge_reid.tensorrt.profile import BatchProfile as Profile

    model_sha = model_sha256(model_path)
    stale = [
        c for c in scan_engines(engines_dir, status.machine, model_sha, spec.fingerprint())
        if c.manifest is not None and c.status in (EngineStatus.STALE, EngineStatus.BROKEN)
        and (precision is None or c.manifest.precision == precision)
    ]
    if stale:
        old = stale[0].manifest
        if old.int8_path == "implicit-calibration":
            raise EngineBuildError(
                f"{stale[0].manifest_path.name} was calibrated from images; rebuild it with "
                f"`{rebuild_command(model_path, old, engines_dir=engines_dir)}` (or build an FP16 engine with --precision fp16)"
            )
        options = BuildOptions(
            model_path=Path(model_path),
            precision=old.precision,
            profile=old.profile,
            workspace_mb=old.workspace_mb or DEFAULT_WORKSPACE_MB,
            qdq_path=Path(old.calibration_file) if old.int8_path == "qdq" and old.calibration_file else None,
            engines_dir=Path(engines_dir),
        )
    else:
        options = BuildOptions(model_path=Path(model_path), precision=precision or "fp16", profile=Profile(), engines_dir=Path(engines_dir))
    plan = plan_build(options, spec, status.tensorrt_version, status.gpu.gpu)
    manifest = build_engine(plan, trt, cuda=DeviceCuda.here(status.gpu.driver_version))
    return check_manifest(manifest, plan.manifest_path, status.machine, model_sha, spec.fingerprint())
