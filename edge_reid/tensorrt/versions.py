"""TensorRT version gates, as pure functions of the version string.

What changes with the TensorRT version (NVIDIA TensorRT release notes and API
docs; checked against the Python bindings of 8.6.1, 10.3.0 and 11.4.0):

- 8.5 added the name-based I/O API this package runs engines with
  (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``): the minimum.
- 8.x (JetPack 5, and JetPack 6.0 with 8.6.2) needs the ``EXPLICIT_BATCH`` network
  flag; it builds INT8 either from a Q/DQ model (explicit quantization) or with an
  implicit calibrator (``IInt8EntropyCalibrator2`` plus a calibration cache).
- 10.x (JetPack 6.1/6.2 ships 10.3): explicit batch is implied (flag deprecated);
  implicit calibrators are deprecated (10.1), so INT8 comes from the Q/DQ model
  written by ``edge-reid calibrate``.
- 11.x removes the ``EXPLICIT_BATCH`` flag, the FP16/INT8 builder flags and the
  calibrators: networks are strongly typed (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``)
  and take their precision from the model's own types (an FP16 model for FP16, a Q/DQ
  model for INT8).
"""

from __future__ import annotations

import re
from enum import Enum

from edge_reid.tensorrt.errors import EngineBuildError

#: Oldest TensorRT this package runs: the name-based I/O API arrived in 8.5.
MIN_TENSORRT = (8, 5)

PRECISIONS = ("fp16", "int8")


class Int8Path(str, Enum):
    """How an INT8 engine gets its quantization scales."""

    #: Q/DQ nodes in the ONNX model (``edge-reid calibrate``): explicit quantization.
    QDQ = "qdq"
    #: TensorRT's IInt8EntropyCalibrator2 over Market-1501 crops, with a calibration cache (TensorRT 8.x only).
    IMPLICIT_CALIBRATION = "implicit-calibration"


def parse_version(text: str) -> tuple[int, ...]:
    """``"10.3.0.30"`` -> ``(10, 3, 0, 30)``; ``"8.6.2"`` -> ``(8, 6, 2)``.

    Trailing non-numeric parts (``"10.7.0.post1"``) are ignored.

    Raises:
        ValueError: the string does not start with ``MAJOR.MINOR``.
    """
    match = re.match(r"^\s*(\d+)\.(\d+)((?:\.\d+)*)", str(text))
    if not match:
        raise ValueError(f"not a TensorRT version: {text!r}")
    parts = [int(match.group(1)), int(match.group(2))]
    parts += [int(p) for p in match.group(3).split(".") if p]
    return tuple(parts)


def is_supported(version: tuple[int, ...]) -> bool:
    """True for TensorRT >= 8.5 (see :data:`MIN_TENSORRT`)."""
    return tuple(version[:2]) >= MIN_TENSORRT


def unsupported_reason(version: tuple[int, ...]) -> str:
    """Empty when ``version`` is supported, else one line saying why not."""
    if is_supported(version):
        return ""
    shown = ".".join(str(v) for v in version)
    return f"TensorRT {shown} is too old: edge-reid needs TensorRT >= 8.5 (on a Jetson: JetPack 6 or later)"


def is_strongly_typed(version: tuple[int, ...]) -> bool:
    """True from TensorRT 11: networks are built strongly typed, without precision flags."""
    return version[0] >= 11


def network_flag_names(version: tuple[int, ...]) -> list[str]:
    """Names of ``trt.NetworkDefinitionCreationFlag`` members to OR into ``create_network``.

    8.x: ``EXPLICIT_BATCH`` (required for ONNX); 9-10: none (explicit batch is the
    only mode); 11+: ``STRONGLY_TYPED``.
    """
    if version[0] < 9:
        return ["EXPLICIT_BATCH"]
    if is_strongly_typed(version):
        return ["STRONGLY_TYPED"]
    return []


def int8_paths(version: tuple[int, ...]) -> tuple[Int8Path, ...]:
    """INT8 paths allowed on this TensorRT version, preferred first.

    8.x and 9.x: Q/DQ model or the implicit entropy calibrator. 10 and later: Q/DQ only
    (implicit calibration deprecated in 10.1, removed in 11).
    """
    if version[0] < 10:
        return (Int8Path.QDQ, Int8Path.IMPLICIT_CALIBRATION)
    return (Int8Path.QDQ,)


def choose_int8_path(version: tuple[int, ...], has_qdq_model: bool, has_calibration_data: bool) -> Int8Path:
    """Which INT8 path a build takes, given what the user passed.

    Args:
        version: TensorRT version tuple.
        has_qdq_model: ``--qdq`` was given.
        has_calibration_data: ``--calibration-data`` was given.

    Raises:
        EngineBuildError: both or neither were given, or implicit calibration was
            asked for on TensorRT >= 10; the message says what to run instead.
    """
    shown = ".".join(str(v) for v in version[:3])
    if has_qdq_model and has_calibration_data:
        raise EngineBuildError("--precision int8: pass either --qdq or --calibration-data, not both")
    if has_qdq_model:
        return Int8Path.QDQ
    if has_calibration_data:
        if Int8Path.IMPLICIT_CALIBRATION in int8_paths(version):
            return Int8Path.IMPLICIT_CALIBRATION
        raise EngineBuildError(
            f"--calibration-data: TensorRT {shown} has no implicit INT8 calibration (deprecated in 10.1, removed in 11); "
            "make a Q/DQ model with `edge-reid calibrate` and pass it with --qdq calibration/MODEL-int8-qdq.onnx"
        )
    if Int8Path.IMPLICIT_CALIBRATION in int8_paths(version):
        hint = "--qdq calibration/MODEL-int8-qdq.onnx (from `edge-reid calibrate`) or --calibration-data MARKET1501_DIR"
    else:
        hint = "--qdq calibration/MODEL-int8-qdq.onnx (make it with `edge-reid calibrate`)"
    raise EngineBuildError(f"--precision int8 needs {hint}")


def builder_flag_names(version: tuple[int, ...], precision: str) -> list[str]:
    """Names of ``trt.BuilderFlag`` members to set for ``precision``.

    Strongly typed (11+): none; the model's types decide. Otherwise ``fp16``:
    ``FP16``; ``int8``: ``INT8`` and ``FP16`` (a Q/DQ network must be built with the
    INT8 flag on TensorRT 8-10, and FP16 lets the layers outside Q/DQ pairs run in
    half precision, like ``trtexec --int8 --fp16``).

    Raises:
        ValueError: unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if is_strongly_typed(version):
        return []
    return ["FP16"] if precision == "fp16" else ["INT8", "FP16"]


def tensorrt_tag(version_text: str) -> str:
    """Version tag for file names: ``"10.3.0.30"`` -> ``"10.3.0.30"``, ``"10.7.0.post1"`` -> ``"10.7.0"``."""
    return ".".join(str(v) for v in parse_version(version_text))
