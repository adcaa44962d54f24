"""``edge-reid build``: build a TensorRT engine for a ReID model on this device."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from edge_reid.cli.app import app
from edge_reid.tensorrt.builder import DEFAULT_WORKSPACE_MB
from edge_reid.tensorrt.profile import DEFAULT_MAX_BATCH, DEFAULT_MIN_BATCH, DEFAULT_OPT_BATCH

console = Console(stderr=True, soft_wrap=True)  # paths and commands stay whole: no wrapping at the terminal width


@app.command("build")
def build(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="ReID model (.onnx, FP32). Default: bundled OSNet x0.25."),
    precision: str = typer.Option("fp16", "--precision", "-p", help="fp16 or int8."),
    qdq: Optional[Path] = typer.Option(
        None, "--qdq", help="INT8: the Q/DQ model written by `edge-reid calibrate` (calibration/M-int8-qdq.onnx)."
    ),
    calibration_data: Optional[Path] = typer.Option(
        None, "--calibration-data", help="INT8 on TensorRT 8.x only: Market-1501 root for TensorRT's entropy calibrator."
    ),
    calibration_images: int = typer.Option(512, "--calibration-images", min=1, help="Crops sampled for --calibration-data."),
    min_batch: int = typer.Option(DEFAULT_MIN_BATCH, "--min-batch", help="Smallest batch of the engine's profile."),
    opt_batch: int = typer.Option(DEFAULT_OPT_BATCH, "--opt-batch", help="Batch TensorRT tunes for."),
    max_batch: int = typer.Option(DEFAULT_MAX_BATCH, "--max-batch", help="Largest batch; larger ones are split at run time."),
    workspace_mb: int = typer.Option(
        DEFAULT_WORKSPACE_MB, "--workspace-mb", help="Builder workspace limit in MiB (default fits an 8 GB Orin; lower it if the build runs out of memory)."
    ),
    engines_dir: Path = typer.Option(Path("engines"), "--engines-dir", help="Where engines, manifests and the timing cache go."),
    calibration_dir: Path = typer.Option(Path("calibration"), "--calibration-dir", help="Where the calibration cache goes."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build even if a current engine exists."),
) -> None:
    """Build a TensorRT engine (FP16, or INT8 from a Q/DQ model) with a manifest, on the device that will run it.

    Examples:

    \b
      edge-reid build --precision fp16
      edge-reid build --model osnet.onnx --precision int8 \\
          --qdq calibration/osnet-int8-qdq.onnx --max-batch 32

    Needs TensorRT and a CUDA GPU (on a Jetson: install_jetson.sh). Engines only run on the
    TensorRT version and GPU that built them; `edge-reid doctor` lists which are current.
    """
    from edge_reid.assets import DEFAULT_REID_MODEL
    from edge_reid.cuda.versions import DeviceCuda
    from edge_reid.spec import load_spec
    from edge_reid.tensorrt.builder import BuildOptions, build_engine, plan_build, up_to_date, validate_options
    from edge_reid.data.market1501 import sample_calibration_images
    from edge_reid.tensorrt.calibration_data import CalibrationImages
    from edge_reid.tensorrt.env import require_tensorrt
    from edge_reid.tensorrt.manifest import engines_dir_option
    from edge_reid.tensorrt.profile import BatchProfile
    from edge_reid.tensorrt.versions import Int8Path

    model_path = model or DEFAULT_REID_MODEL
    spec = load_spec(model_path)
    options = BuildOptions(
        model_path=Path(model_path),
        precision=precision,
        profile=BatchProfile(min_batch, opt_batch, max_batch),
        workspace_mb=workspace_mb,
        qdq_path=qdq,
        calibration_data=calibration_data,
        calibration_images=calibration_images,
        engines_dir=engines_dir,
        calibration_dir=calibration_dir,
        rebuild=rebuild,
    )
    validate_options(options, spec)  # bad options fail the same way with or without TensorRT
    trt, status = require_tensorrt()
    plan = plan_build(options, spec, status.tensorrt_version, status.gpu.gpu)

    existing = None if rebuild else up_to_date(plan)
    if existing is not None:
        console.print(f"up to date: {escape(str(plan.engine_path))} (built {existing.build_date}); pass --rebuild to build it again")
        return

    batches = None
    if plan.int8_path is Int8Path.IMPLICIT_CALIBRATION:
        paths = list(sample_calibration_images(options.calibration_data, options.calibration_images))
        images = CalibrationImages(paths, spec)
        batches = lambda: iter(images)  # noqa: E731 - read only if TensorRT has no calibration cache
        console.print(f"calibrating on {len(paths)} crops from {escape(str(options.calibration_data))} (cache: {escape(str(plan.calibration_file))})")

    console.print(
        f"[bold]building[/] {options.precision} engine for {escape(Path(model_path).name)} with TensorRT {status.tensorrt_version} "
        f"on {status.gpu.gpu.describe()}, batch {options.profile}, workspace {options.workspace_mb} MiB "
        "(several minutes on a Jetson)"
    )
    started = time.perf_counter()
    manifest = build_engine(plan, trt, calibration_batches=batches, cuda=DeviceCuda.here(status.gpu.driver_version))
    seconds = time.perf_counter() - started
    size_mb = plan.engine_path.stat().st_size / 2**20
    console.print(f"built {escape(str(plan.engine_path))} ({size_mb:.1f} MiB) in {seconds:.0f} s; manifest {escape(str(plan.manifest_path))}")
    if manifest.int8_path == Int8Path.IMPLICIT_CALIBRATION.value and batches is not None and images.unreadable:
        console.print(f"[yellow]warning:[/] {len(images.unreadable)} calibration images could not be read and were skipped")
    run = f"edge-reid run --camera /dev/video0 --backend tensorrt --model {shlex.quote(str(model_path))} {engines_dir_option(engines_dir)}"
    console.print(f"run it with: {escape(run.rstrip())}")
