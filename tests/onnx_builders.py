"""Tiny ONNX graphs built in tests: models that provoke errors (wrong rank, NaN output) and tiny ReID-shaped models."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper


def save_model(path: Path, nodes, inputs, outputs, initializers=()) -> Path:
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def rank2_model(path: Path) -> Path:
    """Input (N, 64) -> identity: not an image model."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 64])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 64])
    return save_model(path, [helper.make_node("Identity", ["images"], ["output"])], [x], [y])


def nan_model(path: Path, height: int = 256, width: int = 128) -> Path:
    """Input (N, 3, H, W) -> (N, 3) of sqrt(-|mean| - 1) = NaN."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, height, width])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Abs", ["flat"], ["absolute"]),
        helper.make_node("Neg", ["absolute"], ["negative"]),
        helper.make_node("Sub", ["negative", "one"], ["below_zero"]),
        helper.make_node("Sqrt", ["below_zero"], ["output"]),
    ]
    return save_model(path, nodes, [x], [y], [one])


def mean_model(path: Path, height: int = 256, width: int = 128) -> Path:
    """Input (N, 3, H, W) -> (N, 3) channel means: a valid, tiny 'embedding' model."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, height, width])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["output"]),
    ]
    return save_model(path, nodes, [x], [y])


def relu_mean_model(path: Path, scale: float = 1.0, height: int = 256, width: int = 128) -> Path:
    """Input (N, 3, H, W) -> (N, 3) ReLU(channel means x ``scale``): a black crop (every normalised
    value below 0) gives an all-zero row, as a post-ReLU ReID feature of a dead crop or a saturated engine can."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, height, width])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    factor = helper.make_tensor("scale", TensorProto.FLOAT, [], [scale])
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Mul", ["flat", "scale"], ["scaled"]),
        helper.make_node("Relu", ["scaled"], ["output"]),
    ]
    return save_model(path, nodes, [x], [y], [factor])


def tiny_model(path: Path, elem=TensorProto.FLOAT) -> Path:
    """(N, 3, 4, 2) -> (N, 3) channel means."""
    x = helper.make_tensor_value_info("images", elem, ["N", 3, 4, 2])
    y = helper.make_tensor_value_info("output", elem, ["N", 3])
    nodes = [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["output"])]
    return save_model(path, nodes, [x], [y])


def two_output_model(path: Path) -> Path:
    """(N, 3, 4, 2) -> logits (N, 3) first, features (N, 3) second: a training export's classifier beside
    the embedding (the logits here are the features' ReLU)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 4, 2])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3])
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"]),
        helper.make_node("Relu", ["features"], ["logits"]),
    ]
    return save_model(path, nodes, [x], [logits, features])


def tiny_qdq_model(path: Path, input_name: str = "images") -> Path:
    """The same graph with a QuantizeLinear/DequantizeLinear pair on the input, as ONNX Runtime's Q/DQ format writes it."""
    x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 3, 4, 2])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [0.05])
    zero = helper.make_tensor("zero", TensorProto.INT8, [], [0])
    nodes = [
        helper.make_node("QuantizeLinear", [input_name, "scale", "zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"]),
        helper.make_node("GlobalAveragePool", ["dq"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["output"]),
    ]
    return save_model(path, nodes, [x], [y], [scale, zero])


def fixed_grid_yolox(yolox_path: Path, path: Path) -> Path:
    """YOLOX with its output Reshapes fixed to the 416x416 grid (as some exporters write it): runs at 416x416 only."""
    import numpy as np
    from onnx import numpy_helper

    model = onnx.load(str(yolox_path))
    initializers = {init.name: init for init in model.graph.initializer}
    fixed = 0
    for node in model.graph.node:
        if node.op_type == "Reshape" and initializers.get(node.input[1]) is not None:
            shape = numpy_helper.to_array(initializers[node.input[1]])
            if list(shape[:2]) == [1, 85] and shape[2] == -1:
                cells = {0: 52 * 52, 1: 26 * 26, 2: 13 * 13}[fixed]
                name = f"fixed_shape_{fixed}"
                model.graph.initializer.append(numpy_helper.from_array(np.array([1, 85, cells], np.int64), name))
                node.input[1] = name
                fixed += 1
    assert fixed == 3, "the bundled YOLOX-Nano's three output Reshapes"
    onnx.save(model, str(path))
    return path
