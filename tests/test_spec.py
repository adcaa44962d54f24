import json

import pytest

from edge_reid.errors import ModelError
from edge_reid.spec import BUILTIN_SPECS, ModelSpec, builtin_spec_for, load_spec
from onnx_builders import mean_model, rank2_model


def test_bundled_osnet_spec_comes_from_name_and_graph(osnet_path):
    spec = load_spec(osnet_path)
    assert spec.name == "osnet"
    assert (spec.input_name, spec.height, spec.width, spec.embedding_dim) == ("images", 256, 128, 512)
    assert spec.color_order == "RGB" and spec.std == pytest.approx((0.229, 0.224, 0.225))


def test_builtin_specs_for_reidentificationnet_and_intel():
    nvidia = builtin_spec_for("/models/ReIdentificationNet_resnet50.onnx")
    assert nvidia is BUILTIN_SPECS["reidentificationnet"]
    assert nvidia.std == (0.226, 0.226, 0.226) and nvidia.embedding_dim == 256 and nvidia.color_order == "RGB"
    intel = builtin_spec_for("person-reidentification-retail-0288.onnx")
    assert intel.color_order == "BGR" and intel.pixel_scale == 1.0 and intel.mean == (0.0, 0.0, 0.0)
    assert builtin_spec_for("something_else.onnx") is None


def test_sidecar_json_overrides_spec(tmp_path):
    model = mean_model(tmp_path / "custom.onnx")
    (tmp_path / "custom.json").write_text(json.dumps({"color_order": "BGR", "pixel_scale": 1.0, "mean": [1, 2, 3]}))
    spec = load_spec(model)
    assert spec.color_order == "BGR" and spec.pixel_scale == 1.0 and spec.mean == (1.0, 2.0, 3.0)
    assert spec.embedding_dim == 3  # from the graph's static output


def test_sidecar_errors_name_the_file(tmp_path):
    model = mean_model(tmp_path / "m.onnx")
    sidecar = tmp_path / "m.json"
    sidecar.write_text("{not json")
    with pytest.raises(ModelError, match="m.json"):
        load_spec(model)
    sidecar.write_text(json.dumps({"colour": "RGB"}))
    with pytest.raises(ModelError, match="unknown spec fields"):
        load_spec(model)
    sidecar.write_text(json.dumps({"height": 300}))
    with pytest.raises(ModelError, match="height=300"):
        load_spec(model)


def test_wrong_rank_and_non_model_files_are_refused(tmp_path):
    with pytest.raises(ModelError, match=r"rank2\.onnx.*rank 2"):
        load_spec(rank2_model(tmp_path / "rank2.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf at all" * 10)
    with pytest.raises(ModelError, match="junk.onnx: not an ONNX model"):
        load_spec(junk)
    with pytest.raises(ModelError, match="not found"):
        load_spec(tmp_path / "missing.onnx")


def test_spec_validation_and_fingerprint():
    with pytest.raises(ModelError, match="color_order"):
        ModelSpec(color_order="YUV")
    assert ModelSpec().fingerprint() != ModelSpec(std=(1.0, 1.0, 1.0)).fingerprint()
