"""A shared-memory tiled GEMM with register blocking, and the matmul built on it.

One kernel serves matmul and the three im2col products.  It computes, for every batch index
z = (z1, z2)::

    C[z][i, j] (+)= sum_k A[z][i, k] * B[z][k, j]

on flat device arrays addressed through element strides, so transposes, groups and images
are strides, not copies.  The k index may be split in two, k = k1 * kdiv + k2, each part with
its own stride: the weight gradient sums over (image, position) pairs as one long k.

A block owns a BM x BN tile of C.  It walks k in steps of BK: the block stages a BM x BK
slice of A and a BK x BN slice of B in shared memory (loaded along whichever dim is
contiguous in global memory, so the loads coalesce), then each thread multiplies TM values of
A by TN values of B from shared memory into its TM x TN accumulators (registers).  Thread
(ty, tx) owns rows ty + i*(BM/TM) and columns tx + j*(BN/TN): neighbouring threads read
neighbouring shared-memory words (no bank conflicts) and write neighbouring columns of C.
Blocks loop grid-stride over (batch, tile) pairs, and edge tiles are zero-padded on load and
clipped on store, so any M, N, K and grid size work.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from . import config
from ._device import blocks_for, check_arrays, device_io, fill, flat

_kernels = {}


def _make_kernel(dtype, bm, bn, bk, tm, tn):
    dt = np.dtype(dtype).type
    nx = bn // tn          # threads along a tile row
    row_step = bm // tm    # distance between the rows one thread owns
    nt = row_step * nx     # threads per block

    @cuda.jit
    def gemm(a, b, c, m, n, k, nbatch, nb2, kdiv,
             a_off, a_s1, a_s2, a_sm, a_sk1, a_sk2,
             b_off, b_s1, b_s2, b_sk1, b_sk2, b_sn,
             c_off, c_s1, c_s2, c_sm, c_sn, accumulate):
        sa = cuda.shared.array((bk, bm), dt)
        sb = cuda.shared.array((bk, bn), dt)
        acc = cuda.local.array((tm, tn), dt)
        ra = cuda.local.array(tm, dt)
        rb = cuda.local.array(tn, dt)
        tid = cuda.threadIdx.x
        tx = tid % nx
        ty = tid // nx
        tiles_m = (m + bm - 1) // bm
        tiles_n = (n + bn - 1) // bn
        per_batch = tiles_m * tiles_n
        split_k = kdiv < k
        for t in range(cuda.blockIdx.x, nbatch * per_batch, cuda.gridDim.x):
            z = t // per_batch
            r = t - z * per_batch
            i0 = (r // tiles_n) * bm
            j0 = (r - (r // tiles_n) * tiles_n) * bn
            z1 = z // nb2
            z2 = z - z1 * nb2
            a_base = a_off + z1 * a_s1 + z2 * a_s2
            b_base = b_off + z1 * b_s1 + z2 * b_s2
            for i in range(tm):
                for j in range(tn):
                    acc[i, j] = 0
            for k0 in range(0, k, bk):
                # stage A[i0:i0+bm, k0:k0+bk] (transposed) and B[k0:k0+bk, j0:j0+bn]
                for e in range(tid, bm * bk, nt):
                    if a_sk2 == 1:
                        kk = e % bk
                        ii = e // bk
                    else:
                        ii = e % bm
                        kk = e // bm
                    gi = i0 + ii
                    gk = k0 + kk
                    if gi < m and gk < k:
                        k1 = gk // kdiv if split_k else 0
                        sa[kk, ii] = a[a_base + gi * a_sm + k1 * a_sk1
                                       + (gk - k1 * kdiv) * a_sk2]
                    else:
                        sa[kk, ii] = 0
                for e in range(tid, bk * bn, nt):
                    if b_sn == 1:
                        jj = e % bn
                        kk = e // bn
                    else:
                        kk = e % bk
                        jj = e // bk
                    gj = j0 + jj
                    gk = k0 + kk
                    if gj < n and gk < k:
                        k1 = gk // kdiv if split_k else 0
                        sb[kk, jj] = b[b_base + k1 * b_sk1 + (gk - k1 * kdiv) * b_sk2
                                       + gj * b_sn]
                    else:
                        sb[kk, jj] = 0
                cuda.syncthreads()
                for kk in range(bk):
                    for i in range(tm):
                        ra[i] = sa[kk, ty + i * row_step]
                    for j in range(tn):
                        rb[j] = sb[kk, tx + j * nx]
                    for i in range(tm):
                        for j in range(tn):
                            acc[i, j] += ra[i] * rb[j]
                cuda.syncthreads()
            c_base = c_off + z1 * c_s1 + z2 * c_s2
            for i in range(tm):
                gi = i0 + ty + i * row_step
                if gi < m:
                    for j in range(tn):
                        gj = j0 + tx + j * nx
                        if gj < n:
                            idx = c_base + gi * c_sm + gj * c_sn
                            if accumulate:
                                c[idx] += acc[i, j]
                            else:
                                c[idx] = acc[i, j]

    return gemm, nt


def kernel(dtype):
    """(kernel, threads per block) for ``dtype`` and the current config.GEMM_TILE."""
    tile = config.gemm_tile()
    key = (np.dtype(dtype).name,) + tile
    if key not in _kernels:
        _kernels[key] = _make_kernel(dtype, *tile)
    return _kernels[key]


class Operand:
    """A flat device array and the element strides of a batched 2-D operand.

    off: first element; s1, s2: strides of the two batch indices; rows, cols: strides of
    the matrix dims; k_outer: stride of k1 when k is split as k1 * kdiv + k2 (the k dim's own
    stride, rows for B and cols for A, applies to k2).
    """

    def __init__(self, arr, off=0, s1=0, s2=0, rows=0, cols=1, k_outer=0):
        self.arr, self.off, self.s1, self.s2 = arr, off, s1, s2
        self.rows, self.cols, self.k_outer = rows, cols, k_outer


def gemm(a, b, c, m, n, k, nb1=1, nb2=1, kdiv=None, accumulate=False):
    """Launch C (+)= A @ B over nb1 x nb2 batches; a, b, c are :class:`Operand` on device."""
    if m == 0 or n == 0 or nb1 * nb2 == 0:
        return
    dtype = c.arr.dtype
    kern, nt = kernel(dtype)
    bm, bn = config.gemm_tile()[:2]
    tiles = nb1 * nb2 * -(-m // bm) * -(-n // bn)
    kdiv = k if kdiv is None else kdiv
    kern[blocks_for(tiles, 1), nt](
        a.arr, b.arr, c.arr, m, n, k, nb1 * nb2, nb2, max(kdiv, 1),
        a.off, a.s1, a.s2, a.rows, a.k_outer, a.cols,
        b.off, b.s1, b.s2, b.k_outer, b.rows, b.cols,
        c.off, c.s1, c.s2, c.rows, c.cols, accumulate)


def matmul(a, b, c, trans_a=False, trans_b=False):
    """``c = op(a) @ op(b)`` with the tiled GEMM kernel (to compare with cuBLAS, not to replace
    it); op is a transpose when asked, done as strides (no copy), so a Dense backward needs no
    transposed buffers.

    Parameters
    ----------
    a : array (M, K), or (K, M) with ``trans_a``; float32 or float64, C-contiguous, NumPy or
        CUDA device array.
    b : array (K, N), or (N, K) with ``trans_b``; same dtype.
    c : array (M, N), same dtype, overwritten (copied back when it is a NumPy array).

    Examples
    --------
    >>> a = np.arange(6.0).reshape(2, 3); b = np.ones((3, 1)); c = np.empty((2, 1))
    >>> matmul(a, b, c); c.ravel().tolist()
    [3.0, 12.0]
    >>> a = np.arange(6.0).reshape(3, 2); c = np.empty((2, 2))
    >>> matmul(a, a, c, trans_a=True); c.tolist()
    [[20.0, 26.0], [26.0, 35.0]]
    """
    op = "matmul"
    check_arrays(op, ("a", "b", "c"), (a, b, c), 2)
    m, k = (a.shape[1], a.shape[0]) if trans_a else tuple(a.shape)
    kb, n = (b.shape[1], b.shape[0]) if trans_b else tuple(b.shape)
    if kb != k or tuple(c.shape) != (m, n):
        raise ValueError(f"{op}: expected op(a) (M, K), op(b) (K, N), c (M, N), received a "
                         f"{tuple(a.shape)} (trans_a={trans_a}), b {tuple(b.shape)} "
                         f"(trans_b={trans_b}), c {tuple(c.shape)}")
    with device_io((a, b), (c,)) as (da, db, dc):
        if dc.size == 0:
            return
        if k == 0:
            fill(dc, 0)
            return
        # A[i, kk] at i*rows + kk*cols; a transposed operand swaps the two strides
        ea = Operand(flat(da), rows=1, cols=m) if trans_a else Operand(flat(da), rows=k)
        eb = Operand(flat(db), rows=1, cols=k) if trans_b else Operand(flat(db), rows=n)
        gemm(ea, eb, Operand(flat(dc), rows=n), m, n, k)
