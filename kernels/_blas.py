"""Entry points of numpy's own BLAS, for the compiled backends.

numpy and SciPy wheels each bundle an OpenBLAS: two libraries, two thread pools.  Every GEMM
convlab runs from Python goes through numpy (``np.dot`` / ``np.matmul``); the Cython im2col
calls BLAS from C, and by default would reach SciPy's copy through ``scipy.linalg.cython_blas``.
Pointing it at numpy's copy instead keeps one BLAS (one thread pool, one spin-wait policy) in
the process, and numpy's build is the faster one here: float32 GEMM 40x500x12800 (the MNIST
net's second convolution), 2 threads, 117 GFLOP/s against 72 for SciPy's (OpenBLAS 0.3.31
against 0.3.30, both "Haswell" kernels on this AMD EPYC).

:func:`gemm_pointers` finds the Fortran ``sgemm``/``dgemm`` of numpy's BLAS when it is an
OpenBLAS with 64-bit integers (numpy >= 2 wheels: ``scipy_sgemm_64_``).  Anything else (a numpy
built on MKL or Accelerate, a stripped library) gives None, and the caller keeps SciPy's BLAS.
"""
from __future__ import annotations

import ctypes
import functools
import os

__all__ = ["gemm_pointers", "thread_pointers", "describe"]

# Fortran GEMM symbols with 64-bit integer arguments, most specific first.
_SYMBOLS = (("scipy_sgemm_64_", "scipy_dgemm_64_"), ("sgemm_64_", "dgemm_64_"))


def _numpy_blas_path():
    """The file of the BLAS library numpy loaded, or None."""
    import numpy as np
    from threadpoolctl import threadpool_info

    root = os.path.dirname(os.path.dirname(os.path.realpath(np.__file__)))
    for info in threadpool_info():
        path = os.path.realpath(info.get("filepath") or "")
        if (info.get("user_api") == "blas" and info.get("internal_api") == "openblas"
                and os.path.basename(os.path.dirname(path)) in ("numpy.libs", ".dylibs")
                and path.startswith(root)):
            return path
    return None


@functools.lru_cache(maxsize=None)
def gemm_pointers():
    """(sgemm address, dgemm address, library path) of numpy's ILP64 OpenBLAS, or None.

    The functions have the reference Fortran signature with 64-bit integers:
    ``gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)``, every argument
    by pointer, column-major operands.  Set ``CONVLAB_SCIPY_BLAS=1`` to refuse them.
    """
    if os.environ.get("CONVLAB_SCIPY_BLAS") == "1":
        return None
    try:
        path = _numpy_blas_path()
        if path is None:
            return None
        lib = ctypes.CDLL(path)
    except (ImportError, OSError):
        return None
    for s_name, d_name in _SYMBOLS:
        try:
            s, d = getattr(lib, s_name), getattr(lib, d_name)
        except AttributeError:
            continue
        return (ctypes.cast(s, ctypes.c_void_p).value, ctypes.cast(d, ctypes.c_void_p).value,
                path)
    return None


# C API of OpenBLAS's thread count: void set(int), int get(void).
_THREAD_SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                   ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                   ("openblas_set_num_threads", "openblas_get_num_threads"))


@functools.lru_cache(maxsize=None)
def thread_pointers():
    """(set_num_threads address, get_num_threads address) of the OpenBLAS whose GEMMs
    :func:`gemm_pointers` gives, or None.  The Cython im2col uses them to run one image's GEMM
    per team thread on a single-threaded BLAS."""
    ptrs = gemm_pointers()
    if ptrs is None:
        return None
    try:
        lib = ctypes.CDLL(ptrs[2])
    except OSError:
        return None
    for set_name, get_name in _THREAD_SYMBOLS:
        try:
            setter, getter = getattr(lib, set_name), getattr(lib, get_name)
        except AttributeError:
            continue
        return (ctypes.cast(setter, ctypes.c_void_p).value,
                ctypes.cast(getter, ctypes.c_void_p).value)
    return None


def describe():
    """One line for ``convlab info``: which BLAS the compiled backends call."""
    ptrs = gemm_pointers()
    if ptrs is None:
        return "SciPy's (scipy.linalg.cython_blas)"
    return f"numpy's ({os.path.basename(ptrs[2])}, ILP64)"
