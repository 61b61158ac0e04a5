# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: language_level=3
"""A hand-written, cache-blocked, OpenMP-parallel matrix product c = a @ b.

It exists to be compared with BLAS (which the convolution kernels use), not to replace it.
For each (KC x NC) block of b, copied once into a contiguous buffer, threads take MC-row
blocks of a (prange) and update their rows of c, four at a time, with vectorised row
axpys (c_i += a_ik * b_k).  Any size works: blocks are clipped at the edges.  What it
lacks compared with BLAS -- register tiling of c, packing of a, a hand-scheduled
micro-kernel -- is exactly what the comparison shows.
"""
from cython cimport floating
from cython.parallel cimport prange
from .threads cimport team

import numpy as np

from .. import plan

cdef enum:
    MC = 64     # rows of a taken by one thread at a time
    KC = 256    # depth of a packed block of b
    NC = 512    # columns of a packed block of b: one KC x NC block (512 KiB in float32)
                # stays in L2 while a thread's c rows (NC wide) stay in L1


cdef void _axpy4(floating* c0, floating* c1, floating* c2, floating* c3, const floating* b,
                 floating a0, floating a1, floating a2, floating a3,
                 Py_ssize_t n) noexcept nogil:
    """c_r[j] += a_r * b[j] for four rows r: each load of b feeds four FMAs."""
    cdef Py_ssize_t j
    cdef floating bj
    for j in range(n):
        bj = b[j]
        c0[j] += a0 * bj
        c1[j] += a1 * bj
        c2[j] += a2 * bj
        c3[j] += a3 * bj


cdef void _axpy1(floating* c, const floating* b, floating a, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        c[j] += a * b[j]


cdef void _pack_b(const floating[:, ::1] b, Py_ssize_t k, Py_ssize_t j0, Py_ssize_t nc,
                  floating* dst) noexcept nogil:
    """dst[:nc] = b[k, j0:j0 + nc]"""
    cdef Py_ssize_t j
    for j in range(nc):
        dst[j] = b[k, j0 + j]


cdef void _row_block(const floating[:, ::1] a, floating[:, ::1] c, const floating* bp,
                     Py_ssize_t i0, Py_ssize_t mc, Py_ssize_t k0, Py_ssize_t kc,
                     Py_ssize_t j0, Py_ssize_t nc) noexcept nogil:
    """c[i0:i0+mc, j0:j0+nc] (+)= a[i0:i0+mc, k0:k0+kc] @ bp, bp the packed (kc x nc) block
    of b; four rows at a time, then the remaining rows one by one."""
    cdef Py_ssize_t i, k, j
    if k0 == 0:
        for i in range(i0, i0 + mc):
            for j in range(nc):
                c[i, j0 + j] = 0
    i = i0
    while i + 4 <= i0 + mc:
        for k in range(kc):
            _axpy4(&c[i, j0], &c[i + 1, j0], &c[i + 2, j0], &c[i + 3, j0], bp + k * nc,
                   a[i, k0 + k], a[i + 1, k0 + k], a[i + 2, k0 + k], a[i + 3, k0 + k], nc)
        i += 4
    while i < i0 + mc:
        for k in range(kc):
            _axpy1(&c[i, j0], bp + k * nc, a[i, k0 + k], nc)
        i += 1


cdef void _matmul(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c,
                  floating[::1] bpack, int nthreads) noexcept:
    cdef Py_ssize_t M = a.shape[0], K = a.shape[1], N = b.shape[1]
    cdef Py_ssize_t j0, k0, nc, kc, k, ib, jb, kb
    for jb in range((N + NC - 1) // NC):
        j0 = jb * NC
        nc = min(<Py_ssize_t>NC, N - j0)
        for kb in range((K + KC - 1) // KC):
            k0 = kb * KC
            kc = min(<Py_ssize_t>KC, K - k0)
            for k in prange(kc, schedule="static", num_threads=nthreads, nogil=True):
                _pack_b(b, k0 + k, j0, nc, &bpack[k * nc])
            # row blocks are independent outputs: each thread owns its rows of c
            for ib in prange((M + MC - 1) // MC, schedule="dynamic", num_threads=nthreads,
                             nogil=True):
                _row_block(a, c, &bpack[0], ib * MC, min(<Py_ssize_t>MC, M - ib * MC), k0, kc,
                           j0, nc)


def matmul(a, b, c):
    """c (M, N) = a (M, K) @ b (K, N), all C-contiguous 2-D of one float dtype; c is
    overwritten.  A blocked OpenMP kernel, to compare with BLAS."""
    dt = plan.matmul_call("cython matmul", a, b, c)
    if c.size == 0:
        return
    if a.shape[1] == 0:
        c.fill(0)
        return
    cdef int nthreads = team()
    bpack = np.empty(KC * NC, dtype=dt)
    if dt == np.float32:
        _matmul[float](a, b, c, bpack, nthreads)
    else:
        _matmul[double](a, b, c, bpack, nthreads)
