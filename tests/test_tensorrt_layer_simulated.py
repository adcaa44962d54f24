"""Our TensorRT layer's bookkeeping, driven end to end on the CPU against the stand-ins.

``tests/fake_tensorrt.py`` replaces ``tensorrt`` and ``tests/fake_cudart.py`` replaces cuda-python's
runtime (the ``fake`` fixture in conftest.py); both take their surface from the real releases
(tests/binding_surfaces.json). This checks edge_reid's own logic: build configuration, files,
timing-cache reuse, calibrator wiring, engine selection, buffer binding, shape changes, padding to
the profile's min, sub-batching, freeing, start-up failures. It says nothing about TensorRT's or
CUDA's own behaviour or speed: the stand-in "engine" computes channel means.
"""

from __future__ import annotations

import numpy as np
import pytest

import fake_tensorrt
from edge_reid.backends import create_backend
from edge_reid.backends.tensorrt import open_tensorrt_backend
from edge_reid.cli import main
from edge_reid.cuda.runtime import query_gpu
from edge_reid.cuda.versions import DeviceCuda
from edge_reid.errors import BackendUnavailableError
from edge_reid.spec import file_sha256
from edge_reid.tensorrt.builder import BuildOptions, build_engine, plan_build
from edge_reid.tensorrt.errors import EngineBuildError, EngineNotFoundError
from edge_reid.tensorrt.manifest import read_manifest
from edge_reid.tensorrt.profile import BatchProfile


def gpu(env):
    return query_gpu(0, env.rt)


def test_fp16_build_configures_tensorrt_and_writes_engine_manifest_and_timing_cache(fake, tmp_path):
    plan = plan_build(BuildOptions(fake.model, workspace_mb=512, profile=BatchProfile(2, 8, 32)), fake.spec, "10.3.0.30", gpu(fake))
    manifest = build_engine(plan, fake.trt, cuda=DeviceCuda("12.6", "12.6"))
    builder = fake.trt.Builder.last
    config = builder.config
    assert builder.network.flags == 0  # TensorRT 10: explicit batch implied
    assert config.pool_limits == {fake.trt.MemoryPoolType.WORKSPACE: 512 * 2**20}
    assert config.flags == {fake.trt.BuilderFlag.FP16}
    assert config.profiles[0].shapes == {"images": ((2, 3, 4, 2), (8, 3, 4, 2), (32, 3, 4, 2))}
    assert config.timing_cache_in == b"" and config.ignore_mismatch is False
    assert plan.engine_path.is_file() and plan.manifest_path.is_file()
    assert read_manifest(plan.manifest_path) == manifest
    assert manifest.engine_sha256 == file_sha256(plan.engine_path)
    assert (manifest.precision, manifest.tensorrt_version, manifest.gpu_name, manifest.compute_capability) == ("fp16", "10.3.0.30", "Orin", "8.7")
    assert (manifest.multiprocessors, manifest.memory_gib, manifest.cuda_driver_version, manifest.cuda_toolkit_version) == (16, 7, "12.6", "12.6")
    assert (manifest.input_name, manifest.output_name, manifest.embedding_dim, manifest.input_chw) == ("images", "output", 3, (3, 4, 2))
    assert plan.timing_cache.read_bytes() == b"+timing"
    # A second build starts from the saved timing cache.
    build_engine(plan, fake.trt)
    assert fake.trt.Builder.last.config.timing_cache_in == b"+timing"
    assert plan.timing_cache.read_bytes() == b"+timing+timing"
    assert not list(tmp_path.glob("engines/*.part"))


def test_network_flags_use_each_versions_real_enum_values(fake, tmp_path):
    trt8 = fake_tensorrt.make_module("8.6.2.3")
    plan = plan_build(BuildOptions(fake.model), fake.spec, "8.6.2.3", gpu(fake))
    build_engine(plan, trt8)
    assert trt8.Builder.last.network.flags == 1 << 0  # EXPLICIT_BATCH is 0 in the real 8.6 bindings
    # TensorRT 11: strongly typed (STRONGLY_TYPED is 0 there, 1 on 10.x), no precision flags; FP16 needs an FP16 model.
    from onnx import TensorProto
    from onnx_builders import tiny_model

    trt11 = fake_tensorrt.make_module("11.4.0.106")
    fp16_model = tiny_model(tmp_path / "tiny-fp16.onnx", elem=TensorProto.FLOAT16)
    plan = plan_build(BuildOptions(fp16_model), fake.spec, "11.4.0.106", gpu(fake))
    build_engine(plan, trt11)
    assert trt11.Builder.last.network.flags == 1 << 0 and trt11.Builder.last.config.flags == set()
    assert not hasattr(trt11, "IInt8EntropyCalibrator2") and not hasattr(trt11.BuilderFlag, "FP16")


