"""Benchmarks behind ``edge-reid bench``: what a model costs, and what the loop around it adds.

Three measurements, all on the caller's machine and backend:

1. **Model only** (trtexec style, NVIDIA TensorRT's ``trtexec`` report): per batch
   size, the latency of ``backend.infer(batch)`` on the preallocated batch buffer
   (p50/p90/p99 in ms) and images per second.
2. **The embedding loop** at the same batch sizes: real person crops are
   preprocessed into the batch buffer, embedded, L2-normalised
   (:meth:`edge_reid.embedder.Embedder.embed_crops`) and matched against a gallery
   of 10,000 identities (:func:`match_queries`). ``loop_efficiency`` = loop
   images/s / model-only images/s: 1.0 means the code around the model is free.
3. **Preprocessing alone**: crops per second of the fused path
   (:class:`edge_reid.preprocess.CropPreprocessor`) and of the plain numpy/OpenCV
   reference (:func:`edge_reid.preprocess.reference_preprocess`), same crops.

Other programs on the machine shift absolute numbers, so every comparison here
is measured side by side: model-only and loop (and fused and reference
preprocessing) run in alternating rounds, so a burst of outside load hits both.

Use from Python::

    from edge_reid.bench import BenchConfig, run_bench, crops_from_video
    report = run_bench(BenchConfig(batches=(1, 8, 32), seconds=5.0), crops_from_video("vtest.avi"))
    print(report.to_dict()["batches"][-1]["loop_efficiency"])
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edge_reid.errors import DataError, ModelError

#: Version of the JSON layout written by ``edge-reid bench --json``.
SCHEMA = "edge-reid-bench/1"
PRECISIONS = ("fp32", "fp16", "int8")
#: Gallery size of the loop benchmark (issue 6: "a gallery of 10k identities").
DEFAULT_GALLERY_SIZE = 10_000
#: ONNX operators that only occur in quantized (INT8) graphs.
_INT8_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}
)


# --------------------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``samples``, linear interpolation between order statistics.

    Same definition as ``numpy.percentile`` (method ``"linear"``, Hyndman & Fan type 7),
    which is what trtexec-style reports use for p50/p90/p99.

    Args:
        samples: one or more values (any unit; the result has the same unit).
        q: percentile in [0, 100].

    Raises:
        ValueError: no samples, or ``q`` outside [0, 100].
    """
    if len(samples) == 0:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    return float(np.percentile(np.asarray(samples, np.float64), q))


@dataclass(frozen=True)
class LatencyStats:
    """Latency of repeated calls that each process ``batch`` images.

    Attributes:
        batch: images per call.
        iterations: number of timed calls.
        total_s: seconds of all timed calls together.
        p50_ms, p90_ms, p99_ms: latency percentiles of one call, ms.
        mean_ms, min_ms, max_ms: mean, fastest and slowest call, ms.
        images_per_s: ``batch * iterations / total_s`` (= batch / mean latency).
    """

    batch: int
    iterations: int
    total_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    images_per_s: float

    @classmethod
    def from_samples(cls, samples_s: Sequence[float], batch: int) -> "LatencyStats":
        """Statistics of per-call durations in seconds.

        Raises:
            ValueError: no samples, a negative duration, or ``batch`` < 1.
        """
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        values = np.asarray(samples_s, np.float64)
        if values.size == 0:
            raise ValueError("no timing samples")
        if (values < 0).any():
            raise ValueError("negative duration in timing samples")
        total = float(values.sum())
        ms = values * 1000.0
        return cls(
            batch=int(batch),
            iterations=int(values.size),
            total_s=total,
            p50_ms=percentile(ms, 50),
            p90_ms=percentile(ms, 90),
            p99_ms=percentile(ms, 99),
            mean_ms=float(ms.mean()),
            min_ms=float(ms.min()),
            max_ms=float(ms.max()),
            images_per_s=batch * values.size / total if total > 0 else float("inf"),
        )

    def latency_ms(self) -> dict[str, float]:
        """{"p50", "p90", "p99", "mean", "min", "max"} in ms, rounded for JSON."""
        return {
            "p50": round(self.p50_ms, 4),
            "p90": round(self.p90_ms, 4),
            "p99": round(self.p99_ms, 4),
            "mean": round(self.mean_ms, 4),
            "min": round(self.min_ms, 4),
            "max": round(self.max_ms, 4),
        }


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """Parse ``"1,8,32"`` into ``(1, 8, 32)``.

    Raises:
        ValueError: empty, not integers, below 1, or repeated; the message names the bad part.
    """
    parts = [part.strip() for part in str(text).split(",")]
    if not text or not text.strip() or any(part == "" for part in parts):
        raise ValueError(f"batch sizes must be comma-separated integers like 1,8,32, got {text!r}")
    sizes = []
    for part in parts:
        try:
            size = int(part)
        except ValueError:
            raise ValueError(f"batch size {part!r} in {text!r} is not an integer; use e.g. 1,8,32") from None
        if size < 1:
            raise ValueError(f"batch size {size} in {text!r} must be >= 1")
        if size in sizes:
            raise ValueError(f"batch size {size} appears twice in {text!r}")
        sizes.append(size)
    return tuple(sizes)


