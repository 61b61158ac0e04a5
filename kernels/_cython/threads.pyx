# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""The OpenMP thread count used by every Cython kernel's prange."""
cimport openmp


def set_num_threads(n):
    """Use ``n`` (>= 1) OpenMP threads in later Cython kernels (omp_set_num_threads)."""
    if not isinstance(n, int) or isinstance(n, bool):
        try:
            n = n.__index__()
        except AttributeError:
            raise TypeError(f"cython set_num_threads: n must be an int, received {n!r}") \
                from None
    if n < 1:
        raise ValueError(f"cython set_num_threads: n must be >= 1, received {n}")
    openmp.omp_set_num_threads(n)


def get_num_threads():
    """The number of OpenMP threads the next Cython kernel will use (omp_get_max_threads)."""
    return openmp.omp_get_max_threads()
