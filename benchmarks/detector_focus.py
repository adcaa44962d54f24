"""The person detector with and without its Focus stem folded into one strided conv, per CPU backend.

``edge_reid.backends.detector_graph`` rewrites YOLOX's space-to-depth stem (8 Slices + Concat + a
3x3 conv) as one 6x6 stride-2 conv when the detector loads. This script times the detector model
(``backend.run()`` on a letterboxed vtest frame, what ``edge-reid run`` calls per frame) both ways,
alternating, on each backend and thread count, and prints the largest output difference. For
docs/benchmarks.md:

    python benchmarks/detector_focus.py --backend onnxruntime,openvino --threads 1,2 --runs 200 --repeats 3
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

def make_detector(backend: str, threads: int, folded: bool) -> PersonDetector:
    """The detector at the model's full 416x416 input, with or without the Focus rewrite."""
    if folded:
        return PersonDetector(backend=backend, threads=threads, rectangular=False)
    with mock.patch.object(detector_graph, "fold_focus", lambda model: False):
        return PersonDetector(backend=backend, threads=threads, rectangular=False)


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
    print(f"{cpu_model()} ({' '.join(cpu_isa_flags())})")
    rows = []
    for backend in [name.strip() for name in args.backend.split(",") if name.strip()]:
        for threads in [int(t) for t in args.threads.split(",")]:
            detectors = {folded: make_detector(backend, threads, folded) for folded in (False, True)}
            outputs = {}
            for folded, detector in detectors.items():
                detector._letterbox(frame)
                outputs[folded] = detector.backend.run().copy()
            difference = float(np.abs(outputs[True] - outputs[False]).max())
            ms: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.repeats):
                for folded, detector in detectors.items():
                    ms[folded].append(ms_per_run(detector, args.runs))
            for detector in detectors.values():
                detector.close()
            as_is, folded = statistics.median(ms[False]), statistics.median(ms[True])
            rows.append((backend, threads, as_is, folded, difference))
            print(f"{backend:11s} {threads} threads: as is {as_is:.2f} ms, folded {folded:.2f} ms (x{as_is / folded:.2f}), "
                  f"max |difference| {difference:.1e}", flush=True)
    print("\n| backend | threads | as is, ms | Focus folded, ms | speed-up | max abs output difference |\n|---|---:|---:|---:|---:|---:|")
    for backend, threads, as_is, folded, difference in rows:
        print(f"| {backend} | {threads} | {as_is:.2f} | {folded:.2f} | x{as_is / folded:.2f} | {difference:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
