"""INT8 Q/DQ quantization with ONNX Runtime's quantization tools, calibrated once and reused.

The recipe (what TensorRT 10/11 build explicit-INT8 engines from, and what ONNX
Runtime runs on the CPU):

- Q/DQ format, signed INT8, symmetric (zero point 0: TensorRT accepts nothing else),
  weights per output channel (``DequantizeLinear`` with ``axis`` 0, the output-channel
  axis of Conv and of Gemm with ``transB=1``: opset 13+). Biases stay float: TensorRT's
  ONNX parser accepts ``DequantizeLinear`` of 8-bit inputs only.
- Only the inputs and weights of Conv and Gemm layers are quantized; their outputs
  and the glue between them (ReLU, pooling, the gates' Sigmoid/Mul, residual
  Adds, BatchNorm) stay float. TensorRT fuses Conv+ReLU and requantizes at the
  next Q/DQ pair itself; in float the glue is free and exact.
- Activation ranges come from one calibration pass over real person crops
  (:func:`calibrate_ranges`), then :func:`quantize_qdq` can re-quantize with any
  set of layers kept in float without running the calibration again.

Quantization itself is ONNX Runtime's ``QDQQuantizer`` (the engine behind
``onnxruntime.quantization.quantize_static``), fed with the calibrated ranges.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import onnx

from edge_reid.errors import ModelError

#: Layer types whose inputs and weights are quantized.
QUANTIZED_OP_TYPES = ("Conv", "Gemm")
#: Activation range methods offered on the command line: ``mse`` is ours
#: (:func:`edge_reid.calibration.activations.mse_optimal_amax`), the others ONNX Runtime's calibrators.
METHODS = ("mse", "entropy", "percentile", "minmax")


@dataclass(frozen=True)
class QuantRecipe:
    """How a model is calibrated and quantized.

    Attributes:
        method: ``"mse"`` (the range with the least expected squared INT8 error on a
            fine histogram), ``"entropy"`` (KL divergence, TensorRT's EntropyCalibration2
            idea), ``"percentile"`` or ``"minmax"``: how each activation's range is chosen.
        percentile: for ``"percentile"``: the kept share of |values|, in percent.
        histogram_bins: histogram size for percentile (2048, as TensorRT).
        entropy_bins: histogram size for entropy, over [-amax, amax]. The KL search
            compares it with 255 quantized bins (symmetric INT8's grid); ONNX
            Runtime's search over 2048 bins takes minutes per model in Python,
            512 keeps it under a minute.
        op_types: layer types whose inputs and weights are quantized.
    """

    method: str = "mse"
    percentile: float = 99.999
    histogram_bins: int = 2048
    entropy_bins: int = 512
    op_types: tuple[str, ...] = QUANTIZED_OP_TYPES

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 90.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (90, 100], got {self.percentile}")


#: Quantized levels of signed symmetric INT8 (-127..127), the grid the entropy search models.
INT8_SYMMETRIC_LEVELS = 255


def _ort_method(method: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile, "minmax": CalibrationMethod.MinMax}[method]


def upgrade_opset(model: onnx.ModelProto, minimum: int = 13) -> onnx.ModelProto:
    """The model with its default-domain opset raised to ``minimum`` when lower.

    Per-channel ``DequantizeLinear`` (an ``axis`` attribute) needs opset 13; the
    bundled OSNet is opset 12. Uses ``onnx.version_converter``.

    Raises:
        ModelError: the converter cannot convert this model.
    """
    current = next((imp.version for imp in model.opset_import if imp.domain in ("", "ai.onnx")), 0)
    if current >= minimum:
        return model
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(model, minimum)
        onnx.checker.check_model(converted)
    except Exception as exc:  # the converter raises RuntimeError/ValidationError with long texts
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot convert the model from opset {current} to {minimum} for per-channel Q/DQ: {first}") from None
    return converted


def quantizable_nodes(model: onnx.ModelProto, op_types: Sequence[str] = QUANTIZED_OP_TYPES) -> list[str]:
    """Names of the nodes the recipe quantizes (Conv/Gemm with a constant weight), in graph order.

    Raises:
        ModelError: a node of those types has no name (names identify the layers kept in float).
    """
    constants = {init.name for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type in op_types and len(node.input) > 1 and node.input[1] in constants:
            if not node.name:
                raise ModelError(f"a {node.op_type} node has no name; name every node (e.g. onnx-simplifier does) to quantize it")
            names.append(node.name)
    return names


def calibrate_ranges(
    model_path: str | Path,
    batches: Iterable[np.ndarray],
    input_name: str,
    recipe: QuantRecipe,
    on_batch: Callable[[int], None] | None = None,
):
    """Run the float model over calibration batches and compute each tensor's range with ONNX Runtime's calibrators.

    For the ``minmax``, ``percentile`` and ``entropy`` methods (``mse`` is
    :func:`edge_reid.calibration.activations.collect_statistics`). Every float
    tensor is calibrated (the TensorRT table needs them all; the quantizer picks
    what it uses). Batches are fed one at a time, so memory stays bounded.

    Args:
        model_path: float ONNX model (opset >= 13).
        batches: preprocessed (n, 3, H, W) float32 arrays (see :func:`edge_reid.calibration.reader.preprocessed_batches`).
        input_name: the model's image input.
        recipe: calibration method and histogram settings.
        on_batch: called with each batch's size after it is collected (progress bars).

    Returns:
        tensor name -> symmetric range ``amax`` (largest |value| kept).

    Raises:
        ModelError: no batch was given or the method is ``mse``.
    """
    if recipe.method == "mse":
        raise ModelError("the mse method collects its own statistics: use edge_reid.calibration.activations")
    from onnxruntime.quantization import CalibrationDataReader, create_calibrator

    class _One(CalibrationDataReader):
        def __init__(self, batch: np.ndarray) -> None:
            self.batch: np.ndarray | None = batch

        def get_next(self):
            batch, self.batch = self.batch, None
            return None if batch is None else {input_name: batch}

    options = {"symmetric": True}
    if recipe.method == "percentile":
        options.update(num_bins=recipe.histogram_bins, percentile=recipe.percentile)
    elif recipe.method == "entropy":
        options.update(num_bins=recipe.entropy_bins, num_quantized_bins=INT8_SYMMETRIC_LEVELS)
    with tempfile.TemporaryDirectory(prefix="edge-reid-calib-") as tmp:
        calibrator = create_calibrator(
            Path(model_path),
            None,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_ort_method(recipe.method),
            extra_options=options,
        )
        seen = 0
        quiet = io.StringIO()  # ONNX Runtime's histogram calibrators print a line per call
        for batch in batches:
            with contextlib.redirect_stdout(quiet):
                calibrator.collect_data(_One(np.ascontiguousarray(batch, np.float32)))
            seen += len(batch)
            if on_batch is not None:
                on_batch(len(batch))
        if not seen:
            raise ModelError("no calibration image: give a folder with readable person crops")
        with contextlib.redirect_stdout(quiet):
            ranges = calibrator.compute_data()
        del calibrator
    amax = {}
    for name, data in ranges.data.items():
        low, high = data.range_value
        amax[name] = float(max(np.max(np.abs(low)), np.max(np.abs(high))))
    return amax


def quantize_qdq(
    float_model_path: str | Path,
    out_path: str | Path,
    amax: Mapping[str, float],
    recipe: QuantRecipe,
    keep_float: Sequence[str] = (),
) -> Path:
    """Write the Q/DQ INT8 model, with the layers in ``keep_float`` left entirely float.

    Args:
        float_model_path: float model (opset >= 13), the one ``ranges`` were calibrated on.
        out_path: where to write the Q/DQ model.
        amax: tensor name -> symmetric range (every input of a quantized layer needs one).
        recipe: the quantization recipe.
        keep_float: node names to keep float (weights and inputs).

    Returns:
        ``out_path``: nodes in topological order, as the ONNX spec requires.
    """
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    model = load_model_with_shape_infer(Path(float_model_path))
    ranges = TensorsData(
        CalibrationMethod.MinMax,
        {name: TensorData(lowest=np.array(-value, np.float32), highest=np.array(value, np.float32)) for name, value in amax.items()},
    )
    quantizer = QDQQuantizer(
        model,
        True,  # per-channel weights
        False,  # full 8-bit range (reduce_range is for ONNX Runtime's u8s8 kernels, which we do not use)
        QuantType.QInt8,
        QuantType.QInt8,
        ranges,
        [],
        list(keep_float),
        list(recipe.op_types),
        {
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            # Biases stay float: TensorRT's ONNX parser takes DequantizeLinear of 8-bit
            # inputs only (an INT32 bias DQ fails to parse) and fuses the float bias itself.
            "QuantizeBias": False,
            "OpTypesToExcludeOutputQuantization": list(recipe.op_types),
        },
    )
    quantizer.quantize_model()
    # QDQQuantizer appends each Q/DQ pair after the graph's nodes; ONNX requires topological order
    # (onnx.checker refuses the model otherwise), and ORT sorts only in its own save_model_to_file.
    quantizer.model.topological_sort()
    quantized = quantizer.model.model
    restore_float_inputs(quantized, set(quantizable_nodes(onnx.load(str(float_model_path)), recipe.op_types)) - set(keep_float))
    out_path = Path(out_path)
    onnx.save(quantized, str(out_path))
    return out_path


def restore_float_inputs(model: onnx.ModelProto, quantized_nodes: set[str]) -> int:
    """Give every node outside ``quantized_nodes`` the float tensor back instead of a Q->DQ copy.

    ONNX Runtime puts one Q/DQ pair on a tensor and rewires *all* its consumers,
    so a layer kept in float, or a float residual Add, would still read the
    rounded values when it shares an input with a quantized layer. Unused Q/DQ
    nodes are removed afterwards.

    Returns:
        How many node inputs were switched back to float.
    """
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    switched = 0
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") or node.name in quantized_nodes:
            continue
        for index, name in enumerate(node.input):
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producer.get(dq.input[0])
            if q is None or q.op_type != "QuantizeLinear":
                continue  # a constant (weight) DQ: keep
            node.input[index] = q.input[0]
            switched += 1
    while True:
        used = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not any(o in used for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    return switched


def _shapes(model: onnx.ModelProto) -> tuple[dict[str, list], dict[str, tuple[int, ...]]]:
    """(tensor name -> inferred dims (ints or None), initializer name -> shape)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    dims: dict[str, list] = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    return dims, weights


def layer_macs(model: onnx.ModelProto, layers: Sequence[str]) -> dict[str, int]:
    """Multiply-accumulates per image of each Conv/Gemm layer (0 where shapes are unknown)."""
    dims, weights = _shapes(model)
    wanted = set(layers)
    macs = {}
    for node in model.graph.node:
        if node.name not in wanted:
            continue
        weight = weights.get(node.input[1], ())
        out = dims.get(node.output[0], [])
        per_output = int(np.prod(weight)) if weight else 0
        if node.op_type == "Conv" and len(out) == 4 and all(isinstance(v, int) and v > 0 for v in out[2:]):
            macs[node.name] = per_output * out[2] * out[3]
        elif node.op_type == "Gemm":
            macs[node.name] = per_output
        else:
            macs[node.name] = 0
    return macs


def pooled_input_layers(model: onnx.ModelProto, layers: Sequence[str]) -> list[str]:
    """Layers whose input is a pooled vector: (N, C, 1, 1) or (N, C).

    In OSNet these are the channel gates' two small 1x1 convs and the final fc:
    together under 0.1% of the multiply-adds, and their per-image inputs (a few
    pooled numbers) vary so much between data sets that a range calibrated on
    one clips the other (docs/calibration.md, "The INT8 recipe", step 5). They stay float.
    """
    dims, _ = _shapes(model)
    wanted = set(layers)
    pooled = []
    for node in model.graph.node:
        if node.name not in wanted:
            continue
        if node.op_type == "Gemm":  # Gemm takes 2-D inputs by definition
            pooled.append(node.name)
            continue
        shape = dims.get(node.input[0])
        if shape is None:
            continue
        if len(shape) == 2 or (len(shape) == 4 and shape[2] == 1 and shape[3] == 1):
            pooled.append(node.name)
    return pooled


def layer_neighbours(model: onnx.ModelProto, layers: Sequence[str]) -> dict[str, set[str]]:
    """Layer name -> the layers it feeds or is fed by (through any non-layer ops such as ReLU, pooling, Add)."""
    layer_set = set(layers)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    neighbours: dict[str, set[str]] = {name: set() for name in layers}
    for node in model.graph.node:
        if node.name not in layer_set:
            continue
        seen: set[str] = set()
        stack = list(node.output)
        while stack:
            tensor = stack.pop()
            for reader in readers.get(tensor, []):
                if reader.name in seen:
                    continue
                seen.add(reader.name)
                if reader.name in layer_set:
                    neighbours[node.name].add(reader.name)
                    neighbours[reader.name].add(node.name)
                else:
                    stack.extend(reader.output)
    return neighbours


def precision_boundaries(model: onnx.ModelProto, layers: Sequence[str], int8_layers: Sequence[str]) -> int:
    """Float<->INT8 boundaries: pairs of connected layers (one feeding the other, through any
    non-layer ops) of which exactly one is INT8. Each costs TensorRT a reformat between precisions."""
    int8 = set(int8_layers)
    neighbours = layer_neighbours(model, layers)
    return sum((a in int8) != (b in int8) for a in neighbours for b in neighbours[a]) // 2


def int8_islands(model: onnx.ModelProto, layers: Sequence[str], int8_layers: Sequence[str], macs: Mapping[str, int], max_share: float = 0.005) -> list[str]:
    """INT8 layers whose every neighbour is float and that hold under ``max_share`` of the MACs.

    Each such island costs TensorRT two reformats for little INT8 compute: keeping it
    float makes the INT8 regions more contiguous at almost no cost in INT8 share.
    """
    int8 = set(int8_layers)
    total = max(sum(macs.values()), 1)
    neighbours = layer_neighbours(model, layers)
    return [
        name for name in layers
        if name in int8 and neighbours[name] and not (neighbours[name] & int8) and macs.get(name, 0) < max_share * total
    ]


def float_holes(model: onnx.ModelProto, layers: Sequence[str], int8_layers: Sequence[str], candidates: Sequence[str]) -> list[str]:
    """Layers of ``candidates`` that are float while every layer they connect to is INT8.

    Each such hole in an INT8 region costs TensorRT two reformats; making it INT8 too joins
    the region (and adds its multiply-adds to the INT8 share) if fidelity allows.
    """
    int8 = set(int8_layers)
    neighbours = layer_neighbours(model, layers)
    return [name for name in candidates if name not in int8 and neighbours.get(name) and neighbours[name] <= int8]


def region_edges(model: onnx.ModelProto, layers: Sequence[str], int8_layers: Sequence[str], candidates: Sequence[str]) -> list[str]:
    """Layers of ``candidates`` that are float and connect to at least one INT8 layer, in ``candidates``' order.

    Making one INT8 extends an existing INT8 region instead of starting a new one (it can never be an island).
    """
    int8 = set(int8_layers)
    neighbours = layer_neighbours(model, layers)
    return [name for name in candidates if name not in int8 and neighbours.get(name, set()) & int8]
