import json
import shutil
import warnings

import pytest

from edge_reid.errors import ModelError, ModelSpecWarning
from edge_reid.spec import BUILTIN_SPECS, ModelSpec, builtin_spec_for, legacy_model_ids, load_spec, model_id
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
    sidecar.write_bytes(b"\xff\xfe{")
    with pytest.raises(ModelError, match="m.json: sidecar spec is not valid JSON"):
        load_spec(model)
    sidecar.write_text(json.dumps({"colour": "RGB"}))
    with pytest.raises(ModelError, match="unknown spec fields"):
        load_spec(model)
    sidecar.write_text(json.dumps({"height": 300}))
    with pytest.raises(ModelError, match="height=300"):
        load_spec(model)


@pytest.mark.parametrize(
    ("side", "field", "expected"),
    [
        ({"pixel_scale": "abc"}, 'pixel_scale="abc"', "finite number > 0"),
        ({"pixel_scale": 0}, "pixel_scale=0", "finite number > 0"),
        ({"pixel_scale": -1.0}, "pixel_scale=-1.0", "finite number > 0"),
        ({"pixel_scale": float("nan")}, "pixel_scale=NaN", "finite number > 0"),
        ({"pixel_scale": True}, "pixel_scale=true", "finite number > 0"),
        ({"mean": "abc"}, 'mean="abc"', "list of 3 finite numbers"),
        ({"mean": [0, 0, "a"]}, 'mean=[0, 0, "a"]', "list of 3 finite numbers"),
        ({"mean": [0, 0]}, "mean=[0, 0]", "list of 3 finite numbers"),
        ({"std": [1, 0, 1]}, "std=[1, 0, 1]", "3 numbers > 0"),
        ({"std": [1, -1, 1]}, "std=[1, -1, 1]", "3 numbers > 0"),
        ({"embedding_dim": "x"}, 'embedding_dim="x"', "positive integer"),
        ({"embedding_dim": 0}, "embedding_dim=0", "positive integer"),
        ({"width": 12.5}, "width=12.5", "positive integer"),
        ({"color_order": "rgb"}, 'color_order="rgb"', '"RGB" or "BGR"'),
        ({"input_name": 3}, "input_name=3", "a string"),
        ({"output_normalized": "yes"}, 'output_normalized="yes"', "true or false"),
    ],
)
def test_sidecar_values_of_the_wrong_type_or_range_name_file_field_and_value(tmp_path, side, field, expected):
    model = mean_model(tmp_path / "m.onnx")
    (tmp_path / "m.json").write_text(json.dumps(side))
    with pytest.raises(ModelError) as caught:
        load_spec(model)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'm.json'}: {field} ") and expected in message
    assert "\n" not in message


@pytest.mark.parametrize(("text", "kind"), [('"str"', "string"), ("[1, 2]", "array"), ("3", "number"), ("null", "null")])
def test_a_sidecar_that_is_not_a_json_object_is_refused(tmp_path, text, kind):
    model = mean_model(tmp_path / "m.onnx")
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(ModelError, match=rf"m\.json: sidecar spec must be a JSON object .* got a JSON {kind}"):
        load_spec(model)


def test_valid_sidecar_numbers_in_any_json_form_are_accepted(tmp_path):
    model = mean_model(tmp_path / "m.onnx")
    (tmp_path / "m.json").write_text(json.dumps({"pixel_scale": 1, "mean": [0, 0.5, 1], "std": [1, 2.0, 3],
                                                 "output_normalized": True}))
    spec = load_spec(model)
    assert spec.pixel_scale == 1 and spec.mean == (0.0, 0.5, 1.0) and spec.std == (1.0, 2.0, 3.0) and spec.output_normalized


def test_a_folder_given_as_the_model_is_named_a_folder(tmp_path):
    folder = tmp_path / "models.onnx"
    folder.mkdir()
    with pytest.raises(ModelError, match=r"models\.onnx is a folder, not a model file"):
        load_spec(folder)


