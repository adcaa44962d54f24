"""Rewrites of the detector's graph at load. The Focus stem folded into one strided convolution: exact
(float32 rounding) on the real YOLOX-Nano and on built variants, the same people found in real frames,
every near-miss of the pattern left alone. The rectangular input: the smallest stride-multiple rectangle
for the frame, the same people found in real frames, and the full input kept by a model that cannot
run at another size."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_reid.backends.detector_graph as detector_graph
from edge_reid.backends.detector_graph import FOCUS_NOTE, fold_focus, load_detector_graph
from edge_reid.detector import PersonDetector, rectangular_input
from edge_reid.errors import ModelError
from edge_reid.onnx_graph import node_attribute
from edge_reid.tracking.boxes import iou_matrix
from onnx_builders import fixed_grid_yolox

END = np.iinfo(np.int64).max
OFFSETS = [(0, 0), (1, 0), (0, 1), (1, 1)]  # YOLOX's order: top-left, bottom-left, top-right, bottom-right


def _run(model: bytes | str, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def focus_model(
    offsets=OFFSETS, kernel=3, pads=(1, 1, 1, 1), height=12, width=16, steps=2, one_slice_per_branch=False,
    constant_nodes=False, bias=True, conv_strides=(1, 1), extra_output=False, seed=0,
) -> onnx.ModelProto:
    """image (1, 3, H, W) -> Focus (4 strided slice branches, Concat) -> Conv(16, kernel) -> Sigmoid."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def const(name, values):
        array = np.asarray(values, np.int64)
        if constant_nodes:
            nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name)))
        else:
            inits.append(numpy_helper.from_array(array, name))
        return name

    branches = []
    for index, (dy, dx) in enumerate(offsets):
        if one_slice_per_branch:
            out = f"branch{index}"
            nodes.append(helper.make_node("Slice", ["image", const(f"s{index}", [dy, dx]), const(f"e{index}", [END, END]),
                                                   const(f"a{index}", [2, 3]), const(f"t{index}", [steps, steps])], [out]))
        else:  # columns first, then rows, as torch exports x[..., ::2, ::2] in some versions
            mid, out = f"cols{index}", f"branch{index}"
            nodes.append(helper.make_node("Slice", ["image", const(f"sc{index}", [dx]), const(f"ec{index}", [END]),
                                                   const(f"ac{index}", [3]), const(f"tc{index}", [steps])], [mid]))
            nodes.append(helper.make_node("Slice", [mid, const(f"sr{index}", [dy]), const(f"er{index}", [END]),
                                                   const(f"ar{index}", [-2]), const(f"tr{index}", [steps])], [out]))
        branches.append(out)
    nodes.append(helper.make_node("Concat", branches, ["stacked"], axis=1))
    weight = rng.standard_normal((16, 12, kernel, kernel)).astype(np.float32)
    inits.append(numpy_helper.from_array(weight, "w"))
    conv_inputs = ["stacked", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b"))
        conv_inputs.append("b")
    nodes.append(helper.make_node("Conv", conv_inputs, ["conv"], kernel_shape=[kernel, kernel], pads=list(pads),
                                  strides=list(conv_strides)))
    nodes.append(helper.make_node("Sigmoid", ["conv"], ["out"]))
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 16, None, None])]
    if extra_output:
        outputs.append(helper.make_tensor_value_info("branch0", TensorProto.FLOAT, [1, 3, None, None]))
    graph = helper.make_graph(nodes, "focus", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, height, width])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # onnx 1.23 writes IR 14 by default, which ONNX Runtime 1.30 cannot load
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("variant", [
    {},
    {"offsets": [(1, 1), (0, 0), (0, 1), (1, 0)], "seed": 1},
    {"kernel": 1, "pads": (0, 0, 0, 0)},
    {"kernel": 3, "pads": (0, 1, 2, 0), "bias": False},
    {"one_slice_per_branch": True},
    {"constant_nodes": True},
], ids=["yolox-order", "other-order", "1x1", "uneven-pads-no-bias", "one-slice", "constant-nodes"])
def test_folding_is_exact_on_built_focus_stems(variant):
    model = focus_model(**variant)
    original = model.SerializeToString()
    x = np.random.default_rng(7).standard_normal((1, 3, 12, 16)).astype(np.float32)
    assert fold_focus(model)
    onnx.checker.check_model(model)
    ops = [node.op_type for node in model.graph.node]
    assert ops == ["Conv", "Sigmoid"], "only the strided conv and what followed are left"
    assert {init.name for init in model.graph.initializer} == {"w__focus_folded"} | ({"b"} if variant.get("bias", True) else set())
    conv = model.graph.node[0]
    kernel = variant.get("kernel", 3)
    assert conv.input[0] == "image"
    assert node_attribute(conv, "kernel_shape") == [2 * kernel] * 2 and node_attribute(conv, "strides") == [2, 2]
    assert node_attribute(conv, "pads") == [2 * p for p in variant.get("pads", (1, 1, 1, 1))]
    np.testing.assert_allclose(_run(model.SerializeToString(), x), _run(original, x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", [
    {"height": 13},                       # odd height: the slices differ in size, no single conv
    {"steps": 3},                         # not space-to-depth
    {"offsets": OFFSETS[:3] + [(0, 0)]},  # one offset twice
    {"conv_strides": (2, 2)},             # the conv after Focus is not stride 1
    {"extra_output": True},               # a slice's output is also a graph output
], ids=["odd-height", "step-3", "repeated-offset", "strided-conv", "slice-is-an-output"])
def test_near_misses_of_the_pattern_are_left_alone(variant):
    model = focus_model(**variant) if variant != {"steps": 3} else focus_model(steps=3, height=12, width=12)
    before = model.SerializeToString()
    assert not fold_focus(model)
    assert model.SerializeToString() == before


