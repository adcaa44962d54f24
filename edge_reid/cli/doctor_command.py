"""``edge-reid doctor``: what this machine has for edge-reid, and which engines it can load."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edge_reid.cli.app import app

MARKS = {True: "[green]ok[/]", False: "[red]missing[/]", None: ""}


@app.command("doctor")
def doctor(
    engines_dir: Path = typer.Option(Path("engines"), "--engines-dir", help="Folder of TensorRT engines and manifests."),
) -> None:
    """Report versions (TensorRT, CUDA, cuda-python, onnxruntime, OpenCV and GStreamer), the GPU, and each engine's status.

    An engine is "current" when it was built by this TensorRT version on this GPU model;
    stale engines are never loaded (rebuild them with `edge-reid build ... --rebuild`).
    """
    from edge_reid.doctor import collect_report
    from edge_reid.tensorrt.manifest import EngineStatus

    console = Console(highlight=False)
    items, checks = collect_report(engines_dir)
    table = Table(title="edge-reid doctor", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("found")
    table.add_column("")
    for item in items:
        table.add_row(escape(item.name), escape(item.value), MARKS[item.ok])
    console.print(table)

    if not checks:
        console.print(f"engines: none in {engines_dir}")
        return
    console.print(f"[bold]engines in {escape(str(engines_dir))}[/]")
    colours = {EngineStatus.CURRENT: "green", EngineStatus.STALE: "yellow", EngineStatus.BROKEN: "red"}
    for check in checks:
        m = check.manifest
        status = escape(check.status.value + (f": {'; '.join(check.reasons)}" if check.reasons else ""))
        colour = colours.get(check.status)
        status = f"[{colour}]{status}[/]" if colour else status
        if m is None:
            console.print(f"  {escape(check.manifest_path.name)}: {status}", soft_wrap=True)
            continue
        console.print(f"  {escape(m.engine_file)}", soft_wrap=True)
        console.print(
            f"    {m.precision}, TensorRT {escape(m.tensorrt_version)}, {escape(m.machine.describe_module())}, "
            f"batch {m.profile}, built {m.build_date}: {status}",
            soft_wrap=True,
        )
