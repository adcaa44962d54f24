"""Which Q/DQ (explicitly quantized) ONNX models TensorRT's ONNX parser can build.

TensorRT takes explicit quantization only in its own form (TensorRT developer guide, "Explicit
Quantization"; onnx-tensorrt's QuantizeLinear/DequantizeLinear importers):

- ``DequantizeLinear`` dequantizes INT8 (or FP8/INT4) tensors only. ONNX Runtime's
  ``QDQQuantizer`` quantizes biases to INT32 by default (``QuantizeBias``), which the parser
  rejects (onnx-tensorrt#850, TensorRT#3360): biases must stay float.
- Quantization is symmetric: every zero point is 0. UINT8 (asymmetric) activations, ONNX Runtime's
  default for ``quantize_static``, are not accepted.

:func:`qdq_problems` lists what breaks these rules; :func:`check_qdq_model` turns them into an
:class:`~edge_reid.tensorrt.errors.EngineBuildError` that says how to make a model TensorRT takes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from edge_reid.onnx_graph import load_onnx
from edge_reid.spec import ModelSpec
from edge_reid.tensorrt.errors import EngineBuildError

#: ``onnx.TensorProto`` element types a DequantizeLinear input may have for TensorRT: INT8, FLOAT8E4M3FN, INT4.
PARSER_DEQUANTIZE_TYPES = {3: "INT8", 17: "FLOAT8E4M3FN", 22: "INT4"}
_TYPE_NAMES = {1: "FLOAT", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 10: "FLOAT16", 17: "FLOAT8E4M3FN", 21: "UINT4", 22: "INT4"}

#: How to re-export a model TensorRT takes (ONNX Runtime quantization options).
QDQ_FIX = (
    "make it with `edge-reid calibrate` (symmetric INT8, zero points 0, biases kept in float); with ONNX Runtime's "
    "quantize_static pass quant_format=QDQ, activation_type=QInt8, weight_type=QInt8 and "
    "extra_options={'QuantizeBias': False, 'ActivationSymmetric': True, 'WeightSymmetric': True}"
)


def _quantized_type(node, tensor) -> int:
    """The element type a QuantizeLinear node writes, as the ONNX spec defines it: its ``output_dtype``
    attribute (opset 21) when set and not UNDEFINED (0), else its zero point's type, else UINT8."""
    for attribute in node.attribute:
        if attribute.name == "output_dtype" and attribute.i:
            return int(attribute.i)
    zero = tensor(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    return zero.data_type if zero is not None else 2  # neither: UINT8


def qdq_problems(model) -> list[str]:
    """What in a Q/DQ model TensorRT's ONNX parser rejects; empty when it is fine.

    Args:
        model: an ``onnx.ModelProto``.

    Returns:
        One line per kind of problem, with a count and an example node name.
    """
    from onnx import numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    constants = {out: node for node in graph.node if node.op_type == "Constant" for out in node.output}
    value_types = {vi.name: vi.type.tensor_type.elem_type for vi in list(graph.value_info) + list(graph.input)}

    def tensor(name: str):
        if name in initializers:
            return initializers[name]
        node = constants.get(name)
        if node is not None:
            for attribute in node.attribute:
                if attribute.name == "value":
                    return attribute.t
        return None

    quantized_type: dict[str, int] = {}  # QuantizeLinear output -> its element type
    for node in graph.node:
        if node.op_type == "QuantizeLinear":
            quantized_type[node.output[0]] = _quantized_type(node, tensor)

    bad_inputs: Counter[str] = Counter()
    bad_input_example: dict[str, str] = {}
    nonzero: list[str] = []
    asymmetric: list[str] = []
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        zero = tensor(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero is not None and numpy_helper.to_array(zero).any():
            nonzero.append(node.name or node.output[0])
        if node.op_type == "QuantizeLinear":
            if quantized_type[node.output[0]] not in PARSER_DEQUANTIZE_TYPES:
                asymmetric.append(node.name or node.output[0])
            continue
        source = node.input[0]
        init = tensor(source)
        elem = init.data_type if init is not None else quantized_type.get(source, value_types.get(source, 0))
        if elem and elem not in PARSER_DEQUANTIZE_TYPES:
            name = _TYPE_NAMES.get(elem, f"type {elem}")
            bad_inputs[name] += 1
            bad_input_example.setdefault(name, node.name or node.output[0])

    problems = []
    for name, count in sorted(bad_inputs.items()):
        why = " (quantized biases)" if name == "INT32" else " (asymmetric quantization)" if name == "UINT8" else ""
        problems.append(
            f"{count} DequantizeLinear node(s) dequantize {name} inputs{why}, e.g. {bad_input_example[name]!r}; "
            f"TensorRT dequantizes {'/'.join(PARSER_DEQUANTIZE_TYPES.values())} only"
        )
    if asymmetric:
        problems.append(f"{len(asymmetric)} QuantizeLinear node(s) quantize to UINT8 (asymmetric activations), e.g. {asymmetric[0]!r}")
    if nonzero:
        problems.append(f"{len(nonzero)} Q/DQ node(s) have non-zero zero points, e.g. {nonzero[0]!r}; TensorRT quantizes symmetrically")
    return problems


def check_qdq_model(path: Path, spec: ModelSpec) -> None:
    """Check that ``path`` is a Q/DQ version of a model with ``spec``'s input that TensorRT's parser can take.

    Raises:
        EngineBuildError: missing file, not an ONNX model, no QuantizeLinear/DequantizeLinear nodes,
            another input name, or anything :func:`qdq_problems` finds; the message says how to fix it.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a model file" if path.is_dir() else "file not found"
        raise EngineBuildError(f"--qdq {path}: {what}; make it with `edge-reid calibrate`")
    model = load_onnx(path, "--qdq ")
    ops = {node.op_type for node in model.graph.node}
    if not {"QuantizeLinear", "DequantizeLinear"} <= ops:
        raise EngineBuildError(
            f"--qdq {path}: the model has no QuantizeLinear/DequantizeLinear nodes; pass the Q/DQ model written by `edge-reid calibrate`"
        )
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if spec.input_name not in inputs:
        raise EngineBuildError(f"--qdq {path}: its input is {inputs}, the model's is {spec.input_name!r}; was it made from another model?")
    problems = qdq_problems(model)
    if problems:
        raise EngineBuildError(f"--qdq {path}: TensorRT's ONNX parser cannot build this Q/DQ model: {'; '.join(problems)}. Fix: {QDQ_FIX}")
