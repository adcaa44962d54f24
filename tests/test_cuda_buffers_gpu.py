"""CUDA buffers on a real GPU: allocation, mapped pointers, a round trip through a stream.

Marked ``gpu``; skipped (with the reason) where cuda-python or a CUDA device is missing.
Run on a Jetson or any CUDA machine with: python -m pytest -q -m gpu tests/test_cuda_buffers_gpu.py
(`edge-reid doctor --selftest` runs the same kinds of checks with a GPU kernel and writes a report).
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_reid.cuda.runtime import check, gpu_status, import_cudart

pytestmark = pytest.mark.gpu

_STATUS = gpu_status()
if _STATUS.gpu is None:
    pytest.skip(f"needs a CUDA GPU and cuda-python: {_STATUS.reason}", allow_module_level=True)

from edge_reid.cuda.buffers import CudaStream, HostDeviceBuffer, allocate_batch_buffers, choose_memory_mode  # noqa: E402

GPU = _STATUS.gpu


@pytest.fixture
def rt():
    return import_cudart()


@pytest.fixture
def stream():
    s = CudaStream()
    yield s
    s.close()


def test_device_is_described():
    assert GPU.name and GPU.compute_capability[0] >= 5
    print(f"GPU: {GPU.describe()}, device CUDA (driver) {_STATUS.driver_version}, cuda-python built for {_STATUS.runtime_version}")


@pytest.mark.parametrize("mode", ["mapped", "pinned"])
def test_allocation_views_and_free(mode):
    if mode == "mapped" and not GPU.can_map_host_memory:
        pytest.skip("this GPU cannot map host memory")
    cuda = allocate_batch_buffers(64, (3, 256, 128), 512, mode)
    try:
        assert cuda.buffers.input.shape == (64, 3, 256, 128) and cuda.buffers.output.shape == (64, 512)
        assert cuda.buffers.input.dtype == np.float32 and cuda.buffers.input.flags.c_contiguous
        assert cuda.input_device_ptr and cuda.output_device_ptr
        assert not np.any(cuda.buffers.input) and not np.any(cuda.buffers.output)
        cuda.buffers.input[-1, -1, -1, -1] = 3.0  # the whole host view is writable
    finally:
        cuda.close()


def test_mapped_pointer_is_device_visible(rt, stream):
    """Write through the host view, copy device-to-device from the mapped device pointer, read back."""
    if not GPU.can_map_host_memory:
        pytest.skip("this GPU cannot map host memory")
    mapped = HostDeviceBuffer((4, 1024), "mapped")
    device = check(rt.cudaMalloc(mapped.nbytes), "cudaMalloc", rt)
    back = HostDeviceBuffer((4, 1024), "pinned")
    try:
        mapped.array[:] = np.arange(4 * 1024, dtype=np.float32).reshape(4, 1024)
        d2d = rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        check(rt.cudaMemcpyAsync(device, mapped.device_ptr, mapped.nbytes, d2d, stream.handle), "cudaMemcpyAsync", rt)
        check(rt.cudaMemcpyAsync(back.device_ptr, device, mapped.nbytes, d2d, stream.handle), "cudaMemcpyAsync", rt)
        back.download(4, stream)
        stream.synchronize()
        np.testing.assert_array_equal(back.array, mapped.array)
    finally:
        check(rt.cudaFree(device), "cudaFree", rt)
        mapped.close()
        back.close()


def test_pinned_round_trip_through_the_stream(rt, stream):
    """Host -> device (upload n rows) -> device-to-device into the output -> host (download n rows)."""
    source = HostDeviceBuffer((8, 3, 16, 8), "pinned")
    target = HostDeviceBuffer((8, 3, 16, 8), "pinned")
    try:
        data = np.random.default_rng(0).standard_normal(source.shape).astype(np.float32)
        source.array[:] = data
        target.array[:] = -1.0
        source.upload(5, stream)
        d2d = rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        check(rt.cudaMemcpyAsync(target.device_ptr, source.device_ptr, source.nbytes, d2d, stream.handle), "cudaMemcpyAsync", rt)
        target.download(5, stream)
        stream.synchronize()
        np.testing.assert_array_equal(target.array[:5], data[:5])
        assert np.all(target.array[5:] == -1.0)  # only the first 5 rows came back
    finally:
        source.close()
        target.close()


def test_the_buffers_of_the_mode_chosen_for_this_gpu_carry_a_batch_through_the_device(rt, stream):
    """The path TensorRT takes: CPU writes n input rows, upload (no-op when mapped), the device reads the
    input and writes the output (here a device-to-device copy), download (no-op when mapped), synchronise."""
    mode = choose_memory_mode(GPU)
    cuda = allocate_batch_buffers(8, (3, 16, 8), 3 * 16 * 8, mode)
    try:
        data = np.random.default_rng(1).standard_normal((8, 3, 16, 8)).astype(np.float32)
        cuda.buffers.input[:] = data
        cuda.upload(5, stream)
        d2d = rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        check(rt.cudaMemcpyAsync(cuda.output_device_ptr, cuda.input_device_ptr, 5 * cuda.input.row_nbytes, d2d, stream.handle), "cudaMemcpyAsync", rt)
        cuda.download(5, stream)
        stream.synchronize()
        np.testing.assert_array_equal(cuda.buffers.output[:5], data[:5].reshape(5, -1))
        assert not np.any(cuda.buffers.output[5:])  # only the used rows moved
    finally:
        cuda.close()


def test_the_device_checks_kernel_computes_on_buffers_of_each_mode(rt, stream):
    """The NVRTC kernel ``doctor --selftest`` runs, on this GPU: y = 2x + 1 over the used rows only."""
    from edge_reid.device_check import AffineKernel

    kernel = AffineKernel(GPU.compute_capability, rt)
    try:
        for mode in ["mapped", "pinned"] if GPU.can_map_host_memory else ["pinned"]:
            x, y = HostDeviceBuffer((6, 256), mode, cudart=rt), HostDeviceBuffer((6, 256), mode, cudart=rt)
            try:
                x.array[:] = np.arange(6 * 256, dtype=np.float32).reshape(6, 256)
                y.array[:] = -1.0
                x.upload(4, stream)
                kernel.launch(x.device_ptr, y.device_ptr, 2.0, 1.0, 4 * 256, stream.handle)
                y.download(4, stream)
                stream.synchronize()
                np.testing.assert_array_equal(y.array[:4], 2.0 * x.array[:4] + 1.0, err_msg=mode)
                assert np.all(y.array[4:] == -1.0), f"{mode}: rows past the used ones changed"
            finally:
                x.close()
                y.close()
    finally:
        kernel.close()


def test_selftest_in_a_fresh_process_runs_its_kernel(tmp_path):
    """A fresh process, as a user runs it: on an H200 the kernel was made before any CUDA runtime call had
    made a context current, so it never loaded (CUDA_ERROR_INVALID_CONTEXT) and the check ran copies only."""
    import json
    import subprocess
    import sys

    report = tmp_path / "device.json"
    subprocess.run([sys.executable, "-m", "edge_reid", "doctor", "--engines-dir", str(tmp_path), "--selftest", "--report", str(report)],
                   capture_output=True, text=True, timeout=600)
    buffers = json.loads(report.read_text())["checks"][0]
    assert buffers["name"] == "cuda-buffers" and buffers["status"] == "passed", buffers["detail"]
    assert buffers["measurements"]["kernel"] is True and "kernel x2" in buffers["detail"], buffers["detail"]


def test_waiting_on_the_stream_lets_other_python_threads_run(rt, stream):
    """The EmbeddingLoop overlaps matching (a Python thread) with the engine's wait on the stream: that only
    works if ``cudaStreamSynchronize`` releases the GIL while it waits. Device-to-device copies keep the
    stream busy for at least 0.2 s; a Python thread counts meanwhile."""
    import threading
    import time

    nbytes = min(256 * 2**20, GPU.total_memory_bytes // 16)
    a, b = check(rt.cudaMalloc(nbytes), "cudaMalloc", rt), check(rt.cudaMalloc(nbytes), "cudaMalloc", rt)
    d2d = rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice

    def queue(copies: int) -> None:
        for _ in range(copies):
            check(rt.cudaMemcpyAsync(b, a, nbytes, d2d, stream.handle), "cudaMemcpyAsync", rt)

    try:
        queue(8)
        started = time.perf_counter()
        queue(8)
        stream.synchronize()
        copies = max(8, int(8 * 0.2 / max(time.perf_counter() - started, 1e-6)))  # about 0.2 s of copying
        counted, stop = [0], threading.Event()

        def count() -> None:
            while not stop.is_set():
                counted[0] += 1

        worker = threading.Thread(target=count)
        queue(copies)
        worker.start()
        time.sleep(0.01)  # the counter is running
        before, started = counted[0], time.perf_counter()
        stream.synchronize()
        waited, during = time.perf_counter() - started, counted[0] - before
        stop.set()
        worker.join()
    finally:
        check(rt.cudaFree(a), "cudaFree", rt)
        check(rt.cudaFree(b), "cudaFree", rt)
    print(f"synchronize waited {1000 * waited:.0f} ms; another thread counted {during} meanwhile")
    assert waited > 0.05, "the copies did not keep the stream busy long enough to tell"
    assert during > 1000, f"a Python thread counted {during} in {1000 * waited:.0f} ms of cudaStreamSynchronize: the GIL was held"
