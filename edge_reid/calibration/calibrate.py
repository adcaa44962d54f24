"""``edge-reid calibrate`` as a function: calibrate, quantize, guard the accuracy, write model + table + report.

Phases (each timed in the report):

1. read the inputs: calibration crops (``bounding_box_train/`` or a plain crop
   folder, seeded sample), the labelled split, the crop pool and its split into
   a selection half and a held-out half;
2. measure FP32 on the labelled split and the pool: the reference for everything;
3. prepare the float model (opset 13, input normalisation folded into the first
   conv, channels equalized if asked): exact in float, easier to quantize;
4. calibrate activation ranges once (MSE-optimal per tensor by default), scale each by the
   factor (0.8-1.5) with which its quantizer alone moves the selection crops' embeddings least,
   centre the non-negative inputs of convolutions (exact in float: 255 INT8 levels instead of 128), then round
   the INT8 weights with GPTQ and correct the biases for the remaining mean shift;
5. quantize every Conv/Gemm except the pooled-input ones; when that is outside the
   budget, rank layers by measured sensitivity per multiply-add and let the guard
   choose float layers on the selection split and prove them on the held-out split;
   then, each change only where it still passes both splits, float holes in INT8 regions
   go INT8, isolated small INT8 layers go float, and the INT8 regions grow into their
   float neighbours;
6. write the chosen Q/DQ model, its spec sidecar, the TensorRT table and the report.

FP16 skips 3-5: it converts and measures.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from edge_reid.atomic import interrupts_held, write_json_atomic
from edge_reid.calibration.activations import collect_statistics, mse_optimal_amax
from edge_reid.calibration.bias_correction import LayerError, apply_bias_shifts, measure_layer_errors
from edge_reid.calibration.centring import CENTRED_LEVELS, centrable_inputs, centre_inputs, centred_name, uncentre_float_readers
from edge_reid.calibration.fp16 import convert_fp16
from edge_reid.calibration.gptq import apply_gptq_weights, gptq_weights
from edge_reid.calibration.guard import CHECKPOINT_LAYER_STEP, CHECKPOINT_MAC_STEP, AccuracyBudget, Measurement, search_float_layers
from edge_reid.calibration.pool import check_pool_source, load_pool, split_pool
from edge_reid.calibration.qdq import (
    QuantRecipe,
    calibrate_ranges,
    layer_macs,
    pooled_input_layers,
    precision_boundaries,
    float_holes,
    int8_islands,
    region_edges,
    quantizable_nodes,
    quantize_qdq,
    upgrade_opset,
)
from edge_reid.calibration.reader import preprocess_all, preprocessed_batches
from edge_reid.calibration.report import CalibrationReport
from edge_reid.calibration.range_choice import ActivationQuantizer, activation_quantizers, choose_factors, range_distances
from edge_reid.calibration.sensitivity import layer_sensitivity
from edge_reid.calibration.tensorrt_table import tensors_for_table, write_tensorrt_table
from edge_reid.calibration.transforms import equalization_groups, equalize_channels, fold_input_normalisation
from edge_reid.crop_pool import CropPool, spread
from edge_reid.data.images import describe_skipped, read_images
from edge_reid.data.market1501 import (
    GALLERY_DIR, QUERY_DIR, MarketDataset, calibration_order, calibration_skipped, calibration_source, load_market1501,
)
from edge_reid.errors import DataError, ModelError
from edge_reid.evaluation.agreement import compare_embeddings
from edge_reid.evaluation.market_eval import MarketEvaluation, embed_crops, evaluate_market
from edge_reid.onnx_graph import is_qdq_model, load_onnx, only_output
from edge_reid.output_paths import check_writable, check_writable_folder
from edge_reid.spec import ModelSpec, load_spec

#: Start a progress phase: (description, total or None) -> advance(n) callback.
ProgressFactory = Callable[[str, "int | None"], Callable[[int], None]]
#: Fewer calibration crops than this draws a warning: activation ranges and per-layer
#: sensitivities from a few dozen crops describe those crops, not the camera's people
#: (NNCF's default calibration subset is 300; TensorRT's guide suggests ~500 images).
MIN_CALIBRATION_IMAGES = 100
#: Factors tried on each activation range (``CalibrationSettings.range_scales``): about 10% apart
#: (a geometric grid) around 1.0, the method's own range; narrower down to 0.8 (the camera's
#: people may be tamer than the calibration crops), wider up to 1.5 (clipping is systematic
#: error that pooling does not average away; 1.5x the step is 2.25x the rounding noise power).
RANGE_SCALES = (0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5)


def _no_progress(description: str, total: int | None) -> Callable[[int], None]:
    return lambda n: None


@dataclass
class CalibrationSettings:
    """Options of :func:`calibrate_model` (the CLI flags).

    Attributes:
        precision: ``"int8"`` (Q/DQ model + TensorRT table) or ``"fp16"``.
        method: activation range method for INT8: mse, minmax, percentile or entropy.
        images: calibration crops to use (fewer when the source has fewer).
        seed: seed of the calibration sample.
        pool: crop folder or video for the agreement check (None: the data's query+gallery crops).
        pool_size: most pool crops (split in half: selection and held-out).
        budget: the accuracy budget, checked on both splits.
        sensitivity_images: selection-half pool crops used for per-layer sensitivity (all layers in one pass).
        rounding_images: calibration crops for GPTQ's Hessians and bias correction (the GPTQ
            paper uses 128 samples).
        batch: embedding batch size (the same as ``edge-reid eval``'s default, so numbers match).
        threads: ONNX Runtime threads (None: its default).
        fold_input: fold the input normalisation into the first conv (input quantizes exactly).
        equalize: rescale channels between convolutions before calibrating (off by default:
            no fidelity gain measured on OSNet with per-channel weights and MSE ranges,
            see docs/calibration.md).
        centre_activations: guarded convolutions without padding read their non-negative inputs
            (ReLU outputs, pools and sums of them) shifted to be centred on zero, the shift folded
            into their biases: symmetric INT8 then uses all 255 levels instead of 128 (exact in float,
            one ``Sub`` per tensor; see :mod:`edge_reid.calibration.centring`).
        range_scales: factors tried on each activation quantizer's range (the input folded to
            integers excepted): each range becomes its own factor, the one whose quantizer alone
            moves the embeddings of the selection crops least (``sensitivity_images`` of them;
            :mod:`edge_reid.calibration.range_choice`); one factor: every quantizer's range times
            it (``(1.0,)``: the method's ranges as they are). Ranges no quantizer uses (tensors
            INT8 layers only write, in the TensorRT table) stay the method's.
        gptq: GPTQ rounding of the INT8 weights (instead of round-to-nearest).
        bias_correction: correct each INT8 layer's bias for its mean output shift.
        heldout_block: consecutive pool crops kept together on one side of the split.
    """

    precision: str = "int8"
    method: str = "mse"
    images: int = 500
    seed: int = 0
    pool: str | Path | None = None
    pool_size: int = 500
    budget: AccuracyBudget = field(default_factory=AccuracyBudget)
    sensitivity_images: int = 64
    rounding_images: int = 128
    batch: int = 32
    threads: int | None = None
    fold_input: bool = True
    equalize: bool = False
    centre_activations: bool = True
    range_scales: tuple[float, ...] = RANGE_SCALES
    gptq: bool = True
    bias_correction: bool = True
    heldout_block: int = 25


def output_paths(model_path: Path, out_dir: Path, precision: str) -> dict[str, Path]:
    """Where :func:`calibrate_model` writes: model, spec sidecar, report (and the TensorRT table for INT8)."""
    stem = model_path.stem
    if precision == "int8":
        model = out_dir / f"{stem}-int8-qdq.onnx"
        paths = {"model": model, "spec": model.with_suffix(".json"), "tensorrt_table": out_dir / f"{stem}-int8.calib"}
    else:
        model = out_dir / f"{stem}-fp16.onnx"
        paths = {"model": model, "spec": model.with_suffix(".json")}
    paths["report"] = out_dir / f"{stem}-{precision}-report.json"
    return paths


def _has_labelled_split(data_dir: Path) -> bool:
    return (data_dir / QUERY_DIR).is_dir() and (data_dir / GALLERY_DIR).is_dir()


class _Evaluator:
    """Measures model files against the FP32 reference with the Embedder (``run``'s and ``eval``'s code path).

    The pool is split once: candidates are chosen on the selection half and
    proven on the held-out half (plus the labelled split, where there is one).
    """

    def __init__(
        self, dataset: MarketDataset | None, pool: CropPool, settings: CalibrationSettings, progress: ProgressFactory
    ) -> None:
        self.dataset, self.pool, self.settings, self.progress = dataset, pool, settings, progress
        self.split = split_pool(len(pool.crops), settings.heldout_block, pool.frames)
        self.selection, self.heldout = self.split.selection, self.split.heldout
        self.reference_labelled: MarketEvaluation | None = None
        self.reference_pool: np.ndarray | None = None

    def selection_crops(self, count: int) -> list[np.ndarray]:
        """Up to ``count`` crops of the selection half, evenly spread over it (in source order)."""
        return [self.pool.crops[i] for i in spread(list(self.selection), count)]

    def _embed_pool(self, embedder, indices: np.ndarray, advance: Callable[[int], None]) -> np.ndarray:
        parts = []
        for start in range(0, len(indices), 256):
            chunk = [self.pool.crops[i] for i in indices[start : start + 256]]
            parts.append(embed_crops(embedder, chunk))
            advance(len(chunk))
        return np.concatenate(parts)

    def _embedder(self, model_path: Path, spec: ModelSpec):
        from edge_reid.embedder import Embedder

        return Embedder(model_path, max_batch=self.settings.batch, threads=self.settings.threads, spec=spec)

    def reference(self, model_path: Path, spec: ModelSpec) -> None:
        embedder = self._embedder(model_path, spec)
        labelled_count = len(self.dataset.query) + len(self.dataset.gallery) if self.dataset else 0
        advance = self.progress("FP32 reference", labelled_count + len(self.pool.crops))
        try:
            self.reference_labelled = evaluate_market(embedder, self.dataset, on_progress=advance) if self.dataset else None
            self.reference_pool = self._embed_pool(embedder, np.arange(len(self.pool.crops)), advance)
        finally:
            embedder.close()

    def measure(self, model_path: Path, spec: ModelSpec, float_layers: tuple[str, ...], split: str, description: str) -> Measurement:
        """Compare ``model_path`` with FP32 on ``split`` (``"selection"`` or ``"held-out"``, the latter with the labelled split)."""
        indices = self.selection if split == "selection" else self.heldout
        labelled_here = self.dataset is not None and split == "held-out"
        total = len(indices) + (len(self.dataset.query) + len(self.dataset.gallery) if labelled_here else 0)
        advance = self.progress(description, total)
        embedder = self._embedder(model_path, spec)
        try:
            labelled = evaluate_market(embedder, self.dataset, on_progress=advance) if labelled_here else None
            pool = self._embed_pool(embedder, indices, advance)
        finally:
            embedder.close()
        agreement = compare_embeddings(self.reference_pool[indices], pool)
        map_drop = None
        if labelled is not None and self.reference_labelled is not None:
            map_drop = 100.0 * (self.reference_labelled.scores.mAP - labelled.scores.mAP)
        return Measurement(
            float_layers=float_layers,
            split=split,
            mean_cosine=agreement.mean_cosine,
            p1_cosine=agreement.p1_cosine,
            top1_agreement=agreement.top1,
            top5_agreement=agreement.top5,
            map_drop=map_drop,
            details={"labelled": labelled, "agreement": agreement, "path": model_path},
        )


def _write_sidecar(spec: ModelSpec, path: Path) -> None:
    """The calibrated model's spec sidecar: the FP32 model's spec, ``output_name`` included (the
    embedding output of a model that had several); the input name is read from the graph."""
    fields = spec.to_dict()
    fields.pop("input_name", None)
    write_json_atomic(path, fields)


def _check_dynamic_batch(model_path: Path, spec: ModelSpec) -> None:
    """Refuse, before any work, a model whose batch is fixed: INT8 calibration runs batches of crops.

    Raises:
        ModelError: the image input's first dimension is a fixed number (names the model and what to do).
    """
    graph = load_onnx(model_path, hint="pass an .onnx file exported from your ReID network").graph
    image = next((value for value in graph.input if value.name == spec.input_name), None)
    dims = image.type.tensor_type.shape.dim if image is not None else []
    if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
        raise ModelError(
            f"{model_path}: the model's batch is fixed at {dims[0].dim_value} (input {spec.input_name!r}); INT8 "
            "calibration runs batches of crops through it. Export it with a dynamic batch axis (PyTorch: "
            f"torch.onnx.export(..., dynamic_axes={{{spec.input_name!r}: {{0: 'batch'}}, {spec.output_name!r}: {{0: 'batch'}}}})), "
            "or use --precision fp16, which takes a fixed batch"
        )


def _read_calibration_crops(
    source: Path, order: list[Path], settings: CalibrationSettings, report: CalibrationReport, log: Callable[[str], None]
):
    """Phase 1a: the seeded calibration sample (the first readable images of ``order``, files of the
    folder ``source``); warns (and records) when it is too small to trust. The report's ``skipped``
    lists the images that could not be read and the folder's other files and subfolders."""
    crops, used, skipped = read_images(order, limit=settings.images)
    skipped = calibration_skipped(source) + list(skipped)
    if not crops:
        raise DataError(f"{source}: no readable calibration image (skipped {describe_skipped(skipped, 3)})")
    report.calibration = {
        "source": str(source),
        "seed": settings.seed,
        "requested": settings.images,
        "count": len(crops),
        "images": [str(p.relative_to(source)) for p in used],
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in skipped],
    }
    if len(crops) < MIN_CALIBRATION_IMAGES:
        warning = (
            f"only {len(crops)} calibration crops in {source}; at least {MIN_CALIBRATION_IMAGES} are needed for ranges "
            f"and sensitivities that hold on other people: add crops or raise --images"
        )
        report.calibration["warning"] = warning
        log(f"warning: {warning}")
    return crops


