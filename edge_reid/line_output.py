"""Streaming text outputs (event logs, MOTChallenge rows) that are never left with a cut line.

:class:`LineOutput` appends a block of whole lines (one frame's) with unbuffered
``os.write`` calls, so nothing waits in a buffer to be lost on a crash. When a write
fails (disk full, I/O error, a closed pipe), a file it opened is truncated back to the
end of the last complete block: what a reader finds is whole lines of whole frames,
and the failure is raised as :class:`~edge_reid.errors.OutputWriteError` naming the
file and the cause.

A reader following the output sees each block when :meth:`LineOutput.write` returns (standard output
too: file descriptor 1 is written directly, not Python's block-buffered ``sys.stdout`` of a pipe).
Linux copies a write into a file page by page, so a reader polling a file can catch a block cut at a
4 KiB boundary: a reader takes a line once its ``"\\n"`` is there.
"""

from __future__ import annotations

import os
import stat
import sys

from edge_reid.errors import OutputPathError, OutputWriteError
from edge_reid.output_paths import STANDARD_OUTPUT, is_standard_output


def describe_os_error(exc: OSError) -> str:
    """The cause of a failed write in words: ``"No space left on device (disk full)"``."""
    words = exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, BrokenPipeError):
        return f"{words} (the reading program closed its end)"
    if exc.errno == 28:  # ENOSPC
        return f"{words} (disk full)"
    if exc.errno == 122:  # EDQUOT
        return f"{words} (disk quota full)"
    return words


class LineOutput:
    """Whole lines to a new file (created or truncated) or to standard output.

    Args:
        path: the file, or ``"-"`` for standard output (file descriptor 1).
        what: what the output holds, for messages (``"events"``).

    Attributes:
        path: as given (``"-"`` for standard output).
        lines: complete lines written.

    Raises:
        OutputPathError: the file cannot be created, or is a link another user may have planted in a shared
            folder (:func:`edge_reid.atomic.follow_own_links`).
        OutputWriteError: from :meth:`write` and :meth:`close`, writing failed.
    """

    def __init__(self, path: str | os.PathLike, what: str) -> None:
        self.path = STANDARD_OUTPUT if is_standard_output(path) else path
        self.what = what
        self.lines = 0
        self._failed: str | None = None
        self._stream = None
        if self.path == STANDARD_OUTPUT:
            sys.stdout.flush()  # anything printed before comes first
            try:
                self._fd = sys.stdout.fileno()
            except (AttributeError, OSError, ValueError):  # replaced by a stream without a descriptor (a notebook, a test)
                self._fd, self._stream = -1, sys.stdout
            self._owned = False
        else:
            if os.path.islink(path):  # one another user planted in /tmp: refused, as fs.protected_symlinks does
                from edge_reid.atomic import follow_own_links

                follow_own_links(path, f"{what} file")
            try:
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
            except OSError as exc:
                raise OutputPathError(f"cannot create {what} file {path}: {describe_os_error(exc)}") from None
            self._owned = True
        self._can_truncate = self._owned and stat.S_ISREG(os.fstat(self._fd).st_mode)
        self._complete = 0  # bytes of complete blocks (files this object opened)
        self._closed = False

    @property
    def name(self) -> str:
        """The output as named in messages: the path, or ``standard output``."""
        return "standard output" if self.path == STANDARD_OUTPUT else str(self.path)

    def write(self, text: str) -> None:
        """Append ``text``: whole lines, each ending in ``"\\n"``; all of them or (on failure) none.

        Raises:
            OutputWriteError: the write failed; a file this object opened keeps exactly the
                blocks written before (a pipe or terminal may have received part of the block).
            ValueError: the output was closed (its descriptor may already belong to another file).
        """
        if self._closed:
            raise ValueError(f"the {self.what} output {self.name} is closed; open a new one to write again")
        if self._failed is not None:
            raise OutputWriteError(self._failed, self.path)
        if not text:
            return
        encoded = text.encode("utf-8")
        data = memoryview(encoded)
        try:
            if self._stream is not None:
                self._stream.write(text)
                self._stream.flush()
            while self._stream is None and data:
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            self._fail(exc)
        self._complete += len(encoded)
        self.lines += text.count("\n")

    def _fail(self, exc: OSError) -> None:
        kept = f"the {self.lines} lines before are complete"
        if self._can_truncate:
            try:
                os.ftruncate(self._fd, self._complete)
            except OSError:
                kept = f"the {self.lines} lines before are complete, the last one may be cut"
        self._failed = f"cannot write {self.what} to {self.name}: {describe_os_error(exc)}; {kept}"
        raise OutputWriteError(self._failed, self.path) from None

    def close(self) -> None:
        """Make what was written durable (fsync of a file) and close it (idempotent).

        Raises:
            OutputWriteError: the file system reported a failure at sync or close.
        """
        if self._closed:
            return
        self._closed = True
        if not self._owned:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if self._failed is None:
                self._failed = (
                    f"cannot write {self.what} to {self.name}: {describe_os_error(exc)} when saving it to disk; "
                    "the file may be incomplete"
                )
                raise OutputWriteError(self._failed, self.path) from None
        finally:
            os.close(self._fd)