def test_out_of_memory_build_says_lower_workspace_and_writes_nothing(fake):
    fake.trt.Builder.fail_with = ["[virtualMemoryBuffer.cpp::resizePhysical::140] Error Code 2: OutOfMemory (Requested size was 1073741824 bytes.)"]
    plan = plan_build(BuildOptions(fake.model, workspace_mb=2048), fake.spec, "10.3.0.30", gpu(fake))
    with pytest.raises(EngineBuildError, match=r"lower --workspace-mb \(e.g. --workspace-mb 1024\)"):
        build_engine(plan, fake.trt)
    assert not plan.engine_path.exists() and not plan.manifest_path.exists()


def test_implicit_calibration_feeds_full_batches_then_reuses_the_cache(fake, tmp_path):
    fake.trt.__version__ = "8.6.2.3"
    (tmp_path / "market").mkdir()
    options = BuildOptions(fake.model, precision="int8", calibration_data=tmp_path / "market", calibration_images=20, profile=BatchProfile(1, 8, 16))
    plan = plan_build(options, fake.spec, "8.6.2.3", gpu(fake))
    rng = np.random.default_rng(0)
    images = rng.standard_normal((20, 3, 4, 2)).astype(np.float32)

    def batches():
        return iter([images[:7], images[7:15], images[15:]])

    manifest = build_engine(plan, fake.trt, calibration_batches=batches)
    fed = fake.trt.Builder.last.calibration_batches
    assert len(fed) == 2  # 20 images, batch 8: two full batches, 4 dropped
    np.testing.assert_array_equal(np.concatenate(fed), images[:16])
    assert fake.trt.BuilderFlag.INT8 in fake.trt.Builder.last.config.flags
    assert fake.trt.Builder.last.config.calibration_profile.shapes["images"] == ((8, 3, 4, 2),) * 3
    assert plan.calibration_file.read_bytes() == b"FAKE-EntropyCalibration2 2 batches\n"
    assert manifest.int8_path == "implicit-calibration" and manifest.calibration_sha256 == file_sha256(plan.calibration_file)
    assert fake.rt.host == {} and fake.rt.device == {} and fake.rt.streams == set()  # calibration buffer freed

    def no_images():
        raise AssertionError("the cache must be used instead of images")

    build_engine(plan, fake.trt, calibration_batches=no_images)
    assert fake.trt.Builder.last.calibration_batches == []