@dataclass
class _PreparedModel:
    """The float model that is quantized: exact rewrite of the input model (same input and preprocessing);
    ``integer_tensors`` hold integers in [-128, 127] (INT8 at scale 1 is exact). ``fp32`` is the input
    model as given (the network TensorRT 8's implicit INT8 calibrates: the table's names);
    ``fp32_ranges`` the ranges of its tensors whose values the prepared model rescaled (equalization),
    measured on their FP32 values."""

    model: onnx.ModelProto
    spec: ModelSpec
    path: Path
    transforms: dict
    integer_tensors: list[str]
    fp32: onnx.ModelProto
    fp32_ranges: dict[str, float] = field(default_factory=dict)


def _prepare_float_model(original: onnx.ModelProto, spec: ModelSpec, crops, settings: CalibrationSettings, tmp: Path, progress) -> _PreparedModel:
    """Phase 3: opset 13, input normalisation folded into the first conv, channels equalized (exact in float)."""
    model = upgrade_opset(original)
    transforms: dict = {"opset": max(next((i.version for i in original.opset_import if i.domain in ("", "ai.onnx")), 0), 13)}
    integer_tensors: list[str] = []
    fp32_ranges: dict[str, float] = {}
    if settings.fold_input:
        try:
            model, integer_input = fold_input_normalisation(model, spec)
            integer_tensors.append(integer_input)
            transforms["input_folded"] = f"first conv reads {integer_input} = pixel - 128 (INT8 scale 1: exact)"
        except ModelError as exc:
            transforms["input_folded"] = f"no: {exc}"
    if settings.equalize:
        groups = equalization_groups(model)
        sample = preprocess_all(crops[: settings.rounding_images], spec, settings.batch)
        advance = progress("equalizing channels", len(sample))
        # Every tensor a group may rescale, on its FP32 values: the table names FP32 tensors.
        rescalable = sorted(set().union(*(_rescaled_tensors(model, group) for group in groups)))
        stats = collect_statistics(model, sample, spec.input_name, rescalable, per_channel=True, threads=settings.threads, on_batch=advance)
        model, done = equalize_channels(model, {g.tensor: stats[g.tensor].channel_absmax for g in groups})
        transforms["equalized"] = {"groups": len(done), "alpha": 0.75, "floor": 0.05}
        for group in done:
            for name in _rescaled_tensors(model, group):
                fp32_ranges[name] = mse_optimal_amax(stats[name].histogram, stats[name].hist_range, absmax=stats[name].absmax)
    path = tmp / "float_prepared.onnx"
    onnx.save(model, str(path))
    return _PreparedModel(model, spec, path, transforms, integer_tensors, original, fp32_ranges)


