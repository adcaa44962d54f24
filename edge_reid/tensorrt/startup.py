"""Starting TensorRT: a logger that keeps what TensorRT said, and ``Builder``/``Runtime`` creation
that turns a failed CUDA start into our error.

When CUDA cannot start (user not in the ``video``/``render`` groups, a container without the NVIDIA
runtime, a driver that is missing or too old), TensorRT logs a warning such as "CUDA initialization
failure with error: 35" and ``trt.Builder(logger)`` / ``trt.Runtime(logger)`` raise
``TypeError: pybind11::init(): factory function returned nullptr`` (the real bindings of 8.6, 10.3
and 11 do this; tests/test_real_tensorrt_bindings.py). :func:`create_builder` and
:func:`create_runtime` raise :class:`BackendUnavailableError` instead, with TensorRT's log and the
likely causes, so the CLI prints one line and exits 2.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from types import ModuleType

from edge_reid.cuda.runtime import CUDA_START_CAUSES
from edge_reid.errors import BackendUnavailableError


#: Warnings and errors a logger keeps (the newest).
KEPT_MESSAGES = 256


def make_logger(trt: ModuleType, echo: Callable[[str], None] | None = None):
    """A ``trt.ILogger`` that keeps TensorRT's warnings and errors.

    Args:
        trt: the imported ``tensorrt`` module.
        echo: also called with ``"TensorRT: <message>"`` for each warning and error (None: silent).

    Returns:
        The logger; its ``messages`` hold ``(severity, text)`` of the last :data:`KEPT_MESSAGES`
        warnings and errors (bounded: a long run keeps logging), ``errors`` the texts of errors
        only, and ``summary()`` one line of what was said.
    """

    class CapturingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)  # required for Python subclasses (pybind11 raises TypeError otherwise)
            self.messages: deque[tuple[int, str]] = deque(maxlen=KEPT_MESSAGES)

        def log(self, severity, msg) -> None:
            level = int(severity)
            if level <= int(trt.ILogger.Severity.WARNING):
                self.messages.append((level, str(msg)))
                if echo is not None:
                    echo(f"TensorRT: {msg}")

        @property
        def errors(self) -> list[str]:
            return [text for level, text in self.messages if level <= int(trt.ILogger.Severity.ERROR)]

        def summary(self, limit: int = 3) -> str:
            """The last ``limit`` warnings/errors on one line, or "nothing"."""
            texts = [" ".join(text.split()) for _, text in list(self.messages)[-limit:]]
            return " | ".join(texts) if texts else "nothing"

    return CapturingLogger()


def _start(factory, what: str, logger):
    try:
        created = factory(logger)
    except TypeError as exc:  # pybind11: "factory function returned nullptr"
        raise BackendUnavailableError(
            f"TensorRT cannot start CUDA ({what}: {exc}); TensorRT said: {logger.summary()}; {CUDA_START_CAUSES}"
        ) from None
    if created is None:
        raise BackendUnavailableError(f"TensorRT returned no {what}; TensorRT said: {logger.summary()}; {CUDA_START_CAUSES}")
    return created


def create_builder(trt: ModuleType, logger):
    """``trt.Builder(logger)``.

    Raises:
        BackendUnavailableError: TensorRT could not start CUDA; names TensorRT's log and the likely causes.
    """
    return _start(trt.Builder, "trt.Builder", logger)


def create_runtime(trt: ModuleType, logger):
    """``trt.Runtime(logger)``.

    Raises:
        BackendUnavailableError: TensorRT could not start CUDA; names TensorRT's log and the likely causes.
    """
    return _start(trt.Runtime, "trt.Runtime", logger)