def test_wrong_rank_and_non_model_files_are_refused(tmp_path):
    with pytest.raises(ModelError, match=r"rank2\.onnx.*rank 2"):
        load_spec(rank2_model(tmp_path / "rank2.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf at all" * 10)
    with pytest.raises(ModelError, match="junk.onnx: not an ONNX model"):
        load_spec(junk)
    with pytest.raises(ModelError, match="not found"):
        load_spec(tmp_path / "missing.onnx")


def test_a_float16_export_is_refused_saying_how_to_keep_float32_io(tmp_path):
    """A model with float16 inputs and outputs failed at the first batch with the runtime's type error and
    "is this a ReID model?"; every backend feeds float32 crops and reads float32 embeddings."""
    import onnx

    model = onnx.load(str(mean_model(tmp_path / "mean.onnx")))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    onnx.save(model, str(tmp_path / "half.onnx"))
    with pytest.raises(ModelError, match=r"half\.onnx: model input 'images' is float16; .*keep_io_types=True"):
        load_spec(tmp_path / "half.onnx", {"embedding_dim": 3})


def test_spec_validation_and_fingerprint():
    with pytest.raises(ModelError, match="color_order"):
        ModelSpec(color_order="YUV")
    for scale in (0.0, -1.0, float("inf")):
        with pytest.raises(ModelError, match=f"pixel_scale must be a finite number > 0, got {scale!r}"):
            ModelSpec(pixel_scale=scale)
    assert ModelSpec().fingerprint() != ModelSpec(std=(1.0, 1.0, 1.0)).fingerprint()
    assert ModelSpec().fingerprint() != ModelSpec(output_normalized=True).fingerprint()
    assert ModelSpec(name="osnet").fingerprint() == ModelSpec(name="reid_v2").fingerprint(), "the name is a label"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"height": float("nan")}, "height and width must be positive integers"),
        ({"height": 256.5}, "height and width must be positive integers"),
        ({"width": float("inf")}, "height and width must be positive integers"),
        ({"width": True}, "height and width must be positive integers"),
        ({"embedding_dim": float("inf")}, "embedding_dim must be a positive integer"),
        ({"embedding_dim": float("nan")}, "embedding_dim must be a positive integer"),
        ({"std": (float("nan"), 1.0, 1.0)}, "mean and std need 3 finite numbers"),
        ({"std": (-1.0, 1.0, 1.0)}, "mean and std need 3 finite numbers"),
        ({"mean": (float("inf"), 0.0, 0.0)}, "mean and std need 3 finite numbers"),
        ({"mean": 5}, "mean and std need 3 finite numbers"),
    ],
)
def test_spec_sizes_must_be_positive_integers_and_mean_std_finite(fields, message):
    with pytest.raises(ModelError, match=message):
        ModelSpec(**fields)


def test_spec_takes_numpy_numbers_and_keeps_them_json_ready():
    import numpy as np

    spec = ModelSpec(pixel_scale=np.float32(1 / 255), height=np.int64(256), mean=np.array([0.485, 0.456, 0.406]))
    assert spec.pixel_scale == pytest.approx(1 / 255) and type(spec.pixel_scale) is float
    assert spec.height == 256 and type(spec.height) is int and spec.mean == (0.485, 0.456, 0.406)
    assert json.loads(json.dumps(spec.to_dict()))["height"] == 256 and spec.fingerprint()


def test_a_renamed_copy_is_the_same_model(osnet_path, tmp_path):
    """A byte-identical copy under a new name has the original's identity; other bytes or another spec do not."""
    copy = tmp_path / "reid_v2.onnx"
    shutil.copyfile(osnet_path, copy)
    original = load_spec(osnet_path)
    with pytest.warns(ModelSpecWarning):
        renamed = load_spec(copy)
    assert renamed.name == "reid_v2" and original.name == "osnet"
    assert model_id(copy, renamed) == model_id(osnet_path, original)
    assert legacy_model_ids(copy, renamed) != legacy_model_ids(osnet_path, original), "the old id hashed the name"
    assert len(legacy_model_ids(osnet_path, original)) == 1, "weights inside the file: the id never changed otherwise"
    assert model_id(copy, load_spec(copy, {"color_order": "BGR"})) != model_id(osnet_path, original)
    other = mean_model(tmp_path / "osnet_tiny.onnx")
    assert model_id(other, load_spec(other)) != model_id(osnet_path, original)


