"""Numba's ``njit`` with its on-disk cache where one can be kept.

``numba.njit(cache=True)`` raises at import time when it finds no folder to keep compiled code in
(the package folder and the user's cache folder both read-only: a service user without a home, a
read-only container). :func:`cached_njit` then compiles without the cache: the first call of each
function takes longer, nothing else changes. ``NUMBA_CACHE_DIR`` names a writable cache folder.

:func:`lazy_cached_njit` does the same on a function's first call, so that a module whose kernel
most callers never run does not import Numba (about a second) when it is imported.
"""

from __future__ import annotations

import functools
import threading
from typing import Callable


def cached_njit(**options) -> Callable:
    """Decorator: ``numba.njit(cache=True, **options)``, or ``numba.njit(**options)`` where Numba
    has no writable cache location for the function's file.

    Raises:
        RuntimeError: any other error Numba raises while setting up the function.
    """
    import numba

    def decorate(function: Callable) -> Callable:
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError as exc:
            if "no locator available" not in str(exc):
                raise
            return numba.njit(**options)(function)

    return decorate


def lazy_cached_njit(**options) -> Callable:
    """Decorator: :func:`cached_njit` applied on the function's first call, not at import.

    Numba is imported and the function compiled (or loaded from the cache) when it is first called;
    until then importing the module that defines it costs nothing. The decorated function can be
    called from Python only (not from other Numba-compiled functions). Its compiled dispatcher,
    once made, is ``decorated.dispatcher()``.

    Raises:
        RuntimeError: as :func:`cached_njit`, at the first call.
    """

    def decorate(function: Callable) -> Callable:
        compiled: list[Callable] = []
        lock = threading.Lock()

        def dispatcher() -> Callable:
            if not compiled:
                with lock:
                    if not compiled:
                        compiled.append(cached_njit(**options)(function))
            return compiled[0]

        @functools.wraps(function)
        def call(*args, **kwargs):
            return dispatcher()(*args, **kwargs)

        call.dispatcher = dispatcher
        return call

    return decorate
