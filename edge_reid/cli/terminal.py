"""Output as it meets what the command writes to: a terminal, a log file, the journal, a pipe.

Commands run as services (systemd's journal, ``docker run`` without ``-t``, cron, ``| tee``), in narrow
terminals and in locales that are not UTF-8 (``LC_ALL=C`` with ``PYTHONUTF8=0``); this module keeps
their output readable there: no progress redraws in a file, tables whole at any width, names typed in
any locale stored as typed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys

import typer
from rich.console import Console

#: Width a table is measured at before it is printed (wider than any table of ours).
MEASURE_WIDTH = 10_000
#: Narrowest a table is printed: our tables are laid out for 80 columns (a classic terminal, a serial console,
#: and the width Rich gives a log file), where no cell is cut.
TABLE_MIN_WIDTH = 80


def console(stderr: bool = True, **options) -> Console:
    """A Rich console on standard error (or output) that animates only on a terminal.

    ``FORCE_COLOR`` (set for colour in CI and container logs) makes Rich treat any file as a terminal,
    and a progress bar would then redraw itself about ten times a second into the log file or the
    journal (carriage returns and cursor moves). Here a stream that is not a terminal gets colour
    when asked, but a progress bar prints once, when it ends. Rich's own ``TTY_INTERACTIVE=1`` still
    forces the animation.

    Args:
        stderr: True for standard error, False for standard output.
        **options: more :class:`rich.console.Console` options.
    """
    stream = sys.stderr if stderr else sys.stdout
    try:
        terminal = stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # replaced by an object without one, or closed
        terminal = False
    if not terminal and "TTY_INTERACTIVE" not in os.environ:
        options.setdefault("force_interactive", False)
    return Console(stderr=stderr, **options)


def print_table(target: Console, table) -> None:
    """Print ``table``; in a terminal too narrow for its words, as wide as :data:`TABLE_MIN_WIDTH` (or its words).

    Rich fits a table to the terminal by cutting its cells to ``…`` when the terminal is narrower than the
    table's words (``COLUMNS=40``, a phone's SSH client): a path or a number would be lost. Such a table is
    printed at the width it was laid out for, whole, for the terminal to wrap its lines.
    """
    measured = target.measure(table, options=target.options.update_width(MEASURE_WIDTH))
    if measured.minimum <= target.width:
        target.print(table)
        return
    wide = Console(
        file=target.file, width=min(measured.maximum, max(TABLE_MIN_WIDTH, measured.minimum)),
        color_system=target.color_system, force_terminal=target.is_terminal, force_interactive=False,
        no_color=target.no_color, highlight=False, safe_box=target.safe_box,
    )
    wide.print(table, crop=False)


#: What writing to a terminal that closed (EIO: the SSH session or window went, after SIGHUP) or to a pipe whose
#: reader ended (EPIPE) fails with.
GONE_ERRNOS = (errno.EIO, errno.EPIPE)


@contextlib.contextmanager
def unless_gone():
    """Run the block, and let a write that fails because standard error is gone (:data:`GONE_ERRNOS`) end only the block.

    What comes after still runs: the outputs of a run are written and the exit code is the run's, though no
    one is left to read its messages. Other errors propagate.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in GONE_ERRNOS:
            raise


def typed_text(value: str, option: str) -> str:
    """Text given on the command line (a person's name), as it was typed.

    In a locale that is not UTF-8 (``LC_ALL=C`` with ``PYTHONUTF8=0``) Python holds each byte of the
    argument it could not decode as a lone surrogate (``"José"`` becomes ``"Jos\\udcc3\\udca9"``); those
    are the UTF-8 bytes the terminal sent, decoded here, so that the name stored is the one typed.

    Raises:
        typer.BadParameter: the bytes are not UTF-8 either (a usage error naming ``option``).
    """
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        return os.fsencode(value).decode("utf-8")
    except UnicodeError:  # bytes that are not UTF-8, or a surrogate no byte gives ("\ud800")
        shown = value.encode("ascii", "backslashreplace").decode("ascii")
        raise typer.BadParameter(f"{shown} is not UTF-8 text; give it from a UTF-8 terminal (LANG=C.UTF-8)",
                                 param_hint=option) from None