@pytest.mark.parametrize("integrated", [True, False])
def test_backend_bookkeeping_binds_buffers_pads_to_min_and_reshapes_only_on_change(fake, integrated):
    fake.rt.integrated = integrated
    plan = plan_build(BuildOptions(fake.model, profile=BatchProfile(2, 4, 8)), fake.spec, "10.3.0.30", gpu(fake))
    build_engine(plan, fake.trt)
    backend = open_tensorrt_backend(fake.model, fake.spec)
    context = fake.trt.Runtime.last_engine.contexts[0]
    assert backend.max_batch == 8 and backend.buffers.input.shape == (8, 3, 4, 2) and backend.buffers.output.shape == (8, 3)
    assert backend.memory_mode == ("mapped" if integrated else "pinned")
    binds_host_view = context.addresses["images"] == backend.buffers.input.ctypes.data  # mapped: the device pointer is the host view's
    assert binds_host_view == integrated

    x = np.random.default_rng(1).standard_normal((8, 3, 4, 2)).astype(np.float32)
    backend.buffers.input[:] = x
    out = backend.infer(1)  # below the profile min: runs 2 rows, returns 1
    assert out.shape == (1, 3) and np.shares_memory(out, backend.buffers.output)
    np.testing.assert_allclose(out, x[:1].mean(axis=(2, 3)), rtol=1e-6)
    backend.infer(2)
    backend.infer(5)
    backend.infer(5)
    np.testing.assert_allclose(backend.infer(8), x.mean(axis=(2, 3)), rtol=1e-6)
    assert [s[0] for s in context.input_shapes] == [2, 5, 8]  # set_input_shape only when the batch changes
    assert len(context.executions) == 5 and set(context.executions) == {backend._stream.handle}
    copies = [c for c in fake.rt.calls if c[0] == "cudaMemcpyAsync"]
    if integrated:
        assert copies == []
    else:
        assert [c[3] // (3 * 4 * 2 * 4) for c in copies if c[4] == 1] == [2, 2, 5, 5, 8]  # rows uploaded
    with pytest.raises(ValueError):
        backend.infer(9)
    assert "tensorrt 10.3.0.30 fp16 on Orin" in backend.describe()
    backend.close()
    backend.close()
    assert fake.rt.host == {} and fake.rt.device == {} and fake.rt.streams == set()


def test_embedder_over_the_stand_in_splits_and_reassembles_sub_batches_in_order(fake):
    """Bookkeeping: 37 crops through a max-16 engine come back in order (the stand-in and the tiny ONNX model compute the same channel means)."""
    from edge_reid.embedder import Embedder

    plan = plan_build(BuildOptions(fake.model, profile=BatchProfile(1, 4, 16)), fake.spec, "10.3.0.30", gpu(fake))
    build_engine(plan, fake.trt)
    rng = np.random.default_rng(2)
    crops = [rng.integers(0, 256, (int(rng.integers(8, 40)), int(rng.integers(4, 20)), 3), dtype=np.uint8) for _ in range(37)]
    trt_embedder = Embedder(fake.model, backend="auto")
    assert trt_embedder.backend.name == "tensorrt" and trt_embedder.max_batch == 16
    assert "auto chose TensorRT" in trt_embedder.backend.selection_reason
    reference = Embedder(fake.model, backend="onnxruntime", max_batch=64)
    np.testing.assert_allclose(trt_embedder.embed_crops(crops), reference.embed_crops(crops), atol=1e-5)
    trt_embedder.close()


def test_stale_engine_is_never_loaded_and_rebuild_replaces_it(fake, tmp_path):
    plan = plan_build(BuildOptions(fake.model), fake.spec, "10.3.0.30", gpu(fake))
    build_engine(plan, fake.trt)
    fake.trt.__version__ = "10.7.0.23"  # JetPack upgraded
    with pytest.raises(EngineNotFoundError) as info:
        create_backend("tensorrt", fake.model, fake.spec)
    message = str(info.value)
    assert "built with TensorRT 10.3.0.30, this machine has 10.7.0.23" in message and "never loaded" in message
    assert "--rebuild" in message
    backend = create_backend("tensorrt", fake.model, fake.spec, rebuild=True)
    assert backend.manifest.tensorrt_version == "10.7.0.23" and backend.engine_path.name.endswith("trt10.7.0.23-orin-sm87-16sm-7g.engine")
    backend.close()
    assert plan.engine_path.is_file()  # the old engine is left for the old JetPack; it is just not loaded


def test_build_and_doctor_commands(fake, capsys):
    args = ["build", "--model", str(fake.model), "--max-batch", "32"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "built engines/tiny-" in err and "fp16-b1-16-32-trt10.3.0.30-orin-sm87-16sm-7g.engine" in err
    assert main(args) == 0
    assert "up to date" in capsys.readouterr().err
    assert main([*args, "--rebuild"]) == 0
    assert "built engines/" in capsys.readouterr().err
    assert main(["doctor"]) == 0
    assert ": current" in capsys.readouterr().out
    from edge_reid.doctor import collect_report

    items, checks = collect_report("engines", model_path=fake.model)  # the table's content, independent of the terminal width
    found = {item.name: item.value for item in items}
    assert "auto chose TensorRT" in found["--backend auto"] and "mapped, zero-copy" in found["GPU"]
    assert [c.status.value for c in checks] == ["current"]
    assert main(["build", "--model", str(fake.model), "--precision", "int8", "--calibration-data", "."]) == 2
    assert "edge-reid calibrate" in capsys.readouterr().err  # TensorRT 10: no implicit calibration


def _bundled_model_engine(fake, **kw):
    """Build, with the stand-in, an engine of the bundled ReID model (what `run` without --model runs)."""
    from edge_reid.assets import DEFAULT_REID_MODEL
    from edge_reid.spec import load_spec

    plan = plan_build(BuildOptions(DEFAULT_REID_MODEL, **kw), load_spec(DEFAULT_REID_MODEL), "10.3.0.30", gpu(fake))
    build_engine(plan, fake.trt)
    return plan


def test_doctor_says_auto_takes_tensorrt_only_with_a_current_engine_of_the_model(fake):
    """Checked against the stand-ins: doctor said `--backend auto` would choose TensorRT when no engine of the
    model existed, while `run` passed TensorRT over ("no TensorRT engine")."""
    from edge_reid.doctor import collect_report

    auto = {item.name: item.value for item in collect_report("engines")[0]}["--backend auto"]
    assert "auto chose TensorRT" not in auto
    assert "TensorRT passed over: no TensorRT engine for osnet_x0_25_msmt17.onnx in engines" in auto
    plan = _bundled_model_engine(fake)
    auto = {item.name: item.value for item in collect_report("engines")[0]}["--backend auto"]
    assert auto.startswith("auto chose TensorRT") and f"engine {plan.engine_path.name}" in auto
    # a model doctor cannot read: both answers, with the condition
    auto = {item.name: item.value for item in collect_report("engines", model_path=fake.model.with_name("gone.onnx"))[0]}["--backend auto"]
    assert auto.startswith("TensorRT 10.3.0.30 if engines holds a current engine of ") and ", else " in auto
    assert "not usable" not in auto


def test_doctor_checks_each_engines_model_where_the_model_file_is_known(fake):
    """Checked against the stand-ins: doctor called an engine "current" after its model file had changed (it never
    compared the model's sha256), while `run` found no engine for that model."""
    import json

    from edge_reid.doctor import collect_report

    current = _bundled_model_engine(fake)
    older = _bundled_model_engine(fake, profile=BatchProfile(1, 8, 32))  # then "edit" the model it came from
    data = json.loads(older.manifest_path.read_text())
    data["model"]["sha256"] = "f" * 64
    older.manifest_path.write_text(json.dumps(data))
    build_engine(plan_build(BuildOptions(fake.model), fake.spec, "10.3.0.30", gpu(fake)), fake.trt)  # tiny.onnx: not known to doctor
    checks = {c.manifest_path.name: c for c in collect_report("engines")[1]}
    assert checks[current.manifest_path.name].status.value == "current" and checks[current.manifest_path.name].reasons == ()
    assert checks[older.manifest_path.name].status.value == "other-model"
    assert "built from another version of osnet_x0_25_msmt17.onnx" in checks[older.manifest_path.name].reasons[0]
    tiny = next(c for name, c in checks.items() if name.startswith("tiny-"))
    assert tiny.status.value == "current" and tiny.reasons[0].startswith("model not checked")
    assert [c.status.value for c in collect_report("engines", model_path=fake.model)[1] if c.manifest_path.name.startswith("tiny-")] == ["current"]


def test_doctor_with_tensorrt_older_than_8_5_says_why_and_reports_engines_as_stale(fake):
    """Checked against the stand-ins: with TensorRT 8.4 doctor's TensorRT row showed the bare version (no reason,
    no mark), and each engine "unknown: TensorRT or the GPU cannot be queried here" though both answered."""
    from edge_reid.doctor import collect_report

    build_engine(plan_build(BuildOptions(fake.model), fake.spec, "10.3.0.30", gpu(fake)), fake.trt)
    fake.trt.__version__ = "8.4.3.1"
    items, checks = collect_report("engines")
    row = next(item for item in items if item.name == "TensorRT")
    assert row.value.startswith("8.4.3.1: TensorRT 8.4.3.1 is too old: edge-reid needs TensorRT >= 8.5") and row.ok is False
    assert [c.status.value for c in checks] == ["stale"]
    assert "built with TensorRT 10.3.0.30, this machine has 8.4.3.1" in checks[0].reasons


def test_build_run_hint_names_a_non_default_engines_dir_quoted(fake, capsys):
    """Checked against the stand-ins: build's "run it with:" hint left out --engines-dir, so the command it
    gave looked in engines/ and found no engine; paths with spaces were not quoted."""
    assert main(["build", "--model", str(fake.model), "--engines-dir", "my engines"]) == 0
    err = capsys.readouterr().err
    assert f"run it with: edge-reid run --camera /dev/video0 --backend tensorrt --model {fake.model} --engines-dir 'my engines'" in err
    assert main(["build", "--model", str(fake.model)]) == 0
    assert "--engines-dir" not in capsys.readouterr().err.split("run it with:")[1]


def test_embedder_rebuild_option_builds_a_missing_engine(fake):
    from edge_reid.embedder import Embedder

    with pytest.raises(EngineNotFoundError, match="edge-reid build --model"):
        Embedder(fake.model, backend="tensorrt")
    embedder = Embedder(fake.model, backend="tensorrt", backend_options={"rebuild": True, "engines_dir": "my-engines"})
    assert embedder.backend.name == "tensorrt" and embedder.backend.engine_path.parent.name == "my-engines"
    assert embedder.max_batch == 64  # the default profile's max
    embedder.close()


def test_a_gpu_cuda_cannot_start_on_gives_our_error_with_tensorrts_log_and_the_causes(fake, capsys):
    """trt.Builder / trt.Runtime raise TypeError (nullptr) after TensorRT logs a warning: exit 2, one line, no traceback."""
    plan = plan_build(BuildOptions(fake.model), fake.spec, "10.3.0.30", gpu(fake))
    build_engine(plan, fake.trt)  # an engine exists
    broken = fake_tensorrt.make_module("10.3.0.30", cuda_starts=False)
    with pytest.raises(BackendUnavailableError) as info:
        build_engine(plan, broken, echo=lambda line: None)
    message = str(info.value)
    assert "TensorRT cannot start CUDA (trt.Builder: pybind11::init(): factory function returned nullptr)" in message
    assert "CUDA initialization failure with error: 35" in message  # what TensorRT logged
    assert "'video' and 'render' groups" in message and "--runtime nvidia" in message and "tegrastats" in message
    from edge_reid.backends.tensorrt import TensorRTBackend
    from edge_reid.tensorrt.manifest import select_engine

    chosen = select_engine("engines", fake.model, plan.model_sha256, fake.spec.fingerprint(), plan.machine)
    with pytest.raises(BackendUnavailableError, match=r"trt\.Runtime: pybind11::init\(\): factory function returned nullptr"):
        TensorRTBackend(chosen.engine_path, chosen.manifest, fake.spec, gpu=gpu(fake), trt=broken)
    import sys

    sys.modules["tensorrt"] = broken  # the CLI imports it (fixture's monkeypatch restores it)
    assert main(["build", "--model", str(fake.model), "--rebuild"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edge-reid: error: TensorRT cannot start CUDA") and not any("Traceback" in line for line in err)


def test_builder_return_values_are_checked(fake, tmp_path, monkeypatch):
    plan = plan_build(BuildOptions(fake.model), fake.spec, "10.3.0.30", gpu(fake))
    # add_optimization_profile returns -1 for a profile TensorRT does not accept
    monkeypatch.setattr(fake.trt.IBuilderConfig, "add_optimization_profile", lambda self, profile: -1)
    with pytest.raises(EngineBuildError, match=r"TensorRT rejected the batch profile 1/16/64 for input 'images'"):
        build_engine(plan, fake.trt, echo=lambda line: None)
    monkeypatch.undo()
    # set_shape raises ValueError on inconsistent shapes (the stand-in validates as the real docstring says)
    monkeypatch.setattr(fake.trt.IOptimizationProfile, "set_shape", lambda self, input, min, opt, max: (_ for _ in ()).throw(ValueError("bad dims")))
    with pytest.raises(EngineBuildError, match="rejected the batch profile 1/16/64 for input 'images': bad dims"):
        build_engine(plan, fake.trt, echo=lambda line: None)


def test_a_timing_cache_from_another_device_is_replaced_not_fatal(fake):
    plan = plan_build(BuildOptions(fake.model), fake.spec, "10.3.0.30", gpu(fake))
    plan.timing_cache.parent.mkdir(parents=True, exist_ok=True)
    plan.timing_cache.write_bytes(fake_tensorrt.OTHER_DEVICE_CACHE + b" tactics")
    said = []
    build_engine(plan, fake.trt, echo=said.append)
    assert any("made on another device or TensorRT" in line for line in said)
    assert fake.trt.Builder.last.config.timing_cache_in == b""  # a fresh cache was made and used
    assert plan.timing_cache.read_bytes() == b"+timing"


def test_a_parser_failure_names_the_node_and_the_error(fake, monkeypatch):
    plan = plan_build(BuildOptions(fake.model), fake.spec, "10.3.0.30", gpu(fake))

    def fail(self, model):
        self.errors.append(fake_tensorrt.ParserError("DequantizeLinear: input must be INT8", code=8, node=12))
        return False

    monkeypatch.setattr(fake.trt.OnnxParser, "parse_from_file", fail)
    with pytest.raises(EngineBuildError, match=r"TensorRT's ONNX parser failed: node 12: DequantizeLinear: input must be INT8"):
        build_engine(plan, fake.trt, echo=lambda line: None)


def test_stand_in_enforces_pybind_rules_like_the_real_bindings(fake):
    """The rules the conformance tests found in the real modules hold in the stand-in our other tests use."""

    class ForgetsBase(fake.trt.ILogger):
        def __init__(self) -> None:
            pass

    with pytest.raises(TypeError, match=r"ILogger.__init__\(\) must be called when overriding __init__"):
        ForgetsBase()
    trt11 = fake_tensorrt.make_module("11.4.0.106")
    config = trt11.Builder(trt11.Logger()).create_builder_config()
    with pytest.raises(AttributeError):
        config.int8_calibrator = object()
    profile = fake.trt.Builder(fake.trt.Logger()).create_optimization_profile()
    with pytest.raises(ValueError):
        profile.set_shape("images", (8, 3, 4, 2), (4, 3, 4, 2), (16, 3, 4, 2))
    assert fake.trt.Builder(fake.trt.Logger()).create_builder_config().add_optimization_profile(profile) == -1


def test_the_capturing_logger_keeps_warnings_and_errors_bounded(fake):
    from edge_reid.tensorrt.startup import KEPT_MESSAGES, make_logger

    echoed = []
    logger = make_logger(fake.trt, echoed.append)
    severity = fake.trt.ILogger.Severity
    logger.log(severity.INFO, "not kept")
    for i in range(KEPT_MESSAGES + 10):
        logger.log(severity.WARNING if i % 2 else severity.ERROR, f"message {i}")
    assert len(logger.messages) == KEPT_MESSAGES and len(echoed) == KEPT_MESSAGES + 10
    assert logger.errors[-1] == f"message {KEPT_MESSAGES + 8}" and "not kept" not in logger.summary(limit=1000)
    assert logger.summary() == " | ".join(f"message {i}" for i in range(KEPT_MESSAGES + 7, KEPT_MESSAGES + 10))


def test_doctor_model_option_checks_that_models_engines_without_selftest(fake, capsys):
    """Checked against the stand-ins: `doctor --model M` (no --selftest) answers for M: its engines' model is checked
    and the `--backend auto` line names M's engine."""
    plan = plan_build(BuildOptions(fake.model), fake.spec, "10.3.0.30", gpu(fake))
    build_engine(plan, fake.trt)
    assert main(["doctor", "--model", str(fake.model)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ": current" in out and "model not checked" not in out
    assert main(["doctor"]) == 0
    assert "current: model not checked: tiny.onnx" in " ".join(capsys.readouterr().out.split())


def test_a_model_with_a_classifier_beside_its_embedding_builds_an_engine_with_the_embedding_only(fake, tmp_path):
    """Our builder unmarks the outputs the spec does not name (against the stand-in network, whose
    ``unmark_output`` signature is the real bindings' as recorded): the runtime binds one output buffer,
    and an engine keeping the logits would fail at enqueue for want of its address."""
    import json

    from edge_reid.spec import load_spec
    from onnx_builders import two_output_model

    model = two_output_model(tmp_path / "two_outputs.onnx")
    (tmp_path / "two_outputs.json").write_text(json.dumps({"output_name": "features"}))
    spec = load_spec(model)
    plan = plan_build(BuildOptions(model, profile=BatchProfile(1, 8, 32)), spec, "10.3.0.30", gpu(fake))
    manifest = build_engine(plan, fake.trt, cuda=DeviceCuda("12.6", "12.6"))
    network = fake.trt.Builder.last.network
    assert [network.get_output(i).name for i in range(network.num_outputs)] == ["features"]
    assert manifest.output_name == "features"


def test_a_spec_made_in_python_without_output_name_for_a_model_with_two_outputs_is_refused_by_the_builder(fake, tmp_path):
    """As the ONNX Runtime and OpenVINO backends refuse it (embedding_output_name): the builder took the
    first output (a training export's logits) and unmarked the embedding, silently."""
    import dataclasses

    from edge_reid.spec import load_spec
    from onnx_builders import two_output_model

    model = two_output_model(tmp_path / "two_outputs.onnx")
    spec = dataclasses.replace(load_spec(model, {"output_name": "features"}), output_name="")
    plan = plan_build(BuildOptions(model, profile=BatchProfile(1, 8, 32)), spec, "10.3.0.30", gpu(fake))
    with pytest.raises(EngineBuildError, match="2 outputs.*'logits'.*'features'.*output_name"):
        build_engine(plan, fake.trt, cuda=DeviceCuda("12.6", "12.6"))
