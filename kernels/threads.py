"""One thread setting for numba, OpenMP (Cython) and BLAS.

``set_num_threads(n)`` (or CONVLAB_NUM_THREADS) applies to every backend that is loaded and
to every backend loaded later, and limits the BLAS pool through threadpoolctl, so Numba
threads, OpenMP threads and BLAS threads never oversubscribe the cores.
"""
import os

_threads = None
_blas_limit = None


def _default():
    env = os.environ.get("CONVLAB_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"CONVLAB_NUM_THREADS must be a positive int, received {env!r}") \
                from None
        if n >= 1:
            return n
        raise ValueError(f"CONVLAB_NUM_THREADS must be a positive int, received {env!r}")
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def get_num_threads():
    """The thread count convlab runs its kernels with."""
    global _threads
    if _threads is None:
        _threads = _default()
    return _threads


def set_num_threads(n):
    """Use ``n`` threads in numba, OpenMP and BLAS."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, received {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, received {n}")
    _threads = n
    from . import backends
    for name in backends.names():
        mod = backends._loaded.get(name)
        if mod is not None:
            apply(mod)
    _limit_blas()


def _limit_blas():
    """Limit every BLAS loaded so far (numpy's and scipy's OpenBLAS are separate libraries:
    numba's np.dot and Cython's sgemm use scipy's)."""
    global _blas_limit
    from threadpoolctl import threadpool_limits
    _blas_limit = threadpool_limits(limits=get_num_threads(), user_api="blas")


def apply(mod):
    """Apply the current setting to a freshly loaded backend module (and to the BLAS it may
    have loaded) when the user chose a thread count."""
    n = get_num_threads()
    if _blas_limit is not None or os.environ.get("CONVLAB_NUM_THREADS"):
        _limit_blas()
    try:
        mod.set_num_threads(n)
    except ValueError:
        # numba refuses more threads than it was started with (NUMBA_NUM_THREADS)
        import numba
        mod.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
