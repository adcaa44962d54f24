"""A CPU stand-in for cuda-python's runtime module, for testing our bookkeeping only.

Its surface is derived from the real cuda-python releases (``tests/binding_surfaces.json``, recorded
by tests/real_bindings.py and checked against the real modules by tests/test_real_cuda_bindings.py):
the real ``cudaError_t`` / ``cudaMemcpyKind`` values, the ``cudaHostAlloc*`` flags, the
``cudaDeviceProp`` fields, ``cudaRuntimeGetVersion`` (cuda-python's own build version), whether a
plain int is accepted where an enum member is expected (12.6: no), and what each call does without
a driver (12.6 raises ``RuntimeError``; 12.9 and 13 return ``cudaErrorInsufficientDriver`` and a
driver version of 0).

With a "driver", every call returns ``(cudaError_t, *values)`` over ordinary host memory: "device"
allocations are numpy arrays and ``cudaMemcpyAsync`` is an immediate ``ctypes.memmove``. It proves
nothing about CUDA itself (tests/test_cuda_buffers_gpu.py and ``edge-reid doctor --selftest`` are
for that); it checks which calls our code makes, with which sizes and directions, that every error
code is raised with the call's name, and that everything allocated is freed.
"""

from __future__ import annotations

import ctypes
import enum
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

SURFACES = json.loads((Path(__file__).with_name("binding_surfaces.json")).read_text())
VERSIONS = tuple(key.removeprefix("cuda-") for key in SURFACES if key.startswith("cuda-"))


def surface(version: str) -> dict:
    """The recorded surface of real cuda-python ``version`` (``"12.6"``, ``"12.9"``, ``"13"``)."""
    return SURFACES[f"cuda-{version}"]["surface"]


def _first_driver_error(text: str) -> str:
    return text.split(": ", 1)[1] if text.startswith("raises RuntimeError") else ""


