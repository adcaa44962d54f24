"""CPU backends side by side: ONNX Runtime (optimisation levels) and OpenVINO (FP32, BF16, INT8), then `edge-reid run`.

1. Model only, bundled OSNet x0.25 on real vtest crops: images/s per backend setting, batch and
   thread count. ONNX Runtime at its own default level (``all``), at ``extended``, and as edge-reid
   makes it (the level tuned for this model and machine, cached); ratios are against the last. All settings of one (threads, batch) alternate in rounds in one process, so a burst
   of outside load hits all of them; the medians of the rounds are printed, with ratios.
2. Agreement with ONNX Runtime FP32 on the same crops: mean and minimum cosine similarity.
3. ``--run``: ``edge-reid run`` on vtest.avi with ``--backend onnxruntime`` and ``--backend openvino``
   (and, with ``--bf16``, ``--backend openvino`` with ``--detector-precision bf16`` and with both
   models in bf16, left out with a line saying why on a CPU without bf16; real command,
   its summary's fps and ms per stage), alternating ``--repeats`` times, and whether each gives the
   same identities as ONNX Runtime (from ``--events``).

Usage (from the repository root; the figures in docs/benchmarks.md come from these commands):

    python benchmarks/cpu_backends.py --threads 1,2 --batches 8,32 --seconds 6 [--int8 calibration/M-int8-qdq.onnx] [--run [--bf16]]
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/cpu_backends.py --threads 1,2 --batches 8,32   # OpenVINO limited to AVX2

``ONEDNN_MAX_CPU_ISA`` limits OpenVINO's CPU kernels (its oneDNN fork) to an older instruction set;
ONNX Runtime has no such switch, so under it the ONNX Runtime rows still use every instruction the
CPU has: the OpenVINO rows approximate an AVX2-only CPU, the ratios do not.

Without OpenVINO installed, its rows and runs are left out (one line says so) and ONNX Runtime's
are measured and compared as usual.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common: the repository on the path, the default video
from _common import REPO, benchmark_parser, openvino_bf16_note, openvino_or_none, video_path  # noqa: E402

import numpy as np  # noqa: E402

from edge_reid.assets import DEFAULT_REID_MODEL  # noqa: E402
from edge_reid.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from edge_reid.bench import crops_from_video, environment  # noqa: E402
from edge_reid.preprocess import CropPreprocessor  # noqa: E402
from edge_reid.spec import load_spec  # noqa: E402

REFERENCE = "onnxruntime tuned (edge-reid)"


def settings(int8: Path | None, openvino: bool) -> dict:
    """Setting name -> factory(spec, max_batch, threads) of a backend (ONNX Runtime's alone when not ``openvino``)."""
    made = {
        "onnxruntime all (ORT's default)": lambda spec, b, t: OnnxRuntimeBackend(DEFAULT_REID_MODEL, spec, b, t, optimization_level="all"),
        "onnxruntime extended": lambda spec, b, t: OnnxRuntimeBackend(DEFAULT_REID_MODEL, spec, b, t, optimization_level="extended"),
        REFERENCE: lambda spec, b, t: OnnxRuntimeBackend(DEFAULT_REID_MODEL, spec, b, t),
    }
    if openvino:
        from edge_reid.backends.openvino import OpenVinoBackend, precision_unavailable

        made["openvino fp32 (default)"] = lambda spec, b, t: OpenVinoBackend(DEFAULT_REID_MODEL, spec, b, t)
        if not precision_unavailable("bf16"):
            made["openvino bf16"] = lambda spec, b, t: OpenVinoBackend(DEFAULT_REID_MODEL, spec, b, t, precision="bf16")
    if int8 is not None:
        made["onnxruntime int8 Q/DQ (exact)"] = lambda spec, b, t: OnnxRuntimeBackend(int8, spec, b, t, optimization_level="extended")
        if openvino:
            made["openvino int8 Q/DQ"] = lambda spec, b, t: OpenVinoBackend(int8, spec, b, t, precision="int8")
    return made


def measure(factories: dict, spec, batch: np.ndarray, threads: int, seconds: float, rounds: int) -> tuple[dict, dict]:
    """Median images/s per setting (alternating rounds) and each setting's normalised embeddings of ``batch``."""
    n = len(batch)
    backends = {}
    for name, make in factories.items():
        try:
            backends[name] = make(spec, n, threads)
        except Exception as exc:  # e.g. bf16 under ONEDNN_MAX_CPU_ISA=AVX2
            print(f"  {name}: not measured: {exc}")
    embeddings = {}
    for name, backend in backends.items():
        backend.buffers.input[:n] = batch
        out = backend.infer(n).copy()
        embeddings[name] = out / np.linalg.norm(out, axis=1, keepdims=True)
        for _ in range(2):  # warm-up
            backend.infer(n)
    rates: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(rounds):
        for name, backend in backends.items():
            calls, start = 0, time.perf_counter()
            while calls < 3 or time.perf_counter() - start < seconds / rounds:
                backend.infer(n)
                calls += 1
            rates[name].append(n * calls / (time.perf_counter() - start))
    for backend in backends.values():
        backend.close()
    return {name: statistics.median(values) for name, values in rates.items()}, embeddings


def run_command(name: str, options: list[str], video: Path, frames: int, workdir: Path) -> dict:
    """``edge-reid run`` with ``options`` on the first ``frames`` frames; its summary, with (frame, identity) of every event."""
    stem = name.replace(" ", "_").replace(",", "")
    summary, events = workdir / f"{stem}.json", workdir / f"{stem}.jsonl"
    command = [sys.executable, "-m", "edge_reid", "run", "--source", str(video), "--max-frames", str(frames),
               *options, "--summary", str(summary), "--events", str(events)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"edge-reid run {' '.join(options)} failed: {result.stderr.strip()}")
    report = json.loads(summary.read_text())
    report["identities_by_frame"] = [(e["frame"], e["identity"]) for e in map(json.loads, events.read_text().splitlines())]
    return report


def main() -> int:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--batches", default="8,32", help="comma-separated batch sizes")
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per setting, batch and thread count")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--int8", type=Path, help="a Q/DQ model from `edge-reid calibrate` to add INT8 rows")
    parser.add_argument("--run", action="store_true", help="also time `edge-reid run` on vtest.avi with each backend")
    parser.add_argument("--frames", type=int, default=300, help="frames per `edge-reid run`")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats of `edge-reid run`")
    parser.add_argument("--bf16", action="store_true",
                        help="with --run, also `--backend openvino` with the detector and with both models in bf16 (CPUs with AMX or AVX512-BF16)")
    args = parser.parse_args()
    video = video_path(args)
    env = environment()
    print(f"machine: {env['cpu']} ({' '.join(env['cpu_flags'])}), {env['cpu_usable']} cores usable; "
          f"onnxruntime {env['libraries']['onnxruntime']}, openvino {env['libraries']['openvino']}; "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')}")
    openvino = openvino_or_none() is not None  # False: ONNX Runtime's rows and runs only
    spec = load_spec(DEFAULT_REID_MODEL)
    pool = crops_from_video(video, 64)
    factories = settings(args.int8, openvino)
    width = max(map(len, factories))
    for threads in (int(t) for t in args.threads.split(",")):
        for size in (int(b) for b in args.batches.split(",")):
            crops = [pool.crops[i % len(pool.crops)] for i in range(size)]
            batch = np.zeros((size, 3, spec.height, spec.width), np.float32)
            preprocessor = CropPreprocessor(spec, size)
            preprocessor.write_crops(crops, batch)
            preprocessor.close()
            tuned = OnnxRuntimeBackend(DEFAULT_REID_MODEL, spec, size, threads).tuning.describe()
            print(f"\n{threads} thread(s), batch {size}: images/s (median of {args.rounds} alternating rounds), "
                  f"x {REFERENCE} ({tuned}), cosine to it (mean / min)")
            rates, embeddings = measure(factories, spec, batch, threads, args.seconds, args.rounds)
            for name, rate in rates.items():  # only the settings that could be made
                cosine = np.sum(embeddings[name] * embeddings[REFERENCE], axis=1)
                print(f"  {name:{width}s} {rate:8.1f}  x{rate / rates[REFERENCE]:5.2f}  {cosine.mean():.6f} / {cosine.min():.6f}")
    if args.run:
        print(f"\nedge-reid run on {video.name}, {args.frames} frames, alternating, {args.repeats} repeats (default threads: "
              "half the cores per model on ONNX Runtime, every core on OpenVINO)")
        runs = {"onnxruntime": ["--backend", "onnxruntime"]}
        if openvino:
            runs["openvino"] = ["--backend", "openvino"]
        why = openvino_bf16_note() if args.bf16 and openvino else ""
        if why:
            print(f"  --bf16: skipped ({why})")
        if args.bf16 and openvino and not why:
            runs["openvino, detector bf16"] = ["--backend", "openvino", "--detector-precision", "bf16"]
            runs["openvino, both bf16"] = ["--backend", "openvino", "--precision", "bf16", "--detector-precision", "bf16"]
        width = max(map(len, runs))
        with tempfile.TemporaryDirectory() as tmp:
            fps: dict[str, list[float]] = {name: [] for name in runs}
            identities = {}
            for repeat in range(args.repeats):
                for name, options in runs.items():
                    report = run_command(name, options, video, args.frames, Path(tmp))
                    fps[name].append(report["fps"])
                    identities[name] = report["identities_by_frame"]
                    stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in report["stage_ms"].items())
                    print(f"  repeat {repeat + 1} {name:{width}s} {report['fps']:6.2f} fps | ms/frame: {stages} | {report['backend']}")
            reference = statistics.median(fps["onnxruntime"])
            print("  median fps, x onnxruntime, same identities as onnxruntime in every event:")
            for name in runs:
                median = statistics.median(fps[name])
                print(f"    {name:{width}s} {median:6.2f}  x{median / reference:.2f}  {identities[name] == identities['onnxruntime']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
