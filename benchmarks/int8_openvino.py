"""INT8 Q/DQ model vs FP32 on a CPU runtime with real integer kernels (OpenVINO), side by side.

OpenVINO turns the Q/DQ pairs of the model ``edge-reid calibrate`` writes into its INT8
kernels (VNNI/AMX where the CPU has them). One process, the same real crops (cut from
vtest.avi), FP32 and INT8 alternating in rounds; prints images/s per batch size, the
ratio, and the INT8-vs-FP32 mean cosine of OpenVINO's own INT8 arithmetic:

    pip install openvino
    edge-reid calibrate --data ../shared/data/mot17-reid-mini --pool ../shared/data/vtest.avi --out calibration/
    python benchmarks/int8_openvino.py --int8 calibration/osnet_x0_25_msmt17-int8-qdq.onnx --batch 1,8,32

Without OpenVINO it exits with status 2 and one line, before any work. Every batch is cut from the
crops: a ``--batch`` larger than ``--max-crops`` is a usage error, and one larger than the crops
found (a short video, a small ``--crops`` folder) is left out with a line saying so.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common: the repository on the path, the default video
from _common import benchmark_parser, real_crops, require_openvino  # noqa: E402

from edge_reid.assets import DEFAULT_REID_MODEL  # noqa: E402
from edge_reid.calibration.reader import preprocess_all  # noqa: E402
from edge_reid.spec import load_spec  # noqa: E402


def compile_model(ov, path: Path, batch: int, threads: int | None):
    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({model.inputs[0].get_any_name(): [batch, *list(model.inputs[0].get_partial_shape())[1:]]})
    config = {"PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return core.compile_model(model, "CPU", config)


def embed(compiled, images: np.ndarray, batch: int) -> np.ndarray:
    """The normalised embeddings of ``images`` in whole batches of ``batch`` (at most len(images)) rows; a shorter tail is left out."""
    request = compiled.create_infer_request()
    outputs = []
    for start in range(0, len(images) - batch + 1, batch):
        request.infer({0: images[start : start + batch]})
        outputs.append(request.get_output_tensor(0).data.copy())
    raw = np.concatenate(outputs)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def images_per_second(compiled, images: np.ndarray, batch: int, seconds: float) -> float:
    """images/s of ``compiled`` on the first ``batch`` (at most len(images)) of ``images``, for ``seconds``."""
    request = compiled.create_infer_request()
    chunk = images[:batch]
    request.infer({0: chunk})  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        request.infer({0: chunk})
        done += batch
    return done / (time.perf_counter() - started)


def batch_sizes(text: str) -> list[int]:
    """``--batch``: comma-separated whole numbers >= 1."""
    try:
        sizes = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not whole numbers: {text!r} (e.g. 1,8,32)") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return sizes


def main() -> int:
    parser = benchmark_parser(__doc__, crops=256)  # --video, --crops FOLDER, --max-crops
    parser.add_argument("--fp32", type=Path, default=DEFAULT_REID_MODEL, help="FP32 ONNX model")
    parser.add_argument("--int8", type=Path, required=True, help="Q/DQ model from edge-reid calibrate (its .json sidecar beside it)")
    parser.add_argument("--batch", type=batch_sizes, default="1,8,32", help="comma-separated batch sizes (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="per model, batch and round")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if max(args.batch) > args.max_crops:
        parser.error(f"--batch {max(args.batch)} is larger than --max-crops {args.max_crops}: each batch is cut from the crops")
    ov = require_openvino()  # exits with status 2 and one line where it is not installed
    crops = real_crops(args).crops
    batches = [batch for batch in args.batch if batch <= len(crops)]
    for batch in args.batch:
        if batch > len(crops):
            print(f"batch {batch}: skipped (only {len(crops)} crops)")
    if not batches:
        print(f"int8_openvino.py: every --batch is larger than the {len(crops)} crops found", file=sys.stderr)
        return 2
    fp32_spec, int8_spec = load_spec(args.fp32), load_spec(args.int8)
    fp32_images, int8_images = preprocess_all(crops, fp32_spec), preprocess_all(crops, int8_spec)
    print(f"OpenVINO {ov.__version__}; CPU capabilities: {', '.join(ov.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))}")
    print("| batch | FP32 images/s | INT8 images/s | INT8 / FP32 | mean cosine INT8 vs FP32 |")
    print("|---:|---:|---:|---:|---:|")
    for batch in batches:
        fp32, int8 = compile_model(ov, args.fp32, batch, args.threads), compile_model(ov, args.int8, batch, args.threads)
        cosine = float(np.mean(np.sum(embed(fp32, fp32_images, batch) * embed(int8, int8_images, batch), axis=1)))
        rates = {"fp32": [], "int8": []}
        for _ in range(args.rounds):
            rates["fp32"].append(images_per_second(fp32, fp32_images, batch, args.seconds))
            rates["int8"].append(images_per_second(int8, int8_images, batch, args.seconds))
        f, i = float(np.median(rates["fp32"])), float(np.median(rates["int8"]))
        print(f"| {batch} | {f:.0f} | {i:.0f} | {i / f:.2f} | {cosine:.5f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
