"""How far quantization-aware fine-tuning (QAT) gets whole-network INT8 of the bundled OSNet x0.25.

A probe, not part of ``edge-reid calibrate``: it needs PyTorch and ``onnx2torch``, which edge-reid
does not depend on, so run it in an environment that has them (``pip install torch onnx2torch``)::

    python benchmarks/int8_qat_probe.py --epochs 10 --lr 1e-5

Every Conv but the pooled-input ones (the calibration's rule) is fake-quantized as the Q/DQ model
computes: weights per output channel, symmetric, 127 levels (scale from the largest |w|);
inputs per tensor, MSE-optimal ranges, non-negative inputs on the centred 255-level grid
(``edge_reid.calibration.centring``), signed ones symmetric; the first conv's input is left
exact (input folding makes it exact in the real recipe). Activation scales are learnt (LSQ-style:
Esser et al., ICLR 2020), weights and biases fine-tuned through straight-through rounding by
distillation, loss ``1 - cosine`` to the FP32 model's embedding, on the calibration crops of
``--data`` and their mirror images only. Fidelity is measured as ``calibrate`` reports it, on the
held-out half of the pool cut from the video (never trained on). No GPTQ, bias correction or
guard: the rows compare round-to-nearest PTQ with QAT on the same fake quantizers.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common: the repository on the path, the default video
from _common import benchmark_parser, shared_dir, video_path  # noqa: E402

from edge_reid.assets import DEFAULT_REID_MODEL  # noqa: E402
from edge_reid.calibration.activations import HISTOGRAM_BINS, mse_optimal_amax  # noqa: E402
from edge_reid.calibration.pool import load_pool, split_pool  # noqa: E402
from edge_reid.calibration.reader import preprocess_all  # noqa: E402
from edge_reid.data.images import read_images  # noqa: E402
from edge_reid.data.market1501 import calibration_order  # noqa: E402
from edge_reid.evaluation.agreement import compare_embeddings  # noqa: E402
from edge_reid.spec import load_spec  # noqa: E402


def _torch_model(path: Path):
    """The ONNX model as a torch module; its (N, 512) BatchNormalization (BNNeck, eval mode) becomes
    ``x * a + b`` first (onnx2torch needs a known spatial rank for BatchNormalization)."""
    from onnx import helper, numpy_helper
    from onnx2torch import convert

    model = onnx.load(str(path))
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for index, node in enumerate(list(model.graph.node)):
        if node.op_type != "BatchNormalization":
            continue
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        scale, bias, mean, var = (values[name] for name in node.input[1:5])
        gain = scale / np.sqrt(var + epsilon)
        names = (f"{node.name}__gain", f"{node.name}__shift", f"{node.name}__scaled")
        model.graph.initializer.extend([
            numpy_helper.from_array(gain.astype(np.float32), names[0]),
            numpy_helper.from_array((bias - mean * gain).astype(np.float32), names[1]),
        ])
        model.graph.node.remove(node)
        model.graph.node.insert(index, helper.make_node("Mul", [node.input[0], names[0]], [names[2]]))
        model.graph.node.insert(index + 1, helper.make_node("Add", [names[2], names[1]], [node.output[0]]))
    return convert(model).eval()


def _fake_quant(torch, x, scale, low: int, high: int):
    """Round-to-nearest on the grid ``scale * [low, high]`` with straight-through gradients (LSQ-style for ``scale``)."""
    v = torch.clamp(x / scale, low, high)
    return ((v.round() - v).detach() + v) * scale


def _mse_range(values: np.ndarray, levels: int) -> float:
    """The calibration's MSE-optimal range (:func:`mse_optimal_amax`) of ``values`` on a grid of ``levels`` steps above zero."""
    magnitudes = np.abs(values)
    top = float(magnitudes.max())
    histogram, _ = np.histogram(magnitudes, bins=HISTOGRAM_BINS, range=(0.0, top))
    return mse_optimal_amax(histogram, top, levels=levels, absmax=top)


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--model", type=Path, default=DEFAULT_REID_MODEL)
    parser.add_argument("--data", type=Path, default=shared_dir() / "data" / "mot17-reid-mini",
                        help="labelled crops, Market-1501 layout (default: data/mot17-reid-mini in $EDGE_REID_SHARED or ../shared)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-5, help="Adam learning rate of weights and biases (scales: 1e-3)")
    parser.add_argument("--report-every", type=int, default=5, help="epochs between held-out measurements")
    args = parser.parse_args()
    try:
        import torch
        import onnx2torch  # noqa: F401
    except ImportError as exc:
        print(f"needs PyTorch and onnx2torch ({exc.name} is not installed): pip install torch onnx2torch", file=sys.stderr)
        return 2
    torch.set_num_threads(2)
    torch.manual_seed(0)
    spec = load_spec(args.model)
    calibration, _, _ = read_images(calibration_order(args.data, 0), limit=500)
    pool = load_pool(video_path(args), None, 500)
    heldout = split_pool(len(pool.crops), frames=pool.frames).heldout
    train = torch.from_numpy(preprocess_all(calibration, spec))
    train = torch.cat([train, train.flip(3)])
    held = torch.from_numpy(preprocess_all([pool.crops[i] for i in heldout], spec))

    class FakeQuantConv(torch.nn.Module):
        def __init__(self, conv) -> None:
            super().__init__()
            self.conv, self.enabled, self.quantize_input, self.nonnegative = conv, False, True, False
            self.log_scale = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            if not self.enabled:
                return self.conv(x)
            weight = self.conv.weight
            weight_scale = weight.detach().abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12) / 127
            weight = _fake_quant(torch, weight, weight_scale, -127, 127)
            if self.quantize_input:
                scale = self.log_scale.exp()
                x = _fake_quant(torch, x, scale, 0, 254) if self.nonnegative else _fake_quant(torch, x, scale, -127, 127)
            conv = self.conv
            return torch.nn.functional.conv2d(x, weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)

    teacher = _torch_model(args.model)
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    student = copy.deepcopy(teacher)
    for parameter in student.parameters():
        parameter.requires_grad_(True)
    wrapped: dict[str, FakeQuantConv] = {}
    for name, module in list(student.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Conv2d):
                wrapper = FakeQuantConv(child)
                setattr(module, child_name, wrapper)
                wrapped[f"{name}.{child_name}"] = wrapper
    inputs: dict[str, list] = {}
    hooks = [w.register_forward_pre_hook(lambda m, a, n=n: inputs.setdefault(n, []).append(a[0].detach())) for n, w in wrapped.items()]
    with torch.no_grad():
        student(train[:64])
    for hook in hooks:
        hook.remove()
    first = next(iter(wrapped))
    for name, wrapper in wrapped.items():
        values = torch.cat(inputs[name])
        if values.shape[2] == 1 and values.shape[3] == 1:
            continue  # pooled input: float by rule, as in the calibration
        wrapper.enabled = True
        if name == first:
            wrapper.quantize_input = False  # input folding makes the image input exact
            continue
        wrapper.nonnegative = bool(values.min() >= 0)
        levels = 254 if wrapper.nonnegative else 127
        wrapper.log_scale.data.fill_(float(np.log(_mse_range(values.numpy(), levels) / levels)))
    enabled = [w for w in wrapped.values() if w.enabled]

    def embed(model, images):
        with torch.no_grad():
            return torch.cat([torch.nn.functional.normalize(model(images[i : i + 64]), dim=1) for i in range(0, len(images), 64)]).numpy()

    reference = embed(teacher, held)
    print(f"{len(enabled)} convs INT8 ({sum(w.nonnegative for w in enabled)} on centred non-negative inputs); "
          f"training crops {len(train)} (with mirrors), held-out pool crops {len(held)}")
    print("| model | mean cos | 1% cos | top-1 % | top-1 outside near-ties % | top-5 % | train 1 - cos |")
    print("|---|---:|---:|---:|---:|---:|---:|")

    def row(label: str, train_loss: str = "") -> None:
        a = compare_embeddings(reference, embed(student, held))
        print(f"| {label} | {a.mean_cosine:.5f} | {a.p1_cosine:.5f} | {100 * a.top1:.1f} | {100 * a.top1_outside_ties:.1f} | {100 * a.top5:.1f} | {train_loss} |", flush=True)

    row("round-to-nearest PTQ (MSE ranges, centred)")
    weights = [p for n, p in student.named_parameters() if not n.endswith("log_scale")]
    scales = [p for n, p in student.named_parameters() if n.endswith("log_scale")]
    optimizer = torch.optim.Adam([{"params": weights, "lr": args.lr}, {"params": scales, "lr": 1e-3}])
    with torch.no_grad():
        target = torch.cat([torch.nn.functional.normalize(teacher(train[i : i + 64]), dim=1) for i in range(0, len(train), 64)])
    for epoch in range(1, args.epochs + 1):
        started, order, total = time.perf_counter(), torch.randperm(len(train)), 0.0
        for start in range(0, len(train), 32):
            batch = order[start : start + 32]
            loss = (1 - (torch.nn.functional.normalize(student(train[batch]), dim=1) * target[batch]).sum(1)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        if epoch % args.report_every == 0 or epoch == args.epochs:
            row(f"QAT, {epoch} epochs (lr {args.lr:g}, {time.perf_counter() - started:.0f} s/epoch)", f"{total / len(train):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
