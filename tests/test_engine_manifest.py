"""Engine manifests: naming, round trip, matching and staleness (another TensorRT, GPU or GPU module is never loaded)."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

from edge_reid.tensorrt.errors import EngineManifestError, EngineNotFoundError
from edge_reid.tensorrt.manifest import (
    EngineStatus,
    MachineIdentity,
    check_manifest,
    engine_stem,
    read_manifest,
    rebuild_command,
    scan_engines,
    select_engine,
    timing_cache_path,
)
from edge_reid.tensorrt.profile import BatchProfile
from conftest import AGX_ORIN, MODEL_SHA, ORIN_TRT103, SPEC, make_engine



def test_engine_name_encodes_model_precision_profile_tensorrt_and_gpu():
    stem = engine_stem("osnet_x0_25_msmt17", MODEL_SHA, "int8", BatchProfile(1, 16, 64), ORIN_TRT103)
    assert stem == "osnet-x0-25-msmt17-61b2604171ef-int8-b1-16-64-trt10.3.0.30-orin-sm87-16sm-61g-agx-orin"
    rtx = MachineIdentity("10.3.0.30", "NVIDIA GeForce RTX 3060", "8.6", 28, 12)
    other = engine_stem("osnet_x0_25_msmt17", MODEL_SHA, "int8", BatchProfile(1, 16, 64), rtx)
    assert other != stem and other.endswith("nvidia-geforce-rtx-3060-sm86-28sm-12g")
    assert timing_cache_path("engines", ORIN_TRT103) == Path("engines/timing-trt10.3.0.30-orin-sm87-16sm-61g-agx-orin.cache")
    nano = MachineIdentity("10.3.0.30", "Orin", "8.7", 8, 7, "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super")
    assert timing_cache_path("engines", nano) != timing_cache_path("engines", ORIN_TRT103)
    assert nano.tag() == "orin-sm87-8sm-7g-orin-nano-super"


def test_manifest_round_trip_through_json(tmp_path):
    manifest, path = make_engine(tmp_path, precision="int8", int8_path="qdq", calibration_file="calibration/m-int8-qdq.onnx", calibration_sha256="ab" * 32)
    data = json.loads(path.read_text())
    assert data["model"]["sha256"] == MODEL_SHA
    assert data["gpu"] == {"name": "Orin", "compute_capability": "8.7", "multiprocessors": 16, "memory_gib": 61, "board": AGX_ORIN}
    assert data["cuda"] == {"driver": "12.6", "toolkit": ""} and data["schema"] == 2
    assert data["profile"] == {"min": 1, "opt": 16, "max": 64} and data["calibration"]["sha256"] == "ab" * 32
    assert read_manifest(path) == manifest


def test_broken_manifests_name_the_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(EngineManifestError, match="x.json"):
        read_manifest(bad)
    _, good = make_engine(tmp_path)
    data = json.loads(good.read_text())
    del data["gpu"]
    bad.write_text(json.dumps(data))
    with pytest.raises(EngineManifestError, match="incomplete"):
        read_manifest(bad)
    data = json.loads(good.read_text())
    data["profile"] = {"min": 8, "opt": 4, "max": 2}
    bad.write_text(json.dumps(data))
    with pytest.raises(EngineManifestError, match="min-batch"):
        read_manifest(bad)


def test_current_engine_is_selected(tmp_path):
    manifest, path = make_engine(tmp_path)
    check = check_manifest(manifest, path, ORIN_TRT103, MODEL_SHA, SPEC.fingerprint())
    assert check.status is EngineStatus.CURRENT and check.reasons == ()
    chosen = select_engine(tmp_path, "models/osnet_x0_25_msmt17.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103)
    assert chosen.engine_path == tmp_path / manifest.engine_file


@pytest.mark.parametrize(
    "machine, words",
    [
        (dataclasses.replace(ORIN_TRT103, tensorrt_version="10.7.0.23"), ["TensorRT 10.3.0.30", "10.7.0.23"]),
        (MachineIdentity("10.3.0.30", "Xavier", "7.2", 8, 31), ["built for Orin (sm 8.7)", "Xavier (sm 7.2)"]),
        (dataclasses.replace(ORIN_TRT103, compute_capability="8.6"), ["sm 8.7", "sm 8.6"]),
        # Same name and compute capability, another module: AGX Orin's engine is not an Orin Nano's.
        (
            MachineIdentity("10.3.0.30", "Orin", "8.7", 8, 7, "NVIDIA Jetson Orin Nano Developer Kit"),
            ["built for Orin (sm 8.7, 16 SMs, 61 GiB, NVIDIA Jetson AGX Orin Developer Kit)", "8 SMs, 7 GiB, NVIDIA Jetson Orin Nano"],
        ),
        (dataclasses.replace(ORIN_TRT103, memory_gib=30, multiprocessors=14), ["14 SMs, 30 GiB"]),  # AGX Orin 32GB vs 64GB
    ],
)
def test_other_tensorrt_or_gpu_is_stale_and_never_loaded(tmp_path, machine, words):
    manifest, path = make_engine(tmp_path)
    check = check_manifest(manifest, path, machine, MODEL_SHA, SPEC.fingerprint())
    assert check.status is EngineStatus.STALE
    assert all(any(w in r for r in check.reasons) for w in words)
    with pytest.raises(EngineNotFoundError) as info:
        select_engine(tmp_path, "osnet_x0_25_msmt17.onnx", MODEL_SHA, SPEC.fingerprint(), machine)
    message = str(info.value)
    assert "never loaded" in message and "--rebuild" in message
    assert ("edge-reid build --model osnet_x0_25_msmt17.onnx --precision fp16 --min-batch 1 --opt-batch 16 --max-batch 64 "
            f"--engines-dir {shlex.quote(str(tmp_path))} --rebuild") in message


def test_changed_or_missing_engine_file_is_broken(tmp_path):
    manifest, path = make_engine(tmp_path)
    engine = tmp_path / manifest.engine_file
    engine.write_bytes(b"truncated")
    assert check_manifest(manifest, path, ORIN_TRT103).status is EngineStatus.BROKEN
    engine.unlink()
    check = check_manifest(manifest, path, ORIN_TRT103)
    assert check.status is EngineStatus.BROKEN and "missing" in check.reasons[0]
    with pytest.raises(EngineNotFoundError, match="missing"):
        select_engine(tmp_path, "m.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103)


def test_engines_of_other_models_are_ignored(tmp_path):
    make_engine(tmp_path, model_sha="f" * 64)
    checks = scan_engines(tmp_path, ORIN_TRT103, MODEL_SHA, SPEC.fingerprint())
    assert [c.status for c in checks] == [EngineStatus.OTHER_MODEL]
    with pytest.raises(EngineNotFoundError) as info:
        select_engine(tmp_path, "m.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103)
    assert "no TensorRT engine for m.onnx" in str(info.value) and "edge-reid build --model m.onnx --precision fp16" in str(info.value)
    other_spec = dataclasses.replace(SPEC, std=(0.226, 0.226, 0.226))
    manifest, path = make_engine(tmp_path / "b")
    assert check_manifest(manifest, path, ORIN_TRT103, MODEL_SHA, other_spec.fingerprint()).status is EngineStatus.OTHER_MODEL


def test_unknown_machine_and_unreadable_manifest(tmp_path):
    manifest, path = make_engine(tmp_path)
    assert check_manifest(manifest, path, None).status is EngineStatus.UNKNOWN
    (tmp_path / "junk.json").write_text("[]")
    statuses = {c.manifest_path.name: c.status for c in scan_engines(tmp_path, None)}
    assert statuses["junk.json"] is EngineStatus.BROKEN and statuses[path.name] is EngineStatus.UNKNOWN
    assert scan_engines(tmp_path / "absent", ORIN_TRT103) == []


def test_newest_current_engine_wins_and_precision_filters(tmp_path):
    make_engine(tmp_path, precision="fp16", build_date="2026-11-20T10:00:00Z")
    int8, _ = make_engine(tmp_path, precision="int8", build_date="2026-11-21T10:00:00Z", int8_path="qdq", calibration_file="calibration/q.onnx", calibration_sha256="c" * 64)
    chosen = select_engine(tmp_path, "m.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103)
    assert chosen.manifest.precision == "int8"
    chosen = select_engine(tmp_path, "m.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103, precision="fp16")
    assert chosen.manifest.precision == "fp16"
    assert rebuild_command("m.onnx", int8) == (
        "edge-reid build --model m.onnx --precision int8 --qdq calibration/q.onnx --min-batch 1 --opt-batch 16 --max-batch 64 --rebuild"
    )


def test_manifest_without_the_gpu_module_is_read_but_never_current(tmp_path):
    """Schema-1 manifests (before the module was recorded) could be another Orin module's: rebuild."""
    _, path = make_engine(tmp_path)
    data = json.loads(path.read_text())
    data["schema"] = 1
    data["gpu"] = {"name": "Orin", "compute_capability": "8.7"}
    data.pop("cuda")
    data["cuda_version"] = "12.9"  # schema 1 recorded cuda-python's own CUDA version
    path.write_text(json.dumps(data))
    old = read_manifest(path)
    assert (old.multiprocessors, old.memory_gib, old.board, old.cuda_driver_version) == (0, 0, "", "")
    check = check_manifest(old, path, ORIN_TRT103, MODEL_SHA, SPEC.fingerprint())
    assert check.status is EngineStatus.STALE and "does not record the GPU module" in check.reasons[0]


