"""Command-line entry point ``edge-reid``: user errors print one line and exit 2; a bug prints one
line and saves its traceback to a file."""

from __future__ import annotations

import errno
import os
import signal
import sys
import warnings

from edge_reid.atomic import WRITE_FAILURES
from edge_reid.cli.app import app
from edge_reid.entry_point import MEMORY_NEEDED, out_of_memory
from edge_reid.errors import DataError, EdgeReidError, EdgeReidWarning
from edge_reid.output_paths import forget_made_folders, remove_folders_left_empty

# Each import registers its commands on ``app``.
from edge_reid.cli import run_command  # noqa: E402,F401
from edge_reid.cli import build_command  # noqa: E402,F401
from edge_reid.cli import doctor_command  # noqa: E402,F401
from edge_reid.cli import bench_command  # noqa: E402,F401
from edge_reid.cli import gallery_command  # noqa: E402,F401
from edge_reid.cli import calibrate_command, eval_command  # noqa: E402,F401
from edge_reid.cli import eval_mot_command  # noqa: E402,F401


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one ``edge-reid: warning:`` line; others as Python prints them."""
    if issubclass(category, EdgeReidWarning):
        print(f"edge-reid: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _save_traceback(exc: BaseException) -> str:
    """Write ``exc``'s traceback to a new file in the temporary folder; return where, or why not."""
    import tempfile
    import time
    import traceback

    try:  # gettempdir() raises where no temporary folder can be written (a read-only container)
        path = os.path.join(tempfile.gettempdir(), f"edge-reid-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt")
        with open(path, "x", encoding="utf-8") as file:
            file.write(f"edge-reid {' '.join(sys.argv[1:])}\n\n")
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=file)
    except OSError as error:
        return f"the traceback could not be saved ({error})"
    return f"the traceback is in {path}"


#: Signals that end a command as Ctrl-C does: SIGTERM (``systemctl stop``, ``docker stop``) and SIGHUP (the
#: terminal or SSH session closed, ``systemctl reload``); each with its exit code (128 + the signal) and word.
TERMINATING_SIGNALS = {signal.SIGTERM: "terminated (SIGTERM)"}
if hasattr(signal, "SIGHUP"):  # not on Windows
    TERMINATING_SIGNALS[signal.SIGHUP] = "hung up (SIGHUP)"


