"""Our TensorRT layer driven end to end on the CPU against recording stand-ins.

``tests/fake_tensorrt.py`` replaces ``tensorrt`` and ``tests/fake_cudart.py`` replaces
cuda-python's runtime. This checks edge_reid's own logic (build configuration, files,
timing-cache reuse, calibrator wiring, engine selection, buffer binding, shape changes,
padding to the profile's min, sub-batching, freeing) — not TensorRT or CUDA, which are
exercised by the ``gpu``/``tensorrt`` tests where they exist.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import edge_reid.cuda.buffers as cuda_buffers
import edge_reid.cuda.runtime as cuda_runtime
import fake_tensorrt
from edge_reid.backends import create_backend
from edge_reid.backends.tensorrt import open_tensorrt_backend
from edge_reid.cli import main
from edge_reid.spec import file_sha256, load_spec
from edge_reid.tensorrt.builder import BuildOptions, build_engine, plan_build
from edge_reid.tensorrt.errors import EngineBuildError, EngineNotFoundError
from edge_reid.tensorrt.manifest import read_manifest
from edge_reid.tensorrt.profile import BatchProfile
from fake_cudart import FakeCudaRuntime
from test_build_plan import tiny_model


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """Install the stand-ins; returns a namespace with trt, rt and the tiny model."""

    class Env:
        pass

    env = Env()
    env.trt = fake_tensorrt.make_module("10.3.0.30")
    env.rt = FakeCudaRuntime(integrated=True)
    monkeypatch.setitem(sys.modules, "tensorrt", env.trt)
    monkeypatch.setattr(cuda_runtime, "import_cudart", lambda: env.rt)
    monkeypatch.setattr(cuda_buffers, "import_cudart", lambda: env.rt)
    monkeypatch.chdir(tmp_path)
    env.model = tiny_model(tmp_path / "tiny.onnx")
    env.spec = load_spec(env.model)
    return env


def gpu(env):
    return cuda_runtime.query_gpu(0, env.rt)


def test_fp16_build_configures_tensorrt_and_writes_engine_manifest_and_timing_cache(fake, tmp_path):
    plan = plan_build(BuildOptions(fake.model, workspace_mb=512, profile=BatchProfile(2, 8, 32)), fake.spec, "10.3.0.30", gpu(fake))
    manifest = build_engine(plan, fake.trt, cuda_version="12.6")
    builder = fake_tensorrt.Builder.last
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
    assert (manifest.input_name, manifest.output_name, manifest.embedding_dim, manifest.input_chw) == ("images", "output", 3, (3, 4, 2))
    assert plan.timing_cache.read_bytes() == b"+timing"
    # A second build starts from the saved timing cache.
    build_engine(plan, fake.trt)
    assert fake_tensorrt.Builder.last.config.timing_cache_in == b"+timing"
    assert plan.timing_cache.read_bytes() == b"+timing+timing"
    assert not list(tmp_path.glob("engines/*.part"))


def test_tensorrt_8_network_is_explicit_batch(fake):
    fake.trt.__version__ = "8.6.2.3"
    plan = plan_build(BuildOptions(fake.model), fake.spec, "8.6.2.3", gpu(fake))
    build_engine(plan, fake.trt)
    assert fake_tensorrt.Builder.last.network.flags == 1 << int(fake.trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def test_out_of_memory_build_says_lower_workspace_and_writes_nothing(fake):
    fake_tensorrt.Builder.fail_with = ["[virtualMemoryBuffer.cpp::resizePhysical::140] Error Code 2: OutOfMemory (Requested size was 1073741824 bytes.)"]
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
    fed = fake_tensorrt.Builder.last.calibration_batches
    assert len(fed) == 2  # 20 images, batch 8: two full batches, 4 dropped
    np.testing.assert_array_equal(np.concatenate(fed), images[:16])
    assert fake.trt.BuilderFlag.INT8 in fake_tensorrt.Builder.last.config.flags
    assert fake_tensorrt.Builder.last.config.calibration_profile.shapes["images"] == ((8, 3, 4, 2),) * 3
    assert plan.calibration_file.read_bytes() == b"FAKE-EntropyCalibration2 2 batches\n"
    assert manifest.int8_path == "implicit-calibration" and manifest.calibration_sha256 == file_sha256(plan.calibration_file)
    assert fake.rt.host == {} and fake.rt.device == {} and fake.rt.streams == set()  # calibration buffer freed

    def no_images():
        raise AssertionError("the cache must be used instead of images")

    build_engine(plan, fake.trt, calibration_batches=no_images)
    assert fake_tensorrt.Builder.last.calibration_batches == []


@pytest.mark.parametrize("integrated", [True, False])
def test_backend_binds_buffers_pads_to_min_and_reshapes_only_on_change(fake, integrated):
    fake.rt.integrated = integrated
    plan = plan_build(BuildOptions(fake.model, profile=BatchProfile(2, 4, 8)), fake.spec, "10.3.0.30", gpu(fake))
    build_engine(plan, fake.trt)
    backend = open_tensorrt_backend(fake.model, fake.spec)
    context = fake_tensorrt.Runtime.last_engine.contexts[0]
    assert backend.max_batch == 8 and backend.buffers.input.shape == (8, 3, 4, 2) and backend.buffers.output.shape == (8, 3)
    assert backend.memory_mode == ("mapped" if integrated else "pinned")
    zero_copy = context.addresses["images"] == backend.buffers.input.ctypes.data
    assert zero_copy == integrated

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


def test_embedder_wiring_over_simulated_tensorrt_matches_onnxruntime_with_sub_batches(fake):
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
    assert backend.manifest.tensorrt_version == "10.7.0.23" and backend.engine_path.name.endswith("trt10.7.0.23-orin-sm87.engine")
    backend.close()
    assert plan.engine_path.is_file()  # the old engine is left for the old JetPack; it is just not loaded


def test_build_and_doctor_commands(fake, capsys):
    args = ["build", "--model", str(fake.model), "--max-batch", "32"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "built engines/tiny-" in err and "fp16-b1-16-32-trt10.3.0.30-orin-sm87.engine" in err
    assert main(args) == 0
    assert "up to date" in capsys.readouterr().err
    assert main([*args, "--rebuild"]) == 0
    assert "built engines/" in capsys.readouterr().err
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "current" in out and "auto chose TensorRT" in out and "mapped, zero-copy" in out
    assert main(["build", "--model", str(fake.model), "--precision", "int8", "--calibration-data", "."]) == 2
    assert "edge-reid calibrate" in capsys.readouterr().err  # TensorRT 10: no implicit calibration


def test_embedder_rebuild_option_builds_a_missing_engine(fake):
    from edge_reid.embedder import Embedder

    with pytest.raises(EngineNotFoundError, match="edge-reid build --model"):
        Embedder(fake.model, backend="tensorrt")
    embedder = Embedder(fake.model, backend="tensorrt", backend_options={"rebuild": True, "engines_dir": "my-engines"})
    assert embedder.backend.name == "tensorrt" and embedder.backend.engine_path.parent.name == "my-engines"
    assert embedder.max_batch == 64  # the default profile's max
    embedder.close()