# --------------------------------------------------------------------------- precision


def detect_precision(model_path: str | Path) -> str:
    """The numeric precision of an ONNX model's weights: ``"int8"``, ``"fp16"`` or ``"fp32"``.

    ``int8``: the graph holds quantization operators (Q/DQ or QLinear*/Integer ops,
    as written by ONNX Runtime's quantization tools). ``fp16``: a float16 graph
    input or initializer. Otherwise ``fp32``.

    Raises:
        ModelError: the file is missing or not an ONNX model.
    """
    import onnx

    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    graph = model.graph
    if any(node.op_type in _INT8_OPS for node in graph.node):
        return "int8"
    float16 = onnx.TensorProto.FLOAT16
    if any(init.data_type == float16 for init in graph.initializer) or any(
        value.type.tensor_type.elem_type == float16 for value in graph.input
    ):
        return "fp16"
    return "fp32"


def resolve_precision(requested: str | None, model_path: str | Path) -> str:
    """The precision label to report for ``model_path``, checked against what the user asked.

    Precision is a property of the model file here: FP16 and INT8 models are made
    by ``edge-reid calibrate`` (INT8 with a calibration guard); this benchmark
    never converts a model.

    Args:
        requested: ``"fp32"``, ``"fp16"``, ``"int8"`` or None (report what the model is).
        model_path: the ONNX model.

    Raises:
        ValueError: ``requested`` is not one of :data:`PRECISIONS`.
        ModelError: the model's precision is not the requested one; the message says
            to run ``edge-reid calibrate`` first.
    """
    if requested is not None and requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    detected = detect_precision(model_path)
    if requested is None or requested == detected:
        return detected
    if detected == "fp32":
        raise ModelError(
            f"{model_path} is an FP32 model, so --precision {requested} cannot run it: make an {requested.upper()} model "
            f"first with `edge-reid calibrate` (see `edge-reid calibrate --help`), then pass the model it writes with --model"
        )
    raise ModelError(f"{model_path} is an {detected.upper()} model, not {requested.upper()}: use --precision {detected} (or leave it out)")


# --------------------------------------------------------------------------- crops


