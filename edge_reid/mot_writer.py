"""Writing MOTChallenge tracker rows (the format of :mod:`edge_reid.motchallenge`): the output side.

Kept apart from :mod:`edge_reid.motchallenge`, which the sources read ``seqinfo.ini`` with, so
that the source layer does not load the output layer (:mod:`edge_reid.line_output`,
:mod:`edge_reid.output_paths`) it never uses.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge_reid.line_output import LineOutput
from edge_reid.motchallenge import COLUMNS, format_row


def write_rows(path: str | os.PathLike, rows: np.ndarray) -> None:
    """Write (N, >= 7) rows (:data:`~edge_reid.motchallenge.COLUMNS` order, box as left, top, width, height) to ``path``.

    Used for rows already in MOTChallenge layout (e.g. read by :func:`~edge_reid.motchallenge.read_rows`);
    a tracker's own output goes through :class:`MotWriter`. Written as :func:`~edge_reid.motchallenge.format_row`
    writes: boxes to 0.01 px, the score to 4 decimals, ``x, y, z`` as -1 (columns beyond
    the score are not kept).
    """
    data = np.asarray(rows, np.float64).reshape(-1, np.shape(rows)[-1] if np.size(rows) else len(COLUMNS))
    with open(path, "w", encoding="utf-8") as handle:
        for row in data:
            box = (row[2], row[3], row[2] + row[4], row[3] + row[5])
            handle.write(format_row(int(row[0]), int(row[1]), box, row[6]))


class MotWriter:
    """Streams tracker rows to a MOTChallenge text file (or standard output), frame by frame.

    Each frame's rows are written at once, unbuffered (:class:`~edge_reid.line_output.LineOutput`):
    after a failed write the file holds the rows of every frame before, each whole.

    Args:
        path: the output file (created or truncated), or ``"-"`` for standard output. Check it
            first with :func:`edge_reid.output_paths.check_writable` where an early error matters.

    Raises:
        OutputPathError: the file cannot be created.
        OutputWriteError: from :meth:`write_frame` and :meth:`close`, a write failed (disk full, I/O error).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = path if str(path) == "-" else Path(path)
        self._output = LineOutput(path, "MOT results")

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._output.lines

    def write_frame(self, frame_index: int, track_ids, boxes_xyxy, scores) -> None:
        """Append the boxes of one frame.

        Args:
            frame_index: 0-based index of the frame in its source (written as ``frame_index + 1``).
            track_ids: (N,) int track ids, >= 1.
            boxes_xyxy: (N, 4) x1, y1, x2, y2 pixels.
            scores: (N,) detection confidences.
        """
        rows = [
            format_row(frame_index + 1, track_id, box, score)
            for track_id, box, score in zip(np.asarray(track_ids).tolist(), np.asarray(boxes_xyxy), np.asarray(scores).tolist())
        ]
        self._output.write("".join(rows))

    def close(self) -> None:
        """Sync and close (idempotent)."""
        self._output.close()
