"""Session settings of the ONNX Runtime backend: the flags that change speed or arithmetic are really set."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from edge_reid.backends.onnxruntime import create_session
from edge_reid.onnx_graph import is_qdq_model
from onnx_builders import mean_model, save_model


def _entry(session, key: str) -> str | None:
    try:
        return session.get_session_options().get_session_config_entry(key) or None
    except Exception:  # ONNX Runtime raises for a key that was never set
        return None


def qdq_mean_model(path):
    """Input -> QuantizeLinear/DequantizeLinear (int8, scale 1/32) -> channel means."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 256, 128])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [1.0 / 32])
    zero = helper.make_tensor("zero", TensorProto.INT8, [], [0])
    nodes = [
        helper.make_node("QuantizeLinear", ["images", "scale", "zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"]),
        helper.make_node("GlobalAveragePool", ["dq"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["output"]),
    ]
    return save_model(path, nodes, [x], [y], [scale, zero])


def test_threads_stop_spinning_after_each_run(tmp_path):
    session = create_session(mean_model(tmp_path / "mean.onnx"), threads=2)
    assert _entry(session, "session.force_spinning_stop") == "1"
    assert _entry(session, "session.disable_quant_qdq") is None  # float model: ONNX Runtime's normal path


def test_spinning_setting_can_be_turned_off_for_comparisons(tmp_path):
    session = create_session(mean_model(tmp_path / "mean.onnx"), threads=2, stop_spinning_after_run=False)
    assert _entry(session, "session.force_spinning_stop") is None


def test_graph_optimization_level_is_set_as_asked(tmp_path):
    import onnxruntime as ort

    path = mean_model(tmp_path / "mean.onnx")
    assert create_session(path).get_session_options().graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    assert create_session(path, optimization_level="all").get_session_options().graph_optimization_level == (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    with pytest.raises(ValueError, match="extended"):
        create_session(path, optimization_level="fastest")


def test_qdq_models_run_with_the_exact_qdq_arithmetic(tmp_path):
    path = qdq_mean_model(tmp_path / "qdq.onnx")
    assert is_qdq_model(path) and not is_qdq_model(mean_model(tmp_path / "mean.onnx"))
    session = create_session(path, threads=1)
    assert _entry(session, "session.disable_quant_qdq") == "1"
    images = np.full((2, 3, 256, 128), 0.51, np.float32)  # 0.51 * 32 = 16.32 -> 16 -> 0.5
    (output,) = session.run(None, {"images": images})
    np.testing.assert_allclose(output, 0.5, atol=1e-6)