def test_folding_is_exact_on_the_real_yolox_nano(yolox_path, vtest_frames):
    graph = load_detector_graph(yolox_path)
    folded = graph.model
    assert folded is not None and graph.rewrites == (FOCUS_NOTE,)
    original = onnx.load(str(yolox_path))
    rewritten = onnx.load_from_string(folded)
    ops = [node.op_type for node in rewritten.graph.node]
    assert "Slice" not in ops and len(ops) == len(original.graph.node) - 9, "8 slices and the Concat go, the conv stays"
    square = PersonDetector(yolox_path, threads=1, rectangular=False)
    square._letterbox(vtest_frames[0])
    image = square.backend.input.copy()
    square.close()
    reference = _run(str(yolox_path), image)
    assert np.abs(_run(folded, image) - reference).max() <= 1e-4 * np.abs(reference).max(), "float32 rounding only"
    assert load_detector_graph(yolox_path).model == folded, "the same bytes every load"


def test_the_same_people_are_found_in_real_frames(monkeypatch, yolox_path, vtest_frames):
    folded = PersonDetector(yolox_path, backend="onnxruntime", threads=1, score_threshold=0.1, rectangular=False)
    monkeypatch.setattr(detector_graph, "fold_focus", lambda model: False)
    as_is = PersonDetector(yolox_path, backend="onnxruntime", threads=1, score_threshold=0.1, rectangular=False)
    assert folded.backend.graph_rewrites == (FOCUS_NOTE,) and as_is.backend.graph_rewrites == ()
    assert "Focus stem as one strided conv" in folded.describe() and "Focus" not in as_is.describe()
    found = 0
    for frame in vtest_frames[:6]:
        a, b = folded.detect(frame), as_is.detect(frame)
        assert len(a) == len(b)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
        found += len(a)
    assert found >= 20
    folded.close()
    as_is.close()


def test_openvino_detector_runs_the_folded_model(yolox_path, vtest_frames, detector):
    pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino; a dependency on x86-64)")
    with_ov = PersonDetector(yolox_path, backend="openvino", threads=1, score_threshold=detector.score_threshold)
    for frame in vtest_frames[:3]:
        a, b = with_ov.detect(frame), detector.detect(frame)
        assert len(a) == len(b)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=5e-2)
    assert with_ov.backend.graph_rewrites == (FOCUS_NOTE, "input 320x416") == detector.backend.graph_rewrites
    with_ov.close()


def test_models_without_focus_and_bad_files(osnet_path, tmp_path):
    assert load_detector_graph(osnet_path).model is None
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="broken.onnx"):
        load_detector_graph(broken)
    with pytest.raises(ModelError, match="not found"):
        load_detector_graph(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="is a folder, not a model file") as caught:
        load_detector_graph(tmp_path)
    assert str(caught.value).startswith(str(tmp_path))


