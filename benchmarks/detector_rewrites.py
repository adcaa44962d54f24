"""The person detector with and without the rewrites it gets at load, per CPU backend.

``edge_reid.backends.detector_graph`` folds YOLOX's space-to-depth stem (8 Slices + Concat + a 3x3
conv) into one 6x6 stride-2 conv, and ``PersonDetector`` runs the network on the smallest
stride-multiple rectangle that holds the letterboxed frame (320x416 for vtest's 768x576) instead of
its 416x416 square. This script times the detector model (``backend.run()`` on a letterboxed vtest
frame, what ``edge-reid run`` calls per frame) three ways, alternating, on each backend and thread
count, and prints the largest output difference of the Focus rewrite (the rectangle computes
another input, so its outputs are not comparable cell by cell; tests compare its detections). For
docs/benchmarks.md:

    python benchmarks/detector_rewrites.py --backend onnxruntime,openvino --threads 1,2 --runs 200 --repeats 3

Without OpenVINO installed, its rows are left out (one line says so) and the others measured.

``--bf16`` (OpenVINO, a CPU with AMX or AVX512-BF16) also times the rectangular detector in bf16
(``--detector-precision bf16``) in the same rounds, and counts how many of its fp32 twin's boxes it
finds again (IoU >= 0.9) on every 4th of the video's first 200 frames (on a CPU without bf16, or
without OpenVINO among the backends, the bf16 rows are left out with a line saying why):

    python benchmarks/detector_rewrites.py --backend openvino --threads 1,2 --runs 200 --repeats 3 --bf16

``--sizes 640,832`` also times the rectangular detector with larger inputs (``--detector-size``, the
long side in pixels) in the same rounds, as a ratio to the model's own 416:

    python benchmarks/detector_rewrites.py --backend onnxruntime,openvino --threads 1,2 --runs 100 --repeats 3 --sizes 640,832
"""

from __future__ import annotations

import statistics
import sys
import time
from unittest import mock

import numpy as np
from _common import benchmark_parser, openvino_bf16_note, usable_backends, video_frames

import edge_reid.backends.detector_graph as detector_graph
from edge_reid.cpu import cpu_isa_flags, cpu_model
from edge_reid.detector import PersonDetector
from edge_reid.tracking.boxes import iou_matrix

VARIANTS = ("as is", "Focus folded", "Focus folded, rectangular")
BF16 = "Focus folded, rectangular, bf16"
SIZE = "Focus folded, rectangular, input "  # + the long side in pixels


def size_variant(size: int) -> str:
    """The name of the rectangular detector at ``--detector-size size``."""
    return f"{SIZE}{size}"


def make_detector(backend: str, threads: int, variant: str, frame: np.ndarray) -> PersonDetector:
    """The detector for one variant, its input written from ``frame``."""
    if variant == "as is":
        with mock.patch.object(detector_graph, "fold_focus", lambda model: False):
            detector = PersonDetector(backend=backend, threads=threads, rectangular=False)
    elif variant.startswith(SIZE):
        detector = PersonDetector(backend=backend, threads=threads, input_size=int(variant.removeprefix(SIZE)))
    else:
        detector = PersonDetector(backend=backend, threads=threads, rectangular="rectangular" in variant,
                                  precision="bf16" if variant == BF16 else "fp32")
    detector.detect(frame)  # fits the rectangle to the frame, and writes the input
    return detector


def boxes_found_again(reference: PersonDetector, other: PersonDetector, frames: list[np.ndarray]) -> tuple[int, int]:
    """(how many of ``reference``'s boxes ``other`` finds at IoU >= 0.9, how many ``reference`` found) over ``frames``."""
    again = total = 0
    for image in frames:
        expected, found = reference.detect(image), other.detect(image)
        total += len(expected)
        if len(expected) and len(found):
            again += int((iou_matrix(expected.boxes, found.boxes).max(axis=1) >= 0.9).sum())
    return again, total


