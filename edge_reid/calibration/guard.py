"""The accuracy guard: keep the most sensitive layers in float until the quantized model is within budget.

The search is independent of how a candidate is built or measured: it takes
the layers ranked most-sensitive first and a callback that quantizes with a
given set of float layers and measures it against FP32. It tries more and
more float layers (0, 4, 8, 16, ... doubling), and once a candidate is within
budget it bisects back towards fewer float layers. At least one layer always
stays INT8. When no candidate is within budget it says so and returns the best
one seen (highest top-1 agreement, then fewest float layers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence


@dataclass(frozen=True)
class AccuracyBudget:
    """How far a quantized model may drift from FP32.

    Attributes:
        max_map_drop: largest allowed mAP drop on the labelled split, in points (percent).
        min_top1_agreement: smallest allowed top-1 nearest-neighbour agreement on the pool, in [0, 1].
        min_mean_cosine: smallest allowed mean FP32-vs-quantized cosine on the pool, in [-1, 1].
    """

    max_map_drop: float = 1.0
    min_top1_agreement: float = 0.97
    min_mean_cosine: float = 0.995

    def violations(self, measurement: "Measurement") -> list[str]:
        """Human-readable reasons ``measurement`` is outside the budget (empty when within)."""
        problems = []
        if measurement.map_drop > self.max_map_drop + 1e-9:
            problems.append(f"mAP drop {measurement.map_drop:.2f} > {self.max_map_drop:.2f} points")
        if measurement.top1_agreement < self.min_top1_agreement - 1e-12:
            problems.append(f"top-1 agreement {100 * measurement.top1_agreement:.2f}% < {100 * self.min_top1_agreement:.2f}%")
        if measurement.mean_cosine < self.min_mean_cosine - 1e-12:
            problems.append(f"mean cosine {measurement.mean_cosine:.5f} < {self.min_mean_cosine:.5f}")
        return problems

    def to_dict(self) -> dict:
        return {
            "max_map_drop_points": self.max_map_drop,
            "min_top1_agreement_percent": round(100 * self.min_top1_agreement, 3),
            "min_mean_cosine": self.min_mean_cosine,
        }


@dataclass
class Measurement:
    """One candidate's comparison with FP32.

    Attributes:
        float_layers: the layers the guard kept in float for this candidate.
        map_drop: FP32 mAP minus candidate mAP on the labelled split, in points.
        top1_agreement: top-1 nearest-neighbour agreement on the pool, in [0, 1].
        mean_cosine: mean FP32-vs-candidate cosine on the pool.
        details: anything else worth reporting (full metrics, file paths).
    """

    float_layers: tuple[str, ...]
    map_drop: float
    top1_agreement: float
    mean_cosine: float
    details: dict = field(default_factory=dict)


@dataclass
class GuardOutcome:
    """Result of :func:`search_float_layers`.

    Attributes:
        best: the chosen candidate (within budget, or the best seen).
        met: True when ``best`` is within budget.
        history: every candidate measured, in order.
        violations: why ``best`` is outside the budget (empty when met).
    """

    best: Measurement
    met: bool
    history: list[Measurement]
    violations: list[str]


def float_layer_schedule(available: int, first_step: int = 4) -> list[int]:
    """How many ranked layers to keep float at each try: 0, 4, 8, 16, ... up to ``available``."""
    counts, step = [0], first_step
    while step < available:
        counts.append(step)
        step *= 2
    if available > 0:
        counts.append(available)
    return counts


def search_float_layers(
    measure: Callable[[Sequence[str]], Measurement],
    ranked_layers: Sequence[str],
    budget: AccuracyBudget,
    max_float: int | None = None,
    bisect_steps: int = 4,
    on_candidate: Callable[[Measurement, bool], None] | None = None,
) -> GuardOutcome:
    """Find few float layers that bring the quantized model within ``budget``.

    Args:
        measure: quantizes with the given layers kept float and measures the result.
        ranked_layers: quantized layers, most sensitive first (see
            :func:`edge_reid.calibration.sensitivity.layer_sensitivity`).
        budget: the accuracy budget.
        max_float: most ranked layers to keep float (default: all but one, so the
            model stays an INT8 model).
        bisect_steps: candidates spent narrowing the count once one is within budget.
        on_candidate: called with each measurement and whether it is within budget.

    Returns:
        :class:`GuardOutcome`.
    """
    limit = len(ranked_layers) - 1 if max_float is None else min(max_float, len(ranked_layers))
    limit = max(limit, 0)
    history: list[Measurement] = []
    results: dict[int, Measurement] = {}

    def run(count: int) -> bool:
        measurement = measure(tuple(ranked_layers[:count]))
        ok = not budget.violations(measurement)
        history.append(measurement)
        results[count] = measurement
        if on_candidate is not None:
            on_candidate(measurement, ok)
        return ok

    passing, failing = None, 0
    for count in float_layer_schedule(limit):
        if run(count):
            passing = count
            break
        failing = count
    if passing is not None:
        low, high = failing, passing
        for _ in range(bisect_steps):
            if high - low <= 1 or passing == 0:
                break
            middle = (low + high) // 2
            if run(middle):
                high = middle
            else:
                low = middle
        best = results[high]
        return GuardOutcome(best=best, met=True, history=history, violations=[])
    best = max(history, key=lambda m: (m.top1_agreement, -len(m.float_layers)))
    return GuardOutcome(best=best, met=False, history=history, violations=budget.violations(best))
