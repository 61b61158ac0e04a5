"""Thread count of the Numba backend's parallel kernels (``numba.set_num_threads``).

kernels/threads.py applies convlab's one thread setting here (and to OpenMP and BLAS).
"""
from __future__ import annotations

import numba


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