def test_stale_and_current_side_by_side(tmp_path):
    """An engine folder shared by two devices: each loads only its own engine."""
    xavier = MachineIdentity("8.5.2.2", "Xavier", "7.2", 8, 31, "NVIDIA Jetson Xavier NX Developer Kit")
    _, orin_path = make_engine(tmp_path, machine=ORIN_TRT103, payload=b"orin")
    _, xavier_path = make_engine(tmp_path, machine=xavier, payload=b"xavier")
    assert select_engine(tmp_path, "m.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103).manifest_path == orin_path
    assert select_engine(tmp_path, "m.onnx", MODEL_SHA, SPEC.fingerprint(), xavier).manifest_path == xavier_path


def test_rebuild_command_names_a_non_default_engines_dir_and_quotes_paths(tmp_path):
    """The "Rebuild with" command left out a non-default --engines-dir (the rebuilt engine went to engines/,
    where run did not look) and did not quote paths with spaces."""
    folder = tmp_path / "my engines"
    make_engine(folder, machine=dataclasses.replace(ORIN_TRT103, tensorrt_version="8.6.2.3"))
    with pytest.raises(EngineNotFoundError) as info:
        select_engine(folder, "my models/m.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103)
    assert (f"edge-reid build --model 'my models/m.onnx' --precision fp16 --min-batch 1 --opt-batch 16 --max-batch 64 "
            f"--engines-dir '{folder}' --rebuild") in str(info.value)
    with pytest.raises(EngineNotFoundError) as info:
        select_engine(tmp_path / "none here", "m.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103)
    assert f"`edge-reid build --model m.onnx --precision fp16 --engines-dir '{tmp_path}/none here'`" in str(info.value)
    assert "--engines-dir" not in rebuild_command("m.onnx", None, engines_dir="engines")
    assert "--engines-dir" not in rebuild_command("m.onnx", None, engines_dir=Path("engines"))


def test_no_engine_error_names_engines_built_from_another_version_of_the_model(tmp_path):
    """`run` said only "no TensorRT engine" when engines of an earlier version of the same model file were there."""
    manifest, _ = make_engine(tmp_path, model_sha="f" * 64)
    with pytest.raises(EngineNotFoundError) as info:
        select_engine(tmp_path, "models/osnet_x0_25_msmt17.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103)
    message = str(info.value)
    assert f"engines built from another version of osnet_x0_25_msmt17.onnx: {manifest.engine_file}" in message
    assert "never loaded for this one" in message and "`edge-reid build --model models/osnet_x0_25_msmt17.onnx --precision fp16" in message
