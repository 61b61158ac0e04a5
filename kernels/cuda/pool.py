"""Pooling on the GPU: max, avg, sum and l2, forward and backward, as gathers.

Kind codes (kernels.backends.POOL_KINDS): 0 max, 1 avg (divides by the full window volume),
2 sum, 3 l2 (``sqrt(sum x^2)``).  Forward runs one thread per output element.  Backward runs
one thread per (padded) input element and sums over the windows that contain it, so
overlapping windows need no atomics; for max it recomputes each window's argmax and takes
the gradient only where that is itself.  As in the CPU backends, a window holding a NaN gives
NaN and routes its gradient to its first NaN; otherwise to the first maximal element in
(kd, kh, kw) scan order.
"""
from __future__ import annotations

import math

import numpy as np  # noqa: F401  (the examples below)
from numba import cuda

from .. import plan
from ._device import device_io, launch, unravel5

MAX, AVG, SUM, L2 = 0, 1, 2, 3


@cuda.jit(device=True)
def _argmax(xp, n, c, d0, h0, w0, kd_n, kh_n, kw_n):
    """(d, h, w) of the first maximal element of a window, or of its first NaN."""
    bd, bh, bw = d0, h0, w0
    best = xp[n, c, d0, h0, w0]
    if best != best:
        return bd, bh, bw
    for kd in range(kd_n):
        for kh in range(kh_n):
            for kw in range(kw_n):
                v = xp[n, c, d0 + kd, h0 + kh, w0 + kw]
                if v != v:
                    return d0 + kd, h0 + kh, w0 + kw
                if v > best:
                    best = v
                    bd, bh, bw = d0 + kd, h0 + kh, w0 + kw
    return bd, bh, bw


@cuda.jit(cache=True)
def _forward(xp, y, kind, kd_n, kh_n, kw_n, sd, sh, sw, zero):
    c_n, od_n, oh_n, ow_n = y.shape[1], y.shape[2], y.shape[3], y.shape[4]
    for idx in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, c, od, oh, ow = unravel5(idx, c_n, od_n, oh_n, ow_n)
        d0, h0, w0 = od * sd, oh * sh, ow * sw
        if kind == MAX:
            bd, bh, bw = _argmax(xp, n, c, d0, h0, w0, kd_n, kh_n, kw_n)
            y[n, c, od, oh, ow] = xp[n, c, bd, bh, bw]
            continue
        s = zero
        for kd in range(kd_n):
            for kh in range(kh_n):
                for kw in range(kw_n):
                    v = xp[n, c, d0 + kd, h0 + kh, w0 + kw]
                    s += v * v if kind == L2 else v
        if kind == AVG:
            y[n, c, od, oh, ow] = s / (kd_n * kh_n * kw_n)
        elif kind == L2:
            y[n, c, od, oh, ow] = math.sqrt(s)
        else:
            y[n, c, od, oh, ow] = s


@cuda.jit(device=True)
def _windows(i, k, s, o_n):
    """[lo, hi): the windows o (o*s <= i < o*s + k, 0 <= o < o_n) containing element i."""
    t = i - k + 1
    lo = 0 if t <= 0 else (t + s - 1) // s
    hi = i // s + 1
    return lo, (hi if hi < o_n else o_n)  # (no min(): keep to builtins every CUDA target has)


@cuda.jit(cache=True)
def _backward(gy, xp, y, gxp, kind, kd_n, kh_n, kw_n, sd, sh, sw, zero):
    od_n, oh_n, ow_n = gy.shape[2], gy.shape[3], gy.shape[4]
    c_n, d_n, h_n, w_n = gxp.shape[1], gxp.shape[2], gxp.shape[3], gxp.shape[4]
    for idx in range(cuda.grid(1), gxp.size, cuda.gridsize(1)):
        n, c, d, h, x = unravel5(idx, c_n, d_n, h_n, w_n)
        v = xp[n, c, d, h, x]
        acc = zero
        od_lo, od_hi = _windows(d, kd_n, sd, od_n)
        oh_lo, oh_hi = _windows(h, kh_n, sh, oh_n)
        ow_lo, ow_hi = _windows(x, kw_n, sw, ow_n)
        for od in range(od_lo, od_hi):
            for oh in range(oh_lo, oh_hi):
                for ow in range(ow_lo, ow_hi):
                    g = gy[n, c, od, oh, ow]
                    if kind == MAX:
                        bd, bh, bw = _argmax(xp, n, c, od * sd, oh * sh, ow * sw,
                                             kd_n, kh_n, kw_n)
                        if bd == d and bh == h and bw == x:
                            acc += g
                    elif kind == L2:
                        yv = y[n, c, od, oh, ow]
                        if yv != 0:
                            acc += g * v / yv
                    else:
                        acc += g
        if kind == AVG:
            gxp[n, c, d, h, x] = acc / (kd_n * kh_n * kw_n)
        else:
            gxp[n, c, d, h, x] = acc


def _check(op, names, arrays, kind, kd, kh, kw, sd, sh, sw):
    """The planner's checks (kernels.plan.pool_call): (dtype, [kind, window, strides])."""
    dt, kind, k, s = plan.pool_call(op, names, arrays, kind, kd, kh, kw, sd, sh, sw,
                                    device=True)
    return dt, [kind, *k, *s]


def pool_forward(xp, y, kind, kd, kh, kw, sd, sh, sw):
    """Pool windows of the padded input ``xp`` into ``y``, one thread per output: the
    contract's pool_forward (kernels/backends.py) on NumPy or CUDA device arrays.

    >>> xp = np.arange(4.0).reshape(1, 1, 1, 1, 4); y = np.empty((1, 1, 1, 1, 2))
    >>> pool_forward(xp, y, 0, 1, 1, 2, 1, 1, 2); y.ravel().tolist()
    [1.0, 3.0]
    """
    dtype, ints = _check("pool_forward", ("xp", "y"), (xp, y), kind, kd, kh, kw, sd, sh, sw)
    with device_io((xp,), (y,)) as (dxp, dy):
        launch(_forward, dy.size, dxp, dy, *ints, dtype.type(0))


def pool_backward(gy, xp, y, gxp, kind, kd, kh, kw, sd, sh, sw):
    """The contract's pool_backward on NumPy or CUDA device arrays: one thread per element
    of ``gxp`` gathers from the windows containing it (max: the first maximal element; l2:
    ``x / y``, 0 where y == 0).

    >>> xp = np.arange(1.0, 5.0).reshape(1, 1, 1, 1, 4); y = np.empty((1, 1, 1, 1, 2))
    >>> pool_forward(xp, y, 1, 1, 1, 2, 1, 1, 2)                # average of each pair
    >>> gxp = np.empty_like(xp); pool_backward(np.ones_like(y), xp, y, gxp, 1, 1, 1, 2, 1, 1, 2)
    >>> gxp.ravel().tolist()
    [0.5, 0.5, 0.5, 0.5]
    """
    op = "pool_backward"
    dtype, ints = _check(op, ("xp", "gy", "y", "gxp"), (xp, gy, y, gxp), kind, kd, kh, kw,
                         sd, sh, sw)
    with device_io((gy, xp, y), (gxp,)) as (dgy, dxp, dy, dgx):
        launch(_backward, dgx.size, dgy, dxp, dy, dgx, *ints, dtype.type(0))
