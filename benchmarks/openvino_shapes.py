"""OpenVINO on the CPU: a fixed batch against a dynamic batch, and edge-reid's backend, side by side.

For each thread count and each number of rows per call, images/s of the bundled OSNet x0.25
(random input: speed does not depend on the pixels), median of alternating rounds, three ways:

- ``fixed``: the model compiled for exactly that batch, one request (OpenVINO's latency mode);
- ``dynamic``: the model compiled once with a dynamic batch, one request (the backend before);
- ``edge-reid``: :class:`edge_reid.backends.openvino.OpenVinoBackend` (max batch 32): single rows
  on every thread, 4-row chunks side by side on its streams.

    python benchmarks/openvino_shapes.py --threads 1,2 --rows 1,2,4,8,13,16,32

It needs OpenVINO (``pip install openvino``): without it, it exits with status 2 and one line.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common: the repository on the path
from _common import benchmark_parser, require_openvino  # noqa: E402

from edge_reid.assets import DEFAULT_REID_MODEL  # noqa: E402
from edge_reid.backends.openvino import OpenVinoBackend  # noqa: E402
from edge_reid.spec import load_spec  # noqa: E402


def _compiled(core, spec, batch: int | None, threads: int):
    """The bundled model compiled for ``batch`` rows (None: a dynamic batch), latency mode, f32."""
    model = core.read_model(str(DEFAULT_REID_MODEL))
    model.reshape({spec.input_name: [batch or -1, 3, spec.height, spec.width]})
    return core.compile_model(
        model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False, "INFERENCE_NUM_THREADS": threads}
    )


def _request_call(ov, compiled, spec, rows: int):
    """A call of ``rows`` rows on one request of ``compiled``."""
    request = compiled.create_infer_request()
    images = np.random.default_rng(0).random((rows, 3, spec.height, spec.width), np.float32)
    request.set_input_tensor(ov.Tensor(images, shared_memory=True))

    def call() -> None:
        request.infer()  # the closure keeps the compiled model and the images alive as long as the request

    call.keep = (compiled, images)
    return call


def _backend_call(spec, threads: int, rows: int, backends: dict):
    if threads not in backends:
        backends[threads] = OpenVinoBackend(DEFAULT_REID_MODEL, spec, max_batch=32, threads=threads)
    backend = backends[threads]
    backend.buffers.input[:rows] = np.random.default_rng(0).random((rows, 3, spec.height, spec.width), np.float32)
    return lambda: backend.infer(rows)


def _rate(call, rows: int, seconds: float) -> float:
    call()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call()
        calls += 1
    return calls * rows / (time.perf_counter() - start)


def main() -> int:
    parser = benchmark_parser(__doc__, video=False)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default: %(default)s)")
    parser.add_argument("--rows", default="1,2,4,8,13,16,32", help="comma-separated rows per call, at most 32 (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per point and round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is printed (default: %(default)s)")
    args = parser.parse_args()
    ov = require_openvino()  # exits with status 2 and one line where it is not installed
    core = ov.Core()
    spec = load_spec(DEFAULT_REID_MODEL)
    row_counts = [int(r) for r in args.rows.split(",")]
    if any(not 1 <= r <= 32 for r in row_counts):
        print(f"openvino_shapes.py: --rows must lie in 1..32, got {args.rows}", file=sys.stderr)
        return 2
    backends: dict = {}
    print(f"OpenVINO {ov.__version__.split('-')[0]}, bundled OSNet x0.25, fp32, images/s (median of {args.rounds} alternating rounds)")
    print("| threads | rows per call | fixed batch | dynamic batch | edge-reid backend | fixed / dynamic | edge-reid / dynamic |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for threads in (int(t) for t in args.threads.split(",")):
        dynamic = _compiled(core, spec, None, threads)
        for rows in row_counts:
            calls = {
                "fixed": _request_call(ov, _compiled(core, spec, rows, threads), spec, rows),
                "dynamic": _request_call(ov, dynamic, spec, rows),
                "edge-reid": _backend_call(spec, threads, rows, backends),
            }
            rates: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(args.rounds):
                for name, call in calls.items():
                    rates[name].append(_rate(call, rows, args.seconds))
            fixed, dyn, ours = (statistics.median(rates[name]) for name in ("fixed", "dynamic", "edge-reid"))
            print(f"| {threads} | {rows} | {fixed:.0f} | {dyn:.0f} | {ours:.0f} | {fixed / dyn:.2f}x | {ours / dyn:.2f}x |", flush=True)
    for backend in backends.values():
        backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
