"""Read the surface of the REAL ``tensorrt`` / cuda-python module that edge_reid uses; print it as JSON.

Run by tests/real_bindings.py in a subprocess where the real module imports (no GPU needed):
``python tests/binding_probe.py tensorrt`` or ``... cuda``. The printed JSON has:

- ``surface``: deterministic facts about the module (members edge_reid uses, with their pybind11
  signatures, enum values, constants, what each call does without a driver). It is recorded in
  ``tests/binding_surfaces.json`` and the stand-ins (tests/fake_tensorrt.py, tests/fake_cudart.py)
  are built from that record.
- ``behaviour``: what the stub libraries make happen (logged lines), not recorded.
- ``edge_reid``: what OUR code does with the real module here (no GPU): the start-up errors of
  :mod:`edge_reid.tensorrt.startup`, :func:`edge_reid.cuda.runtime.gpu_status`, error texts.

:data:`TENSORRT_USED` and :data:`CUDA_USED` list everything edge_reid touches; a test checks the
package's ``trt.X`` / ``rt.X`` uses against them.
"""

from __future__ import annotations

import json
import re
import sys

#: TensorRT classes -> members edge_reid calls (tensorrt/builder.py, tensorrt/calibrator.py, backends/tensorrt.py).
TENSORRT_USED: dict[str, tuple[str, ...]] = {
    "ILogger": ("__init__", "log"),
    "Logger": ("__init__",),
    "Builder": ("__init__", "create_network", "create_builder_config", "create_optimization_profile", "build_serialized_network"),
    "OnnxParser": ("__init__", "parse_from_file", "num_errors", "get_error"),
    "ParserError": ("desc", "code", "node"),
    "INetworkDefinition": ("num_inputs", "num_outputs", "get_input", "get_output", "unmark_output"),
    "ITensor": ("name", "shape"),
    "IBuilderConfig": (
        "set_memory_pool_limit", "set_flag", "add_optimization_profile", "create_timing_cache", "set_timing_cache",
        "get_timing_cache", "int8_calibrator", "set_calibration_profile",
    ),
    "IOptimizationProfile": ("set_shape",),
    "ITimingCache": ("serialize",),
    "Runtime": ("__init__", "deserialize_cuda_engine"),
    "ICudaEngine": (
        "num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_dtype", "get_tensor_shape",
        "get_tensor_profile_shape", "create_execution_context",
    ),
    "IExecutionContext": ("set_tensor_address", "set_input_shape", "execute_async_v3"),
    "IInt8EntropyCalibrator2": ("__init__", "get_batch_size", "get_batch", "read_calibration_cache", "write_calibration_cache"),
}
#: TensorRT enums edge_reid reads members of (recorded whole, with their values).
TENSORRT_ENUMS = ("ILogger.Severity", "NetworkDefinitionCreationFlag", "BuilderFlag", "MemoryPoolType", "TensorIOMode", "DataType")

#: cuda-python runtime functions edge_reid calls (cuda/runtime.py, cuda/buffers.py, device_check.py).
CUDA_FUNCTIONS = (
    "cudaGetErrorString", "cudaRuntimeGetVersion", "cudaDriverGetVersion", "cudaGetDeviceCount",
    "cudaGetDeviceProperties", "cudaHostAlloc", "cudaHostGetDevicePointer", "cudaMalloc", "cudaFree", "cudaFreeHost",
    "cudaMemcpyAsync", "cudaStreamCreate", "cudaStreamSynchronize", "cudaStreamDestroy",
)
CUDA_CONSTANTS = ("cudaHostAllocDefault", "cudaHostAllocMapped")
CUDA_ERRORS = (
    "cudaSuccess", "cudaErrorInvalidValue", "cudaErrorMemoryAllocation", "cudaErrorInsufficientDriver", "cudaErrorNoDevice",
    "cudaErrorInvalidDevice", "cudaErrorNotPermitted", "cudaErrorSystemNotReady", "cudaErrorCompatNotSupportedOnDevice",
    "cudaErrorUnknown",
)
CUDA_DEVICE_PROP_FIELDS = ("name", "major", "minor", "integrated", "canMapHostMemory", "totalGlobalMem", "multiProcessorCount")
#: Driver API and NVRTC calls of the device check's GPU kernel (edge_reid/device_check.py: AffineKernel).
CUDA_DRIVER_FUNCTIONS = ("cuModuleLoadData", "cuModuleGetFunction", "cuLaunchKernel", "cuModuleUnload")
CUDA_NVRTC_FUNCTIONS = ("nvrtcCreateProgram", "nvrtcCompileProgram", "nvrtcGetCUBINSize", "nvrtcGetCUBIN", "nvrtcDestroyProgram")
CUDA_USED = {
    "functions": CUDA_FUNCTIONS, "constants": CUDA_CONSTANTS, "cudaError_t": CUDA_ERRORS, "cudaDeviceProp": CUDA_DEVICE_PROP_FIELDS,
    "driver": CUDA_DRIVER_FUNCTIONS, "nvrtc": CUDA_NVRTC_FUNCTIONS,
}


