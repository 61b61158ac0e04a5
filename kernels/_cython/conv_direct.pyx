# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: language_level=3
"""Direct convolution (nested loops): forward, grad-input, grad-weight.

Arrays are C-contiguous 5-D (N, C, D, H, W) of one dtype (float32 or float64); ``xp`` is the
already padded input and ``gxp`` the gradient w.r.t. it (see kernels/backends.py).  Every
innermost loop runs along the output width, so it is a contiguous (stride 1) axpy that the
compiler vectorises; at stride 1 the forward pass runs each tap as one axpy over a whole
plane (see _forward_plane_unit_stride).  OpenMP threads split independent outputs only:
(image, output channel) planes in forward, (image, input channel) planes in grad-input,
output channels in grad-weight.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
cimport openmp
from libc.string cimport memset

import numpy as np

from . import _checks


# ---- inner row loops (kept out of prange bodies: an in-place operator on a scalar inside a
# prange body would turn it into an OpenMP reduction)

cdef inline void _axpy_gather(floating* y, const floating* x, floating a, Py_ssize_t n,
                              Py_ssize_t incx) noexcept nogil:
    """y[i] += a * x[i * incx]"""
    cdef Py_ssize_t i
    if incx == 1:
        for i in range(n):
            y[i] += a * x[i]
    else:
        for i in range(n):
            y[i] += a * x[i * incx]


cdef inline void _axpy_scatter(floating* y, const floating* x, floating a, Py_ssize_t n,
                               Py_ssize_t incy) noexcept nogil:
    """y[i * incy] += a * x[i]"""
    cdef Py_ssize_t i
    if incy == 1:
        for i in range(n):
            y[i] += a * x[i]
    else:
        for i in range(n):
            y[i * incy] += a * x[i]


cdef inline void _mul_acc(floating* acc, const floating* g, const floating* x, Py_ssize_t n,
                          Py_ssize_t incx) noexcept nogil:
    """acc[i] += g[i] * x[i * incx]"""
    cdef Py_ssize_t i
    if incx == 1:
        for i in range(n):
            acc[i] += g[i] * x[i]
    else:
        for i in range(n):
            acc[i] += g[i] * x[i * incx]


# ---- one output unit per call

cdef void _forward_plane(const floating[:, :, :, :, ::1] xp,
                         const floating[:, :, :, :, ::1] w, floating[:, :, :, :, ::1] y,
                         Py_ssize_t n, Py_ssize_t co, Py_ssize_t c0,
                         Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """y[n, co] = sum over the group's input channels c0 + ci and the kernel taps."""
    cdef Py_ssize_t OD = y.shape[2], OH = y.shape[3], OW = y.shape[4]
    cdef Py_ssize_t ci, kd, kh, kw, od, oh
    cdef floating wv
    memset(&y[n, co, 0, 0, 0], 0, OD * OH * OW * sizeof(floating))
    for ci in range(w.shape[1]):
        for kd in range(w.shape[2]):
            for kh in range(w.shape[3]):
                for kw in range(w.shape[4]):
                    wv = w[co, ci, kd, kh, kw]
                    for od in range(OD):
                        for oh in range(OH):
                            _axpy_gather(&y[n, co, od, oh, 0],
                                         &xp[n, c0 + ci, od * sd + kd * dd, oh * sh + kh * dh,
                                             kw * dw], wv, OW, sw)


cdef void _forward_plane_unit_stride(const floating[:, :, :, :, ::1] xp,
                                     const floating[:, :, :, :, ::1] w,
                                     floating[:, :, :, :, ::1] y, Py_ssize_t n, Py_ssize_t co,
                                     Py_ssize_t c0, Py_ssize_t dd, Py_ssize_t dh,
                                     Py_ssize_t dw, floating* wide) noexcept nogil:
    """_forward_plane at stride 1.  The output is computed at the input's row pitch: with
    j = (od*H + oh)*W + ow, tap (kd, kh, kw) reads xp at j + (kd*dd*H + kh*dh)*W + kw*dw,
    so each tap is one long contiguous axpy over the whole plane.  ``wide`` (thread-private,
    L elements) holds that result; the columns ow >= OW are discarded when copying to y."""
    cdef Py_ssize_t H = xp.shape[3], W = xp.shape[4]
    cdef Py_ssize_t OD = y.shape[2], OH = y.shape[3], OW = y.shape[4]
    cdef Py_ssize_t L = ((OD - 1) * H + OH - 1) * W + OW
    cdef Py_ssize_t ci, kd, kh, kw, od, oh, i
    memset(wide, 0, L * sizeof(floating))
    for ci in range(w.shape[1]):
        for kd in range(w.shape[2]):
            for kh in range(w.shape[3]):
                for kw in range(w.shape[4]):
                    _axpy_gather(wide, &xp[n, c0 + ci, kd * dd, kh * dh, kw * dw],
                                 w[co, ci, kd, kh, kw], L, 1)
    for od in range(OD):
        for oh in range(OH):
            for i in range(OW):
                y[n, co, od, oh, i] = wide[(od * H + oh) * W + i]


