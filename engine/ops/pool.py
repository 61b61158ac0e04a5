"""Pooling over 1-3 spatial dims (max, avg, sum, l2) and global pooling, through kernels.

avg divides by the full window volume (padding counts as zeros); l2 is sqrt(sum x^2); max
routes each window's gradient to its first maximal element.
"""
from __future__ import annotations

import numpy as np

import kernels
from kernels.params import pool_params

from ..device import array_module
from ..autograd import record
from ..tensor import Tensor, as_tensor

__all__ = ["pool", "global_pool", "global_avg_pool", "global_max_pool",
           "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "sum_pool1d", "sum_pool2d", "sum_pool3d", "l2_pool1d", "l2_pool2d", "l2_pool3d"]

_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def pool(x, kind, size, stride=None, padding=0, op="pool"):
    """Pool ``x`` (N, C, *spatial) with windows of ``size``.

    Parameters
    ----------
    x : Tensor, shape (N, C, *spatial), 1-3 spatial dims
    kind : "max", "avg", "sum" or "l2"
    size : int or tuple
    stride : int or tuple, default ``size``
    padding : int, tuple, (lo, hi) pairs, "valid" or "same" (Keras: out = ceil(in / stride))

    Returns
    -------
    Tensor, shape (N, C, *out) with ``out = floor((in + lo + hi - size) / stride) + 1``.

    Examples
    --------
    >>> pool(Tensor(np.arange(16.0).reshape(1, 1, 4, 4)), "max", 2).shape
    (1, 1, 2, 2)
    """
    x = as_tensor(x)
    if kind not in ("max", "avg", "sum", "l2"):
        raise ValueError(f"{op}: kind must be 'max', 'avg', 'sum' or 'l2', received {kind!r}")
    params = pool_params(x.shape, size, stride, padding, op=op)
    del params  # validated here, before any kernel runs
    xp = array_module(x)  # kernels take and return the arrays of either device
    args = dict(stride=stride, padding=padding)
    y = xp.asarray(kernels.pool(x.data, kind, size, **args))
    return record(Tensor._result(y), op, (x,),
                  lambda g: (xp.asarray(kernels.pool_grad(g, x.data, kind, size, **args)),))


def _make_pool(kind, nd):
    op = f"{kind}_pool{nd}d"

    def fn(x, size, stride=None, padding=0):
        x = as_tensor(x)
        if x.ndim != nd + 2:
            raise ValueError(f"{op}: x must have {nd + 2} dims {_LAYOUT[nd]}, received shape "
                             f"{x.shape}")
        return pool(x, kind, size, stride, padding, op=op)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = (f"{kind} pooling over {nd} spatial dim(s): x {_LAYOUT[nd]}; see "
                  f":func:`pool` for size, stride (default size) and padding.")
    return fn


max_pool1d, max_pool2d, max_pool3d = (_make_pool("max", n) for n in (1, 2, 3))
avg_pool1d, avg_pool2d, avg_pool3d = (_make_pool("avg", n) for n in (1, 2, 3))
sum_pool1d, sum_pool2d, sum_pool3d = (_make_pool("sum", n) for n in (1, 2, 3))
l2_pool1d, l2_pool2d, l2_pool3d = (_make_pool("l2", n) for n in (1, 2, 3))


def global_pool(x, kind, op="global_pool"):
    """Pool over every spatial position: (N, C, *spatial) -> (N, C).

    Examples
    --------
    >>> global_pool(Tensor(np.ones((2, 3, 4, 4))), "avg").shape
    (2, 3)
    """
    x = as_tensor(x)
    if kind not in ("max", "avg", "sum", "l2"):
        raise ValueError(f"{op}: kind must be 'max', 'avg', 'sum' or 'l2', received {kind!r}")
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{op}: x must have 3, 4 or 5 dims (N, C, *spatial), received shape "
                         f"{x.shape}")
    xp = array_module(x)
    y = xp.asarray(kernels.global_pool(x.data, kind))
    expand = x.shape[:2] + (1,) * (x.ndim - 2)
    count = int(np.prod(x.shape[2:]))

    def backward(g):
        g = g.reshape(expand)
        if kind == "avg":
            return (xp.broadcast_to(g / count, x.shape),)
        if kind == "sum":
            return (xp.broadcast_to(g, x.shape),)
        return (xp.asarray(kernels.pool_grad(g, x.data, kind, x.shape[2:])),)
    return record(Tensor._result(y), op, (x,), backward)


def global_avg_pool(x):
    """Mean over every spatial position: (N, C, *spatial) -> (N, C)."""
    return global_pool(x, "avg", op="global_avg_pool")


def global_max_pool(x):
    """Maximum over every spatial position: (N, C, *spatial) -> (N, C)."""
    return global_pool(x, "max", op="global_max_pool")
