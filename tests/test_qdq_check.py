"""``check_qdq_model``: Q/DQ models TensorRT's ONNX parser takes pass, the others are refused with the fix.

The rules (tensorrt/qdq_check.py): DequantizeLinear of INT8 only (no INT32 quantized biases, no
UINT8), zero points 0, no asymmetric (UINT8) activations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_reid.cli import main
from edge_reid.spec import ModelSpec
from edge_reid.tensorrt.errors import EngineBuildError
from edge_reid.tensorrt.qdq_check import check_qdq_model, qdq_problems
from onnx_builders import save_model, tiny_qdq_model

TINY = ModelSpec(name="tiny", input_name="images", height=8, width=4, embedding_dim=4, output_name="output")


def tiny_conv_model(path: Path) -> Path:
    """(N, 3, 8, 4) -> Conv 3->4 with bias -> ReLU -> global pool -> (N, 4): a ReID-shaped graph with a bias to quantize."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "weight")
    bias = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "bias")
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 8, 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 4])
    nodes = [
        helper.make_node("Conv", ["images", "weight", "bias"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["output"], name="flatten"),
    ]
    return save_model(path, nodes, [x], [y], [weight, bias])


def quantize_with_onnxruntime(source: Path, target: Path, **options) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(1)
            self.batches = iter([{"images": rng.standard_normal((2, 3, 8, 4)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, **options)
    return target


def test_onnxruntime_defaults_are_refused_naming_quantized_biases_asymmetric_activations_and_the_fix(tmp_path):
    """quantize_static's defaults: INT32 biases (QuantizeBias) and asymmetric activations, which TensorRT cannot parse."""
    model = quantize_with_onnxruntime(tiny_conv_model(tmp_path / "tiny.onnx"), tmp_path / "ort-defaults-qdq.onnx")
    problems = qdq_problems(onnx.load(str(model)))
    assert any("DequantizeLinear node(s) dequantize INT32 inputs (quantized biases)" in p for p in problems)
    assert any("non-zero zero points" in p or "quantize to UINT8" in p for p in problems)  # asymmetric activations
    with pytest.raises(EngineBuildError) as info:
        check_qdq_model(model, TINY)
    message = str(info.value)
    assert "TensorRT's ONNX parser cannot build this Q/DQ model" in message
    assert "'QuantizeBias': False" in message and "edge-reid calibrate" in message


def test_uint8_activations_are_refused(tmp_path):
    from onnxruntime.quantization import QuantType

    model = quantize_with_onnxruntime(
        tiny_conv_model(tmp_path / "tiny.onnx"), tmp_path / "uint8-qdq.onnx",
        activation_type=QuantType.QUInt8, extra_options={"QuantizeBias": False},
    )
    problems = qdq_problems(onnx.load(str(model)))
    assert any("QuantizeLinear node(s) quantize to UINT8 (asymmetric activations)" in p for p in problems)
    assert any("dequantize UINT8 inputs" in p for p in problems)
    assert not any("INT32" in p for p in problems)


def test_the_options_the_message_names_give_a_model_that_passes(tmp_path):
    from onnxruntime.quantization import QuantType

    model = quantize_with_onnxruntime(
        tiny_conv_model(tmp_path / "tiny.onnx"), tmp_path / "symmetric-qdq.onnx",
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        extra_options={"QuantizeBias": False, "ActivationSymmetric": True, "WeightSymmetric": True},
    )
    assert qdq_problems(onnx.load(str(model))) == []
    check_qdq_model(model, TINY)


def test_non_zero_zero_points_are_refused(tmp_path):
    path = tiny_qdq_model(tmp_path / "q.onnx")
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name == "zero":
            init.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), "zero"))
    assert any("non-zero zero points" in p for p in qdq_problems(model))
    assert qdq_problems(onnx.load(str(tiny_qdq_model(tmp_path / "ok.onnx")))) == []


@pytest.mark.slow
def test_the_qdq_model_edge_reid_calibrate_writes_for_the_bundled_osnet_passes(osnet_path, mot17_dir, tmp_path, capsys):
    out = tmp_path / "cal"
    code = main([
        "calibrate", "--model", str(osnet_path), "--data", str(mot17_dir), "--images", "16", "--pool-size", "40",
        "--out", str(out), "--min-top1", "0", "--min-cosine", "0", "--min-p1-cosine", "0", "--min-top5", "0", "--max-map-drop", "100",
    ])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "osnet_x0_25_msmt17-int8-report.json").read_text())
    qdq = Path(report["outputs"]["model"])
    model = onnx.load(str(qdq))
    assert sum(node.op_type == "DequantizeLinear" for node in model.graph.node) > 50  # really quantized
    assert qdq_problems(model) == []
    from edge_reid.spec import load_spec

    check_qdq_model(qdq, load_spec(osnet_path))
    # edge-reid build takes it: what stops it here is only the missing TensorRT, not the model.
    capsys.readouterr()
    code = main(["build", "--model", str(osnet_path), "--precision", "int8", "--qdq", str(qdq), "--engines-dir", str(tmp_path / "engines")])
    err = capsys.readouterr().err
    assert "--qdq" not in err and "Q/DQ" not in err
    assert code == 0 or "TensorRT" in err


def _opset21_quantize_model(output_dtype: int | None, zero_point: bool) -> onnx.ModelProto:
    """x -> QuantizeLinear (opset 21: no zero point, ``output_dtype`` as given) -> DequantizeLinear -> Conv with INT8 weights."""
    weight = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.int8), "w_q")
    weight_scale = numpy_helper.from_array(np.full(4, 0.1, np.float32), "w_s")
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    inits = [weight, weight_scale, scale]
    q_inputs = ["x", "s"]
    if zero_point:
        inits.append(numpy_helper.from_array(np.array(0, np.uint8), "zp"))
        q_inputs.append("zp")
    attributes = {} if output_dtype is None else {"output_dtype": output_dtype}
    nodes = [
        helper.make_node("QuantizeLinear", q_inputs, ["xq"], name="q", **attributes),
        helper.make_node("DequantizeLinear", ["xq", "s"], ["xdq"], name="dq"),
        helper.make_node("DequantizeLinear", ["w_q", "w_s"], ["w"], name="wdq", axis=0),
        helper.make_node("Conv", ["xdq", "w"], ["y"], name="conv"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


def test_opset21_output_dtype_sets_the_quantized_type_without_a_zero_point():
    """ONNX QuantizeLinear-21: the type is ``output_dtype`` when set (not UNDEFINED), else the zero point's, else UINT8."""
    int8 = _opset21_quantize_model(TensorProto.INT8, zero_point=False)
    onnx.checker.check_model(int8, full_check=True)
    assert qdq_problems(int8) == []
    uint8 = qdq_problems(_opset21_quantize_model(TensorProto.UINT8, zero_point=False))
    assert any("dequantize UINT8 inputs" in line for line in uint8) and any("quantize to UINT8" in line for line in uint8)
    assert any("quantize to UINT8" in line for line in qdq_problems(_opset21_quantize_model(None, zero_point=False)))
    assert any("quantize to UINT8" in line for line in qdq_problems(_opset21_quantize_model(TensorProto.UNDEFINED, zero_point=False)))
    assert any("quantize to UINT8" in line for line in qdq_problems(_opset21_quantize_model(None, zero_point=True)))
