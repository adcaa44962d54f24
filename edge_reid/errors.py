"""Errors (and warnings) that edge-reid raises for bad input.

Every error a user can cause (a missing file, a model of the wrong shape, an
unwritable path) is an :class:`EdgeReidError`. The CLI prints its message on one
line and exits with code 2, with no traceback; the Python API lets it propagate.
An output that fails while being written (:class:`OutputWriteError`) exits with 3.
"""

from __future__ import annotations

import os
import sys


class EdgeReidError(Exception):
    """Base class of every user-facing error; ``str(err)`` is a one-line message."""

    exit_code = 2


class ModelError(EdgeReidError):
    """A model file is missing, unreadable, not a model, of the wrong shape, or gives NaN/Inf."""


class SourceError(EdgeReidError):
    """A frame source (video, camera, URL, pipeline, folder) cannot be opened."""


class OutputPathError(EdgeReidError):
    """An output path cannot be written, or is an input or another output; raised before any work starts."""


class OutputWriteError(EdgeReidError):
    """Writing an output failed during the work (disk full, I/O error, a video writer that wrote nothing).

    What was written before stays valid (whole lines, the last saved gallery). The CLI
    prints the message on one line and exits with code 3.

    Attributes:
        path: the file that could not be written (``"-"``: standard output), or None.
        summary: the :class:`~edge_reid.summary.RunSummary` of the run that failed, where
            :class:`~edge_reid.runner.Runner` raised it (it records the error); else None.
    """

    exit_code = 3

    def __init__(self, message: str, path=None) -> None:
        super().__init__(message)
        self.path = path
        self.summary = None


class BackendUnavailableError(EdgeReidError):
    """A requested inference backend (e.g. TensorRT) is not installed or has no device."""


class DataError(EdgeReidError):
    """A dataset folder has no usable image, or a data file is corrupt."""


class MissingDependencyError(EdgeReidError):
    """An optional package a feature needs (e.g. ``trackeval`` for ``eval-mot``) is not installed."""


class EdgeReidWarning(UserWarning):
    """Base class of edge-reid's warnings; the CLI prints each as one ``edge-reid: warning:`` line."""


class ModelSpecWarning(EdgeReidWarning):
    """A model runs on an assumed spec (no built-in spec matches its name, no sidecar JSON)."""


class GalleryWarning(EdgeReidWarning):
    """A gallery file records no model, so whether its embeddings are comparable with this model's is not known."""


class TimestampWarning(EdgeReidWarning):
    """Frame times that cannot be right: a clock that stands still frame after frame, or times in
    milliseconds or nanoseconds where seconds are expected."""


def caller_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn`, called in the same function, that names the
    first line outside the edge_reid package: the user's call, however deep inside edge_reid the
    warning is raised (``Pipeline.process`` -> ``Tracker.update`` -> ...)."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1  # the function that will call warnings.warn: stacklevel 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level
