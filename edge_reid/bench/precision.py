"""Which numeric precision an ONNX model is (fp32, fp16, int8), checked against what the user asked for."""

from __future__ import annotations

from pathlib import Path

from edge_reid.errors import ModelError

PRECISIONS = ("fp32", "fp16", "int8")
#: ONNX operators that only occur in quantized (INT8) graphs.
_INT8_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}
)


def detect_precision(model_path: str | Path) -> str:
    """The numeric precision of an ONNX model's weights: ``"int8"``, ``"fp16"`` or ``"fp32"``.

    ``int8``: the graph holds quantization operators (Q/DQ or QLinear*/Integer ops,
    as written by ONNX Runtime's quantization tools). ``fp16``: a float16 graph
    input or initializer. Otherwise ``fp32``.

    Raises:
        ModelError: the file is missing or not an ONNX model.
    """
    import onnx

    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    graph = model.graph
    if any(node.op_type in _INT8_OPS for node in graph.node):
        return "int8"
    float16 = onnx.TensorProto.FLOAT16
    if any(init.data_type == float16 for init in graph.initializer) or any(
        value.type.tensor_type.elem_type == float16 for value in graph.input
    ):
        return "fp16"
    return "fp32"


def resolve_precision(requested: str | None, model_path: str | Path) -> str:
    """The precision label to report for ``model_path``, checked against what the user asked.

    Precision is a property of the model file here: FP16 and INT8 models are made
    by ``edge-reid calibrate`` (INT8 with a calibration guard); this benchmark
    never converts a model.

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
    detected = detect_precision(model_path)
    if requested is None or requested == detected:
        return detected
    if detected == "fp32":
        raise ModelError(
            f"{model_path} is an FP32 model, so --precision {requested} cannot run it: make an {requested.upper()} model "
            f"first with `edge-reid calibrate` (see `edge-reid calibrate --help`), then pass the model it writes with --model"
        )
    raise ModelError(f"{model_path} is an {detected.upper()} model, not {requested.upper()}: use --precision {detected} (or leave it out)")
