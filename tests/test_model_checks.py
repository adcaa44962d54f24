"""Models are checked at load with one real inference: a wrong kind of model is refused, naming the file,
before any output file exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_reid.detector import PersonDetector
from edge_reid.embedder import Embedder
from edge_reid.errors import ModelError
from onnx_builders import mean_model

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ["onnxruntime", pytest.param("openvino", marks=pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("openvino") is None, reason="openvino is not installed (pip install openvino)"))]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_reid", "run", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("backend", BACKENDS)
def test_detector_as_reid_model_is_refused_at_load(backend, yolox_path):
    with pytest.raises(ModelError) as info:
        Embedder(yolox_path, backend=backend)
    message = str(info.value)
    assert message.startswith(str(yolox_path)) and "(1, 3549, 85)" in message and "not (N, D) embeddings" in message


@pytest.mark.parametrize("backend", BACKENDS)
def test_reid_model_as_detector_is_refused_at_load(backend, osnet_path):
    with pytest.raises(ModelError) as info:
        PersonDetector(osnet_path, backend=backend)
    message = str(info.value)
    assert message.startswith(str(osnet_path)) and "(1, 512) is not a YOLOX grid output" in message


@pytest.mark.parametrize("backend", BACKENDS)
def test_model_of_the_wrong_embedding_size_is_refused(backend, tmp_path):
    """A 3-wide output where the spec says 512: refused at load, not after the first frame (a sidecar that says so is
    named; a spec given in Python meets the backend's check)."""
    from edge_reid.spec import ModelSpec

    model = mean_model(tmp_path / "means.onnx")
    (tmp_path / "means.json").write_text('{"embedding_dim": 512}')
    with pytest.raises(ModelError, match="means.json: embedding_dim=512 but the model's output 'output' is fixed at 3"):
        Embedder(model, backend=backend)
    (tmp_path / "means.json").unlink()
    with pytest.raises(ModelError, match="means.onnx: output 'output' gives 3-value embeddings, but the model's spec says 512"):
        Embedder(model, backend=backend, spec=ModelSpec(input_name="images", embedding_dim=512))


@pytest.mark.parametrize(
    "flag, model_name, message",
    [
        ("--model", "yolox_nano.onnx", "yolox_nano.onnx: output 'output' has shape (1, 3549, 85), not (N, D) embeddings"),
        ("--detector", "osnet_x0_25_msmt17.onnx", "osnet_x0_25_msmt17.onnx: output shape (1, 512) is not a YOLOX grid output"),
    ],
)
def test_run_with_the_wrong_kind_of_model_exits_2_before_any_output_exists(flag, model_name, message, tmp_path, shared_dir, vtest_path):
    outputs = {"--events": tmp_path / "e.jsonl", "--summary": tmp_path / "s.json", "--output": tmp_path / "o.mp4"}
    args = ["--source", str(vtest_path), flag, str(shared_dir / "models" / model_name), "--max-frames", "2"]
    for option, path in outputs.items():
        args += [option, str(path)]
    result = _run(*args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("edge-reid: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.stderr
    assert "warning" not in result.stderr, "no advice on the preprocessing of a model that is refused"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no output file may be created for a model that cannot run"


def test_a_detector_whose_weights_file_is_missing_says_so(tmp_path, yolox_path):
    """It was refused as 'not an ONNX model (ValidationError); pass a YOLOX detector exported to ONNX'."""
    import onnx

    from edge_reid.detector import PersonDetector

    onnx.save(onnx.load(str(yolox_path)), str(tmp_path / "yolox_ext.onnx"), save_as_external_data=True, location="w.bin", size_threshold=0)
    (tmp_path / "w.bin").unlink()
    with pytest.raises(ModelError, match=r"yolox_ext.onnx: its weights cannot be read \(.*w.bin"):
        PersonDetector(tmp_path / "yolox_ext.onnx", threads=1)
