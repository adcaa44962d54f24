"""Command-line entry point ``edge-reid``: user errors print one line and exit 2."""

from __future__ import annotations

import sys

import click

from edge_reid.cli.app import app
from edge_reid.errors import EdgeReidError

# Each import registers its commands on ``app``.
from edge_reid.cli import run_command  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the process exit code.

    Exit codes: 0 success, 1 unexpected failure, 2 bad input (an
    :class:`EdgeReidError` or a usage error), 130 interrupted before work began.
    """
    try:
        result = app(args=argv, standalone_mode=False, prog_name="edge-reid")
        code = result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = 2
    except click.exceptions.Abort:
        code = 130
    except EdgeReidError as exc:
        print(f"edge-reid: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    if argv is None:
        sys.exit(code)
    return code
