# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: language_level=3
"""im2col + GEMM convolution: forward, grad-input, grad-weight.

For image n and group g, the column matrix ``cols`` (K x P) holds in row
r = ((ci*KD + kd)*KH + kh)*KW + kw the input samples that tap (ci, kd, kh, kw) meets at the
P = OD*OH*OW output positions, so that with W_g = w[g*Cog:(g+1)*Cog] viewed as (Cog x K)::

    forward      Y_g  = W_g @ cols                (y[n, g*Cog:(g+1)*Cog] viewed as Cog x P)
    grad-input   cols = W_g^T @ GY_g, then col2im scatter-adds cols into gxp[n, g*Cg:...]
    grad-weight  GW_g += GY_g @ cols^T

The columns of several images (all groups: C*taps rows) are built at once, one OpenMP launch
per chunk, in one of two layouts chosen by
``kernels.plan.im2col_layout`` (the planner both CPU backends share):

* per-image blocks, when one image's GEMM is big: each image's (C*taps, P) block gets its
  own GEMMs, which read gy and write y / accumulate into gw (beta = 1) in place;
* wide, for small GEMMs: the chunk is one (C*taps, images*positions) matrix and each group
  one GEMM; y (forward) or gy (gradients) goes through a transposed copy of Cog rows.  A wide
  chunk may also be part of one image's positions, when one image exceeds the budget.

The column buffer plus that copy hold at most max_col_elems elements (but always at least one
output position).  The GEMMs are BLAS, called without the GIL and outside any OpenMP region:
numpy's OpenBLAS when kernels._blas finds its entry points (one BLAS and one thread pool in
the process, see that module), SciPy's cython_blas otherwise; copies are split over OpenMP
threads by rows (build) or by input plane (col2im), which never write the same cell, and stay
on one thread when the chunk is small.  A 1x1 kernel at stride 1 needs no columns: the input
planes are the column matrix.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from .threads cimport team
from libc.stdint cimport int64_t, uintptr_t
from libc.string cimport memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

import numpy as np

from .. import config, plan

# Fortran GEMMs with 64-bit integers (numpy's OpenBLAS), set by use_blas(); NULL: SciPy's.
ctypedef void (*sgemm64_t)(const char*, const char*, const int64_t*, const int64_t*,
                           const int64_t*, const float*, const float*, const int64_t*,
                           const float*, const int64_t*, const float*, float*,
                           const int64_t*) noexcept nogil
ctypedef void (*dgemm64_t)(const char*, const char*, const int64_t*, const int64_t*,
                           const int64_t*, const double*, const double*, const int64_t*,
                           const double*, const int64_t*, const double*, double*,
                           const int64_t*) noexcept nogil
cdef sgemm64_t _sgemm64 = NULL
cdef dgemm64_t _dgemm64 = NULL
# OpenBLAS's C thread-count API (void set(int), int get(void)) of the same library, or NULL.
ctypedef void (*blas_set_t)(int) noexcept nogil
ctypedef int (*blas_get_t)() noexcept nogil
cdef blas_set_t _blas_set = NULL
cdef blas_get_t _blas_get = NULL


def use_blas(uintptr_t sgemm_address, uintptr_t dgemm_address, uintptr_t set_threads=0,
             uintptr_t get_threads=0):
    """Call these ILP64 Fortran sgemm/dgemm (addresses from kernels._blas.gemm_pointers)
    instead of SciPy's BLAS; 0, 0 goes back to SciPy's.  With the library's
    openblas_set_num_threads / openblas_get_num_threads (kernels._blas.thread_pointers) the
    team layout is available: one image per team thread, each GEMM single-threaded."""
    global _sgemm64, _dgemm64, _blas_set, _blas_get
    if (sgemm_address == 0) != (dgemm_address == 0):
        raise ValueError("use_blas: give both GEMM addresses or neither")
    if (set_threads == 0) != (get_threads == 0):
        raise ValueError("use_blas: give both thread-count addresses or neither")
    _sgemm64 = <sgemm64_t>sgemm_address
    _dgemm64 = <dgemm64_t>dgemm_address
    if sgemm_address == 0:
        set_threads = get_threads = 0
    _blas_set = <blas_set_t>set_threads
    _blas_get = <blas_get_t>get_threads


def team_available():
    """Whether the team layout can run (numpy's BLAS with its thread-count API)."""
    return _blas_set != NULL


def blas_in_use():
    """'numpy' or 'scipy': which BLAS the GEMMs of this module call."""
    return "numpy" if _sgemm64 != NULL else "scipy"


cdef void _gemm(char ta, char tb, int m, int n, int k, const floating* a, int lda,
                const floating* b, int ldb, floating beta, floating* c,
                int ldc) noexcept nogil:
    """Row-major C (m x n) = op(A) @ op(B) + beta * C.  A row-major matrix with leading
    dimension ld is the column-major transpose, so BLAS computes C^T = op(B)^T op(A)^T."""
    cdef floating alpha = 1
    cdef int64_t m8 = m, n8 = n, k8 = k, lda8 = lda, ldb8 = ldb, ldc8 = ldc
    if floating is float:
        if _sgemm64 != NULL:
            _sgemm64(&tb, &ta, &n8, &m8, &k8, &alpha, <float*>b, &ldb8, <float*>a, &lda8,
                     &beta, c, &ldc8)
        else:
            sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda, &beta, c,
                  &ldc)
    else:
        if _dgemm64 != NULL:
            _dgemm64(&tb, &ta, &n8, &m8, &k8, &alpha, <double*>b, &ldb8, <double*>a, &lda8,
                     &beta, c, &ldc8)
        else:
            dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda, &beta, c,
                  &ldc)


