"""Reading ONNX files: one loader with one error for every module that looks inside a graph, and the
graph edits modules share (unused nodes and weights dropped, a model cut down to one output).

Only the graph is read (``load_external_data=False``) unless a caller asks for the weights stored
beside the file too (``weights=True``: a graph rewrite that moves weights).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from edge_reid.errors import ModelError

QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


def load_onnx(path: str | Path, label: str = "", hint: str = "", weights: bool = False):
    """``onnx.load`` of a file's graph, its failures as one :class:`ModelError`.

    Args:
        path: the ``.onnx`` file.
        label: how the file is named in the message (e.g. ``"--qdq "``).
        hint: what to do, appended to the message (e.g. ``"pass an .onnx file exported from your ReID network"``).
        weights: also load weights stored in separate files beside the model (ONNX external data).

    Returns:
        The ``onnx.ModelProto``.

    Raises:
        ModelError: the file is missing, a folder, or not a readable ONNX model (names the file).
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise ModelError(f"{label}{path} is a folder, not a model file; pass the path of an .onnx file")
        raise ModelError(f"model file not found: {label}{path}")
    try:
        return onnx.load(str(path), load_external_data=weights)
    except (OSError, onnx.checker.ValidationError) as exc:  # a weights file it names is missing or unreadable
        raise ModelError(f"{label}{path}: its weights cannot be read ({str(exc).splitlines()[0][:300]})") from None
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, ValueError, ... on non-models
        raise ModelError(f"{label}{path}: not an ONNX model ({type(exc).__name__})" + (f"; {hint}" if hint else "")) from None


def external_data_files(path: str | Path) -> list[Path]:
    """The files holding an ONNX model's weights outside it (ONNX external data), in the order the
    graph first names them, as paths beside the model; [] when every weight is inside the file, or
    when it is no readable ONNX model (its loader reports that).

    Tensors are looked for where ONNX allows external data: initializers, and tensor attributes,
    in the main graph and every subgraph. Remembered per file, size and modification time (the
    graph is parsed once for the several ids and keys that hash a model at start-up).

    Raises:
        ModelError: a location leads outside the model's folder (an absolute path, ``..``, or a link out of
            it): nothing there is read, as ONNX, ONNX Runtime and OpenVINO refuse such a model too.
    """
    try:
        status = os.stat(path)
    except OSError:
        return []
    folder = Path(path).parent
    locations = _external_locations(os.path.realpath(path), status.st_mtime_ns, status.st_size)
    inside = os.path.realpath(folder)
    for location in locations:
        resolved = os.path.realpath(folder / location)
        if os.path.commonpath([inside, resolved]) != inside or resolved == inside:
            raise ModelError(
                f"{path}: its weights file (ONNX external data) {location!r} leads outside the model's "
                f"folder, to {resolved}; ONNX Runtime and OpenVINO read weights from the model's own folder only: put the "
                "weights file itself (not a link) beside the model, named by its file name"
            )
    return [folder / location for location in locations]


@functools.lru_cache(maxsize=64)
def _external_locations(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    from onnx.external_data_helper import uses_external_data

    try:
        graph = load_onnx(path).graph
    except ModelError:
        return ()

    def tensors(graph):
        yield from graph.initializer
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                if attribute.HasField("g"):
                    yield from tensors(attribute.g)
                for subgraph in attribute.graphs:
                    yield from tensors(subgraph)

    locations: dict[str, None] = {}
    for tensor in tensors(graph):
        if uses_external_data(tensor):
            location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
            if location:
                locations[location] = None
    return tuple(locations)


def is_qdq_model(path: str | Path) -> bool:
    """True when the graph holds QuantizeLinear/DequantizeLinear nodes (an explicitly quantized model);
    False also when the file cannot be read (the runtime that loads it then reports why)."""
    try:
        graph = load_onnx(path).graph
    except ModelError:
        return False
    return any(node.op_type in QDQ_OPS for node in graph.node)


#: ONNX operators that only occur in quantized (INT8) graphs.
INT8_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}
)


