"""A cache-blocked matmul, written to be compared with BLAS (never to replace it).

``c = a @ b`` for C-contiguous 2-D float32/float64 arrays.  Threads run over blocks of
``BLOCK_M`` rows of c (one job each, see threads.run_jobs); within a block the product walks
tiles of ``BLOCK_N`` columns and ``BLOCK_K`` inner-dimension steps, so that a
(BLOCK_K x BLOCK_N) panel of b stays in cache while it is used by every row of the block.
The innermost loop runs along a row of c and a row of b (contiguous, vectorised by LLVM),
updating four rows of c per panel row of b to reuse each loaded b value four times.  Edges
that are not tile multiples are handled by clipping the tile bounds.
"""
from __future__ import annotations

from numba import njit

from .. import config, plan
from .threads import run_jobs

# Tile sizes (elements).  Numba freezes module globals at compile time: changing these
# requires clearing the kernel cache (kernels/_numba/__pycache__).
BLOCK_M = config.GEMM_BLOCK_M
BLOCK_N = config.GEMM_BLOCK_N
BLOCK_K = config.GEMM_BLOCK_K


@njit(nogil=True, cache=True)
def _matmul(a, b, c, first, step):
    """Jobs first, first + step, ... of c = a @ b: job ib is rows ib*BLOCK_M ... of c."""
    m, kk = a.shape
    n = b.shape[1]
    for ib in range(first, (m + BLOCK_M - 1) // BLOCK_M, step):
        i0 = ib * BLOCK_M
        i1 = min(i0 + BLOCK_M, m)
        c[i0:i1] = 0
        for j0 in range(0, n, BLOCK_N):
            j1 = min(j0 + BLOCK_N, n)
            nj = j1 - j0
            for k0 in range(0, kk, BLOCK_K):
                k1 = min(k0 + BLOCK_K, kk)
                # row views indexed from 0 let LLVM prove the inner loops vectorisable
                i = i0
                while i + 4 <= i1:
                    # four rows of c at a time share each row of the b panel
                    c0, c1 = c[i, j0:j1], c[i + 1, j0:j1]
                    c2, c3 = c[i + 2, j0:j1], c[i + 3, j0:j1]
                    for k in range(k0, k1):
                        a0, a1, a2, a3 = a[i, k], a[i + 1, k], a[i + 2, k], a[i + 3, k]
                        brow = b[k, j0:j1]
                        for j in range(nj):
                            bv = brow[j]
                            c0[j] += a0 * bv
                            c1[j] += a1 * bv
                            c2[j] += a2 * bv
                            c3[j] += a3 * bv
                    i += 4
                while i < i1:
                    crow = c[i, j0:j1]
                    for k in range(k0, k1):
                        aik = a[i, k]
                        brow = b[k, j0:j1]
                        for j in range(nj):
                            crow[j] += aik * brow[j]
                    i += 1


def matmul(a, b, c):
    """``c = a @ b`` with a hand-written cache-blocked kernel.

    Parameters
    ----------
    a : ndarray (M, K), float32 or float64, C-contiguous.
    b : ndarray (K, N), same dtype.
    c : ndarray (M, N), same dtype, overwritten.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.eye(3); b = np.arange(6.0).reshape(3, 2); c = np.empty((3, 2))
    >>> matmul(a, b, c); c.tolist()
    [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    """
    plan.matmul_call("matmul", a, b, c)
    run_jobs(_matmul, -(-a.shape[0] // BLOCK_M), a, b, c)
