"""``edge-reid doctor --selftest``: check TensorRT and CUDA on this device, and write a JSON report.

What runs depends on what the device has; everything else is reported as ``skipped`` with the reason:

- with cuda-python and a CUDA GPU, the CUDA buffers (``cuda-buffers``): mapped and pinned+device
  buffers written by the CPU, read and written by a GPU kernel (compiled with NVRTC), copies of
  only the used rows, stream ordering (copy, kernel, kernel, copy queued without waiting) and
  sub-batching through a buffer smaller than the request;
- with TensorRT too: FP16 and (given a Q/DQ model from ``edge-reid calibrate``) INT8 engines of the
  model, built in a scratch folder, whose embeddings are compared with ONNX Runtime FP32 on real
  crops (``fp16-engine``: mean cosine >= 0.999; ``int8-engine``: the calibration report's budget),
  mapped host memory timed against pinned + device memory with copies (``memory-modes``: integrated
  GPUs may not cache pinned memory for the CPU, so this is measured, not assumed), and the
  overlapped :class:`~edge_reid.embedding_loop.EmbeddingLoop` timed against the plain loop
  (``embedding-loop``).

Report layout (schema ``edge-reid-device-check/1``): ``{"schema", "created", "ok" (no check failed and
at least one passed), "counts": {"passed", "failed", "skipped"}, "environment":
{name: value}, "checks": [{"name", "status": "passed"|"failed"|"skipped", "detail", "measurements"}]}``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "edge-reid-device-check/1"
#: FP16 engines must reproduce FP32 embeddings this closely (mean cosine over the crops).
FP16_MIN_MEAN_COSINE = 0.999
#: The engine profile built for the check: batches 1..32, tuned for 8.
CHECK_PROFILE = (1, 8, 32)


@dataclass
class CheckResult:
    """One check of the report.

    Attributes:
        name: ``"cuda-buffers"``, ``"fp16-engine"``, ``"int8-engine"``, ``"memory-modes"``, ``"embedding-loop"``.
        status: ``"passed"``, ``"failed"`` or ``"skipped"``.
        detail: one line: what was found, or why it failed or was skipped.
        measurements: numbers (ms, cosine similarities in [-1, 1], agreements in percent), JSON-ready.
    """

    name: str
    status: str
    detail: str
    measurements: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "measurements": self.measurements}


@dataclass
class DeviceCheckReport:
    """Everything ``doctor --selftest`` found; :meth:`write` saves it as JSON."""

    environment: dict[str, str]
    checks: list[CheckResult]
    created: str = ""

    @property
    def ok(self) -> bool:
        """No check failed and at least one passed: a report whose checks were all skipped (no GPU or
        no TensorRT here) verified nothing, and is no pass for a gate that reads it."""
        return self.counts["failed"] == 0 and self.counts["passed"] > 0

    @property
    def counts(self) -> dict[str, int]:
        """How many checks ``passed``, ``failed`` and were ``skipped``."""
        return {status: sum(check.status == status for check in self.checks) for status in ("passed", "failed", "skipped")}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "created": self.created,
            "ok": self.ok,
            "counts": self.counts,
            "environment": self.environment,
            "checks": [check.to_dict() for check in self.checks],
        }

    def write(self, path: str | Path) -> Path:
        """Write the report atomically.

        Raises:
            OutputPathError: the file cannot be written.
        """
        from edge_reid.atomic import write_json_atomic

        return write_json_atomic(path, self.to_dict(), what="device check report")


@dataclass(frozen=True)
class DeviceCheckOptions:
    """What ``doctor --selftest`` checks with.

    Attributes:
        model_path: FP32 ReID model (None: the bundled OSNet x0.25).
        qdq_path: its Q/DQ INT8 model from ``edge-reid calibrate`` (None: ``calibration/<model>-int8-qdq.onnx`` if present).
        crops: folder of person crops for the accuracy and loop checks.
        video: or a video to cut person crops from (None with no ``crops``: :func:`edge_reid.bench.default_video` if present).
        max_crops: most crops used.
        seconds: timed seconds per measurement.
    """

    model_path: Path | None = None
    qdq_path: Path | None = None
    crops: Path | None = None
    video: Path | None = None
    max_crops: int = 128
    seconds: float = 3.0


def _skipped(name: str, why: str) -> CheckResult:
    return CheckResult(name, "skipped", f"skipped: {why}")


def _guarded(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    """Run one check; an unexpected exception fails it (with the message) instead of ending the report."""
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - the report must say what broke and keep going
        return CheckResult(name, "failed", f"{type(exc).__name__}: {exc}")


def run_device_check(options: DeviceCheckOptions = DeviceCheckOptions(), say: Callable[[str], None] | None = None) -> DeviceCheckReport:
    """Run every check this device allows; never raises for a missing GPU or TensorRT (those checks are skipped).

    Args:
        options: model, crops and timing.
        say: progress lines (None: silent).
    """
    from edge_reid.cuda.runtime import gpu_status
    from edge_reid.doctor import collect_report
    from edge_reid.tensorrt.env import tensorrt_status
    from edge_reid.tensorrt.manifest import utc_now_iso

    say = say or (lambda _line: None)
    items, _ = collect_report(engines_dir=Path(tempfile.gettempdir()) / "edge-reid-no-engines")
    environment = {item.name: item.value for item in items}
    checks: list[CheckResult] = []
    gpu = gpu_status()
    if gpu.gpu is None:
        checks.append(_skipped("cuda-buffers", gpu.reason))
    else:
        say("CUDA buffers: mapped and pinned, kernels, copies, stream order, sub-batches")
        checks.append(_guarded("cuda-buffers", lambda: check_cuda_buffers(gpu.gpu)))
    trt_status = tensorrt_status()
    names = ("fp16-engine", "int8-engine", "memory-modes", "embedding-loop")
    if not trt_status.usable:
        checks += [_skipped(name, trt_status.reason) for name in names]
    else:
        checks += _tensorrt_checks(options, trt_status, say)
    return DeviceCheckReport(environment, checks, utc_now_iso())


# -- CUDA buffers ----------------------------------------------------------------------------------

AFFINE_KERNEL = r"""
extern "C" __global__ void affine(const float* x, float* y, float a, float b, unsigned int n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + b;
}
"""


class KernelUnavailable(RuntimeError):
    """The GPU kernel cannot be made on this device because NVRTC or the CUDA driver API cannot be loaded
    (e.g. no ``libnvrtc``): the buffer check then runs its copies alone and says so."""


class AffineKernel:
    """``y = a * x + b`` on the GPU, compiled at run time with NVRTC to the device's own machine code (a
    CUBIN for ``sm_XY``), following cuda-python's documented steps: nvrtcCreateProgram, nvrtcCompileProgram,
    nvrtcGetCUBIN, cuModuleLoadData, cuModuleGetFunction, cuLaunchKernel.

    Machine code rather than PTX: the driver loads it without compiling, so an NVRTC newer than the driver
    (cuda-python 13.3 on a CUDA 13.0 driver, which CUDA's minor-version compatibility allows) still works.
    The module is loaded into the CUDA runtime's primary context, made current first (``cudaFree(0)``, the
    runtime's documented way to start its context): the driver API loads nothing without a current context
    (``CUDA_ERROR_INVALID_CONTEXT``, seen on an H200 when the kernel was made before any runtime call).

    Args:
        compute_capability: (major, minor) of the device, e.g. (8, 7) for Jetson Orin.
        cudart: cuda-python's runtime module (None: imported).

    Raises:
        KernelUnavailable: NVRTC or the driver API cannot be loaded here.
        RuntimeError: compiling or loading the kernel failed (the message names the call and the error).
    """

    def __init__(self, compute_capability: tuple[int, int], cudart=None) -> None:
        from edge_reid.cuda.runtime import check, import_cudart

        try:
            from cuda.bindings import driver, nvrtc
        except ImportError:  # cuda-python < 12.6.1
            from cuda import cuda as driver, nvrtc  # type: ignore[no-redef]
        self._driver, self._nvrtc = driver, nvrtc
        rt = cudart or import_cudart()
        check(rt.cudaFree(0), "cudaFree", rt)  # the runtime's primary context, current on this thread
        try:
            err, program = nvrtc.nvrtcCreateProgram(AFFINE_KERNEL.encode(), b"affine.cu", 0, [], [])
        except Exception as exc:  # noqa: BLE001 - no libnvrtc: cuda-python raises instead of returning an error
            raise KernelUnavailable(str(exc)) from exc
        self._nvrtc_ok(err, "nvrtcCreateProgram")
        try:
            arch = f"--gpu-architecture=sm_{compute_capability[0]}{compute_capability[1]}".encode()
            (err,) = nvrtc.nvrtcCompileProgram(program, 1, [arch])
            self._nvrtc_ok(err, "nvrtcCompileProgram")
            err, size = nvrtc.nvrtcGetCUBINSize(program)
            self._nvrtc_ok(err, "nvrtcGetCUBINSize")
            cubin = b" " * size
            (err,) = nvrtc.nvrtcGetCUBIN(program, cubin)
            self._nvrtc_ok(err, "nvrtcGetCUBIN")
        finally:
            nvrtc.nvrtcDestroyProgram(program)
        self._image = np.frombuffer(cubin, dtype=np.uint8).copy()
        err, self._module = driver.cuModuleLoadData(self._image.ctypes.data)
        self._driver_ok(err, "cuModuleLoadData")
        err, self._function = driver.cuModuleGetFunction(self._module, b"affine")
        self._driver_ok(err, "cuModuleGetFunction")

    def _nvrtc_ok(self, err, call: str) -> None:
        if err != self._nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise RuntimeError(f"{call} failed: {getattr(err, 'name', err)}")

    def _driver_ok(self, err, call: str) -> None:
        if err != self._driver.CUresult.CUDA_SUCCESS:
            raise RuntimeError(f"{call} failed: {getattr(err, 'name', err)}")

    def launch(self, x_ptr: int, y_ptr: int, a: float, b: float, count: int, stream_handle: int) -> None:
        """Queue ``y[:count] = a * x[:count] + b`` (float32, device addresses) on the stream."""
        values = (
            np.array([x_ptr], np.uint64), np.array([y_ptr], np.uint64), np.array([a], np.float32),
            np.array([b], np.float32), np.array([count], np.uint32),
        )
        args = np.array([v.ctypes.data for v in values], np.uint64)
        threads = 256
        (err,) = self._driver.cuLaunchKernel(
            self._function, -(-count // threads), 1, 1, threads, 1, 1, 0, stream_handle, args.ctypes.data, 0
        )
        self._driver_ok(err, "cuLaunchKernel")

    def close(self) -> None:
        self._driver.cuModuleUnload(self._module)


def check_cuda_buffers(gpu, cudart=None, kernel_factory: Callable[[tuple[int, int]], Any] | None = None) -> CheckResult:
    """The CUDA buffer checks on ``gpu`` (see the module docstring); passed only when every result is exact.

    Args:
        gpu: the :class:`~edge_reid.cuda.runtime.GpuInfo` to check.
        cudart: cuda-python's runtime module (None: imported).
        kernel_factory: makes the GPU kernel (None: :class:`AffineKernel`); when it raises
            :class:`KernelUnavailable`, the kernel parts are skipped with the reason and the copy parts
            still run; any other error fails the check.
    """
    from edge_reid.batching import plan_sub_batches
    from edge_reid.cuda.buffers import CudaStream, HostDeviceBuffer, choose_memory_mode
    from edge_reid.cuda.runtime import check, import_cudart

    rt = cudart or import_cudart()
    modes = ["mapped", "pinned"] if gpu.can_map_host_memory else ["pinned"]
    problems: list[str] = []
    done: list[str] = []
    try:
        kernel = (kernel_factory or AffineKernel)(gpu.compute_capability)
        kernel_note = ""
    except KernelUnavailable as exc:  # e.g. no libnvrtc: the copy checks still run
        kernel, kernel_note = None, f"GPU kernel skipped ({exc})"
    except Exception as exc:  # noqa: BLE001 - a kernel the device cannot load is a failed check, not a skipped part
        return CheckResult("cuda-buffers", "failed", f"the GPU kernel could not be made: {exc}", {"modes": modes, "kernel": False})
    rows, width = 20, 1024
    data = np.arange(rows * width, dtype=np.float32).reshape(rows, width) / 7.0
    stream = CudaStream(rt)
    try:
        for mode in modes:
            source = HostDeviceBuffer((rows, width), mode, cudart=rt)
            target = HostDeviceBuffer((rows, width), mode, cudart=rt)
            try:
                source.array[:] = data
                target.array[:] = -1.0
                used = 13  # fewer rows than allocated: only these travel
                source.upload(used, stream)
                if kernel is not None:
                    # Two kernels and the copies queued without waiting: only stream order makes the result right.
                    kernel.launch(source.device_ptr, target.device_ptr, 2.0, 1.0, used * width, stream.handle)
                    kernel.launch(target.device_ptr, target.device_ptr, 3.0, 0.0, used * width, stream.handle)
                    expected = 3.0 * (2.0 * data[:used] + 1.0)
                else:
                    d2d = rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
                    check(rt.cudaMemcpyAsync(target.device_ptr, source.device_ptr, used * source.row_nbytes, d2d, stream.handle), "cudaMemcpyAsync", rt)
                    expected = data[:used]
                target.download(used, stream)
                stream.synchronize()
                if not np.allclose(target.array[:used], expected, rtol=1e-6):
                    problems.append(f"{mode}: the first {used} rows came back wrong")
                if np.any(target.array[used:] != -1.0):
                    problems.append(f"{mode}: rows beyond the {used} used ones changed")
                done.append(f"{mode} buffers ({'kernel x2' if kernel is not None else 'device copy'})")
            finally:
                source.close()
                target.close()
        # Sub-batches: 20 rows through an 8-row buffer pair, in order.
        mode = choose_memory_mode(gpu)
        small_in = HostDeviceBuffer((8, width), mode, cudart=rt)
        small_out = HostDeviceBuffer((8, width), mode, cudart=rt)
        try:
            result = np.empty_like(data)
            for start, stop in plan_sub_batches(rows, 8):
                n = stop - start
                small_in.array[:n] = data[start:stop]
                small_in.upload(n, stream)
                if kernel is not None:
                    kernel.launch(small_in.device_ptr, small_out.device_ptr, 1.0, 0.5, n * width, stream.handle)
                else:
                    d2d = rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
                    check(rt.cudaMemcpyAsync(small_out.device_ptr, small_in.device_ptr, n * small_in.row_nbytes, d2d, stream.handle), "cudaMemcpyAsync", rt)
                small_out.download(n, stream)
                stream.synchronize()
                result[start:stop] = small_out.array[:n]
            offset = 0.5 if kernel is not None else 0.0
            if not np.allclose(result, data + offset, rtol=1e-6):
                problems.append(f"sub-batches ({mode}): rows came back wrong or out of order")
            done.append(f"sub-batches of 8 ({mode})")
        finally:
            small_in.close()
            small_out.close()
    finally:
        stream.close()
        if kernel is not None:
            kernel.close()
    detail = "; ".join(done + ([kernel_note] if kernel_note else []))
    measurements = {"modes": modes, "kernel": kernel is not None}
    if problems:
        return CheckResult("cuda-buffers", "failed", "; ".join(problems), measurements)
    return CheckResult("cuda-buffers", "passed", detail, measurements)


# -- TensorRT --------------------------------------------------------------------------------------


def _crop_pool(options: DeviceCheckOptions):
    """Real crops (folder, video, or the shared vtest.avi) or (None, why)."""
    from edge_reid.bench.crop_pool import crops_from_folder, crops_from_video, default_video

    if options.crops is not None:
        return crops_from_folder(options.crops, options.max_crops), ""
    video = options.video or default_video()
    if video is None:
        return None, "no real crops: pass --crops FOLDER or --video FILE"
    return crops_from_video(video, max_crops=options.max_crops), ""


def _default_qdq(model_path: Path) -> Path | None:
    candidate = Path("calibration") / f"{model_path.stem}-int8-qdq.onnx"
    return candidate if candidate.is_file() else None


def _tensorrt_checks(options: DeviceCheckOptions, status, say: Callable[[str], None]) -> list[CheckResult]:
    from edge_reid.assets import DEFAULT_REID_MODEL
    from edge_reid.embedder import Embedder

    model_path = Path(options.model_path or DEFAULT_REID_MODEL)
    work = Path(tempfile.mkdtemp(prefix="edge-reid-selftest-"))
    results: dict[str, CheckResult] = {}
    try:
        pool, no_crops = _crop_pool(options)
        reference = None
        if pool is not None:
            say(f"ONNX Runtime FP32 embeddings of {len(pool.crops)} crops ({pool.source})")
            ort = Embedder(model_path, backend="onnxruntime", max_batch=32)
            try:
                reference = ort.embed_crops(pool.crops)
            finally:
                ort.close()
        say("building an FP16 engine (minutes on a Jetson)")
        fp16 = _guarded("fp16-engine", lambda: _build(model_path, "fp16", None, work, status))
        if fp16.status != "passed":
            results["fp16-engine"] = fp16
        elif reference is None:
            results["fp16-engine"] = CheckResult("fp16-engine", "skipped", f"engine built; comparison skipped: {no_crops}", fp16.measurements)
        else:
            results["fp16-engine"] = _guarded("fp16-engine", lambda: _compare(model_path, "fp16", work, pool, reference, fp16))
        qdq = options.qdq_path or _default_qdq(model_path)
        if qdq is None:
            results["int8-engine"] = _skipped("int8-engine", "no Q/DQ model: make one with `edge-reid calibrate` and pass --qdq")
        else:
            say(f"building an INT8 engine from {qdq}")
            int8 = _guarded("int8-engine", lambda: _build(model_path, "int8", Path(qdq), work, status))
            if int8.status != "passed" or reference is None:
                results["int8-engine"] = int8 if int8.status != "passed" else CheckResult("int8-engine", "skipped", f"engine built; {no_crops}")
            else:
                results["int8-engine"] = _guarded("int8-engine", lambda: _compare(model_path, "int8", work, pool, reference, int8, Path(qdq)))
        if fp16.status != "passed":
            results["memory-modes"] = _skipped("memory-modes", "no FP16 engine")
            results["embedding-loop"] = _skipped("embedding-loop", "no FP16 engine")
        elif pool is None:
            results["memory-modes"] = _skipped("memory-modes", no_crops)
            results["embedding-loop"] = _skipped("embedding-loop", no_crops)
        else:
            say("timing mapped against pinned + device buffers")
            results["memory-modes"] = _guarded("memory-modes", lambda: time_memory_modes(model_path, work, pool, status.gpu.gpu, options.seconds))
            say("timing the overlapped EmbeddingLoop against the plain loop")
            results["embedding-loop"] = _guarded("embedding-loop", lambda: _time_loop(model_path, work, pool, reference, options.seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [results[name] for name in ("fp16-engine", "int8-engine", "memory-modes", "embedding-loop")]


def _build(model_path: Path, precision: str, qdq: Path | None, work: Path, status) -> CheckResult:
    from edge_reid.cuda.versions import DeviceCuda
    from edge_reid.spec import load_spec
    from edge_reid.tensorrt.builder import BuildOptions, build_engine, plan_build
    from edge_reid.tensorrt.env import import_tensorrt
    from edge_reid.tensorrt.profile import BatchProfile

    spec = load_spec(model_path)
    options = BuildOptions(model_path, precision, BatchProfile(*CHECK_PROFILE), qdq_path=qdq, engines_dir=work / "engines")
    plan = plan_build(options, spec, status.tensorrt_version, status.gpu.gpu)
    started = time.perf_counter()
    build_engine(plan, import_tensorrt(), cuda=DeviceCuda.here(status.gpu.driver_version), echo=lambda _line: None)
    seconds = time.perf_counter() - started
    size = plan.engine_path.stat().st_size
    return CheckResult(f"{precision}-engine", "passed", f"built {plan.engine_path.name}", {"build_s": round(seconds, 1), "engine_bytes": size})


def _compare(model_path: Path, precision: str, work: Path, pool, reference: np.ndarray, built: CheckResult, qdq: Path | None = None) -> CheckResult:
    from edge_reid.embedder import Embedder
    from edge_reid.evaluation.agreement import compare_embeddings

    embedder = Embedder(model_path, backend="tensorrt", backend_options={"engines_dir": work / "engines", "precision": precision})
    try:
        embeddings = embedder.embed_crops(pool.crops)
    finally:
        embedder.close()
    agreement = compare_embeddings(reference, embeddings)
    measurements = {**built.measurements, "crops": len(pool.crops), "source": pool.source, "agreement_with_onnxruntime_fp32": agreement.to_dict()}
    if precision == "fp16":
        ok = agreement.mean_cosine >= FP16_MIN_MEAN_COSINE
        detail = f"mean cosine to ONNX Runtime FP32 {agreement.mean_cosine:.5f} ({'>=' if ok else '<'} {FP16_MIN_MEAN_COSINE})"
        return CheckResult("fp16-engine", "passed" if ok else "failed", detail, measurements)
    budget, promised = _calibration_budget(qdq)
    measurements["calibration_report_agreement"] = promised
    min_cosine = float(budget.get("min_mean_cosine", 0.0))
    min_top1 = float(budget.get("min_top1_agreement_percent", 0.0)) / 100.0
    ok = agreement.mean_cosine >= min_cosine and agreement.top1 >= min_top1
    detail = (
        f"mean cosine {agreement.mean_cosine:.5f}, top-1 agreement {100 * agreement.top1:.1f}% to ONNX Runtime FP32 "
        f"(calibration budget: cosine >= {min_cosine}, top-1 >= {100 * min_top1:.1f}%"
        + (f"; the report measured {promised.get('mean_cosine')} / {promised.get('top1_agreement')}% on its pool)" if promised else ")")
    )
    return CheckResult("int8-engine", "passed" if ok else "failed", detail, measurements)


def _calibration_budget(qdq: Path | None) -> tuple[dict, dict]:
    """(budget, agreement) from the calibration report beside a Q/DQ model; the guard's defaults without one."""
    import json

    from edge_reid.calibration.guard import AccuracyBudget

    if qdq is not None:
        report = qdq.with_name(qdq.name.replace("-qdq.onnx", "-report.json"))
        if report.is_file():
            data = json.loads(report.read_text())
            return data.get("budget", {}), data.get("agreement", {})
    return AccuracyBudget().to_dict(), {}


def time_memory_modes(model_path: Path, work: Path, pool, gpu, seconds: float) -> CheckResult:
    """Per mode: CPU writes the batch (preprocessing), the engine runs (with copies when pinned), the CPU reads the output."""
    from edge_reid.backends.tensorrt import TensorRTBackend
    from edge_reid.preprocess import CropPreprocessor
    from edge_reid.spec import load_spec, model_sha256
    from edge_reid.tensorrt.env import tensorrt_status
    from edge_reid.tensorrt.manifest import select_engine

    spec = load_spec(model_path)
    status = tensorrt_status()
    chosen = select_engine(work / "engines", model_path, model_sha256(model_path), spec.fingerprint(), status.machine, "fp16")
    batch = CHECK_PROFILE[1]
    crops = pool.batches(batch)[0]
    modes = ["mapped", "pinned"] if gpu.can_map_host_memory else ["pinned"]
    timings: dict[str, dict[str, float]] = {}
    for mode in modes:
        backend = TensorRTBackend(chosen.engine_path, chosen.manifest, spec, gpu=gpu, memory_mode=mode)
        preprocessor = CropPreprocessor(spec, backend.max_batch)
        samples: dict[str, list[float]] = {"write": [], "infer": [], "read": []}
        try:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline or len(samples["infer"]) < 20:
                t0 = time.perf_counter()
                preprocessor.write_crops(crops, backend.buffers.input)
                t1 = time.perf_counter()
                out = backend.infer(batch)
                t2 = time.perf_counter()
                float(out.sum())  # the matcher reads every value
                t3 = time.perf_counter()
                for name, value in (("write", t1 - t0), ("infer", t2 - t1), ("read", t3 - t2)):
                    samples[name].append(value)
        finally:
            backend.close()
        timings[mode] = {f"{name}_ms_p50": round(1000 * float(np.median(values)), 4) for name, values in samples.items()}
        timings[mode]["total_ms_p50"] = round(sum(timings[mode].values()), 4)
    from edge_reid.cuda.buffers import choose_memory_mode

    picked = choose_memory_mode(gpu)
    fastest = min(timings, key=lambda mode: timings[mode]["total_ms_p50"])
    detail = f"batch {batch}: " + ", ".join(f"{mode} {t['total_ms_p50']:.3f} ms" for mode, t in timings.items())
    detail += f"; edge-reid uses {picked}, measured fastest: {fastest}"
    return CheckResult("memory-modes", "passed", detail, {"batch": batch, "chosen": picked, "fastest": fastest, **timings})


def _time_loop(model_path: Path, work: Path, pool, reference: np.ndarray, seconds: float) -> CheckResult:
    from edge_reid.bench.matcher import synthetic_gallery
    from edge_reid.bench.runner import BenchConfig, measure_batch
    from edge_reid.embedder import Embedder

    embedder = Embedder(model_path, backend="tensorrt", backend_options={"engines_dir": work / "engines", "precision": "fp16"})
    try:
        gallery = synthetic_gallery(reference)
        batch = CHECK_PROFILE[1]
        config = BenchConfig(model_path=model_path, backend="tensorrt", batches=(batch,), seconds=seconds, loop=True, sequential_loop=True, preprocess=False)
        result = measure_batch(embedder, batch, config, pool, gallery)
    finally:
        embedder.close()
    data = result.to_dict()
    detail = (
        f"batch {batch}: model {data['images_per_s']:.0f} images/s; EmbeddingLoop efficiency {data['loop_efficiency']:.2f}, "
        f"plain loop {data['sequential_loop_efficiency']:.2f}"
    )
    return CheckResult("embedding-loop", "passed", detail, data)
