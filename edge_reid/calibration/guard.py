"""The accuracy guard: choose which layers stay float on one split of the crops, prove it on another.

The search is independent of how a candidate is built or measured. It takes
the layers ranked by measured sensitivity per multiply-add (most error per MAC
first) and walks down that list, keeping more and more of them float; it
measures a candidate on the *selection* split at every checkpoint (each time
the float share of MACs grows by ``mac_step`` or ``layer_step`` more layers
are float). The first candidate within budget on the selection split is then
measured on the disjoint *held-out* split; only if it is within budget there
too is it accepted, otherwise the walk goes on. No step assumes that fidelity
rises monotonically with more float layers (measured top-1 agreement moves by
a few points between neighbouring candidates), and the numbers reported for
the chosen model are held-out numbers, never the ones it was chosen on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence


@dataclass(frozen=True)
class AccuracyBudget:
    """How far a quantized model may drift from FP32; all limits must hold together.

    Attributes:
        max_map_drop: largest allowed mAP drop on the labelled split, in points (percent).
        min_top1_agreement: smallest top-1 nearest-neighbour agreement on the pool, in [0, 1].
        min_mean_cosine: smallest mean FP32-vs-quantized cosine on the pool, in [-1, 1].
        min_p1_cosine: smallest 1st-percentile cosine (the worst 1% of crops).
        min_top5_agreement: smallest mean overlap of the FP32 and quantized top-5 neighbour sets, in [0, 1].
    """

    max_map_drop: float = 1.0
    min_top1_agreement: float = 0.97
    min_mean_cosine: float = 0.9995
    min_p1_cosine: float = 0.998
    min_top5_agreement: float = 0.95

    def violations(self, measurement: "Measurement") -> list[str]:
        """Human-readable reasons ``measurement`` is outside the budget (empty when within)."""
        problems = []
        if measurement.map_drop is not None and measurement.map_drop > self.max_map_drop + 1e-9:
            problems.append(f"mAP drop {measurement.map_drop:.2f} > {self.max_map_drop:.2f} points")
        if measurement.top1_agreement < self.min_top1_agreement - 1e-12:
            problems.append(f"top-1 agreement {100 * measurement.top1_agreement:.2f}% < {100 * self.min_top1_agreement:.2f}%")
        if measurement.mean_cosine < self.min_mean_cosine - 1e-12:
            problems.append(f"mean cosine {measurement.mean_cosine:.5f} < {self.min_mean_cosine:.5f}")
        if measurement.p1_cosine < self.min_p1_cosine - 1e-12:
            problems.append(f"1st-percentile cosine {measurement.p1_cosine:.5f} < {self.min_p1_cosine:.5f}")
        if measurement.top5_agreement < self.min_top5_agreement - 1e-12:
            problems.append(f"top-5 agreement {100 * measurement.top5_agreement:.2f}% < {100 * self.min_top5_agreement:.2f}%")
        return problems

    def to_dict(self) -> dict:
        return {
            "max_map_drop_points": self.max_map_drop,
            "min_top1_agreement_percent": round(100 * self.min_top1_agreement, 3),
            "min_mean_cosine": self.min_mean_cosine,
            "min_p1_cosine": self.min_p1_cosine,
            "min_top5_agreement_percent": round(100 * self.min_top5_agreement, 3),
        }


@dataclass
class Measurement:
    """One candidate's comparison with FP32 on one split.

    Attributes:
        float_layers: the layers the guard kept in float for this candidate.
        split: ``"selection"`` or ``"held-out"``.
        mean_cosine: mean FP32-vs-candidate cosine on the split's crops.
        p1_cosine: 1st percentile of those cosines.
        top1_agreement: top-1 nearest-neighbour agreement, in [0, 1].
        top5_agreement: mean top-5 overlap, in [0, 1].
        map_drop: FP32 mAP minus candidate mAP on the labelled split, in points (None: not measured).
        details: anything else worth reporting (full metrics, file paths).
    """

    float_layers: tuple[str, ...]
    split: str
    mean_cosine: float
    p1_cosine: float
    top1_agreement: float
    top5_agreement: float
    map_drop: float | None = None
    details: dict = field(default_factory=dict)


@dataclass
class GuardOutcome:
    """Result of :func:`search_float_layers`.

    Attributes:
        best: the chosen candidate's held-out measurement (within budget, or the best seen).
        met: True when ``best`` is within budget on the held-out split.
        history: every measurement, in order (selection and held-out).
        violations: why ``best`` is outside the budget (empty when met).
    """

    best: Measurement
    met: bool
    history: list[Measurement]
    violations: list[str]


#: The guard measures a candidate every this share of the ranked layers' multiply-adds ...
CHECKPOINT_MAC_STEP = 0.025
#: ... or every this many layers, whichever comes first.
CHECKPOINT_LAYER_STEP = 12


def checkpoints(
    ranked_layers: Sequence[str], macs: Mapping[str, int], mac_step: float = CHECKPOINT_MAC_STEP, layer_step: int = CHECKPOINT_LAYER_STEP
) -> list[int]:
    """How many of the ranked layers to keep float at each measurement: 0, then every ``mac_step``
    of the ranked layers' MACs or every ``layer_step`` layers, whichever comes first, ending with all but one."""
    total = max(sum(macs.get(name, 0) for name in ranked_layers), 1)
    limit = max(len(ranked_layers) - 1, 0)
    counts, since_mac, since_layers = [0], 0, 0
    for count, name in enumerate(ranked_layers[:limit], start=1):
        since_mac += macs.get(name, 0)
        since_layers += 1
        if since_mac >= mac_step * total or since_layers >= layer_step:
            counts.append(count)
            since_mac, since_layers = 0, 0
    if limit and counts[-1] != limit:
        counts.append(limit)
    return counts