@dataclass
class CropPool:
    """Real person crops for the loop and preprocessing benchmarks.

    Attributes:
        crops: BGR uint8 images (h, w, 3) of any size.
        source: where they came from (``"video:PATH"`` or ``"folder:PATH"``).
        skipped: files that could not be read (folders only).
    """

    crops: list[np.ndarray]
    source: str
    skipped: int = 0

    def batches(self, batch: int) -> list[list[np.ndarray]]:
        """Consecutive batches of ``batch`` crops covering the pool once, wrapping at the end
        (so every batch is full, even when the pool is smaller than ``batch``)."""
        count = len(self.crops)
        steps = max(1, -(-count // batch))
        return [[self.crops[(start * batch + k) % count] for k in range(batch)] for start in range(steps)]


def default_video() -> Path | None:
    """``shared/data/vtest.avi`` when it exists, else None.

    Looked up in ``$EDGE_REID_SHARED``, then ``../shared`` from the working folder,
    then ``../shared`` beside the source checkout. The package bundles no video.
    """
    candidates = []
    if os.environ.get("EDGE_REID_SHARED"):
        candidates.append(Path(os.environ["EDGE_REID_SHARED"]) / "data" / "vtest.avi")
    candidates.append(Path("..") / "shared" / "data" / "vtest.avi")
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "vtest.avi")
    return next((path.resolve() for path in candidates if path.is_file()), None)


def crops_from_video(video_path: str | Path, max_crops: int = 256, every_n_frames: int = 5, detector_path: str | Path | None = None) -> CropPool:
    """Cut up to ``max_crops`` person crops from a video with the person detector
    (:func:`edge_reid.crops.cut_person_crops`).

    Raises:
        SourceError: the video cannot be opened.
        DataError: the detector found no person in it.
    """
    from edge_reid.crops import cut_person_crops
    from edge_reid.detector import PersonDetector

    crops = cut_person_crops(video_path, PersonDetector(detector_path), max_crops=max_crops, every_n_frames=every_n_frames)
    if not crops:
        raise DataError(f"no person found in {video_path}; give person crops with --crops FOLDER")
    return CropPool(crops, f"video:{video_path}")


def crops_from_folder(folder: str | Path, max_crops: int = 256) -> CropPool:
    """Read up to ``max_crops`` images (jpg, png, bmp, webp, tif) from ``folder``, sorted by name.

    Unreadable files are skipped and counted in :attr:`CropPool.skipped`.

    Raises:
        DataError: the folder is missing or holds no readable image.
    """
    import cv2

    from edge_reid.sources import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"crop folder not found: {folder}")
    crops, skipped = [], 0
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if len(crops) >= max_crops:
            break
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or image.size == 0:
            skipped += 1
            continue
        crops.append(image)
    if not crops:
        raise DataError(f"{folder}: no readable image ({skipped} unreadable); give a folder of person crops (.jpg/.png)")
    return CropPool(crops, f"folder:{folder}", skipped)


# --------------------------------------------------------------------------- gallery and matcher


def synthetic_gallery(seed_embeddings: np.ndarray, size: int = DEFAULT_GALLERY_SIZE, threshold: float = 0.6, seed: int = 0):
    """A :class:`edge_reid.matching.Gallery` of ``size`` identities that look like real ones.

    Each template is a renormalised random blend ``w * e_a + (1 - w) * e_b`` of two
    real embeddings (w uniform in [0, 1]): it lies among real embeddings, so
    query-template similarities have the spread of real ones (for OSNet, whose
    features are non-negative, many are above the threshold) and the matcher does
    its real amount of work. Random unit vectors would not: their similarities are
    all near 0 and the assignment step would be skipped.

    Args:
        seed_embeddings: (K, D) float32 L2-normalised real embeddings, K >= 1.
        size: identities to create.
        threshold: the gallery's match threshold, cosine similarity in [-1, 1].
        seed: random seed (the gallery is reproducible).

    Returns:
        A Gallery with ``size`` identities.
    """
    from edge_reid.matching.gallery import Gallery

    seed_embeddings = np.asarray(seed_embeddings, np.float32)
    rng = np.random.default_rng(seed)
    first = seed_embeddings[rng.integers(0, len(seed_embeddings), size)]
    second = seed_embeddings[rng.integers(0, len(seed_embeddings), size)]
    weight = rng.uniform(0.0, 1.0, (size, 1)).astype(np.float32)
    templates = weight * first + (1.0 - weight) * second
    templates /= np.maximum(np.linalg.norm(templates, axis=1, keepdims=True), 1e-12)
    gallery = Gallery(seed_embeddings.shape[1], threshold=threshold, initial_capacity=size)
    for template in templates:
        gallery.add(template)
    return gallery


