"""CUDA layer decisions and bookkeeping on the CPU: error checking, device query, memory mode,
host views, and the upload/download/free sequence (against tests/fake_cudart.py, a CPU stand-in
whose surface is recorded from the real cuda-python releases; the real CUDA behaviour is tested in
tests/test_cuda_buffers_gpu.py and by `edge-reid doctor --selftest` where a GPU exists)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_reid.cuda.buffers import CudaStream, HostDeviceBuffer, allocate_batch_buffers, choose_memory_mode, host_array
from edge_reid.cuda.runtime import CudaError, GpuInfo, check, format_cuda_version, gpu_status, query_gpu
from fake_cudart import VERSIONS, FakeCudaRuntime

ORIN = GpuInfo(0, "Orin", (8, 7), integrated=True, can_map_host_memory=True, total_memory_bytes=7 << 30, multiprocessors=16)
H100 = GpuInfo(0, "NVIDIA H100 80GB HBM3", (9, 0), integrated=False, can_map_host_memory=True, total_memory_bytes=80 << 30)


def test_check_unpacks_values():
    rt = FakeCudaRuntime()
    assert check((rt.cudaError_t.cudaSuccess,), "cudaFree", rt) is None
    assert check((rt.cudaError_t.cudaSuccess, 7), "cudaMalloc", rt) == 7
    assert check((rt.cudaError_t.cudaSuccess, 1, 2), "cudaMemGetInfo", rt) == (1, 2)


def test_check_raises_with_function_name_and_error():
    rt = FakeCudaRuntime()
    with pytest.raises(CudaError) as info:
        check((rt.cudaError_t.cudaErrorMemoryAllocation, 0), "cudaHostAlloc", rt)
    assert str(info.value) == "CUDA call cudaHostAlloc failed: cudaErrorMemoryAllocation (out of memory)"
    assert info.value.function == "cudaHostAlloc" and info.value.code == 2


def test_check_without_driver_falls_back_to_the_error_name():
    class NoDriver(FakeCudaRuntime):
        def cudaGetErrorString(self, code):  # cuda-python raises this without libcuda.so
            raise RuntimeError("Failed to dlopen libcuda.so.1")

    rt = NoDriver()
    with pytest.raises(CudaError, match=r"cudaMalloc failed: cudaErrorMemoryAllocation$"):
        check((rt.cudaError_t.cudaErrorMemoryAllocation, 0), "cudaMalloc", rt)


def test_query_gpu_and_status():
    info = query_gpu(0, FakeCudaRuntime(integrated=True))
    assert info.name == "Orin" and info.compute_capability == (8, 7) and info.integrated and info.multiprocessors == 16
    assert info.compute_capability_str == "8.7" and "integrated, 16 SMs" in info.describe() and info.memory_gib == 7
    with pytest.raises(CudaError, match="cudaGetDeviceProperties"):
        query_gpu(3, FakeCudaRuntime())
    status = gpu_status(FakeCudaRuntime(version="12.9", driver_version=12060))
    assert status.gpu is not None and status.reason == ""
    assert (status.runtime_version, status.driver_version) == ("12.9", "12.6")  # cuda-python's build vs the device's CUDA


@pytest.mark.parametrize("version", VERSIONS)
def test_gpu_status_without_a_driver_in_each_real_release(version):
    """12.6 raises RuntimeError on dlopen, 12.9 and 13 report driver version 0: both say "no NVIDIA driver" and why."""
    status = gpu_status(FakeCudaRuntime(version=version, driver=False))
    assert status.gpu is None and status.driver_version == ""
    assert status.reason.startswith("no NVIDIA driver") and "'video' and 'render' groups" in status.reason
    assert "nvidia-smi" in status.reason and "--runtime nvidia" in status.reason


def test_gpu_status_with_cuda_python_newer_than_the_driver_names_the_matching_cuda_python():
    status = gpu_status(FakeCudaRuntime(version="13", driver_version=12060))  # JetPack 6.1 with cuda-python 13
    assert status.gpu is None
    assert "supports CUDA 12.6" in status.reason and "built for CUDA 13.4" in status.reason
    assert "pip install 'cuda-python==12.6.*'" in status.reason


def test_gpu_status_when_cuda_cannot_start():
    class NoDevice(FakeCudaRuntime):
        def cudaGetDeviceCount(self):
            return (self.cudaError_t.cudaErrorNoDevice, 0)

    reason = gpu_status(NoDevice()).reason
    assert reason.startswith("CUDA cannot start: CUDA call cudaGetDeviceCount failed: cudaErrorNoDevice") and "render" in reason


def test_cuda_version_format():
    assert format_cuda_version(12060) == "12.6" and format_cuda_version(11040) == "11.4" and format_cuda_version(12020) == "12.2"


def test_memory_mode_is_mapped_only_on_integrated_gpus_that_map_host_memory():
    assert choose_memory_mode(ORIN) == "mapped"
    assert choose_memory_mode(H100) == "pinned"
    no_map = GpuInfo(0, "Old", (5, 3), integrated=True, can_map_host_memory=False, total_memory_bytes=1)
    assert choose_memory_mode(no_map) == "pinned"


def test_host_array_is_a_view_over_the_address():
    backing = np.arange(24, dtype=np.float32)
    view = host_array(backing.ctypes.data, (2, 3, 4))
    assert view.shape == (2, 3, 4) and view.flags.c_contiguous and view.dtype == np.float32
    view[1, 2, 3] = -5.0
    assert backing[23] == -5.0
    with pytest.raises(ValueError):
        host_array(0, (1,))


def test_mapped_buffers_bookkeeping_issues_no_copy_calls():
    rt = FakeCudaRuntime(integrated=True)
    cuda = allocate_batch_buffers(8, (3, 4, 2), 5, "mapped", cudart=rt)
    stream = CudaStream(rt)
    assert cuda.buffers.input.shape == (8, 3, 4, 2) and cuda.buffers.output.shape == (8, 5)
    assert cuda.input_device_ptr == cuda.buffers.input.ctypes.data  # the GPU reads where the CPU wrote
    assert cuda.output_device_ptr == cuda.buffers.output.ctypes.data
    assert [c[0] for c in rt.calls if c[0] == "cudaHostAlloc"] == ["cudaHostAlloc"] * 2
    assert all(c[2] == rt.cudaHostAllocMapped for c in rt.calls if c[0] == "cudaHostAlloc")
    cuda.upload(8, stream)
    cuda.download(8, stream)
    assert not [c for c in rt.calls if c[0] == "cudaMemcpyAsync"]
    cuda.close()
    stream.close()
    assert rt.host == {} and rt.device == {} and rt.streams == set()


def test_pinned_buffers_bookkeeping_copies_only_the_used_rows_on_the_stream():
    rt = FakeCudaRuntime(integrated=False)
    cuda = allocate_batch_buffers(8, (3, 4, 2), 5, "pinned", cudart=rt)
    stream = CudaStream(rt)
    assert cuda.input_device_ptr != cuda.buffers.input.ctypes.data
    cuda.buffers.input[:3] = 1.5
    cuda.upload(3, stream)
    device_input = rt.device[cuda.input_device_ptr].view(np.float32)
    assert np.all(device_input[: 3 * 24] == 1.5) and np.all(device_input[3 * 24 :] == 0)
    rt.device[cuda.output_device_ptr].view(np.float32)[:] = 2.0  # "the engine wrote" all rows
    cuda.download(2, stream)
    assert np.all(cuda.buffers.output[:2] == 2.0) and np.all(cuda.buffers.output[2:] == 0)
    copies = [c for c in rt.calls if c[0] == "cudaMemcpyAsync"]
    assert [(c[3], c[4], c[5]) for c in copies] == [
        (3 * 3 * 4 * 2 * 4, rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.handle),
        (2 * 5 * 4, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.handle),
    ]
    cuda.close()
    cuda.close()  # twice is fine
    assert rt.host == {} and rt.device == {}


def test_failed_allocation_frees_what_was_allocated_and_names_the_call():
    rt = FakeCudaRuntime(integrated=False, fail={"cudaMalloc": 1})  # the output's cudaMalloc fails
    with pytest.raises(CudaError, match="cudaMalloc failed: cudaErrorMemoryAllocation"):
        allocate_batch_buffers(64, (3, 256, 128), 512, "pinned", cudart=rt)
    assert rt.host == {} and rt.device == {}
    rt = FakeCudaRuntime(fail={"cudaHostGetDevicePointer": 0})
    with pytest.raises(CudaError, match="cudaHostGetDevicePointer"):
        HostDeviceBuffer((4, 8), "mapped", cudart=rt)
    assert rt.host == {}


def test_a_failed_device_free_still_frees_the_pinned_host_memory():
    """In pinned mode, a cudaFree that failed skipped cudaFreeHost: the page-locked host memory leaked."""
    rt = FakeCudaRuntime(integrated=False, fail={"cudaFree": 0})
    buffer = HostDeviceBuffer((4, 8), "pinned", cudart=rt)
    with pytest.raises(CudaError, match="cudaFree failed"):
        buffer.close()
    assert rt.host == {}
    buffer.close()  # nothing left to free


def test_unknown_memory_mode():
    with pytest.raises(ValueError, match="mapped"):
        HostDeviceBuffer((1, 1), "unified", cudart=FakeCudaRuntime())


def test_import_cudart_prefers_cuda_bindings_and_falls_back_to_cuda_cudart(monkeypatch):
    import sys
    import types

    from edge_reid.cuda.runtime import import_cudart
    from edge_reid.errors import BackendUnavailableError

    new, old = types.ModuleType("cuda.bindings.runtime"), types.ModuleType("cuda.cudart")
    package, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    package.__path__, bindings.__path__ = [], []
    package.cudart, package.bindings, bindings.runtime = old, bindings, new
    monkeypatch.setitem(sys.modules, "cuda", package)
    monkeypatch.setitem(sys.modules, "cuda.cudart", old)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", new)
    import_cudart.cache_clear()
    try:
        assert import_cudart() is new  # cuda-python >= 12.6.1
        import_cudart.cache_clear()
        monkeypatch.setitem(sys.modules, "cuda.bindings", None)  # older cuda-python: no cuda.bindings
        monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
        assert import_cudart() is old
        import_cudart.cache_clear()
        monkeypatch.setitem(sys.modules, "cuda", None)
        monkeypatch.setitem(sys.modules, "cuda.cudart", None)
        with pytest.raises(BackendUnavailableError, match="cuda-python is not installed"):
            import_cudart()
    finally:
        import_cudart.cache_clear()
