"""Engine manifests: naming, round trip, matching and staleness (another TensorRT or GPU is never loaded)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from edge_reid.spec import ModelSpec, file_sha256
from edge_reid.tensorrt.errors import EngineManifestError, EngineNotFoundError
from edge_reid.tensorrt.manifest import (
    EngineManifest,
    EngineStatus,
    MachineIdentity,
    check_manifest,
    engine_stem,
    read_manifest,
    rebuild_command,
    scan_engines,
    select_engine,
    timing_cache_path,
    write_manifest,
)
from edge_reid.tensorrt.profile import BatchProfile

ORIN_TRT103 = MachineIdentity("10.3.0.30", "Orin", "8.7")
MODEL_SHA = "61b2604171ef9d58d21758626f83b35a253c3d7123976523a6e03068c3c95d7b"
SPEC = ModelSpec(name="osnet")


def make_engine(
    folder: Path,
    machine: MachineIdentity = ORIN_TRT103,
    precision: str = "fp16",
    profile: BatchProfile = BatchProfile(),
    model_sha: str = MODEL_SHA,
    build_date: str = "2026-11-21T19:00:00Z",
    payload: bytes = b"serialized engine bytes",
    **extra,
) -> tuple[EngineManifest, Path]:
    """Write an engine file (opaque bytes: only its hash matters here) and its manifest."""
    stem = engine_stem("osnet_x0_25_msmt17", model_sha, precision, profile, machine)
    engine = folder / f"{stem}.engine"
    folder.mkdir(parents=True, exist_ok=True)
    engine.write_bytes(payload)
    manifest = EngineManifest(
        engine_file=engine.name,
        engine_sha256=file_sha256(engine),
        model_file="osnet_x0_25_msmt17.onnx",
        model_sha256=model_sha,
        spec=SPEC.to_dict(),
        spec_fingerprint=SPEC.fingerprint(),
        precision=precision,
        int8_path=extra.get("int8_path"),
        calibration_file=extra.get("calibration_file"),
        calibration_sha256=extra.get("calibration_sha256"),
        tensorrt_version=machine.tensorrt_version,
        gpu_name=machine.gpu_name,
        compute_capability=machine.compute_capability,
        cuda_version="12.6",
        profile=profile,
        input_name="images",
        output_name="output",
        input_chw=(3, 256, 128),
        embedding_dim=512,
        workspace_mb=1024,
        build_date=build_date,
    )
    path = write_manifest(manifest, folder / f"{stem}.json")
    return manifest, path


def test_engine_name_encodes_model_precision_profile_tensorrt_and_gpu():
    stem = engine_stem("osnet_x0_25_msmt17", MODEL_SHA, "int8", BatchProfile(1, 16, 64), ORIN_TRT103)
    assert stem == "osnet-x0-25-msmt17-61b2604171ef-int8-b1-16-64-trt10.3.0.30-orin-sm87"
    other = engine_stem("osnet_x0_25_msmt17", MODEL_SHA, "int8", BatchProfile(1, 16, 64), MachineIdentity("10.3.0.30", "NVIDIA GeForce RTX 3060", "8.6"))
    assert other != stem and other.endswith("nvidia-geforce-rtx-3060-sm86")
    assert timing_cache_path("engines", ORIN_TRT103) == Path("engines/timing-trt10.3.0.30-orin-sm87.cache")


def test_manifest_round_trip_through_json(tmp_path):
    manifest, path = make_engine(tmp_path, precision="int8", int8_path="qdq", calibration_file="calibration/m-int8-qdq.onnx", calibration_sha256="ab" * 32)
    data = json.loads(path.read_text())
    assert data["model"]["sha256"] == MODEL_SHA and data["gpu"] == {"name": "Orin", "compute_capability": "8.7"}
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
        (MachineIdentity("10.7.0.23", "Orin", "8.7"), ["TensorRT 10.3.0.30", "10.7.0.23"]),
        (MachineIdentity("10.3.0.30", "Xavier", "7.2"), ["built for Orin (sm 8.7)", "Xavier (sm 7.2)"]),
        (MachineIdentity("10.3.0.30", "Orin", "8.6"), ["sm 8.7", "sm 8.6"]),
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
    assert "edge-reid build --model osnet_x0_25_msmt17.onnx --precision fp16 --min-batch 1 --opt-batch 16 --max-batch 64 --rebuild" in message


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


def test_stale_and_current_side_by_side(tmp_path):
    """An engine folder shared by two devices: each loads only its own engine."""
    xavier = MachineIdentity("8.5.2.2", "Xavier", "7.2")
    _, orin_path = make_engine(tmp_path, machine=ORIN_TRT103, payload=b"orin")
    _, xavier_path = make_engine(tmp_path, machine=xavier, payload=b"xavier")
    assert select_engine(tmp_path, "m.onnx", MODEL_SHA, SPEC.fingerprint(), ORIN_TRT103).manifest_path == orin_path
    assert select_engine(tmp_path, "m.onnx", MODEL_SHA, SPEC.fingerprint(), xavier).manifest_path == xavier_path
