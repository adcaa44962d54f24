"""``edge-reid doctor --selftest`` on a machine without a GPU: the report, the "skipped: ..." path, and the
checks' own logic driven through the CPU stand-ins (bookkeeping only: the stand-ins' "engine" computes
channel means and their "kernel" runs on host memory; nothing here ran on a GPU)."""

from __future__ import annotations

import json
import re
import sys

import pytest

import edge_reid.cuda.runtime as cuda_runtime
import edge_reid.device_check as device_check
from edge_reid.cli import main
from edge_reid.cuda.buffers import host_array
from edge_reid.device_check import CheckResult, DeviceCheckOptions, DeviceCheckReport, KernelUnavailable, check_cuda_buffers, run_device_check
from fake_cudart import FakeCudaRuntime

NAMES = ["cuda-buffers", "fp16-engine", "int8-engine", "memory-modes", "embedding-loop"]


@pytest.fixture
def no_gpu(monkeypatch):
    """cuda-python 12.9 without a driver, and no TensorRT."""
    rt = FakeCudaRuntime(version="12.9", driver=False)
    monkeypatch.setattr(cuda_runtime, "import_cudart", lambda: rt)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError


def test_without_gpu_every_check_is_skipped_with_the_reason(no_gpu):
    report = run_device_check(DeviceCheckOptions())
    assert [c.name for c in report.checks] == NAMES
    assert all(c.status == "skipped" and c.detail.startswith("skipped: ") for c in report.checks)
    assert "no NVIDIA driver" in report.checks[0].detail and "TensorRT" in report.checks[1].detail
    assert report.environment["TensorRT"].startswith("TensorRT's Python package is not installed")
    assert not report.ok and report.counts == {"passed": 0, "failed": 0, "skipped": 5}, "nothing verified is no pass"


def test_selftest_command_writes_the_report_and_a_check_of_nothing_is_no_pass(no_gpu, tmp_path, capsys):
    """Every check skipped used to exit 0 with "ok": true: a gate on a device whose TensorRT would not
    import passed having checked nothing."""
    path = tmp_path / "reports" / "device.json"
    assert main(["doctor", "--engines-dir", str(tmp_path / "none"), "--selftest", "--report", str(path)]) == 1
    data = json.loads(path.read_text())
    assert data["schema"] == "edge-reid-device-check/1" and data["ok"] is False and data["created"].endswith("Z")
    assert data["counts"] == {"passed": 0, "failed": 0, "skipped": 5}
    assert [c["status"] for c in data["checks"]] == ["skipped"] * 5
    out = " ".join(capsys.readouterr().out.split())
    assert "cuda-buffers: skipped: no NVIDIA driver" in out and f"device check report: {path}" in out
    assert "nothing was verified: all 5 checks were skipped" in out


def test_a_passed_check_with_the_rest_skipped_passes(no_gpu, tmp_path, monkeypatch):
    partly = DeviceCheckReport({}, [CheckResult("cuda-buffers", "passed", "ok"), CheckResult("fp16-engine", "skipped", "skipped: no TensorRT")])
    monkeypatch.setattr(device_check, "run_device_check", lambda options, say=None: partly)
    path = tmp_path / "device.json"
    assert main(["doctor", "--engines-dir", str(tmp_path), "--selftest", "--report", str(path)]) == 0
    assert json.loads(path.read_text())["ok"] is True


def test_a_failed_check_fails_the_command(no_gpu, tmp_path, monkeypatch):
    failed = DeviceCheckReport({}, [CheckResult("fp16-engine", "failed", "mean cosine 0.95000 (< 0.999)")], "2026-01-01T00:00:00Z")
    monkeypatch.setattr(device_check, "run_device_check", lambda options, say=None: failed)
    path = tmp_path / "device.json"
    assert main(["doctor", "--engines-dir", str(tmp_path), "--selftest", "--report", str(path)]) == 1
    assert json.loads(path.read_text())["ok"] is False


def test_an_unwritable_report_path_is_a_one_line_error_before_any_check(no_gpu, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["doctor", "--engines-dir", str(tmp_path), "--selftest", "--report", str(blocker / "device.json")]) == 2
    assert "device check report" in capsys.readouterr().err


REID_MODEL = device_check.Path(__file__).resolve().parents[1] / "edge_reid" / "assets" / "osnet_x0_25_msmt17.onnx"


