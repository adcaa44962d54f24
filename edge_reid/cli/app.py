"""The ``edge-reid`` Typer application; each command lives in its own module of this package."""

from __future__ import annotations

import typer

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
    rich_markup_mode="rich",
)


@app.callback()
def _root() -> None:
    """Person re-identification on the edge (see the commands below)."""
