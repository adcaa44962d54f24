"""Backends behind one registry: name -> availability check with a reason -> factories.

:data:`BACKENDS` lists every backend in the order ``--backend auto`` prefers them:
TensorRT (a GPU and TensorRT present) > OpenVINO (installed, x86-64) > ONNX Runtime; between the
last two, each model runs on the one measured faster on this CPU (:mod:`edge_reid.backends.cpu_choice`).
Each entry says whether the backend can run here and why not, and makes the ReID
model's :class:`EmbeddingBackend` and, where it has one, the detector's
:class:`DetectorBackend`. Adding a backend is one module with those functions and
one line in :data:`BACKENDS`.

Nothing here imports a runtime library: availability checks read installed package
versions, and the runtimes are imported when a backend is created.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from edge_reid.backends import onnxruntime as _onnxruntime
from edge_reid.backends import openvino as _openvino
from edge_reid.backends.base import DETECTOR_PRECISIONS, PRECISIONS, BackendOptions, DetectorBackend, EmbeddingBackend
from edge_reid.errors import BackendUnavailableError
from edge_reid.spec import ModelSpec

Availability = Callable[[], "tuple[bool, str]"]


def tensorrt_available() -> tuple[bool, str]:
    """(True, "TensorRT X on GPU") when TensorRT (>= 8.5), cuda-python and a CUDA GPU can be used, else (False, why)."""
    from edge_reid.tensorrt.env import tensorrt_status

    status = tensorrt_status()
    if not status.usable:
        return False, status.reason
    return True, f"TensorRT {status.tensorrt_version} on {status.gpu.gpu.describe()}"


def _tensorrt_availability() -> tuple[bool, str]:
    return tensorrt_available()  # looked up at call time, so tests can monkeypatch it


def _open_tensorrt(model_path, spec: ModelSpec, max_batch: int, threads: int | None, options: BackendOptions) -> EmbeddingBackend:
    """TensorRT runs the current engine built for the model; ``max_batch`` and ``threads`` do not apply."""
    from edge_reid.backends.tensorrt import open_tensorrt_backend

    if options.precision in ("fp32", "bf16"):
        raise BackendUnavailableError(
            f"the TensorRT backend runs FP16 or INT8 engines (built with `edge-reid build --precision fp16|int8`), "
            f"not {options.precision}; for {options.precision.upper()} use the "
            f"{'openvino or onnxruntime backend' if options.precision == 'fp32' else 'openvino backend'} (--backend, or backend= in Python)"
        )
    backend = open_tensorrt_backend(
        model_path, spec, precision=options.precision, engines_dir=options.engines_dir, rebuild=options.rebuild
    )
    backend.selection_detail = f"engine {backend.engine_path.name}"
    return backend


@dataclass(frozen=True)
class Backend:
    """One entry of the registry.

    Attributes:
        name: the ``--backend`` value.
        title: the name users know ("ONNX Runtime").
        availability: () -> (usable, detail): whether it can run here and, if not, why.
            Cheap; imports no runtime.
        open_embedding: (model_path, spec, max_batch, threads, options) -> :class:`EmbeddingBackend`.
        open_detector: (model_path, threads, options, input_size) -> :class:`DetectorBackend`, or None
            when the backend runs no detector (the detector then runs on the next available backend).
        auto_availability: the check ``--backend auto`` uses, when stricter than ``availability``.
    """

    name: str
    title: str
    availability: Availability
    open_embedding: Callable[..., EmbeddingBackend]
    open_detector: Callable[..., DetectorBackend] | None = None
    auto_availability: Availability | None = None


#: Every backend, in the order ``--backend auto`` prefers them.
BACKENDS: tuple[Backend, ...] = (
    Backend("tensorrt", "TensorRT", _tensorrt_availability, _open_tensorrt),
    Backend("openvino", "OpenVINO", _openvino.availability, _openvino.open_embedding_backend, _openvino.open_detector_backend,
            _openvino.auto_availability),
    Backend("onnxruntime", "ONNX Runtime", _onnxruntime.availability, _onnxruntime.open_embedding_backend,
            _onnxruntime.open_detector_backend),
)

BACKEND_NAMES = ("auto",) + tuple(entry.name for entry in BACKENDS)


def get_backend(name: str) -> Backend:
    """The registry entry called ``name``.

    Raises:
        ValueError: no such backend (the message lists the names).
    """
    for entry in BACKENDS:
        if entry.name == name:
            return entry
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")


@dataclass(frozen=True)
class BackendChoice:
    """Which backend a ``--backend`` value resolves to, and why.

    Attributes:
        name: a registry name, e.g. ``"openvino"``.
        reason: one line for the user, e.g.
            ``"auto chose OpenVINO (OpenVINO 2026.4.1); TensorRT not usable: no CUDA GPU"``.
    """

    name: str
    reason: str


def _check(entry: Backend, for_auto: bool, checks: Mapping[str, Availability] | None) -> tuple[bool, str]:
    if checks is not None and entry.name in checks:
        return checks[entry.name]()
    check = entry.auto_availability if for_auto and entry.auto_availability else entry.availability
    return check()


def candidates(requested: str, checks: Mapping[str, Availability] | None = None) -> list[BackendChoice]:
    """The backends to try for ``--backend requested``, best first, each with the reason it is tried.

    ``auto``: every usable backend in :data:`BACKENDS` order; each reason names the backends
    passed over and why. A name: that backend alone.

    Args:
        requested: ``"auto"`` or a registry name.
        checks: availability checks to use instead of the registry's, by name (for tests and
            for callers that already probed the machine).

    Raises:
        ValueError: unknown name.
        BackendUnavailableError: the named backend cannot run here, or (auto) none can; the
            message names the backend and what is missing (the CLI exits 2).
    """
    if requested != "auto":
        entry = get_backend(requested)
        ok, detail = _check(entry, False, checks)
        if not ok:
            raise BackendUnavailableError(f"--backend {requested}: {entry.title} cannot be used here: {detail}")
        return [BackendChoice(entry.name, f"{entry.name}: requested with --backend {entry.name} ({detail})")]
    usable, unusable = [], []
    for entry in BACKENDS:
        ok, detail = _check(entry, True, checks)
        (usable if ok else unusable).append((entry, detail))
    if not usable:
        raise BackendUnavailableError(
            "--backend auto: no backend can run here: " + "; ".join(f"{entry.title}: {detail}" for entry, detail in unusable)
        )
    passed_over = "".join(f"; {entry.title} not usable: {detail}" for entry, detail in unusable)
    return [BackendChoice(entry.name, f"auto chose {entry.title} ({detail}){passed_over}") for entry, detail in usable]


def choose_backend(requested: str, checks: Mapping[str, Availability] | None = None) -> BackendChoice:
    """Resolve ``--backend``: a name is that backend; ``auto`` the first usable one in :data:`BACKENDS` order.

    Raises:
        ValueError: unknown name.
        BackendUnavailableError: see :func:`candidates`.
    """
    return candidates(requested, checks)[0]


def check_count(value, name: str) -> None:
    """Refuse a thread count or batch size that is not a whole number >= 1 (None passes: the default).

    Raises:
        ValueError: ``value`` is a bool, not an integer, or below 1; the message names ``name``.
    """
    if value is None:
        return
    try:
        whole = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        whole = None
    if whole is None or whole < 1:
        raise ValueError(f"{name} must be a whole number >= 1 (or None for the default), got {value!r}")


def create_backend(
    name: str,
    model_path: str | Path,
    spec: ModelSpec,
    max_batch: int = 32,
    threads: int | None = None,
    *,
    precision: str | None = None,
    device: str | None = None,
    engines_dir: str | Path = "engines",
    rebuild: bool = False,
    side_by_side: bool = False,
) -> EmbeddingBackend:
    """Create the ReID model's backend called ``name`` (or the best one for ``auto``).

    The returned backend's ``selection_reason`` says which backend was chosen and
    why (print it for ``--backend auto``). Under ``auto`` a backend that turns out
    unusable when opened (TensorRT without a current engine, a precision the device
    lacks) is passed over for the next, and the reason says so.

    Args:
        name: ``"auto"`` or a name in :data:`BACKEND_NAMES`.
        model_path: the ONNX model.
        spec: its spec.
        max_batch: rows of the batch buffer (CPU backends; TensorRT uses its engine
            profile's max batch instead).
        threads: CPU threads for the model (None: the runtime's default, or its share of the
            cores with ``side_by_side``).
        precision, device, engines_dir, rebuild, side_by_side: see :class:`BackendOptions`.

    Raises:
        BackendUnavailableError: the backend asked for cannot be used (names it and why),
            or TensorRT has no current engine (says how to build one).
        ValueError: unknown backend name or precision; ``max_batch`` or ``threads`` not a whole number >= 1.
        ModelError: the model cannot be loaded.
    """
    check_count(max_batch, "max_batch")
    check_count(threads, "threads")
    options = BackendOptions(precision=precision, device=device, engines_dir=engines_dir, rebuild=rebuild, side_by_side=side_by_side)

    def open_one(entry: Backend) -> EmbeddingBackend:
        return entry.open_embedding(model_path, spec, max_batch, threads, options)

    tried = candidates(name)
    if name == "auto":
        from edge_reid.backends.cpu_choice import order_by_speed

        batch = min(8, max_batch)
        tried = order_by_speed(tried, "embedding", model_path,
                               f"max_batch {max_batch}, timed at {batch}, threads {threads}, {_choice_options(options)}",
                               lambda backend: open_one(get_backend(backend)),
                               lambda backend: _embedding_call(backend, min(batch, backend.max_batch)),  # a model's fixed batch may be smaller
                               cpu_time=side_by_side)
    return _open_first(name, open_one, tried)


def _choice_options(options: BackendOptions) -> str:
    """The options a CPU backend is opened with, as the text of the timing's cache key: plain words and values
    only (no reprs of paths or dataclasses, which spelt the same settings two ways), and none of the TensorRT
    options (``engines_dir``, ``rebuild``), which change nothing on a CPU backend.

    >>> _choice_options(BackendOptions(precision="fp32", engines_dir=Path("engines"), side_by_side=True))
    'precision fp32, device None, side_by_side True'
    """
    return f"precision {options.precision}, device {options.device}, side_by_side {options.side_by_side}"


def _random_input(array) -> None:
    import numpy as np

    array[...] = np.random.default_rng(0).standard_normal(array.shape).astype(array.dtype)


def _embedding_call(backend: EmbeddingBackend, rows: int) -> Callable[[], object]:
    """One call of ``backend`` on ``rows`` rows of random input, for timing."""
    _random_input(backend.buffers.input[:rows])
    return lambda: backend.infer(rows)


def create_detector_backend(
    name: str, model_path: str | Path, threads: int | None = None, *, device: str | None = None, side_by_side: bool = False,
    input_size: tuple[int, int] | None = None, precision: str = "fp32",
) -> DetectorBackend:
    """Create the detector's backend for ``--backend name``.

    A backend without a detector (TensorRT) leaves the detector on the next usable
    backend that has one, and ``selection_reason`` says so. ``precision``: one of
    :data:`DETECTOR_PRECISIONS` (``--detector-precision``), FP32 by default; a backend that
    cannot compute in it refuses (ONNX Runtime: FP32 only), ``auto`` then tries the next one,
    none changes it silently. ``threads`` and ``side_by_side`` (the ReID model computes on the
    CPU at the same time): as :func:`create_backend`. ``input_size``: (height, width) to run
    the model at instead of its file's size (multiples of its largest stride).

    Raises:
        BackendUnavailableError, ValueError, ModelError: as :func:`create_backend`.
    """
    if precision not in DETECTOR_PRECISIONS:
        raise ValueError(f"unknown detector precision {precision!r}; choose one of {', '.join(DETECTOR_PRECISIONS)}")
    check_count(threads, "threads")
    options = BackendOptions(precision=precision, device=device, side_by_side=side_by_side)
    tried = candidates(name)
    if get_backend(tried[0].name).open_detector is None:
        fallback = [c for c in candidates("auto") if get_backend(c.name).open_detector is not None]
        title = get_backend(tried[0].name).title
        tried = [BackendChoice(c.name, f"detector on {get_backend(c.name).title}: {title} runs only the ReID model") for c in fallback]

    def open_one(entry: Backend) -> DetectorBackend:
        return entry.open_detector(model_path, threads, options, input_size)

    if len(tried) > 1:
        from edge_reid.backends.cpu_choice import order_by_speed

        def detector_call(backend: DetectorBackend) -> Callable[[], object]:
            _random_input(backend.input)
            return backend.run

        size = "the model's own" if input_size is None else f"{int(input_size[0])}x{int(input_size[1])}"
        tried = order_by_speed(tried, "detector", model_path, f"threads {threads}, input {size}, {_choice_options(options)}",
                               lambda backend: open_one(get_backend(backend)), detector_call, cpu_time=side_by_side)
    return _open_first("auto" if len(tried) > 1 else name, open_one, tried)


def _open_first(name: str, open_one: Callable[[Backend], object], tried: list[BackendChoice] | None = None):
    """Open the first of ``tried`` (default: :func:`candidates` of ``name``) that opens; explicit names never fall back."""
    from edge_reid.tensorrt.errors import EngineNotFoundError

    tried = tried if tried is not None else candidates(name)
    notes: list[str] = []
    for index, choice in enumerate(tried):
        try:
            backend = open_one(get_backend(choice.name))
        except (BackendUnavailableError, EngineNotFoundError) as exc:
            if name != "auto" or (index == len(tried) - 1 and not notes):
                raise
            notes.append(f"{get_backend(choice.name).title} passed over: {exc}")
            if index == len(tried) - 1:
                raise BackendUnavailableError("--backend auto: no backend can run this model here: " + "; ".join(notes)) from None
            continue
        detail = getattr(backend, "selection_detail", "")
        backend.selection_reason = "; ".join([choice.reason] + ([detail] if detail else []) + notes)
        return backend
    raise AssertionError("unreachable: candidates() never returns an empty list")


def backend_statuses(checks: Mapping[str, Availability] | None = None) -> list[tuple[Backend, bool, str]]:
    """Every registered backend with (usable here, detail), in :data:`BACKENDS` order (for ``doctor`` and ``bench``)."""
    return [(entry, *_check(entry, False, checks)) for entry in BACKENDS]


__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "DETECTOR_PRECISIONS",
    "PRECISIONS",
    "Backend",
    "BackendChoice",
    "BackendOptions",
    "DetectorBackend",
    "EmbeddingBackend",
    "backend_statuses",
    "candidates",
    "check_count",
    "choose_backend",
    "create_backend",
    "create_detector_backend",
    "get_backend",
    "tensorrt_available",
]