#: A matcher: (gallery, (Q, D) float32 L2-normalised queries) -> (Q,) int64 identity ids (-1: none).
Matcher = Callable[[object, np.ndarray], np.ndarray]


# ---- THE matcher of the loop benchmark -----------------------------------------------------
# The one place the loop matches embeddings. It calls the gallery's own matching
# (on this branch: q @ templates.T, then Hungarian assignment on the (Q, N)
# matrix), read-only. When the fast top-k matcher (edge_reid/matching/topk.py,
# issue 3) lands, either Gallery.match uses it internally (nothing to change
# here) or replace the body with the top-k call, e.g.
#     ids, sims = topk_search(queries, gallery.templates, k=1); return ids[:, 0]
def match_queries(gallery, queries: np.ndarray) -> np.ndarray:
    """Match (Q, D) float32 L2-normalised queries against ``gallery`` without changing it.

    Returns:
        (Q,) int64 identity ids, -1 where no identity reaches the gallery's threshold.
    """
    return gallery.match(queries, update=False, create=False).identity_ids


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class BatchResult:
    """Model-only and loop numbers at one batch size.

    Attributes:
        model: latency of ``backend.infer(batch)`` alone.
        loop: latency of one loop step (preprocess + embed + normalise + match) on ``batch`` crops.
        loop_stage_ms: mean ms per loop step of "preprocess", "embed" (model + L2 normalise) and "match".
    """

    model: LatencyStats
    loop: LatencyStats | None = None
    loop_stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def loop_efficiency(self) -> float | None:
        """Loop images/s divided by model-only images/s (None without a loop measurement)."""
        if self.loop is None:
            return None
        return self.loop.images_per_s / self.model.images_per_s

    def to_dict(self) -> dict:
        """JSON-ready dict (see docs/benchmarks.md for the layout)."""
        data = {
            "batch": self.model.batch,
            "iterations": self.model.iterations,
            "latency_ms": self.model.latency_ms(),
            "images_per_s": round(self.model.images_per_s, 3),
        }
        if self.loop is not None:
            data.update(
                loop_iterations=self.loop.iterations,
                loop_latency_ms=self.loop.latency_ms(),
                loop_images_per_s=round(self.loop.images_per_s, 3),
                loop_efficiency=round(self.loop_efficiency, 4),
                loop_stage_ms={stage: round(ms, 4) for stage, ms in self.loop_stage_ms.items()},
            )
        return data


@dataclass(frozen=True)
class PreprocessResult:
    """Preprocessing alone, fused path and plain reference on the same crops.

    Attributes:
        batch: crops per call of the fused path.
        crops: distinct crops in the pool.
        fused_crops_per_s: :meth:`CropPreprocessor.write_crops` throughput.
        reference_crops_per_s: :func:`reference_preprocess` throughput (one crop per call,
            copied into the same buffer).
        max_abs_diff: largest difference between the two outputs on the first batch
            (normalised units; 0 means identical).
    """

    batch: int
    crops: int
    fused_crops_per_s: float
    reference_crops_per_s: float
    max_abs_diff: float

    @property
    def speedup(self) -> float:
        """fused / reference throughput."""
        return self.fused_crops_per_s / self.reference_crops_per_s

    def to_dict(self) -> dict:
        data = asdict(self)
        data["fused_crops_per_s"] = round(self.fused_crops_per_s, 1)
        data["reference_crops_per_s"] = round(self.reference_crops_per_s, 1)
        data["speedup"] = round(self.speedup, 3)
        return data


@dataclass
class BenchReport:
    """Everything ``edge-reid bench`` measured; :meth:`to_dict` is the ``--json`` file."""

    model: dict
    settings: dict
    batches: list[BatchResult]
    preprocess: PreprocessResult | None
    environment: dict

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "settings": self.settings,
            "batches": [result.to_dict() for result in self.batches],
            "preprocess": self.preprocess.to_dict() if self.preprocess else None,
            "environment": self.environment,
        }


