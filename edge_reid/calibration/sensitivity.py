"""Per-layer quantization sensitivity: how much each layer alone moves the embeddings.

For each quantized layer, the float model with only that layer quantized (its INT8
weights and its quantized input, exactly as in the full Q/DQ model); the score is the
mean cosine *distance* between its embeddings and the float model's on calibration
crops. This is the usual one-layer-at-a-time sensitivity analysis (e.g. NVIDIA
TensorRT's and Qualcomm AIMET's per-layer analysis); layers with the largest scores
per multiply-add are the first to stay float when the accuracy guard needs it.

The variants are built by graph surgery (no re-calibration, no re-quantization) into
one graph that computes the float prefix once and repeats only what each quantized
layer changes, so all layers are scored in one session and one pass over the crops.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import onnx

from edge_reid.cpu import quota_threads
from edge_reid.errors import ModelError


def ort_session_from_proto(model: onnx.ModelProto, threads: int | None = None, basic_optimizations: bool = False):
    """An ONNX Runtime CPU session for an in-memory model, Q/DQ run with exact arithmetic.

    Q/DQ fusion into ONNX Runtime's integer kernels is turned off (see
    :func:`edge_reid.backends.onnxruntime.create_session`), so results are the
    Q/DQ graph's own arithmetic on every CPU. ``basic_optimizations`` limits graph
    optimisation to ONNX Runtime's basic level (constant folding, redundant nodes):
    for very large graphs, where the full level's layout passes take longer than they save.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    if basic_optimizations:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    threads = threads or quota_threads()  # ONNX Runtime counts cores, not a CPU quota
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def embed_array(session, input_name: str, images: np.ndarray, batch: int = 32) -> np.ndarray:
    """(N, D) float32 L2-normalised embeddings of preprocessed (N, 3, H, W) images."""
    outputs = [session.run(None, {input_name: images[i : i + batch]})[0] for i in range(0, len(images), batch)]
    return _normalised(np.concatenate(outputs))


def quantized_layer_parts(qdq_model: onnx.ModelProto, node_name: str) -> tuple[onnx.NodeProto, onnx.NodeProto, onnx.NodeProto, onnx.NodeProto]:
    """(the layer, its activation QuantizeLinear, activation DequantizeLinear, weight DequantizeLinear) in ``qdq_model``.

    Raises:
        ModelError: the node is missing or not quantized in ``qdq_model``.
    """
    q_graph = qdq_model.graph
    producer = {out: node for node in q_graph.node for out in node.output}
    q_node = next((n for n in q_graph.node if n.name == node_name), None)
    if q_node is None:
        raise ModelError(f"layer {node_name!r} is not in the quantized model")
    dq_act = producer.get(q_node.input[0])
    dq_weight = producer.get(q_node.input[1])
    if dq_act is None or dq_act.op_type != "DequantizeLinear" or dq_weight is None or dq_weight.op_type != "DequantizeLinear":
        raise ModelError(f"layer {node_name!r} is not quantized in the Q/DQ model")
    return q_node, producer[dq_act.input[0]], dq_act, dq_weight


def sensitivity_model(float_model: onnx.ModelProto, qdq_model: onnx.ModelProto, layers: Sequence[str]) -> tuple[onnx.ModelProto, dict[str, str]]:
    """One graph that computes the float output and, for each layer, the output with only that layer quantized.

    Each variant shares the float model's computation up to the layer (the float
    activations are computed once) and repeats only the layer, quantized exactly as in
    ``qdq_model`` (its Q/DQ input, its INT8 weights and its bias there, e.g. GPTQ-rounded and
    bias-corrected), and the nodes that depend on it. So all the one-layer-at-a-time
    variants run in one session, in one pass over the images.

    Args:
        float_model: the float model (nodes in topological order, as ONNX requires).
        qdq_model: a Q/DQ model of it in which every layer of ``layers`` is quantized.
        layers: the layers (node names) to vary.

    Returns:
        (the model; layer name -> the name of its variant's first output). The model's
        first output is the float model's.

    Raises:
        ModelError: a layer is missing, not quantized in ``qdq_model``, or does not reach the output.
    """
    q_inits = {init.name: init for init in qdq_model.graph.initializer}
    model = copy.deepcopy(float_model)
    graph = model.graph
    nodes = list(float_model.graph.node)
    position = {node.name: index for index, node in enumerate(nodes)}
    existing = {init.name for init in graph.initializer}
    outputs: dict[str, str] = {}
    for number, name in enumerate(layers):
        if name not in position:
            raise ModelError(f"layer {name!r} is not in the float model")
        q_node, q_act, dq_act, dq_weight = quantized_layer_parts(qdq_model, name)
        for init_name in [*q_act.input[1:], *dq_act.input[1:], *dq_weight.input, *q_node.input[2:]]:
            if init_name and init_name not in existing and init_name in q_inits:
                graph.initializer.append(q_inits[init_name])
                existing.add(init_name)
        tag = f"__only_{number}"
        layer = nodes[position[name]]
        quantize = onnx.helper.make_node("QuantizeLinear", [layer.input[0], *q_act.input[1:]], [f"x_q{tag}"], name=f"q{tag}")
        dequantize = onnx.helper.make_node("DequantizeLinear", [f"x_q{tag}", *dq_act.input[1:]], [f"x_dq{tag}"], name=f"dq{tag}")
        weight = copy.deepcopy(dq_weight)
        weight.name, weight.output[0] = f"wdq{tag}", f"w_dq{tag}"
        varied = copy.deepcopy(layer)
        del varied.input[:]
        varied.input.extend([f"x_dq{tag}", f"w_dq{tag}", *q_node.input[2:]])
        try:
            outputs[name] = add_variant(model, nodes, {name: varied}, [quantize, dequantize, weight], tag)
        except ModelError:
            raise ModelError(f"layer {name!r} does not reach the model's output") from None
    return model, outputs


