"""The ``edge-reid`` console script: Ctrl-C is handled from the first moment, while the commands load.

Loading the command-line interface imports its commands (and with them numpy, OpenCV, ONNX): a
Ctrl-C in that second would otherwise print Python's ``KeyboardInterrupt`` traceback. This module
imports nothing heavy itself.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Load the CLI and run it (:func:`edge_reid.cli.main`); returns the exit code.

    Returns:
        The command's exit code, or 130 when interrupted (Ctrl-C) while the commands load, with
        the one line ``edge-reid: interrupted`` on standard error.
    """
    try:
        from edge_reid.cli import main as run_command_line
    except KeyboardInterrupt:
        print("edge-reid: interrupted", file=sys.stderr)
        return 130
    return run_command_line(argv)