# ---- one (c, kd, kh) unit of KW rows (build) or one input plane (scatter)

cdef void _build_unit(const floating* plane, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kd,
                      Py_ssize_t kh, Py_ssize_t KW, Py_ssize_t OH, Py_ssize_t OW,
                      Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd,
                      Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t p0, Py_ssize_t pc,
                      floating* dst, Py_ssize_t rstride) noexcept nogil:
    """Row kw of dst (at dst + kw*rstride) gets plane[od*sd + kd*dd, oh*sh + kh*dh,
    ow*sw + kw*dw] for the output positions p0 + j = (od*OH + oh)*OW + ow, j < pc; copied one
    output row at a time, the KW taps reading the same input row shifted."""
    cdef Py_ssize_t od = p0 // (OH * OW), oh = (p0 // OW) % OH, ow = p0 % OW
    cdef Py_ssize_t j = 0, seg, i, kw
    cdef const floating* src
    cdef floating* d
    while j < pc:
        seg = min(OW - ow, pc - j)
        for kw in range(KW):
            src = plane + ((od * sd + kd * dd) * H + oh * sh + kh * dh) * W + ow * sw + kw * dw
            d = dst + kw * rstride + j
            if sw == 1:
                for i in range(seg):
                    d[i] = src[i]
            else:
                for i in range(seg):
                    d[i] = src[i * sw]
        j += seg
        ow = 0
        oh += 1
        if oh == OH:
            oh = 0
            od += 1


