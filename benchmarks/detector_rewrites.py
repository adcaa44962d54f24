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
"""

from __future__ import annotations

import statistics
import sys
import time
from unittest import mock

import cv2
import numpy as np
from _common import benchmark_parser, video_path

import edge_reid.backends.detector_graph as detector_graph
from edge_reid.cpu import cpu_isa_flags, cpu_model
from edge_reid.detector import PersonDetector

VARIANTS = ("as is", "Focus folded", "Focus folded, rectangular")


def make_detector(backend: str, threads: int, variant: str, frame: np.ndarray) -> PersonDetector:
    """The detector for one variant, its input written from ``frame``."""
    if variant == "as is":
        with mock.patch.object(detector_graph, "fold_focus", lambda model: False):
            detector = PersonDetector(backend=backend, threads=threads, rectangular=False)
    else:
        detector = PersonDetector(backend=backend, threads=threads, rectangular=variant.endswith("rectangular"))
    detector.detect(frame)  # fits the rectangle to the frame, and writes the input
    return detector


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
    args = parser.parse_args()
    capture = cv2.VideoCapture(str(video_path(args)))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        print(f"cannot read a frame of {video_path(args)}", file=sys.stderr)
        return 1
    print(f"{cpu_model()} ({' '.join(cpu_isa_flags())}); frame {frame.shape[1]}x{frame.shape[0]}")
    rows = []
    for backend in [name.strip() for name in args.backend.split(",") if name.strip()]:
        for threads in [int(t) for t in args.threads.split(",")]:
            detectors = {variant: make_detector(backend, threads, variant, frame) for variant in VARIANTS}
            as_is, folded = (detectors[v].backend.run().copy() for v in VARIANTS[:2])
            difference = float(np.abs(folded - as_is).max())
            ms: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
            for _ in range(args.repeats):
                for variant, detector in detectors.items():
                    ms[variant].append(ms_per_run(detector, args.runs))
            medians = {variant: statistics.median(values) for variant, values in ms.items()}
            shape = detectors[VARIANTS[2]].backend.input.shape[2:]
            for detector in detectors.values():
                detector.close()
            rows.append((backend, threads, medians, difference, shape))
            print(f"{backend:11s} {threads} threads: " + ", ".join(f"{v} {m:.2f} ms" for v, m in medians.items())
                  + f" (rectangle {shape[0]}x{shape[1]}); Focus max |difference| {difference:.1e}", flush=True)
    print("\n| backend | threads | as is, ms | Focus folded, ms | + rectangular input, ms | speed-up, both | Focus: max abs output difference |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, threads, medians, difference, shape in rows:
        as_is, folded, rectangular = (medians[v] for v in VARIANTS)
        print(f"| {backend} | {threads} | {as_is:.2f} | {folded:.2f} (x{as_is / folded:.2f}) | {rectangular:.2f} ({shape[0]}x{shape[1]}) "
              f"| x{as_is / rectangular:.2f} | {difference:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
