"""INT8 methods side by side on the same data: ONNX Runtime's calibrators, our recipe, NNCF and AIMET.

Calibration crops: ``bounding_box_train/`` of the data set (seeded order, as ``calibrate``);
fidelity: the held-out half of a pool cut from a video (the split ``calibrate`` uses) and
mAP on the labelled split, all against FP32, Q/DQ run with exact arithmetic in ONNX Runtime
(``session.disable_quant_qdq``). Every method quantizes the whole network (no float layers
chosen by a guard), so the rows compare the quantizers themselves:

    python benchmarks/int8_methods.py --methods minmax,entropy,percentile,mse,fold+mse,fold+eq+mse,fold+mse+bc,fold+mse+gptq,fold+mse+gptq+bc,nncf
    /work/venvs/int8-aimet/bin/python benchmarks/int8_methods.py --methods aimet-cle   # AIMET pins torch: own venv

Where the error comes from: ``+float-weights`` runs a method's model with every layer's float
weights (only the activations quantized), ``+float-activations`` with every activation float
(only the weights quantized)::

    python benchmarks/int8_methods.py --methods fold+mse+gptq+bc,fold+mse+gptq+bc+float-weights,fold+mse+gptq+bc+float-activations

and, per activation tensor, the float model with only that tensor quantized as in the method's model::

    python benchmarks/int8_methods.py --methods fold+mse+gptq+bc --per-activation 10

``+centre`` (e.g. ``fold+centre+mse+gptq+bc``) centres the non-negative inputs of convolutions
without padding before INT8 (255 levels instead of 128, :mod:`edge_reid.calibration.centring`).
``+x<factor>`` widens every activation range by that factor, e.g. ``fold+centre+mse+x1.2+gptq+bc``;
``+ranges`` gives each activation quantizer its own factor of ``calibrate``'s, the one whose
quantizer alone moves the embeddings of 64 selection crops least (what ``calibrate`` does)::

    python benchmarks/int8_methods.py --methods fold+centre+mse+gptq+bc,fold+centre+mse+x1.2+gptq+bc,fold+centre+mse+ranges+gptq+bc

``+pc-max`` / ``+pc-mse`` (last in the name) give every activation quantizer one scale per channel
(``axis=1``; not something TensorRT's INT8 runs: the bound of what channel equalization could buy),
each channel's range its largest |value| capped at the tensor's range, or its own MSE-optimal range,
measured on the calibration crops and the pool's selection half (never the held-out half)::

    python benchmarks/int8_methods.py --methods fold+mse+gptq+bc,fold+mse+gptq+bc+pc-max,fold+mse+gptq+bc+pc-mse

NNCF (``pip install nncf``) and AIMET (``pip install aimet-onnx``) rows run where the library imports.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common: the repository on the path, the default video
from _common import benchmark_parser, shared_dir, video_path  # noqa: E402

from edge_reid.assets import DEFAULT_REID_MODEL  # noqa: E402
from edge_reid.calibration.activations import collect_statistics, mse_optimal_amax, run_collecting  # noqa: E402
from edge_reid.calibration.bias_correction import apply_bias_shifts, measure_layer_errors  # noqa: E402
from edge_reid.calibration.calibrate import RANGE_SCALES  # noqa: E402
from edge_reid.calibration.centring import CENTRED_LEVELS, centrable_inputs, centre_inputs  # noqa: E402
from edge_reid.calibration.gptq import apply_gptq_weights, gptq_weights  # noqa: E402
from edge_reid.calibration.pool import load_pool, split_pool  # noqa: E402
from edge_reid.calibration.qdq import (  # noqa: E402
    QuantRecipe,
    calibrate_ranges,
    layer_macs,
    pooled_input_layers,
    quantizable_nodes,
    quantize_qdq,
    upgrade_opset,
)
from edge_reid.calibration.range_choice import activation_quantizers, choose_factors, range_distances  # noqa: E402
from edge_reid.calibration.reader import preprocess_all, preprocessed_batches  # noqa: E402
from edge_reid.calibration.sensitivity import embed_array, ort_session_from_proto, quantized_layer_parts  # noqa: E402
from edge_reid.calibration.tensorrt_table import tensors_for_table  # noqa: E402
from edge_reid.calibration.transforms import equalization_groups, equalize_channels, fold_input_normalisation  # noqa: E402
from edge_reid.crop_pool import spread  # noqa: E402
from edge_reid.data.images import read_images  # noqa: E402
from edge_reid.data.market1501 import calibration_order, load_market1501  # noqa: E402
from edge_reid.evaluation.agreement import compare_embeddings  # noqa: E402
from edge_reid.evaluation.metrics import evaluate_market1501  # noqa: E402
from edge_reid.errors import ModelError  # noqa: E402
from edge_reid.spec import load_spec  # noqa: E402


class Data:
    """Crops for calibration, the pool (selection/held-out halves) and the labelled split."""

    def __init__(self, data_dir: Path, video: Path, pool_size: int) -> None:
        self.calibration, _, _ = read_images(calibration_order(data_dir, 0), limit=500)
        pool = load_pool(video, None, pool_size)  # the pool and split of `edge-reid calibrate`
        self.pool = pool.crops
        split = split_pool(len(pool.crops), frames=pool.frames)
        self.selection, self.heldout = split.selection, split.heldout
        dataset = load_market1501(data_dir)
        self.query, _, _ = read_images(list(dataset.query.paths))
        self.gallery, _, _ = read_images(list(dataset.gallery.paths))
        self.q_pids, self.q_cams = dataset.query.pids, dataset.query.camids
        self.g_pids, self.g_cams = dataset.gallery.pids, dataset.gallery.camids

    def embed(self, model: onnx.ModelProto, spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        session = ort_session_from_proto(model)
        held = [self.pool[i] for i in self.heldout]
        return tuple(embed_array(session, spec.input_name, preprocess_all(crops, spec)) for crops in (held, self.query, self.gallery))

    def map(self, query: np.ndarray, gallery: np.ndarray) -> float:
        return evaluate_market1501(1 - query @ gallery.T, self.q_pids, self.g_pids, self.q_cams, self.g_cams).mAP


def _dequantized_part(qdq: onnx.ModelProto, float_model: onnx.ModelProto, part: str) -> onnx.ModelProto:
    """``qdq`` with one side of every quantized Conv/Gemm back to float: ``"weights"`` (the float
    model's weight and bias) or ``"activations"`` (the tensor before its QuantizeLinear)."""
    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    float_inits = {init.name: init for init in float_model.graph.initializer}
    float_nodes = {node.name: node for node in float_model.graph.node}
    present = {init.name for init in model.graph.initializer}
    for name in quantizable_nodes(float_model):
        try:
            layer, quantize, _, _ = quantized_layer_parts(model, name)
        except ModelError:
            continue  # left float (e.g. pooled-input layers)
        if part == "activations":
            layer.input[0] = quantize.input[0]
        else:
            # The float weights with the float bias: a corrected bias belongs to the INT8 weights.
            for index in range(1, len(float_nodes[name].input)):
                tensor = float_nodes[name].input[index]
                if tensor not in present:
                    model.graph.initializer.append(float_inits[tensor])
                    present.add(tensor)
                layer.input[index] = tensor
    return model


def _ours(method: str, float_model, spec, data: Data, tmp: Path):
    parts = method.split("+")
    base = next(part for part in parts if part in ("mse", "minmax", "entropy", "percentile"))
    recipe = QuantRecipe(method="minmax" if base == "mse" else base)
    model, integer_input = float_model, None
    if "fold" in parts:
        model, integer_input = fold_input_normalisation(model, spec)
    images = preprocess_all(data.calibration, spec)
    if "eq" in parts:
        groups = equalization_groups(model)
        stats = collect_statistics(model, images[:128], spec.input_name, [g.tensor for g in groups], per_channel=True)
        model, _ = equalize_channels(model, {n: s.channel_absmax for n, s in stats.items()})
    path = tmp / f"{method}.onnx"
    onnx.save(model, str(path))
    layers = quantizable_nodes(model)
    if base == "mse":
        needed, _ = tensors_for_table(model, layers)
        stats = collect_statistics(model, images, spec.input_name, sorted(needed))
        amax = {n: mse_optimal_amax(s.histogram, s.hist_range, absmax=s.absmax) for n, s in stats.items()}
    else:
        amax = calibrate_ranges(path, preprocessed_batches(data.calibration, spec), spec.input_name, recipe)
    if integer_input:
        amax[integer_input] = 127.0
    widen = next((float(part[1:]) for part in parts if part.startswith("x")), 1.0)  # e.g. x1.2
    pooled = pooled_input_layers(model, layers)
    guarded = [name for name in layers if name not in set(pooled)]
    readers = centrable_inputs(model, guarded) if "centre" in parts else {}
    if base == "mse":
        top = {t: mse_optimal_amax(stats[t].histogram, stats[t].hist_range, levels=2 * CENTRED_LEVELS, absmax=stats[t].absmax) for t in readers}
    else:
        top = {t: amax[t] for t in readers}
    exact = [integer_input] if integer_input else []  # pixel - 128 stays exact
    quantizers = activation_quantizers(model, guarded, amax, top, readers, exact=exact)
    if "ranges" in parts:  # each quantizer's own factor, chosen as `calibrate` does, on 64 selection crops
        sample = preprocess_all([data.pool[i] for i in spread(list(data.selection), 64)], spec)
        factors = choose_factors(range_distances(model, quantizers, RANGE_SCALES, sample, spec.input_name), RANGE_SCALES)
    else:
        factors = [widen] * len(quantizers)
    for quantizer, factor in zip(quantizers, factors):
        (top if quantizer.centred else amax)[quantizer.tensor] = factor * quantizer.amax
    if readers:
        model, centred = centre_inputs(model, top, readers)
        amax.update(centred)
        onnx.save(model, str(path))
    out = onnx.load(str(quantize_qdq(path, tmp / f"{method}-qdq.onnx", amax, recipe, keep_float=pooled)))
    sample = images[:128]
    if "gptq" in parts:
        out = apply_gptq_weights(out, gptq_weights(model, out, sample, spec.input_name, amax, guarded, bias_corrected="bc" in parts))
    if "bc" in parts:
        errors = measure_layer_errors(model, out, sample, spec.input_name, guarded)
        out = apply_bias_shifts(out, {name: error.mean_shift for name, error in errors.items()}, guarded)
    for part in ("weights", "activations"):
        if f"float-{part}" in parts:
            out = _dequantized_part(out, model, part)
    if "pc-max" in parts or "pc-mse" in parts:
        channel_images = preprocess_all(data.calibration + [data.pool[i] for i in data.selection], spec)
        out = _per_channel_activations(out, model, channel_images, spec.input_name, "pc-mse" in parts)
    return out, spec, model


def _channel_mse_ranges(values: np.ndarray, largest: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """(C,) range per channel among ``fractions`` of its largest |value| with the least squared
    symmetric-INT8 error (rounding and clipping) on ``values`` ((C, n) absolute values)."""
    best, best_error = largest.copy(), np.full(len(largest), np.inf)
    for fraction in fractions:
        top = (largest * fraction)[:, None]
        step = top / 127
        error = ((values - np.round(np.minimum(values, top) / step) * step) ** 2).mean(axis=1)
        better = error < best_error
        best[better], best_error[better] = largest[better] * fraction, error[better]
    return best


def _per_channel_activations(qdq: onnx.ModelProto, float_model: onnx.ModelProto, images: np.ndarray, input_name: str,
                             mse: bool, samples_per_batch: int = 512) -> onnx.ModelProto:
    """``qdq`` with each activation QuantizeLinear/DequantizeLinear pair on one scale per channel
    (axis 1): each channel's largest |value| on ``images``, at most the tensor's own range, or
    (``mse``) its MSE-optimal range from 96 of the images, ``samples_per_batch`` values per batch."""
    inits = {init.name: init for init in qdq.graph.initializer}
    float_tensors = {out for node in float_model.graph.node for out in node.output} | {i.name for i in float_model.graph.input}
    quantizers = [node for node in qdq.graph.node if node.op_type == "QuantizeLinear" and node.input[0] not in inits
                  and node.input[0] in float_tensors]
    tensors = sorted({node.input[0] for node in quantizers})
    stats = collect_statistics(float_model, images, input_name, tensors, per_channel=True)
    ranges = {t: s.channel_absmax.astype(np.float64) for t, s in stats.items() if s.channel_absmax is not None}
    if mse:
        rng = np.random.default_rng(0)
        samples: dict[str, list[np.ndarray]] = {}

        def visit(values: dict[str, np.ndarray]) -> None:
            for name, array in values.items():
                if name in ranges:
                    flat = np.moveaxis(np.abs(array), 1, 0).reshape(array.shape[1], -1)
                    samples.setdefault(name, []).append(flat[:, rng.choice(flat.shape[1], min(flat.shape[1], samples_per_batch), replace=False)])

        run_collecting(float_model, images[rng.choice(len(images), min(len(images), 96), replace=False)], input_name, list(ranges), visit)
        fractions = np.linspace(0.15, 1.0, 35)
        ranges = {t: _channel_mse_ranges(np.concatenate(samples[t], axis=1), np.maximum(r, 1e-12), fractions) for t, r in ranges.items()}
    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    for quantize in [node for node in model.graph.node if node.op_type == "QuantizeLinear" and node.input[0] in ranges]:
        scale = float(numpy_helper.to_array(inits[quantize.input[1]]))
        if np.isclose(scale, 1.0):
            continue  # the folded integer input: exact at scale 1
        channel = ranges[quantize.input[0]] if mse else np.minimum(ranges[quantize.input[0]], 127 * scale)
        names = (quantize.output[0] + "_channel_scale", quantize.output[0] + "_channel_zero")
        model.graph.initializer.extend([
            numpy_helper.from_array((np.maximum(channel, 1e-8) / 127).astype(np.float32), names[0]),
            numpy_helper.from_array(np.zeros(len(channel), numpy_helper.to_array(inits[quantize.input[2]]).dtype), names[1]),
        ])
        for node in [quantize, *(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == quantize.output[0])]:
            node.input[1], node.input[2] = names
            node.attribute.append(onnx.helper.make_attribute("axis", 1))
    return model


def _nncf(float_model, spec, data: Data, tmp: Path):
    import nncf

    images = preprocess_all(data.calibration, spec)
    dataset = nncf.Dataset([images[i : i + 1] for i in range(len(images))], lambda x: {spec.input_name: x})
    return nncf.quantize(float_model, dataset, subset_size=300), spec


def _aimet(float_model, spec, data: Data, tmp: Path):
    import copy
    import json

    from aimet_onnx import QuantizationSimModel
    from aimet_onnx.cross_layer_equalization import equalize_model

    import aimet_onnx

    config = json.loads((Path(aimet_onnx.__file__).parent / "common/quantsim_config/default_config_per_channel.json").read_text())
    config["defaults"]["ops"]["is_symmetric"] = "True"  # symmetric activations, what TensorRT takes
    config["defaults"]["strict_symmetric"] = "True"
    config_path = tmp / "aimet_config.json"
    config_path.write_text(json.dumps(config))
    model = copy.deepcopy(float_model)
    equalize_model(model)  # batch-norm folding, cross-layer equalization, high-bias folding
    images = preprocess_all(data.calibration, spec)
    sim = QuantizationSimModel(model, param_type="int8", activation_type="int8", quant_scheme="min_max", config_file=str(config_path))
    sim.compute_encodings([{spec.input_name: images[i : i + 16]} for i in range(0, len(images), 16)])
    return sim.to_onnx_qdq(force_activation_as="signed"), spec


def per_activation(qdq: onnx.ModelProto, float_model: onnx.ModelProto, spec, images: np.ndarray, top: int) -> None:
    """Print the ``top`` activation tensors by the error each causes alone: the float model with only
    that tensor quantized (its QuantizeLinear/DequantizeLinear from ``qdq``, feeding the layers that
    read it there), mean cosine distance to float on ``images``; with their readers' share of the MACs
    and their channels' spread of ranges (largest / median per-channel max)."""
    layers = quantizable_nodes(float_model)
    macs = layer_macs(float_model, layers)
    readers: dict[str, tuple] = {}
    for name in layers:
        try:
            _, quantize, dequantize, _ = quantized_layer_parts(qdq, name)
        except ModelError:
            continue
        readers.setdefault(quantize.input[0], (quantize, dequantize, []))[2].append(name)
    q_inits = {init.name: init for init in qdq.graph.initializer}
    stats = collect_statistics(float_model, images, spec.input_name, sorted(readers), per_channel=True)
    reference = embed_array(ort_session_from_proto(float_model), spec.input_name, images)
    rows = []
    for tensor, (quantize, dequantize, consumers) in readers.items():
        model = onnx.ModelProto()
        model.CopyFrom(float_model)
        present = {init.name for init in model.graph.initializer}
        for name in {*quantize.input[1:], *dequantize.input[1:]} - present:
            model.graph.initializer.append(q_inits[name])
        nodes = list(model.graph.node)
        for node in nodes:
            if node.name in consumers:
                node.input[0] = tensor + "__dq"
        after = next((k + 1 for k, node in enumerate(nodes) if tensor in node.output), 0)  # 0: a graph input
        pair = [
            onnx.helper.make_node("QuantizeLinear", [tensor, *quantize.input[1:]], [tensor + "__q"]),
            onnx.helper.make_node("DequantizeLinear", [tensor + "__q", *dequantize.input[1:]], [tensor + "__dq"]),
        ]
        del model.graph.node[:]
        model.graph.node.extend(nodes[:after] + pair + nodes[after:])
        embeddings = embed_array(ort_session_from_proto(model), spec.input_name, images)
        distance = float(1.0 - np.mean(np.sum(embeddings * reference, axis=1)))
        channels = np.asarray(stats[tensor].channel_absmax)
        rows.append((distance, tensor, len(consumers), sum(macs[c] for c in consumers) / sum(macs.values()), channels.max() / max(np.median(channels), 1e-12)))
    rows.sort(reverse=True)
    total = sum(row[0] for row in rows)
    print(f"\nper activation ({len(rows)} tensors, {len(images)} held-out crops): summed distance {total:.2e}")
    print("| tensor | distance alone | share of the sum | readers | readers' MACs | channel range spread |")
    print("|---|---:|---:|---:|---:|---:|")
    for distance, tensor, count, mac_share, channel_spread in rows[:top]:
        print(f"| {tensor} | {distance:.2e} | {100 * distance / total:.1f}% | {count} | {100 * mac_share:.2f}% | {channel_spread:.1f}x |")
    others = rows[top:]
    if others:
        print(f"| the other {len(others)} | | {100 * sum(r[0] for r in others) / total:.1f}% (largest {100 * others[0][0] / total:.1f}%) | | | "
              f"{min(r[4] for r in others):.1f}-{max(r[4] for r in others):.1f}x |")


def int8_share(model: onnx.ModelProto, reference: onnx.ModelProto) -> tuple[float, int]:
    layers = quantizable_nodes(reference)
    macs = layer_macs(reference, layers)
    producer = {out: node for node in model.graph.node for out in node.output}
    int8 = [n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm") and producer.get(n.input[0], n).op_type == "DequantizeLinear"]
    return sum(macs.get(n, 0) for n in int8) / max(sum(macs.values()), 1), len(int8)


def main() -> int:
    parser = benchmark_parser(__doc__)  # --video: the pool video
    parser.add_argument("--model", type=Path, default=DEFAULT_REID_MODEL)
    parser.add_argument("--data", type=Path, default=shared_dir() / "data" / "mot17-reid-mini",
                        help="labelled crops, Market-1501 layout (default: data/mot17-reid-mini in $EDGE_REID_SHARED or ../shared)")
    parser.add_argument("--pool-size", type=int, default=500)
    parser.add_argument(
        "--methods", default="minmax,mse,fold+mse,fold+mse+gptq+bc,nncf",
        help="comma-separated: minmax, entropy, percentile (ONNX Runtime); mse; with fold+, eq+, centre+, +x<factor>, +ranges, +gptq, +bc, "
        "+float-weights, +float-activations, +pc-max, +pc-mse; nncf; aimet-cle",
    )
    parser.add_argument(
        "--per-activation", type=int, default=0, metavar="N",
        help="after each of our methods' rows (not +float-*), the N activation tensors that cause most error alone (0: none)",
    )
    args = parser.parse_args()
    video = video_path(args)
    if not args.data.is_dir():
        print(f"needs a Market-1501 folder: {args.data} is not one (pass --data)", file=sys.stderr)
        return 2
    spec = load_spec(args.model)
    float_model = upgrade_opset(onnx.load(str(args.model)))
    data = Data(args.data, video, args.pool_size)
    ref_held, ref_q, ref_g = data.embed(float_model, spec)
    ref_map = data.map(ref_q, ref_g)
    print(f"calibration crops {len(data.calibration)}, held-out pool crops {len(data.heldout)} of {len(data.pool)}, FP32 mAP {100 * ref_map:.2f}")
    print("| method | INT8 share of MACs | layers | mean cos | 1% cos | top-1 % | top-5 % | mAP drop | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for method in args.methods.split(","):
            started, per_activation_of = time.perf_counter(), None
            try:
                if method == "nncf":
                    model, method_spec = _nncf(float_model, spec, data, tmp)
                elif method.startswith("aimet"):
                    model, method_spec = _aimet(float_model, spec, data, tmp)
                else:
                    model, method_spec, prepared = _ours(method, float_model, spec, data, tmp)
                    if args.per_activation and not any(part.startswith("float-") for part in method.split("+")):
                        per_activation_of = (model, prepared)
            except ImportError as exc:
                print(f"| {method} | not installed ({exc.name}) | | | | | | | |")
                continue
            seconds = time.perf_counter() - started
            held, q, g = data.embed(model, method_spec)
            agreement = compare_embeddings(ref_held, held)
            share, count = int8_share(model, float_model)
            print(
                f"| {method} | {100 * share:.1f}% | {count} | {agreement.mean_cosine:.5f} | {agreement.p1_cosine:.5f} | "
                f"{100 * agreement.top1:.1f} | {100 * agreement.top5:.1f} | {100 * (ref_map - data.map(q, g)):+.2f} | {seconds:.0f} |",
                flush=True,
            )
            if per_activation_of is not None:
                images = preprocess_all([data.pool[i] for i in data.heldout[:64]], method_spec)
                per_activation(*per_activation_of, method_spec, images, args.per_activation)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