cdef void _scatter_plane(const floating* cols, Py_ssize_t rstride, floating* plane,
                         Py_ssize_t D, Py_ssize_t H, Py_ssize_t W, Py_ssize_t KD,
                         Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t OH, Py_ssize_t OW,
                         Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd,
                         Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t p0, Py_ssize_t pc,
                         bint zero) noexcept nogil:
    """col2im for one input plane (D x H x W): plane (+)= the KD*KH*KW rows of cols (row
    stride rstride), the transpose of _build_unit's gather; ``zero`` clears it first."""
    cdef Py_ssize_t kd, kh, kw, od, oh, ow, j, seg, i
    cdef const floating* src
    cdef floating* dst
    if zero:
        memset(plane, 0, D * H * W * sizeof(floating))
    for kd in range(KD):
        for kh in range(KH):
            od = p0 // (OH * OW)
            oh = (p0 // OW) % OH
            ow = p0 % OW
            j = 0
            while j < pc:
                seg = min(OW - ow, pc - j)
                for kw in range(KW):
                    src = cols + ((kd * KH + kh) * KW + kw) * rstride + j
                    dst = plane + ((od * sd + kd * dd) * H + oh * sh + kh * dh) * W \
                        + ow * sw + kw * dw
                    if sw == 1:
                        for i in range(seg):
                            dst[i] += src[i]
                    else:
                        for i in range(seg):
                            dst[i * sw] += src[i]
                j += seg
                ow = 0
                oh += 1
                if oh == OH:
                    oh = 0
                    od += 1


cdef void _wide_row(floating* a, Py_ssize_t P, floating* b, Py_ssize_t q,
                    bint to_wide) noexcept nogil:
    """One row of the transposed copy between a (one image's channel, from position p0)
    and b (its q positions in the wide matrix)."""
    cdef Py_ssize_t j
    if to_wide:
        for j in range(q):
            b[j] = a[j]
    else:
        for j in range(q):
            a[j] = b[j]


# ---- drivers: called with the GIL (the caller coerces the memoryviews), release it; BLAS is
# never called inside prange.  Column layout of a chunk of m images and q positions: row r of
# image i starts at i*istride + r*rstride (blocks: istride = rows*q, rstride = q; wide:
# istride = q, rstride = m*q).

cdef void _build(const floating[:, :, :, :, ::1] xp, Py_ssize_t n0, Py_ssize_t m,
                 Py_ssize_t KD, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t OH, Py_ssize_t OW,
                 Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd, Py_ssize_t dh,
                 Py_ssize_t dw, Py_ssize_t p0, Py_ssize_t q, floating* cols,
                 Py_ssize_t istride, Py_ssize_t rstride, int nthreads) noexcept nogil:
    """Columns p0 .. p0 + q of images n0 .. n0 + m (every channel) into cols."""
    cdef Py_ssize_t units = xp.shape[1] * KD * KH, t, i, u
    cdef Py_ssize_t D = xp.shape[2], H = xp.shape[3], W = xp.shape[4]
    for t in prange(m * units, schedule="static", num_threads=nthreads):
        i = t // units
        u = t - i * units
        _build_unit(&xp[n0 + i, u // (KD * KH), 0, 0, 0], H, W, (u // KH) % KD, u % KH, KW,
                    OH, OW, sd, sh, sw, dd, dh, dw, p0, q,
                    cols + i * istride + u * KW * rstride, rstride)


cdef void _wide_copy(floating* a, Py_ssize_t C, Py_ssize_t P, Py_ssize_t ch0, Py_ssize_t cog,
                     Py_ssize_t m, Py_ssize_t p0, Py_ssize_t q, floating* b, bint to_wide,
                     int nthreads) noexcept nogil:
    """Between a (images n0.., C channels, P positions; a points at image n0) and the wide
    b (cog, m*q): channels ch0 .. ch0 + cog, positions p0 .. p0 + q."""
    cdef Py_ssize_t t, i, o
    for t in prange(m * cog, schedule="static", num_threads=nthreads):
        i = t // cog
        o = t - i * cog
        _wide_row(a + (i * C + ch0 + o) * P + p0, P, b + o * m * q + i * q, q, to_wide)


cdef void _forward(const floating[:, :, :, :, ::1] xp, const floating[:, :, :, :, ::1] w,
                   floating[:, :, :, :, ::1] y, Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                   Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups,
                   floating[::1] cols, floating[::1] tmp, Py_ssize_t nb, Py_ssize_t pc,
                   bint block, bint direct, int nthreads) noexcept:
    cdef Py_ssize_t KD = w.shape[2], KH = w.shape[3], KW = w.shape[4]
    cdef Py_ssize_t N = y.shape[0], CO = y.shape[1]
    cdef Py_ssize_t OH = y.shape[3], OW = y.shape[4], P = y.shape[2] * OH * OW
    cdef Py_ssize_t cg = w.shape[1], cog = CO // groups, K = cg * KD * KH * KW
    cdef Py_ssize_t rows = groups * K
    cdef Py_ssize_t n, n0, m, g, p0, q, i, istride, rstride
    with nogil:
        if direct:
            for n in range(N):
                for g in range(groups):
                    _gemm(c"N", c"N", cog, P, K, &w[g * cog, 0, 0, 0, 0], K,
                          &xp[n, g * cg, 0, 0, 0], P, 0, &y[n, g * cog, 0, 0, 0], P)
            return
        n0 = 0
        while n0 < N:
            m = min(nb, N - n0)
            p0 = 0
            while p0 < P:
                q = min(pc, P - p0)
                istride = rows * q if block else q
                rstride = q if block else m * q
                _build(xp, n0, m, KD, KH, KW, OH, OW, sd, sh, sw, dd, dh, dw, p0, q, &cols[0],
                       istride, rstride, nthreads)
                for g in range(groups):
                    if block:
                        for i in range(m):
                            _gemm(c"N", c"N", cog, q, K, &w[g * cog, 0, 0, 0, 0], K,
                                  &cols[i * istride + g * K * q], q, 0,
                                  &y[n0 + i, g * cog, 0, 0, 0], P)
                    else:
                        _gemm(c"N", c"N", cog, m * q, K, &w[g * cog, 0, 0, 0, 0], K,
                              &cols[g * K * rstride], rstride, 0, &tmp[0], m * q)
                        _wide_copy(&y[n0, 0, 0, 0, 0], CO, P, g * cog, cog, m, p0, q, &tmp[0],
                                   False, nthreads)
                p0 += q
            n0 += m


cdef void _grad_input(const floating[:, :, :, :, ::1] gy, const floating[:, :, :, :, ::1] w,
                      floating[:, :, :, :, ::1] gxp, Py_ssize_t sd, Py_ssize_t sh,
                      Py_ssize_t sw, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                      Py_ssize_t groups, floating[::1] cols, floating[::1] tmp, Py_ssize_t nb,
                      Py_ssize_t pc, bint block, bint direct, int nthreads) noexcept:
    cdef Py_ssize_t KD = w.shape[2], KH = w.shape[3], KW = w.shape[4], T = KD * KH * KW
    cdef Py_ssize_t N = gy.shape[0], CO = gy.shape[1], C = gxp.shape[1]
    cdef Py_ssize_t OH = gy.shape[3], OW = gy.shape[4], P = gy.shape[2] * OH * OW
    cdef Py_ssize_t cg = w.shape[1], cog = CO // groups, K = cg * T, rows = groups * K
    cdef Py_ssize_t D = gxp.shape[2], H = gxp.shape[3], W = gxp.shape[4]
    cdef Py_ssize_t n, n0, m, g, p0, q, i, t, c, istride, rstride
    with nogil:
        if direct:
            for n in range(N):
                for g in range(groups):
                    _gemm(c"T", c"N", cg, P, cog, &w[g * cog, 0, 0, 0, 0], K,
                          &gy[n, g * cog, 0, 0, 0], P, 0, &gxp[n, g * cg, 0, 0, 0], P)
            return
        n0 = 0
        while n0 < N:
            m = min(nb, N - n0)
            p0 = 0
            while p0 < P:
                q = min(pc, P - p0)
                istride = rows * q if block else q
                rstride = q if block else m * q
                for g in range(groups):
                    if block:
                        for i in range(m):
                            _gemm(c"T", c"N", K, q, cog, &w[g * cog, 0, 0, 0, 0], K,
                                  &gy[n0 + i, g * cog, 0, 0, 0], P, 0,
                                  &cols[i * istride + g * K * q], q)
                    else:
                        _wide_copy(<floating*>&gy[n0, 0, 0, 0, 0], CO, P, g * cog, cog, m, p0,
                                   q, &tmp[0], True, nthreads)
                        _gemm(c"T", c"N", K, m * q, cog, &w[g * cog, 0, 0, 0, 0], K, &tmp[0],
                              m * q, 0, &cols[g * K * rstride], rstride)
                for t in prange(m * C, schedule="static", num_threads=nthreads):
                    i = t // C
                    c = t - i * C
                    _scatter_plane(&cols[i * istride + c * T * rstride], rstride,
                                   &gxp[n0 + i, c, 0, 0, 0], D, H, W, KD, KH, KW, OH, OW,
                                   sd, sh, sw, dd, dh, dw, p0, q, p0 == 0)
                p0 += q
            n0 += m


cdef void _grad_weight(const floating[:, :, :, :, ::1] gy, const floating[:, :, :, :, ::1] xp,
                       floating[:, :, :, :, ::1] gw, Py_ssize_t sd, Py_ssize_t sh,
                       Py_ssize_t sw, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                       Py_ssize_t groups, floating[::1] cols, floating[::1] tmp, Py_ssize_t nb,
                       Py_ssize_t pc, bint block, bint direct, int nthreads) noexcept:
    cdef Py_ssize_t KD = gw.shape[2], KH = gw.shape[3], KW = gw.shape[4]
    cdef Py_ssize_t N = gy.shape[0], CO = gy.shape[1]
    cdef Py_ssize_t OH = gy.shape[3], OW = gy.shape[4], P = gy.shape[2] * OH * OW
    cdef Py_ssize_t cg = gw.shape[1], cog = CO // groups, K = cg * KD * KH * KW
    cdef Py_ssize_t rows = groups * K
    cdef Py_ssize_t n, n0, m, g, p0, q, i, istride, rstride
    # the first product lands in gw (beta = 0), later ones accumulate (beta = 1)
    cdef floating beta = 0
    with nogil:
        if direct:
            for n in range(N):
                for g in range(groups):
                    _gemm(c"N", c"T", cog, K, P, &gy[n, g * cog, 0, 0, 0], P,
                          &xp[n, g * cg, 0, 0, 0], P, beta, &gw[g * cog, 0, 0, 0, 0], K)
                beta = 1
            return
        n0 = 0
        while n0 < N:
            m = min(nb, N - n0)
            p0 = 0
            while p0 < P:
                q = min(pc, P - p0)
                istride = rows * q if block else q
                rstride = q if block else m * q
                _build(xp, n0, m, KD, KH, KW, OH, OW, sd, sh, sw, dd, dh, dw, p0, q, &cols[0],
                       istride, rstride, nthreads)
                for g in range(groups):
                    if block:
                        for i in range(m):
                            _gemm(c"N", c"T", cog, K, q, &gy[n0 + i, g * cog, 0, 0, 0], P,
                                  &cols[i * istride + g * K * q], q, 1 if i else beta,
                                  &gw[g * cog, 0, 0, 0, 0], K)
                    else:
                        _wide_copy(<floating*>&gy[n0, 0, 0, 0, 0], CO, P, g * cog, cog, m, p0,
                                   q, &tmp[0], True, nthreads)
                        _gemm(c"N", c"T", cog, K, m * q, &tmp[0], m * q,
                              &cols[g * K * rstride], rstride, beta, &gw[g * cog, 0, 0, 0, 0],
                              K)
                beta = 1
                p0 += q
            n0 += m


# ---- the team layout: one image per team thread at a time, its columns built and its GEMMs
# run by that thread alone on a single-threaded BLAS (the caller sets BLAS to one thread around
# the region).  No thread waits on another until the region ends: nothing like the spin
# barriers inside a multi-threaded GEMM, which on a busy machine wait for a descheduled
# partner, and no BLAS pool to wake per call.  Grad-weight sums into one private copy of gw
# per thread (static schedule: the same images per thread each call), added up afterwards.

cdef void _build_image(const floating[:, :, :, :, ::1] xp, Py_ssize_t n, Py_ssize_t KD,
                       Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t OH, Py_ssize_t OW,
                       Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd,
                       Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t p0, Py_ssize_t q,
                       floating* cols) noexcept nogil:
    """Columns p0 .. p0 + q of image n (every channel) into cols (row stride q), serially."""
    cdef Py_ssize_t units = xp.shape[1] * KD * KH, u
    cdef Py_ssize_t H = xp.shape[3], W = xp.shape[4]
    for u in range(units):
        _build_unit(&xp[n, u // (KD * KH), 0, 0, 0], H, W, (u // KH) % KD, u % KH, KW,
                    OH, OW, sd, sh, sw, dd, dh, dw, p0, q, cols + u * KW * q, q)


cdef void _forward_image(const floating[:, :, :, :, ::1] xp, const floating[:, :, :, :, ::1] w,
                         floating[:, :, :, :, ::1] y, Py_ssize_t n, Py_ssize_t sd,
                         Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd, Py_ssize_t dh,
                         Py_ssize_t dw, Py_ssize_t groups, floating* cols, Py_ssize_t pc,
                         bint direct) noexcept nogil:
    cdef Py_ssize_t KD = w.shape[2], KH = w.shape[3], KW = w.shape[4]
    cdef Py_ssize_t CO = y.shape[1], OH = y.shape[3], OW = y.shape[4]
    cdef Py_ssize_t P = y.shape[2] * OH * OW, cg = w.shape[1], cog = CO // groups
    cdef Py_ssize_t K = cg * KD * KH * KW, g, q, p0 = 0
    if direct:
        for g in range(groups):
            _gemm(c"N", c"N", cog, P, K, &w[g * cog, 0, 0, 0, 0], K, &xp[n, g * cg, 0, 0, 0],
                  P, 0, &y[n, g * cog, 0, 0, 0], P)
        return
    while p0 < P:
        q = min(pc, P - p0)
        _build_image(xp, n, KD, KH, KW, OH, OW, sd, sh, sw, dd, dh, dw, p0, q, cols)
        for g in range(groups):
            _gemm(c"N", c"N", cog, q, K, &w[g * cog, 0, 0, 0, 0], K, cols + g * K * q, q, 0,
                  &y[n, g * cog, 0, 0, 0] + p0, P)
        p0 += q


cdef void _grad_input_image(const floating[:, :, :, :, ::1] gy,
                            const floating[:, :, :, :, ::1] w, floating[:, :, :, :, ::1] gxp,
                            Py_ssize_t n, Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                            Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups,
                            floating* cols, Py_ssize_t pc, bint direct) noexcept nogil:
    cdef Py_ssize_t KD = w.shape[2], KH = w.shape[3], KW = w.shape[4], T = KD * KH * KW
    cdef Py_ssize_t CO = gy.shape[1], C = gxp.shape[1], OH = gy.shape[3], OW = gy.shape[4]
    cdef Py_ssize_t P = gy.shape[2] * OH * OW, cg = w.shape[1], cog = CO // groups
    cdef Py_ssize_t K = cg * T, D = gxp.shape[2], H = gxp.shape[3], W = gxp.shape[4]
    cdef Py_ssize_t g, c, q, p0 = 0
    if direct:
        for g in range(groups):
            _gemm(c"T", c"N", cg, P, cog, &w[g * cog, 0, 0, 0, 0], K, &gy[n, g * cog, 0, 0, 0],
                  P, 0, &gxp[n, g * cg, 0, 0, 0], P)
        return
    while p0 < P:
        q = min(pc, P - p0)
        for g in range(groups):
            _gemm(c"T", c"N", K, q, cog, &w[g * cog, 0, 0, 0, 0], K,
                  &gy[n, g * cog, 0, 0, 0] + p0, P, 0, cols + g * K * q, q)
        for c in range(C):
            _scatter_plane(cols + c * T * q, q, &gxp[n, c, 0, 0, 0], D, H, W, KD, KH, KW, OH,
                           OW, sd, sh, sw, dd, dh, dw, p0, q, p0 == 0)
        p0 += q


cdef void _grad_weight_image(const floating[:, :, :, :, ::1] gy,
                             const floating[:, :, :, :, ::1] xp, floating* gw,
                             Py_ssize_t KD, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t n,
                             Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd,
                             Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups, floating* cols,
                             Py_ssize_t pc, bint direct) noexcept nogil:
    """gw (C_out, Cg*KD*KH*KW, row-major) += image n's products."""
    cdef Py_ssize_t CO = gy.shape[1], OH = gy.shape[3], OW = gy.shape[4]
    cdef Py_ssize_t P = gy.shape[2] * OH * OW, cg = xp.shape[1] // groups, cog = CO // groups
    cdef Py_ssize_t K = cg * KD * KH * KW, g, q, p0 = 0
    if direct:
        for g in range(groups):
            _gemm(c"N", c"T", cog, K, P, &gy[n, g * cog, 0, 0, 0], P, &xp[n, g * cg, 0, 0, 0],
                  P, 1, gw + g * cog * K, K)
        return
    while p0 < P:
        q = min(pc, P - p0)
        _build_image(xp, n, KD, KH, KW, OH, OW, sd, sh, sw, dd, dh, dw, p0, q, cols)
        for g in range(groups):
            _gemm(c"N", c"T", cog, K, q, &gy[n, g * cog, 0, 0, 0] + p0, P, cols + g * K * q, q,
                  1, gw + g * cog * K, K)
        p0 += q


cdef floating _thread_sum(const floating* parts, Py_ssize_t nparts, Py_ssize_t size,
                          Py_ssize_t e) noexcept nogil:
    cdef floating total = 0
    cdef Py_ssize_t t
    for t in range(nparts):
        total = total + parts[t * size + e]
    return total


cdef void _forward_team(const floating[:, :, :, :, ::1] xp, const floating[:, :, :, :, ::1] w,
                        floating[:, :, :, :, ::1] y, Py_ssize_t sd, Py_ssize_t sh,
                        Py_ssize_t sw, Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t groups, floating[::1] cols, Py_ssize_t per,
                        Py_ssize_t pc, bint direct, int nthreads) noexcept:
    cdef Py_ssize_t n
    with nogil:
        for n in prange(y.shape[0], schedule="static", num_threads=nthreads):
            _forward_image(xp, w, y, n, sd, sh, sw, dd, dh, dw, groups,
                           &cols[0] + threadid() * per, pc, direct)


cdef void _grad_input_team(const floating[:, :, :, :, ::1] gy,
                           const floating[:, :, :, :, ::1] w, floating[:, :, :, :, ::1] gxp,
                           Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd,
                           Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups,
                           floating[::1] cols, Py_ssize_t per, Py_ssize_t pc, bint direct,
                           int nthreads) noexcept:
    cdef Py_ssize_t n
    with nogil:
        for n in prange(gy.shape[0], schedule="static", num_threads=nthreads):
            _grad_input_image(gy, w, gxp, n, sd, sh, sw, dd, dh, dw, groups,
                              &cols[0] + threadid() * per, pc, direct)


cdef void _grad_weight_team(const floating[:, :, :, :, ::1] gy,
                            const floating[:, :, :, :, ::1] xp, floating[:, :, :, :, ::1] gw,
                            Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dd,
                            Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t groups,
                            floating[::1] cols, Py_ssize_t per, Py_ssize_t pc, bint direct,
                            floating[::1] parts, int nthreads) noexcept:
    cdef Py_ssize_t n, e, size = gw.shape[0] * gw.shape[1] * gw.shape[2] * gw.shape[3] \
        * gw.shape[4]
    cdef floating* out = &gw[0, 0, 0, 0, 0]
    with nogil:
        memset(&parts[0], 0, nthreads * size * sizeof(floating))
        for n in prange(gy.shape[0], schedule="static", num_threads=nthreads):
            _grad_weight_image(gy, xp, &parts[0] + threadid() * size, gw.shape[2], gw.shape[3],
                               gw.shape[4], n, sd, sh, sw, dd, dh, dw, groups,
                               &cols[0] + threadid() * per, pc, direct)
        for e in prange(size, schedule="static", num_threads=nthreads):
            out[e] = _thread_sum(&parts[0], nthreads, size, e)


cdef class _SingleThreadedBlas:
    """Within the block, the BLAS the GEMMs call runs on one thread (its previous count
    restored after, also on an error)."""
    cdef int previous

    def __enter__(self):
        self.previous = _blas_get()
        _blas_set(1)

    def __exit__(self, *exc):
        _blas_set(self.previous)
        return False


def _team_plan(r, n_images, rows, positions, max_col_elems):
    """(threads, column elements per thread, positions per chunk) of the team layout, or
    None when it does not apply: no thread-count API, one thread, too little work for a
    parallel region (config.IM2COL_PARALLEL_MIN_ELEMS over the whole batch), or fewer images
    than would keep the team evenly busy (config.IM2COL_TEAM_MIN_IMAGES per thread, unless
    they divide evenly)."""
    cdef int nt = team()
    if (not config.IM2COL_TEAM or _blas_set == NULL or nt < 2
            or n_images * rows * positions < config.IM2COL_PARALLEL_MIN_ELEMS):
        return None
    if n_images % nt and n_images < config.IM2COL_TEAM_MIN_IMAGES * nt:
        return None
    if r["direct"]:
        return nt, 0, positions
    pc = max(1, min(positions, max_col_elems // (rows * nt)))
    return nt, rows * pc, pc


# ---- Python-level wrappers: validate, plan the chunks, dispatch on dtype

def _prepare(op, names, arrays, ints, max_col_elems, xi, wi, yi, grid):
    """Check and plan one call once (kernels.plan.im2col_call; the wide layout's transposed
    copy holds one group's C_out/groups rows) and allocate its buffers.  None after zeroing
    the output when an array is empty; else (True, team plan) -- (dtype, strides, dilations,
    groups, column buffer, elements per thread, positions per chunk, direct, threads) -- when
    the team layout applies (``grid``: the array with the output positions, batch first),
    or (False, layouts plan) -- (dtype, strides, dilations, groups, column buffer,
    transposed-copy buffer, images and positions per chunk, block layout, direct, OpenMP
    threads for the copies)."""
    r = plan.im2col_call(op, names, arrays, ints, max_col_elems, xi, wi, yi, False)
    if r is None:
        arrays[-1].fill(0)
        return None
    dt, groups = r["dtype"], r["groups"]
    positions = 1
    for v in arrays[grid].shape[2:]:
        positions *= v
    t = _team_plan(r, arrays[grid].shape[0], groups * r["rows_g"], positions, max_col_elems)
    if t is not None:
        nt, per, pc = t
        return True, (dt, r["strides"], r["dilations"], groups,
                      np.empty(max(1, nt * per), dtype=dt), per, pc, r["direct"], nt)
    nb, pc, block = r["nb"], r["pc"], r["block"]
    k, cog = r["rows_g"], r["cog"]
    if r["direct"]:
        cols, tmp = np.empty(1, dtype=dt), np.empty(1, dtype=dt)
    else:
        cols = np.empty(nb * groups * k * pc, dtype=dt)
        tmp = np.empty(1 if block else cog * nb * pc, dtype=dt)
    nthreads = team() if r["parallel"] else 1
    return False, (dt, r["strides"], r["dilations"], groups, cols, tmp, nb, pc, block,
                   r["direct"], nthreads)


def im2col_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """y (N, C_out, OD, OH, OW) = cross-correlation of the padded input xp (N, C, D, H, W) with
    w (C_out, C/groups, KD, KH, KW), as column matrix times weight matrix (BLAS); y is
    overwritten.  The column buffer (plus, for small GEMMs, a transposed copy of the output
    chunk) holds at most max(max_col_elems, C*KD*KH*KW + C_out/groups) elements."""
    planned = _prepare("cython im2col_forward", ("xp", "w", "y"), (xp, w, y),
                       (sd, sh, sw, dd, dh, dw, groups), max_col_elems, 0, 1, 2, 2)
    if planned is None:
        return
    team_layout, r = planned
    if team_layout:
        dt, s, d, groups, cols, per, pc, direct, nt = r
        with _SingleThreadedBlas():
            if dt == np.float32:
                _forward_team[float](xp, w, y, s[0], s[1], s[2], d[0], d[1], d[2], groups,
                                     cols, per, pc, direct, nt)
            else:
                _forward_team[double](xp, w, y, s[0], s[1], s[2], d[0], d[1], d[2], groups,
                                      cols, per, pc, direct, nt)
        return
    dt, s, d, groups, cols, tmp, nb, pc, block, direct, nt = r
    if dt == np.float32:
        _forward[float](xp, w, y, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols, tmp, nb,
                        pc, block, direct, nt)
    else:
        _forward[double](xp, w, y, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols, tmp, nb,
                         pc, block, direct, nt)


def im2col_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """gxp (N, C, D, H, W) = gradient w.r.t. the padded input, from gy (N, C_out, OD, OH, OW)
    and w (C_out, C/groups, KD, KH, KW): columns W_g^T @ GY_g (BLAS) scatter-added by col2im;
    gxp is overwritten."""
    planned = _prepare("cython im2col_grad_input", ("gy", "w", "gxp"), (gy, w, gxp),
                       (sd, sh, sw, dd, dh, dw, groups), max_col_elems, 2, 1, 0, 0)
    if planned is None:
        return
    team_layout, r = planned
    if team_layout:
        dt, s, d, groups, cols, per, pc, direct, nt = r
        with _SingleThreadedBlas():
            if dt == np.float32:
                _grad_input_team[float](gy, w, gxp, s[0], s[1], s[2], d[0], d[1], d[2],
                                        groups, cols, per, pc, direct, nt)
            else:
                _grad_input_team[double](gy, w, gxp, s[0], s[1], s[2], d[0], d[1], d[2],
                                         groups, cols, per, pc, direct, nt)
        return
    dt, s, d, groups, cols, tmp, nb, pc, block, direct, nt = r
    if dt == np.float32:
        _grad_input[float](gy, w, gxp, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols, tmp,
                           nb, pc, block, direct, nt)
    else:
        _grad_input[double](gy, w, gxp, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols, tmp,
                            nb, pc, block, direct, nt)


def im2col_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """gw (C_out, C/groups, KD, KH, KW) = gradient w.r.t. the weight, from gy
    (N, C_out, OD, OH, OW) and the padded input xp (N, C, D, H, W): sum over images of
    GY_g @ cols^T (BLAS, accumulated in gw with beta = 1); gw is overwritten."""
    planned = _prepare("cython im2col_grad_weight", ("gy", "xp", "gw"), (gy, xp, gw),
                       (sd, sh, sw, dd, dh, dw, groups), max_col_elems, 1, 2, 0, 0)
    if planned is None:
        return
    team_layout, r = planned
    if team_layout:
        dt, s, d, groups, cols, per, pc, direct, nt = r
        parts = np.empty(nt * gw.size, dtype=dt)
        with _SingleThreadedBlas():
            if dt == np.float32:
                _grad_weight_team[float](gy, xp, gw, s[0], s[1], s[2], d[0], d[1], d[2],
                                         groups, cols, per, pc, direct, parts, nt)
            else:
                _grad_weight_team[double](gy, xp, gw, s[0], s[1], s[2], d[0], d[1], d[2],
                                          groups, cols, per, pc, direct, parts, nt)
        return
    dt, s, d, groups, cols, tmp, nb, pc, block, direct, nt = r
    if dt == np.float32:
        _grad_weight[float](gy, xp, gw, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols, tmp,
                            nb, pc, block, direct, nt)
    else:
        _grad_weight[double](gy, xp, gw, s[0], s[1], s[2], d[0], d[1], d[2], groups, cols,
                             tmp, nb, pc, block, direct, nt)
