"""Command-line entry point ``edge-reid``: user errors print one line and exit 2."""

from __future__ import annotations

import os
import sys

from edge_reid.cli.app import app
from edge_reid.errors import EdgeReidError

# Each import registers its commands on ``app``.
from edge_reid.cli import run_command  # noqa: E402,F401
from edge_reid.cli import build_command  # noqa: E402,F401
from edge_reid.cli import doctor_command  # noqa: E402,F401
from edge_reid.cli import bench_command  # noqa: E402,F401
from edge_reid.cli import gallery_command  # noqa: E402,F401
from edge_reid.cli import calibrate_command, eval_command  # noqa: E402,F401
from edge_reid.cli import eval_mot_command  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    """Run the CLI.

    Exit codes: 0 success, 1 unexpected failure, 2 bad input (an
    :class:`EdgeReidError` or a usage error).

    Args:
        argv: arguments without the program name; None reads ``sys.argv`` and
            exits the process, a list returns the exit code (for tests and embedding).
    """
    # OpenMP threads (Numba's "omp" layer: matcher, preprocessing) sleep when a parallel region
    # ends instead of spinning on the cores the models need next (benchmarks/bench_matcher.py,
    # docs/benchmarks.md). Set here, by the program, before any OpenMP runtime starts: the
    # library never changes its host's environment. A user's own OMP_WAIT_POLICY wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app(args=argv, prog_name="edge-reid")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except EdgeReidError as exc:
        print(f"edge-reid: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    if argv is None:
        sys.exit(code)
    return code