def _empty_file(path):
    path.write_bytes(b"")
    return path


def _text_file(path):
    path.write_text("not a model")
    return path


@pytest.mark.parametrize(
    "option, make, message",
    [
        ("--model", lambda p: _text_file(p / "text.onnx"), "--model .*text.onnx: not an ONNX model"),
        ("--qdq", lambda p: p / "missing.onnx", "--qdq .*missing.onnx: file not found"),
        ("--crops", lambda p: p / "no_crops", "--crops .*no_crops: not found"),
        ("--video", lambda p: p, "--video .*: is a folder, not a video file"),
    ],
)
def test_selftest_inputs_are_checked_even_where_the_checks_that_read_them_are_skipped(
    no_gpu, tmp_path, capsys, option, make, message
):
    path = make(tmp_path)
    report = tmp_path / "device.json"
    assert main(["doctor", "--engines-dir", str(tmp_path), "--selftest", "--report", str(report), option, str(path)]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not report.exists()


@pytest.mark.parametrize(
    "option, make, message",
    [
        ("--qdq", lambda p: REID_MODEL, "--qdq .*osnet_x0_25_msmt17.onnx: the model has no QuantizeLinear/DequantizeLinear nodes"),
        ("--qdq", lambda p: _empty_file(p / "empty-qdq.onnx"), "--qdq .*empty-qdq.onnx: the model has no QuantizeLinear"),
        ("--model", lambda p: _empty_file(p / "empty.onnx"), "--model .*empty.onnx: ONNX file has no graph inputs/outputs"),
    ],
)
def test_selftest_refuses_a_qdq_or_model_that_is_not_one_before_any_check(no_gpu, tmp_path, capsys, option, make, message):
    """`doctor --selftest --qdq <an FP32 model or an empty file>` and `--model <an empty file>` were accepted (an empty
    file parses as an empty ONNX model), and the run ended "nothing was verified"."""
    report = tmp_path / "device.json"
    assert main(["doctor", "--engines-dir", str(tmp_path), "--selftest", "--report", str(report), option, str(make(tmp_path))]) == 2
    captured = capsys.readouterr()
    assert re.search(message, captured.err) and "edge-reid doctor" not in captured.out  # refused before the report
    assert not report.exists()


def test_report_without_selftest_is_a_usage_error_and_selftest_keeps_the_default_report(no_gpu, tmp_path, capsys, monkeypatch):
    """`doctor --report x.json` without --selftest was silently ignored (no report, exit 0)."""
    assert main(["doctor", "--engines-dir", str(tmp_path), "--report", str(tmp_path / "x.json")]) == 2
    assert "--report only apply with --selftest" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["doctor", "--engines-dir", str(tmp_path), "--selftest"]) == 1  # nothing verified here
    assert (tmp_path / "device-check.json").is_file()


def test_selftest_options_without_selftest_are_a_usage_error(tmp_path, capsys):
    assert main(["doctor", "--engines-dir", str(tmp_path), "--crops", str(tmp_path)]) == 2
    assert "--crops only apply with --selftest" in capsys.readouterr().err


class HostKernel:
    """Stand-in for the NVRTC kernel: the stand-in's "device" pointers are host addresses."""

    def __init__(self, compute_capability, wrong: bool = False) -> None:
        self.wrong = wrong

    def launch(self, x_ptr, y_ptr, a, b, count, stream_handle) -> None:
        x, y = host_array(x_ptr, (count,)), host_array(y_ptr, (count,))
        y[:] = a * x + b + (1.0 if self.wrong else 0.0)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("integrated", [True, False])
def test_cuda_buffer_check_logic_passes_on_correct_buffers(integrated):
    rt = FakeCudaRuntime(integrated=integrated)
    gpu = cuda_runtime.query_gpu(0, rt)
    result = check_cuda_buffers(gpu, cudart=rt, kernel_factory=HostKernel)
    assert result.status == "passed", result.detail
    assert "mapped buffers (kernel x2)" in result.detail and "pinned buffers (kernel x2)" in result.detail
    assert "sub-batches of 8" in result.detail
    assert rt.host == {} and rt.device == {} and rt.streams == set()  # everything freed


