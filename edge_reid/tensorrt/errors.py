"""Errors of the TensorRT layer; all are user-facing :class:`EdgeReidError` (one line, exit 2)."""

from __future__ import annotations

from edge_reid.errors import BackendUnavailableError, EdgeReidError


class EngineBuildError(EdgeReidError):
    """An engine cannot be built: bad options, an unsupported model, or TensorRT failed (e.g. out of memory)."""


class EngineNotFoundError(BackendUnavailableError):
    """No engine in ``engines/`` matches this model, TensorRT version and GPU; the message says how to build one."""


class EngineManifestError(EdgeReidError):
    """An engine manifest JSON is unreadable or incomplete."""