@pytest.mark.parametrize(("frame", "model", "expected"), [
    ((576, 768), (416, 416), (320, 416)),   # vtest, 4:3: 312 rows of image -> 320
    ((720, 1280), (416, 416), (256, 416)),  # 16:9: 234 rows -> 256
    ((768, 576), (416, 416), (416, 320)),   # portrait
    ((416, 416), (416, 416), (416, 416)),   # square: nothing to gain
    ((100, 3000), (416, 416), (32, 416)),   # a strip: at least one stride
    ((1080, 1920), (640, 640), (384, 640)),
])
def test_rectangular_input_is_the_smallest_stride_multiple_that_holds_the_letterboxed_frame(frame, model, expected):
    assert rectangular_input(*frame, *model) == expected


def _matched(a, b, iou: float) -> int:
    """Boxes of ``a`` with a box of ``b`` at IoU >= ``iou``."""
    if len(a) == 0 or len(b) == 0:
        return 0
    return int((iou_matrix(a.boxes, b.boxes).max(axis=1) >= iou).sum())


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_rectangular_input_finds_the_same_people_in_real_frames(backend, yolox_path, vtest_frames):
    if backend == "openvino":
        pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino; a dependency on x86-64)")
    square = PersonDetector(yolox_path, backend=backend, threads=1, rectangular=False)
    rectangle = PersonDetector(yolox_path, backend=backend, threads=1)
    assert "input fitted to the first frame" in rectangle.describe()
    total = matched = 0
    for frame in vtest_frames[:8]:
        a, b = rectangle.detect(frame), square.detect(frame)
        total += len(b)
        matched += _matched(b, a, iou=0.9)
    assert (rectangle.input_height, rectangle.input_width) == (320, 416) and rectangle.backend.input.shape == (1, 3, 320, 416)
    assert "input 320x416" in rectangle.describe() and (square.input_height, square.input_width) == (416, 416)
    assert total >= 30 and matched >= 0.95 * total, f"{matched} of {total} people found at IoU >= 0.9"
    square.close()
    rectangle.close()


def test_a_model_that_cannot_change_size_keeps_its_full_input(yolox_path, vtest_frames, tmp_path):
    detector = PersonDetector(fixed_grid_yolox(yolox_path, tmp_path / "yolox_fixed_reshape.onnx"), backend="onnxruntime", threads=1)
    found = detector.detect(vtest_frames[0])
    assert (detector.input_height, detector.input_width) == (416, 416) and len(found) > 0
    assert "kept its 416x416 input: it does not run at 320x416" in detector.describe()
    detector.close()


def test_a_frame_that_does_not_fit_the_rectangle_sends_the_detector_back_to_its_full_input(yolox_path, vtest_frames):
    """A folder of landscape images with one portrait image: never seen smaller than the full input shows it."""
    detector = PersonDetector(yolox_path, backend="onnxruntime", threads=1)
    landscape = vtest_frames[0]                               # 576x768: rectangle 320x416
    detector.detect(landscape)
    assert (detector.input_height, detector.input_width) == (320, 416)
    detector.detect(np.ascontiguousarray(landscape[:500]))     # 500x768, wider still: fits at the same scale
    assert (detector.input_height, detector.input_width) == (320, 416) and detector.rectangular_note == ""
    portrait = np.ascontiguousarray(landscape[:, :400])        # 576x400 needs 416x320
    found = detector.detect(portrait)
    assert (detector.input_height, detector.input_width) == (416, 416)
    assert "back to the full 416x416 input: a 576x400 frame does not fit 320x416" in detector.describe()
    square = PersonDetector(yolox_path, backend="onnxruntime", threads=1, rectangular=False)
    expected = square.detect(portrait)
    assert len(found) == len(expected) and np.allclose(found.boxes, expected.boxes, atol=1e-3)
    detector.detect(landscape)
    assert (detector.input_height, detector.input_width) == (416, 416), "for good: no switching back and forth"
    detector.close()
    square.close()


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_larger_input_size_runs_there_and_finds_the_same_people(backend, yolox_path, vtest_frames):
    if backend == "openvino":
        pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino; a dependency on x86-64)")
    own = PersonDetector(yolox_path, backend=backend, threads=1)
    larger = PersonDetector(yolox_path, backend=backend, threads=1, input_size=640)
    assert (larger.model_height, larger.model_width) == (640, 640), "the full input the frames are letterboxed into"
    total = matched = 0
    differ = False
    for frame in vtest_frames[:8]:
        a, b = larger.detect(frame), own.detect(frame)
        confident = b[b.scores >= 0.6]  # the tracker's high score: boxes near the floor may come and go with the size
        total += len(confident)
        matched += _matched(confident, a, iou=0.5)
        differ |= len(a) != len(b) or not np.allclose(a.boxes, b.boxes, atol=0.5)
    # A 576x768 frame at scale 640/768: 480x640 pixels, a rectangle of multiples of 32.
    assert (larger.input_height, larger.input_width) == (480, 640) and larger.backend.input.shape == (1, 3, 480, 640)
    assert "input 480x640" in larger.describe() and (own.input_height, own.input_width) == (320, 416)
    assert "frames seen at 0.83x" in larger.describe() and "frames seen at 0.54x" in own.describe()  # 640/768, 416/768
    assert total >= 20 and matched >= 0.9 * total, f"{matched} of {total} confident people found again at IoU >= 0.5"
    assert differ, "the network really ran at the larger size (its boxes are not the 416 input's)"
    own.close()
    larger.close()


