"""``edge-reid build``, ``doctor`` and ``run --backend tensorrt`` on a machine without TensorRT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_reid.backends import tensorrt_available
from edge_reid.cli import main
from edge_reid.doctor import jetpack_for_l4t, opencv_gstreamer, parse_nv_tegra_release

REPO = Path(__file__).resolve().parents[1]
HAS_TENSORRT = tensorrt_available()[0]
needs_no_tensorrt = pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT and a GPU are present: this checks the machine without them")


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_reid", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})


@needs_no_tensorrt
def test_build_without_tensorrt_exits_2_naming_tensorrt(tmp_path):
    result = cli("build", "--precision", "fp16", "--engines-dir", str(tmp_path / "engines"))
    assert result.returncode == 2
    assert "TensorRT" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "engines").exists()  # nothing written


@needs_no_tensorrt
def test_run_backend_tensorrt_without_tensorrt_exits_2_naming_tensorrt(vtest_path):
    result = cli("run", "--source", str(vtest_path), "--backend", "tensorrt", "--max-frames", "1")
    assert result.returncode == 2
    assert "--backend tensorrt" in result.stderr and "TensorRT" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--min-batch", "8", "--opt-batch", "4"], "1 <= --min-batch <= --opt-batch <= --max-batch, got min=8, opt=4, max=64"),
        (["--precision", "int4"], "--precision must be one of fp16, int8"),
        (["--precision", "fp16", "--qdq", "x.onnx"], "--qdq and --calibration-data are for --precision int8"),
        (["--precision", "int8", "--qdq", "missing-qdq.onnx"], "--qdq missing-qdq.onnx: file not found"),
        (["--model", "missing.onnx"], "model file not found: missing.onnx"),
    ],
)
def test_build_rejects_bad_options_before_needing_tensorrt(args, message, capsys):
    assert main(["build", *args]) == 2
    assert message in capsys.readouterr().err


def test_build_qdq_must_be_a_qdq_model(capsys):
    model = REPO / "edge_reid" / "assets" / "osnet_x0_25_msmt17.onnx"
    assert main(["build", "--precision", "int8", "--qdq", str(model)]) == 2
    assert "no QuantizeLinear/DequantizeLinear nodes" in capsys.readouterr().err


def test_doctor_reports_what_is_missing_and_engine_status(tmp_path):
    import json

    from conftest import make_engine
    from edge_reid.assets import DEFAULT_REID_MODEL
    from edge_reid.spec import load_spec

    _, manifest = make_engine(tmp_path / "engines")  # an engine of the bundled model (doctor checks engines against it)
    data = json.loads(manifest.read_text())
    data["model"]["spec_fingerprint"] = load_spec(DEFAULT_REID_MODEL).fingerprint()
    manifest.write_text(json.dumps(data))
    (tmp_path / "engines" / "junk.json").write_text("{")
    result = cli("doctor", "--engines-dir", str(tmp_path / "engines"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for word in ("TensorRT", "cuda-python", "CUDA", "GPU", "onnxruntime", "OpenCV", "GStreamer", "--backend auto"):
        assert word in out
    assert "osnet-x0-25-msmt17" in out and "10.3.0.30" in out and "Orin" in out
    assert "broken" in out  # junk.json
    if not HAS_TENSORRT:
        assert "built 2026-11-21T19:00:00Z: unknown: TensorRT or the GPU cannot be queried here" in out and "ONNX Runtime" in out


def test_doctor_without_engines_folder(tmp_path):
    result = cli("doctor", "--engines-dir", str(tmp_path / "none"))
    assert result.returncode == 0 and "engines: none" in result.stdout


def test_doctor_engines_dir_that_is_a_file_says_so(tmp_path, capsys):
    """`doctor --engines-dir <a file>` said "folder ... does not exist"."""
    (tmp_path / "afile").write_text("x")
    assert main(["doctor", "--engines-dir", str(tmp_path / "afile")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{tmp_path / 'afile'} is a file, not a folder" in out and "does not exist" not in out


def test_parse_l4t_release():
    assert parse_nv_tegra_release("# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13") == "36.4.0"
    assert parse_nv_tegra_release("# R35 (release), REVISION: 5.0, GCID: 35550185, BOARD: t186ref") == "35.5.0"
    assert parse_nv_tegra_release("# R32 (release), REVISION: 7.1, GCID: 29818004") == "32.7.1"
    assert parse_nv_tegra_release("Ubuntu 22.04") is None
    assert jetpack_for_l4t("36.4.0") == "JetPack 6" and jetpack_for_l4t("35.5.0") == "JetPack 5"
    assert jetpack_for_l4t("38.4.0") == "JetPack 7 (Jetson Thor)" and jetpack_for_l4t("40.0") == "unknown JetPack"


def test_opencv_gstreamer_from_build_information():
    assert opencv_gstreamer("  Video I/O:\n    GStreamer:                   YES (1.20.3)\n") is True
    assert opencv_gstreamer("  Video I/O:\n    GStreamer:                   NO\n") is False
    assert opencv_gstreamer("  Video I/O:\n    FFMPEG: YES\n") is None
    import cv2

    assert opencv_gstreamer(cv2.getBuildInformation()) in (True, False)


@needs_no_tensorrt
def test_run_backend_auto_says_what_it_chose(vtest_path, capsys):
    assert main(["run", "--source", str(vtest_path), "--backend", "auto", "--max-frames", "1"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    from edge_reid.backends import get_backend

    assert "auto chose" in err
    if not HAS_TENSORRT:  # with TensorRT but no engine, auto passes TensorRT over when it opens it
        # Each model on the CPU backend timed faster here (edge_reid/backends/cpu_choice.py): one line for both, or one each.
        titles = [get_backend(name).title for name in ("openvino", "onnxruntime")]
        assert any(f"ReID model and detector: auto chose {title}" in err or f"ReID model: auto chose {title}" in err for title in titles)
        assert "TensorRT not usable" in err and "a call on this CPU (measured" in err