def normalise_signature(text: str) -> str:
    """A pybind11 signature line without module prefixes and typing spellings that differ between releases."""
    text = re.sub(r"\btensorrt(_bindings)?\.tensorrt\.", "", text)
    for old, new in (
        ("typing.SupportsInt", "int"), ("typing.SupportsFloat", "float"), ("typing_extensions.Buffer", "buffer"),
        ("collections.abc.Buffer", "buffer"),  # pybind11 3 names py::buffer so on Python 3.12+, typing_extensions.Buffer before
        ("List[", "list["), ("nvinfer1::ILogger::Severity", "ILogger.Severity"), ("nvinfer1::TensorIOMode", "TensorIOMode"),
        ("nvonnxparser::IParserError", "ParserError"),
    ):
        text = text.replace(old, new)
    return text.strip()


def signatures(obj) -> list[str]:
    """Every overload's signature from a pybind11 docstring (one for a plain function)."""
    doc = getattr(obj, "__doc__", None) or ""
    if isinstance(obj, property):
        doc = (obj.fget.__doc__ or "") if obj.fget else ""
    lines = [line.strip() for line in doc.strip().splitlines() if line.strip()]
    if not lines:
        return []
    overloads = [re.sub(r"^\d+\.\s*", "", line) for line in lines if re.match(r"^\d+\.\s+\w+\(", line)]
    return [normalise_signature(s) for s in (overloads or [lines[0]])]


def _outcome(call) -> str:
    """What a call does: ``returns <first element>`` or ``raises <Type>: <message>``."""
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - recording whatever the real module does
        return f"raises {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    first = result[0] if isinstance(result, tuple) else result
    return f"returns {getattr(first, 'name', first)}"


def tensorrt_probe() -> dict:
    import tensorrt as trt

    members: dict[str, list[str] | None] = {}
    for cls_name, names in TENSORRT_USED.items():
        cls = getattr(trt, cls_name, None)
        members[cls_name] = ["class"] if cls is not None else None
        for name in names:
            attr = cls.__dict__.get(name, getattr(cls, name, None)) if cls is not None else None
            members[f"{cls_name}.{name}"] = signatures(attr) if attr is not None else None
    enums = {}
    for dotted in TENSORRT_ENUMS:
        obj = trt
        for part in dotted.split("."):
            obj = getattr(obj, part, None)
        enums[dotted] = {name: int(value) for name, value in obj.__members__.items()} if obj is not None else None

    logged: list[list] = []

    class Capture(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity, msg) -> None:
            logged.append([int(severity), str(msg)])

    class NoBaseInit(trt.ILogger):
        def __init__(self) -> None:  # forgets trt.ILogger.__init__(self)
            pass

        def log(self, severity, msg) -> None:
            pass

    builder = _outcome(lambda: trt.Builder(Capture()))
    builder_log = list(logged)
    logged.clear()
    runtime = _outcome(lambda: trt.Runtime(Capture()))
    runtime_log = list(logged)
    surface = {
        "version": str(trt.__version__),
        "members": members,
        "enums": enums,
        "Logger.WARNING": int(trt.Logger.WARNING) if hasattr(trt.Logger, "WARNING") else None,
        "errors": {
            # pybind11's messages, the same whatever the libraries do
            "factory_returned_null": builder.replace("tensorrt_bindings.", "tensorrt."),
            "missing_base_init": _outcome(NoBaseInit).replace("tensorrt_bindings.", "tensorrt."),
        },
    }
    ours = {}
    if "--edge-reid" in sys.argv:
        from edge_reid.tensorrt.startup import create_builder, create_runtime, make_logger

        echoed: list[str] = []
        for name, create in (("create_builder", create_builder), ("create_runtime", create_runtime)):
            ours[name] = _outcome(lambda: create(trt, make_logger(trt, echoed.append)))
        ours["echoed"] = echoed
    behaviour = {"Builder": builder, "Builder_log": builder_log, "Runtime": runtime, "Runtime_log": runtime_log}
    return {"surface": surface, "behaviour": behaviour, "edge_reid": ours}


