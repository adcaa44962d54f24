"""Is TensorRT usable here, and which TensorRT version and GPU is "here"?"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from edge_reid.cpu import board_model
from edge_reid.cuda.runtime import GpuInfo, GpuStatus, gpu_status
from edge_reid.errors import BackendUnavailableError
from edge_reid.tensorrt.manifest import MachineIdentity
from edge_reid.tensorrt.versions import parse_version, unsupported_reason

TENSORRT_MISSING = (
    "TensorRT's Python package is not installed (on a Jetson run install_jetson.sh, which installs "
    "JetPack's python3-libnvinfer; elsewhere install NVIDIA's tensorrt wheel)"
)


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module.

    Raises:
        BackendUnavailableError: TensorRT is not installed (the message names TensorRT).
    """
    try:
        import tensorrt
    except ImportError:
        raise BackendUnavailableError(TENSORRT_MISSING) from None
    return tensorrt


@dataclass(frozen=True)
class TensorRTStatus:
    """Whether the TensorRT backend can run here.

    Attributes:
        usable: TensorRT (>= 8.5), cuda-python and a CUDA GPU are all present.
        reason: empty when usable, else one line naming what is missing.
        tensorrt_version: installed version or None.
        gpu: the CUDA GPU status (device, CUDA versions).
    """

    usable: bool
    reason: str
    tensorrt_version: str | None
    gpu: GpuStatus

    @property
    def machine(self) -> MachineIdentity | None:
        """This machine's identity for engine manifests, or None when the TensorRT version or the GPU is unknown.

        Known even when TensorRT is not usable (too old a version): engines built by another
        version are then reported as stale, not as unknown.
        """
        if self.gpu.gpu is None or self.tensorrt_version is None:
            return None
        return machine_identity(self.tensorrt_version, self.gpu.gpu)


def machine_identity(tensorrt_version: str, gpu: GpuInfo, board: str | None = None) -> MachineIdentity:
    """The :class:`MachineIdentity` engines built here get.

    Args:
        tensorrt_version: ``tensorrt.__version__``.
        gpu: the CUDA device.
        board: the board model; None reads it from the device tree for an integrated GPU
            (a Jetson module), "" for a discrete GPU (its name, SMs and memory identify it).
    """
    if board is None:
        board = board_model() if gpu.integrated else ""
    return MachineIdentity(tensorrt_version, gpu.name, gpu.compute_capability_str, gpu.multiprocessors, gpu.memory_gib, board)


def tensorrt_status() -> TensorRTStatus:
    """Check TensorRT, its version, cuda-python and the GPU, without raising."""
    try:
        trt = import_tensorrt()
        version = str(trt.__version__)
    except BackendUnavailableError as exc:
        return TensorRTStatus(False, str(exc), None, GpuStatus(None, "not checked"))
    except Exception as exc:  # e.g. OSError: libnvinfer.so missing
        return TensorRTStatus(False, f"TensorRT is installed but does not load: {exc}", None, GpuStatus(None, "not checked"))
    try:
        too_old = unsupported_reason(parse_version(version))
    except ValueError:
        too_old = f"cannot read the TensorRT version {version!r}"
    gpu = gpu_status()
    if too_old:
        return TensorRTStatus(False, too_old, version, gpu)
    if gpu.gpu is None:
        return TensorRTStatus(False, f"TensorRT {version} is installed but {gpu.reason}", version, gpu)
    return TensorRTStatus(True, "", version, gpu)


def require_tensorrt() -> tuple[ModuleType, TensorRTStatus]:
    """TensorRT module and status, for commands that cannot work without it.

    Raises:
        BackendUnavailableError: TensorRT, cuda-python or the GPU is missing; the
            message names TensorRT and what is missing.
    """
    status = tensorrt_status()
    if not status.usable:
        reason = status.reason if "TensorRT" in status.reason else f"TensorRT cannot be used: {status.reason}"
        raise BackendUnavailableError(reason)
    return import_tensorrt(), status
