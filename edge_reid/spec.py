"""Model descriptions: what an embedding model expects and what it returns.

A ReID model is an ONNX file plus a :class:`ModelSpec`. The spec is resolved in
this order (later wins):

1. a built-in spec chosen by the file name (:data:`BUILTIN_SPECS`),
2. the ONNX graph itself (input name, static height/width, embedding size),
3. a sidecar JSON next to the model: ``model.json`` for ``model.onnx``, holding
   any subset of the :class:`ModelSpec` fields.

A model whose file name matches no built-in spec and that has no sidecar gets
OSNet's preprocessing with a :class:`~edge_reid.errors.ModelSpecWarning` naming
what was assumed and how to write the sidecar.

A model's identity (:func:`model_id`) is the hash of its file's bytes (with the weights
files it refers to, ONNX external data) and of its spec, never its file name: a renamed
copy is the same model, and the same file read with another preprocessing is not.

Preprocessing of a pixel ``p`` in 0..255 of channel ``c`` (in ``color_order``):
``(p * pixel_scale - mean[c]) / std[c]``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_reid.errors import ModelError, ModelSpecWarning, caller_stacklevel
from edge_reid.values import is_integer, is_real


def _is_positive_integer(value: Any) -> bool:
    """An integer (numpy's too) > 0, not a bool."""
    return is_integer(value) and value > 0


def _is_three_finite(values: Any) -> bool:
    """A sequence of 3 finite real numbers."""
    try:
        items = tuple(values)
    except TypeError:
        return False
    return len(items) == 3 and all(is_real(v) and math.isfinite(v) for v in items)


def _plain_number(value: Any) -> Any:
    """A numpy integer or real as Python's int or float; Python's own numbers unchanged."""
    if type(value) in (int, float):
        return value
    return int(value) if is_integer(value) else float(value)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """What an embedding model takes and gives.

    Attributes:
        name: human-readable model name.
        input_name: name of the image input tensor, shape (N, 3, height, width).
        height: input height in pixels.
        width: input width in pixels.
        color_order: ``"RGB"`` or ``"BGR"``: channel order the model expects.
        pixel_scale: factor applied to 0..255 pixels before mean/std (1/255 or 1.0).
        mean: per-channel mean, in ``color_order``, after scaling.
        std: per-channel standard deviation, in ``color_order``, after scaling.
        embedding_dim: length D of the output embedding.
        output_normalized: True when the model already L2-normalises its output.
        output_name: name of the embedding output ("" = the model's only output; a model with several needs it).

    Raises:
        ModelError: a colour order other than RGB/BGR, a size or ``embedding_dim`` that is not a positive
            integer, a ``pixel_scale`` that is not a finite number > 0, or a mean/std that is not 3 finite
            numbers (std > 0).
    """

    name: str = "custom"
    input_name: str = "images"
    height: int = 256
    width: int = 128
    color_order: str = "RGB"
    pixel_scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    embedding_dim: int = 512
    output_normalized: bool = False
    output_name: str = ""

    def __post_init__(self) -> None:
        if self.color_order not in ("RGB", "BGR"):
            raise ModelError(f"model spec {self.name!r}: color_order must be 'RGB' or 'BGR', got {self.color_order!r}")
        if not (_is_positive_integer(self.height) and _is_positive_integer(self.width)):
            raise ModelError(
                f"model spec {self.name!r}: height and width must be positive integers, got {self.height!r}x{self.width!r}"
            )
        if not (_is_three_finite(self.mean) and _is_three_finite(self.std) and all(s > 0 for s in self.std)):
            raise ModelError(
                f"model spec {self.name!r}: mean and std need 3 finite numbers each, std > 0, "
                f"got mean={self.mean!r} std={self.std!r}"
            )
        if not _is_positive_integer(self.embedding_dim):
            raise ModelError(f"model spec {self.name!r}: embedding_dim must be a positive integer, got {self.embedding_dim!r}")
        if not (is_real(self.pixel_scale) and math.isfinite(self.pixel_scale) and self.pixel_scale > 0):
            raise ModelError(f"model spec {self.name!r}: pixel_scale must be a finite number > 0, got {self.pixel_scale!r}")
        # numpy numbers become Python's, so that the spec stays JSON-ready (to_dict, fingerprint)
        for key in ("height", "width", "embedding_dim", "pixel_scale"):
            object.__setattr__(self, key, _plain_number(getattr(self, key)))
        for key in ("mean", "std"):
            values = getattr(self, key)
            if not (isinstance(values, (tuple, list)) and all(type(v) in (int, float) for v in values)):
                object.__setattr__(self, key, tuple(_plain_number(v) for v in values))

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-ready dict (the sidecar format)."""
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """sha256 hex of the spec's canonical JSON without ``name``: part of a model's identity.

        ``name`` is a label; every other field changes what the model is given or
        what is read from it, so two specs with one fingerprint embed alike.
        """
        fields = {key: value for key, value in self.to_dict().items() if key != "name"}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


#: Specs known by name. Keys are matched against the lower-cased model file name, ``_`` read as ``-``.
BUILTIN_SPECS: dict[str, ModelSpec] = {
    # torchreid OSNet (K. Zhou et al., ICCV 2019): RGB, /255, ImageNet mean/std, 512-d.
    "osnet": ModelSpec(name="osnet", input_name="images", embedding_dim=512),
    # NVIDIA TAO ReIdentificationNet (ResNet50 + BNNeck), model card: RGB, mean
    # 0.485/0.456/0.406, std 0.226, 256x128, 256-d.
    "reidentificationnet": ModelSpec(
        name="reidentificationnet", input_name="input", std=(0.226, 0.226, 0.226), embedding_dim=256
    ),
    # Intel Open Model Zoo person-reidentification-retail-*: BGR, raw 0..255, no normalisation.
    "person-reidentification-retail": ModelSpec(
        name="person-reidentification-retail",
        input_name="data",
        color_order="BGR",
        pixel_scale=1.0,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        embedding_dim=256,
    ),
}

#: Other file names of a built-in model, matched like its key: NVIDIA's NGC file of ReIdentificationNet
#: is ``resnet50_market1501.onnx`` (also with a suffix, e.g. ``resnet50_market1501_aicity156.onnx``).
NAME_ALIASES = {
    "resnet50-market1501": "reidentificationnet",
}


def builtin_spec_for(model_path: str | Path) -> ModelSpec | None:
    """The built-in spec whose key (or alias, :data:`NAME_ALIASES`) occurs in the file name, or None.

    The name is lower-cased and its ``_`` read as ``-``, so ``person_reidentification_retail_0288.onnx``
    is Intel's ``person-reidentification-retail`` (BGR, 0-255), not another model's preprocessing.
    """
    stem = Path(model_path).name.lower().replace("_", "-")
    for key, spec in BUILTIN_SPECS.items():
        if key in stem:
            return spec
    for alias, key in NAME_ALIASES.items():
        if alias in stem:
            return BUILTIN_SPECS[key]
    return None


def sidecar_path(model_path: str | Path) -> Path:
    """Path of the sidecar JSON for a model: ``M.json`` beside ``M.onnx``."""
    return Path(model_path).with_suffix(".json")


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes.

    Remembered per file, size and modification time (the model id, the earlier ids, the tuning and
    backend-choice cache keys and the engine key all hash the same model at start-up: a ReID model of
    100 MB is read once, not five times); a file rewritten since is read again.

    Raises:
        OSError: the file cannot be read.
    """
    status = os.stat(path)
    return _sha256_of(os.path.realpath(path), status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_files(model_path: str | Path) -> list[Path]:
    """The files beside an ONNX model that hold its weights (ONNX external data, e.g. ``model.onnx.data``),
    checked to be there; [] when its weights are inside the file.

    Raises:
        ModelError: a weights file the model names is not beside it (names both files and what to do).
    """
    from edge_reid.onnx_graph import external_data_files

    weights = external_data_files(model_path)
    missing = [path for path in weights if not path.is_file()]
    if missing:
        raise ModelError(
            f"{model_path}: its weights are stored outside it (ONNX external data) and the weights file is missing: "
            f"{', '.join(str(p) for p in missing)}; keep {', '.join(p.name for p in missing)} beside {Path(model_path).name} in the same folder "
            "(copy or move them together), or export the model with its weights inside the .onnx file"
        )
    return weights


def embedding_output_name(model_path: str | Path, spec: ModelSpec, outputs: list[str]) -> str:
    """The name of the model's embedding output: ``spec.output_name``, or the model's only output.

    Args:
        model_path: the model (named in errors).
        spec: its spec.
        outputs: the model's output names, in order.

    Raises:
        ModelError: no output of that name; several outputs and the spec names none (a torchreid export in
            training mode gives logits and features: which is the embedding is not guessed).
    """
    if spec.output_name:
        if spec.output_name not in outputs:
            raise ModelError(f"{model_path}: no output named {spec.output_name!r} (outputs: {outputs})")
        return spec.output_name
    if len(outputs) != 1:
        raise ModelError(
            f"{model_path}: the model has {len(outputs)} outputs ({', '.join(map(repr, outputs))}) and its spec names "
            f"none as the embedding: give the spec's output_name (a sidecar line such as {json.dumps({'output_name': outputs[-1]})}, "
            "or ModelSpec(output_name=...) in Python)"
        )
    return outputs[0]


def model_sha256(model_path: str | Path) -> str:
    """sha256 hex of an ONNX model's bytes: the file's own (:func:`file_sha256`) when its weights are
    inside it; with weights in separate files (ONNX external data), of the file's and each weights
    file's, so that new weights beside an unchanged graph file are another model.

    Raises:
        ModelError: a weights file it names is missing (:func:`weights_files`).
        OSError: the file, or a weights file it names, cannot be read.
    """
    own = file_sha256(model_path)
    weights = weights_files(model_path)
    if not weights:
        return own
    digest = hashlib.sha256(own.encode())
    for path in weights:
        digest.update(f"|{path.name}:{file_sha256(path)}".encode())
    return digest.hexdigest()


def model_id(model_path: str | Path, spec: ModelSpec) -> str:
    """A model's identity: sha256 hex of :func:`model_sha256` and :meth:`ModelSpec.fingerprint`.

    Embeddings are comparable only under one id. The file name plays no part.

    Raises:
        ModelError: a weights file it names is missing (:func:`weights_files`).
        OSError: the file, or a weights file it names, cannot be read.
    """
    return hashlib.sha256((model_sha256(model_path) + spec.fingerprint()).encode()).hexdigest()


def legacy_model_ids(model_path: str | Path, spec: ModelSpec) -> tuple[str, ...]:
    """The ids earlier versions of edge-reid gave a model: galleries they saved are recognised by them.

    - Before 2026-11-30 the id also hashed the spec's ``name`` (the file name for models without a
      built-in spec).
    - Until 2026-12-01 it hashed the ``.onnx`` file alone, also for a model whose weights are in separate
      files (ONNX external data; for the others it is :func:`model_id` itself, so it is left out). Such a
      gallery cannot tell which weights made it: it is taken as this model's, as that version took it.

    Raises:
        ModelError: a weights file it names is missing (:func:`weights_files`).
        OSError: the file cannot be read.
    """
    own = file_sha256(model_path)
    spec_json = json.dumps(spec.to_dict(), sort_keys=True).encode()
    ids = [hashlib.sha256((own + hashlib.sha256(spec_json).hexdigest()).encode()).hexdigest()]
    if model_sha256(model_path) != own:
        ids.append(hashlib.sha256((own + spec.fingerprint()).encode()).hexdigest())
    return tuple(ids)


def _assumed_spec_message(path: Path, spec: ModelSpec) -> str:
    known = ", ".join(BUILTIN_SPECS)
    mean = ", ".join(f"{v:g}" for v in spec.mean)
    std = ", ".join(f"{v:g}" for v in spec.std)
    scale = "/ 255" if abs(spec.pixel_scale - 1.0 / 255.0) < 1e-12 else f"x {spec.pixel_scale:g}"
    return (
        f"{path.name}: the file name matches no built-in model spec ({known}) and there is no sidecar "
        f"{sidecar_path(path).name} beside it; assuming OSNet's preprocessing: {spec.color_order}, pixels {scale}, "
        f"mean ({mean}), std ({std}). If the model was trained otherwise, write "
        f"{sidecar_path(path)} with the right values, e.g. "
        '{"color_order": "BGR", "pixel_scale": 1.0, "mean": [0, 0, 0], "std": [1, 1, 1]}'
    )


def _json_kind(value: Any) -> str:
    """The JSON type of a decoded value, for messages."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "boolean" if isinstance(value, bool) else "number"


#: Largest crop height/width a sidecar may give: ReID models take crops of a few hundred pixels (256x128,
#: 384x192); a batch of 4096x4096 crops already takes gigabytes, and a larger value is a typo or a damaged file.
MAX_SIDECAR_SIDE = 4096
#: Largest embedding length a sidecar may give (ReID embeddings have 128 to 2048 values).
MAX_SIDECAR_EMBEDDING_DIM = 65536


def _check_sidecar_values(sidecar: Path, side: dict[str, Any]) -> None:
    """Refuse sidecar values of the wrong JSON type or range, naming the file, the field and the value.

    Raises:
        ModelError: a value of the wrong type, or out of range.
    """

    def bad(key: str, expected: str) -> ModelError:
        return ModelError(f"{sidecar}: {key}={json.dumps(side[key])} is not valid; expected {expected}")

    for key in ("name", "input_name", "output_name"):
        if key in side and not isinstance(side[key], str):
            raise bad(key, "a string")
    if "color_order" in side and side["color_order"] not in ("RGB", "BGR"):
        raise bad("color_order", '"RGB" or "BGR"')
    for key, most in (("height", MAX_SIDECAR_SIDE), ("width", MAX_SIDECAR_SIDE), ("embedding_dim", MAX_SIDECAR_EMBEDDING_DIM)):
        if key in side and not (isinstance(side[key], int) and not isinstance(side[key], bool) and 0 < side[key] <= most):
            raise bad(key, f"a positive integer up to {most}")
    if "pixel_scale" in side:
        value = side["pixel_scale"]
        if not (is_real(value) and math.isfinite(value) and value > 0):
            raise bad("pixel_scale", "a finite number > 0, e.g. 0.00392156862745098 (1/255) or 1.0")
    for key in ("mean", "std"):
        if key not in side:
            continue
        value = side[key]
        if not (isinstance(value, list) and len(value) == 3 and all(is_real(v) and math.isfinite(v) for v in value)):
            raise bad(key, "a list of 3 finite numbers, one per channel, e.g. [0.485, 0.456, 0.406]")
        if key == "std" and any(v <= 0 for v in value):
            raise bad(key, "3 numbers > 0")
    if "output_normalized" in side and not isinstance(side["output_normalized"], bool):
        raise bad("output_normalized", "true or false")


def _graph_io(model_path: Path, output_name: str = "") -> tuple[str, list[int | str], str, list[int | str]]:
    """(input name, input dims, output name, output dims) read from the ONNX graph: the output called
    ``output_name``, or the only one.

    Raises:
        ModelError: not an ONNX model, no inputs/outputs, no output called ``output_name``, several
            outputs and no ``output_name`` (which is the embedding is not guessed), or the input or
            that output is not float32 (a float16 export, say).
    """
    import onnx

    from edge_reid.onnx_graph import load_onnx

    graph = load_onnx(model_path, hint="pass an .onnx file exported from your ReID network").graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs or not graph.output:
        raise ModelError(f"{model_path}: ONNX file has no graph inputs/outputs; is it a model?")

    def dims(value_info) -> list[int | str]:
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value_info.type.tensor_type.shape.dim]

    output = graph.output[0]
    if len(graph.output) > 1 and not output_name:
        # a torchreid export in training mode gives (logits, features): the first is no embedding
        listed = ", ".join(f"{o.name!r} ({', '.join(map(str, dims(o)))})" for o in graph.output)
        choices = " or ".join(json.dumps({"output_name": o.name}) for o in graph.output)
        raise ModelError(
            f"{model_path}: the model has {len(graph.output)} outputs ({listed}) and nothing says which is the embedding; "
            f"name it in the sidecar {sidecar_path(model_path)}: {choices} "
            "(in Python: load_spec(path, {\"output_name\": ...}) given to Embedder(spec=...))"
        )
    if output_name:
        output = next((o for o in graph.output if o.name == output_name), None)
        if output is None:
            raise ModelError(f"{model_path}: no output called {output_name!r}; its outputs are {[o.name for o in graph.output]}")
    for kind, value_info in (("input", inputs[0]), ("output", output)):
        elem_type = value_info.type.tensor_type.elem_type
        if elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.UNDEFINED):
            raise ModelError(
                f"{model_path}: model {kind} {value_info.name!r} is {onnx.TensorProto.DataType.Name(elem_type).lower()}; "
                "edge-reid feeds float32 crops and reads float32 embeddings on every backend. Keep the inputs and outputs "
                "float32 and reduce precision inside: onnxconverter_common.float16.convert_float_to_float16(model, "
                "keep_io_types=True), or `edge-reid calibrate --precision fp16`"
            )
    return inputs[0].name, dims(inputs[0]), output.name, dims(output)


def _read_sidecar(sidecar: Path) -> dict[str, Any]:
    """A sidecar spec's fields, checked (:func:`_check_sidecar_values`).

    Raises:
        ModelError: not valid JSON (or nested too deeply), not a JSON object, unknown fields, or a value of the
            wrong type or range (height/width above :data:`MAX_SIDECAR_SIDE`, embedding_dim above
            :data:`MAX_SIDECAR_EMBEDDING_DIM`).
    """
    try:
        side = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON, or a number of over 4300 digits
        raise ModelError(f"{sidecar}: sidecar spec is not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelError(f"{sidecar}: sidecar spec is not valid: JSON nested too deeply") from None
    if not isinstance(side, dict):
        raise ModelError(f"{sidecar}: sidecar spec must be a JSON object of spec fields, got a JSON "
                         f"{_json_kind(side)}; e.g. " '{"color_order": "BGR", "pixel_scale": 1.0}')
    known = {field.name for field in dataclasses.fields(ModelSpec)}
    unknown = set(side) - known
    if unknown:
        raise ModelError(f"{sidecar}: unknown spec fields {sorted(unknown)}; known: {sorted(known)}")
    _check_sidecar_values(sidecar, side)
    return side


def load_spec(model_path: str | Path, overrides: dict[str, Any] | None = None) -> ModelSpec:
    """Resolve the :class:`ModelSpec` of an ONNX embedding model and check its input.

    Args:
        model_path: path to the ``.onnx`` file.
        overrides: optional field values that win over everything else.

    Returns:
        The spec, with input name, size and embedding size taken from the graph
        where the graph fixes them.

    Warns:
        ModelSpecWarning: no built-in spec matches the file name, and there is no
            sidecar and no ``overrides``: OSNet's preprocessing is assumed.

    Raises:
        ModelError: the file is missing (or cannot be looked up), a folder or not an ONNX model; a weights file it names (ONNX external
            data) is not beside it; the input is not rank 4 with 3 channels, or looks channels-last (N, H, W, 3);
            the model has several outputs and neither the sidecar nor ``overrides`` gives ``output_name``;
            the input or output is not float32; the output is not (N, D) (a detector, say); a
            static height/width disagrees with the
            sidecar; the sidecar is not valid JSON, not a JSON object, names unknown
            fields, or holds a value of the wrong type or range (e.g. a
            ``pixel_scale`` that is not a finite number > 0, a ``mean`` that is
            not 3 numbers); ``overrides`` names a field :class:`ModelSpec` does not have,
            or holds a value :class:`ModelSpec` refuses.
    """
    path = Path(model_path)
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
    except OSError as exc:  # a name too long for the file system, a folder on the way that cannot be searched
        raise ModelError(f"{path}: cannot read the model file ({exc.strerror or exc}); give an .onnx file (--model PATH, "
                         "or model_path= in Python)") from None
    if not is_file:
        if is_dir:
            raise ModelError(f"{path} is a folder, not a model file; give an .onnx file (--model PATH, or model_path= in Python)")
        raise ModelError(f"model file not found: {path}; give an .onnx file (--model PATH, or model_path= in Python)")
    weights_files(path)
    sidecar = sidecar_path(path)
    side = _read_sidecar(sidecar) if sidecar.is_file() else None
    wanted_output = str((overrides or {}).get("output_name") or (side or {}).get("output_name") or "")
    input_name, in_dims, output_name, out_dims = _graph_io(path, wanted_output)
    if len(in_dims) != 4:
        raise ModelError(f"{path}: model input {input_name!r} has rank {len(in_dims)} ({in_dims}); a ReID model takes (N, 3, H, W)")
    if in_dims[3] == 3 and in_dims[1] != 3:  # (N, H, W, 3): read as NCHW, it would be crops 3 pixels wide
        raise ModelError(
            f"{path}: model input {input_name!r} has shape ({', '.join(map(str, in_dims))}): it looks channels-last (N, H, W, 3), "
            "but edge-reid feeds channels-first crops (N, 3, H, W); export the model with an NCHW input (N, 3, H, W) "
            "(e.g. tf2onnx --inputs-as-nchw for a TensorFlow/Keras model)"
        )
    if isinstance(in_dims[1], int) and in_dims[1] != 3:
        raise ModelError(f"{path}: model input {input_name!r} has {in_dims[1]} channels; expected 3 (N, 3, H, W)")
    sizes = {"height": (in_dims[2], MAX_SIDECAR_SIDE), "width": (in_dims[3], MAX_SIDECAR_SIDE)}
    if len(out_dims) == 2:
        sizes["embedding_dim"] = (out_dims[1], MAX_SIDECAR_EMBEDDING_DIM)
    for key, (value, most) in sizes.items():  # a damaged or crafted graph: buffers of this size would be allocated
        if isinstance(value, int) and value > most:
            raise ModelError(f"{path}: the model's {key} is {value}, above {most}: not a ReID model's, or a damaged file")
    if out_dims and len(out_dims) != 2:  # before any advice on its preprocessing: this is no embedding model
        raise ModelError(
            f"{path}: output {output_name!r} has shape {tuple(out_dims)}, not (N, D) embeddings: is this a ReID model? "
            "(a person detector goes to --detector, or to PersonDetector in Python; a model with several outputs "
            f"names its embedding's in a sidecar {sidecar.name}: " '{"output_name": "..."})'
        )

    builtin = builtin_spec_for(path)
    fields: dict[str, Any] = dataclasses.asdict(builtin or ModelSpec(name=path.stem))
    fields["input_name"] = input_name
    fields["output_name"] = output_name
    if isinstance(in_dims[2], int) and in_dims[2] > 0:
        fields["height"] = in_dims[2]
    if isinstance(in_dims[3], int) and in_dims[3] > 0:
        fields["width"] = in_dims[3]
    graph_dim = out_dims[1] if len(out_dims) == 2 and isinstance(out_dims[1], int) and out_dims[1] > 0 else None
    if graph_dim is not None:
        fields["embedding_dim"] = graph_dim

    if builtin is None and side is None and not overrides:
        warnings.warn(_assumed_spec_message(path, ModelSpec()), ModelSpecWarning, stacklevel=caller_stacklevel())
    if side is not None:
        fixed = {"height": in_dims[2], "width": in_dims[3], "embedding_dim": graph_dim}
        for key, graph_value in fixed.items():
            if key in side and isinstance(graph_value, int) and graph_value > 0 and side[key] != graph_value:
                where = f"input {input_name!r}" if key != "embedding_dim" else f"output {output_name!r}"
                raise ModelError(f"{sidecar}: {key}={side[key]} but the model's {where} is fixed at {graph_value}")
        fields.update(side)
    unknown = set(overrides or {}) - set(fields)
    if unknown:
        raise ModelError(f"{path}: unknown spec fields {sorted(unknown)} in the overrides; known: {sorted(fields)}")
    fields.update(overrides or {})
    for key in ("mean", "std"):
        if isinstance(fields[key], (list, tuple)):  # anything else, or a value that is no number, ModelSpec refuses
            fields[key] = tuple(float(v) if is_real(v) else v for v in fields[key])
    return ModelSpec(**fields)