def _rescaled_tensors(model: onnx.ModelProto, group) -> set[str]:
    """The tensors an equalization group rescales: its producer's output and the outputs on its path."""
    names = {group.producer, *group.path}
    return {out for node in model.graph.node if node.name in names for out in node.output}


def _calibrate_amax(prepared: _PreparedModel, crops, layers: list[str], settings: CalibrationSettings, recipe: QuantRecipe, progress) -> tuple[dict[str, float], dict]:
    """Phase 4: (tensor name -> symmetric INT8 range for every tensor a quantizable layer reads or
    writes, tensor name -> its :class:`TensorStatistics` where the method collects them (mse))."""
    spec = prepared.spec
    stats: dict = {}
    if recipe.method == "mse":
        needed, _ = tensors_for_table(prepared.model, layers)
        # and the tensors the FP32 model's table needs that the prepared model computes unchanged under the
        # same name (the first conv's output, which folding moved behind its offset Add, and its ReLU's)
        produced = {out for node in prepared.model.graph.node for out in node.output}
        needed |= tensors_for_table(prepared.fp32, layers)[0] & produced
        images = preprocess_all(crops, spec, settings.batch)
        advance = progress("calibrating (mse)", len(images))
        stats = collect_statistics(prepared.model, images, spec.input_name, sorted(needed), threads=settings.threads, on_batch=advance)
        amax = {name: mse_optimal_amax(s.histogram, s.hist_range, absmax=s.absmax) for name, s in stats.items()}
    else:
        advance = progress(f"calibrating ({recipe.method})", len(crops))
        amax = calibrate_ranges(prepared.path, preprocessed_batches(crops, spec, settings.batch), spec.input_name, recipe, on_batch=advance)
    for name in prepared.integer_tensors:
        amax[name] = 127.0  # integers -128..127 at scale 1: exact
    return amax, stats