cdef void _grad_input_plane(const floating[:, :, :, :, ::1] gy,
                            const floating[:, :, :, :, ::1] w, floating[:, :, :, :, ::1] gxp,
                            Py_ssize_t n, Py_ssize_t c, Py_ssize_t ci, Py_ssize_t co0,
                            Py_ssize_t co1, Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                            Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """gxp[n, c] = scatter of gy[n, co0:co1] through the taps w[co0:co1, ci]."""
    cdef Py_ssize_t OD = gy.shape[2], OH = gy.shape[3], OW = gy.shape[4]
    cdef Py_ssize_t co, kd, kh, kw, od, oh
    cdef floating wv
    memset(&gxp[n, c, 0, 0, 0], 0, gxp.shape[2] * gxp.shape[3] * gxp.shape[4] * sizeof(floating))
    for co in range(co0, co1):
        for kd in range(w.shape[2]):
            for kh in range(w.shape[3]):
                for kw in range(w.shape[4]):
                    wv = w[co, ci, kd, kh, kw]
                    for od in range(OD):
                        for oh in range(OH):
                            _axpy_scatter(&gxp[n, c, od * sd + kd * dd, oh * sh + kh * dh,
                                               kw * dw],
                                          &gy[n, co, od, oh, 0], wv, OW, sw)


cdef void _grad_weight_channel(const floating[:, :, :, :, ::1] gy,
                               const floating[:, :, :, :, ::1] xp,
                               floating[:, :, :, :, ::1] gw, Py_ssize_t co, Py_ssize_t c0,
                               Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                               Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                               floating* acc) noexcept nogil:
    """gw[co] = correlation of gy[:, co] with the group's input planes; ``acc`` is a
    thread-private row of length OW (per-lane partial sums, reduced once per tap)."""
    cdef Py_ssize_t N = gy.shape[0], OD = gy.shape[2], OH = gy.shape[3], OW = gy.shape[4]
    cdef Py_ssize_t ci, kd, kh, kw, n, od, oh, i
    cdef double s
    for ci in range(gw.shape[1]):
        for kd in range(gw.shape[2]):
            for kh in range(gw.shape[3]):
                for kw in range(gw.shape[4]):
                    memset(acc, 0, OW * sizeof(floating))
                    for n in range(N):
                        for od in range(OD):
                            for oh in range(OH):
                                _mul_acc(acc, &gy[n, co, od, oh, 0],
                                         &xp[n, c0 + ci, od * sd + kd * dd, oh * sh + kh * dh,
                                             kw * dw], OW, sw)
                    s = 0.0
                    for i in range(OW):
                        s += acc[i]
                    gw[co, ci, kd, kh, kw] = <floating>s


# ---- parallel drivers (called with the GIL, which they release around the prange)

cdef void _forward(const floating[:, :, :, :, ::1] xp, const floating[:, :, :, :, ::1] w,
                   floating[:, :, :, :, ::1] y, Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                   Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups,
                   floating[:, ::1] wide, int nthreads) noexcept:
    cdef Py_ssize_t CO = y.shape[1], cog = CO // groups, cg = w.shape[1]
    cdef Py_ssize_t job, n, co
    cdef bint unit = sd == 1 and sh == 1 and sw == 1
    for job in prange(y.shape[0] * CO, schedule="static", num_threads=nthreads, nogil=True):
        n = job // CO
        co = job % CO
        if unit:
            _forward_plane_unit_stride(xp, w, y, n, co, (co // cog) * cg, dd, dh, dw,
                                       &wide[threadid(), 0])
        else:
            _forward_plane(xp, w, y, n, co, (co // cog) * cg, sd, sh, sw, dd, dh, dw)


cdef void _grad_input(const floating[:, :, :, :, ::1] gy, const floating[:, :, :, :, ::1] w,
                      floating[:, :, :, :, ::1] gxp, Py_ssize_t sd, Py_ssize_t sh,
                      Py_ssize_t sw, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                      Py_ssize_t groups) noexcept:
    cdef Py_ssize_t C = gxp.shape[1], cg = w.shape[1], cog = w.shape[0] // groups
    cdef Py_ssize_t job, n, c, g
    for job in prange(gxp.shape[0] * C, schedule="static", nogil=True):
        n = job // C
        c = job % C
        g = c // cg
        _grad_input_plane(gy, w, gxp, n, c, c - g * cg, g * cog, (g + 1) * cog,
                          sd, sh, sw, dd, dh, dw)


cdef void _grad_weight(const floating[:, :, :, :, ::1] gy, const floating[:, :, :, :, ::1] xp,
                       floating[:, :, :, :, ::1] gw, Py_ssize_t sd, Py_ssize_t sh,
                       Py_ssize_t sw, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                       Py_ssize_t groups, floating[:, ::1] acc, int nthreads) noexcept:
    cdef Py_ssize_t cg = gw.shape[1], cog = gw.shape[0] // groups
    cdef Py_ssize_t co
    for co in prange(gw.shape[0], schedule="dynamic", num_threads=nthreads, nogil=True):
        _grad_weight_channel(gy, xp, gw, co, (co // cog) * cg, sd, sh, sw, dd, dh, dw,
                             &acc[threadid(), 0])


# ---- Python-level wrappers: validate, then dispatch on dtype

def direct_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups):
    """y = cross-correlation of the padded input xp (N, C, D, H, W) with
    w (C_out, C/groups, KD, KH, KW); y (N, C_out, OD, OH, OW) is overwritten."""
    op = "cython direct_forward"
    dt = _checks.arrays(op, 5, "y", xp=xp, w=w, y=y)
    s = _checks.positive(op, sd=sd, sh=sh, sw=sw)
    d = _checks.positive(op, dd=dd, dh=dh, dw=dw)
    (groups,) = _checks.positive(op, groups=groups)
    _checks.conv(op, xp.shape, w.shape, y.shape, s, d, groups)
    cdef int nthreads = openmp.omp_get_max_threads()
    # thread-private rows for the unit-stride path (see _forward_plane_unit_stride)
    _, _, od, oh, ow = y.shape
    wide = np.empty((nthreads, ((od - 1) * xp.shape[3] + oh - 1) * xp.shape[4] + ow
                     if s == (1, 1, 1) else 1), dtype=dt)
    if dt == np.float32:
        _forward[float](xp, w, y, s[0], s[1], s[2], d[0], d[1], d[2], groups, wide, nthreads)
    else:
        _forward[double](xp, w, y, s[0], s[1], s[2], d[0], d[1], d[2], groups, wide,
                         nthreads)


def direct_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups):
    """gxp (N, C, D, H, W) = gradient of the convolution w.r.t. its padded input, from
    gy (N, C_out, OD, OH, OW) and w (C_out, C/groups, KD, KH, KW); gxp is overwritten."""
    op = "cython direct_grad_input"
    dt = _checks.arrays(op, 5, "gxp", gy=gy, w=w, gxp=gxp)
    s = _checks.positive(op, sd=sd, sh=sh, sw=sw)
    d = _checks.positive(op, dd=dd, dh=dh, dw=dw)
    (groups,) = _checks.positive(op, groups=groups)
    _checks.conv(op, gxp.shape, w.shape, gy.shape, s, d, groups, names=("gxp", "w", "gy"))
    if dt == np.float32:
        _grad_input[float](gy, w, gxp, s[0], s[1], s[2], d[0], d[1], d[2], groups)
    else:
        _grad_input[double](gy, w, gxp, s[0], s[1], s[2], d[0], d[1], d[2], groups)


def direct_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups):
    """gw (C_out, C/groups, KD, KH, KW) = gradient of the convolution w.r.t. its weight, from
    gy (N, C_out, OD, OH, OW) and the padded input xp (N, C, D, H, W); gw is overwritten."""
    op = "cython direct_grad_weight"
    dt = _checks.arrays(op, 5, "gw", gy=gy, xp=xp, gw=gw)
    s = _checks.positive(op, sd=sd, sh=sh, sw=sw)
    d = _checks.positive(op, dd=dd, dh=dh, dw=dw)
    (groups,) = _checks.positive(op, groups=groups)
    _checks.conv(op, xp.shape, gw.shape, gy.shape, s, d, groups, names=("xp", "gw", "gy"))
    cdef int nthreads = openmp.omp_get_max_threads()
    acc = np.empty((nthreads, gy.shape[4]), dtype=dt)
    if dt == np.float32:
        _grad_weight[float](gy, xp, gw, s[0], s[1], s[2], d[0], d[1], d[2], groups,
                            acc, nthreads)
    else:
        _grad_weight[double](gy, xp, gw, s[0], s[1], s[2], d[0], d[1], d[2], groups,
                             acc, nthreads)
