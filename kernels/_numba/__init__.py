"""The Numba backend: every function of the :mod:`kernels.backends` contract.

Kernels are ``@njit(nogil=True, cache=True)`` functions over jobs that each own their part of
the output, run on threads by threads.run_jobs, compiled lazily on first use (once per dtype,
tests/test_numba_compile.py) and cached on disk next to their sources (or in
NUMBA_CACHE_DIR).  ``convlab compile`` fills that cache ahead, and ``convlab compare`` fills it
on two cores before timing (bench.measure.warm_numba): about 25 s of CPU for float32 on a
2-core EPYC, half of it LLVM.  Each public function
checks and plans through the shared planner (kernels/plan.py) and then calls its kernel.
"""
from .conv_direct import direct_forward, direct_grad_input, direct_grad_weight
from .fft import fft_reduce_forward, fft_reduce_grad_input, fft_reduce_grad_weight, strided_crop
from .gemm import matmul
from .im2col import im2col_forward, im2col_grad_input, im2col_grad_weight
from .pool import pool_backward, pool_forward
from .threads import get_num_threads, set_num_threads
from .winograd import input_transform as winograd_input_transform
from .winograd import output_transform as winograd_output_transform
from .winograd import output_transform_adjoint as winograd_output_transform_adjoint

__all__ = [
    "direct_forward", "direct_grad_input", "direct_grad_weight",
    "im2col_forward", "im2col_grad_input", "im2col_grad_weight",
    "fft_reduce_forward", "fft_reduce_grad_input", "fft_reduce_grad_weight", "strided_crop",
    "pool_forward", "pool_backward",
    "matmul",
    "winograd_input_transform", "winograd_output_transform",
    "winograd_output_transform_adjoint",
    "set_num_threads", "get_num_threads",
]
