"""ONNX Runtime's graph optimisation level, chosen by measurement once per model, machine and version.

Which level is fastest depends on the model and the CPU: for the bundled OSNet on an AVX-512
CPU ONNX Runtime's default (``all``, whose layout transformations reorder tensors for the CPU's
vector width) measured slower than ``extended``, and nothing says the same holds on an AVX2 CPU
or for another model. So, like TensorRT's timing cache, the first session for a (model file,
CPU model and instruction sets, ONNX Runtime version, threads, batch) times the candidate levels
side by side on the model itself (a few runs each, alternating rounds, medians) and keeps the
fastest; the choice is cached on disk and later sessions read it. A level within
:data:`KEEP_DEFAULT_WITHIN` of the default counts as a tie and the default is kept, so noise
does not flip the choice.

Cache: ``$EDGE_REID_CACHE_DIR/onnxruntime-tuning.json`` (default ``$XDG_CACHE_HOME/edge-reid``,
else ``~/.cache/edge-reid``), written atomically; delete it to tune again. A cache that cannot be
read is ignored and one that cannot be written is skipped: tuning then happens per process (said once:
:func:`~edge_reid.cache_folder.warn_uncached`; docs/caches.md).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_reid.cache_folder import cache_file, read_cache_entries, timings_in_ms, write_cache_entry

#: Levels timed against each other (``disable`` is never faster on a real model).
CANDIDATE_LEVELS = ("basic", "extended", "all")
#: A candidate must beat the default by more than this share of its time to replace it.
KEEP_DEFAULT_WITHIN = 0.03
ROUNDS = 3
CALLS_PER_ROUND = 2
CACHE_FILE = "onnxruntime-tuning.json"
SCHEMA = "edge-reid-onnxruntime-tuning/1"


@dataclass(frozen=True)
class TuningResult:
    """The level a session uses and where it came from.

    Attributes:
        level: the graph optimisation level chosen.
        source: ``"measured"`` (timed now), ``"cached"`` (read from the cache) or
            ``"default"`` (the model could not be timed, e.g. non-float inputs).
        ms: median ms per run of each level timed (empty unless measured now, or cached).
    """

    level: str
    source: str
    ms: dict

    def describe(self) -> str:
        """E.g. ``"graph level extended (tuned)"``."""
        how = {"measured": "tuned now", "cached": "tuned", "default": "default"}[self.source]
        return f"graph level {self.level} ({how})"


def tuning_key(model_path: str | Path, threads: int | None, batch: int, graph: str = "", image_size: tuple[int, int] | None = None) -> str:
    """What a tuning result depends on: model bytes, CPU model and instruction sets, ONNX Runtime version,
    threads, batch, the rewrite of the graph that runs (``graph``, "" for the file as is) and the (height, width)
    in pixels the model runs at (``image_size``, given for every embedding model: a dynamic image size is
    timed at it; keys written before it was part of them are measured again once)."""
    from importlib import metadata

    from edge_reid.cpu import cpu_isa_flags, cpu_model
    from edge_reid.spec import model_sha256

    return "|".join((
        model_sha256(model_path), cpu_model(), ",".join(cpu_isa_flags()), f"onnxruntime {metadata.version('onnxruntime')}",
        f"threads {threads or 'default'}", f"batch {batch}", *([f"graph {graph}"] if graph else []),
        *([f"image {image_size[0]}x{image_size[1]}"] if image_size else []),
    ))


def _feeds(session, batch: int, image_size: tuple[int, int] | None = None) -> dict | None:
    """Random float32 inputs of the session's shapes, or None (an input that is not float32).

    A dynamic dimension is ``batch`` first, 3 channels second, ``image_size`` (height, width) third and
    fourth of a rank-4 input where given, else 1."""
    rng = np.random.default_rng(0)
    feeds = {}
    for model_input in session.get_inputs():
        if model_input.type != "tensor(float)":
            return None
        rank = len(model_input.shape)
        wanted = [batch, 3, *(image_size or (1, 1))] if rank == 4 else [batch, *([1] * (rank - 1))]
        shape = [d if isinstance(d, int) and d > 0 else wanted[i] for i, d in enumerate(model_input.shape)]
        feeds[model_input.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _time_levels(sessions: dict, feeds: dict) -> dict[str, float]:
    """Median ms per run of each session, in alternating rounds after a warm-up run each."""
    for session in sessions.values():
        session.run(None, feeds)
    samples: dict[str, list[float]] = {level: [] for level in sessions}
    for _ in range(ROUNDS):
        for level, session in sessions.items():
            start = time.perf_counter()
            for _ in range(CALLS_PER_ROUND):
                session.run(None, feeds)
            samples[level].append(1000.0 * (time.perf_counter() - start) / CALLS_PER_ROUND)
    return {level: statistics.median(values) for level, values in samples.items()}


def pick_level(ms: dict[str, float], default: str) -> str:
    """The fastest level of ``ms`` (median ms per run), or ``default`` unless another beats it by more than
    :data:`KEEP_DEFAULT_WITHIN`."""
    fastest = min(ms, key=ms.get)
    if default in ms and ms[fastest] >= ms[default] * (1.0 - KEEP_DEFAULT_WITHIN):
        return default
    return fastest


def tuned_session(
    model_path: str | Path, threads: int | None, batch: int, make_session, default: str, graph: str = "",
    image_size: tuple[int, int] | None = None,
):
    """A session at the level tuned for this model, machine and ONNX Runtime version.

    Args:
        model_path: the ``.onnx`` file.
        threads: intra-op threads the session will use (part of the key).
        batch: the batch the dynamic first dimension is timed at (part of the key).
        make_session: ``level -> onnxruntime.InferenceSession`` with every other option set.
        default: the level used on ties and when the model cannot be timed (an input that is not
            float32, or a model that fails to run: nothing is cached then).
        graph: the rewrite of the file's graph ``make_session`` loads (part of the key; "" for none).
        image_size: (height, width) in pixels the model runs at (part of the key); an input whose
            image size is dynamic is timed at it (None: at 1).

    Returns:
        ``(session, TuningResult)``.

    Raises:
        Whatever ``make_session`` raises (a model ONNX Runtime cannot load).
    """
    path = cache_file(CACHE_FILE)
    key = tuning_key(model_path, threads, batch, graph, image_size)
    cached = read_cache_entries(path, SCHEMA).get(key)
    if isinstance(cached, dict) and cached.get("level") in CANDIDATE_LEVELS and timings_in_ms(cached.get("ms"), CANDIDATE_LEVELS):
        return make_session(cached["level"]), TuningResult(cached["level"], "cached", dict(cached["ms"]))
    sessions = {level: make_session(level) for level in CANDIDATE_LEVELS}
    feeds = _feeds(sessions[default], batch, image_size)
    if feeds is None:
        return sessions[default], TuningResult(default, "default", {})
    try:
        sessions[default].run(None, feeds)
    except Exception:  # noqa: BLE001 - a model that loads but does not run is not timed: the caller's first run reports it
        return sessions[default], TuningResult(default, "default", {})
    ms = _time_levels(sessions, feeds)
    reported = {level: round(value, 3) for level, value in ms.items()}  # chosen from the values reported, so they explain it
    result = TuningResult(pick_level(reported, default), "measured", reported)
    write_cache_entry(path, SCHEMA, key, {"level": result.level, "ms": result.ms}, "ONNX Runtime tuning cache")
    return sessions[result.level], result
