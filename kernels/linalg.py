"""The 2-D matrix product of the engine's dense layers, on the array's own device.

``gemm(a, b, trans_a, trans_b)`` is ``op(a) @ op(b)``: on the CPU through SciPy's BLAS (the
library Numba's ``np.dot`` calls too), with C-ordered operands and their transposes passed
without a copy; on CUDA device arrays through :func:`kernels.cuda.matmul`, whose tiled kernel
reads the transposes in place.  Other cases (batched, 1-D, integer, mixed dtypes) use ``@``.

Why SciPy's BLAS on the CPU: two OpenBLAS thread pools in one training step fight for the
cores (each pool's workers spin for a while after a call), so a Dense product on one pool
followed by a convolution on the other made the MNIST CNN's step 2.4x slower on 2 cores
(measured: 207 -> 85 ms).

    >>> import numpy as np
    >>> gemm(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), trans_b=True).shape
    (2, 4)
"""
from __future__ import annotations

import numpy as np

__all__ = ["gemm"]

_blas = None


def _fortran_operand(a, trans):
    """(array, flag) such that BLAS's op(array) read in Fortran order is ``op(a)^T``."""
    if a.flags.c_contiguous:
        return a.T, int(trans)
    if a.flags.f_contiguous:
        return a, 1 - int(trans)
    return np.ascontiguousarray(a).T, int(trans)


def _is_device(a):
    return not isinstance(a, np.ndarray) and (hasattr(a, "copy_to_host")
                                              or hasattr(a, "__cuda_array_interface__"))


def gemm(a, b, trans_a=False, trans_b=False):
    """``op(a) @ op(b)`` with ``op`` the transpose where asked; arrays of one device."""
    if _is_device(a) or _is_device(b):
        from .cuda import xp
        a, b = xp.asarray(a), xp.asarray(b)
        if a.ndim != 2 or b.ndim != 2:  # batched or 1-D: numpy's matmul rules
            return xp.matmul(a.swapaxes(-1, -2) if trans_a else a,
                             b.swapaxes(-1, -2) if trans_b else b)
        m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
        k2, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
        if k != k2:
            raise ValueError(f"gemm: op(a) of shape {(m, k)} and op(b) of shape {(k2, n)} are "
                             f"not aligned")
        dt = np.result_type(a.dtype, b.dtype)
        a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
        out = xp.empty((m, n), dt)
        if out.size:
            if k == 0:
                out.fill(0)
            else:
                from .cuda import matmul
                matmul(a.numba_array, b.numba_array, out.numba_array, trans_a=bool(trans_a),
                       trans_b=bool(trans_b))
        return out
    global _blas
    if trans_a:
        a = np.swapaxes(a, -1, -2)
    if trans_b:
        b = np.swapaxes(b, -1, -2)
    if (a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.size == 0 or b.size == 0
            or a.dtype not in (np.float32, np.float64)):
        return a @ b
    if _blas is None:
        from scipy.linalg import blas as _blas
    fn = _blas.sgemm if a.dtype == np.float32 else _blas.dgemm
    # C = A B  <=>  C^T = B^T A^T, in Fortran order: C-ordered operands need no copy
    bt, tb = _fortran_operand(b, False)
    at, ta = _fortran_operand(a, False)
    return fn(1.0, bt, at, trans_a=tb, trans_b=ta).T
