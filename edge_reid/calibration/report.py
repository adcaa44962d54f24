"""The calibration report: every number the guard measured, as JSON and as a readable table."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from edge_reid.atomic import write_json_atomic


@dataclass
class CalibrationReport:
    """What ``edge-reid calibrate`` did and measured.

    Attributes:
        model: the FP32 input model.
        precision: ``"int8"`` or ``"fp16"``.
        outputs: written files by role (``model``, ``spec``, ``tensorrt_table``, ``report``).
        recipe: quantization settings (method, symmetric, per-channel, layer types, opset).
        calibration: image source, count, the images used, skipped files.
        pool: the unlabelled crop pool's source, size, selection/held-out sizes, skipped files.
        fp32: FP32 metrics on the labelled split (rank-1/5/10, mAP in percent), or None.
        quantized: the written model's metrics on the labelled split, or None.
        agreement: FP32-vs-written-model agreement on the held-out half of the pool.
        budget: the accuracy budget.
        met: True when the written model is within budget.
        violations: why not, when not.
        layers: counts and names: quantized, float by rule, float by the guard, INT8 share of MACs,
            float<->INT8 boundaries.
        sensitivity: the most sensitive layers and their scores (mean cosine distance).
        guard_steps: every candidate the guard measured, with the split it was measured on.
        seconds: time per phase and in total.
    """

    model: str
    precision: str
    outputs: dict[str, str] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    pool: dict[str, Any] = field(default_factory=dict)
    fp32: dict[str, Any] | None = None
    quantized: dict[str, Any] | None = None
    agreement: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    met: bool = False
    violations: list[str] = field(default_factory=list)
    layers: dict[str, Any] = field(default_factory=dict)
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    guard_steps: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {key: getattr(self, key) for key in self.__dataclass_fields__}

    def write_json(self, path: str | Path) -> None:
        """Write the report as indented JSON, atomically (mode 0644)."""
        write_json_atomic(path, self.to_dict())
        os.chmod(path, 0o644)

    def table(self) -> Table:
        """A rich table of the headline numbers."""
        title = f"edge-reid calibrate: {self.precision.upper()} " + ("[green]within budget[/]" if self.met else "[red]outside budget[/]")
        title += " (pool numbers: held-out crops)"
        table = Table(title=title, title_justify="left")
        table.add_column("metric", style="bold")
        table.add_column("FP32", justify="right")
        table.add_column(self.precision.upper(), justify="right")
        table.add_column("budget", justify="right")
        if self.fp32 and self.quantized:
            for key, label in (("rank1", "rank-1 %"), ("rank5", "rank-5 %"), ("rank10", "rank-10 %")):
                table.add_row(label, f"{self.fp32[key]:.2f}", f"{self.quantized[key]:.2f}", "")
            drop = self.quantized.get("map_drop_points", self.fp32["mAP"] - self.quantized["mAP"])
            table.add_row("mAP %", f"{self.fp32['mAP']:.2f}", f"{self.quantized['mAP']:.2f} (drop {drop:+.2f})", f"drop <= {self.budget.get('max_map_drop_points')}")
        if self.agreement:
            a = self.agreement
            table.add_row("mean cosine to FP32", "1", f"{a['mean_cosine']:.5f}", f">= {self.budget.get('min_mean_cosine')}")
            table.add_row("1st-percentile cosine", "1", f"{a['p1_cosine']:.5f}", f">= {self.budget.get('min_p1_cosine')}")
            table.add_row("top-1 agreement %", "100", f"{a['top1_agreement']:.2f}", f">= {self.budget.get('min_top1_agreement_percent')}")
            table.add_row("top-5 agreement %", "100", f"{a['top5_agreement']:.2f}", f">= {self.budget.get('min_top5_agreement_percent')}")
            if "top1_same_person_agreement" in a:
                table.add_row("top-1 same-person agreement %", "100", f"{a['top1_same_person_agreement']:.2f}", "(reported)")
            if "top1_outside_ties_agreement" in a:
                table.add_row(
                    "top-1 agreement outside FP32 near-ties %", "100",
                    f"{a['top1_outside_ties_agreement']:.2f} ({a['fp32_near_ties_percent']:.1f}% near-ties)", "(reported)",
                )
        if self.layers:
            layers = self.layers
            table.add_row(
                "INT8 layers",
                "",
                f"{layers.get('int8', 0)} of {layers.get('quantizable', 0)}",
                f"{100 * layers.get('int8_mac_share', 0):.1f}% of MACs",
            )
            float_note = f"{len(layers.get('float_by_rule', []))} pooled-input by rule, {len(layers.get('float_by_guard', []))} by the guard"
            table.add_row("float layers", "", float_note, "")
            table.add_row("float<->INT8 boundaries", "", str(layers.get("float_int8_boundaries", "")), "")
        table.add_row("calibration images", "", str(self.calibration.get("count", "")), "")
        table.add_row("pool crops (held-out)", "", f"{self.pool.get('crops', '')} ({self.pool.get('heldout_crops', '')})", "")
        table.add_row("time", "", f"{self.seconds.get('total', 0):.1f} s", "")
        return table