class FakeCudaRuntime:
    """Module-like object with the cuda-python runtime calls edge_reid uses.

    Args:
        integrated: the device is an integrated GPU (Jetson) rather than a discrete one.
        fail: call name -> number of successful calls before that call fails.
        version: which real cuda-python release to mimic (see :data:`VERSIONS`).
        driver: False mimics a machine without the NVIDIA driver (libcuda.so.1 missing).
        driver_version: CUDA version the "driver" supports, as CUDA's integer (12060 = 12.6).
        name, multiprocessors, total_memory: the device's properties.
    """

    def __init__(
        self,
        integrated: bool = True,
        fail: dict[str, int] | None = None,
        version: str = "12.6",
        driver: bool = True,
        driver_version: int = 12060,
        name: bytes = b"Orin",
        multiprocessors: int = 16,
        total_memory: int = 7 << 30,
    ) -> None:
        s = surface(version)
        self.version = version
        self._surface = s
        self.cudaError_t = enum.IntEnum("cudaError_t", {k: v for k, v in s["cudaError_t"].items() if v is not None})
        self.cudaMemcpyKind = enum.IntEnum("cudaMemcpyKind", s["cudaMemcpyKind"])
        for name_, value in s["constants"].items():
            setattr(self, name_, value)
        self._enums_required = s["plain_ints"]["cudaMemcpyAsync(kind=1)"].startswith("raises")
        self.integrated = integrated
        self.driver = driver
        self.driver_version = driver_version
        self.device_name = name
        self.multiprocessors = multiprocessors
        self.total_memory = total_memory
        self.fail = dict(fail or {})
        self.host: dict[int, np.ndarray] = {}
        self.device: dict[int, np.ndarray] = {}
        self.calls: list[tuple] = []
        self.streams: set[int] = set()
        self._next_stream = 0x1000
        self._dlopen_failed = False

    # -- what real cuda-python does without a driver --------------------------------------------
    def _no_driver(self, name: str, values: int = 1):
        """Raise or return as the real release does when libcuda.so.1 is missing."""
        if self._surface["no_driver"].get("cudaGetDeviceCount", "").startswith("raises"):
            # cuda-python 12.6: the first call that needs the driver fails to dlopen it, later ones cannot find cuInit.
            first = not self._dlopen_failed
            self._dlopen_failed = True
            raise RuntimeError("Failed to dlopen libcuda.so.1" if first else 'Function "cuInit" not found')
        return (self.cudaError_t.cudaErrorInsufficientDriver, *([None] * values))

    def _failing(self, name: str) -> bool:
        if name not in self.fail:
            return False
        if self.fail[name] == 0:
            return True
        self.fail[name] -= 1
        return False

    def _need_enum(self, value, enum_type) -> None:
        if self._enums_required and not isinstance(value, enum_type):
            raise AttributeError(f"'{type(value).__name__}' object has no attribute 'value'")  # real 12.6 message

    def _alloc(self, table: dict, size: int) -> int:
        mem = np.zeros(max(size, 1), np.uint8)
        address = mem.ctypes.data
        table[address] = mem
        return address

    # -- the calls --------------------------------------------------------------------------------
    def cudaHostAlloc(self, size, flags):
        self.calls.append(("cudaHostAlloc", size, flags))
        if not self.driver:
            return self._no_driver("cudaHostAlloc")
        if self._failing("cudaHostAlloc"):
            return (self.cudaError_t.cudaErrorMemoryAllocation, 0)
        return (self.cudaError_t.cudaSuccess, self._alloc(self.host, size))

    def cudaHostGetDevicePointer(self, host_ptr, flags):
        self.calls.append(("cudaHostGetDevicePointer", host_ptr, flags))
        if not self.driver:
            return self._no_driver("cudaHostGetDevicePointer")
        if self._failing("cudaHostGetDevicePointer") or host_ptr not in self.host:
            return (self.cudaError_t.cudaErrorInvalidValue, 0)
        return (self.cudaError_t.cudaSuccess, host_ptr)  # unified addressing: same address

    def cudaMalloc(self, size):
        self.calls.append(("cudaMalloc", size))
        if not self.driver:
            return self._no_driver("cudaMalloc")
        if self._failing("cudaMalloc"):
            return (self.cudaError_t.cudaErrorMemoryAllocation, 0)
        return (self.cudaError_t.cudaSuccess, self._alloc(self.device, size))

    def cudaFree(self, ptr):
        self.calls.append(("cudaFree", ptr))
        if not self.driver:
            return self._no_driver("cudaFree", 0)
        if self._failing("cudaFree"):
            return (self.cudaError_t.cudaErrorInvalidValue,)
        ok = self.device.pop(ptr, None) is not None
        return (self.cudaError_t.cudaSuccess if ok else self.cudaError_t.cudaErrorInvalidValue,)

    def cudaFreeHost(self, ptr):
        self.calls.append(("cudaFreeHost", ptr))
        if not self.driver:
            return self._no_driver("cudaFreeHost", 0)
        ok = self.host.pop(ptr, None) is not None
        return (self.cudaError_t.cudaSuccess if ok else self.cudaError_t.cudaErrorInvalidValue,)

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        self._need_enum(kind, self.cudaMemcpyKind)
        self.calls.append(("cudaMemcpyAsync", dst, src, count, kind, stream))
        if not self.driver:
            return self._no_driver("cudaMemcpyAsync", 0)
        if int(stream) not in self.streams:
            return (self.cudaError_t.cudaErrorInvalidValue,)
        ctypes.memmove(dst, src, count)
        return (self.cudaError_t.cudaSuccess,)

    def cudaStreamCreate(self):
        self.calls.append(("cudaStreamCreate",))
        if not self.driver:
            return self._no_driver("cudaStreamCreate")
        self._next_stream += 1
        self.streams.add(self._next_stream)
        return (self.cudaError_t.cudaSuccess, self._next_stream)

    def cudaStreamSynchronize(self, stream):
        self.calls.append(("cudaStreamSynchronize", int(stream)))
        if not self.driver:
            return self._no_driver("cudaStreamSynchronize", 0)
        return (self.cudaError_t.cudaSuccess,)

    def cudaStreamDestroy(self, stream):
        self.calls.append(("cudaStreamDestroy", int(stream)))
        if not self.driver:
            return self._no_driver("cudaStreamDestroy", 0)
        self.streams.discard(int(stream))
        return (self.cudaError_t.cudaSuccess,)

    def cudaGetErrorString(self, code):
        self._need_enum(code, self.cudaError_t)
        if not self.driver and self._surface["no_driver"]["cudaGetErrorString"].startswith("raises"):
            raise RuntimeError('Function "cuGetErrorString" not found')
        texts = {
            1: b"invalid argument", 2: b"out of memory", 35: b"CUDA driver version is insufficient for CUDA runtime version",
            100: b"no CUDA-capable device is detected", 999: b"unknown error",
        }
        return (self.cudaError_t.cudaSuccess, texts.get(int(code), b"unknown"))

    def cudaRuntimeGetVersion(self):
        return (self.cudaError_t.cudaSuccess, self._surface["cudaRuntimeGetVersion"])

    def cudaDriverGetVersion(self):
        if not self.driver:
            if self._surface["no_driver"]["cudaDriverGetVersion"].startswith("raises"):
                return self._no_driver("cudaDriverGetVersion")
            return (self.cudaError_t.cudaSuccess, 0)
        return (self.cudaError_t.cudaSuccess, self.driver_version)

    def cudaGetDeviceCount(self):
        if not self.driver:
            return self._no_driver("cudaGetDeviceCount")
        if self.driver_version < self._surface["cudaRuntimeGetVersion"] // 1000 * 1000:
            return (self.cudaError_t.cudaErrorInsufficientDriver, 0)  # e.g. cuda-python 13 on a CUDA 12 driver
        return (self.cudaError_t.cudaSuccess, 1)

    def cudaGetDeviceProperties(self, device):
        if not self.driver:
            return self._no_driver("cudaGetDeviceProperties")
        if device != 0:
            return (self.cudaError_t.cudaErrorInvalidDevice, None)
        values = {
            "name": self.device_name + b"\x00\x00\x00", "major": 8, "minor": 7, "integrated": int(self.integrated),
            "canMapHostMemory": 1, "totalGlobalMem": self.total_memory, "multiProcessorCount": self.multiprocessors,
        }
        prop = SimpleNamespace(**{k: v for k, v in values.items() if self._surface["cudaDeviceProp"].get(k)})
        return (self.cudaError_t.cudaSuccess, prop)
