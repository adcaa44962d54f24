"""Float-exact rewrites before INT8 (input folding, channel equalization), MSE ranges and the held-out split."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_reid.calibration.activations import collect_statistics, mse_optimal_amax, run_collecting
from edge_reid.calibration.pool import split_pool
from edge_reid.calibration.qdq import (
    float_holes,
    int8_islands,
    layer_macs,
    precision_boundaries,
    quantizable_nodes,
    region_edges,
    upgrade_opset,
)
from edge_reid.calibration.reader import preprocess_all
from edge_reid.calibration.sensitivity import ort_session_from_proto
from edge_reid.calibration.transforms import (
    FOLDED_INPUT_OFFSET,
    cross_layer_scales,
    equalization_groups,
    equalize_channels,
    smoothing_scales,
    fold_input_normalisation,
)
from edge_reid.data.images import read_images
from edge_reid.spec import load_spec


@pytest.fixture(scope="module")
def osnet(osnet_path, mot17_dir):
    crops, _, _ = read_images(sorted((mot17_dir / "bounding_box_train").glob("*.jpg"))[::40][:8])
    return upgrade_opset(onnx.load(str(osnet_path))), load_spec(osnet_path), crops


def _run(model: onnx.ModelProto, images: np.ndarray) -> np.ndarray:
    return ort_session_from_proto(model, 2).run(None, {"images": images})[0]


def test_folded_input_is_exact_int8_and_outputs_unchanged(osnet):
    model, spec, crops = osnet
    folded, integer_input = fold_input_normalisation(model, spec)
    assert [i.name for i in folded.graph.input] == [i.name for i in model.graph.input]  # same input, same preprocessing
    images = preprocess_all(crops, spec)
    values = []
    run_collecting(folded, images, "images", [integer_input], lambda v: values.append(v[integer_input]), batch=8)
    pixels = values[0]
    # pixel - 128: integers in [-128, 127] up to float rounding, what INT8 at scale 1 holds exactly.
    assert np.abs(pixels - np.round(pixels)).max() < 1e-3 and pixels.min() >= -128.001 and pixels.max() <= 127.001
    before, after = _run(model, images), _run(folded, images)
    assert np.max(np.abs(before - after)) < 1e-4 * np.max(np.abs(before))
    # OSNet's first conv pads its input: the offset is a constant map added after it.
    assert any(n.op_type == "Add" and n.name.endswith("add_folded_input_offset") for n in folded.graph.node)


def _one_conv_model(pads: list[int]) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "b")
    node = helper.make_node("Conv", ["images", "w", "b"], ["out"], name="conv", kernel_shape=[3, 3], pads=pads)
    graph = helper.make_graph(
        [node], "one", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 16, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model


@pytest.mark.parametrize("pads, added", [([0, 0, 0, 0], False), ([1, 1, 1, 1], True)])
def test_folding_without_padding_is_a_bias_with_padding_a_map(pads, added):
    from edge_reid.spec import ModelSpec

    spec = ModelSpec(height=16, width=8)
    model = _one_conv_model(pads)
    folded, integer_input = fold_input_normalisation(model, spec)
    pixels = np.random.default_rng(1).integers(0, 256, size=(2, 3, 16, 8)).astype(np.float32)
    original_input = (pixels * spec.pixel_scale - np.asarray(spec.mean, np.float32)[:, None, None]) / np.asarray(spec.std, np.float32)[:, None, None]
    before, after = _run(model, original_input), _run(folded, original_input)
    assert np.max(np.abs(before - after)) < 1e-4
    values = []
    run_collecting(folded, original_input, "images", [integer_input], lambda v: values.append(v[integer_input]))
    assert np.abs(values[0] - (pixels - FOLDED_INPUT_OFFSET)).max() < 1e-3
    assert any(n.name.endswith("add_folded_input_offset") for n in folded.graph.node) is added


def test_equalization_is_exact_and_equalizes_depthwise_pairs(osnet):
    model, spec, crops = osnet
    model, _ = fold_input_normalisation(model, spec)  # the first conv's folded offset map is rescaled too
    images = preprocess_all(crops, spec)
    groups = equalization_groups(model)
    # OSNet: each stream's 1x1 -> depthwise pair, and conv -> ReLU (-> pooling) -> next convs chains.
    pairs = [g for g in groups if g.depthwise_pair]
    assert len(pairs) == 60 and len(groups) > 100
    first = next(g for g in groups if g.producer == "/conv1/conv/Conv")
    assert first.path[0].endswith("add_folded_input_offset") and not first.depthwise_pair
    stats = collect_statistics(model, images, "images", [g.tensor for g in groups], per_channel=True)
    equalized, done = equalize_channels(model, {name: s.channel_absmax for name, s in stats.items()})
    assert len(done) == len(groups)
    before, after = _run(model, images), _run(equalized, images)
    assert np.max(np.abs(before - after)) < 1e-4 * np.max(np.abs(before))
    # Cross-layer equalization: each channel's producer and depthwise weights now share one range
    # (where the depthwise conv is not rescaled again as the producer of a later group).
    weights = {init.name: numpy_helper.to_array(init) for init in equalized.graph.initializer}
    nodes = {node.name: node for node in equalized.graph.node}
    producers = {g.producer for g in groups}
    last_in_stream = [pair for pair in pairs if pair.consumers[0] not in producers]
    assert len(last_in_stream) >= 12
    for pair in last_in_stream:
        producer = weights[nodes[pair.producer].input[1]]
        depthwise = weights[nodes[pair.consumers[0]].input[1]]
        r1 = np.abs(producer.reshape(len(producer), -1)).max(axis=1)
        r2 = np.abs(depthwise.reshape(len(depthwise), -1)).max(axis=1)
        assert r1 == pytest.approx(r2, rel=1e-4)


def test_cross_layer_scales_balance_ranges_and_leave_dead_channels():
    producer = np.array([[4.0, -1.0], [0.5, 0.25], [0.0, 0.0]])[:, :, None, None]  # channel 2 never fires
    depthwise = np.array([1.0, 8.0, 3.0])[:, None, None, None] * np.ones((3, 1, 3, 3))
    scales = cross_layer_scales(producer, depthwise)
    assert scales == pytest.approx([2.0, 0.25, 1.0])  # sqrt(r1 / r2); dead channel unchanged
    assert 4.0 / scales[0] == pytest.approx(1.0 * scales[0]) and 0.5 / scales[1] == pytest.approx(8.0 * scales[1])


def test_smoothing_scales_follow_smoothquant_with_a_floor():
    absmax = np.array([10.0, 1.0, 0.0])  # the last channel is dead on calibration data
    reader = (np.array([[1.0, 2.0, 1.0]])[:, :, None, None], 1)  # a 1x1 conv reading the three channels
    scales = smoothing_scales(absmax, [reader], alpha=0.75, floor=0.05)
    raw = absmax[:2] ** 0.75 / np.array([1.0, 2.0]) ** 0.25
    assert scales[0] / scales[1] == pytest.approx(raw[0] / raw[1])  # SmoothQuant: max|X|^a / max|W|^(1-a)
    assert scales[2] == pytest.approx(0.05 * scales.max())  # the dead channel: amplified at most 1/floor
    assert np.max(absmax / scales) == pytest.approx(absmax.max())  # the widest channel keeps the range
    depthwise_only = smoothing_scales(np.array([4.0, 1.0]), [(np.ones((2, 1, 3, 3)), 2)], alpha=1.0)
    assert depthwise_only == pytest.approx([1.0, 0.25])  # per-channel weight groups: activations alone decide


def _int8_error(values: np.ndarray, amax: float) -> float:
    step = amax / 127
    return float(np.sum((values - np.round(np.minimum(values, amax) / step) * step) ** 2))


def test_mse_range_keeps_a_uniform_tail_and_clips_outliers():
    rng = np.random.default_rng(0)
    uniform = np.abs(rng.uniform(-1, 1, 100_000))
    counts, _ = np.histogram(uniform, bins=4096, range=(0, uniform.max()))
    assert mse_optimal_amax(counts, uniform.max()) > 0.97 * uniform.max()
    tailed = np.abs(np.concatenate([rng.normal(0, 1, 100_000), [60.0]]))  # one outlier far out
    counts, _ = np.histogram(tailed, bins=4096, range=(0, tailed.max()))
    amax = mse_optimal_amax(counts, tailed.max())
    assert amax < 0.75 * tailed.max()
    # Within 1% of the best range on a fine grid, measured on the raw values.
    best = min(_int8_error(tailed, a) for a in np.linspace(1.0, 60.0, 300))
    assert _int8_error(tailed, amax) <= 1.01 * best < _int8_error(tailed, tailed.max())


def test_statistics_in_one_pass_with_a_growing_range():
    model = _one_conv_model([0, 0, 0, 0])
    rng = np.random.default_rng(2)
    # Later batches reach further: the histogram range doubles and bins merge, nothing is lost.
    images = np.concatenate([rng.normal(0, scale, size=(4, 3, 16, 8)) for scale in (0.1, 1.0, 5.0)]).astype(np.float32)
    stats = collect_statistics(model, images, "images", ["images", "out"], per_channel=True, batch=4)
    outputs = _run(model, images)
    for name, values in (("images", images), ("out", outputs)):
        entry = stats[name]
        assert entry.absmax == pytest.approx(np.abs(values).max(), rel=1e-6) and entry.hist_range >= entry.absmax
        assert entry.histogram.sum() == values.size
        direct, _ = np.histogram(np.abs(values), bins=len(entry.histogram), range=(0, entry.hist_range))
        # Same values in the same range: only the bins of values seen before a range change may differ, by one bin.
        assert np.abs(np.cumsum(direct) - np.cumsum(entry.histogram)).max() <= 0.1 * values.size
        assert entry.channel_absmax == pytest.approx(np.abs(values).max(axis=(0, 2, 3)), rel=1e-6)
        assert mse_optimal_amax(entry.histogram, entry.hist_range, absmax=entry.absmax) == pytest.approx(
            mse_optimal_amax(direct, entry.hist_range, absmax=entry.absmax), rel=0.05
        )


def test_held_out_split_is_disjoint_and_keeps_runs_together():
    split = split_pool(500, block=25)
    selection, heldout = split.selection, split.heldout
    assert len(selection) == len(heldout) == 250
    assert (split.block, split.whole_frames) == (25, False)
    assert split.description() == "alternate runs of about 25 consecutive crops"
    assert set(selection).isdisjoint(heldout) and set(selection) | set(heldout) == set(range(500))
    assert list(selection[:26]) == list(range(25)) + [50] and list(heldout[:2]) == [25, 26]
    small = split_pool(99, block=25)  # too small for two runs per split: alternate crops, and it says so
    assert list(small.selection) == list(range(0, 99, 2)) and list(small.heldout) == list(range(1, 99, 2))
    assert small.block == 1 and small.description() == "alternate single crops"
    assert split_pool(100, block=25).block == 25
    with pytest.raises(ValueError):
        split_pool(10)


def test_held_out_split_of_a_video_pool_never_splits_a_frame():
    frames = [10 * (i // 4) for i in range(200)] + [2000] * 7  # four people a frame, then a crowded frame
    split = split_pool(len(frames), block=25, frames=frames)
    selection, heldout = split.selection, split.heldout
    assert split.description() == "alternate runs of about 25 consecutive crops, whole frames"
    assert set(selection).isdisjoint(heldout) and set(selection) | set(heldout) == set(range(len(frames)))
    side = {frames[i]: "selection" for i in selection}
    assert all(side.get(frames[i]) is None for i in heldout)  # no frame on both sides
    runs = np.flatnonzero(np.diff(np.isin(np.arange(len(frames)), heldout).astype(int))) + 1
    assert all(frames[r] != frames[r - 1] for r in runs)  # runs change only where the frame changes
    assert abs(len(selection) - len(heldout)) <= 40 and len(runs) >= 6  # both sides spread over the video
    with pytest.raises(ValueError, match="frame indices"):
        split_pool(100, frames=[0] * 99)
    crowded = split_pool(100, block=25, frames=[0] * 95 + list(range(1, 6)))  # one frame holds most crops: crops are split
    assert not crowded.whole_frames and crowded.description() == "alternate runs of about 25 consecutive crops"
    assert split_pool(30, block=25, frames=list(range(30))).description() == "alternate single frames"


def test_boundaries_count_precision_changes_between_connected_layers(osnet):
    model, _, _ = osnet
    layers = quantizable_nodes(model)
    assert precision_boundaries(model, layers, layers) == 0
    assert precision_boundaries(model, layers, []) == 0
    first = layers[0]  # conv1 feeds the first block's conv1 (through ReLU and max pooling) and its downsample
    assert precision_boundaries(model, layers, [first]) == 2


def test_small_isolated_int8_layers_are_islands(osnet):
    model, _, _ = osnet
    layers = quantizable_nodes(model)
    macs = layer_macs(model, layers)
    depthwise = next(name for name in layers if name.endswith("conv2a/conv2/Conv"))
    pointwise = next(name for name in layers if name.endswith("conv2a/conv1/Conv"))  # feeds the depthwise conv
    assert int8_islands(model, layers, [depthwise], macs) == [depthwise]
    assert int8_islands(model, layers, [depthwise, pointwise], macs) == []  # a region of two, not an island
    assert int8_islands(model, layers, [layers[0]], macs) == []  # conv1: 23% of the MACs is worth its boundaries


def test_float_layers_between_int8_neighbours_are_holes(osnet):
    model, _, _ = osnet
    layers = quantizable_nodes(model)
    depthwise = next(name for name in layers if name.endswith("conv2a/conv2/Conv"))
    pointwise = next(name for name in layers if name.endswith("conv2a/conv1/Conv"))
    everything_else = [name for name in layers if name != depthwise]
    assert float_holes(model, layers, everything_else, [depthwise]) == [depthwise]
    assert float_holes(model, layers, [n for n in everything_else if n != pointwise], [depthwise, pointwise]) == []


def test_region_edges_are_float_layers_next_to_int8(osnet):
    model, _, _ = osnet
    layers = quantizable_nodes(model)
    depthwise = next(name for name in layers if name.endswith("conv2a/conv2/Conv"))
    pointwise = next(name for name in layers if name.endswith("conv2a/conv1/Conv"))  # feeds the depthwise conv
    far = layers[-2]  # a layer of the last block: not connected to conv2a of the first
    assert region_edges(model, layers, [pointwise], [far, depthwise]) == [depthwise]
    assert region_edges(model, layers, [pointwise, depthwise], [depthwise]) == []  # already INT8
    assert region_edges(model, layers, [], [depthwise, pointwise]) == []  # no region to extend
