"""``edge-reid run``: re-identify people in a video, camera, stream or image folder."""

from __future__ import annotations

import signal
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edge_reid.cli.app import BACKEND_HELP, DEVICE_HELP, PRECISION_HELP, app, check_backend_option
from edge_reid.summary import RunSummary

console = Console(stderr=True)


def _print_summary(summary: RunSummary) -> None:
    table = Table(title="edge-reid run", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("source", summary.source)
    table.add_row("backend", summary.backend)
    table.add_row("frames", f"{summary.frames} in {summary.seconds:.1f} s = {summary.fps:.1f} fps")
    table.add_row("identities", str(summary.identities))
    table.add_row("detections", str(summary.detections))
    if summary.corrupt_frames or summary.skipped_boxes:
        table.add_row("skipped", f"{summary.corrupt_frames} corrupt frames, {summary.skipped_boxes} boxes")
    if summary.reconnects or summary.source_gave_up:
        table.add_row("source", f"{summary.reconnects} reconnects" + (", gave up" if summary.source_gave_up else ""))
    stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in summary.stage_ms.items())
    table.add_row("ms / frame", stages)
    if summary.interrupted:
        table.add_row("stopped", "interrupted; everything produced so far was written")
    console.print(table)


@app.command("run")
def run(
    source: Optional[str] = typer.Option(
        None, "--source", "-s", help="Video file, image folder, stream URL (rtsp://, http://) or GStreamer pipeline."
    ),
    camera: Optional[str] = typer.Option(None, "--camera", "-c", help="Camera device: /dev/video0 or an index like 0."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="ReID model (.onnx). Default: bundled OSNet x0.25 (MSMT17)."),
    detector: Optional[Path] = typer.Option(None, "--detector", "-d", help="YOLOX person detector (.onnx). Default: bundled YOLOX-Nano."),
    backend: str = typer.Option("auto", "--backend", "-b", help=BACKEND_HELP),
    precision: Optional[str] = typer.Option(None, "--precision", "-p", help=PRECISION_HELP),
    device: Optional[str] = typer.Option(None, "--device", help=DEVICE_HELP),
    threshold: float = typer.Option(
        0.6, "--threshold", "-t", min=-1.0, max=1.0, help="Cosine similarity at or above which a person is the same identity."
    ),
    detection_threshold: float = typer.Option(0.35, "--det-threshold", min=0.0, max=1.0, help="Detector confidence threshold."),
    min_box_height: float = typer.Option(32.0, "--min-box-height", min=0.0, help="Skip people shorter than this many pixels."),
    batch: int = typer.Option(32, "--batch", min=1, help="Largest embedding batch; more people per frame are split into sub-batches."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="CPU threads per model; the detector runs beside the ReID model (default: half the cores each)."
    ),
    events: Optional[Path] = typer.Option(None, "--events", help="Write one JSON line per detection here (.jsonl)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the annotated video here (.mp4)."),
    display: bool = typer.Option(False, "--display", help="Show the annotated video in a window (needs a screen)."),
    summary_path: Optional[Path] = typer.Option(None, "--summary", help="Write the run summary here (.json)."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Stop after this many frames."),
    engines_dir: Path = typer.Option(Path("engines"), "--engines-dir", help="TensorRT: folder of engines built by `edge-reid build`."),
    rebuild: bool = typer.Option(False, "--rebuild", help="TensorRT: build the engine here when none is current (takes minutes)."),
    reconnect_timeout: float = typer.Option(
        30.0, "--reconnect-timeout", min=0.0, help="Seconds to keep retrying a camera or stream that stops delivering."
    ),
    gallery_path: Optional[Path] = typer.Option(
        None, "--gallery", "-g",
        help="Persistent gallery (.edgereid): loaded at start (created if missing), saved periodically and on exit.",
    ),
    save_every: float = typer.Option(60.0, "--save-every", min=1.0, help="Seconds between gallery saves (with --gallery)."),
    prune_after: Optional[float] = typer.Option(
        None, "--prune-after", min=0.0, help="Forget unnamed identities not seen for this many seconds (with --gallery)."
    ),
) -> None:
    """Detect people, embed them in batches and give each an identity, frame by frame.

    Examples:

      edge-reid run --source video.mp4 --output annotated.mp4 --events events.jsonl

      edge-reid run --camera /dev/video0 --display

      edge-reid run --source "rtsp://192.168.1.20/stream" --events events.jsonl --summary summary.json

    edge-reid run --camera 0 --gallery people.edgereid   (recognise enrolled people, remember new ones)

    Ctrl-C (or SIGTERM) stops reading, writes out everything produced so far (and saves the gallery),
    prints the summary and exits 0.
    """
    from edge_reid.cpu import threads_per_model
    from edge_reid.detector import PersonDetector
    from edge_reid.embedder import Embedder
    from edge_reid.pipeline import Pipeline
    from edge_reid.cli.gallery_command import open_gallery
    from edge_reid.atomic import write_json_atomic
    from edge_reid.output_paths import check_writable
    from edge_reid.sinks import DisplaySink, EventsSink, VideoSink
    from edge_reid.sources import open_source

    if (source is None) == (camera is None):
        raise typer.BadParameter("give exactly one of --source or --camera", param_hint="--source/--camera")
    check_backend_option(backend, precision)
    # Check every output path before loading models or opening the source.
    for path, what in ((events, "events"), (output, "output video"), (summary_path, "summary"), (gallery_path, "gallery")):
        if path is not None:
            check_writable(path, what)

    frames = open_source(source if source is not None else camera, reconnect_timeout_s=reconnect_timeout)
    threads = threads or threads_per_model()
    embedder = Embedder(
        model, backend=backend, max_batch=batch, threads=threads,
        backend_options={"precision": precision, "device": device, "engines_dir": engines_dir, "rebuild": rebuild},
    )
    person_detector = PersonDetector(
        detector, score_threshold=detection_threshold, min_box_height=min_box_height, threads=threads, backend=backend, device=device
    )
    if person_detector.backend.selection_reason == embedder.backend.selection_reason:
        if backend == "auto":
            console.print(f"ReID model and detector: {embedder.backend.selection_reason}")
    else:
        console.print(f"ReID model: {embedder.backend.selection_reason}")
        console.print(f"detector: {person_detector.backend.selection_reason}")
    gallery = None
    if gallery_path is not None:
        gallery = open_gallery(gallery_path, embedder, create=True)
        gallery.threshold = threshold
        console.print(f"gallery {gallery_path}: {len(gallery)} identities")
    pipeline = Pipeline(embedder, person_detector, gallery=gallery, threshold=threshold, min_box_height=min_box_height)

    def save_gallery() -> None:
        if gallery_path is None:
            return
        if prune_after is not None:
            pipeline.gallery.prune(prune_after)
        pipeline.gallery.save(gallery_path)
    backends = embedder.backend.describe()
    if person_detector.describe() != backends:
        backends += f"; detector {person_detector.describe()}"
    summary = RunSummary(source=frames.name, backend=backends, model=str(embedder.model_path), detector=str(person_detector.model_path))
    console.print(f"[bold]edge-reid[/] {frames.kind} {frames.name} | model {embedder.model_path.name} on {summary.backend}")

    def request_stop(signum, _frame) -> None:
        summary.interrupted = True
        frames.stop()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.perf_counter()
    last_save = started
    try:
        with ExitStack() as stack:
            stack.callback(save_gallery)  # on every exit: end of source, Ctrl-C, SIGTERM, an error
            sinks = []
            if events is not None:
                sinks.append(EventsSink(events))
            if output is not None:
                sinks.append(VideoSink(output, fps=frames.fps or 10.0))
            window = DisplaySink() if display else None
            if window is not None:
                sinks.append(window)
            for sink in sinks:
                stack.callback(sink.close)
            total = frames.total_frames
            if max_frames is not None and total is not None:
                total = min(total, max_frames)
            progress = Progress(
                TextColumn("[bold]frames"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]:.1f} fps"),
                TextColumn("{task.fields[ids]} ids"), TimeRemainingColumn(), console=console, transient=False,
                disable=total is None,
            )
            stack.enter_context(progress)
            task = progress.add_task("run", total=total, fps=0.0, ids=0)
            for result in pipeline.run(frames, max_frames=max_frames):
                for sink in sinks:
                    sink.write(result)
                summary.detections += len(result)
                summary.skipped_boxes += result.skipped_boxes
                elapsed = time.perf_counter() - started
                progress.update(task, advance=1, fps=pipeline.timer.frames / max(elapsed, 1e-9), ids=len(pipeline.gallery))
                if gallery_path is not None and time.perf_counter() - last_save >= save_every:
                    save_gallery()
                    last_save = time.perf_counter()
                if window is not None and window.quit_requested:
                    summary.interrupted = True
                    frames.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        summary.seconds = time.perf_counter() - started
        summary.frames = pipeline.timer.frames
        summary.fps = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
        summary.identities = len(pipeline.gallery)
        summary.corrupt_frames = frames.stats.corrupt_frames
        summary.reconnects = frames.stats.reconnects
        summary.source_gave_up = frames.stats.gave_up
        summary.stage_ms = pipeline.timer.mean_ms()
        if summary_path is not None:
            write_json_atomic(summary_path, summary.to_dict())
    _print_summary(summary)
    if summary.source_gave_up:
        console.print(f"[yellow]warning:[/] {frames.kind} {frames.name} stopped delivering frames for {reconnect_timeout:.0f} s; run ended")
