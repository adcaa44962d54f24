"""Conformance with the REAL TensorRT Python bindings (8.6, 10.3, 11 for CUDA 12 and 13), without a GPU.

The ``tensorrt_bindings`` wheels are NVIDIA's pybind11 modules without TensorRT's libraries; they
import against stub libraries compiled here (tests/real_bindings.py). Every factory in the stubs
returns NULL, as libnvinfer does when CUDA cannot start, so these tests see the real bindings'
surface (names, signatures, enum values, pybind11 rules) and their start-up failure, never a build.

Three kinds of checks:

- the record the stand-in is built from (tests/binding_surfaces.json) equals what the real module
  reports now (needs the registry on first run; skips with the reason otherwise);
- the stand-in (tests/fake_tensorrt.py) and our subclasses match that record, and everything
  edge_reid uses exists in each version where it is used (CPU only, no download);
- our start-up code and ``edge-reid build`` against the real modules: exit 2, one line, the likely causes.

Cost: the first run downloads about 45 MB (cached by pip and in ~/.cache/edge-reid/real-bindings);
then about 30 s on 2 cores (each subprocess imports edge_reid).
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import fake_tensorrt
import real_bindings
from binding_probe import TENSORRT_ENUMS, TENSORRT_USED
from edge_reid.tensorrt.versions import PRECISIONS, builder_flag_names, int8_paths, network_flag_names, parse_version

KEYS = list(real_bindings.TENSORRT)
PACKAGE = Path(__file__).resolve().parents[1] / "edge_reid"


recorded = real_bindings.recorded_surface


def real_environment(*keys: str) -> real_bindings.RealEnvironment:
    try:
        return real_bindings.environment(*keys)
    except real_bindings.Unavailable as exc:
        pytest.skip(f"real bindings unavailable here: {exc}")


@pytest.fixture(scope="module", params=KEYS)
def probed(request):
    """(key, probe JSON with edge_reid's start-up run) for each real TensorRT release."""
    return request.param, real_environment(request.param).probe("tensorrt", edge_reid=True)


# -- the record equals the real modules ------------------------------------------------------------


@pytest.mark.slow
def test_recorded_surface_is_the_real_modules(probed):
    key, data = probed
    real_bindings.assert_surface_is_recorded(key, data["surface"])


@pytest.mark.slow
def test_real_bindings_fail_to_start_cuda_with_a_type_error_and_our_code_explains_it(probed):
    key, data = probed
    behaviour, ours = data["behaviour"], data["edge_reid"]
    nullptr = "raises TypeError: pybind11::init(): factory function returned nullptr"
    assert behaviour["Builder"] == nullptr and behaviour["Runtime"] == nullptr
    for name, what in (("create_builder", "trt.Builder"), ("create_runtime", "trt.Runtime")):
        outcome = ours[name]
        assert outcome.startswith(f"raises BackendUnavailableError: TensorRT cannot start CUDA ({what}: pybind11::init(): factory function returned nullptr)")
        assert "'video' and 'render' groups" in outcome and "--runtime nvidia" in outcome and "tegrastats" in outcome
    if real_bindings.TENSORRT[key].logs_cuda_failure:
        # The real bindings route TensorRT's warning to our Python logger (base __init__ called, severity an enum).
        assert behaviour["Builder_log"] == [[2, fake_tensorrt.CUDA_INIT_WARNING]]
        assert "TensorRT said: CUDA initialization failure with error: 35" in ours["create_builder"]
        assert ours["echoed"] == [f"TensorRT: {fake_tensorrt.CUDA_INIT_WARNING}"] * 2


# -- what edge_reid uses exists where it is used (from the record: CPU only) -------------------------

#: Members absent from a release on purpose, and why edge_reid never needs them there.
ABSENT = {
    "tensorrt-11-cu12": {
        "IInt8EntropyCalibrator2", "IBuilderConfig.int8_calibrator", "IBuilderConfig.set_calibration_profile",
        *(f"IInt8EntropyCalibrator2.{m}" for m in TENSORRT_USED["IInt8EntropyCalibrator2"]),
    },  # implicit calibration is TensorRT 8.x/9.x only (int8_paths)
}
ABSENT["tensorrt-11-cu13"] = ABSENT["tensorrt-11-cu12"]


@pytest.mark.parametrize("key", KEYS)
def test_every_member_edge_reid_uses_exists_in_each_release_that_uses_it(key):
    surface = recorded(key)
    missing = {name for name, signature in surface["members"].items() if signature is None}
    assert missing == ABSENT.get(key, set())
    version = parse_version(surface["version"])
    from edge_reid.tensorrt.versions import Int8Path

    if Int8Path.IMPLICIT_CALIBRATION in int8_paths(version):
        assert surface["members"]["IInt8EntropyCalibrator2"] is not None
    enums = surface["enums"]
    assert set(network_flag_names(version)) <= set(enums["NetworkDefinitionCreationFlag"])
    for precision in PRECISIONS:
        assert set(builder_flag_names(version, precision)) <= set(enums["BuilderFlag"])
    assert "WORKSPACE" in enums["MemoryPoolType"] and {"INPUT", "OUTPUT"} <= set(enums["TensorIOMode"])
    assert "FLOAT" in enums["DataType"] and {"ERROR", "WARNING"} <= set(enums["ILogger.Severity"])


def test_strongly_typed_and_explicit_batch_have_different_values_per_release():
    """Why the stand-in takes enum values from the record: 10.x and 11.x disagree."""
    flags = {key: recorded(key)["enums"]["NetworkDefinitionCreationFlag"] for key in KEYS}
    assert flags["tensorrt-8.6"].get("EXPLICIT_BATCH") == 0 and "STRONGLY_TYPED" not in flags["tensorrt-8.6"]
    assert flags["tensorrt-10.3"] == {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
    assert flags["tensorrt-11-cu12"]["STRONGLY_TYPED"] == 0 and "EXPLICIT_BATCH" not in flags["tensorrt-11-cu12"]
    assert "FP16" not in recorded("tensorrt-11-cu12")["enums"]["BuilderFlag"]


def _package_trt_attributes() -> set[str]:
    """``trt.X`` and ``trt.X.Y`` names used anywhere in the package."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "trt":
                names.add(node.attr)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
                inner = node.value
                if isinstance(inner.value, ast.Name) and inner.value.id == "trt":
                    names.add(f"{inner.attr}.{node.attr}")
    return names


def test_the_package_uses_only_members_the_conformance_tests_check():
    listed = set(TENSORRT_USED) | {e.split(".")[0] for e in TENSORRT_ENUMS} | {"__version__", "Logger.WARNING"}
    listed |= {f"{cls}.{member}" for cls, members in TENSORRT_USED.items() for member in members}
    enum_members = {f"{e.split('.')[-1]}.{m}" for key in KEYS for e, values in recorded(key)["enums"].items() for m in (values or {})}
    used = _package_trt_attributes()
    unchecked = {name for name in used if name not in listed and name not in enum_members and name.split(".")[0] not in ("ILogger",)}
    assert unchecked == set(), f"add these to tests/binding_probe.py TENSORRT_USED (and re-record): {sorted(unchecked)}"


# -- the stand-in matches the record -------------------------------------------------------------------


def parameters(signature: str) -> list[tuple[str, bool]]:
    """(name, has a default) of each parameter (without self) of a pybind11 signature line."""
    inside = signature[signature.index("(") + 1 : signature.rindex(") ->") if ") ->" in signature else signature.rindex(")")]
    found, depth, current = [], 0, ""
    for char in inside + ",":
        if char in "[(<":
            depth += 1
        elif char in "])>":
            depth -= 1
        if char == "," and depth == 0:
            name = current.split(":")[0].split("=")[0].strip()
            if name and name not in ("self", "arg0") and not name.startswith("*"):
                found.append((name, "=" in current))
            current = ""
        else:
            current += char
    return found


def parameter_names(signature: str) -> list[str]:
    return [name for name, _ in parameters(signature)]


def accepts_the_same_calls(ours: list[str], signature: str) -> bool:
    """``ours`` (a stand-in's parameter names) takes the real overload's required parameters, by the
    real names, and nothing the real one does not take."""
    real = parameters(signature)
    required = [name for name, has_default in real if not has_default]
    names = [name for name, _ in real]
    return ours[: len(required)] == required and ours == names[: len(ours)]


def _fake_member(module, cls_name: str, member: str):
    cls = getattr(module, cls_name)
    return inspect.getattr_static(cls, member)


@pytest.mark.parametrize("key, version", [("tensorrt-8.6", "8.6.2.3"), ("tensorrt-10.3", "10.3.0.30"), ("tensorrt-11-cu12", "11.4.0.106")])
def test_the_stand_in_has_the_real_members_parameter_names_and_enum_values(key, version):
    surface = recorded(key)
    module = fake_tensorrt.make_module(version)
    for dotted, values in surface["enums"].items():
        enum = module.ILogger.Severity if dotted == "ILogger.Severity" else getattr(module, dotted)
        assert {name: int(member) for name, member in enum.__members__.items()} == values, dotted
    for dotted, signatures in surface["members"].items():
        cls_name, _, member = dotted.partition(".")
        if not member:
            assert hasattr(module, cls_name) == (signatures is not None), cls_name
            continue
        if cls_name == "IInt8EntropyCalibrator2" and member != "__init__":
            continue  # the user's subclass defines these (checked below against our calibrator)
        if signatures is None:
            if hasattr(module, cls_name):
                assert not hasattr(getattr(module, cls_name), member), f"{dotted} is absent from the real {key}"
            continue
        fake = _fake_member(module, cls_name, member)
        if signatures[0].startswith("(arg0"):
            assert isinstance(fake, property), f"{dotted} is a property in the real module"
            continue
        ours = [p for p in inspect.signature(fake).parameters if p != "self"]
        assert any(accepts_the_same_calls(ours, s) for s in signatures), f"{dotted}: stand-in {ours}, real {signatures}"


def test_our_trt_subclasses_have_the_real_signatures():
    """CapturingLogger.log and the entropy calibrator's methods (TensorRT calls them from C++)."""
    from edge_reid.tensorrt.calibrator import CalibrationBatchFeeder, CalibrationCache, make_entropy_calibrator
    from edge_reid.tensorrt.startup import make_logger

    import numpy as np

    trt = fake_tensorrt.make_module("8.6.2.3")
    logger = make_logger(trt)
    real = recorded("tensorrt-8.6")["members"]
    assert [p for p in inspect.signature(type(logger).log).parameters if p != "self"] == parameter_names(real["ILogger.log"][0])
    feeder = CalibrationBatchFeeder(iter([]), np.zeros((2, 3, 4, 2), np.float32))
    calibrator = make_entropy_calibrator(trt, feeder, 1, lambda: None, CalibrationCache("unused.cache"))
    for member in ("get_batch_size", "get_batch", "read_calibration_cache", "write_calibration_cache"):
        ours = [p for p in inspect.signature(getattr(type(calibrator), member)).parameters if p != "self"]
        assert ours == parameter_names(real[f"IInt8EntropyCalibrator2.{member}"][0]), member


# -- the CLI against the real modules ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("cuda", ["cuda-12.6", "cuda-12.9"])
def test_edge_reid_build_with_real_tensorrt_10_3_and_no_driver_exits_2_with_one_clear_line(cuda, tmp_path):
    env = real_environment("tensorrt-10.3", cuda)
    result = env.python("-m", "edge_reid", "build", "--engines-dir", str(tmp_path / "engines"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("edge-reid: error: TensorRT 10.3.0 is installed but no NVIDIA driver")
    assert "'video' and 'render' groups" in lines[0] and "nvidia-smi" in lines[0]
    assert not (tmp_path / "engines").exists()


#: Runs the CLI with real TensorRT while the CUDA runtime reports an Orin (tests/fake_cudart.py):
#: the GPU looks usable but TensorRT's own CUDA start fails, as when only TensorRT's libraries break.
CLI_WITH_FAKE_GPU = """
import sys
from fake_cudart import FakeCudaRuntime
import edge_reid.cuda.buffers as buffers, edge_reid.cuda.runtime as runtime
rt = FakeCudaRuntime(integrated=True)
runtime.import_cudart = buffers.import_cudart = lambda: rt
from edge_reid.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_edge_reid_build_when_tensorrt_cannot_start_cuda_exits_2_with_tensorrts_log(tmp_path):
    env = real_environment("tensorrt-10.3")
    result = env.python("-c", CLI_WITH_FAKE_GPU, "build", "--engines-dir", str(tmp_path / "engines"))
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert last.startswith("edge-reid: error: TensorRT cannot start CUDA (trt.Builder: pybind11::init(): factory function returned nullptr)")
    assert "TensorRT said: CUDA initialization failure with error: 35" in last and "render" in last
    assert re.search(r"TensorRT: CUDA initialization failure", result.stderr)  # the warning was also shown as it came
