# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: language_level=3
"""Pooling (max, avg, sum, l2) over windows (kd, kh, kw) at strides (sd, sh, sw).

xp (N, C, D, H, W) is already padded (zeros, or -inf for max), y (N, C, OD, OH, OW).  One
(image, channel) plane per OpenMP iteration; overlapping windows of a backward pass only
ever add into their own plane.  Sums accumulate in double.  Max picks the first maximal
element in (kd, kh, kw) scan order, and a NaN anywhere in the window wins (the first NaN),
like numpy.argmax: comparisons with NaN are false, so NaN is tested for explicitly.
"""
from cython cimport floating
from cython.parallel cimport prange
from .threads cimport team
from libc.math cimport sqrt
from libc.string cimport memset

import numpy as np

from .. import plan

cdef enum:
    MAX = 0
    AVG = 1
    SUM = 2
    L2 = 3


cdef inline Py_ssize_t _argmax(const floating* x, Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t H, Py_ssize_t W) noexcept nogil:
    """Offset (from x) of the first maximal element of the window, or of its first NaN."""
    cdef Py_ssize_t a, b, c, off, best = 0
    cdef floating v, m = x[0]
    if m != m:
        return 0
    for a in range(kd):
        for b in range(kh):
            for c in range(kw):
                off = (a * H + b) * W + c
                v = x[off]
                if v != v:
                    return off
                if v > m:
                    m = v
                    best = off
    return best


cdef inline double _window_sum(const floating* x, Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t H, Py_ssize_t W, bint squares) noexcept nogil:
    cdef Py_ssize_t a, b, c
    cdef double s = 0.0, v
    for a in range(kd):
        for b in range(kh):
            for c in range(kw):
                v = x[(a * H + b) * W + c]
                s = s + (v * v if squares else v)
    return s


cdef void _forward_plane(const floating[:, :, :, :, ::1] xp, floating[:, :, :, :, ::1] y,
                         Py_ssize_t n, Py_ssize_t ch, int kind, Py_ssize_t kd, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t sd, Py_ssize_t sh,
                         Py_ssize_t sw) noexcept nogil:
    cdef Py_ssize_t H = xp.shape[3], W = xp.shape[4], od, oh, ow
    cdef double vol = <double>(kd * kh * kw)
    cdef const floating* x
    for od in range(y.shape[2]):
        for oh in range(y.shape[3]):
            for ow in range(y.shape[4]):
                x = &xp[n, ch, od * sd, oh * sh, ow * sw]
                if kind == MAX:
                    y[n, ch, od, oh, ow] = x[_argmax(x, kd, kh, kw, H, W)]
                elif kind == AVG:
                    y[n, ch, od, oh, ow] = <floating>(_window_sum(x, kd, kh, kw, H, W, False)
                                                      / vol)
                elif kind == SUM:
                    y[n, ch, od, oh, ow] = <floating>_window_sum(x, kd, kh, kw, H, W, False)
                else:
                    y[n, ch, od, oh, ow] = <floating>sqrt(_window_sum(x, kd, kh, kw, H, W,
                                                                      True))


cdef void _backward_plane(const floating[:, :, :, :, ::1] gy,
                          const floating[:, :, :, :, ::1] xp,
                          const floating[:, :, :, :, ::1] y, floating[:, :, :, :, ::1] gxp,
                          Py_ssize_t n, Py_ssize_t ch, int kind, Py_ssize_t kd, Py_ssize_t kh,
                          Py_ssize_t kw, Py_ssize_t sd, Py_ssize_t sh,
                          Py_ssize_t sw) noexcept nogil:
    cdef Py_ssize_t H = xp.shape[3], W = xp.shape[4], od, oh, ow, a, b, c, off
    cdef floating g, yv, scale = 1
    cdef const floating* x
    cdef floating* gx
    if kind == AVG:
        scale = <floating>(1.0 / <double>(kd * kh * kw))
    memset(&gxp[n, ch, 0, 0, 0], 0, gxp.shape[2] * H * W * sizeof(floating))
    for od in range(gy.shape[2]):
        for oh in range(gy.shape[3]):
            for ow in range(gy.shape[4]):
                g = gy[n, ch, od, oh, ow]
                x = &xp[n, ch, od * sd, oh * sh, ow * sw]
                gx = &gxp[n, ch, od * sd, oh * sh, ow * sw]
                if kind == MAX:
                    gx[_argmax(x, kd, kh, kw, H, W)] += g
                    continue
                if kind == L2:
                    yv = y[n, ch, od, oh, ow]
                    if yv == 0:
                        continue
                    g = g / yv
                elif kind == AVG:
                    g = g * scale
                for a in range(kd):
                    for b in range(kh):
                        for c in range(kw):
                            off = (a * H + b) * W + c
                            gx[off] += g * x[off] if kind == L2 else g


cdef void _forward(const floating[:, :, :, :, ::1] xp, floating[:, :, :, :, ::1] y, int kind,
                   Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sd, Py_ssize_t sh,
                   Py_ssize_t sw) noexcept:
    cdef Py_ssize_t C = y.shape[1], job
    for job in prange(y.shape[0] * C, schedule="static", num_threads=team(), nogil=True):
        _forward_plane(xp, y, job // C, job % C, kind, kd, kh, kw, sd, sh, sw)


cdef void _backward(const floating[:, :, :, :, ::1] gy, const floating[:, :, :, :, ::1] xp,
                    const floating[:, :, :, :, ::1] y, floating[:, :, :, :, ::1] gxp, int kind,
                    Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sd, Py_ssize_t sh,
                    Py_ssize_t sw) noexcept:
    cdef Py_ssize_t C = gxp.shape[1], job
    for job in prange(gxp.shape[0] * C, schedule="static", num_threads=team(), nogil=True):
        _backward_plane(gy, xp, y, gxp, job // C, job % C, kind, kd, kh, kw, sd, sh, sw)


# ---- Python-level wrappers: validate, then dispatch on dtype

def pool_forward(xp, y, kind, kd, kh, kw, sd, sh, sw):
    """y (N, C, OD, OH, OW) = pooling of the padded xp (N, C, D, H, W) over (kd, kh, kw)
    windows at strides (sd, sh, sw); kind 0 max, 1 avg (over the full window volume),
    2 sum, 3 l2 (sqrt of the sum of squares).  y is overwritten."""
    dt, kind, k, s = plan.pool_call("cython pool_forward", ("xp", "y"), (xp, y), kind, kd, kh,
                                    kw, sd, sh, sw)
    if dt == np.float32:
        _forward[float](xp, y, kind, k[0], k[1], k[2], s[0], s[1], s[2])
    else:
        _forward[double](xp, y, kind, k[0], k[1], k[2], s[0], s[1], s[2])


def pool_backward(gy, xp, y, gxp, kind, kd, kh, kw, sd, sh, sw):
    """gxp (N, C, D, H, W) = gradient of pool_forward w.r.t. its padded input, from gy and
    the forward's xp and y (max: each window's gradient goes to its first maximal element;
    l2: x / y, 0 where y == 0).  gxp is overwritten."""
    dt, kind, k, s = plan.pool_call("cython pool_backward", ("xp", "y", "gy", "gxp"),
                                    (xp, y, gy, gxp), kind, kd, kh, kw, sd, sh, sw)
    if dt == np.float32:
        _backward[float](gy, xp, y, gxp, kind, k[0], k[1], k[2], s[0], s[1], s[2])
    else:
        _backward[double](gy, xp, y, gxp, kind, k[0], k[1], k[2], s[0], s[1], s[2])