def add_variant(model: onnx.ModelProto, nodes: Sequence[onnx.NodeProto], replaced: dict[str, onnx.NodeProto], front: Sequence[onnx.NodeProto], tag: str) -> str:
    """Add to ``model`` one variant of its computation that shares everything upstream of the change.

    Args:
        model: the model being extended (its first output is the float model's).
        nodes: the float model's nodes, in topological order.
        replaced: node name -> a changed copy of that node (e.g. one that reads a quantized input);
            names and outputs of the copies are tagged here.
        front: new nodes the changed copies read (e.g. a QuantizeLinear/DequantizeLinear pair),
            added as they are.
        tag: suffix that makes the variant's node and tensor names unique.

    Returns:
        The name of the variant's copy of the model's first output (also added as a graph output).

    Raises:
        ModelError: the changed nodes do not reach the model's first output.
    """
    final = model.graph.output[0].name
    start = min(index for index, node in enumerate(nodes) if node.name in replaced)
    added, changed = list(front), set()
    for node in nodes[start:]:
        if node.name in replaced:
            node = replaced[node.name]
        elif any(tensor in changed for tensor in node.input):
            node = copy.deepcopy(node)
        else:
            continue
        for index, tensor in enumerate(node.input):
            if tensor in changed:
                node.input[index] = tensor + tag
        node.name += tag
        for index, tensor in enumerate(node.output):
            changed.add(tensor)
            node.output[index] = tensor + tag
        added.append(node)
    if final not in changed:
        raise ModelError(f"the variant {tag!r} does not reach the model's output {final!r}")
    model.graph.node.extend(added)  # protobuf copies on insertion: add each node once it is final
    model.graph.output.append(onnx.helper.make_tensor_value_info(final + tag, onnx.TensorProto.FLOAT, None))
    return final + tag


def _normalised(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float32).reshape(len(values), -1)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return values / np.where(norms > 0, norms, 1.0)


def layer_sensitivity(
    float_model: onnx.ModelProto,
    qdq_model: onnx.ModelProto,
    images: np.ndarray,
    input_name: str,
    layers: Sequence[str],
    on_batch: Callable[[int], None] | None = None,
    threads: int | None = None,
    batch: int = 8,
) -> dict[str, float]:
    """Mean cosine distance to float embeddings when only one layer is quantized, for each layer.

    All variants run in one session (:func:`sensitivity_model`): the float prefix of each
    is computed once, so the cost is one float pass plus, per layer, the part of the
    network after it.

    Args:
        float_model: the float model (the one the Q/DQ model was made from).
        qdq_model: a Q/DQ model in which every layer of ``layers`` is quantized.
        images: (N, 3, H, W) float32 preprocessed calibration crops (N of 64-128 is plenty).
        input_name: the image input's name.
        layers: layer (node) names to score.
        on_batch: called with each batch's size (progress bars).
        threads: ONNX Runtime intra-op threads.
        batch: images per run.

    Returns:
        layer name -> mean ``1 - cosine`` in [0, 2]; larger = more sensitive.
    """
    model, outputs = sensitivity_model(float_model, qdq_model, layers)
    distances = variant_distances(model, list(outputs.values()), images, input_name, on_batch, threads, batch)
    return dict(zip(layers, distances.tolist()))


def variant_distances(
    model: onnx.ModelProto,
    outputs: Sequence[str],
    images: np.ndarray,
    input_name: str,
    on_batch: Callable[[int], None] | None = None,
    threads: int | None = None,
    batch: int = 8,
) -> np.ndarray:
    """(len(outputs),) mean cosine distance in [0, 2] of each variant output of ``model`` to its
    first output (the float model's), over ``images`` ((N, 3, H, W) float32), run ``batch`` at a time."""
    session = ort_session_from_proto(model, threads, basic_optimizations=True)  # many copies of the network's tail
    names = [model.graph.output[0].name, *outputs]
    totals = np.zeros(len(outputs))
    for start in range(0, len(images), batch):
        part = images[start : start + batch]
        values = session.run(names, {input_name: part})
        reference = _normalised(values[0])
        for k, value in enumerate(values[1:]):
            totals[k] += float(np.sum(1.0 - np.sum(_normalised(value) * reference, axis=1)))
        if on_batch is not None:
            on_batch(len(part))
    return totals / max(len(images), 1)
