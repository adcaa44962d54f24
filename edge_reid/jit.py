"""Numba's ``njit`` with its on-disk cache where one can be kept.

``numba.njit(cache=True)`` raises at import time when it finds no folder to keep compiled code in
(the package folder and the user's cache folder both read-only: a service user without a home, a
read-only container). :func:`cached_njit` then compiles without the cache: the first call of each
function takes longer, nothing else changes. ``NUMBA_CACHE_DIR`` names a writable cache folder.
"""

from __future__ import annotations

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
