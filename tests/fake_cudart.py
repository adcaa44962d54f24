"""A CPU stand-in for cuda-python's runtime module, for testing our bookkeeping only.

It mimics cuda-python's calling convention (every call returns ``(cudaError_t, *values)``)
over ordinary host memory: "device" allocations are numpy arrays and
``cudaMemcpyAsync`` is an immediate ``ctypes.memmove``. It proves nothing about CUDA
itself (that is what tests/test_cuda_buffers_gpu.py is for); it checks which calls our
code makes, with which sizes and directions, that every error code is raised with
the call's name, and that everything allocated is freed.
"""

from __future__ import annotations

import ctypes
import enum
from types import SimpleNamespace

import numpy as np


class cudaError_t(enum.IntEnum):  # noqa: N801 - cuda-python's name
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


class FakeCudaRuntime:
    """Module-like object with the cuda-python runtime calls edge_reid uses."""

    cudaError_t = cudaError_t
    cudaMemcpyKind = cudaMemcpyKind
    cudaHostAllocDefault = 0
    cudaHostAllocMapped = 2

    def __init__(self, integrated: bool = True, fail: dict[str, int] | None = None) -> None:
        self.integrated = integrated
        self.fail = dict(fail or {})  # call name -> number of successful calls before it fails
        self.host: dict[int, np.ndarray] = {}
        self.device: dict[int, np.ndarray] = {}
        self.calls: list[tuple] = []
        self.streams: set[int] = set()
        self._next_stream = 0x1000

    def _failing(self, name: str) -> bool:
        if name not in self.fail:
            return False
        if self.fail[name] == 0:
            return True
        self.fail[name] -= 1
        return False

    def _alloc(self, table: dict, size: int) -> int:
        mem = np.zeros(max(size, 1), np.uint8)
        address = mem.ctypes.data
        table[address] = mem
        return address

    def cudaHostAlloc(self, size, flags):
        self.calls.append(("cudaHostAlloc", size, flags))
        if self._failing("cudaHostAlloc"):
            return (cudaError_t.cudaErrorMemoryAllocation, 0)
        return (cudaError_t.cudaSuccess, self._alloc(self.host, size))

    def cudaHostGetDevicePointer(self, host_ptr, flags):
        self.calls.append(("cudaHostGetDevicePointer", host_ptr, flags))
        if self._failing("cudaHostGetDevicePointer") or host_ptr not in self.host:
            return (cudaError_t.cudaErrorInvalidValue, 0)
        return (cudaError_t.cudaSuccess, host_ptr)  # unified addressing: same address

    def cudaMalloc(self, size):
        self.calls.append(("cudaMalloc", size))
        if self._failing("cudaMalloc"):
            return (cudaError_t.cudaErrorMemoryAllocation, 0)
        return (cudaError_t.cudaSuccess, self._alloc(self.device, size))

    def cudaFree(self, ptr):
        self.calls.append(("cudaFree", ptr))
        return (cudaError_t.cudaSuccess,) if self.device.pop(ptr, None) is not None else (cudaError_t.cudaErrorInvalidValue,)

    def cudaFreeHost(self, ptr):
        self.calls.append(("cudaFreeHost", ptr))
        return (cudaError_t.cudaSuccess,) if self.host.pop(ptr, None) is not None else (cudaError_t.cudaErrorInvalidValue,)

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        self.calls.append(("cudaMemcpyAsync", dst, src, count, kind, stream))
        if stream not in self.streams:
            return (cudaError_t.cudaErrorInvalidValue,)
        ctypes.memmove(dst, src, count)
        return (cudaError_t.cudaSuccess,)

    def cudaStreamCreate(self):
        self.calls.append(("cudaStreamCreate",))
        self._next_stream += 1
        self.streams.add(self._next_stream)
        return (cudaError_t.cudaSuccess, self._next_stream)

    def cudaStreamSynchronize(self, stream):
        self.calls.append(("cudaStreamSynchronize", int(stream)))
        return (cudaError_t.cudaSuccess,)

    def cudaStreamDestroy(self, stream):
        self.calls.append(("cudaStreamDestroy", int(stream)))
        self.streams.discard(int(stream))
        return (cudaError_t.cudaSuccess,)

    def cudaGetErrorString(self, code):
        return (cudaError_t.cudaSuccess, {2: b"out of memory", 1: b"invalid argument"}.get(int(code), b"unknown"))

    def cudaRuntimeGetVersion(self):
        return (cudaError_t.cudaSuccess, 12060)

    def cudaDriverGetVersion(self):
        return (cudaError_t.cudaSuccess, 12060)

    def cudaGetDeviceCount(self):
        return (cudaError_t.cudaSuccess, 1)

    def cudaGetDeviceProperties(self, device):
        if device != 0:
            return (cudaError_t.cudaErrorInvalidValue, None)
        prop = SimpleNamespace(
            name=b"Orin\x00\x00\x00", major=8, minor=7, integrated=int(self.integrated), canMapHostMemory=1, totalGlobalMem=7 << 30
        )
        return (cudaError_t.cudaSuccess, prop)
