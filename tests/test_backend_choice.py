"""The backend registry: ``--backend auto|tensorrt|openvino|onnxruntime`` choices, refusals and fallbacks."""

from __future__ import annotations

import importlib.util
import platform
from pathlib import Path

import pytest

import edge_reid.backends as backends
from edge_reid.backends import (
    BACKEND_NAMES,
    BACKENDS,
    BackendChoice,
    backend_statuses,
    candidates,
    choose_backend,
    create_backend,
    create_detector_backend,
    tensorrt_available,
)
from edge_reid.errors import BackendUnavailableError, EdgeReidError
from edge_reid.spec import load_spec
from edge_reid.tensorrt.errors import EngineNotFoundError

MODEL = Path(__file__).resolve().parents[1] / "edge_reid" / "assets" / "osnet_x0_25_msmt17.onnx"
TRT = "TensorRT 10.3.0.30 on Orin (sm 8.7, integrated, 7.4 GiB)"
OPENVINO_INSTALLED = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(not OPENVINO_INSTALLED, reason="openvino is not installed (pip install openvino)")


def usable(detail):
    return lambda: (True, detail)


def missing(detail):
    return lambda: (False, detail)


ALL_PRESENT = {"tensorrt": usable(TRT), "openvino": usable("OpenVINO 2026.4.1"), "onnxruntime": usable("ONNX Runtime 1.32.0 (CPU)")}
CPU_ONLY = {**ALL_PRESENT, "tensorrt": missing("TensorRT's Python package is not installed")}


def test_registry_order_is_the_auto_preference():
    assert [entry.name for entry in BACKENDS] == ["tensorrt", "openvino", "onnxruntime"]
    assert BACKEND_NAMES == ("auto", "tensorrt", "openvino", "onnxruntime")
    assert BACKENDS[0].open_detector is None, "TensorRT runs the ReID model only"
    assert all(entry.open_detector is not None for entry in BACKENDS[1:])


def test_auto_prefers_tensorrt_then_openvino_then_onnxruntime():
    assert choose_backend("auto", ALL_PRESENT) == BackendChoice("tensorrt", f"auto chose TensorRT ({TRT})")
    choice = choose_backend("auto", CPU_ONLY)
    assert choice.name == "openvino"
    assert choice.reason == "auto chose OpenVINO (OpenVINO 2026.4.1); TensorRT not usable: TensorRT's Python package is not installed"
    without_openvino = {**CPU_ONLY, "openvino": missing("the openvino package is not installed (pip install openvino)")}
    choice = choose_backend("auto", without_openvino)
    assert choice.name == "onnxruntime"
    assert "TensorRT not usable" in choice.reason and "OpenVINO not usable: the openvino package is not installed" in choice.reason
    assert [c.name for c in candidates("auto", CPU_ONLY)] == ["openvino", "onnxruntime"]


def test_auto_with_nothing_usable_says_what_each_lacks():
    with pytest.raises(BackendUnavailableError, match="no backend can run here: TensorRT: no GPU; OpenVINO: absent; ONNX Runtime: absent"):
        choose_backend("auto", {"tensorrt": missing("no GPU"), "openvino": missing("absent"), "onnxruntime": missing("absent")})


@pytest.mark.parametrize("name, title", [("tensorrt", "TensorRT"), ("openvino", "OpenVINO"), ("onnxruntime", "ONNX Runtime")])
def test_explicit_backend_that_cannot_run_is_refused_by_name(name, title):
    with pytest.raises(BackendUnavailableError) as info:
        choose_backend(name, {name: missing("not installed here")})
    assert str(info.value) == f"--backend {name}: {title} cannot be used here: not installed here"
    assert isinstance(info.value, EdgeReidError) and info.value.exit_code == 2


def test_explicit_backend_never_probes_the_others():
    def boom():
        raise AssertionError("availability of another backend must not be checked")

    assert choose_backend("onnxruntime", {"tensorrt": boom, "openvino": boom}).name == "onnxruntime"
    assert choose_backend("openvino", {"tensorrt": boom, "openvino": usable("OpenVINO 2026.4.1")}).name == "openvino"


def test_unknown_backend():
    with pytest.raises(ValueError, match="auto, tensorrt, openvino, onnxruntime"):
        choose_backend("cuda")


