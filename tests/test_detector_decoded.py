"""A YOLOX exported with decode_in_inference=True (boxes already in input pixels) is refused at load.

The decoded model is the bundled YOLOX-Nano with YOLOX's own decode appended as ONNX ops
(``yolox/models/yolo_head.py::decode_outputs``: ``xy = (xy + grid) * stride``, ``wh = exp(wh) * stride``),
so both forms are the same real network.
"""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from edge_reid.detector import PersonDetector, is_decoded_output, yolox_grids
from edge_reid.errors import ModelError


def decoded_yolox(yolox_path: Path, path: Path) -> Path:
    """The bundled 416x416 YOLOX with its output decoded in the graph, as ``decode_in_inference=True`` exports it."""
    model = onnx.load(str(yolox_path))
    graph = model.graph
    raw = graph.output[0].name
    anchors = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    height, width = (dim.dim_value for dim in graph.input[0].type.tensor_type.shape.dim[2:])
    grid, strides = yolox_grids(height, width)
    assert grid.shape[0] == anchors
    for node in graph.node:
        node.output[:] = [f"{raw}_grid" if name == raw else name for name in node.output]
    constants = {
        "decode_grid": grid[None], "decode_strides": strides[None],
        **{f"decode_{name}": np.array(value, np.int64) for name, value in (
            ("axis", [2]), ("at0", [0]), ("at2", [2]), ("at4", [4]), ("end", [2**31 - 1]))},
    }
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    source = f"{raw}_grid"
    graph.node.extend([
        helper.make_node("Slice", [source, "decode_at0", "decode_at2", "decode_axis"], ["decode_xy"]),
        helper.make_node("Slice", [source, "decode_at2", "decode_at4", "decode_axis"], ["decode_wh"]),
        helper.make_node("Slice", [source, "decode_at4", "decode_end", "decode_axis"], ["decode_rest"]),
        helper.make_node("Add", ["decode_xy", "decode_grid"], ["decode_cells"]),
        helper.make_node("Mul", ["decode_cells", "decode_strides"], ["decode_centres"]),
        helper.make_node("Exp", ["decode_wh"], ["decode_exp"]),
        helper.make_node("Mul", ["decode_exp", "decode_strides"], ["decode_sizes"]),
        helper.make_node("Concat", ["decode_centres", "decode_sizes", "decode_rest"], [raw], axis=2),
    ])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def decoded_path(yolox_path, tmp_path_factory) -> Path:
    return decoded_yolox(yolox_path, tmp_path_factory.mktemp("decoded") / "yolox_nano_decoded.onnx")


def _outputs(path: Path, tensor: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: tensor})[0][0]


def _letterboxed(frame: np.ndarray, size: int = 416) -> np.ndarray:
    import cv2

    ratio = min(size / frame.shape[0], size / frame.shape[1])
    canvas = np.full((size, size, 3), 114, np.uint8)
    resized = cv2.resize(frame, (round(frame.shape[1] * ratio), round(frame.shape[0] * ratio)))
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    return canvas.transpose(2, 0, 1)[None].astype(np.float32)


def test_the_decoded_model_is_yolox_decode_of_the_bundled_one(yolox_path, decoded_path, vtest_frames):
    tensor = _letterboxed(vtest_frames[0])
    raw, decoded = _outputs(yolox_path, tensor), _outputs(decoded_path, tensor)
    grid, strides = yolox_grids(416, 416)
    np.testing.assert_allclose(decoded[:, :2], (raw[:, :2] + grid) * strides, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(decoded[:, 2:4], np.exp(raw[:, 2:4]) * strides, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(decoded[:, 4:], raw[:, 4:])


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_decoded_export_is_refused_at_load_naming_the_file_and_the_export_flag(decoded_path, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    with pytest.raises(ModelError) as caught:
        PersonDetector(decoded_path, backend=backend)
    message = str(caught.value)
    assert str(decoded_path) in message
    assert "already decoded" in message and "--decode_in_inference" in message


def test_decoded_and_raw_outputs_are_told_apart_on_real_frames_and_blanks(yolox_path, decoded_path, vtest_frames):
    grid, strides = yolox_grids(416, 416)
    for tensor in (np.zeros((1, 3, 416, 416), np.float32), np.full((1, 3, 416, 416), 114, np.float32),
                   _letterboxed(vtest_frames[0])):
        assert not is_decoded_output(_outputs(yolox_path, tensor), grid, strides)
        assert is_decoded_output(_outputs(decoded_path, tensor), grid, strides)


@pytest.mark.parametrize("input_size", [32, 128, 1024])
def test_the_raw_model_still_loads_and_detects_at_other_input_sizes(yolox_path, input_size, vtest_frames):
    detector = PersonDetector(yolox_path, input_size=input_size, rectangular=False)
    try:
        # Its own output at that size, decoded as YOLOX does, is recognised as decoded: the test tells both apart.
        grid, strides = detector.grid, detector.strides
        raw = detector.backend.output[0].copy()
        decoded = raw.copy()
        decoded[:, :2] = (raw[:, :2] + grid) * strides
        decoded[:, 2:4] = np.exp(raw[:, 2:4]) * strides
        assert not is_decoded_output(raw, grid, strides) and is_decoded_output(decoded, grid, strides)
        if input_size >= 416:
            assert len(detector.detect(vtest_frames[0])) > 0
    finally:
        detector.close()
