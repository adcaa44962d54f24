"""Engine build decisions on the CPU: flags, INT8 path, files, staleness of an existing build, failure messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from onnx import TensorProto

import edge_reid.cpu as cpu
from edge_reid.cuda.runtime import GpuInfo
from edge_reid.errors import ModelError, OutputPathError
from edge_reid.spec import ModelSpec, file_sha256
from edge_reid.tensorrt.builder import BuildOptions, explain_build_failure, plan_build, up_to_date, validate_options
from edge_reid.tensorrt.errors import EngineBuildError
from edge_reid.tensorrt.manifest import EngineManifest, utc_now_iso, write_manifest
from edge_reid.tensorrt.profile import BatchProfile
from edge_reid.tensorrt.versions import Int8Path
from onnx_builders import tiny_model, tiny_qdq_model

ORIN = GpuInfo(0, "Orin", (8, 7), integrated=True, can_map_host_memory=True, total_memory_bytes=7 << 30, multiprocessors=8)
SPEC = ModelSpec(name="tiny", input_name="images", height=4, width=2, embedding_dim=3, output_name="output")


@pytest.fixture(autouse=True)
def orin_nano_board(monkeypatch, tmp_path):
    """This "machine" is a Jetson Orin Nano: its device tree names the board (NUL-terminated, as on the device)."""
    model = tmp_path / "device-tree-model"
    model.write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    monkeypatch.setattr(cpu, "DEVICE_TREE_MODEL", model)


@pytest.fixture
def model(tmp_path):
    return tiny_model(tmp_path / "tiny.onnx")


@pytest.fixture
def qdq(tmp_path):
    (tmp_path / "calibration").mkdir()
    return tiny_qdq_model(tmp_path / "calibration" / "tiny-int8-qdq.onnx")


def options(model, tmp_path, **kw) -> BuildOptions:
    return BuildOptions(model_path=model, engines_dir=tmp_path / "engines", calibration_dir=tmp_path / "calibration", **kw)


def test_fp16_plan_on_jetpack6(model, tmp_path):
    plan = plan_build(options(model, tmp_path), SPEC, "10.3.0.30", ORIN)
    assert plan.network_flags == () and plan.builder_flags == ("FP16",) and plan.int8_path is None
    assert plan.network_model_path == model and plan.calibration_file is None
    assert plan.model_sha256 == file_sha256(model)
    assert plan.engine_path.parent == tmp_path / "engines"
    assert plan.engine_path.name == f"tiny-{plan.model_sha256[:12]}-fp16-b1-16-64-trt10.3.0.30-orin-sm87-8sm-7g-orin-nano.engine"
    assert plan.manifest_path == plan.engine_path.with_suffix(".json")
    assert plan.timing_cache.name == "timing-trt10.3.0.30-orin-sm87-8sm-7g-orin-nano.cache"
    assert plan.machine.board == "NVIDIA Jetson Orin Nano Developer Kit"  # read from the device tree


def test_int8_from_qdq_model(model, qdq, tmp_path):
    plan = plan_build(options(model, tmp_path, precision="int8", qdq_path=qdq), SPEC, "10.3.0.30", ORIN)
    assert plan.int8_path is Int8Path.QDQ and plan.builder_flags == ("INT8", "FP16")
    assert plan.network_model_path == qdq and plan.calibration_file == qdq
    assert plan.model_sha256 == file_sha256(model)  # the engine is found by the FP32 model the user runs


def test_implicit_calibration_on_tensorrt_8_only(model, tmp_path):
    market = tmp_path / "market"
    market.mkdir()
    opts = options(model, tmp_path, precision="int8", calibration_data=market, calibration_images=64)
    plan = plan_build(opts, SPEC, "8.6.2.3", ORIN)
    assert plan.int8_path is Int8Path.IMPLICIT_CALIBRATION and plan.network_flags == ("EXPLICIT_BATCH",)
    assert plan.calibration_file.parent == tmp_path / "calibration"
    assert plan.calibration_file.name.endswith("-entropy2-n64-s0-trt8.6.2.3.cache")
    assert plan.calibration_batch == 16
    with pytest.raises(EngineBuildError, match="edge-reid calibrate"):
        plan_build(opts, SPEC, "10.3.0.30", ORIN)


def test_tensorrt_11_is_strongly_typed(model, qdq, tmp_path):
    with pytest.raises(EngineBuildError, match="strongly typed"):
        plan_build(options(model, tmp_path), SPEC, "11.4.0.106", ORIN)
    fp16_model = tiny_model(tmp_path / "tiny-fp16.onnx", TensorProto.FLOAT16)
    plan = plan_build(options(fp16_model, tmp_path), SPEC, "11.4.0.106", ORIN)
    assert plan.network_flags == ("STRONGLY_TYPED",) and plan.builder_flags == ()
    plan = plan_build(options(model, tmp_path, precision="int8", qdq_path=qdq), SPEC, "11.4.0.106", ORIN)
    assert plan.network_flags == ("STRONGLY_TYPED",) and plan.builder_flags == () and plan.int8_path is Int8Path.QDQ


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(precision="fp32"), "--precision must be one of fp16, int8"),
        (dict(workspace_mb=8), "--workspace-mb must be at least 16"),
        (dict(precision="fp16", qdq_path=Path("x.onnx")), "for --precision int8"),
        (dict(precision="int8", qdq_path=Path("missing-qdq.onnx")), "missing-qdq.onnx: file not found"),
        (dict(precision="int8", qdq_path=Path(__file__).parent), "tests: is a folder, not a model file"),
        (dict(precision="int8", calibration_data=Path("no-such-dir")), "not a folder"),
    ],
)
def test_bad_options_fail_without_tensorrt(model, tmp_path, kw, message):
    with pytest.raises(EngineBuildError, match=message):
        validate_options(options(model, tmp_path, **kw), SPEC)


def test_qdq_must_be_quantized_and_match_the_input(model, tmp_path):
    with pytest.raises(EngineBuildError, match="no QuantizeLinear"):
        validate_options(options(model, tmp_path, precision="int8", qdq_path=model), SPEC)
    other = tiny_qdq_model(tmp_path / "other.onnx", input_name="data")
    with pytest.raises(EngineBuildError, match="another model"):
        validate_options(options(model, tmp_path, precision="int8", qdq_path=other), SPEC)


def test_too_few_calibration_images(model, tmp_path):
    opts = options(model, tmp_path, precision="int8", calibration_data=tmp_path, calibration_images=8)
    with pytest.raises(EngineBuildError, match="less than one calibration batch"):
        validate_options(opts, SPEC)


def test_missing_model(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        validate_options(options(tmp_path / "nope.onnx", tmp_path), SPEC)


def _write_built(plan, calibration_sha=None):
    plan.engine_path.parent.mkdir(parents=True, exist_ok=True)
    plan.engine_path.write_bytes(b"engine")
    manifest = EngineManifest(
        engine_file=plan.engine_path.name, engine_sha256=file_sha256(plan.engine_path), model_file=plan.options.model_path.name,
        model_sha256=plan.model_sha256, spec=SPEC.to_dict(), spec_fingerprint=SPEC.fingerprint(), precision=plan.options.precision,
        int8_path=plan.int8_path.value if plan.int8_path else None, calibration_file=str(plan.calibration_file) if plan.calibration_file else None,
        calibration_sha256=calibration_sha, tensorrt_version=plan.machine.tensorrt_version, gpu_name=plan.machine.gpu_name,
        compute_capability=plan.machine.compute_capability, multiprocessors=plan.machine.multiprocessors,
            memory_gib=plan.machine.memory_gib, board=plan.machine.board, cuda_driver_version="12.6", profile=plan.options.profile, input_name="images",
        output_name="output", input_chw=(3, 4, 2), embedding_dim=3, workspace_mb=1024, build_date=utc_now_iso(),
    )
    write_manifest(manifest, plan.manifest_path)
    return manifest


def test_up_to_date_only_when_everything_matches(model, qdq, tmp_path):
    plan = plan_build(options(model, tmp_path), SPEC, "10.3.0.30", ORIN)
    assert up_to_date(plan) is None
    manifest = _write_built(plan)
    assert up_to_date(plan) == manifest
    plan.engine_path.write_bytes(b"corrupted")
    assert up_to_date(plan) is None

    plan = plan_build(options(model, tmp_path, precision="int8", qdq_path=qdq), SPEC, "10.3.0.30", ORIN)
    int8_manifest = _write_built(plan, calibration_sha=file_sha256(qdq))
    assert up_to_date(plan) == int8_manifest
    tiny_qdq_model(qdq)  # same graph rewritten: same bytes, still current
    assert up_to_date(plan) == int8_manifest
    qdq.write_bytes(qdq.read_bytes() + b"\0")  # a new calibration: rebuild
    assert up_to_date(plan) is None


def test_other_profile_gets_its_own_engine(model, tmp_path):
    a = plan_build(options(model, tmp_path), SPEC, "10.3.0.30", ORIN)
    b = plan_build(options(model, tmp_path, profile=BatchProfile(1, 8, 32)), SPEC, "10.3.0.30", ORIN)
    assert a.engine_path != b.engine_path


@pytest.mark.parametrize(
    "log",
    [
        ["Requested amount of GPU memory (1073741824 bytes) could not be allocated. There may not be enough free memory for allocation to succeed."],
        ["[defaultAllocator.cpp::allocate::20] Error Code 1: Cuda Runtime (out of memory)"],
        ["std::bad_alloc"],
    ],
)
def test_out_of_memory_says_lower_workspace(log):
    message = explain_build_failure(log, 1024)
    assert "out of memory" in message and "--workspace-mb 512" in message and "1024 MiB" in message


def test_other_failures_report_tensorrts_last_error():
    message = explain_build_failure(["warning", "Network validation failed."], 1024)
    assert message == "TensorRT could not build the engine: Network validation failed."
    assert "no error message" in explain_build_failure([], 256)


def test_plan_is_immutable(model, tmp_path):
    plan = plan_build(options(model, tmp_path), SPEC, "10.3.0.30", ORIN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.builder_flags = ("INT8",)


@pytest.mark.parametrize("field, blocked", [("engines_dir", "afile"), ("engines_dir", "afile/engines"), ("calibration_dir", "afile")])
def test_an_output_folder_that_is_a_file_is_refused_before_building(model, tmp_path, field, blocked):
    """`build --engines-dir <an existing file>` was refused only after the whole build (minutes on a Jetson)."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "market").mkdir()
    kw = {field: tmp_path / blocked}
    if field == "calibration_dir":
        kw.update(precision="int8", calibration_data=tmp_path / "market", calibration_images=16)
    with pytest.raises(OutputPathError, match=f"--{field.replace('_', '-')} .*afile is a file, not a folder"):
        validate_options(dataclasses.replace(options(model, tmp_path), **kw), SPEC)


def test_output_folders_are_not_made_by_the_checks(model, tmp_path):
    """The output folders are checked without being made: a build that stops later leaves none behind."""
    validate_options(dataclasses.replace(options(model, tmp_path), engines_dir=tmp_path / "new" / "engines"), SPEC)
    assert not (tmp_path / "new").exists()
    # an unused --calibration-dir (FP16, or INT8 from a Q/DQ model) is not checked
    (tmp_path / "afile").write_text("x")
    validate_options(dataclasses.replace(options(model, tmp_path), calibration_dir=tmp_path / "afile"), SPEC)
