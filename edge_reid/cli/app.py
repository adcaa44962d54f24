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
