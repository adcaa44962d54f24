"""Rewrites of a detector's graph at load: YOLOX's Focus stem as one strided convolution (exact), another input size.

YOLOX (and YOLOv5 before v6.0) begin with "Focus": four strided Slices take every second pixel of
the image at row/column offsets (0, 0), (1, 0), (0, 1), (1, 1), a Concat stacks them as 4C channels
at half the resolution (space-to-depth), and a k x k convolution with stride 1 reads them. That is
one convolution of the image itself, with kernel 2k x 2k, stride 2 and the pads doubled::

    W'[o, c, 2u + dy, 2v + dx] = W[o, b(dy, dx) * C + c, u, v]

where b(dy, dx) is the Concat position of the slice at offset (dy, dx). YOLOv5 v6.0 made the same
replacement in its model definition (a 6x6 stride-2 convolution instead of Focus,
ultralytics/yolov5 pull request 4825); here it is done on the ONNX graph when the detector loads, so
exported YOLOX models run unchanged. The products and the sum are the same, in another order: the
outputs differ by float32 rounding only. OpenVINO runs these Slices on reference kernels and ONNX
Runtime copies four quarter-images; ``benchmarks/detector_rewrites.py`` measures both runtimes with and
without the rewrite.

Only the exact pattern is rewritten: the four slices read a graph input of fixed, even height and
width, and nothing but the Concat and that one convolution reads what they produce.

The second rewrite gives the model another input size (:func:`resize_input`): a YOLOX network is
convolutional up to a ``Reshape`` to ``(1, 85, -1)``, so it runs on any height and width that are
multiples of its largest stride; :class:`edge_reid.detector.PersonDetector` uses it to run on the
smallest such rectangle that holds the letterboxed frame instead of the full square.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_reid.errors import ModelError
from edge_reid.onnx_graph import drop_unused, load_onnx, node_attribute

#: Slice ``ends`` at or above this mean "to the end" (exporters write INT64_MAX or INT32_MAX).
TO_THE_END = 2**30
#: The offsets of the four space-to-depth slices, (row, column).
FOCUS_OFFSETS = frozenset({(0, 0), (0, 1), (1, 0), (1, 1)})
#: How ``describe()`` names the Focus rewrite.
FOCUS_NOTE = "Focus stem as one strided conv"


@dataclass(frozen=True)
class DetectorGraph:
    """The detector model a backend loads.

    Attributes:
        model: the rewritten model, serialised (what ONNX Runtime and OpenVINO take instead of a
            file name), or None: load the file as it is.
        rewrites: what was rewritten, one phrase each (e.g. ``"Focus stem as one strided conv"``,
            ``"input 320x416"``), for the backend's ``describe()`` and its tuning key.
    """

    model: bytes | None
    rewrites: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The rewrites as one phrase ("" for none)."""
        return ", ".join(self.rewrites)


def load_detector_graph(model_path: str | Path, input_size: tuple[int, int] | None = None) -> DetectorGraph:
    """The detector's ONNX model with its Focus stem folded (where it has one) and, if asked, another input size.

    Args:
        model_path: the detector ``.onnx`` file (read, never written).
        input_size: (height, width) in pixels for the image input, multiples of the network's
            largest stride (YOLOX: 32); None keeps the file's size.

    Returns:
        A :class:`DetectorGraph`; its ``model`` is None when nothing was rewritten.

    Raises:
        ModelError: the file is missing or is not an ONNX model.
    """
    model = load_onnx(model_path, hint="pass a YOLOX detector exported to ONNX", weights=True)
    rewrites = []
    if fold_focus(model):
        rewrites.append(FOCUS_NOTE)
    if input_size is not None:
        try:
            height, width = resize_input(model, *input_size)
        except ModelError as exc:
            raise ModelError(f"{model_path}: {exc}") from None
        rewrites.append(f"input {height}x{width}")
    return DetectorGraph(model.SerializeToString() if rewrites else None, tuple(rewrites))


def resize_input(model, height: int, width: int) -> tuple[int, int]:
    """Give the model's image input (its first non-constant input, (1, 3, H, W)) another height and width, in place.

    The shapes ONNX stored for inner tensors are dropped and the outputs' dimensions past the batch
    become symbolic, so that each runtime infers them anew. Whether the network then runs at that
    size is for the runtime to say (a ``Reshape`` to a fixed element count fails there).

    Args:
        model: an ``onnx.ModelProto``.
        height, width: the new input size in pixels.

    Returns:
        ``(height, width)``.

    Raises:
        ModelError: the model has no 4-dimensional input to resize.
    """
    constants = {init.name for init in model.graph.initializer}
    image = next((value for value in model.graph.input if value.name not in constants), None)
    if image is None or len(image.type.tensor_type.shape.dim) != 4:
        raise ModelError("the detector has no (1, 3, H, W) image input to resize")
    dims = image.type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = int(height), int(width)
    del model.graph.value_info[:]
    for output in model.graph.output:
        for index, dim in enumerate(output.type.tensor_type.shape.dim):
            if index > 0:
                dim.dim_param = f"{output.name}_{index}"
    return int(height), int(width)


