"""Keep BLAS single-threaded while Numba threads each run their own small GEMMs.

The fused matcher calls BLAS ``sgemm`` (through Numba's ``np.dot``) from inside
a ``prange`` loop: one GEMM per gallery block per Numba thread. A multi-threaded
BLAS (OpenBLAS's default) would then start its own thread team inside every
Numba thread and oversubscribe the cores, which makes the search several times
slower (``python benchmarks/bench_matcher.py --variants``, column ``blas_threaded``;
docs/benchmarks.md, "The matcher's variants"). :func:`single_threaded_blas`
limits every BLAS library loaded in the process to one thread for the duration
of a parallel search and restores the previous counts afterwards.

It uses `threadpoolctl <https://github.com/joblib/threadpoolctl>`_ (the library
scikit-learn uses for the same job). Without it the search still works, only
slower where BLAS is multi-threaded.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_controller = None
_controller_failed = False
_active = 0  # searches currently inside single_threaded_blas()
_limiter = None  # threadpoolctl limiter of the outermost active search


def _get_controller():
    """The process-wide ``ThreadpoolController``, created once (None when unavailable)."""
    global _controller, _controller_failed
    if _controller is not None or _controller_failed:
        return _controller
    with _lock:
        if _controller is None and not _controller_failed:
            try:
                # Load the BLAS that Numba's np.dot calls (SciPy's) before listing libraries.
                import scipy.linalg.cython_blas  # noqa: F401
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController()
            except Exception:  # threadpoolctl missing or unable to inspect this process
                _controller_failed = True
    return _controller


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Context manager: every loaded BLAS library runs with one thread inside it.

    Process-wide (BLAS thread counts are global), so numpy calls made by other
    Python threads during the block are single-threaded too; the block lasts
    one search (milliseconds). Reference-counted: with searches overlapping in
    several Python threads, the first to enter sets the limit and the last to
    leave restores the original thread counts.
    """
    global _active, _limiter
    controller = _get_controller()
    if controller is None:
        yield
        return
    with _lock:
        if _active == 0:
            _limiter = controller.limit(limits=1, user_api="blas")
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None