def test_cuda_buffer_check_can_fail_and_runs_copies_without_a_kernel():
    rt = FakeCudaRuntime(integrated=False)
    gpu = cuda_runtime.query_gpu(0, rt)
    wrong = check_cuda_buffers(gpu, cudart=rt, kernel_factory=lambda cc: HostKernel(cc, wrong=True))
    assert wrong.status == "failed" and "came back wrong" in wrong.detail

    def no_nvrtc(cc):
        raise KernelUnavailable("Failed to dlopen libnvrtc.so.12")

    copies = check_cuda_buffers(gpu, cudart=rt, kernel_factory=no_nvrtc)
    assert copies.status == "passed" and "device copy" in copies.detail
    assert "GPU kernel skipped (Failed to dlopen libnvrtc.so.12)" in copies.detail


def test_a_kernel_the_device_cannot_load_fails_the_buffer_check():
    """On an H200 the kernel was made before any CUDA runtime call, so no context was current: the check said
    "passed" with "GPU kernel skipped (cuModuleLoadData failed: CUDA_ERROR_INVALID_CONTEXT)", a pass that had
    run no kernel. Only NVRTC missing from the device skips the kernel part; anything else fails the check."""
    rt = FakeCudaRuntime(integrated=True)
    gpu = cuda_runtime.query_gpu(0, rt)

    def unloadable(cc):
        raise RuntimeError("cuModuleLoadData failed: CUDA_ERROR_INVALID_CONTEXT")

    result = check_cuda_buffers(gpu, cudart=rt, kernel_factory=unloadable)
    assert result.status == "failed" and result.measurements["kernel"] is False
    assert result.detail == "the GPU kernel could not be made: cuModuleLoadData failed: CUDA_ERROR_INVALID_CONTEXT"
    assert rt.host == {} and rt.device == {} and rt.streams == set(), "nothing was allocated before the kernel"


def test_cuda_buffer_check_notices_copies_of_too_many_rows(monkeypatch):
    """A buffer that copies every row (not just the used ones) is caught: rows beyond the used ones change."""
    rt = FakeCudaRuntime(integrated=False)
    gpu = cuda_runtime.query_gpu(0, rt)
    from edge_reid.cuda.buffers import HostDeviceBuffer

    original = HostDeviceBuffer.download
    monkeypatch.setattr(HostDeviceBuffer, "download", lambda self, rows, stream: original(self, self.shape[0], stream))
    result = check_cuda_buffers(gpu, cudart=rt, kernel_factory=HostKernel)
    assert result.status == "failed" and "rows beyond the 13 used ones changed" in result.detail


@pytest.mark.slow
def test_tensorrt_checks_run_end_to_end_on_the_stand_ins(fake, mot17_dir, tmp_path, monkeypatch):
    """The TensorRT branch's bookkeeping (build, compare with ONNX Runtime, both memory modes, the loop) on the
    stand-ins with the tiny channel-mean model, whose ONNX Runtime output the stand-in engine reproduces."""
    from onnx_builders import tiny_qdq_model

    import tempfile

    monkeypatch.setattr(device_check, "AffineKernel", HostKernel)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the scratch engines folder goes here
    qdq = tiny_qdq_model(tmp_path / "tiny-int8-qdq.onnx")
    options = DeviceCheckOptions(model_path=fake.model, qdq_path=qdq, crops=mot17_dir / "query", max_crops=24, seconds=0.2)
    report = run_device_check(options)
    results = {c.name: c for c in report.checks}
    assert all(c.status == "passed" for c in report.checks), {c.name: c.detail for c in report.checks}
    assert results["fp16-engine"].measurements["agreement_with_onnxruntime_fp32"]["mean_cosine"] > 0.9999
    assert results["int8-engine"].measurements["agreement_with_onnxruntime_fp32"]["top1_agreement"] == 100.0
    modes = results["memory-modes"].measurements
    assert modes["chosen"] == "mapped" and set(modes) >= {"mapped", "pinned"} and modes["pinned"]["infer_ms_p50"] > 0
    assert results["embedding-loop"].measurements["loop_efficiency"] > 0
    assert not list(tmp_path.glob("edge-reid-selftest-*"))  # the scratch engines folder is removed
    assert results["fp16-engine"].measurements["build_s"] >= 0 and results["fp16-engine"].measurements["engine_bytes"] > 0