def _signal_handlers() -> dict:
    """The current SIGINT, SIGTERM and SIGHUP handlers (none outside the main thread, where they cannot be set)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, *TERMINATING_SIGNALS)}


class _Termination:
    """SIGTERM and SIGHUP as Ctrl-C for commands that do not handle them themselves (``run`` does, once
    frames flow): Python's default ends the process where it stands, leaving the scratch folders and
    partial files that unwinding removes (``calibrate``'s ``.edge-reid-calibrate-*`` in ``--out``)."""

    def __init__(self) -> None:
        self.received: int | None = None  # the signal, once one came

    def __call__(self, signum, frame) -> None:
        self.received = signum
        raise KeyboardInterrupt


def _escape_unencodable(error: UnicodeError):
    """Codec error handler for standard output and error in a locale that is not UTF-8 (``LC_ALL=C`` with
    ``PYTHONUTF8=0``): a character the encoding lacks (an identity's name ``José``) is written as its
    backslash escape (``Jos\\xe9``) instead of ending the command with a ``UnicodeEncodeError``; the bytes
    of a file name Python could not decode (lone surrogates) are written back as they were."""
    import codecs

    if isinstance(error, UnicodeEncodeError) and all(
            "\udc80" <= char <= "\udcff" for char in error.object[error.start:error.end]):
        return codecs.lookup_error("surrogateescape")(error)
    return codecs.backslashreplace_errors(error)


ESCAPE_ERRORS = "edge-reid-escape"


def _tolerant_streams() -> list:
    """Make standard output and error write any text in a locale that is not UTF-8 (:func:`_escape_unencodable`);
    returns ``(stream, errors)`` for each changed, to put back."""
    import codecs

    codecs.register_error(ESCAPE_ERRORS, _escape_unencodable)
    changed = []
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if not encoding or not hasattr(stream, "reconfigure") or getattr(stream, "errors", None) not in ("strict", "surrogateescape"):
            continue
        errors = stream.errors
        try:
            if codecs.lookup(encoding).name == "utf-8":
                continue
            stream.reconfigure(errors=ESCAPE_ERRORS)
        except (LookupError, ValueError, OSError):  # an unknown codec, a closed stream
            continue
        changed.append((stream, errors))
    return changed


def _usage_error(exc: Exception) -> int | None:
    """Report a command-line usage error (an unknown option, a bad value, a missing argument) as one
    ``edge-reid: error:`` line and return its exit code (2); None when ``exc`` is not one.

    Typer raises them as Click exceptions (its own copy of Click in recent versions, Click in older
    ones), recognised here by class name so both work. Abort (Ctrl-C or end of input while Typer
    prompts) is exit code 130. With no command at all, the help is shown.
    """
    names = {kind.__name__ for kind in type(exc).__mro__}
    if "Abort" in names:
        return 130
    if "ClickException" not in names:
        return None
    if type(exc).__name__ == "NoArgsIsHelpError":
        print(exc.ctx.get_help())  # on standard output, as --help prints it (Click's show() writes to stderr)
        return int(getattr(exc, "exit_code", 2))
    context = getattr(exc, "ctx", None)
    hint = f" (see: {context.command_path} --help)" if context is not None else ""
    print(f"edge-reid: error: {exc.format_message()}{hint}", file=sys.stderr)
    return int(getattr(exc, "exit_code", 2))


#: What to do when a command runs out of memory (docs/benchmarks.md, "Memory of each command"); others: MEMORY_NEEDED.
MEMORY_ADVICE = {
    "run": "to need less, try --batch 8 or --backend onnxruntime (OpenVINO takes about 0.12 GB more) and keep a "
           f"--gallery small (edge-reid gallery prune); {MEMORY_NEEDED}",
    "eval": f"to need less, try --batch 8; {MEMORY_NEEDED}",
    "bench": f"to need less, try a smaller --batch; {MEMORY_NEEDED}",
    "gallery": f"a large gallery needs more (edge-reid gallery prune); {MEMORY_NEEDED}",
    "calibrate": "calibrate needs about 2.5 GB of free memory and 3.8 GB of address space whatever --images (its "
                 "statistics expose the layers' outputs): run it on a larger machine and copy the model it writes",
}


def _out_of_memory_line(detail: str, arguments: list[str]) -> str:
    """The one line for memory running out in the command ``arguments`` name: what failed, what to do."""
    command = next((argument for argument in arguments if not argument.startswith("-")), "")
    return f"out of memory ({detail}): {MEMORY_ADVICE.get(command, MEMORY_NEEDED)}"


#: Options whose value may be empty: ``gallery rename --name ""`` clears a name (``enroll`` says its own word).
EMPTY_VALUE_ALLOWED = ("--name", "-n")


def _refuse_empty_arguments(arguments: list[str]) -> None:
    """Refuse an empty argument (``""``, ``--model=``): an unset shell variable, most often. As a path it would
    be the current folder (``enroll -n Alice "$DIR"`` enrolled every image there under Alice).

    Raises:
        DataError: naming the option it followed (exit 2).
    """
    for index, argument in enumerate(arguments):
        option, equals, value = argument.partition("=") if argument.startswith("--") else (argument, "", None)
        if equals and not value.strip() and option not in EMPTY_VALUE_ALLOWED:
            raise DataError(f"{option} is empty; give a value (an unset shell variable?)")
        if argument.strip() or (index and arguments[index - 1] in EMPTY_VALUE_ALLOWED):
            continue
        after = arguments[index - 1] if index and arguments[index - 1].startswith("-") else None
        where = f"the value of {after}" if after else f"argument {index + 1}"
        raise DataError(f"{where} is empty; give a value (an unset shell variable?)")


#: Environment variables the program sets for itself, unless the user set them, before any OpenMP runtime
#: starts or cv2 is imported; given back as they were when :func:`main` returns to a caller. OMP_WAIT_POLICY:
#: OpenMP threads (Numba's "omp" layer: matcher, preprocessing) sleep when a parallel region ends instead of
#: spinning on the cores the models need next (benchmarks/bench_matcher.py, docs/benchmarks.md); the library
#: never changes its host's environment. OPENCV_LOG_LEVEL, OPENCV_FFMPEG_LOGLEVEL (-8: AV_LOG_QUIET): OpenCV's
#: and FFmpeg's own log lines (a camera index that does not exist, a stream refused, a damaged frame) would come
#: before our one-line message saying the same; set OPENCV_LOG_LEVEL=INFO or OPENCV_FFMPEG_LOGLEVEL=32 to see them.
PROGRAM_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE", "OPENCV_LOG_LEVEL": "OFF", "OPENCV_FFMPEG_LOGLEVEL": "-8"}


def _restore_environment(environment: dict[str, str | None]) -> None:
    """Put back the values (or absence) ``environment`` holds for :data:`PROGRAM_ENVIRONMENT`'s variables."""
    for name, value in environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def main(argv: list[str] | None = None) -> int:
    """Run the CLI.

    Exit codes: 0 success, 1 unexpected failure (a bug: one line on stderr, the traceback
    saved to a file in the temporary folder, whose path the line gives; or memory or open files
    running out: one line saying which options lower the command's memory, or the limit to raise), 2 bad input (an
    :class:`EdgeReidError` or a usage error), 3 an output failed while being
    written (:class:`~edge_reid.errors.OutputWriteError`: disk full, I/O error;
    what was written before stays valid; standard output whose reader ended, ``| head``:
    no message), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM) and 129 hung up
    (SIGHUP: the terminal or SSH session closed; left alone when ignored, ``nohup``),
    each after removing the command's scratch files: no traceback. Commands that handle
    these signals themselves (``run`` once frames flow) finish cleanly and exit 0.
    In a locale that is not UTF-8, text its encoding lacks is written as backslash escapes.
    :data:`PROGRAM_ENVIRONMENT`'s variables are set, unless already set, while the command runs.

    Args:
        argv: arguments without the program name; None reads ``sys.argv`` and
            exits the process, a list returns the exit code (for tests and embedding) with the
            caller's signal handlers, standard streams and environment variables as they were.
    """
    environment = {name: os.environ.get(name) for name in PROGRAM_ENVIRONMENT}  # given back to a caller
    for name, value in PROGRAM_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    handlers = _signal_handlers()
    termination = _Termination()
    for sig in TERMINATING_SIGNALS:
        if handlers and handlers[sig] is signal.SIG_DFL:  # a handler the caller set stays, and `nohup`'s SIG_IGN
            signal.signal(sig, termination)
    streams = _tolerant_streams()
    forget_made_folders()
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", EdgeReidWarning)  # each shown once, whatever the filters outside
            warnings.showwarning = _show_warning
            _refuse_empty_arguments(arguments)
            result = app(args=argv, prog_name="edge-reid", standalone_mode=False)
            if sys.stdout is not None and not sys.stdout.closed:
                sys.stdout.flush()  # a full disk or device behind standard output shows here, not at exit
        code = result if isinstance(result, int) and not isinstance(result, bool) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        cause = exc.__context__  # Typer ends a command whose standard output or error broke with exit(1)
        if isinstance(cause, OSError) and cause.errno == errno.EPIPE:
            code = 3  # its reader ended (`| head`): an output failed, said by the code alone, as a pipe's writer ends
    except EdgeReidError as exc:
        message = str(exc)
        if out_of_memory(exc) is not None:  # a backend's "inference failed: ... std::bad_alloc": not the model's fault
            message = f"{message}; {_out_of_memory_line('the model could not allocate', arguments)}"
        print(f"edge-reid: error: {message}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:  # Typer turns one inside a command into exit 130; this catches the rest
        code = 130
    except Exception as exc:
        code = _usage_error(exc)
        if code is None and isinstance(exc, OSError) and exc.errno in WRITE_FAILURES - {errno.EIO}:  # errors only a write gives
            where = exc.filename or "standard output"
            print(f"edge-reid: error: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
            code = 3
        if code is None and isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # a path given: bad input
            print(f"edge-reid: error: {exc.filename or 'a path given'}: the name is too long for the file system; "
                  "give a shorter path", file=sys.stderr)
            code = 2
        if code is None and out_of_memory(exc) is not None:  # MemoryError, a library that could not be mapped
            print(f"edge-reid: error: {_out_of_memory_line(out_of_memory(exc), arguments)}", file=sys.stderr)
            code = 1
        if code is None and isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            try:
                import resource

                limit = f"; this process may open {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}"
            except ImportError:  # Windows
                limit = ""
            print(f"edge-reid: error: too many open files ({exc.strerror}{limit}): raise the limit (ulimit -n 1024)",
                  file=sys.stderr)
            code = 1
        if code is None:  # a bug (ours or a library's): one line here, the whole traceback in a file to report
            print(f"edge-reid: internal error: {type(exc).__name__}: {exc} ({_save_traceback(exc)}; please report it)", file=sys.stderr)
            code = 1
    if code not in (0, None):
        remove_folders_left_empty()  # a command refused or failed after its output checks leaves no empty folder
    if code == 130 and termination.received:
        code = 128 + termination.received  # 143 SIGTERM, 129 SIGHUP, as a shell reports a process a signal ended
        _say(f"edge-reid: {TERMINATING_SIGNALS[termination.received]}")
    elif code == 130:
        _say("edge-reid: interrupted")
    if argv is None:
        sys.exit(code)  # a command may leave Ctrl-C ignored (run, once stopping): the process ends here
    for sig, handler in handlers.items():  # called from Python: give the caller its handlers back
        signal.signal(sig, handler)
    for stream, errors in streams:
        stream.reconfigure(errors=errors)
    _restore_environment(environment)
    return code


def _say(line: str) -> None:
    """``line`` on standard error, unless it is gone (its reader ended, a closed terminal)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):  # nowhere left to say it; the exit code still does
        pass