def test_default_availability_is_looked_up_at_call_time(monkeypatch):
    monkeypatch.setattr(backends, "tensorrt_available", usable(TRT))
    assert choose_backend("auto").name == "tensorrt"
    monkeypatch.setattr(backends, "tensorrt_available", missing("no GPU"))
    assert choose_backend("auto").name == ("openvino" if OPENVINO_INSTALLED and platform.machine().lower() in ("x86_64", "amd64")
                                           else "onnxruntime")


def test_openvino_is_chosen_by_auto_only_on_x86_64(monkeypatch):
    import edge_reid.backends.openvino as openvino_backend

    monkeypatch.setattr(openvino_backend, "availability", usable("OpenVINO 2026.4.1"))
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    ok, why = openvino_backend.auto_availability()
    assert not ok and "only on x86-64" in why and "aarch64" in why
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert openvino_backend.auto_availability() == (True, "OpenVINO 2026.4.1")


def test_this_machine_reports_what_tensorrt_lacks():
    ok, why = tensorrt_available()
    if ok:
        pytest.skip("TensorRT and a GPU are present here")
    if importlib.util.find_spec("tensorrt") is None:
        assert "not installed" in why and "tensorrt" in why.lower()
    else:
        assert "TensorRT" in why


def test_statuses_list_every_backend_with_its_installed_version():
    from importlib import metadata

    statuses = {entry.name: (ok, detail) for entry, ok, detail in backend_statuses()}
    assert list(statuses) == ["tensorrt", "openvino", "onnxruntime"]
    assert statuses["onnxruntime"] == (True, f"ONNX Runtime {metadata.version('onnxruntime')} (CPU)")
    if OPENVINO_INSTALLED:
        assert statuses["openvino"] == (True, f"OpenVINO {metadata.version('openvino')}")
    else:
        assert statuses["openvino"][0] is False and "pip install openvino" in statuses["openvino"][1]


def test_create_backend_auto_without_tensorrt_or_openvino_builds_onnxruntime(monkeypatch):
    monkeypatch.setattr(backends, "tensorrt_available", missing("TensorRT's Python package is not installed"))
    entries = tuple(
        backends.Backend(e.name, e.title, missing("not installed"), e.open_embedding, e.open_detector) if e.name == "openvino" else e
        for e in BACKENDS
    )
    monkeypatch.setattr(backends, "BACKENDS", entries)
    spec = load_spec(MODEL)
    with create_backend("auto", MODEL, spec, max_batch=4) as backend:
        assert backend.name == "onnxruntime"
        assert "TensorRT not usable: TensorRT's Python package is not installed" in backend.selection_reason
        assert "OpenVINO not usable: not installed" in backend.selection_reason
        assert backend.infer(2).shape == (2, 512)


def test_create_backend_auto_falls_back_when_tensorrt_has_no_engine(monkeypatch):
    """TensorRT present but no current engine for the model: auto runs the next backend and says how to build one."""
    import edge_reid.backends.tensorrt as trt_backend

    def no_engine(*args, **kwargs):
        raise EngineNotFoundError("no TensorRT engine for osnet_x0_25_msmt17.onnx in engines: build one with `edge-reid build ...`")

    monkeypatch.setattr(backends, "tensorrt_available", usable(TRT))
    monkeypatch.setattr(trt_backend, "open_tensorrt_backend", no_engine)
    spec = load_spec(MODEL)
    with create_backend("auto", MODEL, spec, max_batch=2) as backend:
        assert backend.name in ("openvino", "onnxruntime")
        assert "TensorRT passed over: no TensorRT engine" in backend.selection_reason and "edge-reid build" in backend.selection_reason
    with pytest.raises(EngineNotFoundError, match="edge-reid build"):
        create_backend("tensorrt", MODEL, spec)


def test_onnxruntime_refuses_a_precision_it_cannot_compute():
    spec = load_spec(MODEL)
    with pytest.raises(BackendUnavailableError, match="use the openvino backend for bf16/fp16"):
        create_backend("onnxruntime", MODEL, spec, precision="bf16")
    with pytest.raises(ValueError, match="fp32, bf16, fp16, int8"):
        create_backend("onnxruntime", MODEL, spec, precision="fp8")


