"""Errors (and warnings) that edge-reid raises for bad input.

Every error a user can cause (a missing file, a model of the wrong shape, an
unwritable path) is an :class:`EdgeReidError`. The CLI prints its message on one
line and exits with code 2, with no traceback; the Python API lets it propagate.
"""

from __future__ import annotations


class EdgeReidError(Exception):
    """Base class of every user-facing error; ``str(err)`` is a one-line message."""

    exit_code = 2


class ModelError(EdgeReidError):
    """A model file is missing, unreadable, not a model, of the wrong shape, or gives NaN/Inf."""


class SourceError(EdgeReidError):
    """A frame source (video, camera, URL, pipeline, folder) cannot be opened."""


class OutputPathError(EdgeReidError):
    """An output path cannot be written; raised before any work starts."""


class BackendUnavailableError(EdgeReidError):
    """A requested inference backend (e.g. TensorRT) is not installed or has no device."""


class DataError(EdgeReidError):
    """A dataset folder has no usable image, or a data file is corrupt."""


class MissingDependencyError(EdgeReidError):
    """An optional package a feature needs (e.g. ``trackeval`` for ``eval-mot``) is not installed."""


class ModelSpecWarning(UserWarning):
    """A model runs on an assumed spec (no built-in spec matches its name, no sidecar JSON).

    The CLI prints it as one ``edge-reid: warning:`` line.
    """
