"""cached_njit: compiled code is cached where Numba can keep it, and still compiled where it cannot."""

import numba
import pytest

from edge_reid.jit import cached_njit, lazy_cached_njit


def _function_without_a_cache_location():
    """A function whose source file Numba cannot cache beside (compiled from a string), like a
    package in a read-only folder run by a user without a writable home."""
    namespace: dict = {}
    exec(compile("def add_one(x):\n    return x + 1\n", "<no cache location>", "exec"), namespace)
    return namespace["add_one"]


def test_compiles_without_a_cache_where_numba_has_nowhere_to_keep_one():
    with pytest.raises(RuntimeError, match="no locator available"):
        numba.njit(cache=True)(_function_without_a_cache_location())  # what crashed the import before
    add_one = cached_njit()(_function_without_a_cache_location())
    assert add_one(41) == 42


def test_caches_where_it_can():
    def double(x):
        return 2 * x

    compiled = cached_njit(nogil=True)(double)
    assert compiled(21) == 42
    from numba.core.caching import FunctionCache

    assert isinstance(compiled._cache, FunctionCache), "a function in a writable folder keeps its compiled code"
    assert not isinstance(cached_njit()(_function_without_a_cache_location())._cache, FunctionCache)


def test_lazy_cached_njit_compiles_with_the_cache_at_the_first_call_only():
    def triple(x):
        return 3 * x

    lazy = lazy_cached_njit(nogil=True)(triple)
    assert lazy.__name__ == "triple" and lazy.__doc__ == triple.__doc__
    assert lazy(14) == 42 and lazy(2) == 6
    from numba.core.caching import FunctionCache
    from numba.core.dispatcher import Dispatcher

    dispatcher = lazy.dispatcher()
    assert isinstance(dispatcher, Dispatcher) and dispatcher is lazy.dispatcher(), "compiled once"
    assert dispatcher.py_func is triple and len(dispatcher.signatures) == 1
    assert isinstance(dispatcher._cache, FunctionCache), "keeps cached_njit's on-disk cache"
