"""``edge-reid eval-mot``: HOTA, DetA, AssA, MOTA, IDF1 and ID switches of tracking results, by TrackEval."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edge_reid.cli import terminal
from edge_reid.cli.app import app, output_file
from edge_reid.defaults import MOT_IOU_MAX, MOT_IOU_MIN

console = terminal.console()


@app.command("eval-mot")
def eval_mot_command(
    results: List[Path] = typer.Argument(
        ..., metavar="RESULT_FILE", help="MOTChallenge result files (edge-reid run --mot): frame,id,left,top,width,height,score,-1,-1,-1."
    ),
    gt: Path = typer.Option(..., "--gt", help="MOTChallenge sequence folder holding seqinfo.ini and gt/gt.txt."),
    json_path: Optional[Path] = typer.Option(None, "--json", parser=output_file, metavar="<path>", help="Also write the metrics here (.json)."),
    iou: float = typer.Option(0.5, "--iou", min=MOT_IOU_MIN, max=MOT_IOU_MAX, help="IoU at which a box matches, for MOTA and IDF1."),
) -> None:
    """Score tracking results against ground truth: HOTA, DetA, AssA, MOTA, IDF1, ID switches.

    The metrics are computed by TrackEval (pip install 'edge-reid[mot]'; on a Jetson ./install_jetson.sh --mot, which keeps JetPack's OpenCV) with the settings of the ground truth's MOTChallenge benchmark, told by its format: MOT16/17/20 ground truth (class id in column 8, visibility in column 9) gets the MOT17 settings (MOT20's for a sequence named MOT20-*; boxes on distractors such as static people are not counted), any other the 2D MOT 2015 settings; ground-truth rows with conf 0 are ignored. The table's title names the settings used. Several result files are scored side by side, one row each.

    Example:

    \b
      edge-reid run --source vtest.avi --mot vtest.txt
      edge-reid eval-mot --gt vtest-mot vtest.txt --json vtest-metrics.json
    """
    from edge_reid.atomic import write_json_atomic
    from edge_reid.evaluation.mot import evaluate_mot
    from edge_reid.output_paths import check_distinct_outputs, check_writable

    if json_path is not None:
        check_distinct_outputs(
            {"--json": json_path},
            [("the results", path) for path in results] + [("--gt", gt), ("the ground truth", gt / "gt" / "gt.txt"),
                                                         ("the sequence info", gt / "seqinfo.ini")],
        )
        check_writable(json_path, "metrics JSON")
    scored = []
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
        transient=True,
    ) as progress:  # TrackEval takes minutes on a MOT20 sequence and says nothing meanwhile: a bar over the files
        task = progress.add_task("TrackEval", total=len(results))
        for number, path in enumerate(results, 1):
            description = f"TrackEval: {path.name} ({number} of {len(results)})"
            progress.update(task, description=escape(description))
            scored.append((path, evaluate_mot(path, gt, iou_threshold=iou)))
            progress.advance(task)

    sequence = scored[0][1].sequence
    table = Table(title=f"tracking metrics on {escape(sequence)} (TrackEval, {scored[0][1].benchmark} settings)", title_justify="left")
    table.add_column("result", style="bold")
    for column in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "ids (gt)", "boxes (gt)"):
        table.add_column(column, justify="right")
    for path, metrics in scored:
        table.add_row(
            escape(path.name), f"{metrics.hota:.1f}", f"{metrics.deta:.1f}", f"{metrics.assa:.1f}", f"{metrics.mota:.1f}",
            f"{metrics.idf1:.1f}", str(metrics.id_switches), f"{metrics.predicted_tracks} ({metrics.gt_tracks})",
            f"{metrics.predicted_boxes} ({metrics.gt_boxes})",
        )
    terminal.print_table(console, table)
    for path, metrics in scored:
        note = metrics.coverage_note(path.name)
        if note:
            console.print(f"[yellow]note:[/] {escape(note)}")
    for path, metrics in scored:
        typer.echo(
            f"{path}: HOTA {metrics.hota:.2f}  DetA {metrics.deta:.2f}  AssA {metrics.assa:.2f}  MOTA {metrics.mota:.2f}  "
            f"IDF1 {metrics.idf1:.2f}  IDSW {metrics.id_switches}"
        )
    if json_path is not None:
        payload = {"gt": str(gt), "iou_threshold": iou, "results": [dict(metrics.to_dict(), file=str(path)) for path, metrics in scored]}
        write_json_atomic(json_path, payload, what="metrics JSON")
