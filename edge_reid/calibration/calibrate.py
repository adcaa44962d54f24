"""``edge-reid calibrate`` as a function: calibrate, quantize, guard the accuracy, write model + table + report.

Phases (each timed in the report):

1. read the calibration crops (``bounding_box_train/`` or a plain crop folder, seeded sample);
2. calibrate activation ranges once on the float model (opset raised to 13 if needed);
3. measure FP32 on the labelled split and the crop pool, the reference for everything;
4. quantize every Conv/Gemm except the pooled-input ones and measure;
5. if outside the budget: per-layer sensitivity, then the guard's search over float layers;
6. write the chosen Q/DQ model, its spec sidecar, the TensorRT table and the report.

FP16 skips 2, 4 and 5: it converts and measures.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from edge_reid.atomic import write_json_atomic
from edge_reid.calibration.fp16 import convert_fp16
from edge_reid.calibration.guard import AccuracyBudget, Measurement, search_float_layers
from edge_reid.calibration.pool import CropPool, load_pool
from edge_reid.calibration.qdq import (
    QuantRecipe,
    calibrate_ranges,
    layer_macs,
    pooled_input_layers,
    quantizable_nodes,
    quantize_qdq,
    upgrade_opset,
)
from edge_reid.calibration.reader import preprocess_all, preprocessed_batches
from edge_reid.calibration.report import CalibrationReport
from edge_reid.calibration.sensitivity import layer_sensitivity
from edge_reid.calibration.tensorrt_table import amax_from_ranges, write_tensorrt_table
from edge_reid.data.images import read_images
from edge_reid.data.market1501 import GALLERY_DIR, QUERY_DIR, calibration_order, calibration_source, load_market1501
from edge_reid.errors import DataError, OutputPathError
from edge_reid.evaluation.agreement import compare_embeddings
from edge_reid.evaluation.market_eval import MarketEvaluation, embed_crops, evaluate_market
from edge_reid.spec import ModelSpec, load_spec

#: Start a progress phase: (description, total or None) -> advance(n) callback.
ProgressFactory = Callable[[str, "int | None"], Callable[[int], None]]


def _no_progress(description: str, total: int | None) -> Callable[[int], None]:
    return lambda n: None


@dataclass
class CalibrationSettings:
    """Options of :func:`calibrate_model` (the CLI flags).

    Attributes:
        precision: ``"int8"`` (Q/DQ model + TensorRT table) or ``"fp16"``.
        method: activation range method for INT8: minmax, percentile or entropy.
        images: calibration crops to use (fewer when the source has fewer).
        seed: seed of the calibration sample.
        pool: crop folder or video for the agreement check (None: the data's query+gallery crops).
        pool_size: most pool crops.
        budget: the accuracy budget.
        sensitivity_images: calibration crops used for per-layer sensitivity.
        batch: embedding batch size (the same as ``edge-reid eval``'s default, so numbers match).
        threads: ONNX Runtime threads (None: its default).
    """

    precision: str = "int8"
    method: str = "minmax"
    images: int = 500
    seed: int = 0
    pool: str | Path | None = None
    pool_size: int = 500
    budget: AccuracyBudget = field(default_factory=AccuracyBudget)
    sensitivity_images: int = 128
    batch: int = 32
    threads: int | None = None


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


def _prepare_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".edge-reid-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise OutputPathError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None


def _has_labelled_split(data_dir: Path) -> bool:
    return (data_dir / QUERY_DIR).is_dir() and (data_dir / GALLERY_DIR).is_dir()


class _Evaluator:
    """Measures a model file against the FP32 reference with the Embedder (``run``'s and ``eval``'s code path)."""

    def __init__(self, spec: ModelSpec, dataset, pool: CropPool, settings: CalibrationSettings, progress: ProgressFactory) -> None:
        self.spec, self.dataset, self.pool, self.settings, self.progress = spec, dataset, pool, settings, progress
        self.reference_labelled: MarketEvaluation | None = None
        self.reference_pool: np.ndarray | None = None

    def _images(self) -> int:
        split = len(self.dataset.query) + len(self.dataset.gallery) if self.dataset else 0
        return split + len(self.pool.crops)

    def run(self, model_path: Path, description: str) -> tuple[MarketEvaluation | None, np.ndarray]:
        from edge_reid.embedder import Embedder

        embedder = Embedder(model_path, max_batch=self.settings.batch, threads=self.settings.threads, spec=self.spec)
        advance = self.progress(description, self._images())
        try:
            labelled = evaluate_market(embedder, self.dataset, on_progress=advance) if self.dataset else None
            pool = np.concatenate([embed_crops(embedder, self.pool.crops[i : i + 256]) for i in range(0, len(self.pool.crops), 256)])
            advance(len(self.pool.crops))
        finally:
            embedder.close()
        return labelled, pool

    def reference(self, model_path: Path) -> None:
        self.reference_labelled, self.reference_pool = self.run(model_path, "FP32 reference")

    def measure(self, model_path: Path, float_layers: tuple[str, ...], description: str) -> Measurement:
        labelled, pool = self.run(model_path, description)
        agreement = compare_embeddings(self.reference_pool, pool)
        map_drop = 0.0
        if labelled is not None and self.reference_labelled is not None:
            map_drop = 100.0 * (self.reference_labelled.scores.mAP - labelled.scores.mAP)
        return Measurement(
            float_layers=float_layers,
            map_drop=map_drop,
            top1_agreement=agreement.top1,
            mean_cosine=agreement.mean_cosine,
            details={"labelled": labelled, "agreement": agreement, "path": model_path},
        )


def _write_sidecar(spec: ModelSpec, path: Path) -> None:
    fields = spec.to_dict()
    fields.pop("input_name", None)
    fields.pop("output_name", None)
    write_json_atomic(path, fields)


def _read_calibration_crops(data_dir: Path, settings: CalibrationSettings):
    order = calibration_order(data_dir, settings.seed)
    crops, used, skipped = read_images(order, limit=settings.images)
    if not crops:
        raise DataError(f"{calibration_source(data_dir)}: no readable calibration image ({len(skipped)} unreadable)")
    return crops, used, skipped


def calibrate_model(
    model_path: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    settings: CalibrationSettings | None = None,
    progress: ProgressFactory | None = None,
    log: Callable[[str], None] | None = None,
) -> CalibrationReport:
    """Make an INT8 Q/DQ (or FP16) model from an FP32 ReID model and prove its accuracy.

    Args:
        model_path: FP32 ONNX ReID model.
        data_dir: a Market-1501 folder (calibration crops from ``bounding_box_train/``,
            the labelled check on ``query/`` + ``bounding_box_test/``), or a plain
            folder of person crops (calibration only; no labelled check).
        out_dir: output folder (created).
        settings: options; defaults as the CLI.
        progress: progress-bar factory (see :data:`ProgressFactory`).
        log: receives one line per guard step.

    Returns:
        The report (also written as JSON next to the model).

    Raises:
        ModelError, DataError, OutputPathError, SourceError: bad inputs, before or during the work.
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
    calibration_source(data_dir)  # fails early on a missing folder or a test split
    _prepare_out_dir(out_dir)
    paths = output_paths(model_path, out_dir, settings.precision)
    recipe = QuantRecipe(method=settings.method)

    dataset = load_market1501(data_dir) if _has_labelled_split(data_dir) else None
    phase = time.perf_counter()
    pool = load_pool(settings.pool, dataset, settings.pool_size)
    seconds["pool"] = time.perf_counter() - phase

    report = CalibrationReport(model=str(model_path), precision=settings.precision, budget=settings.budget.to_dict())
    report.pool = {"source": pool.source, "crops": len(pool.crops), "skipped": [str(s.path) for s in pool.skipped]}
    evaluator = _Evaluator(spec, dataset, pool, settings, progress)

    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".edge-reid-calibrate-") as tmp_name:
        tmp = Path(tmp_name)
        phase = time.perf_counter()
        evaluator.reference(model_path)
        seconds["fp32_reference"] = time.perf_counter() - phase
        original = onnx.load(str(model_path))

        if settings.precision == "fp16":
            candidate = convert_fp16(original, tmp / "fp16.onnx")
            phase = time.perf_counter()
            best = evaluator.measure(candidate, (), "FP16 check")
            seconds["check"] = time.perf_counter() - phase
            report.recipe = {"conversion": "onnxconverter_common.float16, keep_io_types=True"}
            report.met = not settings.budget.violations(best)
            report.violations = settings.budget.violations(best)
            final_float_layers: tuple[str, ...] = ()
        else:
            opset_before = next((i.version for i in original.opset_import if i.domain in ("", "ai.onnx")), 0)
            float_model = upgrade_opset(original)
            float_path = tmp / "float_opset13.onnx"
            onnx.save(float_model, str(float_path))

            phase = time.perf_counter()
            crops, used, skipped = _read_calibration_crops(data_dir, settings)
            advance = progress(f"calibrating ({settings.method})", len(crops))
            ranges = calibrate_ranges(float_path, preprocessed_batches(crops, spec, settings.batch), spec.input_name, recipe, on_batch=advance)
            seconds["calibration"] = time.perf_counter() - phase
            source = calibration_source(data_dir)
            report.calibration = {
                "source": str(source),
                "seed": settings.seed,
                "requested": settings.images,
                "count": len(crops),
                "images": [str(p.relative_to(source)) for p in used],
                "skipped": [{"path": str(s.path), "reason": s.reason} for s in skipped],
            }
            layers = quantizable_nodes(float_model, recipe.op_types)
            by_rule = pooled_input_layers(float_model, layers)
            macs = layer_macs(float_model, layers)
            report.recipe = {
                "format": "Q/DQ (QuantizeLinear/DequantizeLinear), ONNX Runtime QDQQuantizer",
                "activations": f"int8 symmetric per tensor, ranges by {settings.method}"
                + (f" {recipe.percentile}%" if settings.method == "percentile" else ""),
                "weights": "int8 symmetric per output channel",
                "quantized_layer_types": list(recipe.op_types),
                "opset": {"input": opset_before, "output": max(opset_before, 13)},
            }

            candidates: dict[tuple[str, ...], Measurement] = {}

            def measure(float_layers) -> Measurement:
                float_layers = tuple(float_layers)
                if float_layers not in candidates:
                    path = tmp / f"candidate_{len(candidates)}.onnx"
                    quantize_qdq(float_path, path, ranges, recipe, keep_float=list(by_rule) + list(float_layers))
                    candidates[float_layers] = evaluator.measure(path, float_layers, f"INT8 check, {len(float_layers)} float layers")
                return candidates[float_layers]

            def describe(m: Measurement, ok: bool) -> None:
                labelled = m.details["labelled"]
                map_text = f"mAP {100 * labelled.scores.mAP:.2f}" if labelled else "no labelled split"
                log(
                    f"{len(m.float_layers):3d} float layers: {map_text} (drop {m.map_drop:+.2f}), mean cosine {m.mean_cosine:.5f}, "
                    f"top-1 agreement {100 * m.top1_agreement:.2f}% -> {'within budget' if ok else 'outside budget'}"
                )

            phase = time.perf_counter()
            first = measure(())
            first_ok = not settings.budget.violations(first)
            describe(first, first_ok)
            seconds["first_check"] = time.perf_counter() - phase
            ranked: list[str] = []
            if not first_ok:
                phase = time.perf_counter()
                sample = preprocess_all(crops[: settings.sensitivity_images], spec, settings.batch)
                guarded = [name for name in layers if name not in set(by_rule)]
                advance = progress("per-layer sensitivity", len(guarded))
                scores = layer_sensitivity(
                    float_model, onnx.load(str(first.details["path"])), sample, spec.input_name, guarded,
                    on_layer=lambda name: advance(1), threads=settings.threads,
                )
                # Most error per multiply-add first: the guard gives up as little INT8 compute as it can.
                ranked = sorted(guarded, key=lambda name: -scores[name] / max(macs[name], 1))
                report.sensitivity = [
                    {"layer": name, "mean_cosine_distance": round(scores[name], 8), "macs": macs[name]} for name in ranked
                ]
                seconds["sensitivity"] = time.perf_counter() - phase
                phase = time.perf_counter()
                outcome = search_float_layers(measure, ranked, settings.budget, on_candidate=lambda m, ok: describe(m, ok) if m is not first else None)
                seconds["guard"] = time.perf_counter() - phase
                best, report.met, report.violations = outcome.best, outcome.met, outcome.violations
            else:
                best, report.met = first, True
            final_float_layers = tuple(by_rule) + tuple(best.float_layers)
            int8_layers = [name for name in layers if name not in set(final_float_layers)]
            total_macs = sum(macs.values()) or 1
            report.layers = {
                "quantizable": len(layers),
                "int8": len(int8_layers),
                "int8_mac_share": round(sum(macs[name] for name in int8_layers) / total_macs, 4),
                "float_by_rule": list(by_rule),
                "float_by_guard": list(best.float_layers),
            }
            report.guard_steps = [
                {
                    "float_layers": len(m.float_layers),
                    "map_drop_points": round(m.map_drop, 3),
                    "mean_cosine": round(m.mean_cosine, 6),
                    "top1_agreement_percent": round(100 * m.top1_agreement, 2),
                    "within_budget": not settings.budget.violations(m),
                }
                for m in candidates.values()
            ]
            candidate = best.details["path"]
            float_inputs = {node.input[0] for node in float_model.graph.node if node.name in set(final_float_layers)}
            write_tensorrt_table(amax_from_ranges(ranges), tmp / "table.calib", leave_out=float_inputs)
            os.replace(tmp / "table.calib", paths["tensorrt_table"])

        if evaluator.reference_labelled is not None:
            report.fp32 = evaluator.reference_labelled.scores.to_dict()
        labelled = best.details["labelled"]
        if labelled is not None:
            report.quantized = labelled.scores.to_dict()
        report.agreement = best.details["agreement"].to_dict()
        _write_sidecar(spec, tmp / "spec.json")
        os.replace(candidate, paths["model"])
        os.replace(tmp / "spec.json", paths["spec"])

    seconds["total"] = time.perf_counter() - started
    report.seconds = {key: round(value, 2) for key, value in seconds.items()}
    report.outputs = {key: str(value) for key, value in paths.items()}
    report.write_json(paths["report"])
    return report