def _centred_ranges(prepared: _PreparedModel, amax: dict[str, float], stats: dict, guarded: list[str]) -> tuple[dict[str, list[str]], dict[str, float]]:
    """(tensor -> the guarded convolutions without padding that can read it centred, tensor -> its
    [0, a] range: MSE-optimal in 254 steps on the same histogram, else the method's range)."""
    readers = centrable_inputs(prepared.model, guarded)
    top = {
        tensor: mse_optimal_amax(stats[tensor].histogram, stats[tensor].hist_range, levels=2 * CENTRED_LEVELS, absmax=stats[tensor].absmax)
        if tensor in stats else amax[tensor]
        for tensor in readers
    }
    return readers, top


def _centre_activations(prepared: _PreparedModel, amax: dict[str, float], readers: dict[str, list[str]], top: dict[str, float], path: Path) -> _PreparedModel:
    """Phase 4b: the ``readers`` read their non-negative inputs centred (exact in float; 255 INT8
    levels instead of 128, see :mod:`edge_reid.calibration.centring`), each tensor over [0, ``top``];
    adds the centred tensors' ranges to ``amax``. The centred model is saved to ``path``."""
    model, ranges = centre_inputs(prepared.model, top, readers)
    amax.update(ranges)
    onnx.save(model, str(path))
    transforms = dict(prepared.transforms)
    transforms["centred"] = (
        f"{len(ranges)} non-negative tensors centred before INT8 (x - a/2, bias folded) for "
        f"{sum(len(readers[t]) for t in readers if centred_name(t) in ranges)} convolutions: 255 levels instead of 128"
    )
    return replace(prepared, model=model, path=path, transforms=transforms)


@dataclass
class _RangeChoice:
    """What phase 4 makes: the factor of each activation quantizer, the (centred) float model,
    every range, the INT8 weights and bias shifts, and the all-INT8 model's measurement on the
    selection crops."""

    factors: tuple[float, ...]
    quantizers: list[ActivationQuantizer]
    chosen: list[float]
    distances: np.ndarray | None
    prepared: _PreparedModel
    amax: dict[str, float]
    rounding: _WeightRounding
    all_int8: Measurement

    def to_dict(self) -> dict:
        """The report's ``recipe.range_scale``."""
        summary: dict = {
            "factors_tried": list(self.factors),
            "quantizers": len(self.quantizers),
            "chosen": {f"{factor:g}": self.chosen.count(factor) for factor in self.factors},
        }
        if self.distances is not None:
            # Mean cosine distance of each quantizer alone, summed: every range times one factor, then each its own.
            summary["summed_distance_alone"] = {
                **{f"x{factor:g}": round(float(self.distances[:, k].sum()), 7) for k, factor in enumerate(self.factors)},
                "chosen": round(float(self.distances.min(axis=1).sum()), 7),
            }
        summary["selection_mean_cosine_all_int8"] = round(self.all_int8.mean_cosine, 6)
        summary["per_quantizer"] = [
            {"tensor": q.tensor, "centred": q.centred, "readers": len(q.readers), "factor": factor}
            for q, factor in zip(self.quantizers, self.chosen)
        ]
        return summary


def _choose_ranges(
    prepared: _PreparedModel, amax: dict[str, float], stats: dict, guarded, by_rule, recipe: QuantRecipe, crops,
    settings: CalibrationSettings, evaluator: _Evaluator, tmp: Path, progress,
) -> _RangeChoice:
    """Phase 4: each activation quantizer's range times the factor of ``settings.range_scales``
    that moves the selection crops' embeddings least with that quantizer alone (the held-out crops
    are not looked at); then centring, GPTQ and bias correction with those ranges, and the all-INT8
    model measured on the selection crops."""
    readers, top = _centred_ranges(prepared, amax, stats, guarded) if settings.centre_activations else ({}, {})
    quantizers = activation_quantizers(prepared.model, guarded, amax, top, readers, exact=prepared.integer_tensors)
    factors = tuple(settings.range_scales) or (1.0,)
    distances = None
    if len(factors) > 1:
        sample = preprocess_all(evaluator.selection_crops(settings.sensitivity_images), prepared.spec, settings.batch)
        advance = progress(f"activation ranges ({len(quantizers)} quantizers x {len(factors)} factors)", len(sample) * len(factors))
        distances = range_distances(prepared.model, quantizers, factors, sample, prepared.spec.input_name, on_batch=advance, threads=settings.threads)
        chosen = choose_factors(distances, factors)
    else:
        chosen = [factors[0]] * len(quantizers)
    ranges, centred_top = dict(amax), dict(top)
    for quantizer, factor in zip(quantizers, chosen):
        (centred_top if quantizer.centred else ranges)[quantizer.tensor] = factor * quantizer.amax
    candidate = _centre_activations(prepared, ranges, readers, centred_top, tmp / "float_centred.onnx") if settings.centre_activations else prepared
    rounding = _weight_rounding(candidate, ranges, recipe, by_rule, guarded, crops, settings, tmp, progress)
    path = _build_candidate(tmp / "all_int8_rounded.onnx", candidate, ranges, rounding, recipe, by_rule, guarded, (), settings.centre_activations)
    measurement = evaluator.measure(path, candidate.spec, (), "selection", "INT8 check, 0 float layers (selection)")
    return _RangeChoice(factors, quantizers, chosen, distances, candidate, ranges, rounding, measurement)


