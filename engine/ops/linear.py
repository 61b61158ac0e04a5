"""Matrix products: matmul (numpy semantics) and linear (the Dense layer's x @ w + b).

Backward: dA = dY @ B^T, dB = A^T @ dY.

2-D float products run on SciPy's BLAS (``scipy.linalg.blas``), the library the convolution
kernels call (Cython's cython_blas, Numba's np.dot), rather than numpy's own OpenBLAS.  Two
OpenBLAS thread pools in one training step fight for the cores: each pool's workers spin for
a while after a call, so a Dense product on numpy's pool followed by a convolution on SciPy's
made the MNIST CNN's step 2.4x slower on 2 cores (measured: 207 -> 85 ms).  Other cases
(batched, 1-D, integer, mixed dtypes) use numpy's ``@``.
"""
from __future__ import annotations

import numpy as np

from .. import device as _dev
from ..autograd import record, unbroadcast
from ..tensor import Tensor, as_tensor
from .elementwise import _pair

__all__ = ["matmul", "linear"]

_blas = None


def _fortran_operand(a):
    """(array, trans) such that op(array) is ``a.T`` and array is Fortran-ordered."""
    if a.flags.c_contiguous:
        return a.T, 0
    if a.flags.f_contiguous:
        return a, 1
    return np.ascontiguousarray(a).T, 0


def gemm(a, b):
    """``a @ b`` for 2-D arrays, on SciPy's BLAS when both are float32 or both float64.

    Computes C^T = B^T A^T in Fortran order, so C-ordered operands (and their transposed
    views) go to BLAS without a copy and the result is C-ordered.

    Examples
    --------
    >>> gemm(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)).shape
    (2, 4)
    """
    global _blas
    if (a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.size == 0 or b.size == 0
            or a.dtype not in (np.float32, np.float64)):
        return a @ b
    if _blas is None:
        from scipy.linalg import blas as _blas
    fn = _blas.sgemm if a.dtype == np.float32 else _blas.dgemm
    bt, trans_b = _fortran_operand(b)
    at, trans_a = _fortran_operand(a)
    return fn(1.0, bt, at, trans_a=trans_b, trans_b=trans_a).T


def matmul(a, b):
    """Matrix product with numpy ``@`` semantics (1-D operands, batched broadcasting).

    Examples
    --------
    >>> matmul(Tensor(np.ones((2, 3))), Tensor(np.ones((3, 4)))).shape
    (2, 4)
    """
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dim, received shapes "
                         f"{a.shape} and {b.shape}")
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != k_b:
        raise ValueError(f"matmul: a of shape {a.shape} does not match b of shape {b.shape}: "
                         f"a.shape[-1] ({a.shape[-1]}) must equal the contracted dim of b "
                         f"({k_b})")
    if _dev.any_cuda(a, b):
        return _dev.matmul(a, b)
    try:
        y = gemm(a.data, b.data)
    except ValueError:
        raise ValueError(f"matmul: batch dims of shapes {a.shape} and {b.shape} cannot be "
                         f"broadcast together") from None

    def backward(g):
        A = a.data if a.ndim > 1 else a.data[None, :]
        B = b.data if b.ndim > 1 else b.data[:, None]
        # the gradient in the promoted (matrix) layout: 1-D operands become 1-row/1-col
        G = g.reshape(np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
                      + (A.shape[-2], B.shape[-1]))
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(gemm(G, np.swapaxes(B, -1, -2)), A.shape).reshape(a.shape)
        if b.requires_grad:
            gb = unbroadcast(gemm(np.swapaxes(A, -1, -2), G), B.shape).reshape(b.shape)
        return ga, gb
    return record(Tensor._result(y), "matmul", (a, b), backward)


def linear(x, w, b=None):
    """Fully connected layer: ``x @ w + b`` with ``w`` in Keras layout (in, out).

    Parameters
    ----------
    x : Tensor, shape (..., in)
    w : Tensor, shape (in, out)
    b : Tensor, shape (out,), optional

    Returns
    -------
    Tensor, shape (..., out)

    Examples
    --------
    >>> linear(Tensor(np.ones((4, 3))), Tensor(np.ones((3, 2))), Tensor(np.zeros(2))).shape
    (4, 2)
    """
    x = as_tensor(x)
    w = as_tensor(w, like=x)
    if w.ndim != 2:
        raise ValueError(f"linear: w must have 2 dims (in, out), received shape {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[0]:
        raise ValueError(f"linear: x of shape {x.shape} does not match w of shape {w.shape}: "
                         f"expected x[..., {w.shape[0]}]")
    n_in, n_out = w.shape
    if b is not None:
        b = as_tensor(b, like=x)
        if b.shape != (n_out,):
            raise ValueError(f"linear: b of shape {b.shape} does not match w of shape "
                             f"{w.shape}: expected ({n_out},)")
    if _dev.any_cuda(x, w, b):
        return _dev.linear(x, w, b)
    x2 = x.data if x.ndim == 2 else x.data.reshape(-1, n_in)
    y = gemm(x2, w.data)
    if b is not None:
        y += b.data  # y is a fresh array
    if x.ndim != 2:
        y = y.reshape(x.shape[:-1] + (n_out,))

    def backward(g):
        g2 = g.reshape(-1, n_out)
        gx = gemm(g2, w.data.T).reshape(x.shape) if x.requires_grad else None
        gw = gemm(x2.T, g2) if w.requires_grad else None
        gb = g2.sum(axis=0) if b is not None and b.requires_grad else None
        return gx, gw, gb
    return record(Tensor._result(y), "linear", (x, w, b), backward)
