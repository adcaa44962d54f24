"""Output paths: fail before any work starts when a result cannot be written, or would destroy
an input or another result.

Every command that writes files checks them in two steps, before it loads a model or reads a frame:
:func:`check_distinct_outputs` (no output is an input, no two outputs are one file, at most one
goes to standard output) and :func:`check_writable` for each file.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Collection, Iterable, Mapping, Union

from edge_reid.errors import OutputPathError

PathLike = Union[str, "os.PathLike[str]"]

#: The path that means standard output where a command allows it (``--events -``).
STANDARD_OUTPUT = "-"


def is_standard_output(path: PathLike | None) -> bool:
    """True when ``path`` is ``"-"``, the name of standard output."""
    return path is not None and os.fspath(path) == STANDARD_OUTPUT


def _file_identity(path: PathLike) -> tuple[str, tuple[int, int] | None]:
    """The path with every link resolved (for a path that does not exist yet: its existing folders),
    and the (device, inode) pair of the file when it exists."""
    resolved = os.path.realpath(os.fspath(path))
    try:
        status = os.stat(path)
    except OSError:
        return resolved, None
    return resolved, (status.st_dev, status.st_ino)


def _is_standard_output_file(path: PathLike) -> bool:
    """True when ``path`` is the file standard output writes to (``/dev/stdout``, or the file it is redirected to)."""
    try:
        if sys.stdout is None or sys.stdout.closed:
            return False
        ours = os.fstat(sys.stdout.fileno())
        theirs = os.stat(path)
    except (OSError, ValueError, AttributeError):  # no real descriptor (a test's capture), or no such file
        return False
    return (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino)


def same_file(first: PathLike, second: PathLike) -> bool:
    """True when two paths name one file or folder.

    The same path once symbolic links and ``..`` are resolved (a path that does not exist yet
    is compared through its resolved folder), or the same device and inode (hard links, bind
    mounts, another spelling of an existing file).
    """
    path_a, inode_a = _file_identity(first)
    path_b, inode_b = _file_identity(second)
    return path_a == path_b or (inode_a is not None and inode_a == inode_b)


def is_inside(path: PathLike, folder: PathLike) -> bool:
    """True when ``folder`` is an existing folder and ``path`` lies somewhere under it (links resolved)."""
    if not os.path.isdir(folder):
        return False
    root = os.path.realpath(os.fspath(folder))
    return os.path.realpath(os.fspath(path)).startswith(root.rstrip(os.sep) + os.sep)


def check_output_folder_outside(name: str, folder: PathLike, inputs: Mapping[str, PathLike | None]) -> None:
    """Refuse an output folder inside an input folder (a data set, a folder of crops): what is
    written there would be read as part of the input next time (and listed as unreadable images).

    Args:
        name: the output folder's option, e.g. ``"--out"``.
        folder: the output folder (it need not exist yet).
        inputs: input names -> folders (None and files are skipped).

    Raises:
        OutputPathError: ``folder`` lies inside one of the input folders.
    """
    for input_name, input_folder in inputs.items():
        if input_folder is not None and is_inside(folder, input_folder):
            raise OutputPathError(
                f"{name} {folder} is inside {input_name} {input_folder}: what is written there would be read as part of "
                f"it; give {name} a folder outside it"
            )


def check_distinct_outputs(
    outputs: Mapping[str, PathLike | None],
    inputs: Mapping[str, PathLike | None] | Iterable[tuple[str, PathLike | None]] | None = None,
    standard_output: Collection[str] = (),
) -> None:
    """Refuse, before any file is touched, an output that would overwrite an input or another output.

    Args:
        outputs: each output's name in messages (its option, e.g. ``"--events"``) -> its path;
            None: not asked for.
        inputs: the same for what the command reads (a source file or folder, models, data
            folders, a gallery it loads), as a mapping or as (name, path) pairs; None paths are skipped.
            The bundled default models are always inputs (a command reads them when no model is given).
        standard_output: names of the outputs that may be ``"-"`` (standard output); at most
            one output may be.

    Raises:
        OutputPathError: one line naming the two paths: an output is the same file (or folder)
            as an input or as another output (see :func:`same_file`), an image-named file inside an
            input folder (what a folder source and a data set are read from: an existing one would be
            destroyed, a new one read as input next time; other files there, e.g. an earlier run's
            results, may be rewritten), ``"-"`` given to an output that cannot go to standard output,
            ``"-"`` while standard output is closed, or two outputs on it (``/dev/stdout`` counts).
    """
    from edge_reid.assets import DEFAULT_DETECTOR, DEFAULT_REID_MODEL
    from edge_reid.data.images import is_image_file

    files: list[tuple[str, PathLike]] = []
    on_standard_output: list[str] = []
    for name, path in outputs.items():
        if path is None:
            continue
        if is_standard_output(path):
            if name not in standard_output:
                raise OutputPathError(f"{name} cannot go to standard output (-): give a file name")
            on_standard_output.append(name)
            continue
        if _is_standard_output_file(path):  # /dev/stdout: written at its own offset, it would garble what "-" writes
            on_standard_output.append(f"{name} {os.fspath(path)}")
        files.append((name, path))
    if on_standard_output and (sys.stdout is None or getattr(sys.stdout, "closed", False)):
        raise OutputPathError(f"{on_standard_output[0]} -: standard output is closed; give a file name")
    if len(on_standard_output) > 1:
        raise OutputPathError(
            f"{' and '.join(on_standard_output)} all go to standard output (-), where only one output can: "
            "give all but one of them a file name"
        )
    pairs = inputs.items() if isinstance(inputs, Mapping) else (inputs or ())
    read = [(name, path) for name, path in pairs if path is not None and not is_standard_output(path)]
    read += [("the bundled ReID model", DEFAULT_REID_MODEL), ("the bundled detector", DEFAULT_DETECTOR)]
    for index, (name, path) in enumerate(files):
        kind = "folder" if os.path.isdir(path) else "file"
        for input_name, input_path in read:
            if same_file(path, input_path):
                harm = "writing it would destroy the input" if kind == "file" else "results would be mixed with the input"
                raise OutputPathError(
                    f"{name} {path} is the same {kind} as {input_name} {input_path}: {harm}; give {name} another path"
                )
            written = os.path.realpath(os.fspath(path))  # a link is written through: what it points to is what changes
            if kind == "file" and is_image_file(written) and is_inside(written, input_path):
                through = f" (a link to {written})" if written != os.path.abspath(os.fspath(path)) else ""
                harm = "writing it would destroy part of the input" if os.path.lexists(written) else "it would be read as part of the input"
                raise OutputPathError(
                    f"{name} {path}{through} is an image inside {input_name} {input_path}: {harm}; give {name} a path "
                    "outside that folder"
                )
        for other_name, other_path in files[:index]:
            if same_file(path, other_path):
                raise OutputPathError(
                    f"{other_name} {other_path} and {name} {path} are the same {kind}: each output needs its own path"
                )


#: Folders the checks below made in this process, outermost first: a command refused or failed after its
#: checks removes those still empty (:func:`remove_folders_left_empty`).
_made_folders: list[Path] = []


def _make_folder(folder: Path) -> None:
    """``mkdir -p``, remembering which folders it made."""
    missing = []
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate):
            break
        missing.append(candidate)
    folder.mkdir(parents=True, exist_ok=True)
    _made_folders.extend(reversed(missing))


def forget_made_folders() -> None:
    """Start a new command: folders made before are no longer this command's to remove."""
    _made_folders.clear()


