"""The ``edge-reid`` console script: Ctrl-C is handled from the first moment, while the commands load.

Loading the command-line interface imports its commands (and with them numpy, OpenCV, ONNX): a
Ctrl-C in that second would otherwise print Python's ``KeyboardInterrupt`` traceback, and a process
without the memory to load them (a small device, a ``ulimit -v``) a traceback of the import that
failed. This module imports nothing heavy itself.
"""

from __future__ import annotations

import errno
import sys

#: What libraries say when an allocation failed: a shared library that could not be mapped (glibc's
#: loader), a C++ ``std::bad_alloc`` (ONNX Runtime, OpenVINO), ONNX Runtime's arena, ``strerror(ENOMEM)``, OpenVINO's CPU plugin.
OUT_OF_MEMORY_TEXTS = (
    "failed to map segment", "bad_alloc", "failed to allocate memory", "cannot allocate memory", "can't alloc",
)


#: What a command needs (docs/benchmarks.md, "Memory of each command"), said when memory runs out.
MEMORY_NEEDED = ("edge-reid needs about 0.3-0.5 GB of free memory and, under a `ulimit -v`, 1.4 GB of address space "
                 "(2.5 GB with OpenVINO): close other programs or raise the limit")


#: Bytes of address space below which the libraries cannot load at all (a ``ulimit -v``): numpy's OpenBLAS reserves
#: a buffer of tens of MiB per thread when it is imported and, when that fails, prints its own error and ends the
#: process itself (exit 1, or a SIGINT read as "interrupted"), where no Python code can say why. ``edge-reid --help``
#: loaded with 192 MiB on 2 cores (more cores, more OpenBLAS threads); every command that does work needs 1.4 GB.
LEAST_ADDRESS_SPACE = 512 << 20


def address_space_limit() -> int | None:
    """The process's address-space limit (``ulimit -v``, ``RLIMIT_AS``) in bytes, or None when there is none
    (or no way to read it: Windows)."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


def out_of_memory(exc: BaseException) -> str | None:
    """Whether ``exc`` (or an exception it was raised from, or while handling, as its traceback shows) is memory running out.

    Args:
        exc: any exception.

    Returns:
        One line saying what ran out (the first line, at most 300 characters, of the exception that says so: a
        :class:`MemoryError`, an ``OSError`` with ``ENOMEM``, or an import, model or library error
        whose text says an allocation or a shared library's mapping failed); None otherwise.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno == errno.ENOMEM):
            return text[:300]
        if any(words in text.lower() for words in OUT_OF_MEMORY_TEXTS):
            return text[:300]
        # the chain as Python prints it: the cause, else the exception being handled unless `from None` hid it
        exc = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)
    return None


def main(argv: list[str] | None = None) -> int:
    """Load the CLI and run it (:func:`edge_reid.cli.main`); returns the exit code.

    Returns:
        The command's exit code; 130 when interrupted (Ctrl-C) while the commands load, with
        the one line ``edge-reid: interrupted`` on standard error; 1 when the memory to load them
        is missing (:func:`out_of_memory`, or an address-space limit below :data:`LEAST_ADDRESS_SPACE`),
        with one ``edge-reid: error: out of memory`` line.

    Raises:
        Exception: any other failure to load the commands (a broken installation), as it is.
    """
    limit = address_space_limit()
    if limit is not None and limit < LEAST_ADDRESS_SPACE:  # checked before numpy's OpenBLAS fails in its own words
        print(f"edge-reid: error: out of memory: the address space is limited to {limit / 2**20:.0f} MiB (ulimit -v), too "
              f"little to load its libraries: {MEMORY_NEEDED}", file=sys.stderr)
        return 1
    try:
        from edge_reid.cli import main as run_command_line
    except KeyboardInterrupt:
        print("edge-reid: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        what = out_of_memory(exc)
        if what is None:
            raise
        print(f"edge-reid: error: out of memory while loading its libraries ({what}): {MEMORY_NEEDED}", file=sys.stderr)
        return 1
    return run_command_line(argv)
