"""Per-layer quantization sensitivity: how much each layer alone moves the embeddings.

For each quantized layer, a copy of the float model gets that one layer's
Q/DQ nodes (its INT8 weights and its quantized input, exactly as in the full
Q/DQ model) and nothing else; the score is the mean cosine *distance* between
its embeddings and the float model's on the calibration crops. This is the
usual one-layer-at-a-time sensitivity analysis (e.g. NVIDIA TensorRT's and
Qualcomm AIMET's per-layer analysis); layers with the largest scores are the
first to stay float when the accuracy guard needs it.

Variants are built by graph surgery (no re-calibration, no re-quantization),
so one layer costs one ONNX Runtime session and one pass over the crops.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import onnx

from edge_reid.errors import ModelError


def ort_session_from_proto(model: onnx.ModelProto, threads: int | None = None):
    """An ONNX Runtime CPU session for an in-memory model, Q/DQ run with exact arithmetic.

    Q/DQ fusion into ONNX Runtime's integer kernels is turned off (see
    :func:`edge_reid.backends.onnxruntime.create_session`), so results are the
    Q/DQ graph's own arithmetic on every CPU.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def embed_array(session, input_name: str, images: np.ndarray, batch: int = 32) -> np.ndarray:
    """(N, D) float32 L2-normalised embeddings of preprocessed (N, 3, H, W) images."""
    outputs = [session.run(None, {input_name: images[i : i + batch]})[0] for i in range(0, len(images), batch)]
    raw = np.concatenate(outputs).astype(np.float32)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    return raw / np.where(norms > 0, norms, 1.0)


def single_layer_model(float_model: onnx.ModelProto, qdq_model: onnx.ModelProto, node_name: str) -> onnx.ModelProto:
    """The float model with only ``node_name`` quantized, using the Q/DQ nodes of ``qdq_model``.

    Raises:
        ModelError: the node is missing or not quantized in ``qdq_model``.
    """
    q_graph = qdq_model.graph
    producer = {out: node for node in q_graph.node for out in node.output}
    q_inits = {init.name: init for init in q_graph.initializer}
    q_node = next((n for n in q_graph.node if n.name == node_name), None)
    if q_node is None:
        raise ModelError(f"layer {node_name!r} is not in the quantized model")
    dq_act = producer.get(q_node.input[0])
    dq_weight = producer.get(q_node.input[1])
    if dq_act is None or dq_act.op_type != "DequantizeLinear" or dq_weight is None or dq_weight.op_type != "DequantizeLinear":
        raise ModelError(f"layer {node_name!r} is not quantized in the Q/DQ model")
    q_act = producer[dq_act.input[0]]

    variant = copy.deepcopy(float_model)
    graph = variant.graph
    target = next(n for n in graph.node if n.name == node_name)
    existing = {init.name for init in graph.initializer}
    for name in list(q_act.input[1:]) + list(dq_act.input[1:]) + list(dq_weight.input):
        if name and name in q_inits and name not in existing:
            graph.initializer.append(q_inits[name])
            existing.add(name)
    suffix = "_sensitivity"
    new_q = onnx.helper.make_node("QuantizeLinear", [target.input[0], *q_act.input[1:]], [q_act.output[0] + suffix], name=q_act.name + suffix)
    new_dq = onnx.helper.make_node("DequantizeLinear", [new_q.output[0], *dq_act.input[1:]], [dq_act.output[0] + suffix], name=dq_act.name + suffix)
    new_dqw = copy.deepcopy(dq_weight)
    new_dqw.name += suffix
    new_dqw.output[0] += suffix
    position = list(graph.node).index(target)
    for offset, node in enumerate((new_q, new_dq, new_dqw)):
        graph.node.insert(position + offset, node)
    target.input[0] = new_dq.output[0]
    target.input[1] = new_dqw.output[0]
    return variant


def layer_sensitivity(
    float_model: onnx.ModelProto,
    qdq_model: onnx.ModelProto,
    images: np.ndarray,
    input_name: str,
    layers: Sequence[str],
    on_layer: Callable[[str], None] | None = None,
    threads: int | None = None,
) -> dict[str, float]:
    """Mean cosine distance to float embeddings when only one layer is quantized, for each layer.

    Args:
        float_model: the float model (the one the Q/DQ model was made from).
        qdq_model: the fully quantized Q/DQ model.
        images: (N, 3, H, W) float32 preprocessed calibration crops (N of 64-256 is plenty).
        input_name: the image input's name.
        layers: layer (node) names to score.
        on_layer: called after each layer (progress bars).
        threads: ONNX Runtime intra-op threads.

    Returns:
        layer name -> mean ``1 - cosine`` in [0, 2]; larger = more sensitive.
    """
    reference = embed_array(ort_session_from_proto(float_model, threads), input_name, images)
    scores: dict[str, float] = {}
    for name in layers:
        session = ort_session_from_proto(single_layer_model(float_model, qdq_model, name), threads)
        embeddings = embed_array(session, input_name, images)
        scores[name] = float(np.mean(1.0 - np.sum(embeddings * reference, axis=1)))
        if on_layer is not None:
            on_layer(name)
    return scores
