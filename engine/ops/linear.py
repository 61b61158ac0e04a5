"""Matrix products: matmul (numpy semantics) and linear (the Dense layer's x @ w + b).

Backward: dA = dY @ B^T, dB = A^T @ dY, through :func:`kernels.linalg.gemm`, which reads the
transposes in place on either device (SciPy's BLAS on the CPU, the CUDA tiled kernel on cuda).
"""
from __future__ import annotations

import numpy as np

from kernels.linalg import gemm

from ..device import same_device
from ..autograd import record, unbroadcast
from ..tensor import Tensor, as_tensor
from .elementwise import _pair

__all__ = ["matmul", "linear"]

def matmul(a, b):
    """Matrix product with numpy ``@`` semantics (1-D operands, batched broadcasting).

    Examples
    --------
    >>> matmul(Tensor(np.ones((2, 3))), Tensor(np.ones((3, 4)))).shape
    (2, 4)
    """
    a, b = _pair(a, b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 dim, received shapes "
                         f"{a.shape} and {b.shape}")
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != k_b:
        raise ValueError(f"matmul: a of shape {a.shape} does not match b of shape {b.shape}: "
                         f"a.shape[-1] ({a.shape[-1]}) must equal the contracted dim of b "
                         f"({k_b})")
    try:
        y = gemm(a.data, b.data)
    except ValueError:
        raise ValueError(f"matmul: batch dims of shapes {a.shape} and {b.shape} cannot be "
                         f"broadcast together") from None

    def backward(g):
        A = a.data if a.ndim > 1 else a.data.reshape(1, -1)
        B = b.data if b.ndim > 1 else b.data.reshape(-1, 1)
        # the gradient in the promoted (matrix) layout: 1-D operands become 1-row/1-col
        G = g.reshape(np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
                      + (A.shape[-2], B.shape[-1]))
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(gemm(G, B, trans_b=True), A.shape).reshape(a.shape)
        if b.requires_grad:
            gb = unbroadcast(gemm(A, G, trans_a=True), B.shape).reshape(b.shape)
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
    same_device("linear", x, w, b)
    x2 = x.data if x.ndim == 2 else x.data.reshape(-1, n_in)
    y = gemm(x2, w.data)
    if b is not None:
        y += b.data  # y is a fresh array
    if x.ndim != 2:
        y = y.reshape(x.shape[:-1] + (n_out,))

    def backward(g):
        g2 = g.reshape(-1, n_out)
        gx = gemm(g2, w.data, trans_b=True).reshape(x.shape) if x.requires_grad else None
        gw = gemm(x2, g2, trans_a=True) if w.requires_grad else None
        gb = g2.sum(axis=0) if b is not None and b.requires_grad else None
        return gx, gw, gb
    return record(Tensor._result(y), "linear", (x, w, b), backward)
