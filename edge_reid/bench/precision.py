"""Which numeric precision an ONNX model is (fp32, fp16, int8), checked against what the user asked for."""

from __future__ import annotations

from pathlib import Path

from edge_reid.backends.base import PRECISIONS
from edge_reid.errors import BackendUnavailableError, ModelError
from edge_reid.onnx_graph import model_precision

__all__ = ["PRECISIONS", "backend_options_for", "backend_precision", "resolve_precision"]

def resolve_precision(requested: str | None, model_path: str | Path) -> str:
    """The precision label to report for ``model_path`` on ONNX Runtime, checked against what the user asked.

    On ONNX Runtime precision is a property of the model file: FP16 and INT8 models
    are made by ``edge-reid calibrate`` (INT8 with a calibration guard); this
    benchmark never converts a model. (On TensorRT it is the engine's: see
    :func:`backend_options_for`.)

    Args:
        requested: ``"fp32"``, ``"fp16"``, ``"int8"`` or None (report what the model is).
        model_path: the ONNX model.

    Raises:
        ValueError: ``requested`` is not one of :data:`PRECISIONS`.
        ModelError: the model's precision is not the requested one; the message says
            to run ``edge-reid calibrate`` first.
    """
    if requested is not None and requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    detected = model_precision(model_path)
    if requested is None or requested == detected:
        return detected
    if detected == "fp32":
        raise ModelError(
            f"{model_path} is an FP32 model, so --precision {requested} cannot run it: make an {requested.upper()} model "
            f"first with `edge-reid calibrate` (see `edge-reid calibrate --help`), then pass the model it writes with --model"
        )
    raise ModelError(f"{model_path} is an {detected.upper()} model, not {requested.upper()}: use --precision {detected} (or leave it out)")


def backend_options_for(backend: str, requested: str | None, engines_dir: str | Path = "engines") -> tuple[str, dict]:
    """The backend name and ``Embedder(backend_options=...)`` that run ``requested`` precision.

    ONNX Runtime runs the model file's own precision (checked by :func:`resolve_precision`).
    OpenVINO computes the float layers in ``requested`` (fp32 default, bf16/fp16 where the CPU
    has them) and runs a Q/DQ model's quantized layers on integer kernels. TensorRT engines
    are FP16 or INT8, built by ``edge-reid build``; the engine of the requested precision is
    loaded from ``engines_dir`` (None: the newest current one).

    Args:
        backend: ``"onnxruntime"``, ``"openvino"``, ``"tensorrt"`` or ``"auto"``.
        requested: one of :data:`PRECISIONS` or None.
        engines_dir: folder of TensorRT engines and manifests.

    Returns:
        (backend name to create, keyword options for the backend).

    Raises:
        BackendUnavailableError: a precision the backend never computes in
            (``--backend tensorrt --precision fp32``, ``--backend onnxruntime --precision bf16``).
    """
    if backend == "onnxruntime":
        if requested == "bf16":
            raise BackendUnavailableError(
                "--backend onnxruntime runs the model file's own precision, and no ONNX model is stored in bf16: "
                "use --backend openvino --precision bf16"
            )
        return backend, {}
    if backend == "tensorrt" and requested in ("fp32", "bf16"):
        raise BackendUnavailableError(
            f"--backend tensorrt runs FP16 or INT8 engines (built with `edge-reid build --precision fp16|int8`), not "
            f"{requested.upper()}; for {requested.upper()} use --backend openvino" + (" or onnxruntime" if requested == "fp32" else "")
        )
    return backend, {"precision": requested, "engines_dir": Path(engines_dir)}


def backend_precision(backend, requested: str | None, model_path: str | Path) -> str:
    """The precision a created backend runs: a TensorRT engine's (from its manifest), OpenVINO's (what it
    was compiled for), else the ONNX model's (:func:`resolve_precision`, which checks it against ``requested``).

    Raises:
        ModelError: ONNX Runtime and the model's precision is not ``requested``.
    """
    name = getattr(backend, "name", "")
    manifest = getattr(backend, "manifest", None)
    if name == "tensorrt" and manifest is not None:
        return str(manifest.precision)
    if name == "openvino":
        return str(backend.precision)
    return resolve_precision(requested, model_path)