def test_unknown_model_name_without_sidecar_warns_with_the_spec_assumed(tmp_path):
    model = mean_model(tmp_path / "my_reid.onnx")
    with pytest.warns(ModelSpecWarning) as caught:
        spec = load_spec(model)
    assert spec == ModelSpec(name="my_reid", input_name="images", embedding_dim=3, output_name="output")
    message = str(caught[0].message)
    assert "my_reid.onnx: the file name matches no built-in model spec (osnet, reidentificationnet" in message
    assert "assuming OSNet's preprocessing: RGB, pixels / 255, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)" in message
    assert f"write {tmp_path / 'my_reid.json'}" in message and '"color_order": "BGR"' in message
    # A sidecar, a built-in name or explicit overrides: nothing is assumed, no warning.
    named = mean_model(tmp_path / "osnet_small.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelSpecWarning)
        load_spec(named)
        load_spec(model, {"color_order": "RGB"})
        (tmp_path / "my_reid.json").write_text(json.dumps({"color_order": "RGB"}))
        load_spec(model)


def test_a_model_with_its_weights_beside_it_is_another_model_when_they_change(osnet_path, tmp_path):
    """The id hashed only the .onnx file: an unchanged graph file with new weights (ONNX external data) was the same
    model, and one gallery mixed both models' embeddings (cosine 0.33 between their embeddings of one crop)."""
    import onnx
    from onnx import numpy_helper

    from edge_reid.spec import file_sha256, model_sha256

    ids = []
    for name, factor in (("a", 1.0), ("b", 1.5)):
        folder = tmp_path / name
        folder.mkdir()
        model = onnx.load(str(osnet_path))
        first = model.graph.initializer[0]
        first.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(first) * factor, first.name))
        onnx.save(model, str(folder / "osnet_ext.onnx"), save_as_external_data=True, location="weights.bin", size_threshold=0)
        ids.append(model_id(folder / "osnet_ext.onnx", load_spec(folder / "osnet_ext.onnx")))
    assert file_sha256(tmp_path / "a" / "osnet_ext.onnx") == file_sha256(tmp_path / "b" / "osnet_ext.onnx"), "one graph file"
    assert ids[0] != ids[1], "other weights: another model"
    assert model_sha256(osnet_path) == file_sha256(osnet_path), "weights inside the file: its id as before"
    spec = load_spec(tmp_path / "a" / "osnet_ext.onnx")
    graph_file_only = legacy_model_ids(tmp_path / "a" / "osnet_ext.onnx", spec)[-1]
    assert graph_file_only == legacy_model_ids(tmp_path / "b" / "osnet_ext.onnx", spec)[-1] != ids[0], (
        "the id of the last version (the graph file alone) stays an earlier id: its galleries are not refused")
    (tmp_path / "a" / "weights.bin").unlink()
    with pytest.raises(ModelError, match=r"osnet_ext.onnx: .*the weights file is missing: .*weights.bin; keep weights.bin beside"):
        model_sha256(tmp_path / "a" / "osnet_ext.onnx")


def test_the_output_a_sidecar_names_is_the_one_checked(tmp_path):
    """A model whose first output is a feature map and whose embedding is its second: the sidecar's output_name was
    ignored by the shape check ('output fmap has shape (N, 3, 1, 1), not (N, D) embeddings')."""
    from onnx import TensorProto, helper

    from onnx_builders import save_model

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 256, 128])
    fmap = helper.make_tensor_value_info("fmap", TensorProto.FLOAT, ["N", 3, 1, 1])
    emb = helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", 3])
    model = save_model(tmp_path / "two_outputs.onnx", [
        helper.make_node("GlobalAveragePool", ["images"], ["fmap"]),
        helper.make_node("Flatten", ["fmap"], ["emb"]),
    ], [x], [fmap, emb])
    with pytest.raises(ModelError, match=r"2 outputs .* name it in the sidecar .*two_outputs.json"):
        load_spec(model)
    (tmp_path / "two_outputs.json").write_text(json.dumps({"output_name": "fmap"}))
    with pytest.raises(ModelError, match=r"output 'fmap' has shape .* names its embedding's in a sidecar two_outputs.json"):
        load_spec(model)
    (tmp_path / "two_outputs.json").write_text(json.dumps({"output_name": "emb"}))
    spec = load_spec(model)
    assert spec.output_name == "emb" and spec.embedding_dim == 3
    (tmp_path / "two_outputs.json").write_text(json.dumps({"output_name": "embedding"}))
    with pytest.raises(ModelError, match=r"no output called 'embedding'; its outputs are \['fmap', 'emb'\]"):
        load_spec(model)


