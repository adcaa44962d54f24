"""``edge-reid eval``: rank-1/5/10 and mAP of a ReID model under the Market-1501 protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edge_reid.cli import terminal
from edge_reid.cli.app import DEVICE_HELP, MAX_BATCH, MAX_THREADS, PRECISION_HELP, app, check_backend_option, output_file

console = terminal.console()


@app.command("eval")
def eval_command(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="ReID model (.onnx), FP32 or INT8 Q/DQ. Default: bundled OSNet x0.25."),
    data: Path = typer.Option(..., "--data", "-d", help="Market-1501 or DukeMTMC-reID folder holding query/ and bounding_box_test/."),
    flip: bool = typer.Option(False, "--flip", help="Average each image's embedding with its mirror image's."),
    rerank: bool = typer.Option(False, "--rerank", help="k-reciprocal re-ranking (Zhong et al., CVPR 2017; k1=20, k2=6, lambda=0.3)."),
    json_path: Optional[Path] = typer.Option(None, "--json", parser=output_file, metavar="<path>", help="Also write the results here (.json)."),
    backend: str = typer.Option(
        "onnxruntime", "--backend", "-b",
        help="Backend: onnxruntime (default: the reference, the arithmetic `edge-reid calibrate` measured), openvino, "
        "tensorrt or auto. Another backend gives that runtime's accuracy, which may differ in the last digits (INT8 more).",
    ),
    precision: Optional[str] = typer.Option(None, "--precision", "-p", help=PRECISION_HELP),
    device: Optional[str] = typer.Option(None, "--device", help=DEVICE_HELP),
    batch: int = typer.Option(32, "--batch", min=1, max=MAX_BATCH, help="Embedding batch size."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=MAX_THREADS, help="CPU threads of the model (default: the runtime's own)."),
) -> None:
    """Evaluate a model on a Market-1501 style data set: CMC rank-1/5/10 and mAP, as torchreid computes them.

    Same-camera matches of the query's own person are excluded, junk images (id -1)
    are ignored, distractors (id 0000) count as wrong matches.

    Example:

    \b
      edge-reid eval --model calibration/osnet_x0_25_msmt17-int8-qdq.onnx \\
          --data Market-1501-v15.09.15 --json int8.json
    """
    from edge_reid.data.market1501 import load_market1501
    from edge_reid.embedder import Embedder
    from edge_reid.evaluation.market_eval import evaluate_market
    from edge_reid.atomic import write_json_atomic
    from edge_reid.output_paths import check_distinct_outputs, check_writable

    check_backend_option(backend, precision, device=device)
    if json_path is not None:
        check_distinct_outputs({"--json": json_path}, {"--model": model, "--data": data})
        check_writable(json_path, "results JSON")
    dataset = load_market1501(data)
    embedder = Embedder(model, backend=backend, max_batch=batch, threads=threads, backend_options={"precision": precision, "device": device})
    if backend == "auto":
        console.print(embedder.backend.selection_reason)
    backend_description = embedder.backend.describe()
    console.print(
        f"[bold]edge-reid eval[/] {embedder.model_path.name} on {backend_description} | "
        f"{len(dataset.query)} query, {len(dataset.gallery)} gallery images"
    )
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("embedding", total=None)

        def stage(description: str, total: int):
            """The bar shows each stage in turn (embedding, re-ranking, scoring), counting up to its total."""
            progress.reset(task, total=total, description=description)
            return lambda n: progress.advance(task, n)

        embedded = stage("embedding", len(dataset.query) + len(dataset.gallery))
        result = evaluate_market(embedder, dataset, flip=flip, rerank=rerank, on_progress=embedded, on_stage=stage)
    embedder.close()

    scores = result.scores
    table = Table(title=f"Market-1501 protocol: {escape(embedder.model_path.name)}", title_justify="left", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for k in (1, 5, 10):
        table.add_row(f"rank-{k}", f"{100 * scores.rank(k):.2f} %")
    table.add_row("mAP", f"{100 * scores.mAP:.2f} %")
    table.add_row("queries", f"{scores.num_valid_queries} with a match of {scores.num_queries}")
    table.add_row("gallery", f"{result.gallery_images} images")
    table.add_row("time per image", f"{result.ms_per_image:.2f} ms" + (" (image + mirror)" if flip else ""))
    table.add_row("options", ", ".join(o for o, on in (("flip", flip), ("re-ranking", rerank)) if on) or "none")
    if result.skipped:
        from edge_reid.data.images import describe_skipped

        table.add_row("skipped files", f"[yellow]{escape(describe_skipped(result.skipped))}[/]")
    typer.echo(
        f"rank-1 {100 * scores.rank(1):.2f}  rank-5 {100 * scores.rank(5):.2f}  rank-10 {100 * scores.rank(10):.2f}  "
        f"mAP {100 * scores.mAP:.2f}  ({result.ms_per_image:.2f} ms/image)"
    )
    terminal.print_table(console, table)
    if json_path is not None:
        payload = {"model": str(embedder.model_path), "backend": backend_description, "data": str(data), **result.to_dict()}
        write_json_atomic(json_path, payload)
