"""The ``edge-reid`` Typer application; each command lives in its own module of this package."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

#: Help is Click's plain layout (option, then its text in a wide column, wrapped to the terminal),
#: not Typer's Rich panels: those give every option four columns (option, short form, negative
#: form, value type) and leave the explanation 13 characters per line on an 80-column terminal, a
#: Jetson's serial console or an SSH session. Example blocks keep their lines with Click's ``\b`` marker.
HELP_MARKUP_MODE = None

app = typer.Typer(
    name="edge-reid",
    help=(
        "Person re-identification on the edge: detect people in a video or camera, embed them in "
        "batches and tell, frame by frame, which person each one is.\n\n"
        "Start with:  edge-reid run --source video.mp4 --output annotated.mp4"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=HELP_MARKUP_MODE,
)


def _print_version(value: bool) -> None:
    if value:
        from edge_reid import __version__

        typer.echo(f"edge-reid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the edge-reid version and exit."
    ),
) -> None:
    """Person re-identification on the edge (see the commands below)."""


BACKEND_HELP = (
    "Backend for both models: auto, tensorrt, openvino or onnxruntime. auto picks TensorRT (GPU + TensorRT + a current "
    "engine) > OpenVINO (installed, x86-64) > ONNX Runtime and says why; TensorRT runs the ReID model only, the detector "
    "then runs on the best CPU backend."
)
PRECISION_HELP = (
    "ReID model precision: fp32 (CPU default), bf16 or fp16 (OpenVINO, where the CPU has it), int8 (a Q/DQ model from "
    "`edge-reid calibrate`), fp16/int8 (TensorRT engine). Never changed silently: a backend that cannot refuses."
)
DEVICE_HELP = "OpenVINO device: CPU (default), GPU (Intel GPU) or NPU."


#: Largest embedding batch an option takes: no frame holds more people, and each batch's buffers are allocated up
#: front ((N, 3, 256, 128) float32: 400 MB at 1024; a typo such as 1000000000 asked for 358 TiB).
MAX_BATCH = 1024
#: Most CPU threads an option takes (a typo beyond this reached the runtimes' C++ bindings as an overflow).
MAX_THREADS = 1024


def output_file(value: str | Path) -> Path:
    """Parse an output *file* option, refusing a name that ends with a path separator, ``.`` or ``..``.

    ``--mot results/`` (or ``results/.``) means a folder; as a :class:`~pathlib.Path` it would
    silently become a file named ``results``. Used as ``typer.Option(..., parser=output_file, metavar="<path>")``.

    Raises:
        typer.BadParameter: ``value`` ends with ``/`` (or the platform's separator), ``.`` or ``..``: a usage error
            (exit 2) that names the value.
    """
    if isinstance(value, Path):  # an option's default
        return value
    separators = "".join(sorted({"/", os.sep, os.altsep or "/"}))
    last_part = re.split(f"[{re.escape(separators)}]", value)[-1]
    if last_part in ("", ".", "..") and value.strip(separators):  # the root itself: check_writable names it
        raise typer.BadParameter(f"{value} names a folder; give a file name in that folder")
    return Path(value)


def check_backend_option(
    backend: str, precision: str | None = None, detector_precision: str | None = None, device: str | None = None
) -> None:
    """Refuse an unknown ``--backend``, ``--precision`` or ``--detector-precision``, and a ``--device``
    (OpenVINO's) with a backend that has no such choice or, other than CPU, with ``auto`` (which may take
    another backend), as a usage error (exit 2) before anything loads."""
    from edge_reid.backends import BACKEND_NAMES, DETECTOR_PRECISIONS, PRECISIONS

    if backend not in BACKEND_NAMES:
        raise typer.BadParameter(f"choose one of {', '.join(BACKEND_NAMES)}", param_hint="--backend")
    if precision is not None and precision not in PRECISIONS:
        raise typer.BadParameter(f"choose one of {', '.join(PRECISIONS)}", param_hint="--precision")
    if detector_precision is not None and detector_precision not in DETECTOR_PRECISIONS:
        raise typer.BadParameter(f"choose one of {', '.join(DETECTOR_PRECISIONS)}", param_hint="--detector-precision")
    if device is not None and backend not in ("openvino", "auto"):
        raise typer.BadParameter(f"chooses an OpenVINO device; --backend {backend} has none (use --backend openvino)",
                                 param_hint="--device")
    if device is not None and backend == "auto" and device.strip().upper() != "CPU":
        # auto may take another backend, on the CPU: the device asked for would be dropped without a word
        raise typer.BadParameter(f"{device} is an OpenVINO device: give --backend openvino with it", param_hint="--device")
