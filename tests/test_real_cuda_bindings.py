"""Conformance with the REAL cuda-python releases (12.6, 12.9, 13), which import without a driver.

- the record the stand-in is built from (tests/binding_surfaces.json) equals what each real module
  reports now: functions, constants, enum values, ``cudaDeviceProp`` fields, what each call does
  without a driver (12.6 raises RuntimeError, 12.9 and 13 return cudaErrorInsufficientDriver),
  whether plain ints pass where enum members are expected (12.6: no);
- the stand-in (tests/fake_cudart.py) reproduces those outcomes;
- our code with each real module and no driver: which module ``import_cudart`` finds, what
  ``gpu_status`` says, and ``check``'s message.

The first run downloads the wheels (tests/real_bindings.py); without the registry these skip.
"""

from __future__ import annotations


import pytest

import real_bindings
from binding_probe import CUDA_USED
from fake_cudart import FakeCudaRuntime

KEYS = list(real_bindings.CUDA)


recorded = real_bindings.recorded_surface


@pytest.fixture(scope="module", params=KEYS)
def probed(request):
    try:
        env = real_bindings.environment(request.param)
    except real_bindings.Unavailable as exc:
        pytest.skip(f"real cuda-python unavailable here: {exc}")
    return request.param, env.probe("cuda", edge_reid=True)


@pytest.mark.slow
def test_recorded_surface_is_the_real_modules(probed):
    key, data = probed
    real_bindings.assert_surface_is_recorded(key, data["surface"])


@pytest.mark.slow
def test_our_code_with_the_real_module_and_no_driver(probed):
    key, data = probed
    ours = data["edge_reid"]
    assert ours["import_cudart"] == "cuda.bindings.runtime"  # the current module path in every release
    status = ours["gpu_status"]
    assert status["gpu"] is False and status["driver"] == ""
    assert status["reason"].startswith("no NVIDIA driver") and "'video' and 'render' groups" in status["reason"]
    assert status["runtime"] == {"cuda-12.6": "12.6", "cuda-12.9": "12.9", "cuda-13": "13.4"}[key]  # cuda-python's own build
    assert ours["check"].startswith("raises CudaError: CUDA call cudaMalloc failed: cudaErrorInsufficientDriver")


@pytest.mark.parametrize("key", KEYS)
def test_everything_edge_reid_calls_exists_in_each_release(key):
    surface = recorded(key)
    assert surface["modules"]["cuda.bindings.runtime"] is True
    assert all(surface["functions"][name] for name in CUDA_USED["functions"])
    assert all(surface["cudaDeviceProp"][name] for name in CUDA_USED["cudaDeviceProp"])
    assert all(surface["cudaError_t"][name] is not None for name in CUDA_USED["cudaError_t"])
    assert {"cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost", "cudaMemcpyDeviceToDevice"} <= set(surface["cudaMemcpyKind"])
    assert surface["int(cudaStream_t(0x1234))"] == 0x1234  # CudaStream.handle = int(stream), as TensorRT takes it
    kernel = surface["kernel"]  # the device check's NVRTC kernel
    assert all(kernel["driver"].values()) and all(kernel["nvrtc"].values())
    assert kernel["CUresult.CUDA_SUCCESS"] == 0 and kernel["nvrtcResult.NVRTC_SUCCESS"] == 0
    assert kernel["cuLaunchKernel_no_driver_is_not_a_TypeError"]


def test_cuda_python_13_has_no_cuda_cudart_module():
    """Why import_cudart tries cuda.bindings.runtime first: cuda-python 13 dropped the old alias."""
    assert recorded("cuda-13")["modules"]["cuda.cudart"] is False
    assert recorded("cuda-12.6")["modules"]["cuda.cudart"] is True


@pytest.mark.parametrize("key", KEYS)
def test_the_stand_in_reproduces_each_release(key):
    version = key.removeprefix("cuda-")
    surface = recorded(key)
    rt = FakeCudaRuntime(version=version, driver=False)
    assert {m.name: int(m) for m in rt.cudaError_t} == {k: v for k, v in surface["cudaError_t"].items()}
    assert {m.name: int(m) for m in rt.cudaMemcpyKind} == surface["cudaMemcpyKind"]
    assert (rt.cudaHostAllocDefault, rt.cudaHostAllocMapped) == tuple(surface["constants"].values())

    def outcome(call) -> str:
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001
            return f"raises {type(exc).__name__}: {exc}"
        first = result[0] if isinstance(result, tuple) else result
        return f"returns {getattr(first, 'name', first)}"

    kinds = rt.cudaMemcpyKind
    calls = {
        "cudaRuntimeGetVersion": lambda: rt.cudaRuntimeGetVersion(),
        "cudaDriverGetVersion": lambda: rt.cudaDriverGetVersion(),
        "cudaGetDeviceCount": lambda: rt.cudaGetDeviceCount(),
        "cudaGetDeviceProperties": lambda: rt.cudaGetDeviceProperties(0),
        "cudaHostAlloc": lambda: rt.cudaHostAlloc(64, rt.cudaHostAllocMapped),
        "cudaMalloc": lambda: rt.cudaMalloc(64),
        "cudaStreamCreate": lambda: rt.cudaStreamCreate(),
        "cudaHostGetDevicePointer": lambda: rt.cudaHostGetDevicePointer(0x1000, 0),
        "cudaMemcpyAsync": lambda: rt.cudaMemcpyAsync(0x1000, 0x2000, 64, kinds.cudaMemcpyHostToDevice, 0x1234),
        "cudaStreamSynchronize": lambda: rt.cudaStreamSynchronize(0x1234),
        "cudaStreamDestroy": lambda: rt.cudaStreamDestroy(0x1234),
        "cudaFree": lambda: rt.cudaFree(0x1000),
        "cudaFreeHost": lambda: rt.cudaFreeHost(0x1000),
        "cudaGetErrorString": lambda: rt.cudaGetErrorString(rt.cudaError_t.cudaErrorInsufficientDriver),
    }
    assert set(calls) == set(surface["no_driver"])  # the probe made the same calls in this order (12.6 changes its message after the first)
    assert {name: outcome(call) for name, call in calls.items()} == surface["no_driver"]
    plain = {
        "cudaGetErrorString(35)": outcome(lambda: FakeCudaRuntime(version=version, driver=False).cudaGetErrorString(35)),
        "cudaMemcpyAsync(kind=1)": outcome(lambda: FakeCudaRuntime(version=version, driver=False).cudaMemcpyAsync(0x1000, 0x2000, 64, 1, 0x1234)),
    }
    for name, real in surface["plain_ints"].items():
        assert plain[name].startswith("raises AttributeError") == real.startswith("raises AttributeError"), name
    assert rt.cudaRuntimeGetVersion()[1] == surface["cudaRuntimeGetVersion"]


def test_without_the_package_registry_the_harness_says_why(monkeypatch, tmp_path):
    """What CI sees offline: Unavailable with pip's reason (the tests above then skip with it)."""
    monkeypatch.setenv("EDGE_REID_BINDINGS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))  # an empty folder instead of any index
    with pytest.raises(real_bindings.Unavailable, match=r"pip cannot install cuda-python==12\.6\.2\.post1: .*"):
        real_bindings.install(real_bindings.CUDA["cuda-12.6"])
    assert not list((tmp_path / "cache").glob("*")), "a failed install leaves nothing behind"
