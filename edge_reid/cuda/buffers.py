"""CUDA-backed batch buffers: the same :class:`BatchBuffers` the CPU backend uses.

Two memory modes (chosen by :func:`choose_memory_mode`):

- ``"mapped"`` (integrated GPUs: Jetson). ``cudaHostAlloc(..., cudaHostAllocMapped)``
  page-locked host memory that the GPU addresses directly; its device address comes
  from ``cudaHostGetDevicePointer``. Preprocessing writes the input where the engine
  reads it and the matcher reads the output where the engine wrote it: no copy.
  (CUDA C Programming Guide, "Mapped Memory"; on Jetson CPU and GPU share DRAM, see
  NVIDIA's "CUDA for Tegra" memory guide.)
- ``"pinned"`` (discrete GPUs). Page-locked host memory (``cudaHostAlloc`` with
  ``cudaHostAllocDefault``) plus device memory (``cudaMalloc``); the first ``n`` rows
  are copied with ``cudaMemcpyAsync`` on the inference stream before and after
  each run, so one ``cudaStreamSynchronize`` orders copy, inference, copy.

Buffers are allocated once, at the engine profile's max batch, and freed by
``close()``. The numpy arrays are views over CUDA memory: do not use them after
``close()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Literal

import numpy as np

from edge_reid.batching import BatchBuffers
from edge_reid.cuda.runtime import GpuInfo, check, import_cudart

MemoryMode = Literal["mapped", "pinned"]


def choose_memory_mode(gpu: GpuInfo) -> MemoryMode:
    """``"mapped"`` (zero-copy) on integrated GPUs that can map host memory, else ``"pinned"``.

    On a discrete GPU mapped memory would make every kernel read cross PCIe, so
    pinned host memory plus an explicit copy is used there.
    """
    return "mapped" if gpu.integrated and gpu.can_map_host_memory else "pinned"


def host_array(address: int, shape: tuple[int, ...], dtype: np.dtype | type = np.float32) -> np.ndarray:
    """A C-contiguous numpy view of ``shape``/``dtype`` over memory at ``address``.

    The view does not own the memory: it is valid while the allocation lives.

    Raises:
        ValueError: ``address`` is 0 or the shape is empty.
    """
    if not address:
        raise ValueError("cannot view a null pointer")
    count = int(np.prod(shape))
    if count <= 0:
        raise ValueError(f"empty shape {shape}")
    ctype = np.ctypeslib.as_ctypes_type(np.dtype(dtype))
    raw = (ctype * count).from_address(int(address))
    return np.ctypeslib.as_array(raw).reshape(shape)


class HostDeviceBuffer:
    """One array in CUDA memory, visible to the CPU as ``array`` and to the GPU at ``device_ptr``.

    Args:
        shape: array shape, first axis is the batch (rows).
        mode: ``"mapped"`` (one allocation, no copies) or ``"pinned"`` (host + device copy).
        dtype: element type (float32 for the ReID engines).
        cudart: cuda-python runtime module (default: imported).

    Raises:
        CudaError: an allocation failed (names the call: ``cudaHostAlloc``,
            ``cudaHostGetDevicePointer``, ``cudaMalloc``).
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        mode: MemoryMode,
        dtype: np.dtype | type = np.float32,
        cudart: ModuleType | None = None,
    ) -> None:
        if mode not in ("mapped", "pinned"):
            raise ValueError(f"memory mode must be 'mapped' or 'pinned', got {mode!r}")
        self._rt = rt = cudart if cudart is not None else import_cudart()
        self.shape = tuple(int(s) for s in shape)
        self.mode: MemoryMode = mode
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.row_nbytes = self.nbytes // self.shape[0]
        self.host_ptr = 0
        self.device_ptr = 0
        self._device_alloc = 0
        try:
            if mode == "mapped":
                # Mapped, page-locked host memory; with unified virtual addressing
                # (all 64-bit Jetson/Linux platforms) no cudaSetDeviceFlags(cudaDeviceMapHost) is needed.
                self.host_ptr = int(check(rt.cudaHostAlloc(self.nbytes, rt.cudaHostAllocMapped), "cudaHostAlloc", rt))
                self.device_ptr = int(check(rt.cudaHostGetDevicePointer(self.host_ptr, 0), "cudaHostGetDevicePointer", rt))
            else:
                self.host_ptr = int(check(rt.cudaHostAlloc(self.nbytes, rt.cudaHostAllocDefault), "cudaHostAlloc", rt))
                self._device_alloc = int(check(rt.cudaMalloc(self.nbytes), "cudaMalloc", rt))
                self.device_ptr = self._device_alloc
        except Exception:
            self.close()
            raise
        self.array = host_array(self.host_ptr, self.shape, self.dtype)

    @property
    def zero_copy(self) -> bool:
        """True when the GPU reads/writes ``array`` directly (mapped mode)."""
        return self.mode == "mapped"

    def upload(self, rows: int, stream: "CudaStream") -> None:
        """Queue a host-to-device copy of the first ``rows`` rows on ``stream`` (no-op when mapped)."""
        if self.zero_copy or rows <= 0:
            return
        rt = self._rt
        check(
            rt.cudaMemcpyAsync(self.device_ptr, self.host_ptr, rows * self.row_nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.handle),
            "cudaMemcpyAsync",
            rt,
        )

    def download(self, rows: int, stream: "CudaStream") -> None:
        """Queue a device-to-host copy of the first ``rows`` rows on ``stream`` (no-op when mapped)."""
        if self.zero_copy or rows <= 0:
            return
        rt = self._rt
        check(
            rt.cudaMemcpyAsync(self.host_ptr, self.device_ptr, rows * self.row_nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.handle),
            "cudaMemcpyAsync",
            rt,
        )

    def close(self) -> None:
        """Free the CUDA memory (safe to call twice). ``array`` must not be used afterwards."""
        rt = self._rt
        try:
            if self._device_alloc:
                ptr, self._device_alloc = self._device_alloc, 0
                check(rt.cudaFree(ptr), "cudaFree", rt)
        finally:  # the pinned host memory goes even when freeing the device side failed
            if self.host_ptr:
                ptr, self.host_ptr = self.host_ptr, 0
                self.device_ptr = 0
                check(rt.cudaFreeHost(ptr), "cudaFreeHost", rt)


