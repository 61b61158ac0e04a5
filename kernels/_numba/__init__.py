"""The Numba backend: every function of the :mod:`kernels.backends` contract.

Kernels are ``@njit(nogil=True, cache=True)`` functions over jobs that each own their part of
the output, run on threads by threads.run_jobs, compiled lazily on first use (once per dtype,
tests/test_numba_compile.py) and cached on disk next to their sources.  Each public function
is a thin wrapper that checks shapes, dtypes and contiguity and then calls its kernel.
"""
from .conv_direct import direct_forward, direct_grad_input, direct_grad_weight
from .fft import fft_reduce_forward, fft_reduce_grad_input, fft_reduce_grad_weight, strided_crop
from .im2col import im2col_forward, im2col_grad_input, im2col_grad_weight
from .gemm import matmul
from .pool import pool_forward, pool_backward
from .threads import get_num_threads, set_num_threads

__all__ = [
    "direct_forward", "direct_grad_input", "direct_grad_weight",
    "im2col_forward", "im2col_grad_input", "im2col_grad_weight",
    "fft_reduce_forward", "fft_reduce_grad_input", "fft_reduce_grad_weight", "strided_crop",
    "pool_forward", "pool_backward",
    "matmul",
    "set_num_threads", "get_num_threads",
]
