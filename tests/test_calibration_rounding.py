"""GPTQ weight rounding and bias correction of INT8 layers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_reid.calibration.activations import run_collecting
from edge_reid.calibration.bias_correction import apply_bias_shifts, measure_layer_errors
from edge_reid.calibration.gptq import conv_patches, gptq_round
from edge_reid.calibration.qdq import QuantRecipe, calibrate_ranges, quantize_qdq, upgrade_opset
from edge_reid.calibration.reader import preprocess_all
from edge_reid.calibration.sensitivity import ort_session_from_proto
from edge_reid.data.images import read_images
from edge_reid.spec import load_spec


def _output_error(weight, integers, scale, hessian):
    delta = weight - integers * scale[:, None]
    return float(np.trace(delta @ hessian @ delta.T))


def test_gptq_beats_round_to_nearest_on_correlated_inputs():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(24, 24))
    inputs = rng.normal(size=(4000, 24)) @ mixing  # strongly correlated input dimensions
    hessian = inputs.T @ inputs
    weight = rng.normal(size=(8, 24))
    scale = np.abs(weight).max(axis=1) / 127
    nearest = np.clip(np.round(weight / scale[:, None]), -127, 127)
    rounded = gptq_round(weight, scale, hessian)
    assert rounded.dtype == np.int8 and np.abs(rounded.astype(int)).max() <= 127
    assert _output_error(weight, rounded, scale, hessian) < 0.8 * _output_error(weight, nearest, scale, hessian)


def test_gptq_with_uncorrelated_inputs_is_round_to_nearest():
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(4, 9))
    scale = np.abs(weight).max(axis=1) / 127
    nearest = np.clip(np.round(weight / scale[:, None]), -127, 127)
    assert np.array_equal(gptq_round(weight, scale, np.eye(9) * 5.0), nearest)


def test_gptq_before_bias_correction_rounds_for_the_spread_not_the_mean():
    # ReLU-like inputs: large mean, correlated spread. Bias correction removes dW E[x]; what is
    # left is dW Cov(x) dW^T, which GPTQ with the covariance as Hessian minimises.
    rng = np.random.default_rng(3)
    inputs = np.maximum(rng.normal(size=(4000, 16)) @ rng.normal(size=(16, 16)) + 3.0, 0.0)
    centred = inputs - inputs.mean(axis=0)
    weight = rng.normal(size=(8, 16))
    scale = np.abs(weight).max(axis=1) / 127
    second_moment = gptq_round(weight, scale, inputs.T @ inputs)
    covariance = gptq_round(weight, scale, centred.T @ centred)
    spread = centred.T @ centred
    assert _output_error(weight, covariance, scale, spread) < 0.9 * _output_error(weight, second_moment, scale, spread)


def test_gptq_weights_before_bias_correction_ignore_a_constant_input_shift(tmp_path):
    from edge_reid.calibration.centring import centrable_inputs, centre_inputs
    from edge_reid.calibration.gptq import gptq_weights

    rng = np.random.default_rng(4)
    nodes = [
        helper.make_node("Relu", ["x"], ["relu"], name="relu"),
        helper.make_node("Conv", ["relu", "w", "b"], ["out"], name="conv", kernel_shape=[1, 1]),
    ]
    inits = [numpy_helper.from_array(rng.normal(size=(6, 8, 1, 1)).astype(np.float32), "w"), numpy_helper.from_array(np.zeros(6, np.float32), "b")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 6, 6])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    shifted, _ = centre_inputs(model, {"relu": 6.0}, centrable_inputs(model, ["conv"]))
    x = (rng.normal(size=(16, 8, 6, 6)) + rng.normal(size=(16, 8, 1, 1))).astype(np.float32)
    qdq = {}
    for name, m in (("plain", model), ("shifted", shifted)):
        path = tmp_path / f"{name}.onnx"
        onnx.save(m, str(path))
        qdq[name] = onnx.load(str(quantize_qdq(path, path.with_name(f"{name}-qdq.onnx"), {"relu": 6.0, "relu__centred": 3.0}, QuantRecipe())))
    for corrected in (True, False):
        plain = gptq_weights(model, qdq["plain"], x, "x", {}, ["conv"], bias_corrected=corrected)["conv"]
        moved = gptq_weights(shifted, qdq["shifted"], x, "x", {}, ["conv"], bias_corrected=corrected)["conv"]
        assert np.mean(plain == moved) > (0.97 if corrected else 0.0)
        if not corrected:
            assert np.mean(plain == moved) < 0.97  # the second moment sees the shift


def _assert_patches_reproduce(weight: np.ndarray, x: np.ndarray, group: int = 1, **conv) -> None:
    """``conv_patches`` of a Conv node (``weight`` (C_out, C_in/group, kh, kw), attributes ``conv``) times the weights
    give ONNX Runtime's output of that convolution on ``x`` (N, C_in, H, W): one patch per output position."""
    kernel = tuple(weight.shape[2:])
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=list(kernel), group=group, **conv)
    graph = helper.make_graph(
        [node], "c", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    expected = ort_session_from_proto(model).run(None, {"x": x})[0]  # (N, C_out, OH, OW)
    patches = conv_patches(x, node, kernel, group)  # (group, N*OH*OW, K)
    n, c_out, oh, ow = expected.shape
    assert patches.shape[1] == n * oh * ow, "one patch per output position"
    per_group = c_out // group
    flat = weight.reshape(group, per_group, -1).astype(np.float64)
    out = np.einsum("gpk,gok->gpo", patches, flat)  # (group, N*OH*OW, per_group)
    out = out.reshape(group, n, oh, ow, per_group).transpose(1, 0, 4, 2, 3).reshape(n, c_out, oh, ow)
    assert np.allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize("group, stride, pads", [(1, 1, [1, 1, 1, 1]), (1, 2, [3, 3, 3, 3]), (4, 1, [1, 1, 1, 1])])
def test_conv_patches_reproduce_the_convolution(group, stride, pads):
    rng = np.random.default_rng(2)
    kernel = 7 if pads[0] == 3 else 3
    weight = rng.normal(size=(8, 4 // group, kernel, kernel)).astype(np.float32)
    x = rng.normal(size=(2, 4, 12, 10)).astype(np.float32)
    _assert_patches_reproduce(weight, x, group, strides=[stride, stride], pads=pads)


@pytest.mark.parametrize("dilation, stride, pads", [(2, 1, [2, 2, 2, 2]), (3, 2, [1, 3, 0, 2])])
def test_conv_patches_reproduce_a_dilated_convolution(dilation, stride, pads):
    """DeepLab-style atrous convolutions: `calibrate` ended in "ValueError: dilated convolutions are not supported"."""
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(6, 4, 3, 3)).astype(np.float32)
    x = rng.normal(size=(2, 4, 15, 11)).astype(np.float32)
    _assert_patches_reproduce(weight, x, strides=[stride, stride], pads=pads, dilations=[dilation, dilation])


@pytest.mark.parametrize("auto_pad, stride", [("SAME_UPPER", 2), ("SAME_LOWER", 2), ("SAME_LOWER", 3), ("VALID", 2)])
def test_conv_patches_follow_auto_pad(auto_pad, stride):
    """A convolution padded by ``auto_pad`` (TensorFlow and Keras exports) instead of ``pads``: its patches were cut
    from the unpadded input, so GPTQ's statistics left out every border position."""
    rng = np.random.default_rng(4)
    weight = rng.normal(size=(5, 3, 3, 3)).astype(np.float32)
    x = rng.normal(size=(2, 3, 14, 9)).astype(np.float32)
    _assert_patches_reproduce(weight, x, strides=[stride, stride], auto_pad=auto_pad)


def test_bias_correction_removes_the_first_layers_mean_shift(osnet_path, mot17_dir, tmp_path):
    spec = load_spec(osnet_path)
    float_model = upgrade_opset(onnx.load(str(osnet_path)))
    float_path = tmp_path / "float.onnx"
    onnx.save(float_model, str(float_path))
    crops, _, _ = read_images(sorted((mot17_dir / "bounding_box_train").glob("*.jpg"))[::40][:8])
    images = preprocess_all(crops, spec)
    recipe = QuantRecipe(method="minmax")
    amax = calibrate_ranges(float_path, [images], "images", recipe)
    qdq = onnx.load(str(quantize_qdq(float_path, tmp_path / "q.onnx", amax, recipe)))
    first = "/conv1/conv/Conv"
    out = next(n for n in float_model.graph.node if n.name == first).output[0]
    errors = measure_layer_errors(float_model, qdq, images, "images", [first])
    raw = measure_layer_errors(float_model, qdq, images, "images", [first], bias_corrected=False)[first]
    corrected = apply_bias_shifts(qdq, {first: errors[first].mean_shift}, [first])
    # What bias correction removes is the squared mean shift; the rest is the layer's noise.
    assert 0 < errors[first].noise_power < raw.noise_power
    assert raw.noise_power - errors[first].noise_power == pytest.approx(np.mean(errors[first].mean_shift**2), rel=1e-3)
    assert 0 < errors[first].noise_to_signal < 0.01  # INT8: SQNR well above 20 dB

    def channel_means(model):
        means = []
        run_collecting(model, images, "images", [out], lambda values: means.append(values[out].mean(axis=(0, 2, 3))), batch=8)
        return means[0]

    reference, before, after = channel_means(float_model), channel_means(qdq), channel_means(corrected)
    # The first layer reads the true float input, so its corrected output mean matches FP32's.
    assert np.abs(before - reference).max() > 10 * np.abs(after - reference).max()
    assert np.abs(after - reference).max() < 1e-4
