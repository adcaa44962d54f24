"""Runs the benchmark: model only and the embedding loop per batch size, preprocessing alone; the report."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edge_reid.crop_pool import CropPool
from edge_reid.bench.environment import environment
from edge_reid.bench.matcher import DEFAULT_GALLERY_SIZE, Matcher, match_queries, synthetic_gallery
from edge_reid.bench.precision import backend_options_for, backend_precision
from edge_reid.bench.stats import LatencyStats
from edge_reid.errors import DataError, ModelError

#: Version of the JSON layout written by ``edge-reid bench --json``.
SCHEMA = "edge-reid-bench/2"


@dataclass(frozen=True)
class BatchResult:
    """Model-only and loop numbers at one batch size.

    Attributes:
        model: latency of ``backend.infer(batch)`` alone.
        loop: latency per batch of the embedding loop as edge-reid runs it
            (:class:`~edge_reid.embedding_loop.EmbeddingLoop`: preprocess + embed + normalise
            of the next batch on a worker thread while this batch is matched).
        loop_stage_ms: mean ms per batch in that loop: "preprocess" and "embed" (model + L2
            normalise) on the worker thread, "match" and "wait" (blocked on the worker) on
            the caller's thread; the caller's "match" + "wait" is the step time.
        sequential: latency of one step of the plain loop (preprocess, embed, normalise,
            match one after the other) on ``batch`` crops.
        sequential_stage_ms: mean ms per step of the plain loop's "preprocess", "embed", "match".
    """

    model: LatencyStats
    loop: LatencyStats | None = None
    loop_stage_ms: dict[str, float] = field(default_factory=dict)
    sequential: LatencyStats | None = None
    sequential_stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def loop_efficiency(self) -> float | None:
        """Loop images/s divided by model-only images/s (None without a loop measurement)."""
        if self.loop is None:
            return None
        return self.loop.images_per_s / self.model.images_per_s

    @property
    def sequential_loop_efficiency(self) -> float | None:
        """Plain (not overlapped) loop images/s divided by model-only images/s."""
        if self.sequential is None:
            return None
        return self.sequential.images_per_s / self.model.images_per_s

    def to_dict(self) -> dict:
        """JSON-ready dict (see docs/benchmarks.md for the layout)."""
        data = {
            "batch": self.model.batch,
            "iterations": self.model.iterations,
            "latency_ms": self.model.latency_ms(),
            "images_per_s": round(self.model.images_per_s, 3),
        }
        for prefix, stats, efficiency, stages in (
            ("loop", self.loop, self.loop_efficiency, self.loop_stage_ms),
            ("sequential_loop", self.sequential, self.sequential_loop_efficiency, self.sequential_stage_ms),
        ):
            if stats is not None:
                data.update({
                    f"{prefix}_iterations": stats.iterations,
                    f"{prefix}_latency_ms": stats.latency_ms(),
                    f"{prefix}_images_per_s": round(stats.images_per_s, 3),
                    f"{prefix}_efficiency": round(efficiency, 4),
                    f"{prefix}_stage_ms": {stage: round(ms, 4) for stage, ms in stages.items()},
                })
        return data


@dataclass(frozen=True)
class PreprocessResult:
    """Preprocessing alone, fused path and plain reference on the same crops.

    Attributes:
        batch: crops per call of the fused path.
        crops: distinct crops in the pool.
        fused_crops_per_s: :meth:`CropPreprocessor.write_crops` throughput on one thread
            (the like-for-like comparison with the one-thread reference).
        reference_crops_per_s: :func:`reference_preprocess` throughput (one crop per call,
            copied into the same buffer).
        max_abs_diff: largest difference between the two outputs on the first batch
            (normalised units; 0 means identical).
        threads: preprocessing threads of the loop's embedder.
        threaded_crops_per_s: the fused path on ``threads`` threads, as the loop runs it
            (None when ``threads`` is 1).
    """

    batch: int
    crops: int
    fused_crops_per_s: float
    reference_crops_per_s: float
    max_abs_diff: float
    threads: int = 1
    threaded_crops_per_s: float | None = None

    @property
    def speedup(self) -> float:
        """fused / reference throughput."""
        return self.fused_crops_per_s / self.reference_crops_per_s

    def to_dict(self) -> dict:
        data = asdict(self)
        data["fused_crops_per_s"] = round(self.fused_crops_per_s, 1)
        data["reference_crops_per_s"] = round(self.reference_crops_per_s, 1)
        if self.threaded_crops_per_s is not None:
            data["threaded_crops_per_s"] = round(self.threaded_crops_per_s, 1)
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


@dataclass(frozen=True)
class BenchConfig:
    """Settings of one benchmark run.

    Attributes:
        model_path: ReID ``.onnx`` (None: the bundled OSNet x0.25).
        backend: a registry name (``"onnxruntime"``, ``"openvino"``, ``"tensorrt"``) or ``"auto"``.
        precision: ``"fp32"``/``"bf16"``/``"fp16"``/``"int8"`` or None (the model's own); see
            :func:`~edge_reid.bench.precision.backend_options_for`.
        batches: batch sizes, each >= 1.
        seconds: timed seconds per batch size for the model alone, and as much again for each loop.
        warmup_s: untimed seconds per batch size before measuring (at least 2 calls).
        rounds: model-only and loop alternate in this many rounds per batch size.
        min_iterations: fewest timed calls per measurement, whatever ``seconds`` says.
        gallery_size: identities in the loop's gallery.
        threshold: the gallery's match threshold (cosine similarity).
        threads: CPU threads of the model (None: the runtime's default).
        engines_dir: TensorRT engines folder (``edge-reid build`` writes there).
        device: OpenVINO device (None: CPU).
        loop: also measure the embedding loop (:class:`~edge_reid.embedding_loop.EmbeddingLoop`); needs crops.
        sequential_loop: with ``loop``, also measure the plain loop (no overlap), for comparison.
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
    engines_dir: str | Path = "engines"
    device: str | None = None
    loop: bool = True
    sequential_loop: bool = True
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


def measure_preprocess(
    spec, pool: CropPool, batch: int, seconds: float, rounds: int = 4, min_iterations: int = 5, threads: int = 1
) -> PreprocessResult:
    """Crops/s of the fused preprocessing (one thread, and ``threads``) and of the plain reference, alternating rounds.

    Args:
        spec: the model's :class:`edge_reid.spec.ModelSpec`.
        pool: the crops.
        batch: crops per fused call (the reference does one crop per call into the same buffer).
        seconds: timed seconds for each path.
        threads: the loop's preprocessing threads; > 1 adds a measurement of the fused path on that many.

    Returns:
        :class:`PreprocessResult`.
    """
    from edge_reid.preprocess import CropPreprocessor, reference_preprocess

    preprocessor = CropPreprocessor(spec, batch)
    threaded = CropPreprocessor(spec, batch, threads=threads) if threads > 1 else None
    out = np.zeros((batch, 3, spec.height, spec.width), np.float32)
    reference_out = np.zeros_like(out)
    batches = pool.batches(batch)

    def fused_with(fused_preprocessor) -> Callable[[list], None]:
        return lambda crops: fused_preprocessor.write_crops(crops, out)

    fused = fused_with(preprocessor)

    def reference(crops) -> None:
        for index, crop in enumerate(crops):
            reference_out[index] = reference_preprocess(crop, spec)

    fused(batches[0])
    reference(batches[0])
    max_abs_diff = float(np.abs(out - reference_out).max())
    paths = {"fused": fused, "reference": reference}
    if threaded is not None:
        paths["threaded"] = fused_with(threaded)
    cursor = dict.fromkeys(paths, 0)
    samples: dict[str, list[float]] = {name: [] for name in paths}

    def step(name: str, function) -> Callable[[], None]:
        def call() -> None:
            function(batches[cursor[name] % len(batches)])
            cursor[name] += 1

        return call

    per_round = seconds / rounds
    min_per_round = max(1, -(-min_iterations // rounds))
    try:
        for _ in range(rounds):
            for name, function in paths.items():
                _timed_calls(step(name, function), per_round, min_per_round, samples[name])
    finally:
        if threaded is not None:
            threaded.close()
    rates = {name: LatencyStats.from_samples(values, batch).images_per_s for name, values in samples.items()}
    return PreprocessResult(
        batch, len(pool.crops), rates["fused"], rates["reference"], max_abs_diff, threads, rates.get("threaded")
    )


class LoopStep:
    """One step of the plain embedding loop on ``batch`` crops, callable; accumulates seconds per stage.

    A step: the next ``batch`` crops of the pool -> :meth:`Embedder.embed_crops` (preprocess into
    the backend's input buffer, infer, L2-normalise) -> ``matcher(gallery, embeddings)``, one after
    the other.
    """

    def __init__(self, embedder, pool: CropPool, batch: int, gallery, matcher: Matcher) -> None:
        self.embedder = embedder
        self.gallery = gallery
        self.matcher = matcher
        self.crop_batches = pool.batches(batch)
        self.embeddings = np.zeros((batch, embedder.dim), np.float32)
        self.cursor = 0
        self.seconds = {"preprocess": 0.0, "embed": 0.0, "match": 0.0}

    def __call__(self) -> None:
        crops = self.crop_batches[self.cursor % len(self.crop_batches)]
        self.cursor += 1
        vectors = self.embedder.embed_crops(crops, out=self.embeddings)
        start = time.perf_counter()
        self.matcher(self.gallery, vectors)
        self.seconds["match"] += time.perf_counter() - start
        self.seconds["preprocess"] += self.embedder.last_seconds["preprocess"]
        self.seconds["embed"] += self.embedder.last_seconds["embed"]

    def end_round(self) -> None:
        """Nothing to finish between rounds (the overlapped loop has a batch in flight)."""

    def reset(self) -> None:
        """Forget the stage seconds so far (after warm-up)."""
        self.seconds = dict.fromkeys(self.seconds, 0.0)


class OverlappedLoopStep:
    """One batch through :class:`~edge_reid.embedding_loop.EmbeddingLoop`, callable.

    Each call yields the next result: it submits the next batch's embedding to the
    worker and matches the previous batch meanwhile. :meth:`end_round` (untimed)
    stops the loop and waits for the batch in flight, so that the model-only
    measurement that follows runs alone; the next call starts the loop again (its
    first batch is embedded without overlap, a real start-up cost that the timed calls include).
    """

    def __init__(self, embedder, pool: CropPool, batch: int, gallery, matcher: Matcher) -> None:
        from edge_reid.embedding_loop import EmbeddingLoop

        self.crop_batches = pool.batches(batch)
        self.loop = EmbeddingLoop(embedder, lambda embeddings: matcher(gallery, embeddings))
        self.cursor = 0
        self._results = None

    def _endless_batches(self):
        while True:
            yield self.crop_batches[self.cursor % len(self.crop_batches)]
            self.cursor += 1

    def __call__(self) -> None:
        if self._results is None:
            self._results = self.loop.run(self._endless_batches())
        next(self._results)

    @property
    def seconds(self) -> dict[str, float]:
        return self.loop.seconds

    def end_round(self) -> None:
        """Stop the loop; waits for the batch in flight (untimed)."""
        if self._results is not None:
            self._results.close()
            self._results = None

    def reset(self) -> None:
        """Forget the stage seconds so far (after warm-up)."""
        self.loop.seconds = dict.fromkeys(self.loop.seconds, 0.0)


def measure_batch(
    embedder, batch: int, config: BenchConfig, pool: CropPool | None, gallery, matcher: Matcher = match_queries
) -> BatchResult:
    """Model-only latency and, with a ``gallery``, the overlapped and the plain loop at one batch size.

    The three measurements alternate in ``config.rounds`` rounds, so that a burst of
    outside load hits all of them.

    Args:
        embedder: an :class:`edge_reid.embedder.Embedder` with ``max_batch >= batch``.
        batch: images per call.
        config: seconds, warm-up, rounds and minimum iterations; ``config.sequential_loop``
            adds the plain loop.
        pool: real crops; the model-only input buffer is filled with the first ``batch`` of them
            (None: whatever the buffer holds).
        gallery: the loop's gallery, or None to measure the model only.
        matcher: the loop's matching call.

    Returns:
        :class:`BatchResult` (``loop`` None without a gallery).
    """
    backend = embedder.backend

    def model_call() -> None:
        backend.infer(batch)

    steps: dict[str, LoopStep | OverlappedLoopStep] = {}
    if gallery is not None:
        steps["loop"] = OverlappedLoopStep(embedder, pool, batch, gallery, matcher)
        if config.sequential_loop:
            steps["sequential"] = LoopStep(embedder, pool, batch, gallery, matcher)
    if pool is not None:
        embedder.preprocessor.write_crops(pool.batches(batch)[0], backend.buffers.input)
    _timed_calls(model_call, config.warmup_s / 2, 2, [])
    for step in steps.values():
        _timed_calls(step, config.warmup_s / 2, 2, [])
        step.end_round()
        step.reset()
    per_round = config.seconds / config.rounds
    min_per_round = max(1, -(-config.min_iterations // config.rounds))
    model_samples: list[float] = []
    step_samples: dict[str, list[float]] = {name: [] for name in steps}
    try:
        for _ in range(config.rounds):
            if pool is not None:  # the loops wrote other crops into the input buffer
                embedder.preprocessor.write_crops(pool.batches(batch)[0], backend.buffers.input)
            _timed_calls(model_call, per_round, min_per_round, model_samples)
            for name, step in steps.items():
                _timed_calls(step, per_round, min_per_round, step_samples[name])
                step.end_round()
    finally:
        for step in steps.values():
            step.end_round()
    model_stats = LatencyStats.from_samples(model_samples, batch)
    if not steps:
        return BatchResult(model_stats)
    stats = {name: LatencyStats.from_samples(samples, batch) for name, samples in step_samples.items()}
    stage_ms = {
        name: {stage: 1000.0 * total / stats[name].iterations for stage, total in step.seconds.items()}
        for name, step in steps.items()
    }
    return BatchResult(
        model_stats, stats["loop"], stage_ms["loop"], stats.get("sequential"), stage_ms.get("sequential", {})
    )


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

    say = progress or (lambda _line: None)
    model_path = Path(config.model_path) if config.model_path else DEFAULT_REID_MODEL
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    if (config.loop or config.preprocess) and pool is None:
        raise DataError("the loop and preprocess benchmarks need person crops: give --crops FOLDER or --video FILE")
    max_batch = max(config.batches)
    backend_name, backend_options = backend_options_for(config.backend, config.precision, config.engines_dir)
    if config.device is not None:
        backend_options["device"] = config.device
    embedder = Embedder(model_path, backend=backend_name, max_batch=max_batch, threads=config.threads, backend_options=backend_options)
    try:
        return _measure(embedder, config, model_path, pool, matcher, say)
    finally:
        embedder.close()


def _measure(embedder, config: BenchConfig, model_path: Path, pool, matcher: Matcher, say: Callable[[str], None]) -> BenchReport:
    """The body of :func:`run_bench` once the embedder exists."""
    from edge_reid.spec import model_sha256

    max_batch = max(config.batches)
    backend = embedder.backend
    precision = backend_precision(backend, config.precision, model_path)
    if backend.max_batch < max_batch:
        raise ModelError(
            f"{backend.describe()} takes at most {backend.max_batch} images per call; benchmark batch sizes up to "
            f"{backend.max_batch} (or build an engine / export a model with a larger batch)"
        )
    spec = embedder.spec
    if callable(pool):
        pool = pool()
    if pool is not None and not pool.crops:
        raise DataError(f"no person crops in {pool.source}")

    gallery = None
    if config.loop:
        say(f"embedding {len(pool.crops)} crops and building a gallery of {config.gallery_size} identities")
        gallery = synthetic_gallery(embedder.embed_crops(pool.crops), config.gallery_size, config.threshold)

    results = []
    for batch in config.batches:
        loops = (" + {0:g} s overlapped loop + {0:g} s plain loop" if config.sequential_loop else " + {0:g} s loop").format(config.seconds)
        say(f"batch {batch}: warm-up, then {config.seconds:g} s model only" + (loops if config.loop else ""))
        results.append(measure_batch(embedder, batch, config, pool, gallery if config.loop else None, matcher))

    preprocess = None
    if config.preprocess:
        say(f"preprocess: fused vs reference, batch {max_batch}, {config.seconds:g} s each")
        preprocess = measure_preprocess(
            spec, pool, max_batch, config.seconds, config.rounds, config.min_iterations, embedder.preprocessor.threads
        )

    model_info = {
        "path": str(model_path),
        "name": spec.name,
        "sha256": model_sha256(model_path),
        "precision": precision,
        "backend": backend.describe(),
        "selection_reason": backend.selection_reason,
        "input": [3, spec.height, spec.width],
        "embedding_dim": spec.embedding_dim,
    }
    settings = {
        "backend": backend.name,
        "batches": list(config.batches),
        "seconds": config.seconds,
        "warmup_s": config.warmup_s,
        "rounds": config.rounds,
        "min_iterations": config.min_iterations,
        "threads": config.threads,
        "device": (config.device or "CPU") if backend.name == "openvino" else None,
        "engines_dir": str(config.engines_dir) if backend.name == "tensorrt" else None,
        "gallery_size": config.gallery_size if config.loop else None,
        "threshold": config.threshold,
        "matcher": f"{matcher.__module__}.{getattr(matcher, '__qualname__', repr(matcher))}" if config.loop else None,
        "crops": {"source": pool.source, "count": len(pool.crops), "skipped": len(pool.skipped)} if pool is not None else None,
    }
    return BenchReport(model_info, settings, results, preprocess, environment())