def test_detector_under_tensorrt_runs_on_the_best_cpu_backend(monkeypatch, yolox_path):
    monkeypatch.setattr(backends, "tensorrt_available", usable(TRT))
    with create_detector_backend("tensorrt", yolox_path, threads=1) as detector:
        assert detector.name in ("openvino", "onnxruntime")
        assert detector.selection_reason.startswith("detector on ") and "TensorRT runs only the ReID model" in detector.selection_reason


@needs_openvino
def test_auto_detector_and_embedder_land_on_the_cpu_backend_measured_faster_here(monkeypatch, yolox_path, tmp_path):
    """Both CPU backends are timed on each real model the first time; the choice is cached and said."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("auto uses OpenVINO on x86-64 only")
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path))  # "measured now" whatever other tests measured before
    monkeypatch.setattr(backends, "tensorrt_available", missing("no GPU"))
    for how in ("measured now", "measured earlier"):
        with create_detector_backend("auto", yolox_path, threads=1, side_by_side=True) as detector:
            title = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}[detector.name]
            assert detector.selection_reason.startswith(f"auto chose {title}")
            assert f"; {title} " in detector.selection_reason and f"ms of CPU a call on this CPU ({how})" in detector.selection_reason
        with create_backend("auto", MODEL, load_spec(MODEL), max_batch=2) as backend:
            title = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}[backend.name]
            assert "TensorRT not usable: no GPU" in backend.selection_reason
            assert f"; {title} " in backend.selection_reason and f"ms a call on this CPU ({how})" in backend.selection_reason


@needs_openvino
def test_auto_measures_a_model_whose_batch_is_fixed_below_the_timing_batch(monkeypatch, tmp_path):
    """A batch-1 export was never measured: both backends were timed at batch 8, which it refuses, so auto
    fell back to the registry's order, cached nothing and opened both backends again at every start."""
    import onnx

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("auto uses OpenVINO on x86-64 only")
    model = onnx.load(str(MODEL))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    fixed = tmp_path / "osnet_batch1.onnx"
    onnx.save(model, str(fixed))
    monkeypatch.setenv("EDGE_REID_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(backends, "tensorrt_available", missing("no GPU"))
    with create_backend("auto", fixed, load_spec(fixed), max_batch=32) as backend:
        assert backend.max_batch == 1
        assert "ms a call on this CPU (measured now)" in backend.selection_reason


def test_doctor_lists_the_cpu_backends_and_the_auto_choice(tmp_path):
    from edge_reid.doctor import collect_report

    items, _checks = collect_report(tmp_path / "engines")
    lines = {item.name: item for item in items}
    for entry, ok, detail in backend_statuses():
        if entry.name != "tensorrt":
            assert lines[f"backend {entry.name}"].ok is ok and detail in lines[f"backend {entry.name}"].value
    both = sorted(choice.name for choice in backends.candidates("auto")[:2]) == ["onnxruntime", "openvino"]
    reason = choose_backend("auto").reason
    if both:  # the headline is not the registry's first: the timing picks per model (it said "auto chose OpenVINO")
        assert lines["--backend auto"].value.startswith("OpenVINO or ONNX Runtime, for each model the one timed faster")
        assert lines["--backend auto"].value.endswith(reason.partition("; ")[2])
    else:
        assert lines["--backend auto"].value == reason


def test_doctor_names_the_precisions_each_openvino_device_offers():
    from edge_reid.doctor import collect_report, openvino_precisions

    assert openvino_precisions(["FP32", "BF16", "WINOGRAD", "FP16", "INT8", "BIN", "EXPORT_IMPORT"]) == ["fp32", "bf16", "fp16", "int8"]
    assert openvino_precisions(["INT8", "FP32"]) == ["fp32", "int8"]
    openvino = pytest.importorskip("openvino", reason="openvino is not installed (a dependency on x86-64)")
    line = {item.name: item for item in collect_report()[0]}["openvino"].value
    capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert f"CPU: {', '.join(openvino_precisions(capabilities))}" in line.replace(" (refused here: no VNNI or AMX)", "") and "fp32" in line


def test_doctor_marks_openvino_int8_refused_on_a_cpu_without_vnni(monkeypatch):
    """doctor listed `CPU: fp32, int8` on an AVX2-only CPU where edge-reid refuses OpenVINO's INT8 (its sums saturate)."""
    import platform

    import edge_reid.cpu
    from edge_reid.doctor import collect_report, openvino_precisions

    openvino = pytest.importorskip("openvino", reason="openvino is not installed (a dependency on x86-64)")
    if "int8" not in openvino_precisions(openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")):
        pytest.skip("this OpenVINO CPU plugin offers no int8")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the refusal is for x86 CPUs")
    for flags, refused in ((["avx", "avx2", "fma"], True), (["avx2", "avx512_vnni"], False)):
        monkeypatch.setattr(edge_reid.cpu, "cpu_isa_flags", lambda flags=flags: flags)
        line = {item.name: item for item in collect_report()[0]}["openvino"].value
        assert ("int8 (refused here: no VNNI or AMX)" in line) is refused and "int8" in line


def test_onnxruntime_never_runs_a_model_in_another_precision_than_asked(tmp_path, mot17_dir, capsys):
    """`eval --precision fp32` of an INT8 model used to run it in INT8 and report its accuracy as asked."""
    from onnx_builders import tiny_qdq_model

    from edge_reid.cli import main
    from edge_reid.spec import ModelSpec

    model = tiny_qdq_model(tmp_path / "q.onnx")
    spec = ModelSpec(height=4, width=2, embedding_dim=3)
    with pytest.raises(BackendUnavailableError, match="is an INT8 model, not FP32: ONNX Runtime runs the model file's own precision"):
        create_backend("onnxruntime", model, spec, precision="fp32")
    with create_backend("onnxruntime", model, spec, precision="int8") as backend:
        assert backend.name == "onnxruntime"
    assert main(["eval", "--model", str(model), "--data", str(mot17_dir), "--precision", "fp32"]) == 2
    assert "is an INT8 model, not FP32" in capsys.readouterr().err


def test_int8_on_openvino_is_refused_on_an_x86_cpu_without_vnni_and_auto_runs_it_on_onnxruntime(tmp_path, monkeypatch):
    """On an AVX2-only AMD EPYC OpenVINO ran a calibrated INT8 OSNet at mean cosine 0.977 (lowest 0.953) to FP32,
    where ONNX Runtime gave 0.99994: 8-bit products summed in 16 bits saturate without VNNI (OpenVINO's
    documented 'saturation issue'). `auto` chose OpenVINO for it without a word."""
    import edge_reid.cpu as cpu
    from onnx_builders import tiny_qdq_model

    from edge_reid.backends.openvino import int8_saturation
    from edge_reid.spec import ModelSpec

    assert "no VNNI or AMX" in int8_saturation(["avx2", "fma"], "x86_64")
    assert "no VNNI or AMX" in int8_saturation(["avx2", "fma", "avx512f"], "AMD64"), "AVX-512 without VNNI saturates too"
    for flags in (["avx2", "avx_vnni"], ["avx512f", "avx512_vnni"], ["avx512f", "amx_int8"]):
        assert int8_saturation(flags, "x86_64") == ""
    assert int8_saturation([], "x86_64") == "", "flags unknown (no /proc/cpuinfo): nothing to say"
    assert int8_saturation(["neon", "asimd"], "aarch64") == "", "not an x86 CPU"
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino is not installed (pip install openvino)")
    model = tiny_qdq_model(tmp_path / "q.onnx")
    spec = ModelSpec(height=4, width=2, embedding_dim=3)
    monkeypatch.setattr(cpu, "cpu_isa_flags", lambda: ["avx2", "fma"])
    monkeypatch.setattr("edge_reid.backends.openvino.platform.machine", lambda: "x86_64")
    with pytest.raises(BackendUnavailableError, match="OpenVINO cannot run q.onnx in INT8 here: this CPU has no VNNI or AMX"):
        create_backend("openvino", model, spec)
    checks = {"tensorrt": lambda: (False, "no GPU"), "openvino": lambda: (True, "OpenVINO"), "onnxruntime": lambda: (True, "ONNX Runtime")}
    monkeypatch.setattr("edge_reid.backends._check", lambda entry, for_auto, _checks: checks[entry.name]())
    with create_backend("auto", model, spec) as backend:
        assert backend.name == "onnxruntime"
        assert "OpenVINO passed over: OpenVINO cannot run q.onnx in INT8 here: this CPU has no VNNI or AMX" in backend.selection_reason
    monkeypatch.setattr(cpu, "cpu_isa_flags", lambda: ["avx2", "fma", "avx_vnni"])
    with create_backend("openvino", model, spec) as backend:
        assert backend.name == "openvino" and backend.precision == "int8"
