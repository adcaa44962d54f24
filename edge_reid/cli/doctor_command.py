"""``edge-reid doctor``: what this machine has for edge-reid, and which engines it can load."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edge_reid.cli import terminal
from edge_reid.cli.app import app, output_file

MARKS = {True: "[green]ok[/]", False: "[red]missing[/]", None: ""}


@app.command("doctor")
def doctor(
    engines_dir: Path = typer.Option(Path("engines"), "--engines-dir", help="Folder of TensorRT engines and manifests."),
    selftest: bool = typer.Option(
        False, "--selftest", help="Also check TensorRT and CUDA on this device (buffers, FP16/INT8 engines against ONNX Runtime, timings) and write a JSON report."
    ),
    report: Optional[Path] = typer.Option(
        None, "--report", parser=output_file, metavar="<path>", help="--selftest: where the JSON report goes (default: device-check.json)."
    ),
    qdq: Optional[Path] = typer.Option(None, "--qdq", help="--selftest: Q/DQ model from `edge-reid calibrate` for the INT8 check (default: calibration/<model>-int8-qdq.onnx if present)."),
    crops: Optional[Path] = typer.Option(None, "--crops", help="--selftest: folder of person crops for the accuracy and loop checks."),
    video: Optional[Path] = typer.Option(None, "--video", help="--selftest: or a video to cut person crops from (default: ../shared/data/vtest.avi if present)."),
    model: Optional[Path] = typer.Option(
        None, "--model", "-m",
        help="ReID model (.onnx) whose engines and `--backend auto` choice are checked, and which --selftest tests. Default: bundled OSNet x0.25.",
    ),
) -> None:
    """Report versions (TensorRT, CUDA, cuda-python, onnxruntime, OpenVINO, OpenCV and GStreamer), the GPU, the CPU
    and the cores this process may use (its CPU affinity and a container's CPU quota), which backends can run here
    and what `--backend auto` picks, the cache folder and whether it can be written (docs/caches.md), and each
    engine's status.

    An engine is "current" when it was built by this TensorRT version on this GPU module
    (and, where doctor can read its model file, the bundled model or --model, from that
    file as it is now); stale engines are never loaded (rebuild them with
    `edge-reid build ... --rebuild`).

    With --selftest it then runs the device check (see docs/jetson.md): checks this device
    cannot run (no GPU, no TensorRT) are reported as skipped with the reason. Exit 1 when a
    check failed, or when none could run (a check of nothing is no pass).

    Examples:

    \b
      edge-reid doctor
      edge-reid doctor --selftest --crops person_crops/ \\
          --qdq calibration/osnet_x0_25_msmt17-int8-qdq.onnx
    """
    from edge_reid.doctor import collect_report
    from edge_reid.tensorrt.manifest import EngineStatus

    if not selftest:
        given = [name for name, value in (("--report", report), ("--qdq", qdq), ("--crops", crops), ("--video", video)) if value]
        if given:
            raise typer.BadParameter(f"{', '.join(given)} only apply with --selftest", param_hint="--selftest")
    if model is not None:
        _check_model(model)
    if selftest:  # every input and the report path, before any work
        report = report or Path("device-check.json")
        _check_selftest_inputs(report, qdq, crops, video, model)
    console = Console(highlight=False)
    items, checks = collect_report(engines_dir, model_path=model)
    table = Table(title="edge-reid doctor", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("found")
    table.add_column("")
    for item in items:
        table.add_row(escape(item.name), escape(item.value), MARKS[item.ok])
    terminal.print_table(console, table)

    if not checks:
        if engines_dir.is_dir():
            where = f"in {engines_dir}"
        elif engines_dir.exists():
            where = f"({engines_dir} is a file, not a folder: give --engines-dir the folder `edge-reid build` wrote engines to)"
        else:
            where = f"(folder {engines_dir} does not exist; `edge-reid build` makes it)"
        console.print(f"engines: none {escape(where)}", soft_wrap=True)
    else:
        _print_engines(console, engines_dir, checks, EngineStatus)
    if selftest:
        _selftest(console, report, qdq, crops, video, model)


def _check_model(model: Path) -> None:
    """Refuse a --model that is not a ReID model (missing, empty, not ONNX, no usable input).

    Raises:
        ModelError: the message names --model and the file.
    """
    from edge_reid.errors import ModelError
    from edge_reid.onnx_graph import load_onnx
    from edge_reid.spec import load_spec

    load_onnx(model, "--model ")
    try:
        load_spec(model)
    except ModelError as exc:
        raise ModelError(f"--model {exc}") from None


def _check_selftest_inputs(report: Path, qdq, crops, video, model) -> None:
    """Refuse, before any check runs, a --report that would overwrite an input or cannot be written, a --qdq
    that is not a Q/DQ model of the model (--model, or the bundled one), a --crops that is not a folder and a
    --video that is not a file: on a machine that skips the checks that read them, they would otherwise pass
    unnoticed.

    Raises:
        OutputPathError: --report is an input or cannot be written.
        EngineBuildError: --qdq is missing, not an ONNX model, or not a Q/DQ model of the model's input.
        DataError: --crops or --video is not what it should be.
    """
    from edge_reid.assets import DEFAULT_REID_MODEL
    from edge_reid.errors import DataError
    from edge_reid.output_paths import check_distinct_outputs, check_writable
    from edge_reid.spec import load_spec
    from edge_reid.tensorrt.qdq_check import check_qdq_model

    check_distinct_outputs({"--report": report}, {"--qdq": qdq, "--crops": crops, "--video": video, "--model": model})
    if qdq is not None:
        check_qdq_model(qdq, load_spec(model or DEFAULT_REID_MODEL))
    if crops is not None and not crops.is_dir():
        raise DataError(f"--crops {crops}: {'is a file, not a folder' if crops.exists() else 'not found'}; give a folder of person crops")
    if video is not None and not video.is_file():
        raise DataError(f"--video {video}: {'is a folder, not a video file' if video.exists() else 'not found'}")
    check_writable(report, "device check report")


def _selftest(console: Console, report: Path, qdq, crops, video, model) -> None:
    from edge_reid.device_check import DeviceCheckOptions, run_device_check

    result = run_device_check(
        DeviceCheckOptions(model_path=model, qdq_path=qdq, crops=crops, video=video),
        say=lambda line: console.print(f"selftest: {escape(line)}", soft_wrap=True),
    )
    result.write(report)
    colours = {"passed": "green", "failed": "red", "skipped": "yellow"}
    for check in result.checks:
        words = check.detail if check.status == "skipped" else f"{check.status}: {check.detail}"  # skipped details say so
        console.print(f"  {check.name}: [{colours[check.status]}]{escape(words)}[/]", soft_wrap=True)
    console.print(f"device check report: {escape(str(report))}", soft_wrap=True)
    counts = result.counts
    if counts["passed"] == 0 and counts["failed"] == 0:
        console.print(f"[yellow]nothing was verified[/]: all {counts['skipped']} checks were skipped (their reasons above)")
    if not result.ok:
        raise typer.Exit(1)


def _print_engines(console: Console, engines_dir: Path, checks, EngineStatus) -> None:
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