def _build_candidate(
    path: Path, prepared: _PreparedModel, amax, rounding: _WeightRounding, recipe: QuantRecipe, by_rule, guarded,
    float_layers: tuple[str, ...], centred: bool,
) -> Path:
    """Write the Q/DQ model with ``float_layers`` (and the pooled-input layers) in float, the others
    INT8 with their GPTQ weights and bias shifts; float layers read uncentred inputs."""
    quantize_qdq(prepared.path, path, amax, recipe, keep_float=list(by_rule) + list(float_layers))
    model = rounding.apply(onnx.load(str(path)), [name for name in guarded if name not in set(float_layers)])
    if centred:
        uncentre_float_readers(model)  # float layers read their inputs uncentred again
    onnx.save(model, str(path))
    return path


def calibrate_model(
    model_path: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    settings: CalibrationSettings | None = None,
    progress: ProgressFactory | None = None,
    log: Callable[[str], None] | None = None,
) -> CalibrationReport:
    """Make an INT8 Q/DQ (or FP16) model from an FP32 ReID model and prove its accuracy on held-out crops.

    Args:
        model_path: FP32 ONNX ReID model, (N, 3, H, W) -> (N, D). With several outputs, the one its spec
            names (``output_name``, from its sidecar) is kept and the rest cut away: the written model has
            exactly that output, and its sidecar keeps ``output_name``. INT8 needs a dynamic batch axis.
        data_dir: a Market-1501 folder (calibration crops from ``bounding_box_train/``,
            the labelled check on ``query/`` + ``bounding_box_test/``), or a plain
            folder of person crops (calibration only; no labelled check).
        out_dir: output folder (created).
        settings: options; defaults as the CLI.
        progress: progress-bar factory (see :data:`ProgressFactory`).
        log: receives one line per guard step and warnings.

    Returns:
        The report (also written as JSON next to the model).

    Raises:
        ModelError, DataError, OutputPathError, SourceError: bad inputs, before or during the work (e.g.
            ModelError before any work: INT8 of a model whose batch is fixed).
    """
    settings = settings or CalibrationSettings()
    progress = progress or _no_progress
    log = log or (lambda message: None)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    model_path, data_dir, out_dir = Path(model_path), Path(data_dir), Path(out_dir)
    if settings.precision not in ("int8", "fp16"):
        raise ValueError(f"precision must be int8 or fp16, got {settings.precision!r}")
    spec = load_spec(model_path)
    if is_qdq_model(model_path):
        raise ModelError(
            f"{model_path} is already quantized (it has QuantizeLinear/DequantizeLinear nodes): calibrate the FP32 "
            "model it was made from"
        )
    if settings.precision == "int8":
        _check_dynamic_batch(model_path, spec)
    source = calibration_source(data_dir)  # fails early on a missing folder or a test split
    # Listed once, here: fails early on a folder without a usable crop (FP16 needs no calibration crops).
    order = calibration_order(data_dir, settings.seed) if settings.precision == "int8" else []
    labelled_split = _has_labelled_split(data_dir)
    if settings.pool is not None:
        check_pool_source(settings.pool, source)  # not the calibration crops themselves
    elif not labelled_split:
        raise DataError(
            f"{data_dir}: no {QUERY_DIR}/ and {GALLERY_DIR}/ to compare the model with FP32 on; "
            "give a pool of person crops (--pool: a video or a folder of crops)"
        )
    created_out_dir = not os.path.exists(out_dir)  # a name too long: check_writable_folder says so
    check_writable_folder(out_dir)
    paths = output_paths(model_path, out_dir, settings.precision)
    try:
        for role, path in paths.items():  # a folder or a read-only file in the way: refused now, not after the work
            check_writable(path, f"the {role.replace('_', ' ')} file")
        phase = time.perf_counter()
        dataset = load_market1501(data_dir) if labelled_split else None
        pool = load_pool(settings.pool, dataset, settings.pool_size)
        evaluator = _Evaluator(dataset, pool, settings, progress)
        seconds["pool"] = time.perf_counter() - phase
        report = CalibrationReport(model=str(model_path), precision=settings.precision, budget=settings.budget.to_dict())
        report.pool = {
            "source": pool.source,
            "crops": len(pool.crops),
            "selection_crops": len(evaluator.selection),
            "heldout_crops": len(evaluator.heldout),
            "split": evaluator.split.description(),  # the block split_pool used: single crops for small pools
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in pool.skipped],
        }

        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".edge-reid-calibrate-") as tmp_name:
            tmp = Path(tmp_name)
            phase = time.perf_counter()
            evaluator.reference(model_path, spec)
            seconds["fp32_reference"] = time.perf_counter() - phase
            original = only_output(onnx.load(str(model_path)), spec.output_name, model_path)
            if settings.precision == "fp16":
                best, out_spec = _fp16(original, model_path, tmp, evaluator, spec, settings, report, seconds)
            else:
                best, out_spec = _int8(original, spec, source, order, tmp, evaluator, settings, report, seconds, progress, log)
            if evaluator.reference_labelled is not None:  # its skipped files: the mAPs are over the rest
                report.fp32 = {**evaluator.reference_labelled.scores.to_dict(),
                               "skipped": [{"path": str(s.path), "reason": s.reason} for s in evaluator.reference_labelled.skipped]}
            labelled = best.details["labelled"]
            if labelled is not None:
                # the drop from unrounded mAPs: the guard's number, not a difference of two rounded ones
                report.quantized = labelled.scores.to_dict()
                if best.map_drop is not None:
                    report.quantized["map_drop_points"] = round(best.map_drop, 3)
            report.agreement = best.details["agreement"].to_dict()
            _write_sidecar(out_spec, tmp / "spec.json")
            seconds["total"] = time.perf_counter() - started
            report.seconds = {key: round(value, 2) for key, value in seconds.items()}
            report.outputs = {key: str(value) for key, value in paths.items()}
            report.write_json(tmp / "report.json")
            # Staged in tmp, moved into place together with interrupts held back (a Ctrl-C in between left a new
            # model beside the earlier run's table and report): the model first, the report last.
            with interrupts_held():
                os.replace(best.details["path"], paths["model"])
                os.replace(tmp / "spec.json", paths["spec"])
                if "tensorrt_table" in paths:
                    os.replace(tmp / "table.calib", paths["tensorrt_table"])
                os.replace(tmp / "report.json", paths["report"])
    except BaseException:
        if created_out_dir:  # refused or stopped before writing anything: leave no empty folder behind
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
    return report