def fold_focus(model) -> bool:
    """Replace a Focus stem (4 strided Slices -> Concat -> k x k Conv) by one 2k x 2k stride-2 Conv, in place.

    Args:
        model: an ``onnx.ModelProto`` (opset >= 10: Slice with its ranges as inputs).

    Returns:
        True when a Focus stem was found and replaced; False (model unchanged) otherwise.
    """
    graph = model.graph
    constants = _constants(graph)
    producers = {output: node for node in graph.node for output in node.output}
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    image_shapes = {value.name: [d.dim_value if d.HasField("dim_value") else 0 for d in value.type.tensor_type.shape.dim]
                    for value in graph.input if value.name not in constants}
    graph_outputs = {value.name for value in graph.output}
    for concat in graph.node:
        if concat.op_type != "Concat" or len(concat.input) != 4 or node_attribute(concat, "axis") not in (1, -3):
            continue
        stem = _focus_stem(concat, constants, producers, readers, image_shapes, graph_outputs)
        if stem is not None:
            _replace(graph, concat, *stem)
            return True
    return False


def _constants(graph) -> dict[str, np.ndarray]:
    """Initializers and Constant-node outputs, by name."""
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _slice_offsets(node, constants, dims: list[int]) -> dict[int, tuple[int, int]] | None:
    """{axis: (start, step)} of a Slice whose ranges are constants and run to the end; None otherwise."""
    if len(node.input) < 3 or any(name and name not in constants for name in node.input[1:]):
        return None
    starts, ends = constants[node.input[1]].reshape(-1), constants[node.input[2]].reshape(-1)
    axes = constants[node.input[3]].reshape(-1) if len(node.input) > 3 and node.input[3] else np.arange(starts.size)
    steps = constants[node.input[4]].reshape(-1) if len(node.input) > 4 and node.input[4] else np.ones(starts.size, np.int64)
    offsets = {}
    for start, end, axis, step in zip(starts.tolist(), ends.tolist(), axes.tolist(), steps.tolist()):
        axis = axis % len(dims)
        if end < TO_THE_END and end < dims[axis]:
            return None
        offsets[axis] = (start, step)
    return offsets


def _branch(tensor: str, producers, readers, image_shapes, graph_outputs) -> tuple[str, list] | None:
    """(the tensor a chain of Slices producing ``tensor`` reads, those Slices), when nothing else reads their outputs."""
    slices = []
    while tensor in producers and producers[tensor].op_type == "Slice":
        if tensor in graph_outputs or len(readers.get(tensor, [])) != 1:
            return None
        slices.append(producers[tensor])
        tensor = producers[tensor].input[0]
    return (tensor, slices) if slices and tensor in image_shapes else None


def _focus_stem(concat, constants, producers, readers, image_shapes, graph_outputs):
    """(image name, the (dy, dx) offset of each Concat input, the slices, the conv, its weight) of a
    Focus stem at ``concat``, or None."""
    branches = [_branch(tensor, producers, readers, image_shapes, graph_outputs) for tensor in concat.input]
    if any(branch is None for branch in branches) or len({image for image, _ in branches}) != 1:
        return None
    image = branches[0][0]
    dims = image_shapes[image]
    if len(dims) != 4 or min(dims[1:]) <= 0 or dims[2] % 2 or dims[3] % 2:
        return None
    offsets, slices = [], []
    for _, chain in branches:
        axes: dict[int, tuple[int, int]] = {}
        for node in chain:
            found = _slice_offsets(node, constants, dims)
            if found is None or set(found) & set(axes):
                return None
            axes.update(found)
        if set(axes) != {2, 3} or axes[2][1] != 2 or axes[3][1] != 2:
            return None
        offsets.append((axes[2][0], axes[3][0]))
        slices.extend(chain)
    if set(offsets) != FOCUS_OFFSETS:
        return None
    conv_readers = readers.get(concat.output[0], [])
    if concat.output[0] in graph_outputs or len(conv_readers) != 1 or conv_readers[0].op_type != "Conv":
        return None
    conv = conv_readers[0]
    weight = constants.get(conv.input[1])
    if (
        conv.input[0] != concat.output[0] or weight is None or weight.ndim != 4 or weight.shape[1] != 4 * dims[1]
        or node_attribute(conv, "group", 1) != 1
        or list(node_attribute(conv, "strides", [1, 1])) != [1, 1] or list(node_attribute(conv, "dilations", [1, 1])) != [1, 1]
        or node_attribute(conv, "auto_pad", "NOTSET") not in (b"NOTSET", "NOTSET")
    ):
        return None
    return image, offsets, slices, conv, weight


def _replace(graph, concat, image, offsets, slices, conv, weight) -> None:
    """Swap the slices, the Concat and the Conv for one strided Conv reading ``image``, where the Conv was."""
    from onnx import helper, numpy_helper

    out_channels, _, kernel_h, kernel_w = weight.shape
    channels = weight.shape[1] // 4
    folded = np.zeros((out_channels, channels, 2 * kernel_h, 2 * kernel_w), weight.dtype)
    for block, (dy, dx) in enumerate(offsets):
        folded[:, :, dy::2, dx::2] = weight[:, block * channels:(block + 1) * channels]
    weight_name = f"{conv.input[1]}__focus_folded"
    graph.initializer.append(numpy_helper.from_array(folded, weight_name))
    top, left, bottom, right = list(node_attribute(conv, "pads", [0, 0, 0, 0]))
    replacement = helper.make_node(
        "Conv", [image, weight_name, *conv.input[2:]], list(conv.output), name=f"{conv.name or 'focus'}__focus_folded",
        kernel_shape=[2 * kernel_h, 2 * kernel_w], strides=[2, 2], pads=[2 * top, 2 * left, 2 * bottom, 2 * right],
        dilations=[1, 1], group=1,
    )
    removed = {id(node) for node in (*slices, concat)}
    nodes = [replacement if node is conv else node for node in graph.node if id(node) not in removed]
    del graph.node[:]
    graph.node.extend(nodes)
    drop_unused(graph)  # the slices' ranges, the old weight
