"""Numba's ``njit`` with its on-disk cache where one can be kept.

``numba.njit(cache=True)`` raises at import time when it finds no folder to keep compiled code in
(the package folder and the user's cache folder both read-only: a service user without a home, a
read-only container), and raises from a function's first call when a cache file is damaged (a power
cut while it was written). :func:`cached_njit` then keeps the compiled code in ``numba/`` of
edge-reid's cache folder (:func:`edge_reid.cache_folder.cache_dir`, e.g. ``EDGE_REID_CACHE_DIR``);
where that cannot be written either it compiles without a cache (the first call of each function
takes longer, measured in docs/caches.md; :func:`~edge_reid.cache_folder.warn_uncached` says so once). Over a damaged file
it compiles again. ``NUMBA_CACHE_DIR``, Numba's own setting, names a writable cache folder too.

:func:`lazy_cached_njit` does the same on a function's first call, so that a module whose kernel
most callers never run does not import Numba (about a second) when it is imported.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import Callable

from edge_reid.cache_folder import cache_file, folder_trust_problem, warn_uncached, writable_cache_folder


def cached_njit(**options) -> Callable:
    """Decorator: ``numba.njit(**options)`` keeping its compiled code on disk as ``cache=True`` does, in
    the first writable place of Numba's (``NUMBA_CACHE_DIR``, the package's ``__pycache__``, the user's
    cache folder) or else of edge-reid's (``numba/`` of :func:`~edge_reid.cache_folder.cache_dir`); not
    at all where none can be written (:func:`~edge_reid.cache_folder.warn_uncached` says so once). A place
    another user could write is passed over (:func:`~edge_reid.cache_folder.folder_trust_problem`): Numba's
    cache files are pickles, which run code when loaded.

    A cache file that cannot be read (cut short by a power loss, zeroed, unreadable, a folder) is a
    cache miss: the function is compiled again and the file rewritten, where Numba's own ``cache=True``
    raised its unpickling or OS error from the first call of the function at every start.

    Warns:
        EdgeReidWarning: once per process, where the compiled code cannot be kept on disk (any error Numba
            raises while setting up its cache: the function is then compiled at every start).
    """
    import numba

    def decorate(function: Callable) -> Callable:
        dispatcher = numba.njit(**options)(function)
        try:
            cache_class = _tolerant_cache_class()
        except Exception:  # noqa: BLE001 - Numba's internals moved (another Numba version): its own cache=True
            cache_class = None
        try:
            if cache_class is None:
                dispatcher.enable_caching()
            else:
                dispatcher._cache = cache_class(dispatcher.py_func)  # what Dispatcher.enable_caching does
        except Exception as exc:  # noqa: BLE001 - no writable place ("no locator available"), or Numba's internals moved
            writable = writable_cache_folder("numba") is not None  # then not for want of a folder: say what Numba said
            warn_uncached("Numba kernel cache", f"{exc}" if writable else "")
        return dispatcher

    return decorate


@functools.lru_cache(maxsize=1)
def _tolerant_cache_class() -> type:
    """Numba's ``FunctionCache`` with edge-reid's cache folder as the last place to keep code, whose
    damaged files are compiled again rather than raised (see :func:`cached_njit`)."""
    from numba.core import caching

    class EdgeReidFolderLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        """``numba/<source folder>_<hash>`` in edge-reid's cache folder, as ``NUMBA_CACHE_DIR`` lays it out."""

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(str(cache_file("numba")), self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self) -> str:
            return self._cache_path

        @classmethod
        def from_function(cls, py_func, py_file):
            return None if writable_cache_folder("numba") is None else super().from_function(py_func, py_file)

    user_wide = getattr(caching, "UserWideCacheLocator", None) or caching._UserWideCacheLocator

    class UserWideLocatorWithAHome(user_wide):
        """Numba's ``~/.cache/numba``, passed over where there is no home: ``os.path.expanduser`` then leaves
        ``~`` as it is, and Numba made a folder named ``~`` in the working folder (a user id without a passwd
        entry and no ``HOME``: ``docker run --user 4242``)."""

        @classmethod
        def from_function(cls, py_func, py_file):
            if not os.path.isabs(cls(py_func, py_file).get_cache_path()):
                return None
            return super().from_function(py_func, py_file)

    def only_where_no_one_else_writes(locator_class: type) -> type:
        """``locator_class`` passed over where another user could write its folder (its files are pickles, run
        when loaded: :func:`~edge_reid.cache_folder.folder_trust_problem`), e.g. a shared ``XDG_CACHE_HOME``."""

        class Trusted(locator_class):
            @classmethod
            def from_function(cls, py_func, py_file):
                locator = super().from_function(py_func, py_file)
                if locator is not None and folder_trust_problem(locator.get_cache_path()):
                    return None
                return locator

        Trusted.__name__ = Trusted.__qualname__ = f"Trusted{locator_class.__name__}"
        return Trusted

    class Impl(caching.FunctionCache._impl_class):
        _locator_classes = [only_where_no_one_else_writes(locator) for locator in (
            *(UserWideLocatorWithAHome if locator is user_wide else locator for locator in caching.FunctionCache._impl_class._locator_classes),
            EdgeReidFolderLocator,
        )]

    class TolerantFunctionCache(caching.FunctionCache):
        _impl_class = Impl

        def load_overload(self, sig, target_context):
            try:
                return super().load_overload(sig, target_context)
            except Exception:  # noqa: BLE001 - a damaged index or data file: compile again, starting a new index
                with contextlib.suppress(Exception):
                    self.flush()
                return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except Exception as exc:  # noqa: BLE001 - a full disk, a folder in a file's place: compile next time too
                warn_uncached("Numba kernel cache", f"{type(exc).__name__}: {exc}")

    return TolerantFunctionCache


def lazy_cached_njit(**options) -> Callable:
    """Decorator: :func:`cached_njit` applied on the function's first call, not at import.

    Numba is imported and the function compiled (or loaded from the cache) when it is first called;
    until then importing the module that defines it costs nothing. The decorated function can be
    called from Python only (not from other Numba-compiled functions). Its compiled dispatcher,
    once made, is ``decorated.dispatcher()``.

    Warns:
        EdgeReidWarning: as :func:`cached_njit`, at the first call.
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