def test_the_models_own_input_size_changes_nothing(yolox_path, vtest_frames):
    own = PersonDetector(yolox_path, backend="onnxruntime", threads=1)
    named = PersonDetector(yolox_path, backend="onnxruntime", threads=1, input_size=416)
    for frame in vtest_frames[:3]:
        a, b = named.detect(frame), own.detect(frame)
        assert len(a) == len(b) and np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)
    assert named.describe() == own.describe()
    own.close()
    named.close()


@pytest.mark.parametrize(
    "size", [0, -32, 20, 33, 100, 416.5, 2080, 4096, True, np.True_, float("nan"), float("inf"), "640", "abc", [640]]
)
def test_an_input_size_that_is_not_a_multiple_of_32_up_to_2048_is_a_value_error_naming_it(yolox_path, size):
    with pytest.raises(ValueError, match="input_size must be a whole number of pixels, a multiple of 32 from 32 to 2048") as error:
        PersonDetector(yolox_path, backend="onnxruntime", threads=1, input_size=size)
    assert repr(size) in str(error.value), "the value as given ('640' the string, not 640)"


@pytest.mark.parametrize("size", [np.int64(640), 640.0, np.float32(640), np.array(640)])
def test_an_input_size_given_as_another_number_type_is_taken(yolox_path, vtest_frames, size):
    detector = PersonDetector(yolox_path, backend="onnxruntime", threads=1, input_size=size)
    detector.detect(vtest_frames[0])
    assert (detector.input_height, detector.input_width) == (480, 640)
    detector.close()


def test_an_input_size_the_model_cannot_run_at_is_an_error_not_a_silent_fallback(yolox_path, tmp_path):
    path = fixed_grid_yolox(yolox_path, tmp_path / "yolox_fixed_reshape.onnx")
    with pytest.raises(ModelError, match=r"could not be run at input 640x640 .*use its own size, 416x416 \(leave out --detector-size") as error:
        PersonDetector(path, backend="onnxruntime", threads=1, input_size=640)
    assert str(error.value).count("yolox_fixed_reshape.onnx") == 1, "the file named once"


def test_a_frame_that_does_not_fit_goes_back_to_the_input_size_asked_for_not_the_files(yolox_path, vtest_frames):
    detector = PersonDetector(yolox_path, backend="onnxruntime", threads=1, input_size=640)
    detector.detect(vtest_frames[0])                          # 576x768: rectangle 480x640
    assert (detector.input_height, detector.input_width) == (480, 640)
    detector.detect(np.ascontiguousarray(vtest_frames[0][:, :400]))   # 576x400 needs 640x448
    assert (detector.input_height, detector.input_width) == (640, 640), "the full input asked for, not the file's 416x416"
    assert "back to the full 640x640 input" in detector.describe()
    detector.close()