def _fp16(original, model_path: Path, tmp: Path, evaluator: _Evaluator, spec: ModelSpec, settings: CalibrationSettings, report, seconds) -> tuple[Measurement, ModelSpec]:
    candidate = convert_fp16(original, tmp / "fp16.onnx", source=model_path)
    phase = time.perf_counter()
    try:
        best = evaluator.measure(candidate, spec, (), "held-out", "FP16 check")
    except ModelError as exc:  # named after the user's model, not the scratch file
        raise ModelError(f"{model_path}: its FP16 conversion does not run: {str(exc).replace(str(candidate), 'the FP16 model')}") from None
    seconds["check"] = time.perf_counter() - phase
    report.recipe = {"conversion": "onnxconverter_common.float16, keep_io_types=True"}
    report.violations = settings.budget.violations(best)
    report.met = not report.violations
    return best, spec


def _describe(log: Callable[[str], None]) -> Callable[[Measurement, bool], None]:
    def describe(m: Measurement, ok: bool) -> None:
        labelled = m.details.get("labelled")
        map_text = f", mAP {100 * labelled.scores.mAP:.2f} (drop {m.map_drop:+.2f})" if labelled is not None else ""
        log(
            f"{len(m.float_layers):3d} float layers, {m.split:9s}: mean cosine {m.mean_cosine:.5f}, 1% {m.p1_cosine:.5f}, "
            f"top-1 {100 * m.top1_agreement:.1f}% (same person {100 * m.details['agreement'].top1_same_person:.1f}%), "
            f"top-5 {100 * m.top5_agreement:.1f}%{map_text} -> {'within budget' if ok else 'outside'}"
        )

    return describe


@dataclass
class _WeightRounding:
    """GPTQ integer weights and bias shifts of every guarded layer, measured once on the all-INT8 model,
    and each layer's own output error (:class:`LayerError`, for the report)."""

    integers: dict
    shifts: dict
    errors: dict[str, LayerError] = field(default_factory=dict)

    def apply(self, model: onnx.ModelProto, int8_layers: list[str]) -> onnx.ModelProto:
        """``model`` (a Q/DQ candidate) with the GPTQ weights and bias shifts of its INT8 layers."""
        model = apply_gptq_weights(model, {name: self.integers[name] for name in int8_layers if name in self.integers})
        return apply_bias_shifts(model, self.shifts, int8_layers)


def _weight_rounding(prepared: _PreparedModel, amax, recipe, by_rule, guarded, crops, settings: CalibrationSettings, tmp: Path, progress) -> _WeightRounding:
    """Phase 4b: GPTQ rounding of the INT8 weights, then bias correction, each layer with its float input."""
    base = quantize_qdq(prepared.path, tmp / "all_int8.onnx", amax, recipe, keep_float=list(by_rule))
    qdq = onnx.load(str(base))
    sample = preprocess_all(crops[: settings.rounding_images], prepared.spec, settings.batch)
    integers: dict = {}
    if settings.gptq:
        advance = progress("GPTQ weight rounding", len(sample))
        integers = gptq_weights(
            prepared.model, qdq, sample, prepared.spec.input_name, amax, guarded, threads=settings.threads, on_batch=advance,
            bias_corrected=settings.bias_correction,
        )
        qdq = apply_gptq_weights(qdq, integers)
    advance = progress("bias correction" if settings.bias_correction else "per-layer error", len(sample))
    convs = [name for name in guarded if name in integers or not settings.gptq]
    errors = measure_layer_errors(
        prepared.model, qdq, sample, prepared.spec.input_name, convs, bias_corrected=settings.bias_correction,
        threads=settings.threads, on_batch=advance,
    )
    shifts = {name: error.mean_shift for name, error in errors.items()} if settings.bias_correction else {}
    return _WeightRounding(integers, shifts, errors)


def _make_contiguous(best: Measurement, model, layers, by_rule, ranked, macs, measure, budget: AccuracyBudget, describe) -> Measurement:
    """Fewer float<->INT8 boundaries, then larger INT8 regions; each change is kept only if it still
    passes both splits:

    1. float holes inside INT8 regions become INT8;
    2. isolated small INT8 layers become float;
    3. the regions grow: the float layers next to an INT8 region, least sensitive per multiply-add
       first, become INT8 a checkpoint at a time (the walk's spacing: 2.5% of the MACs or 12
       layers), until a step falls outside the budget. This spends the fidelity that step 2 freed
       on INT8 that extends regions instead of starting new ones.
    """

    def passes(float_layers: tuple[str, ...]) -> Measurement | None:
        candidate = None
        for split in ("selection", "held-out"):
            candidate = measure(float_layers, split)
            ok = not budget.violations(candidate)
            describe(candidate, ok)
            if not ok:
                return None
        return candidate

    def int8_now() -> list[str]:
        return [name for name in layers if name not in set(by_rule) | set(best.float_layers)]

    holes = float_holes(model, layers, int8_now(), best.float_layers)
    if holes:
        best = passes(tuple(name for name in best.float_layers if name not in set(holes))) or best
    islands = int8_islands(model, layers, int8_now(), macs)
    if islands:
        best = passes(tuple(best.float_layers) + tuple(islands)) or best
    step_macs = CHECKPOINT_MAC_STEP * sum(macs[name] for name in ranked)
    while True:
        edges = region_edges(model, layers, int8_now(), [name for name in reversed(ranked) if name in set(best.float_layers)])
        chunk, chunk_macs = [], 0
        for name in edges:
            if chunk_macs >= step_macs or len(chunk) >= CHECKPOINT_LAYER_STEP:
                break
            chunk.append(name)
            chunk_macs += macs[name]
        grown = passes(tuple(name for name in best.float_layers if name not in set(chunk))) if chunk else None
        if grown is None:
            return best
        best = grown


