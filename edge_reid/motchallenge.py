"""MOTChallenge text files: tracker rows and sequence folders.

A tracker result is one comma-separated row per box and frame, the format of the
MOTChallenge benchmarks (A. Milan, L. Leal-Taixé et al., "MOT16: A Benchmark for
Multi-Object Tracking", 2016, section 3.3)::

    frame, id, left, top, width, height, score, x, y, z

``frame`` is 1-based (the first frame of the video is 1), ``id`` a positive
track id, the box is in pixels (top-left corner, width, height), ``score`` the
detection confidence, and ``x, y, z`` world coordinates, -1 in 2-D tracking.
Ground-truth files (``gt/gt.txt``) have the same columns with ``score`` meaning
"counted" (0: ignored by the benchmark) and class / visibility in the last ones.

A sequence folder holds ``seqinfo.ini`` (name, frame rate, length, image size)
and ``gt/gt.txt``.

This module reads (sources read ``seqinfo.ini``, evaluation reads rows) and defines a row's
text (:func:`format_row`); it imports nothing of the output layer. Writing rows to files,
a tracker's own (:class:`~edge_reid.mot_writer.MotWriter`) or rows read here
(:func:`~edge_reid.mot_writer.write_rows`), is :mod:`edge_reid.mot_writer`'s, with the sinks.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_reid.errors import DataError
from edge_reid.folders import require_folder

#: Columns of a MOTChallenge row.
COLUMNS = ("frame", "id", "left", "top", "width", "height", "score", "x", "y", "z")
#: Between a row's values: commas (the format's), spaces or tabs (as TrackEval also reads).
_FIELD_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class SequenceInfo:
    """A MOTChallenge sequence folder's ``seqinfo.ini``.

    Attributes:
        folder: the sequence folder (holds ``seqinfo.ini`` and ``gt/gt.txt``).
        name: sequence name.
        frame_rate: frames per second.
        length: number of frames; valid frame numbers are 1..length.
        width: image width in pixels (0 when not given).
        height: image height in pixels (0 when not given).
        image_dir: the folder of the frames, relative to ``folder`` (``imDir``; ``img1`` when not given).
    """

    folder: Path
    name: str
    frame_rate: float
    length: int
    width: int = 0
    height: int = 0
    image_dir: str = "img1"

    @property
    def gt_path(self) -> Path:
        """The ground-truth file, ``folder/gt/gt.txt``."""
        return self.folder / "gt" / "gt.txt"


def _ini_problem(exc: Exception) -> str:
    """What is wrong in an INI file, in a few words (configparser's own messages span lines and quote reprs)."""
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno} comes before any [section] header"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"section [{exc.section}] appears twice"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"{exc.option} appears twice in [{exc.section}]"
    if isinstance(exc, configparser.ParsingError) and exc.errors:
        return f"line {exc.errors[0][0]} is not key=value"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


#: Largest ``seqLength`` read: 1 000 000 frames is 11 hours at 25 fps (MOTChallenge's longest sequence has 3315);
#: TrackEval builds per-frame lists of this length, so a damaged value such as 10**12 would exhaust memory.
MAX_SEQUENCE_FRAMES = 1_000_000


