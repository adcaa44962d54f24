"""``edge-reid calibrate``: INT8 Q/DQ (or FP16) model from an FP32 ReID model, with an accuracy guard."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from edge_reid.cli import terminal
from edge_reid.cli.app import MAX_THREADS, app

console = terminal.console()


@app.command("calibrate")
def calibrate_command(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="FP32 ReID model (.onnx). Default: bundled OSNet x0.25."),
    data: Path = typer.Option(
        ..., "--data", "-d",
        help="Market-1501 folder: calibration crops from bounding_box_train/, accuracy check on query/ + bounding_box_test/. "
        "A plain folder of person crops also works (calibration only).",
    ),
    precision: str = typer.Option("int8", "--precision", "-p", help="int8 (Q/DQ model + TensorRT table) or fp16."),
    method: str = typer.Option(
        "mse", "--method",
        help="INT8 activation ranges: mse (least squared INT8 error on a fine histogram), minmax, percentile (99.999%) or entropy.",
    ),
    images: int = typer.Option(500, "--images", "-n", min=1, help="Calibration crops (seeded sample spread over identities and cameras)."),
    out: Path = typer.Option(Path("calibration"), "--out", "-o", help="Output folder."),
    pool: Optional[Path] = typer.Option(
        None, "--pool",
        help="Unlabelled crops for the FP32-agreement check: a folder of person crops, or a video to cut people from "
        "with the bundled detector, not the calibration folder. Default: the data's query and gallery crops (needed when --data "
        "is a plain folder of crops).",
    ),
    pool_size: int = typer.Option(
        500, "--pool-size", min=14,
        help="Most crops in the pool; half choose the float layers, the other half (held out) prove the result.",
    ),
    max_map_drop: float = typer.Option(1.0, "--max-map-drop", min=0.0, help="Budget: largest mAP drop, in points."),
    min_top1: float = typer.Option(97.0, "--min-top1", min=0.0, max=100.0, help="Budget: smallest top-1 agreement with FP32, in percent."),
    min_cosine: float = typer.Option(0.9995, "--min-cosine", min=-1.0, max=1.0, help="Budget: smallest mean cosine to FP32."),
    min_p1_cosine: float = typer.Option(
        0.998, "--min-p1-cosine", min=-1.0, max=1.0, help="Budget: smallest 1st-percentile cosine to FP32 (the worst 1% of crops).",
    ),
    min_top5: float = typer.Option(95.0, "--min-top5", min=0.0, max=100.0, help="Budget: smallest top-5 neighbour overlap with FP32, in percent."),
    range_scales: Optional[str] = typer.Option(
        None, "--range-scales",
        help="INT8: comma-separated factors tried on each activation range; each range takes the factor whose quantizer "
        "alone moves the embeddings of the pool's selection half least. Default: 0.8,0.9,1,1.1,1.2,1.35,1.5. "
        "One factor: every range times it (1: the --method ranges as they are).",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the calibration sample."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=MAX_THREADS, help="CPU threads for ONNX Runtime (default: its own)."),
) -> None:
    """Quantize a ReID model and prove it still re-identifies like FP32.

    INT8: calibrates on crops from bounding_box_train/ (never the test split), writes a Q/DQ model
    (for TensorRT 10/11 and ONNX Runtime) and a TensorRT 8.x calibration table, compares with FP32 on
    the labelled split (rank-1/5/10, mAP) and on an unlabelled crop pool (cosine, neighbour agreement),
    and keeps the layers with the most error per multiply-add in float until the budget is met: chosen
    on one half of the pool, proven on the other (held-out) half, whose numbers the report gives.

    Examples:

    \b
      edge-reid calibrate --data Market-1501-v15.09.15 --pool street.mp4
      edge-reid calibrate --model osnet.onnx --data Market-1501 --precision fp16 \\
          --out calibration/
    """
    from edge_reid.calibration.calibrate import CalibrationSettings, calibrate_model, output_paths
    from edge_reid.output_paths import check_distinct_outputs, check_output_folder_outside
    from edge_reid.spec import sidecar_path
    from edge_reid.calibration.guard import AccuracyBudget
    from edge_reid.calibration.qdq import METHODS

    from edge_reid.assets import DEFAULT_REID_MODEL

    if precision not in ("int8", "fp16"):
        raise typer.BadParameter("choose int8 or fp16", param_hint="--precision")
    if method not in METHODS:
        raise typer.BadParameter(f"choose one of {', '.join(METHODS)}", param_hint="--method")
    chosen: dict = {}
    if range_scales is not None:
        try:
            scales = tuple(dict.fromkeys(float(part) for part in range_scales.split(",") if part.strip()))
        except ValueError:
            scales = ()
        if not scales or any(not 0.5 <= scale <= 4.0 for scale in scales):
            raise typer.BadParameter(f"{range_scales!r}: give comma-separated factors between 0.5 and 4, e.g. 0.9,1,1.1,1.2", param_hint="--range-scales")
        chosen["range_scales"] = scales
    settings = CalibrationSettings(
        precision=precision,
        method=method,
        images=images,
        seed=seed,
        pool=pool,
        pool_size=pool_size,
        budget=AccuracyBudget(
            max_map_drop=max_map_drop, min_top1_agreement=min_top1 / 100.0, min_mean_cosine=min_cosine,
            min_p1_cosine=min_p1_cosine, min_top5_agreement=min_top5 / 100.0,
        ),
        threads=threads,
        **chosen,
    )
    model_path = model or DEFAULT_REID_MODEL
    planned = output_paths(model_path, out, precision)
    check_distinct_outputs(
        {"--out": out, **{f"the {role.replace('_', ' ')} file": path for role, path in planned.items()}},
        {"--model": model_path, "the spec of --model": sidecar_path(model_path), "--data": data, "--pool": pool},
    )
    check_output_folder_outside("--out", out, {"--data": data, "--pool": pool})
    console.print(f"[bold]edge-reid calibrate[/] {escape(model_path.name)} -> {precision.upper()} in {escape(str(out))}/")
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    ) as bars:

        def start(description: str, total: int | None):
            if not bars.console.is_terminal:  # a log file or a pipe: the bars only show at the end, a line now
                bars.console.print(f"{escape(description)}" + (f" ({total})" if total else "") + f" at {time.strftime('%H:%M:%S')}")
            task = bars.add_task(description, total=total)
            return lambda n: bars.advance(task, n)

        report = calibrate_model(model_path, data, out, settings, progress=start, log=lambda line: bars.console.print(f"  {escape(line)}"))
    terminal.print_table(console, report.table())
    if report.layers.get("float_by_guard"):
        console.print(
            f"{len(report.layers['float_by_guard'])} layers kept float by the guard (most error per multiply-add first); "
            f"names and sensitivities in the report"
        )
    if report.calibration.get("warning"):
        console.print(f"[yellow]warning[/]: {escape(report.calibration['warning'])}")
    if not report.met:
        console.print(f"[yellow]budget not met[/]: {'; '.join(report.violations)}. The best model found was written anyway.")
    for role, path in report.outputs.items():
        typer.echo(f"{role}: {path}")
