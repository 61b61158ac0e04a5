"""Pooling over windows of a padded input: max, avg, sum and l2 in one kernel pair.

Kind codes (kernels.backends.POOL_KINDS): 0 max, 1 avg (divides by the full window volume),
2 sum, 3 l2 (``sqrt(sum x^2)``).  Both kernels run over (n, c) planes on threads
(threads.run_jobs), each plane owned by one job (the backward scatter of overlapping windows
stays inside the plane).

Max pooling propagates NaN explicitly (comparisons with NaN are false): a window holding a
NaN gives NaN, and its gradient goes to the first NaN.  Otherwise the gradient goes to the
first maximal element in (kd, kh, kw) scan order.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import plan
from .threads import run_jobs

MAX, AVG, SUM, L2 = 0, 1, 2, 3


@njit(cache=True)
def _argmax(plane, d0, h0, w0, kd_n, kh_n, kw_n):
    """(d, h, w) of the first maximal element of a window, or of its first NaN."""
    best = -np.inf
    bd, bh, bw = d0, h0, w0
    for kd in range(kd_n):
        for kh in range(kh_n):
            for kw in range(kw_n):
                v = plane[d0 + kd, h0 + kh, w0 + kw]
                if v != v:
                    return d0 + kd, h0 + kh, w0 + kw
                if v > best:
                    best = v
                    bd, bh, bw = d0 + kd, h0 + kh, w0 + kw
    return bd, bh, bw


@njit(nogil=True, cache=True)
def _forward(xp, y, kind, kd_n, kh_n, kw_n, sd, sh, sw, first, step):
    n_batch, c_n, od_n, oh_n, ow_n = y.shape
    inv_vol = 1.0 / (kd_n * kh_n * kw_n)
    for job in range(first, n_batch * c_n, step):
        n, c = job // c_n, job % c_n
        plane = xp[n, c]
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    d0, h0, w0 = od * sd, oh * sh, ow * sw
                    if kind == MAX:
                        bd, bh, bw = _argmax(plane, d0, h0, w0, kd_n, kh_n, kw_n)
                        y[n, c, od, oh, ow] = plane[bd, bh, bw]
                        continue
                    s = 0.0
                    for kd in range(kd_n):
                        for kh in range(kh_n):
                            for kw in range(kw_n):
                                v = plane[d0 + kd, h0 + kh, w0 + kw]
                                s += v * v if kind == L2 else v
                    if kind == AVG:
                        s *= inv_vol
                    elif kind == L2:
                        s = math.sqrt(s)
                    y[n, c, od, oh, ow] = s


@njit(nogil=True, cache=True)
def _backward(gy, xp, y, gxp, kind, kd_n, kh_n, kw_n, sd, sh, sw, first, step):
    n_batch, c_n, od_n, oh_n, ow_n = gy.shape
    inv_vol = 1.0 / (kd_n * kh_n * kw_n)
    for job in range(first, n_batch * c_n, step):
        n, c = job // c_n, job % c_n
        plane, gplane = xp[n, c], gxp[n, c]
        gplane[:] = 0
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    d0, h0, w0 = od * sd, oh * sh, ow * sw
                    g = gy[n, c, od, oh, ow]
                    if kind == MAX:
                        bd, bh, bw = _argmax(plane, d0, h0, w0, kd_n, kh_n, kw_n)
                        gplane[bd, bh, bw] += g
                        continue
                    if kind == AVG:
                        g = g * inv_vol
                    elif kind == L2:
                        yv = y[n, c, od, oh, ow]
                        if yv == 0:
                            continue
                        g = g / yv
                    for kd in range(kd_n):
                        for kh in range(kh_n):
                            for kw in range(kw_n):
                                if kind == L2:
                                    gplane[d0 + kd, h0 + kh, w0 + kw] += \
                                        g * plane[d0 + kd, h0 + kh, w0 + kw]
                                else:
                                    gplane[d0 + kd, h0 + kh, w0 + kw] += g


def _check(op, names, arrays, kind, kd, kh, kw, sd, sh, sw):
    """The planner's checks; [kind, kd, kh, kw, sd, sh, sw] as the kernels take them."""
    _, kind, k, s = plan.pool_call(op, names, arrays, kind, kd, kh, kw, sd, sh, sw)
    return [kind, *k, *s]


def pool_forward(xp, y, kind, kd, kh, kw, sd, sh, sw):
    """Pool windows of the padded input ``xp`` into ``y``.

    Parameters
    ----------
    xp : ndarray (N, C, D, H, W), float32 or float64, C-contiguous, already padded (zeros,
        or -inf for max).
    y : ndarray (N, C, OD, OH, OW), same dtype, overwritten; ``OD = (D - kd) // sd + 1``.
    kind : int
        0 max, 1 avg, 2 sum, 3 l2.
    kd, kh, kw, sd, sh, sw : int
        Window size and strides.

    Examples
    --------
    >>> xp = np.arange(4.0).reshape(1, 1, 1, 1, 4); y = np.empty((1, 1, 1, 1, 2))
    >>> pool_forward(xp, y, 0, 1, 1, 2, 1, 1, 2); y.ravel().tolist()
    [1.0, 3.0]
    """
    ints = _check("pool_forward", ("xp", "y"), (xp, y), kind, kd, kh, kw, sd, sh, sw)
    run_jobs(_forward, y.shape[0] * y.shape[1], xp, y, *ints)


def pool_backward(gy, xp, y, gxp, kind, kd, kh, kw, sd, sh, sw):
    """Gradient of :func:`pool_forward` w.r.t. the padded input, written into ``gxp``.

    ``gy`` and ``y`` (the forward output, used by l2) are (N, C, OD, OH, OW); ``xp`` and
    ``gxp`` are (N, C, D, H, W).  Max sends each window's gradient to its first maximal
    element; l2 uses ``dy/dx = x / y`` (0 where y == 0).

    Examples
    --------
    >>> xp = np.array([1.0, 1.0, 0.0, 2.0]).reshape(1, 1, 1, 1, 4)
    >>> gy = np.ones((1, 1, 1, 1, 2)); y = np.empty_like(gy); gxp = np.empty_like(xp)
    >>> pool_forward(xp, y, 0, 1, 1, 2, 1, 1, 2)
    >>> pool_backward(gy, xp, y, gxp, 0, 1, 1, 2, 1, 1, 2); gxp.ravel().tolist()
    [1.0, 0.0, 0.0, 1.0]
    """
    op = "pool_backward"
    ints = _check(op, ("xp", "gy", "y", "gxp"), (xp, gy, y, gxp), kind, kd, kh, kw, sd, sh, sw)
    run_jobs(_backward, gy.shape[0] * gy.shape[1], gy, xp, y, gxp, *ints)