def test_a_sidecar_embedding_size_the_graph_contradicts_is_refused_naming_the_sidecar(tmp_path):
    model = mean_model(tmp_path / "m.onnx")  # output fixed at 3
    (tmp_path / "m.json").write_text(json.dumps({"embedding_dim": 256}))
    with pytest.raises(ModelError, match=r"m.json: embedding_dim=256 but the model's output 'output' is fixed at 3"):
        load_spec(model)


def test_file_names_choose_only_the_documented_specs():
    """Generic substrings ('reidentification', 'reid_net') chose ReIdentificationNet's preprocessing without a warning,
    e.g. for Intel's person_reidentification_retail_0288.onnx (BGR, 0-255) saved with underscores."""
    intel = builtin_spec_for("person_reidentification_retail_0288.onnx")
    assert intel is BUILTIN_SPECS["person-reidentification-retail"]
    assert builtin_spec_for("resnet50_market1501_aicity156.onnx") is BUILTIN_SPECS["reidentificationnet"]  # NVIDIA's NGC file
    assert builtin_spec_for("my_reid_network.onnx") is None and builtin_spec_for("reidentification_v2.onnx") is None


def test_an_embedding_size_the_graph_does_not_declare_is_asked_for_in_the_sidecar(tmp_path):
    """A valid 3-d model whose graph declares no output shape was refused as 'is this a ReID model? (a person detector
    goes to --detector ...)': the spec's default 512 against the 3 the runtime found."""
    from onnx import TensorProto, helper

    from edge_reid.embedder import Embedder
    from onnx_builders import save_model

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 256, 128])
    undeclared = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
    model = save_model(tmp_path / "nodim.onnx", [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["output"]),
    ], [x], [undeclared])
    (tmp_path / "nodim.json").write_text(json.dumps({"color_order": "RGB"}))
    with pytest.raises(ModelError, match=r"gives 3-value embeddings, but the model's spec says 512: if 3 is right, write it in .*nodim.json"):
        Embedder(model, threads=1)
    (tmp_path / "nodim.json").write_text(json.dumps({"embedding_dim": 3}))
    with Embedder(model, threads=1) as embedder:
        assert embedder.dim == 3


def test_an_unknown_override_is_a_model_error_naming_it(tmp_path):
    """An unknown key in overrides ended in a TypeError from ModelSpec(**fields)."""
    with pytest.raises(ModelError, match=r"unknown spec fields \['colour_order'\] in the overrides"):
        load_spec(mean_model(tmp_path / "m.onnx"), {"colour_order": "BGR"})


def test_a_file_is_hashed_once_until_it_changes(tmp_path, monkeypatch):
    """The model id, its earlier ids and the cache keys each read and hashed the whole model at start-up."""
    import builtins
    import hashlib
    import os

    from edge_reid.spec import file_sha256

    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda file, *a, **k: (opened.append(str(file)), real_open(file, *a, **k))[1])
    assert file_sha256(path) == file_sha256(path) == hashlib.sha256(b"a" * 1000).hexdigest()
    assert opened.count(str(path)) == 1
    path.write_bytes(b"b" * 1000)  # the same size, rewritten: another modification time
    os.utime(path, ns=(1, 10**18))
    assert file_sha256(path) == hashlib.sha256(b"b" * 1000).hexdigest() and opened.count(str(path)) == 2
