"""``edge-reid bench`` over several backends: one :class:`~edge_reid.bench.runner.BenchReport` each, one table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Sequence

from edge_reid.bench.crop_pool import CropPool
from edge_reid.bench.matcher import Matcher, match_queries
from edge_reid.bench.runner import BenchConfig, BenchReport, run_bench
from edge_reid.errors import BackendUnavailableError

#: Version of the JSON layout written by ``edge-reid bench --json``.
COMPARISON_SCHEMA = "edge-reid-bench/3"


def bench_backend_names(value: str) -> list[str]:
    """The backends ``--backend value`` measures, in registry order.

    ``all``: every backend usable here (availability check of the registry); ``auto``:
    the one ``--backend auto`` picks; else a comma-separated list of registry names.

    Raises:
        ValueError: an unknown name or an empty list.
        BackendUnavailableError: ``all`` and nothing is usable (cannot happen while ONNX
            Runtime is installed).
    """
    from edge_reid.backends import BACKEND_NAMES, backend_statuses

    if value == "all":
        usable = [entry.name for entry, ok, _detail in backend_statuses() if ok]
        if not usable:
            raise BackendUnavailableError("no backend can run here (see `edge-reid doctor`)")
        return usable
    names = list(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))  # each once
    unknown = [name for name in names if name not in BACKEND_NAMES]
    if not names or unknown:
        raise ValueError(f"unknown backend {', '.join(unknown) or repr(value)}; choose all or one or more of {', '.join(BACKEND_NAMES)}")
    return names


@dataclass
class BackendComparison:
    """The reports of one benchmark run over several backends, same model, crops and settings.

    Attributes:
        reports: one :class:`BenchReport` per backend measured, in the order measured.
        skipped: (backend, why) for backends of ``--backend all`` that could not run the model.
        requested: the ``--backend`` value asked for (``"all"``, ``"auto"``, a list), recorded in
            the JSON's settings.
    """

    reports: list[BenchReport]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    requested: str = ""

    def to_dict(self) -> dict:
        """The ``--json`` document (schema :data:`COMPARISON_SCHEMA`; see docs/benchmarks.md)."""
        first = self.reports[0]
        per_backend = ("backend", "precision", "selection_reason")
        return {
            "schema": COMPARISON_SCHEMA,
            "model": {key: value for key, value in first.model.items() if key not in per_backend},
            "settings": {**first.settings, "backend": self.requested or first.settings["backend"]},
            "backends": [
                {
                    "backend": report.settings["backend"],
                    "describe": report.model["backend"],
                    "precision": report.model["precision"],
                    "selection_reason": (
                        "every backend usable here (--backend all)" if self.requested == "all"
                        else report.model.get("selection_reason", "")
                    ),
                    "batches": [row.to_dict() for row in report.batches],
                }
                for report in self.reports
            ],
            "skipped": [{"backend": name, "reason": why} for name, why in self.skipped],
            "preprocess": next((r.preprocess.to_dict() for r in self.reports if r.preprocess is not None), None),
            "environment": first.environment,
        }


def bench_backends(
    config: BenchConfig,
    backends: Sequence[str],
    pool: CropPool | Callable[[], CropPool] | None = None,
    matcher: Matcher = match_queries,
    progress: Callable[[str], None] | None = None,
    skip_unusable: bool = False,
) -> BackendComparison:
    """Run :func:`run_bench` for each backend, on the same crops; preprocessing is measured once.

    Args:
        config: the settings (its ``backend`` is replaced by each of ``backends``).
        backends: backend names (or ``"auto"``).
        pool: real crops, or a function returning them (called once, after the first model loaded).
        matcher: the loops' matching call.
        progress: called with a short line before each part.
        skip_unusable: skip (and record) a backend that cannot run the model or precision
            asked for, instead of failing (``--backend all``).

    Raises:
        As :func:`run_bench`; BackendUnavailableError only when not ``skip_unusable`` or
        when no backend could run.
    """
    from edge_reid.tensorrt.errors import EngineNotFoundError

    say = progress or (lambda _line: None)
    loaded: list[CropPool] = []

    def crops() -> CropPool:
        if not loaded:
            loaded.append(pool() if callable(pool) else pool)
        return loaded[0]

    reports, skipped = [], []
    for name in backends:
        say(f"backend {name}")
        measured = dataclasses.replace(config, backend=name, preprocess=config.preprocess and not reports)
        try:
            reports.append(run_bench(measured, crops if pool is not None else None, matcher, progress))
        except (BackendUnavailableError, EngineNotFoundError) as exc:
            if not skip_unusable:
                raise
            skipped.append((name, str(exc)))
            say(f"skipped {name}: {exc}")
    if not reports:
        raise BackendUnavailableError("no backend could run the benchmark: " + "; ".join(f"{n}: {why}" for n, why in skipped))
    return BackendComparison(reports, skipped, requested=config.backend)