def model_precision(model_path: str | Path) -> str:
    """The numeric precision of an ONNX model's weights: ``"int8"``, ``"fp16"`` or ``"fp32"``.

    ``int8``: the graph holds quantization operators (Q/DQ or QLinear*/Integer ops,
    as written by ONNX Runtime's quantization tools). ``fp16``: a float16 graph
    input or initializer. Otherwise ``fp32``.

    Raises:
        ModelError: the file is missing or not an ONNX model.
    """
    import onnx

    graph = load_onnx(model_path).graph
    if any(node.op_type in INT8_OPS for node in graph.node):
        return "int8"
    float16 = onnx.TensorProto.FLOAT16
    if any(init.data_type == float16 for init in graph.initializer) or any(
        value.type.tensor_type.elem_type == float16 for value in graph.input
    ):
        return "fp16"
    return "fp32"


def node_attribute(node, name: str, default=None):
    """The value of attribute ``name`` of an ONNX ``node`` (an int, float, list, bytes, ...), or ``default``."""
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def used_names(graph) -> set[str]:
    """Every tensor name an ``onnx.GraphProto``'s nodes read (their If/Loop/Scan bodies included: a body may
    read the outer graph's weights) or its outputs name."""
    return {name for node in graph.node for name in (*node.input, *_subgraph_reads(node))} | {value.name for value in graph.output}


def drop_unused(graph) -> None:
    """Remove, in place, the initializers and Constant nodes of ``graph`` that nothing reads any more
    (what a rewrite that rewired or removed nodes leaves behind)."""
    used = used_names(graph)
    for node in [node for node in graph.node if node.op_type == "Constant" and not set(node.output) & used]:
        graph.node.remove(node)
    for init in [init for init in graph.initializer if init.name not in used]:
        graph.initializer.remove(init)


def only_output(model, output_name: str, model_path: str | Path):
    """An ``onnx.ModelProto`` cut down to what computes its output ``output_name`` (e.g. a ReID model's
    embedding: a classifier's logits and other outputs removed, with the nodes and weights only they use).
    A model whose only output is ``output_name`` is returned as it is; otherwise a copy, its metadata,
    opsets and inputs kept (an input only the removed outputs read stays, unused).

    Raises:
        ModelError: the model has no output called ``output_name`` (names ``model_path``, the file it was read from).
    """
    graph = model.graph
    outputs = [output.name for output in graph.output]
    if outputs == [output_name]:
        return model
    if output_name not in outputs:
        raise ModelError(f"{model_path}: no output called {output_name!r}; its outputs are {outputs}")
    kept = type(model)()
    kept.CopyFrom(model)
    graph = kept.graph
    needed, keep = {output_name}, set()
    for index in reversed(range(len(graph.node))):  # nodes are in topological order: readers after writers
        node = graph.node[index]
        if set(node.output) & needed:
            keep.add(index)
            needed |= set(node.input) | _subgraph_reads(node)
    nodes = [node for index, node in enumerate(graph.node) if index in keep]
    del graph.node[:]
    graph.node.extend(nodes)
    for output in [output for output in graph.output if output.name != output_name]:
        graph.output.remove(output)
    weights = {init.name for init in graph.initializer}
    drop_unused(graph)  # the other outputs' weights
    dropped = weights - {init.name for init in graph.initializer}
    for value in [value for value in graph.input if value.name in dropped]:  # old exports list weights as inputs
        graph.input.remove(value)
    for info in [info for info in graph.value_info if info.name not in needed]:
        graph.value_info.remove(info)
    return kept


def _subgraph_reads(node) -> set[str]:
    """Every tensor name the nodes of ``node``'s subgraphs (If, Loop, Scan bodies) read, outer-scope names included."""
    reads: set[str] = set()
    for attribute in node.attribute:
        for body in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
            for inner in body.node:
                reads |= set(inner.input) | _subgraph_reads(inner)
    return reads