def _sensitivity_entry(name: str, score: float, macs: int, error: LayerError | None) -> dict:
    entry = {"layer": name, "mean_cosine_distance": round(score, 8), "macs": macs}
    if error is not None and error.noise_power > 0:
        entry["own_output_sqnr_db"] = round(-10.0 * float(np.log10(error.noise_to_signal)), 2)
    return entry


def _choose_float_layers(first: Measurement, prepared: _PreparedModel, layers, by_rule, guarded, macs, evaluator: _Evaluator, errors, measure, settings, report, seconds, progress, describe) -> Measurement:
    """Phase 5b: per-layer sensitivity on selection crops, ranked per MAC; the guard's walk; then contiguity."""
    phase = time.perf_counter()
    # Sensitivity is measured where the guard chooses: on the selection half of the pool (the
    # camera's people), never on the held-out half.
    sample = preprocess_all(evaluator.selection_crops(settings.sensitivity_images), prepared.spec, settings.batch)
    advance = progress(f"per-layer sensitivity ({len(guarded)} layers)", len(sample))
    scores = layer_sensitivity(
        prepared.model, onnx.load(str(first.details["path"])), sample, prepared.spec.input_name, guarded,
        on_batch=advance, threads=settings.threads,
    )
    # Most error per multiply-add first: the guard gives up as little INT8 compute as it can.
    ranked = sorted(guarded, key=lambda name: -scores[name] / max(macs[name], 1))
    report.sensitivity = [_sensitivity_entry(name, scores[name], macs[name], errors.get(name)) for name in ranked]
    seconds["sensitivity"] = time.perf_counter() - phase
    phase = time.perf_counter()
    outcome = search_float_layers(
        lambda fl: measure(fl, "selection"), lambda fl: measure(fl, "held-out"), ranked, macs, settings.budget,
        on_candidate=lambda m, ok: describe(m, ok) if m is not first else None,
    )
    best, report.met, report.violations = outcome.best, outcome.met, outcome.violations
    if report.met:
        best = _make_contiguous(best, prepared.model, layers, by_rule, ranked, macs, measure, settings.budget, describe)
    seconds["guard"] = time.perf_counter() - phase
    return best


def _report_layers(report: CalibrationReport, prepared: _PreparedModel, layers, guarded, macs, best: Measurement, candidates, budget) -> list[str]:
    """Phase 6a: INT8 share, layer counts, boundaries and every guard step in the report; returns the INT8 layers."""
    final_float = set(layers) - set(guarded) | set(best.float_layers)
    int8_layers = [name for name in layers if name not in final_float]
    total_macs = sum(macs.values()) or 1
    report.layers = {
        "quantizable": len(layers),
        "int8": len(int8_layers),
        "int8_mac_share": round(sum(macs[name] for name in int8_layers) / total_macs, 4),
        "float_int8_boundaries": precision_boundaries(prepared.model, layers, int8_layers),
        "float_by_rule": [name for name in layers if name not in set(guarded)],
        "float_by_guard": list(best.float_layers),
    }
    report.guard_steps = [
        {
            "float_layers": len(m.float_layers),
            "split": m.split,
            "int8_mac_share": round(sum(macs[n] for n in guarded if n not in set(m.float_layers)) / total_macs, 4),
            "mean_cosine": round(m.mean_cosine, 6),
            "p1_cosine": round(m.p1_cosine, 6),
            "top1_agreement_percent": round(100 * m.top1_agreement, 2),
            "top5_agreement_percent": round(100 * m.top5_agreement, 2),
            "top1_same_person_percent": round(100 * m.details["agreement"].top1_same_person, 2),
            "top1_outside_ties_percent": round(100 * m.details["agreement"].top1_outside_ties, 2),
            "map_drop_points": None if m.map_drop is None else round(m.map_drop, 3),
            "within_budget": not budget.violations(m),
        }
        for m in candidates.values()
    ]
    return int8_layers


def normalised_input_amax(spec: ModelSpec) -> float:
    """Largest |x| of the normalised input ``x = (pixel * pixel_scale - mean) / std`` over pixels 0..255: the
    FP32 model's view of the folded integer input ``pixel - 128`` (INT8 at scale 1 holds every pixel)."""
    mean, std = np.asarray(spec.mean, np.float64), np.asarray(spec.std, np.float64)
    ends = np.abs((np.array([[0.0], [255.0]]) * spec.pixel_scale - mean) / std)
    return float(ends.max())