def search_float_layers(
    measure_selection: Callable[[Sequence[str]], Measurement],
    measure_heldout: Callable[[Sequence[str]], Measurement],
    ranked_layers: Sequence[str],
    macs: Mapping[str, int],
    budget: AccuracyBudget,
    mac_step: float = CHECKPOINT_MAC_STEP,
    layer_step: int = CHECKPOINT_LAYER_STEP,
    on_candidate: Callable[[Measurement, bool], None] | None = None,
) -> GuardOutcome:
    """Walk the ranked layers, keeping more float, until a candidate is within budget on both splits.

    Args:
        measure_selection: quantizes with the given layers float and measures it on the selection split.
        measure_heldout: the same on the held-out split (plus the labelled split, where there is one).
        ranked_layers: quantized layers, most error per multiply-add first.
        macs: layer name -> multiply-adds per image.
        budget: the accuracy budget (the same limits on both splits).
        mac_step, layer_step: checkpoint spacing (see :func:`checkpoints`).
        on_candidate: called with each measurement and whether it is within budget.

    Returns:
        :class:`GuardOutcome`; when nothing passes both splits, the held-out measurement
        of the candidate with the most float layers (the most faithful one tried).
    """
    history: list[Measurement] = []

    def record(measurement: Measurement) -> bool:
        ok = not budget.violations(measurement)
        history.append(measurement)
        if on_candidate is not None:
            on_candidate(measurement, ok)
        return ok

    counts = checkpoints(ranked_layers, macs, mac_step, layer_step)
    for count in counts:
        float_layers = tuple(ranked_layers[:count])
        if not record(measure_selection(float_layers)):
            continue
        heldout = measure_heldout(float_layers)
        if record(heldout):
            return GuardOutcome(best=heldout, met=True, history=history, violations=[])
    last = measure_heldout(tuple(ranked_layers[: counts[-1]]))
    record(last)
    return GuardOutcome(best=last, met=False, history=history, violations=budget.violations(last))