def read_sequence_info(folder: str | os.PathLike) -> SequenceInfo:
    """Read a MOTChallenge sequence folder's ``seqinfo.ini``.

    Raises:
        DataError: the folder, ``seqinfo.ini`` or its ``[Sequence]`` fields
            (``seqLength``; ``frameRate``, ``name`` optional) are missing or invalid
            (``seqLength`` outside 1..:data:`MAX_SEQUENCE_FRAMES`, a negative ``imWidth``/``imHeight``).
    """
    folder = Path(folder)
    ini = folder / "seqinfo.ini"
    require_folder(folder, "ground-truth folder", "give a MOTChallenge sequence folder (seqinfo.ini and gt/gt.txt)")
    if not ini.is_file():
        raise DataError(f"{ini} is missing: a MOTChallenge sequence folder has seqinfo.ini and gt/gt.txt")
    invalid = f"{ini}: not a valid seqinfo.ini: expected a [Sequence] section with seqLength (the number of frames)"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ini, encoding="utf-8-sig")  # -sig: a byte-order mark (Windows Notepad writes one) is not text
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{invalid}; {_ini_problem(exc)}") from None
    if not parser.has_section("Sequence"):
        raise DataError(f"{invalid}; it has no [Sequence] section")
    section = parser["Sequence"]
    if "seqLength" not in section:
        raise DataError(f"{invalid}; its [Sequence] section has no seqLength")

    def number(key: str, kind: type):
        text = section.get(key, "").strip()
        if not text and key != "seqLength":
            return kind(0)
        try:
            return kind(text)
        except ValueError:
            raise DataError(f"{ini}: {key}={text!r} is not {'an integer' if kind is int else 'a number'}") from None

    length = number("seqLength", int)
    frame_rate = number("frameRate", float)
    width = number("imWidth", int)
    height = number("imHeight", int)
    if not 1 <= length <= MAX_SEQUENCE_FRAMES:
        raise DataError(f"{ini}: seqLength must be 1..{MAX_SEQUENCE_FRAMES} (the number of frames), got {length}")
    if width < 0 or height < 0:
        raise DataError(f"{ini}: imWidth={width} and imHeight={height} must be >= 0 (pixels)")
    return SequenceInfo(
        folder, section.get("name", folder.name) or folder.name, frame_rate, length, width, height,
        section.get("imDir", "").strip() or "img1",
    )


def read_rows(path: str | os.PathLike, what: str = "MOTChallenge file") -> np.ndarray:
    """Read a MOTChallenge text file.

    Args:
        path: the file; rows of at least 6 numbers separated by commas, spaces or tabs (missing
            ``score, x, y, z`` read as 1, -1, -1, -1; values after the 10th ignored). Blank lines and a
            byte-order mark are skipped; Windows line endings are read as any.
        what: how the file is named in error messages.

    Returns:
        (N, 10) float64 rows in file order, columns :data:`COLUMNS`.

    Raises:
        DataError: the file is missing or unreadable, a row has fewer than 6
            values or a value that is not a finite number, a frame number is
            below 1, an id is not a whole number, or a box has negative width or height.
    """
    return read_rows_with_lines(path, what)[0]


def read_rows_with_lines(path: str | os.PathLike, what: str = "MOTChallenge file") -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_rows` and, for each row, its 1-based line number in the file ((N,) int64), for
    errors found later that should name the line (a frame beyond the sequence, an id twice in a frame)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not part of the first row
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    defaults = (1.0, -1.0, -1.0, -1.0)
    rows, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = [field for field in _FIELD_SEPARATORS.split(line) if field]
        if not fields:
            continue
        if len(fields) < 6:
            raise DataError(f"{path}, line {number}: {len(fields)} values, a MOTChallenge row needs at least 6 "
                            "(frame, id, left, top, width, height)")
        try:
            values = [float(field) for field in fields[:10]]
        except ValueError:
            raise DataError(f"{path}, line {number}: not a number in {line.strip()!r}") from None
        if not np.isfinite(values).all():
            raise DataError(f"{path}, line {number}: NaN or infinite value in {line.strip()!r}")
        values.extend(defaults[len(values) - 6 :])
        if values[0] < 1 or values[0] != int(values[0]):
            raise DataError(f"{path}, line {number}: frame {values[0]:g} is not a 1-based frame number (the video's "
                            "first frame is 1; a file that counts frames from 0 needs 1 added to every frame)")
        if values[1] != int(values[1]):
            raise DataError(f"{path}, line {number}: id {values[1]:g} is not a whole number (MOTChallenge ids are integers)")
        if values[4] < 0 or values[5] < 0:
            raise DataError(f"{path}, line {number}: negative box width or height")
        rows.append(values)
        lines.append(number)
    return np.asarray(rows, np.float64).reshape(-1, len(COLUMNS)), np.asarray(lines, np.int64)


def format_row(frame: int, track_id: int, box_xyxy, score: float) -> str:
    """One tracker row, ``frame,id,left,top,width,height,score,-1,-1,-1`` (what :mod:`edge_reid.mot_writer` writes).

    Args:
        frame: 1-based frame number.
        track_id: track id, >= 1.
        box_xyxy: x1, y1, x2, y2 in pixels.
        score: detection confidence in [0, 1].
    """
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    return f"{int(frame)},{int(track_id)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{float(score):.4f},-1,-1,-1\n"