def ms_per_run(detector: PersonDetector, runs: int) -> float:
    for _ in range(10):
        detector.backend.run()
    start = time.perf_counter()
    for _ in range(runs):
        detector.backend.run()
    return (time.perf_counter() - start) / runs * 1e3


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--backend", default="onnxruntime,openvino", help="comma-separated CPU backends")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bf16", action="store_true", help="OpenVINO: also the rectangular detector in bf16")
    parser.add_argument("--sizes", default="", help="comma-separated larger input sizes (long side, pixels) to time too, e.g. 640,832")
    args = parser.parse_args()
    try:
        sizes = [int(size) for size in args.sizes.split(",") if size.strip()]
    except ValueError:
        parser.error(f"--sizes takes whole numbers of pixels separated by commas, got {args.sizes!r}")
    backends = usable_backends(args.backend)  # without OpenVINO where it is not installed (said so)
    bf16 = args.bf16
    if bf16 and "openvino" not in backends:
        print("--bf16: skipped (it times OpenVINO, which is not among the backends measured)")
        bf16 = False
    if bf16 and (why := openvino_bf16_note()):
        print(f"--bf16: skipped ({why})")
        bf16 = False
    frames = video_frames(args, 200 if bf16 else 1)
    frame = frames[0]
    print(f"{cpu_model()} ({' '.join(cpu_isa_flags())}); frame {frame.shape[1]}x{frame.shape[0]}")
    rows, bf16_rows, size_rows = [], [], []
    frames = frames[::4] if bf16 else []
    for backend in backends:
        for threads in [int(t) for t in args.threads.split(",")]:
            variants = VARIANTS + ((BF16,) if bf16 and backend == "openvino" else ()) + tuple(size_variant(s) for s in sizes)
            detectors = {variant: make_detector(backend, threads, variant, frame) for variant in variants}
            as_is, folded = (detectors[v].backend.run().copy() for v in VARIANTS[:2])
            difference = float(np.abs(folded - as_is).max())
            found = boxes_found_again(detectors[VARIANTS[2]], detectors[BF16], frames) if BF16 in detectors else None
            ms: dict[str, list[float]] = {variant: [] for variant in variants}
            for _ in range(args.repeats):
                for variant, detector in detectors.items():
                    ms[variant].append(ms_per_run(detector, args.runs))
            medians = {variant: statistics.median(values) for variant, values in ms.items()}
            shape = detectors[VARIANTS[2]].backend.input.shape[2:]
            for size in sizes:
                size_shape = detectors[size_variant(size)].backend.input.shape[2:]
                size_rows.append((backend, threads, size, size_shape, medians[VARIANTS[2]], medians[size_variant(size)], shape))
            for detector in detectors.values():
                detector.close()
            rows.append((backend, threads, medians, difference, shape))
            if found is not None:
                bf16_rows.append((threads, medians[VARIANTS[2]], medians[BF16], found))
            print(f"{backend:11s} {threads} threads: " + ", ".join(f"{v} {m:.2f} ms" for v, m in medians.items())
                  + f" (rectangle {shape[0]}x{shape[1]}); Focus max |difference| {difference:.1e}", flush=True)
    print("\n| backend | threads | as is, ms | Focus folded, ms | + rectangular input, ms | speed-up, both | Focus: max abs output difference |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, threads, medians, difference, shape in rows:
        as_is, folded, rectangular = (medians[v] for v in VARIANTS)
        print(f"| {backend} | {threads} | {as_is:.2f} | {folded:.2f} (x{as_is / folded:.2f}) | {rectangular:.2f} ({shape[0]}x{shape[1]}) "
              f"| x{as_is / rectangular:.2f} | {difference:.1e} |")
    if bf16_rows:
        print(f"\n| OpenVINO, rectangular input | threads | fp32, ms | bf16, ms | speed-up | fp32 boxes found again in bf16 (IoU >= 0.9), {len(frames)} frames |")
        print("|---|---:|---:|---:|---:|---:|")
        for threads, fp32, bf16, (again, total) in bf16_rows:
            print(f"| | {threads} | {fp32:.2f} | {bf16:.2f} | x{fp32 / bf16:.2f} | {again} of {total} |")
    if size_rows:
        print("\n| backend | threads | model's own input, ms | --detector-size | input | ms | time ratio | pixel ratio |")
        print("|---|---:|---:|---:|---|---:|---:|---:|")
        for backend, threads, size, size_shape, own, larger, shape in size_rows:
            pixels = (size_shape[0] * size_shape[1]) / (shape[0] * shape[1])
            print(f"| {backend} | {threads} | {own:.2f} ({shape[0]}x{shape[1]}) | {size} | {size_shape[0]}x{size_shape[1]} | "
                  f"{larger:.2f} | x{larger / own:.2f} | x{pixels:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
