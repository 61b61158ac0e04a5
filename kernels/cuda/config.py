"""Tunables of the CUDA backend, in one place, with defaults that tests may patch.

Kernels that need a size at compile time (the GEMM tile, the reduction block) are built by
factories keyed on these values, so patching them takes effect on the next call.

THREADS       threads per block of the element-wise kernels (conv direct, im2col, pooling)
REDUCE_THREADS threads per block of the grad-weight reduction (a power of two)
MAX_BLOCKS    cap on the blocks of one launch; kernels loop grid-stride over the rest
GEMM_TILE     (BM, BN, BK, TM, TN): a block computes a BM x BN tile of C, walking K in steps
              of BK through shared memory; each of its (BM/TM)*(BN/TN) threads keeps a
              TM x TN micro-tile of C in registers
"""
THREADS = 256
REDUCE_THREADS = 128
MAX_BLOCKS = 4096
GEMM_TILE = (128, 128, 8, 8, 8)


def gemm_tile():
    """The validated GEMM tile (BM, BN, BK, TM, TN)."""
    bm, bn, bk, tm, tn = (int(v) for v in GEMM_TILE)
    if min(bm, bn, bk, tm, tn) < 1 or bm % tm or bn % tn:
        raise ValueError(f"kernels.cuda.config.GEMM_TILE: TM must divide BM and TN divide BN, "
                         f"all >= 1, received {GEMM_TILE!r}")
    return bm, bn, bk, tm, tn


def reduce_threads():
    """REDUCE_THREADS, checked to be a power of two (the tree reduction halves it)."""
    n = int(REDUCE_THREADS)
    if n < 1 or n & (n - 1):
        raise ValueError(f"kernels.cuda.config.REDUCE_THREADS must be a power of two, "
                         f"received {REDUCE_THREADS!r}")
    return n
