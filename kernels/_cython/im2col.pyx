# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: language_level=3
"""im2col + GEMM convolution: forward, grad-input, grad-weight.

For one image n and one group g, the column matrix ``cols`` (K x P) holds in row
r = ((ci*KD + kd)*KH + kh)*KW + kw the input samples that tap (ci, kd, kh, kw) meets at the
P = OD*OH*OW output positions, so that with W_g = w[g*Cog:(g+1)*Cog] viewed as (Cog x K)::

    forward      Y_g  = W_g @ cols                (y[n, g*Cog:(g+1)*Cog] viewed as Cog x P)
    grad-input   cols = W_g^T @ GY_g, then col2im scatter-adds cols into gxp[n, g*Cg:...]
    grad-weight  GW_g += GY_g @ cols^T

The GEMMs are BLAS (scipy.linalg.cython_blas), called outside any OpenMP region; building
and scattering the columns is split over OpenMP threads by rows (build) or by input channel
(col2im), which never write the same cell.  The column buffer holds at most max_col_elems
elements (but always at least one column, K elements): when one image's columns exceed it,
the output positions are processed in chunks.  A 1x1 kernel at stride 1 needs no columns:
the input planes are the column matrix.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.string cimport memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

import numpy as np

from . import _checks


cdef void _gemm(char ta, char tb, int m, int n, int k, const floating* a, int lda,
                const floating* b, int ldb, floating beta, floating* c,
                int ldc) noexcept nogil:
    """Row-major C (m x n) = op(A) @ op(B) + beta * C.  A row-major matrix with leading
    dimension ld is the column-major transpose, so BLAS computes C^T = op(B)^T op(A)^T."""
    cdef floating alpha = 1
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda, &beta, c, &ldc)


# ---- one row (build) or one input channel (scatter) of the column matrix

cdef void _build_row(const floating[:, :, :, :, ::1] xp, Py_ssize_t n, Py_ssize_t c,
                     Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t OH, Py_ssize_t OW,
                     Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd, Py_ssize_t dh,
                     Py_ssize_t dw, Py_ssize_t p0, Py_ssize_t pc,
                     floating* dst) noexcept nogil:
    """dst[j] = xp[n, c, od*sd + kd*dd, oh*sh + kh*dh, ow*sw + kw*dw] for the output
    positions p0 + j = (od*OH + oh)*OW + ow, j < pc; copied one output row at a time."""
    cdef Py_ssize_t od = p0 // (OH * OW), oh = (p0 // OW) % OH, ow = p0 % OW
    cdef Py_ssize_t j = 0, seg, i
    cdef const floating* src
    while j < pc:
        seg = min(OW - ow, pc - j)
        src = &xp[n, c, od * sd + kd * dd, oh * sh + kh * dh, ow * sw + kw * dw]
        if sw == 1:
            for i in range(seg):
                dst[j + i] = src[i]
        else:
            for i in range(seg):
                dst[j + i] = src[i * sw]
        j += seg
        ow = 0
        oh += 1
        if oh == OH:
            oh = 0
            od += 1


cdef void _scatter_channel(const floating* cols, floating[:, :, :, :, ::1] gxp,
                           Py_ssize_t n, Py_ssize_t c, Py_ssize_t r0, Py_ssize_t KD,
                           Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t OH, Py_ssize_t OW,
                           Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd,
                           Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t p0,
                           Py_ssize_t pc) noexcept nogil:
    """col2im for one input plane: gxp[n, c] += the rows r0 .. r0 + KD*KH*KW of cols (the
    transpose of _build_row's gather)."""
    cdef Py_ssize_t kd, kh, kw, od, oh, ow, j, seg, i
    cdef const floating* src
    cdef floating* dst
    for kd in range(KD):
        for kh in range(KH):
            for kw in range(KW):
                src = cols + (r0 + (kd * KH + kh) * KW + kw) * pc
                od = p0 // (OH * OW)
                oh = (p0 // OW) % OH
                ow = p0 % OW
                j = 0
                while j < pc:
                    seg = min(OW - ow, pc - j)
                    dst = &gxp[n, c, od * sd + kd * dd, oh * sh + kh * dh, ow * sw + kw * dw]
                    if sw == 1:
                        for i in range(seg):
                            dst[i] += src[j + i]
                    else:
                        for i in range(seg):
                            dst[i * sw] += src[j + i]
                    j += seg
                    ow = 0
                    oh += 1
                    if oh == OH:
                        oh = 0
                        od += 1


cdef void _im2col(const floating[:, :, :, :, ::1] xp, Py_ssize_t n, Py_ssize_t c0,
                  Py_ssize_t K, Py_ssize_t KD, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t OH,
                  Py_ssize_t OW, Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd,
                  Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t p0, Py_ssize_t pc,
                  floating* cols) noexcept nogil:
    """cols (K x pc) = columns p0 .. p0 + pc of the column matrix of xp[n, c0:c0 + Cg]."""
    cdef Py_ssize_t r, t
    for r in prange(K, schedule="static"):
        t = r // (KW * KH)
        _build_row(xp, n, c0 + t // KD, t % KD, (r // KW) % KH, r % KW, OH, OW,
                   sd, sh, sw, dd, dh, dw, p0, pc, cols + r * pc)


# ---- drivers: called with the GIL (the caller coerces the memoryviews), release it;
# sequential over images, groups and chunks, so BLAS is never called inside prange

cdef void _forward(const floating[:, :, :, :, ::1] xp, const floating[:, :, :, :, ::1] w,
                   floating[:, :, :, :, ::1] y, Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                   Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups,
                   floating[::1] cols, Py_ssize_t pc, bint direct_cols) noexcept:
    cdef Py_ssize_t KD = w.shape[2], KH = w.shape[3], KW = w.shape[4]
    cdef Py_ssize_t OH = y.shape[3], OW = y.shape[4], P = y.shape[2] * OH * OW
    cdef Py_ssize_t cg = w.shape[1], cog = w.shape[0] // groups, K = cg * KD * KH * KW
    cdef Py_ssize_t n, g, p0, m
    with nogil:
        for n in range(y.shape[0]):
            for g in range(groups):
                if direct_cols:
                    _gemm(c"N", c"N", cog, P, K, &w[g * cog, 0, 0, 0, 0], K,
                          &xp[n, g * cg, 0, 0, 0], P, 0, &y[n, g * cog, 0, 0, 0], P)
                    continue
                p0 = 0
                while p0 < P:
                    m = min(pc, P - p0)
                    _im2col(xp, n, g * cg, K, KD, KH, KW, OH, OW, sd, sh, sw, dd, dh, dw,
                            p0, m, &cols[0])
                    _gemm(c"N", c"N", cog, m, K, &w[g * cog, 0, 0, 0, 0], K, &cols[0], m, 0,
                          &y[n, g * cog, 0, 0, 0] + p0, P)
                    p0 += m


cdef void _grad_input(const floating[:, :, :, :, ::1] gy, const floating[:, :, :, :, ::1] w,
                      floating[:, :, :, :, ::1] gxp, Py_ssize_t sd, Py_ssize_t sh,
                      Py_ssize_t sw, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                      Py_ssize_t groups, floating[::1] cols, Py_ssize_t pc,
                      bint direct_cols) noexcept:
    cdef Py_ssize_t KD = w.shape[2], KH = w.shape[3], KW = w.shape[4], T = KD * KH * KW
    cdef Py_ssize_t OH = gy.shape[3], OW = gy.shape[4], P = gy.shape[2] * OH * OW
    cdef Py_ssize_t cg = w.shape[1], cog = w.shape[0] // groups, K = cg * T
    cdef Py_ssize_t n, g, p0, m, ci
    with nogil:
        if direct_cols:
            for n in range(gy.shape[0]):
                for g in range(groups):
                    _gemm(c"T", c"N", cg, P, cog, &w[g * cog, 0, 0, 0, 0], K,
                          &gy[n, g * cog, 0, 0, 0], P, 0, &gxp[n, g * cg, 0, 0, 0], P)
            return
        memset(&gxp[0, 0, 0, 0, 0], 0, gxp.shape[0] * gxp.shape[1] * gxp.shape[2]
               * gxp.shape[3] * gxp.shape[4] * sizeof(floating))
        for n in range(gy.shape[0]):
            for g in range(groups):
                p0 = 0
                while p0 < P:
                    m = min(pc, P - p0)
                    _gemm(c"T", c"N", K, m, cog, &w[g * cog, 0, 0, 0, 0], K,
                          &gy[n, g * cog, 0, 0, 0] + p0, P, 0, &cols[0], m)
                    for ci in prange(cg, schedule="static"):
                        _scatter_channel(&cols[0], gxp, n, g * cg + ci, ci * T, KD, KH, KW,
                                         OH, OW, sd, sh, sw, dd, dh, dw, p0, m)
                    p0 += m


cdef void _grad_weight(const floating[:, :, :, :, ::1] gy, const floating[:, :, :, :, ::1] xp,
                       floating[:, :, :, :, ::1] gw, Py_ssize_t sd, Py_ssize_t sh,
                       Py_ssize_t sw, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                       Py_ssize_t groups, floating[::1] cols, Py_ssize_t pc,
                       bint direct_cols) noexcept:
    cdef Py_ssize_t KD = gw.shape[2], KH = gw.shape[3], KW = gw.shape[4]
    cdef Py_ssize_t OH = gy.shape[3], OW = gy.shape[4], P = gy.shape[2] * OH * OW
    cdef Py_ssize_t cg = gw.shape[1], cog = gw.shape[0] // groups, K = cg * KD * KH * KW
    cdef Py_ssize_t n, g, p0, m
    with nogil:
        memset(&gw[0, 0, 0, 0, 0], 0, gw.shape[0] * K * sizeof(floating))
        for n in range(gy.shape[0]):
            for g in range(groups):
                if direct_cols:
                    _gemm(c"N", c"T", cog, K, P, &gy[n, g * cog, 0, 0, 0], P,
                          &xp[n, g * cg, 0, 0, 0], P, 1, &gw[g * cog, 0, 0, 0, 0], K)
                    continue
                p0 = 0
                while p0 < P:
                    m = min(pc, P - p0)
                    _im2col(xp, n, g * cg, K, KD, KH, KW, OH, OW, sd, sh, sw, dd, dh, dw,
                            p0, m, &cols[0])
                    _gemm(c"N", c"T", cog, K, m, &gy[n, g * cog, 0, 0, 0] + p0, P, &cols[0],
                          m, 1, &gw[g * cog, 0, 0, 0, 0], K)
                    p0 += m


# ---- Python-level wrappers: validate, size the column buffer, dispatch on dtype

def _prepare(op, out, x, w, y, names, strides, dilations, groups, max_col_elems):
    """Validate (``out`` names the array written); return (dtype, strides, dilations,
    groups, column buffer, chunk length, whether the input planes serve as columns), or None
    when there is nothing to compute (an empty dimension: the caller zeroes the output)."""
    dt = _checks.arrays(op, 5, out, **{names[0]: x, names[1]: w, names[2]: y})
    s = _checks.positive(op, sd=strides[0], sh=strides[1], sw=strides[2])
    d = _checks.positive(op, dd=dilations[0], dh=dilations[1], dw=dilations[2])
    groups, max_col_elems = _checks.positive(op, groups=groups, max_col_elems=max_col_elems)
    _checks.conv(op, x.shape, w.shape, y.shape, s, d, groups, names=names)
    k = w.shape[1] * w.shape[2] * w.shape[3] * w.shape[4]
    p = y.shape[2] * y.shape[3] * y.shape[4]
    if x.size == 0 or w.size == 0 or y.size == 0:
        return None
    direct_cols = w.shape[2:] == (1, 1, 1) and s == (1, 1, 1)
    pc = p if k * p <= max_col_elems else max(1, max_col_elems // k)
    cols = np.empty(1 if direct_cols else k * pc, dtype=dt)
    return dt, s, d, groups, cols, pc, direct_cols


def im2col_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """y (N, C_out, OD, OH, OW) = cross-correlation of the padded input xp (N, C, D, H, W) with
    w (C_out, C/groups, KD, KH, KW), as column matrix times weight matrix (BLAS); y is
    overwritten.  The column buffer holds at most max(max_col_elems, K) elements."""
    r = _prepare("cython im2col_forward", "y", xp, w, y, ("xp", "w", "y"),
                 (sd, sh, sw), (dd, dh, dw), groups, max_col_elems)
    if r is None:
        y.fill(0)
        return
    dt, s, d, groups, cols, pc, direct_cols = r
    if dt == np.float32:
        _forward[float](xp, w, y, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols, pc,
                        direct_cols)
    else:
        _forward[double](xp, w, y, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols, pc,
                         direct_cols)


def im2col_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """gxp (N, C, D, H, W) = gradient w.r.t. the padded input, from gy (N, C_out, OD, OH, OW)
    and w (C_out, C/groups, KD, KH, KW): columns W_g^T @ GY_g (BLAS) scatter-added by col2im;
    gxp is overwritten."""
    r = _prepare("cython im2col_grad_input", "gxp", gxp, w, gy, ("gxp", "w", "gy"),
                 (sd, sh, sw), (dd, dh, dw), groups, max_col_elems)
    if r is None:
        gxp.fill(0)
        return
    dt, s, d, groups, cols, pc, direct_cols = r
    if dt == np.float32:
        _grad_input[float](gy, w, gxp, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols, pc,
                           direct_cols)
    else:
        _grad_input[double](gy, w, gxp, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols, pc,
                            direct_cols)


def im2col_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """gw (C_out, C/groups, KD, KH, KW) = gradient w.r.t. the weight, from gy
    (N, C_out, OD, OH, OW) and the padded input xp (N, C, D, H, W): sum over images of
    GY_g @ cols^T (BLAS); gw is overwritten."""
    r = _prepare("cython im2col_grad_weight", "gw", xp, gw, gy, ("xp", "gw", "gy"),
                 (sd, sh, sw), (dd, dh, dw), groups, max_col_elems)
    if r is None:
        gw.fill(0)
        return
    dt, s, d, groups, cols, pc, direct_cols = r
    if dt == np.float32:
        _grad_weight[float](gy, xp, gw, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols, pc,
                            direct_cols)
    else:
        _grad_weight[double](gy, xp, gw, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols,
                             pc, direct_cols)