def remove_folders_left_empty() -> None:
    """Remove the folders :func:`check_writable` and :func:`check_writable_folder` made that are still empty,
    deepest first: what a command that was refused or failed after its checks leaves behind."""
    while _made_folders:
        with contextlib.suppress(OSError):  # not empty (something was written), or already gone
            _made_folders.pop().rmdir()


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists (a dangling link counts as existing)."""
    return next((candidate for candidate in (path, *path.parents) if os.path.lexists(candidate)), Path("."))


def _file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing ancestor of ``folder`` (itself included) when it is not a folder, else None."""
    existing = _nearest_existing(folder)
    return None if existing.is_dir() else existing


def _probe_folder(folder: Path) -> None:
    """Create and remove a file in ``folder``.

    Raises:
        OSError: a file cannot be created there.
    """
    fd, probe = tempfile.mkstemp(prefix=".edge-reid-probe-", dir=folder)
    os.close(fd)
    os.unlink(probe)


def check_writable(path: str | Path, what: str) -> Path:
    """Fail early when ``path`` cannot be written.

    Creates missing parent folders, then creates and removes a probe file there.

    Args:
        path: the file to be written.
        what: how the file is named in the error message (e.g. ``"events"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: the path is a folder or another non-regular file (a device, pipe or
            socket: whole-file outputs are replaced atomically, which would replace the device
            itself), or its folder cannot be created or written.
    """
    target = Path(path)
    try:
        folder, special = target.is_dir(), target.exists() and not target.is_file()
    except OSError as exc:  # a name too long for the file system
        raise OutputPathError(f"cannot write {what} to {target}: {exc.strerror or exc}") from None
    if folder:
        raise OutputPathError(f"{what} path {target} is a folder; give a file name")
    if special:
        raise OutputPathError(f"{what} path {target} is not a regular file (a device, pipe or socket); give a file name")
    try:
        _make_folder(target.parent)
        _probe_folder(target.parent)
        if target.exists() and not os.access(target, os.W_OK):
            raise PermissionError(f"{target} is read-only")
    except OSError as exc:
        blocker = _file_in_the_way(target.parent)
        cause = f"{blocker} is a file, not a folder" if blocker is not None else exc.strerror or exc
        raise OutputPathError(f"cannot write {what} to {target}: {cause}") from None
    return target


def check_writable_folder(folder: str | Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and fail early when files cannot be written in it.

    Raises:
        OutputPathError: the folder cannot be created or written (one line naming it and the cause).
    """
    target = Path(folder)
    try:
        _make_folder(target)
        _probe_folder(target)
    except OSError as exc:
        blocker = _file_in_the_way(target)
        cause = f"{blocker} is a file, not a folder" if blocker is not None else exc.strerror or exc
        raise OutputPathError(f"cannot write to {what} {target}: {cause}") from None
    return target


def check_folder_can_be_made(folder: str | Path, what: str = "output folder") -> Path:
    """Fail early when ``folder`` could not be made or written, without making it.

    For outputs written only once a long job has gone ahead (an engine build): nothing is left
    behind when the job stops first. The nearest existing folder on the way (``folder`` itself
    included) must be a folder in which a probe file can be created (and is removed again);
    as :func:`check_writable_folder` but without ``mkdir``.

    Raises:
        OutputPathError: ``folder`` or a folder above it exists and is not a folder, or the
            nearest existing one cannot be written (one line naming ``folder`` and the cause).
    """
    target = Path(folder)
    blocker = _file_in_the_way(target)
    if blocker is not None:
        raise OutputPathError(f"cannot write to {what} {target}: {blocker} is a file, not a folder")
    existing = _nearest_existing(target)
    try:
        _probe_folder(existing)
    except OSError as exc:
        where = "" if existing == target else f" (its folder {existing})"
        raise OutputPathError(f"cannot write to {what} {target}{where}: {exc.strerror or exc}") from None
    return target