def _table_ranges(prepared: _PreparedModel, int8_layers: list[str], amax: dict[str, float]) -> tuple[dict[str, float], set[str]]:
    """(FP32 tensor name -> range, tensors only float layers read) for the TensorRT 8.x table.

    TensorRT 8's implicit INT8 calibrates the FP32 model, so the table names its tensors: every tensor an
    INT8 layer reads or writes there (:func:`tensors_for_table` on ``prepared.fp32``). Each INT8 layer's
    input takes the range its quantizer uses in the Q/DQ model, mapped back: the folded integer input is
    the FP32 input with the normalised input's whole range; a centred input ``X__centred`` (``X - a/2`` of
    range ``a/2``) is ``X``, which lies in [0, a], so symmetric INT8 needs amax ``a``; where INT8 layers read
    a tensor both ways, the uncentred (symmetric) quantizer's range. Other tensors (outputs) keep the
    method's range; tensors the prepared model rescaled (equalization), their range on FP32 values.

    Raises:
        ModelError: a tensor the table needs has no range, or an INT8 layer's input cannot be mapped back.
    """
    fp32_nodes = {node.name: node for node in prepared.fp32.graph.node}
    prepared_nodes = {node.name: node for node in prepared.model.graph.node}
    needed, only_float = tensors_for_table(prepared.fp32, int8_layers)
    read: dict[str, dict[bool, float]] = {}  # FP32 tensor -> {read uncentred?: range}
    for name in int8_layers:
        if name not in fp32_nodes:
            raise ModelError(f"INT8 layer {name!r} is not a node of the FP32 model: cannot name its tensors in the TensorRT table")
        fp32_input, prepared_input = fp32_nodes[name].input[0], prepared_nodes[name].input[0]
        if prepared_input in prepared.integer_tensors:
            value = normalised_input_amax(prepared.spec)
        elif prepared_input == centred_name(fp32_input):
            value = 2.0 * amax[prepared_input]
        elif prepared_input == fp32_input:
            value = amax[prepared_input]
        else:
            raise ModelError(f"INT8 layer {name!r} reads {prepared_input!r}, which stands for no tensor of the FP32 model")
        read.setdefault(fp32_input, {})[prepared_input == fp32_input] = value
    ranges = {tensor: by_kind.get(True, by_kind.get(False)) for tensor, by_kind in read.items()}
    for name in needed:
        if name in prepared.fp32_ranges:
            ranges[name] = prepared.fp32_ranges[name]
        elif name not in ranges and name in amax:
            ranges[name] = amax[name]
    missing = sorted(name for name in needed if name not in ranges)
    if missing:
        raise ModelError(f"no calibrated range for {len(missing)} tensors INT8 layers use (first: {missing[0]})")
    return {name: ranges[name] for name in needed}, only_float


def _write_table(prepared: _PreparedModel, int8_layers: list[str], amax: dict[str, float], path: Path) -> None:
    """Phase 6b: the TensorRT 8.x table, under the FP32 model's tensor names (:func:`_table_ranges`): a range
    for every tensor an INT8 layer reads or writes; staged at ``path`` (moved into place with the model)."""
    ranges, only_float = _table_ranges(prepared, int8_layers, amax)
    write_tensorrt_table(ranges, path, leave_out=only_float)


def _int8(original, spec, source, order, tmp, evaluator: _Evaluator, settings, report, seconds, progress, log) -> tuple[Measurement, ModelSpec]:
    recipe = QuantRecipe(method=settings.method)
    phase = time.perf_counter()
    crops = _read_calibration_crops(source, order, settings, report, log)
    prepared = _prepare_float_model(original, spec, crops, settings, tmp, progress)
    seconds["prepare"] = time.perf_counter() - phase

    layers = quantizable_nodes(prepared.model, recipe.op_types)
    by_rule = pooled_input_layers(prepared.model, layers)
    guarded = [name for name in layers if name not in set(by_rule)]
    macs = layer_macs(prepared.model, layers)
    phase = time.perf_counter()
    amax, stats = _calibrate_amax(prepared, crops, layers, settings, recipe, progress)
    seconds["calibration"] = time.perf_counter() - phase
    phase = time.perf_counter()
    chosen = _choose_ranges(prepared, amax, stats, guarded, by_rule, recipe, crops, settings, evaluator, tmp, progress)
    if chosen.distances is not None:
        log(f"activation ranges: a factor per quantizer ({len(chosen.quantizers)}) on the selection crops: "
            + ", ".join(f"x{factor} {count}" for factor, count in chosen.to_dict()["chosen"].items() if count))
    prepared, amax, rounding = chosen.prepared, chosen.amax, chosen.rounding
    seconds["ranges_rounding_and_bias"] = time.perf_counter() - phase
    report.recipe = {
        "format": "Q/DQ (QuantizeLinear/DequantizeLinear), ONNX Runtime QDQQuantizer, biases float",
        "activations": f"int8 symmetric per tensor, ranges by {settings.method}" + (f" {recipe.percentile}%" if settings.method == "percentile" else "")
        + (f", each times its own factor of {', '.join(f'{factor:g}' for factor in chosen.factors)}" if len(chosen.factors) > 1
           else f", times {chosen.factors[0]:g}" if chosen.factors != (1.0,) else ""),
        "range_scale": chosen.to_dict(),
        "weights": "int8 symmetric per output channel" + (", GPTQ rounding" if rounding.integers else ""),
        "bias_correction": bool(rounding.shifts),
        "quantized_layer_types": list(recipe.op_types),
        "transforms": prepared.transforms,
    }

    candidates: dict[tuple[tuple[str, ...], str], Measurement] = {}
    describe = _describe(log)

    def build(float_layers: tuple[str, ...]) -> Path:
        path = tmp / f"candidate_{len(float_layers)}_{abs(hash(float_layers)) % 10**8}.onnx"
        if not path.exists():
            _build_candidate(path, prepared, amax, rounding, recipe, by_rule, guarded, float_layers, settings.centre_activations)
        return path

    def measure(float_layers, split: str) -> Measurement:
        key = (tuple(float_layers), split)
        if key not in candidates:
            candidates[key] = evaluator.measure(build(key[0]), prepared.spec, key[0], split, f"INT8 check, {len(key[0])} float layers ({split})")
        return candidates[key]

    phase = time.perf_counter()
    candidates[((), "selection")] = chosen.all_int8  # measured while choosing the ranges
    best = measure((), "selection")
    ok = not settings.budget.violations(best)
    describe(best, ok)
    if ok:
        best = measure((), "held-out")
        ok = not settings.budget.violations(best)
        describe(best, ok)
    seconds["first_check"] = time.perf_counter() - phase
    if ok:
        report.met, report.violations = True, []
    else:
        first = candidates[((), "selection")]
        best = _choose_float_layers(first, prepared, layers, by_rule, guarded, macs, evaluator, rounding.errors, measure, settings, report, seconds, progress, describe)
    int8_layers = _report_layers(report, prepared, layers, guarded, macs, best, candidates, settings.budget)
    _write_table(prepared, int8_layers, amax, tmp / "table.calib")
    return best, prepared.spec
