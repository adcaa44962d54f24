"""``edge-reid bench``: latency and throughput per backend and batch size, the loop's overhead, preprocessing speed."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from edge_reid.cli import terminal
from edge_reid.cli.app import DEVICE_HELP, MAX_BATCH, MAX_THREADS, app, output_file

console = Console()
status = terminal.console()


def _print_comparison(comparison) -> None:
    data = comparison.to_dict()
    model, settings, runs = data["model"], data["settings"], data["backends"]
    table = Table(title=f"edge-reid bench: {escape(Path(model['path']).name)} (latency in ms)", title_justify="left")
    for column in ("backend", "precision", "batch", "p50", "p90", "p99", "images/s"):
        table.add_column(column, justify="left" if column in ("backend", "precision") else "right")
    rows = [row for run in runs for row in run["batches"]]
    has_loop = any("loop_images_per_s" in row for row in rows)
    has_plain = any("sequential_loop_images_per_s" in row for row in rows)
    if has_loop:
        columns = ["loop images/s", "loop efficiency"] + (["plain efficiency"] if has_plain else [])
        columns += ["plain: preprocess" if has_plain else "loop: preprocess", "embed", "match", "our code"]
        for column in columns:
            table.add_column(column, justify="right")
    for run in runs:
        for row in run["batches"]:
            latency = row["latency_ms"]
            cells = [run["backend"], run["precision"], str(row["batch"]), f"{latency['p50']:.2f}", f"{latency['p90']:.2f}",
                     f"{latency['p99']:.2f}", f"{row['images_per_s']:.1f}"]
            if has_loop:
                stages = row["sequential_loop_stage_ms"] if has_plain else row["loop_stage_ms"]
                cells += [f"{row['loop_images_per_s']:.1f}", f"{row['loop_efficiency']:.3f}"]
                if has_plain:
                    cells.append(f"{row['sequential_loop_efficiency']:.3f}")
                ours = stages["preprocess"] + stages["match"]
                cells += [f"{stages['preprocess']:.2f}", f"{stages['embed']:.2f}", f"{stages['match']:.2f}",
                          f"{100 * ours / (ours + stages['embed']):.0f} %"]
            table.add_row(*cells)
    if not console.is_terminal:  # files and pipes get the whole table, one line per row, whatever COLUMNS says
        console.width = max(console.width, Measurement.get(console, console.options.update_width(10_000), table).maximum)
    terminal.print_table(console, table)
    for run in runs:
        auto = run["selection_reason"] if run["selection_reason"].startswith("auto") else ""
        console.print(f"{run['backend']}: {run['describe']}" + (f" ({auto})" if auto else ""))
    for skipped in data["skipped"]:
        console.print(f"[yellow]not measured[/] {skipped['backend']}: {skipped['reason']}")
    if len(runs) > 1:
        slowest = min(runs, key=lambda run: sum(row["images_per_s"] for row in run["batches"]))
        for run in runs:
            if run is slowest:
                continue
            ratios = ", ".join(
                f"batch {row['batch']} {row['images_per_s'] / base['images_per_s']:.2f}x"
                for row, base in zip(run["batches"], slowest["batches"])
            )
            console.print(f"model images/s, {run['backend']} / {slowest['backend']}: {ratios}")
    if has_loop:
        console.print(
            f"loop: {settings['crops']['count']} real crops ({settings['crops']['source']}) -> preprocess -> embed -> "
            f"match against {settings['gallery_size']} identities, the next batch embedded while this one is matched "
            "(EmbeddingLoop); efficiency = loop images/s / that backend's model-only images/s"
            + ("; plain loop: the same steps one after the other, its preprocess/embed/match in mean ms per batch; "
               "our code = preprocess + match as a share of the plain step: the faster the model, the larger it is"
               if has_plain else "")
        )
    pre = data["preprocess"]
    if pre:
        threaded = ""
        if pre.get("threaded_crops_per_s") is not None:
            threaded = f"; fused on the loop's {pre['threads']} threads {pre['threaded_crops_per_s']:.0f} crops/s"
        console.print(
            f"preprocess (batch {pre['batch']}, one thread): fused {pre['fused_crops_per_s']:.0f} crops/s, "
            f"reference numpy/OpenCV {pre['reference_crops_per_s']:.0f} crops/s, speedup {pre['speedup']:.2f}x "
            f"(max difference {pre['max_abs_diff']:.2g}){threaded}"
        )
    env = data["environment"]
    libraries = ", ".join(f"{name} {version}" for name, version in env["libraries"].items() if version)
    device = env["gpu"] or "no GPU"
    flags = " ".join(env.get("cpu_flags") or []) or "unknown"
    quota = f" (CPU quota {env['cpu_quota']:g})" if env.get("cpu_quota") else ""
    console.print(f"machine: {env['cpu']} ({flags}), {env['cpu_usable']}/{env['cpu_cores']} cores usable{quota}, {device}; {env['platform']}")
    console.print(f"libraries: python {env['python']}, {libraries}")


@app.command("bench")
def bench(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="ReID model (.onnx). Default: bundled OSNet x0.25 (MSMT17)."),
    backend: str = typer.Option(
        "all", "--backend", "-b",
        help="Backends to compare in one table: all (every backend usable here), auto (what --backend auto picks for "
        "this model alone, timed by wall time; `run`, with the detector beside it, times both models by CPU time and "
        "may pick the other), or names separated by commas: tensorrt, openvino, onnxruntime.",
    ),
    precision: Optional[str] = typer.Option(
        None, "--precision", "-p",
        help="fp32, bf16, fp16 or int8. ONNX Runtime: checked against the model (FP16/INT8 models come from `edge-reid calibrate`); "
        "OpenVINO: the precision of the float layers (bf16/fp16 where the CPU has them; int8: a Q/DQ model); "
        "TensorRT: the engine to load (fp16/int8, built by `edge-reid build`). Default: the model's or newest engine's.",
    ),
    device: Optional[str] = typer.Option(None, "--device", help=DEVICE_HELP),
    batch: str = typer.Option("1,8,32", "--batch", help="Comma-separated batch sizes, e.g. 1,8,32."),
    seconds: float = typer.Option(5.0, "--seconds", min=0.01, max=3600.0, help="Timed seconds per batch size for the model alone, and as much for each loop (overlapped, plain)."),
    warmup: float = typer.Option(1.0, "--warmup", min=0.0, max=3600.0, help="Untimed warm-up seconds per batch size."),
    json_path: Optional[Path] = typer.Option(None, "--json", parser=output_file, metavar="<path>", help="Also write the results here (.json) for scripts."),
    crops: Optional[Path] = typer.Option(None, "--crops", help="Folder of person crops (.jpg/.png) for the loop and preprocess benchmarks."),
    video: Optional[Path] = typer.Option(
        None, "--video", help="Cut person crops from this video instead. Default: data/vtest.avi of the shared assets ($EDGE_REID_SHARED, else ../shared) when present."
    ),
    max_crops: int = typer.Option(256, "--max-crops", min=1, help="Most crops to read or cut."),
    gallery_size: int = typer.Option(10_000, "--gallery-size", min=1, max=10_000_000, help="Identities in the loop's gallery."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=MAX_THREADS, help="CPU threads of the model (default: the runtime's own, one per core)."),
    engines_dir: Path = typer.Option(Path("engines"), "--engines-dir", help="TensorRT: folder of engines built by `edge-reid build`."),
    model_only: bool = typer.Option(False, "--model-only", help="Measure the model alone (no crops, loop or preprocessing)."),
) -> None:
    """Latency (p50/p90/p99 ms) and images/s per batch size, like trtexec; the whole embedding loop
    (real crops -> preprocess -> embed -> match against a 10k gallery) and its efficiency, as edge-reid
    runs it (the next batch embedded while this one is matched) and plain (one step after the other);
    preprocessing alone.

    Examples:

    \b
      edge-reid bench --batch 1,8,32 --json bench.json
      edge-reid bench --backend openvino,onnxruntime --model-only --threads 1
      edge-reid bench --model osnet_int8.onnx --precision int8 --crops my_crops/
    """
    from edge_reid.backends import PRECISIONS
    from edge_reid.bench import BenchConfig, crops_from_folder, crops_from_video, default_video, parse_batch_sizes, shared_folder
    from edge_reid.bench.compare import bench_backend_names, bench_backends
    from edge_reid.folders import require_folder
    from edge_reid.errors import DataError
    from edge_reid.atomic import write_json_atomic
    from edge_reid.output_paths import check_distinct_outputs, check_writable

    try:
        batches = parse_batch_sizes(batch)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--batch") from None
    if max(batches, default=0) > MAX_BATCH:
        raise typer.BadParameter(f"{max(batches)} is more than {MAX_BATCH} images a batch", param_hint="--batch")
    try:
        backends = bench_backend_names(backend)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--backend") from None
    if precision is not None and precision not in PRECISIONS:
        raise typer.BadParameter(f"choose one of {', '.join(PRECISIONS)}", param_hint="--precision")
    if device is not None and backend not in ("all", "auto") and "openvino" not in backends:
        raise typer.BadParameter(f"chooses an OpenVINO device; --backend {backend} has none (use --backend openvino)",
                                 param_hint="--device")
    if crops is not None and video is not None:
        raise typer.BadParameter("give at most one of --crops or --video", param_hint="--crops/--video")
    if json_path is not None:
        check_distinct_outputs({"--json": json_path}, {"--model": model, "--video": video, "--crops": crops})
        check_writable(json_path, "bench JSON")
    if model is not None and not model.is_file():
        from edge_reid.errors import ModelError

        raise ModelError(f"model file not found: {model}")

    source = None
    if not model_only and crops is None:
        source = video or default_video()
        if source is None:
            raise DataError(
                f"the loop and preprocess benchmarks need real person crops and {shared_folder() / 'data' / 'vtest.avi'} was not found: "
                "give --crops FOLDER or --video FILE, or use --model-only"
            )
        if not Path(source).exists():
            raise DataError(f"video not found: {source}")
    if crops is not None:
        require_folder(crops, "crop folder", "give --crops a folder of person crops (.jpg/.png)")

    def load_pool():
        """Called by run_bench once the model has loaded (model errors first, then the slow crop cut)."""
        if crops is not None:
            pool = crops_from_folder(crops, max_crops)
        else:
            status.print(f"cutting up to {max_crops} person crops from {escape(str(source))}")
            pool = crops_from_video(source, max_crops)
        if pool.skipped:
            from edge_reid.data.images import describe_skipped

            status.print(f"[yellow]skipped {escape(describe_skipped(pool.skipped))} in {escape(str(crops))}[/]")
        return pool

    config = BenchConfig(
        model_path=model,
        backend=backend,
        precision=precision,
        batches=batches,
        seconds=seconds,
        warmup_s=warmup,
        gallery_size=gallery_size,
        threads=threads,
        engines_dir=engines_dir,
        device=device,
        loop=not model_only,
        preprocess=not model_only,
    )
    comparison = bench_backends(
        config, backends, None if model_only else load_pool, progress=lambda line: status.print(f"[dim]{line}[/]"),
        skip_unusable=backend == "all",
    )
    if json_path is not None:
        write_json_atomic(json_path, comparison.to_dict())
    _print_comparison(comparison)
