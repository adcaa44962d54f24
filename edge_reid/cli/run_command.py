"""``edge-reid run``: re-identify people in a video, camera, stream or image folder."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from edge_reid.cli import terminal
from edge_reid.cli.app import BACKEND_HELP, DEVICE_HELP, MAX_BATCH, MAX_THREADS, PRECISION_HELP, app, check_backend_option, output_file
from edge_reid.defaults import (
    DETECTOR_MAX_INPUT_SIZE, GALLERY_SAVE_EVERY_S, MIN_BOX_HEIGHT, PRUNE_MIN_AGE_S, REID_THRESHOLD, THRESHOLD, UNNAMED_REID_THRESHOLD,
)
from edge_reid.summary import RunSummary
from edge_reid.tracking.config import TrackerConfig

console = terminal.console()


def small_people_hint(summary: RunSummary) -> str:
    """A hint when most boxes found were skipped as too small (small frames, far people), else ""."""
    if summary.min_box_height <= 0 or summary.skipped_boxes <= summary.detections:
        return ""
    lower = max(8, int(summary.min_box_height // 2))
    return (
        f"{summary.skipped_boxes} boxes were skipped against {summary.detections} kept: people shorter than "
        f"--min-box-height {summary.min_box_height:g} px are left out; for small frames or far people try "
        f"--min-box-height {lower} (ReID is weaker on so few pixels)"
    )


def _print_summary(summary: RunSummary) -> None:
    from edge_reid.data.images import SkippedFile, describe_skipped

    table = Table(title="edge-reid run", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("source", escape(summary.source))
    if summary.end_message:
        table.add_row("source end", f"[yellow]{escape(summary.end_message)}[/]")
    table.add_row("backend", summary.backend)
    table.add_row("frames", f"{summary.frames} in {summary.seconds:.1f} s = {summary.fps:.1f} fps")
    table.add_row("identities", f"{summary.identities} in the gallery; {summary.tracks} tracks")
    table.add_row("people", f"{summary.people} tracked of {summary.detections} detected")
    table.add_row("embeddings", f"{summary.embeddings} = {summary.embeddings_per_frame:.2f} per frame")
    table.add_row("camera motion", "compensated (a fixed camera can save this: --no-camera-motion)" if summary.camera_motion
                  else "not compensated (--no-camera-motion)")
    if summary.corrupt_frames or summary.skipped_boxes:
        limit = f" ({summary.corrupt_limit} in a row end a video file)" if summary.corrupt_limit and summary.corrupt_frames else ""
        table.add_row("skipped", f"{summary.corrupt_frames} corrupt frames{limit}, {summary.skipped_boxes} boxes")
    hint = small_people_hint(summary)
    if hint:
        table.add_row("hint", f"[yellow]{hint}[/]")
    if summary.skipped_files:
        skipped = [SkippedFile(Path(item["file"]), item["reason"]) for item in summary.skipped_files]
        table.add_row("skipped images", f"[yellow]{escape(describe_skipped(skipped))}[/]")
    if summary.dropped_frames:
        read = summary.frames + summary.dropped_frames
        table.add_row("live", f"newest frame taken each time: {summary.dropped_frames} of {read} frames read were dropped "
                      "(the loop was slower than the source; --all-frames to process every frame, late)")
    if summary.reconnects or summary.source_gave_up:
        table.add_row("source", f"{summary.reconnects} reconnects" + (", gave up" if summary.source_gave_up else ""))
    stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in summary.stage_ms.items())
    table.add_row("ms / frame", stages)
    if summary.interrupted:
        table.add_row("stopped", "interrupted; everything produced so far was written")
    for message in summary.write_errors:
        table.add_row("write error", f"[red]{escape(message)}[/]")
    terminal.print_table(console, table)


@app.command("run")
def run(
    source: Optional[str] = typer.Option(
        None, "--source", "-s", help="Video file, image folder, stream URL (rtsp://, http://) or GStreamer pipeline. "
        "Undecodable frames and images are skipped and counted; 50 undecodable frames in a row end a video file.",
    ),
    camera: Optional[str] = typer.Option(None, "--camera", "-c", help="Camera device: /dev/video0 or an index like 0."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="ReID model (.onnx). Default: bundled OSNet x0.25 (MSMT17)."),
    detector: Optional[Path] = typer.Option(None, "--detector", "-d", help="YOLOX person detector (.onnx). Default: bundled YOLOX-Nano."),
    backend: str = typer.Option("auto", "--backend", "-b", help=BACKEND_HELP),
    precision: Optional[str] = typer.Option(None, "--precision", "-p", help=PRECISION_HELP),
    detector_precision: str = typer.Option(
        "fp32", "--detector-precision",
        help="Detector precision: fp32 (default), or bf16/fp16 on OpenVINO where the CPU has it (bf16: AMX or "
        "AVX512-BF16). Faster; boxes and scores move slightly, so tracks can differ (docs/benchmarks.md). "
        "ONNX Runtime runs the detector in fp32 only.",
    ),
    detector_size: Optional[int] = typer.Option(
        None, "--detector-size", min=32, max=DETECTOR_MAX_INPUT_SIZE,
        help="Long side of the detector's input in pixels, a multiple of 32. Default: the model's own (416 for the bundled "
        "YOLOX-Nano). Larger shows the detector people larger, for people small in the frame (HD cameras, high or wide "
        "views), at more work per frame (it grows with the area: 640 has 2.4x the pixels of 416). docs/tracking.md "
        "measures the trade.",
    ),
    device: Optional[str] = typer.Option(None, "--device", help=DEVICE_HELP),
    threshold: float = typer.Option(
        THRESHOLD, "--threshold", "-t", min=-1.0, max=1.0,
        help="Cosine similarity at or above which a person re-found near where a lost track was is that identity.",
    ),
    reid_threshold: float = typer.Option(
        REID_THRESHOLD, "--reid-threshold", min=-1.0, max=1.0,
        help="Cosine similarity at or above which a new track is a named identity (an enrolled person, or one named with "
        "`gallery rename`) without motion to support it.",
    ),
    unnamed_reid_threshold: float = typer.Option(
        UNNAMED_REID_THRESHOLD, "--unnamed-reid-threshold", min=-1.0, max=1.0,
        help="The same for an unnamed identity (someone an earlier part of the run, or an earlier run, saw, who came back). "
        "Stricter, because scene-mates look alike to a small ReID model and a wrong match merges two strangers; "
        "at 1.0 practically never.",
    ),
    detection_threshold: float = typer.Option(
        TrackerConfig.high_score, "--det-threshold", min=TrackerConfig.low_score, max=1.0,
        help=f"Detector confidence that starts (+0.1) and confirms tracks; weaker detections down to "
        f"{TrackerConfig.low_score} only keep tracks going (ByteTrack).",
    ),
    min_box_height: float = typer.Option(MIN_BOX_HEIGHT, "--min-box-height", min=0.0, max=100_000.0, help="Skip people shorter than this many pixels."),
    camera_motion: bool = typer.Option(
        True, "--camera-motion/--no-camera-motion",
        help="Compensate camera motion (robot, handheld, vehicle) by sparse optical flow before matching, as BoT-SORT does "
        "(default on). A camera that never moves (kiosk, wall mount) can turn it off to save a frame's optical flow on the CPU.",
    ),
    batch: int = typer.Option(32, "--batch", min=1, max=MAX_BATCH, help="Largest embedding batch; more people per frame are split into sub-batches."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, max=MAX_THREADS, help="CPU threads per model; the detector runs beside the ReID model (default: on ONNX Runtime half the "
        "cores each, so that their two thread pools do not fight; on OpenVINO every core, its models share one pool)."
    ),
    events: Optional[Path] = typer.Option(
        None, "--events", parser=output_file, metavar="<path>", help="Write one JSON line per tracked person and frame here (.jsonl; - for standard output); "
        "\"frame\" counts from 0 (--mot rows from 1). Boxes of earlier frames learned late (a track's hits before it was confirmed, a lost gap once re-found) "
        "follow as lines with \"past_frame\": true.",
    ),
    mot: Optional[Path] = typer.Option(
        None, "--mot", parser=output_file, metavar="<path>", help="Write MOTChallenge rows here (.txt; id = identity; - for standard output), for edge-reid eval-mot "
        "or any MOT tool; past-frame boxes are rows of their own frames. For an image folder, M.txt.frames.jsonl "
        "names each frame's image.",
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", parser=output_file, metavar="<path>", help="Write the annotated video here (.mp4)."),
    display: bool = typer.Option(False, "--display", help="Show the annotated video in a window (needs a screen: a window is tried first, and a screen that cannot be reached is an error, not a crash; q or Esc stops the run)."),
    summary_path: Optional[Path] = typer.Option(None, "--summary", parser=output_file, metavar="<path>", help="Write the run summary here (.json; - for standard output)."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Stop after this many frames."),
    engines_dir: Path = typer.Option(Path("engines"), "--engines-dir", help="TensorRT: folder of engines built by `edge-reid build`."),
    rebuild: bool = typer.Option(False, "--rebuild", help="TensorRT: build the engine here when none is current (takes minutes)."),
    repeat: int = typer.Option(
        1, "--repeat", min=0, help="Play a video file or image folder this many times in a row (0: until Ctrl-C), e.g. for a soak test."
    ),
    source_fps: Optional[float] = typer.Option(
        None, "--fps", min=0.001, max=1000.0,
        help="Frame rate to time an image folder or a video file by (the tracker counts in seconds). Default: a folder's "
        "frameRate in a MOTChallenge seqinfo.ini in or beside it (e.g. MOT17-04/img1), else 1 image per second; a video's "
        "own, from its header (give --fps when the header is wrong). Not for cameras and streams.",
    ),
    all_frames: bool = typer.Option(
        False, "--all-frames",
        help="Camera or stream: process every frame in order even when the loop is slower than the source (frames "
        "wait in its buffers and the delay grows). Default: the source is read continuously and the newest frame taken "
        "each time; the ones in between are dropped and counted in the summary. Files and folders: every frame always.",
    ),
    reconnect_timeout: float = typer.Option(
        30.0, "--reconnect-timeout", min=0.0, help="Seconds to keep retrying a camera or stream that stops delivering."
    ),
    gallery_path: Optional[Path] = typer.Option(
        None, "--gallery", "-g",
        parser=output_file, metavar="<path>", help="Persistent gallery (.edgereid): loaded at start (created if missing), saved periodically and on exit.",
    ),
    save_every: Optional[float] = typer.Option(
        None, "--save-every", min=1.0, help=f"Seconds between gallery saves (with --gallery; default {GALLERY_SAVE_EVERY_S:g}).",
    ),
    prune_after: Optional[float] = typer.Option(
        None, "--prune-after",
        help=f"Forget unnamed identities not seen for this many seconds (at least {PRUNE_MIN_AGE_S:g}): with --gallery before "
        "each save; without, every minute in memory (a camera run for days or weeks).",
    ),
) -> None:
    """Detect and track people, embed those that need it, and give each an identity, frame by frame.

    Examples:

    \b
      edge-reid run --source video.mp4 --output annotated.mp4 --events out.jsonl
      edge-reid run --source vtest.avi --mot vtest.txt
      edge-reid eval-mot --gt vtest-mot vtest.txt         # then score it
      edge-reid run --camera /dev/video0 --display
      edge-reid run --source rtsp://192.168.1.20/stream --summary summary.json
      # recognise enrolled people, remember new ones:
      edge-reid run --camera 0 --gallery people.edgereid
      # an Intel CPU with AMX: faster detection
      edge-reid run --camera 0 --backend openvino --detector-precision bf16
      # small, far people: a larger detector input
      edge-reid run --source hd_street.mp4 --detector-size 640 --mot out.txt
      edge-reid run --camera 0 --no-camera-motion   # a fixed kiosk camera

    Ctrl-C (or SIGTERM, or SIGHUP: a closed terminal or SSH session) stops reading, writes out everything produced so far (and saves the gallery), prints the summary and exits 0.

    No output may be the source, a model or another output (exit 2 before any work). An output that fails while being written (disk full, I/O error) ends the run: the summary records it, what was written before stays valid (whole JSON lines and rows), and the exit code is 3.
    """
    from edge_reid.detector import PersonDetector
    from edge_reid.embedder import Embedder
    from edge_reid.matching.gallery import Gallery
    from edge_reid.output_paths import check_distinct_outputs, check_writable, is_standard_output
    from edge_reid.pipeline import Pipeline
    from edge_reid.runner import GallerySaving, Runner
    from edge_reid.sinks import DisplaySink, EventsSink, MotSink, VideoSink, check_video_name, frame_names_path
    from edge_reid.matching.gallery_lock import lock_path, refuse_if_a_run_holds
    from edge_reid.sources import classify_source, open_source, sequence_info_file
    from edge_reid.spec import sidecar_path
    from edge_reid.tracking import CameraMotion, Tracker

    if (source is None) == (camera is None):
        raise typer.BadParameter("give exactly one of --source or --camera", param_hint="--source/--camera")
    source = source.strip() if source is not None else None  # as the source is opened: checked as what is read
    check_backend_option(backend, precision, detector_precision, device)
    for option, value in (("--save-every", save_every),):
        if value is not None and gallery_path is None:
            raise typer.BadParameter("only applies to a gallery: add --gallery people.edgereid", param_hint=option)
    if prune_after is not None and not prune_after >= PRUNE_MIN_AGE_S:  # NaN too
        raise typer.BadParameter(
            f"{prune_after:g} s is not at least the minimum of {PRUNE_MIN_AGE_S:g} s: people hidden for a moment would lose "
            "their identity and come back as new ones", param_hint="--prune-after",
        )
    if detector_size is not None and detector_size % 32:
        raise typer.BadParameter(
            f"{detector_size} is not a multiple of 32 (YOLOX's largest stride); e.g. 416, 480, 640", param_hint="--detector-size"
        )
    # Check every output path before loading models or opening the source.
    source_kind = classify_source(source) if source is not None else "camera"
    mot_frame_names = None
    if mot is not None and source_kind == "folder":
        if is_standard_output(mot):
            console.print("[yellow]warning:[/] --mot -: the frame -> image name sidecar needs a file, none is written "
                          "(the events carry each frame's file name)")
        else:
            mot_frame_names = frame_names_path(mot)
    check_distinct_outputs(
        {"--events": events, "--mot": mot, "the frame names of --mot": mot_frame_names, "--output": output,
         "--summary": summary_path, "--gallery": gallery_path, "the lock file of --gallery": lock_path(gallery_path) if gallery_path is not None else None},
        {"--source": source if source_kind in ("file", "folder") else None,
         "--camera": camera if camera is not None and Path(camera).exists() else None,
         "the seqinfo.ini of --source": sequence_info_file(source) if source_kind == "folder" else None,
         "--model": model, "the spec of --model": sidecar_path(model) if model is not None else None, "--detector": detector},
        standard_output=("--events", "--mot", "--summary"),
    )
    outputs = ((events, "events"), (mot, "MOT results"), (mot_frame_names, "MOT frame names"), (output, "output video"),
               (summary_path, "summary"), (gallery_path, "gallery"))
    for path, what in outputs:
        if path is not None and not is_standard_output(path):
            check_writable(path, what)
    if output is not None:
        check_video_name(output)
    if gallery_path is not None:
        refuse_if_a_run_holds(gallery_path)  # now, not when the run takes the lock: its result files are still untouched
    if display:
        DisplaySink.check_screen()

    # --camera 0 is a camera index even where a file named "0" exists in the working folder.
    camera_source = int(camera) if camera is not None and camera.strip().isdigit() else camera
    if source_fps is not None and source_kind not in ("folder", "file"):
        raise typer.BadParameter("sets the frame rate of an image folder or a video file; cameras and streams are timed as "
                                 "they deliver", param_hint="--fps")
    frames = open_source(
        source if source is not None else camera_source, reconnect_timeout_s=reconnect_timeout, repeat=repeat, fps=source_fps,
        newest_only=not all_frames,
    )
    rate_note = declared_rate_note(frames)
    if rate_note:
        console.print(f"[yellow]note:[/] {escape(rate_note)}")
    embedder = Embedder(
        model, backend=backend, max_batch=batch, threads=threads,
        backend_options={"precision": precision, "device": device, "engines_dir": engines_dir, "rebuild": rebuild,
                         "side_by_side": True},
    )
    config = TrackerConfig(high_score=detection_threshold, new_track_score=min(1.0, detection_threshold + 0.1))
    person_detector = PersonDetector(
        detector, score_threshold=config.low_score, min_box_height=min_box_height, threads=threads, backend=backend, device=device,
        side_by_side=embedder.backend.runs_on_cpu, precision=detector_precision, input_size=detector_size,
    )
    if person_detector.backend.selection_reason == embedder.backend.selection_reason:
        if backend == "auto":
            console.print(f"ReID model and detector: {embedder.backend.selection_reason}")
    else:
        console.print(f"ReID model: {embedder.backend.selection_reason}")
        console.print(f"detector: {person_detector.backend.selection_reason}")
    gallery = None
    if gallery_path is not None:
        gallery = Gallery.open(
            gallery_path, embedder.dim, embedder.model_id, embedder.model_path.name, create=True,
            earlier_model_ids=embedder.earlier_model_ids,
        )
        gallery.threshold = threshold
        console.print(f"gallery {escape(str(gallery_path))}: {len(gallery)} identities")
    tracker = Tracker(config, camera_motion=CameraMotion() if camera_motion else None)
    pipeline = Pipeline(
        embedder, person_detector, gallery=gallery, threshold=threshold, min_box_height=min_box_height, tracker=tracker,
        reid_threshold=reid_threshold, unnamed_reid_threshold=unnamed_reid_threshold,
    )
    saving = GallerySaving(gallery_path, save_every or GALLERY_SAVE_EVERY_S, prune_after) if gallery_path is not None else None
    prune_in_memory = prune_after if gallery_path is None else None
    runner = Runner(pipeline, gallery_saving=saving, prune_after_s=prune_in_memory)
    timing = f" at {frames.fps:g} fps (from {frames.fps_source})" if frames.fps_source else ""
    console.print(f"[bold]edge-reid[/] {frames.kind} {escape(frames.name)}{timing} | model {escape(embedder.model_path.name)} on {escape(runner.backends())}")

    sinks = []
    try:
        if events is not None:
            sinks.append(EventsSink(events))
        if mot is not None:
            sinks.append(MotSink(mot))
        if output is not None:
            sinks.append(VideoSink(output, fps=frames.fps or 10.0))
        if display:
            sinks.append(DisplaySink())
    except BaseException:
        for sink in sinks:
            sink.close()
        frames.close()
        raise
    total = frames.total_frames
    if max_frames is not None and total is not None:
        total = min(total, max_frames)
    progress = Progress(
        TextColumn("[bold]frames"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]:.1f} fps"),
        TextColumn("{task.fields[ids]} ids"), TimeRemainingColumn(), console=console, transient=False,
        disable=total is None,
    )
    task = progress.add_task("run", total=total, fps=0.0, ids=0)

    hint_pending = detector_size is None

    def advance(result, running: RunSummary) -> None:
        nonlocal hint_pending
        if hint_pending and person_detector.frame_scale is not None:
            hint_pending = False
            hint = detector_size_hint(person_detector.frame_scale, result.image.shape[0], result.image.shape[1],
                                      (person_detector.model_height, person_detector.model_width))
            if hint:
                progress.console.print(f"[yellow]hint:[/] {hint}")
        progress.update(task, advance=1, fps=running.frames / max(running.seconds, 1e-9), ids=running.identities)

    # From here on Ctrl-C and SIGTERM only stop the run (the runner's own handlers while frames flow);
    # once it has stopped they are ignored to the end of the command, so a second Ctrl-C cannot cut the
    # summary short or turn a clean stop into exit 130 (`main` puts the handlers back when it returns
    # to a caller instead of exiting). SIGHUP (the terminal or SSH session closed) stops the run the same
    # way, unless it was ignored (`nohup`): ended where it stood, the video would be unplayable, the gallery
    # unsaved and its lock left behind.
    if threading.current_thread() is threading.main_thread():  # main(argv) may run in another thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            signal.signal(signal.SIGHUP, lambda signum, frame: runner.stop())
    _run_and_report(runner, frames, sinks, progress, advance, max_frames, summary_path, reconnect_timeout)


#: Below this scale (the detector's input over the frame's size) `run` suggests --detector-size once: the detector
#: then sees people at less than half their pixels (a 1920x1080 frame at the default 416: 0.22x). A message only,
#: never a change of size; docs/tracking.md measures what the scale does to tracking.
HINT_BELOW_SCALE = 0.5


def declared_rate_note(frames) -> str:
    """A note when a video file's header declares a frame rate that cannot be right (none, or
    :data:`~edge_reid.sources.MAX_DECLARED_FPS` and above) and no ``--fps`` was given, else ""."""
    if frames.kind != "file" or frames.fps_source == "--fps" or frames.fps is not None:
        return ""
    declared = f"declares {frames.declared_fps:g} fps" if frames.declared_fps > 0 else "declares no frame rate"
    return (
        f"{frames.name} {declared}: its frames are timed by the container's clock instead; if the video was recorded at "
        "another rate, give it with --fps (the tracker's motion model and track ages count in seconds)"
    )


def detector_size_hint(frame_scale: float, frame_height: int, frame_width: int, model_input: tuple[int, int] = (416, 416)) -> str:
    """The suggestion of a larger ``--detector-size`` for frames seen at ``frame_scale`` (< :data:`HINT_BELOW_SCALE`), or "".

    The size suggested shows the frame at half its size: its long side / 2, rounded up to a multiple of 32
    (at most :data:`~edge_reid.defaults.DETECTOR_MAX_INPUT_SIZE`). The work it costs is the ratio of the
    network's input areas, each the rectangle that holds the frame (:func:`~edge_reid.detector.rectangular_input`)
    within the model's input at that size (``model_input``: (height, width) pixels of the model's own).
    """
    from edge_reid.detector import MAX_STRIDE, rectangular_input

    if frame_scale >= HINT_BELOW_SCALE:
        return ""
    size = min(DETECTOR_MAX_INPUT_SIZE, -(-max(frame_height, frame_width) // 64) * 32)
    if size <= round(frame_scale * max(frame_height, frame_width)):
        return ""
    now = rectangular_input(frame_height, frame_width, *model_input)
    larger = tuple(-(-round(side * size / max(model_input)) // MAX_STRIDE) * MAX_STRIDE for side in model_input)
    then = rectangular_input(frame_height, frame_width, *larger)
    return (
        f"the detector sees these {frame_width}x{frame_height} frames at {frame_scale:.2f}x, so people small in them may be "
        f"missed; --detector-size {size} shows them at {size / max(frame_height, frame_width):.2f}x, for about "
        f"{then[0] * then[1] / (now[0] * now[1]):.1f}x the detector's work (its input {then[1]}x{then[0]} instead of "
        f"{now[1]}x{now[0]}; docs/tracking.md)"
    )


def _run_and_report(runner, frames, sinks, progress, advance, max_frames, summary_path, reconnect_timeout) -> None:
    """Run, write and print the summary; raise the first output failure after the summary is out."""
    from edge_reid.atomic import write_json_atomic
    from edge_reid.errors import OutputPathError, OutputWriteError
    from edge_reid.line_output import describe_os_error
    from edge_reid.output_paths import is_standard_output
    from edge_reid.runner import write_failure
    from edge_reid.sinks import VideoSink

    failure = None
    progress.start()
    try:
        runner.sinks = sinks
        try:
            summary = runner.run(frames, max_frames=max_frames, on_frame=advance)
        except OutputWriteError as exc:
            if exc.summary is None:
                raise
            summary, failure = exc.summary, exc
    finally:
        with terminal.unless_gone():  # a terminal that closed (SIGHUP) while frames flowed: the summary is still written
            progress.stop()
    if summary_path is not None:
        try:
            if is_standard_output(summary_path):
                sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
                sys.stdout.flush()
            else:
                write_json_atomic(summary_path, summary.to_dict(), what="summary")
        except (OutputPathError, OutputWriteError, OSError) as exc:
            message = (str(exc) if isinstance(exc, (OutputPathError, OutputWriteError))
                       else f"cannot write the summary to standard output: {describe_os_error(exc)}")
            summary.write_errors.append(message)
            failure = write_failure(summary, failure.path if failure is not None else summary_path)
    with terminal.unless_gone():
        _print_summary(summary)
        for sink in sinks:
            if isinstance(sink, VideoSink) and sink.frames == 0 and sink.path.is_file():
                console.print(f"[yellow]warning:[/] no frame was written, so {escape(str(sink.path))} is not this run's: a file from before, left as it was")
        if summary.source_gave_up:
            console.print(f"[yellow]warning:[/] {frames.kind} {escape(frames.name)} stopped delivering frames for {reconnect_timeout:.0f} s; run ended")
    if failure is not None:
        raise failure