# --------------------------------------------------------------------------- environment


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _gpu() -> str | None:
    """GPU name from nvidia-smi, or the Jetson board model, or None."""
    board = Path("/proc/device-tree/model")
    if board.is_file():
        name = board.read_text(errors="replace").strip("\x00 \n")
        if "jetson" in name.lower() or "nvidia" in name.lower():
            return name
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
            )
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and names:
                return ", ".join(names)
        except (OSError, subprocess.SubprocessError):
            pass
    return None


def _version(module: str) -> str | None:
    try:
        imported = __import__(module)
    except Exception:
        return None
    return str(getattr(imported, "__version__", "unknown"))


def environment() -> dict:
    """The machine and library versions a benchmark ran with (JSON-ready).

    Keys: ``cpu`` (model name), ``cpu_cores`` (``os.cpu_count()``), ``cpu_usable``
    (cores this process may run on), ``gpu`` (name or None), ``platform``,
    ``python``, ``libraries`` (numpy, onnxruntime, opencv, numba, scipy,
    tensorrt: version or None when absent), ``onnxruntime_providers``, ``numpy_blas``
    (the BLAS behind numpy's matmul, which the plain matcher uses) and ``thread_env``
    (thread-count environment variables that are set, e.g. ``OPENBLAS_NUM_THREADS``).
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    except Exception:
        providers = []
    from edge_reid import __version__

    try:
        blas_info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas_info.get('name', '?')} {blas_info.get('version', '')}".strip()
    except Exception:
        blas = None
    thread_variables = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER")
    return {
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_usable": usable,
        "gpu": _gpu(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": {
            "edge_reid": __version__,
            "numpy": _version("numpy"),
            "onnxruntime": _version("onnxruntime"),
            "opencv": _version("cv2"),
            "numba": _version("numba"),
            "scipy": _version("scipy"),
            "tensorrt": _version("tensorrt"),
        },
        "onnxruntime_providers": providers,
        "numpy_blas": blas,
        "thread_env": {name: os.environ[name] for name in thread_variables if name in os.environ},
    }


# --------------------------------------------------------------------------- the benchmark


@dataclass(frozen=True)
class BenchConfig:
    """Settings of one benchmark run.

    Attributes:
        model_path: ReID ``.onnx`` (None: the bundled OSNet x0.25).
        backend: ``"onnxruntime"`` or ``"tensorrt"``.
        precision: ``"fp32"``/``"fp16"``/``"int8"`` or None (the model's own); see :func:`resolve_precision`.
        batches: batch sizes, each >= 1.
        seconds: timed seconds per batch size for the model alone, and as much again for the loop.
        warmup_s: untimed seconds per batch size before measuring (at least 2 calls).
        rounds: model-only and loop alternate in this many rounds per batch size.
        min_iterations: fewest timed calls per measurement, whatever ``seconds`` says.
        gallery_size: identities in the loop's gallery.
        threshold: the gallery's match threshold (cosine similarity).
        threads: ONNX Runtime intra-op threads (None: its default).
        loop: also measure the embedding loop; needs crops.
        preprocess: also measure preprocessing alone; needs crops.
    """

    model_path: str | Path | None = None
    backend: str = "onnxruntime"
    precision: str | None = None
    batches: tuple[int, ...] = (1, 8, 32)
    seconds: float = 5.0
    warmup_s: float = 1.0
    rounds: int = 4
    min_iterations: int = 5
    gallery_size: int = DEFAULT_GALLERY_SIZE
    threshold: float = 0.6
    threads: int | None = None
    loop: bool = True
    preprocess: bool = True

    def __post_init__(self) -> None:
        if not self.batches or any(int(b) < 1 for b in self.batches):
            raise ValueError(f"batch sizes must be >= 1, got {self.batches}")
        if self.seconds <= 0 or self.warmup_s < 0:
            raise ValueError(f"seconds must be > 0 and warmup_s >= 0, got {self.seconds}, {self.warmup_s}")
        if self.rounds < 1 or self.min_iterations < 1 or self.gallery_size < 1:
            raise ValueError("rounds, min_iterations and gallery_size must be >= 1")


def _timed_calls(call: Callable[[], None], budget_s: float, min_calls: int, samples: list[float]) -> None:
    """Call ``call`` until ``budget_s`` seconds of calls and at least ``min_calls`` calls; append each duration."""
    spent, calls = 0.0, 0
    while spent < budget_s or calls < min_calls:
        start = time.perf_counter()
        call()
        duration = time.perf_counter() - start
        samples.append(duration)
        spent += duration
        calls += 1


def measure_preprocess(spec, pool: CropPool, batch: int, seconds: float, rounds: int = 4, min_iterations: int = 5) -> PreprocessResult:
    """Crops/s of the fused preprocessing and of the plain reference, alternating rounds.

    Args:
        spec: the model's :class:`edge_reid.spec.ModelSpec`.
        pool: the crops.
        batch: crops per fused call (the reference does one crop per call into the same buffer).
        seconds: timed seconds for each of the two paths.

    Returns:
        :class:`PreprocessResult`.
    """
    from edge_reid.preprocess import CropPreprocessor, reference_preprocess

    preprocessor = CropPreprocessor(spec, batch)
    out = np.zeros((batch, 3, spec.height, spec.width), np.float32)
    reference_out = np.zeros_like(out)
    batches = pool.batches(batch)

    def fused(crops) -> None:
        preprocessor.write_crops(crops, out)

    def reference(crops) -> None:
        for index, crop in enumerate(crops):
            reference_out[index] = reference_preprocess(crop, spec)

    fused(batches[0])
    reference(batches[0])
    max_abs_diff = float(np.abs(out - reference_out).max())
    cursor = {"fused": 0, "reference": 0}
    samples: dict[str, list[float]] = {"fused": [], "reference": []}

    def step(name: str, function) -> Callable[[], None]:
        def call() -> None:
            function(batches[cursor[name] % len(batches)])
            cursor[name] += 1

        return call

    per_round = seconds / rounds
    min_per_round = max(1, -(-min_iterations // rounds))
    for _ in range(rounds):
        _timed_calls(step("fused", fused), per_round, min_per_round, samples["fused"])
        _timed_calls(step("reference", reference), per_round, min_per_round, samples["reference"])
    fused_stats = LatencyStats.from_samples(samples["fused"], batch)
    reference_stats = LatencyStats.from_samples(samples["reference"], batch)
    return PreprocessResult(batch, len(pool.crops), fused_stats.images_per_s, reference_stats.images_per_s, max_abs_diff)


def run_bench(
    config: BenchConfig,
    pool: CropPool | Callable[[], CropPool] | None = None,
    matcher: Matcher = match_queries,
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Run the whole benchmark.

    Args:
        config: what to measure.
        pool: real crops, or a function returning them (called once the model has
            loaded, so model and backend errors come before a slow crop cut); needed
            when ``config.loop`` or ``config.preprocess``.
        matcher: the loop's matching call (default :func:`match_queries`).
        progress: called with a short line before each part (for the CLI).

    Returns:
        :class:`BenchReport`.

    Raises:
        ModelError: the model is missing or unloadable, or its precision is not the requested one.
        BackendUnavailableError: the backend cannot run here (e.g. TensorRT absent).
        DataError: a loop or preprocess measurement was asked for without crops.
    """
    from edge_reid.assets import DEFAULT_REID_MODEL
    from edge_reid.embedder import Embedder
    from edge_reid.spec import file_sha256

    say = progress or (lambda _line: None)
    model_path = Path(config.model_path) if config.model_path else DEFAULT_REID_MODEL
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    if (config.loop or config.preprocess) and pool is None:
        raise DataError("the loop and preprocess benchmarks need person crops: give --crops FOLDER or --video FILE")
    max_batch = max(config.batches)
    embedder = Embedder(model_path, backend=config.backend, max_batch=max_batch, threads=config.threads)
    precision = resolve_precision(config.precision, model_path)
    backend = embedder.backend
    if backend.max_batch < max_batch:
        raise ModelError(f"{model_path} has a fixed batch of {backend.max_batch}; benchmark batch sizes up to {backend.max_batch}")
    spec = embedder.spec
    if callable(pool):
        pool = pool()
    if pool is not None and not pool.crops:
        raise DataError(f"no person crops in {pool.source}")

    gallery = None
    if config.loop:
        say(f"embedding {len(pool.crops)} crops and building a gallery of {config.gallery_size} identities")
        gallery = synthetic_gallery(embedder.embed_crops(pool.crops), config.gallery_size, config.threshold)
    if pool is not None:
        embedder.preprocessor.write_crops(pool.batches(max_batch)[0], backend.buffers.input)  # real input for model-only

    results = []
    per_round = config.seconds / config.rounds
    min_per_round = max(1, -(-config.min_iterations // config.rounds))
    for batch in config.batches:
        say(f"batch {batch}: warm-up, then {config.seconds:g} s model only" + (f" + {config.seconds:g} s loop" if config.loop else ""))
        model_samples: list[float] = []
        loop_samples: list[float] = []
        stage_s = {"preprocess": 0.0, "embed": 0.0, "match": 0.0}
        embeddings = np.zeros((batch, embedder.dim), np.float32)
        crop_batches = pool.batches(batch) if config.loop else []
        cursor = [0]

        def model_call() -> None:
            backend.infer(batch)

        def loop_call() -> None:
            crops = crop_batches[cursor[0] % len(crop_batches)]
            cursor[0] += 1
            vectors = embedder.embed_crops(crops, out=embeddings)
            start = time.perf_counter()
            matcher(gallery, vectors)
            stage_s["match"] += time.perf_counter() - start
            stage_s["preprocess"] += embedder.last_seconds["preprocess"]
            stage_s["embed"] += embedder.last_seconds["embed"]

        if pool is not None:
            embedder.preprocessor.write_crops(pool.batches(batch)[0], backend.buffers.input)
        warm: list[float] = []
        _timed_calls(model_call, config.warmup_s / 2, 2, warm)
        if config.loop:
            _timed_calls(loop_call, config.warmup_s / 2, 2, warm)
            stage_s.update(dict.fromkeys(stage_s, 0.0))  # warm-up calls do not count
        for _ in range(config.rounds):
            _timed_calls(model_call, per_round, min_per_round, model_samples)
            if config.loop:
                _timed_calls(loop_call, per_round, min_per_round, loop_samples)
        model_stats = LatencyStats.from_samples(model_samples, batch)
        if config.loop:
            loop_stats = LatencyStats.from_samples(loop_samples, batch)
            stage_ms = {stage: 1000.0 * total / loop_stats.iterations for stage, total in stage_s.items()}
            results.append(BatchResult(model_stats, loop_stats, stage_ms))
        else:
            results.append(BatchResult(model_stats))

    preprocess = None
    if config.preprocess:
        say(f"preprocess: fused vs reference, batch {max_batch}, {config.seconds:g} s each")
        preprocess = measure_preprocess(spec, pool, max_batch, config.seconds, config.rounds, config.min_iterations)

    model_info = {
        "path": str(model_path),
        "name": spec.name,
        "sha256": file_sha256(model_path),
        "precision": precision,
        "backend": backend.describe(),
        "input": [3, spec.height, spec.width],
        "embedding_dim": spec.embedding_dim,
    }
    settings = {
        "batches": list(config.batches),
        "seconds": config.seconds,
        "warmup_s": config.warmup_s,
        "rounds": config.rounds,
        "min_iterations": config.min_iterations,
        "threads": config.threads,
        "gallery_size": config.gallery_size if config.loop else None,
        "threshold": config.threshold,
        "matcher": f"{matcher.__module__}.{getattr(matcher, '__qualname__', repr(matcher))}" if config.loop else None,
        "crops": {"source": pool.source, "count": len(pool.crops), "skipped": pool.skipped} if pool is not None else None,
    }
    embedder.close()
    return BenchReport(model_info, settings, results, preprocess, environment())