def cuda_probe() -> dict:
    modules = {}
    rt = None
    try:
        from cuda.bindings import runtime as rt  # noqa: F811

        modules["cuda.bindings.runtime"] = True
    except ImportError:
        modules["cuda.bindings.runtime"] = False
    try:
        from cuda import cudart

        modules["cuda.cudart"] = True
        rt = rt or cudart
    except ImportError:
        modules["cuda.cudart"] = False
    functions = {name: hasattr(rt, name) for name in CUDA_FUNCTIONS}
    constants = {name: (int(getattr(rt, name)) if hasattr(rt, name) else None) for name in CUDA_CONSTANTS}
    errors = {name: (int(getattr(rt.cudaError_t, name)) if hasattr(rt.cudaError_t, name) else None) for name in CUDA_ERRORS}
    memcpy_kinds = {name: int(value) for name, value in rt.cudaMemcpyKind.__members__.items()}
    prop = rt.cudaDeviceProp()
    prop_fields = {name: hasattr(prop, name) for name in CUDA_DEVICE_PROP_FIELDS}
    stream = rt.cudaStream_t(0x1234)
    # No driver, in this order (cuda-python 12.6 fails differently on the first driver call).
    kinds = rt.cudaMemcpyKind
    no_driver = {}
    for name, call in (
        ("cudaRuntimeGetVersion", lambda: rt.cudaRuntimeGetVersion()),
        ("cudaDriverGetVersion", lambda: rt.cudaDriverGetVersion()),
        ("cudaGetDeviceCount", lambda: rt.cudaGetDeviceCount()),
        ("cudaGetDeviceProperties", lambda: rt.cudaGetDeviceProperties(0)),
        ("cudaHostAlloc", lambda: rt.cudaHostAlloc(64, rt.cudaHostAllocMapped)),
        ("cudaMalloc", lambda: rt.cudaMalloc(64)),
        ("cudaStreamCreate", lambda: rt.cudaStreamCreate()),
        ("cudaHostGetDevicePointer", lambda: rt.cudaHostGetDevicePointer(0x1000, 0)),
        ("cudaMemcpyAsync", lambda: rt.cudaMemcpyAsync(0x1000, 0x2000, 64, kinds.cudaMemcpyHostToDevice, 0x1234)),
        ("cudaStreamSynchronize", lambda: rt.cudaStreamSynchronize(stream)),
        ("cudaStreamDestroy", lambda: rt.cudaStreamDestroy(stream)),
        ("cudaFree", lambda: rt.cudaFree(0x1000)),
        ("cudaFreeHost", lambda: rt.cudaFreeHost(0x1000)),
        ("cudaGetErrorString", lambda: rt.cudaGetErrorString(rt.cudaError_t.cudaErrorInsufficientDriver)),
    ):
        no_driver[name] = _outcome(call)
    plain_ints = {
        "cudaGetErrorString(35)": _outcome(lambda: rt.cudaGetErrorString(35)),
        "cudaMemcpyAsync(kind=1)": _outcome(lambda: rt.cudaMemcpyAsync(0x1000, 0x2000, 64, 1, 0x1234)),
    }
    runtime_version = rt.cudaRuntimeGetVersion()
    from cuda.bindings import driver, nvrtc
    import numpy as np

    args = np.array([0, 0], np.uint64)
    kernel = {
        "driver": {name: hasattr(driver, name) for name in CUDA_DRIVER_FUNCTIONS},
        "nvrtc": {name: hasattr(nvrtc, name) for name in CUDA_NVRTC_FUNCTIONS},
        "CUresult.CUDA_SUCCESS": int(driver.CUresult.CUDA_SUCCESS),
        "nvrtcResult.NVRTC_SUCCESS": int(nvrtc.nvrtcResult.NVRTC_SUCCESS),
        # Our argument types (ints for the stream and the parameter array) get past conversion: no TypeError.
        "cuLaunchKernel_no_driver_is_not_a_TypeError": not _outcome(
            lambda: driver.cuLaunchKernel(driver.CUfunction(), 1, 1, 1, 256, 1, 1, 0, 0x1234, args.ctypes.data, 0)
        ).startswith("raises TypeError"),
    }
    surface = {
        "modules": modules,
        "functions": functions,
        "constants": constants,
        "cudaError_t": errors,
        "cudaMemcpyKind": memcpy_kinds,
        "cudaDeviceProp": prop_fields,
        "int(cudaStream_t(0x1234))": int(stream),
        "cudaRuntimeGetVersion": int(runtime_version[1]),
        "no_driver": no_driver,
        "plain_ints": plain_ints,
        "kernel": kernel,
    }
    ours = {}
    if "--edge-reid" in sys.argv:
        from edge_reid.cuda.runtime import check, gpu_status, import_cudart

        status = gpu_status()
        ours["import_cudart"] = import_cudart().__name__
        ours["gpu_status"] = {"gpu": status.gpu is not None, "reason": status.reason, "runtime": status.runtime_version, "driver": status.driver_version}
        ours["check"] = _outcome(lambda: check((rt.cudaError_t.cudaErrorInsufficientDriver, None), "cudaMalloc", rt))
    return {"surface": surface, "behaviour": {}, "edge_reid": ours}


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind not in ("tensorrt", "cuda"):
        sys.exit("usage: python tests/binding_probe.py tensorrt|cuda [--edge-reid]")
    result = tensorrt_probe() if kind == "tensorrt" else cuda_probe()
    print(json.dumps(result, sort_keys=True))