class CudaStream:
    """A CUDA stream (``cudaStreamCreate``), destroyed by :meth:`close`.

    Attributes:
        handle: the stream as an int, as TensorRT's ``execute_async_v3(stream_handle)`` takes it.
    """

    def __init__(self, cudart: ModuleType | None = None) -> None:
        self._rt = rt = cudart if cudart is not None else import_cudart()
        self._stream = check(rt.cudaStreamCreate(), "cudaStreamCreate", rt)
        # cuda-python handle types convert to their address with int().
        self.handle = int(self._stream)

    def synchronize(self) -> None:
        """Block until all work queued on the stream is done.

        Raises:
            CudaError: a queued kernel or copy failed.
        """
        check(self._rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize", self._rt)

    def close(self) -> None:
        """Destroy the stream (safe to call twice)."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            check(self._rt.cudaStreamDestroy(stream), "cudaStreamDestroy", self._rt)


@dataclass
class CudaBatchBuffers:
    """A backend's input and output in CUDA memory, exposed as a plain :class:`BatchBuffers`.

    Attributes:
        buffers: ``input`` (max_batch, 3, H, W) float32 and ``output`` (max_batch, D)
            float32 numpy views; preprocessing and matching use them exactly like
            the CPU backend's arrays.
        input: the CUDA allocation behind ``buffers.input``.
        output: the CUDA allocation behind ``buffers.output``.
        mode: ``"mapped"`` or ``"pinned"``.
    """

    buffers: BatchBuffers
    input: HostDeviceBuffer
    output: HostDeviceBuffer
    mode: MemoryMode
    _closed: bool = field(default=False, repr=False)

    @property
    def input_device_ptr(self) -> int:
        """Device address to bind to the engine's input tensor."""
        return self.input.device_ptr

    @property
    def output_device_ptr(self) -> int:
        """Device address to bind to the engine's output tensor."""
        return self.output.device_ptr

    def upload(self, rows: int, stream: CudaStream) -> None:
        """Before a run: copy ``rows`` input rows to the device (no-op when mapped)."""
        self.input.upload(rows, stream)

    def download(self, rows: int, stream: CudaStream) -> None:
        """After a run (then synchronise): copy ``rows`` output rows to the host (no-op when mapped)."""
        self.output.download(rows, stream)

    def close(self) -> None:
        """Free both allocations (safe to call twice)."""
        if not self._closed:
            self._closed = True
            try:
                self.input.close()
            finally:
                self.output.close()


def allocate_batch_buffers(
    max_batch: int,
    input_chw: tuple[int, int, int],
    embedding_dim: int,
    mode: MemoryMode,
    cudart: ModuleType | None = None,
) -> CudaBatchBuffers:
    """Allocate input (max_batch, C, H, W) and output (max_batch, D) float32 in CUDA memory.

    Args:
        max_batch: rows, the engine profile's max batch (>= 1).
        input_chw: (3, H, W) of one preprocessed crop.
        embedding_dim: D.
        mode: from :func:`choose_memory_mode`.
        cudart: cuda-python runtime module (default: imported).

    Raises:
        ValueError: max_batch < 1.
        CudaError: an allocation failed.
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    inp = HostDeviceBuffer((max_batch, *input_chw), mode, np.float32, cudart)
    try:
        out = HostDeviceBuffer((max_batch, embedding_dim), mode, np.float32, cudart)
    except Exception:
        inp.close()
        raise
    inp.array.fill(0.0)
    out.array.fill(0.0)
    return CudaBatchBuffers(BatchBuffers(input=inp.array, output=out.array), inp, out, mode)
