"""Threads of the Numba backend: its thread count and the job runner its kernels share.

kernels/runtime.py applies convlab's one thread setting here (and to OpenMP and BLAS).

The kernels are ``@njit(nogil=True, cache=True)`` functions over a set of independent jobs
(each owning its part of the output), called with ``first, step`` to run the jobs first,
first + step, ...; :func:`run_jobs` runs them on Python threads.  Numba's ``parallel=True``
would do the same with ``prange``, but its parfor passes made up about half of the cold
compile of the backend (issue 5, target 7: 34 s of 68 s in float32, measured under load).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

import numba

_pool = None


def set_num_threads(n):
    """Run Numba's parallel kernels with ``n`` threads.

    Raises ValueError when ``n`` is below 1 or above ``numba.config.NUMBA_NUM_THREADS``
    (the pool size Numba started with).

    Examples
    --------
    >>> set_num_threads(1); get_num_threads()
    1
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, received {n!r}")
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise ValueError(f"set_num_threads: n must be between 1 and NUMBA_NUM_THREADS={limit}, "
                         f"received {n}")
    numba.set_num_threads(n)


def get_num_threads():
    """The number of threads Numba's parallel kernels use (an int)."""
    return numba.get_num_threads()


def run_jobs(kernel, jobs, *args, parallel=True):
    """``kernel(*args, first, step)`` on ``step = min(get_num_threads(), jobs)`` threads, thread
    t running jobs t, t + step, ... (the kernel must release the GIL: ``nogil=True``); on the
    calling thread alone when ``parallel`` is false (a thread wake-up costs more than a small
    job) or there is one thread.

    Examples
    --------
    >>> from numba import njit
    >>> @njit(nogil=True)
    ... def double(a, first, step):
    ...     for i in range(first, a.size, step):
    ...         a[i] *= 2
    >>> import numpy as np; a = np.arange(4.0); run_jobs(double, a.size, a); a.tolist()
    [0.0, 2.0, 4.0, 6.0]
    """
    global _pool
    step = max(1, min(numba.get_num_threads(), jobs)) if parallel else 1
    if step == 1:
        kernel(*args, 0, 1)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(numba.config.NUMBA_NUM_THREADS - 1,
                                   thread_name_prefix="convlab-numba")
    others = [_pool.submit(kernel, *args, t, step) for t in range(1, step)]
    try:
        kernel(*args, 0, step)          # the calling thread takes a share too
    finally:
        wait(others)                    # no job may outlive the call, even on an error
    for f in others:
        f.result()
