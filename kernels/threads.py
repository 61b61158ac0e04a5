"""One thread setting for numba, OpenMP (Cython) and BLAS.

``set_num_threads(n)`` (or CONVLAB_NUM_THREADS) applies to every backend that is loaded and
to every backend loaded later, and limits the BLAS pool through threadpoolctl, so Numba
threads, OpenMP threads and BLAS threads never oversubscribe the cores.
"""
import os
import warnings

_threads = None
_blas_limit = None


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def max_threads():
    """The most threads convlab will start: the cores this process may run on, and no more
    than a quarter of the user's process limit (RLIMIT_NPROC counts threads on Linux).

    More threads than cores only slow CPU-bound kernels down, and too many kill the process:
    libgomp exits with "Thread creation failed" from about 32,400 threads (and from 100 for
    a user limited to 200 processes), the Cython kernels segfault from 65,536.
    """
    limit = _cores()
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
        if soft != resource.RLIM_INFINITY and soft > 0:
            limit = min(limit, max(1, soft // 4))
    except (ImportError, AttributeError, ValueError, OSError):
        pass
    return max(1, limit)


def _clamp(n, source):
    top = max_threads()
    if n > top:
        warnings.warn(f"{source}: {n} threads requested, using {top} (the cores this process "
                      f"may run on, and at most a quarter of its process limit)",
                      RuntimeWarning, stacklevel=3)
        return top
    return n


def _default():
    env = os.environ.get("CONVLAB_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"CONVLAB_NUM_THREADS must be a positive int, received {env!r}") \
                from None
        if n >= 1:
            return _clamp(n, "CONVLAB_NUM_THREADS")
        raise ValueError(f"CONVLAB_NUM_THREADS must be a positive int, received {env!r}")
    return max_threads()


def get_num_threads():
    """The thread count convlab runs its kernels with."""
    global _threads
    if _threads is None:
        _threads = _default()
    return _threads


def set_num_threads(n):
    """Use ``n`` threads in numba, OpenMP and BLAS.

    ``n`` above :func:`max_threads` is lowered to it with a RuntimeWarning (more threads than
    cores cannot help, and thousands make libgomp end the process).

    >>> set_num_threads(1); get_num_threads()
    1
    """
    global _threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, received {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, received {n}")
    _threads = _clamp(n, "set_num_threads")
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
