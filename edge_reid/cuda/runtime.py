"""The CUDA runtime through cuda-python: import, checked calls, device query.

Every cuda-python runtime call returns a tuple ``(cudaError_t, *values)``
(cuda-python's documented convention). :func:`check` unpacks it and raises a
:class:`CudaError` naming the function and the error for anything but
``cudaSuccess``, so no error code is ever dropped.

cuda-python's module moved: ``from cuda.bindings import runtime`` (cuda-python
12.6.1 and later) and ``from cuda import cudart`` (older releases, still shipped
as a deprecated alias). :func:`import_cudart` tries both.

Without ``libcuda.so.1`` (no NVIDIA driver) cuda-python 12.6 raises ``RuntimeError``
("Failed to dlopen libcuda.so.1", then 'Function "cuInit" not found') instead of returning an
error code, while 12.9 and 13 report a driver version of 0 and return
``cudaErrorInsufficientDriver`` (both checked against the real releases by
tests/test_real_cuda_bindings.py); :func:`gpu_status` turns either into "no NVIDIA driver"
with the likely causes.

``cudaRuntimeGetVersion`` reports the CUDA version cuda-python itself was built for, not the
device's: the device's CUDA is the driver's (``cudaDriverGetVersion``) and, where the toolkit is
installed, its version (``/usr/local/cuda/version.json``, nvcc or its package: :mod:`edge_reid.cuda.versions`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from edge_reid.errors import BackendUnavailableError, EdgeReidError

CUDA_PYTHON_MISSING = (
    "cuda-python is not installed: on a Jetson run install_jetson.sh; elsewhere "
    "pip install 'cuda-python==X.Y.*' with X.Y your CUDA version (nvidia-smi shows it)"
)

#: Why CUDA (and so TensorRT) fails to start on a machine that has an NVIDIA GPU.
CUDA_START_CAUSES = (
    "likely causes: the user is not in the 'video' and 'render' groups (sudo usermod -aG video,render $USER, "
    "then log in again); a container started without the NVIDIA runtime (docker run --runtime nvidia or --gpus all); "
    "the NVIDIA driver is not loaded or too old for this CUDA (check nvidia-smi, or tegrastats on a Jetson)"
)


class CudaError(EdgeReidError):
    """A CUDA runtime call failed; the message names the call and the CUDA error.

    Attributes:
        function: the cuda-python function that failed, e.g. ``"cudaHostAlloc"``.
        code: the ``cudaError_t`` value (an int enum).
    """

    exit_code = 1  # the device failed, not the user's input

    def __init__(self, function: str, code: Any, description: str) -> None:
        self.function = function
        self.code = code
        super().__init__(f"CUDA call {function} failed: {description}")


@functools.lru_cache(maxsize=1)
def import_cudart() -> ModuleType:
    """cuda-python's runtime module (``cudart``).

    Raises:
        BackendUnavailableError: cuda-python is not installed.
    """
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6.1
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            raise BackendUnavailableError(CUDA_PYTHON_MISSING) from None
    return cudart


def describe_error(code: Any, cudart: ModuleType) -> str:
    """``"cudaErrorMemoryAllocation (out of memory)"`` for an error code.

    Falls back to the enum's name when the driver cannot be asked (cuda-python
    needs libcuda even for ``cudaGetErrorString``).
    """
    name = getattr(code, "name", None) or str(code)
    try:
        err, text = cudart.cudaGetErrorString(code)
        if err == cudart.cudaError_t.cudaSuccess and text:
            text = text.decode() if isinstance(text, (bytes, bytearray)) else str(text)
            return f"{name} ({text})"
    except Exception:  # no driver: cuda-python raises RuntimeError here
        pass
    return name


def check(result: Any, function: str, cudart: ModuleType | None = None) -> Any:
    """Check one cuda-python call's result and return its values.

    Args:
        result: what the call returned: ``(err,)``, ``(err, value)`` or
            ``(err, v1, v2, ...)``.
        function: the call's name, for the error message.
        cudart: the runtime module (default: :func:`import_cudart`).

    Returns:
        None for ``(err,)``, the value for ``(err, value)``, else the tuple of values.

    Raises:
        CudaError: ``err`` is not ``cudaSuccess``; names ``function`` and the error.
    """
    rt = cudart if cudart is not None else import_cudart()
    if not isinstance(result, tuple):
        result = (result,)
    err, values = result[0], result[1:]
    if err != rt.cudaError_t.cudaSuccess:
        raise CudaError(function, err, describe_error(err, rt))
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def format_cuda_version(version: int) -> str:
    """CUDA's integer version (``1000 * major + 10 * minor``) as ``"major.minor"``.

    >>> format_cuda_version(12060)
    '12.6'
    """
    return f"{version // 1000}.{(version % 1000) // 10}"


@dataclass(frozen=True)
class GpuInfo:
    """One CUDA device, from ``cudaGetDeviceProperties``.

    Attributes:
        index: CUDA device ordinal.
        name: device name, e.g. ``"Orin"`` or ``"NVIDIA H100 80GB HBM3"``.
        compute_capability: (major, minor), e.g. (8, 7) for Jetson Orin.
        integrated: True for GPUs that share memory with the CPU (Jetson),
            ``cudaDeviceProp.integrated``.
        can_map_host_memory: ``cudaDeviceProp.canMapHostMemory``.
        total_memory_bytes: ``cudaDeviceProp.totalGlobalMem`` in bytes.
        multiprocessors: ``cudaDeviceProp.multiProcessorCount`` (SMs): tells apart modules that share
            a name and compute capability (AGX Orin, Orin NX and Orin Nano are all "Orin", sm 8.7).
    """

    index: int
    name: str
    compute_capability: tuple[int, int]
    integrated: bool
    can_map_host_memory: bool
    total_memory_bytes: int
    multiprocessors: int = 0

    @property
    def compute_capability_str(self) -> str:
        """``"8.7"``."""
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"

    @property
    def memory_gib(self) -> int:
        """Total memory in whole GiB (rounded): part of the engine identity."""
        return int(round(self.total_memory_bytes / 2**30))

    def describe(self) -> str:
        """``"Orin (sm 8.7, integrated, 16 SMs, 7.4 GiB)"``."""
        kind = "integrated" if self.integrated else "discrete"
        sms = f", {self.multiprocessors} SMs" if self.multiprocessors else ""
        return f"{self.name} (sm {self.compute_capability_str}, {kind}{sms}, {self.total_memory_bytes / 2**30:.1f} GiB)"


def _decode_name(raw: Any) -> str:
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw).split(b"\0", 1)[0].decode(errors="replace").strip()
    return str(raw).strip()


def query_gpu(device: int = 0, cudart: ModuleType | None = None) -> GpuInfo:
    """Properties of CUDA device ``device``.

    Raises:
        BackendUnavailableError: cuda-python is missing.
        CudaError: ``cudaGetDeviceProperties`` failed (no such device, no driver).
    """
    rt = cudart if cudart is not None else import_cudart()
    prop = check(rt.cudaGetDeviceProperties(device), "cudaGetDeviceProperties", rt)
    return GpuInfo(
        index=device,
        name=_decode_name(prop.name),
        compute_capability=(int(prop.major), int(prop.minor)),
        integrated=bool(prop.integrated),
        can_map_host_memory=bool(prop.canMapHostMemory),
        total_memory_bytes=int(prop.totalGlobalMem),
        multiprocessors=int(prop.multiProcessorCount),
    )


@dataclass(frozen=True)
class GpuStatus:
    """Whether a CUDA GPU can be used here, and why not.

    Attributes:
        gpu: the first device, or None.
        reason: empty when ``gpu`` is set, else one line saying what is missing and the likely causes.
        runtime_version: the CUDA version cuda-python was built for (``cudaRuntimeGetVersion``),
            ``"12.6"``; "" when unknown. Not the device's CUDA.
        driver_version: the CUDA version the NVIDIA driver supports (``cudaDriverGetVersion``),
            ``"12.6"``; "" when there is no driver. This is the device's CUDA.
    """

    gpu: GpuInfo | None
    reason: str
    runtime_version: str = ""
    driver_version: str = ""


def _version_or_empty(rt: ModuleType, call) -> str:
    err, value = call()
    return format_cuda_version(int(value)) if err == rt.cudaError_t.cudaSuccess and int(value) > 0 else ""


def gpu_status(cudart: ModuleType | None = None) -> GpuStatus:
    """Find the first CUDA GPU without raising; for ``--backend auto`` and ``doctor``.

    The reason for "no GPU" tells apart: cuda-python missing, no NVIDIA driver, a driver too old
    for the installed cuda-python (with the cuda-python to install instead), no device, and a
    device CUDA cannot start (with :data:`CUDA_START_CAUSES`).
    """
    try:
        rt = cudart if cudart is not None else import_cudart()
    except BackendUnavailableError as exc:
        return GpuStatus(None, str(exc))
    runtime_version = driver_version = ""
    try:
        runtime_version = _version_or_empty(rt, rt.cudaRuntimeGetVersion)
        driver_version = _version_or_empty(rt, rt.cudaDriverGetVersion)
        if not driver_version:  # cuda-python 12.9+: no libcuda.so.1 gives a driver version of 0
            return GpuStatus(None, f"no NVIDIA driver (cuda-python finds no libcuda.so.1); {CUDA_START_CAUSES}", runtime_version)
        count = check(rt.cudaGetDeviceCount(), "cudaGetDeviceCount", rt)
        if not count:
            return GpuStatus(None, "no CUDA GPU found (cudaGetDeviceCount is 0)", runtime_version, driver_version)
        return GpuStatus(query_gpu(0, rt), "", runtime_version, driver_version)
    except CudaError as exc:
        if getattr(exc.code, "name", "") == "cudaErrorInsufficientDriver" and driver_version:
            from edge_reid.cuda.versions import cuda_python_requirement

            reason = (
                f"the NVIDIA driver supports CUDA {driver_version} but the installed cuda-python was built for CUDA "
                f"{runtime_version or 'a newer version'}: pip install '{cuda_python_requirement(driver_version)}'"
            )
            return GpuStatus(None, reason, runtime_version, driver_version)
        return GpuStatus(None, f"CUDA cannot start: {exc}; {CUDA_START_CAUSES}", runtime_version, driver_version)
    except RuntimeError as exc:  # cuda-python 12.6 without libcuda.so.1: "Failed to dlopen libcuda.so.1"
        return GpuStatus(None, f"no NVIDIA driver ({exc}); {CUDA_START_CAUSES}", runtime_version, driver_version)
