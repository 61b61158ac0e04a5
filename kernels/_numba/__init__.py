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

from . import conv_direct as _direct, fft as _fft, im2col as _im2col, winograd as _winograd

# the jitted kernels each conv strategy runs on this backend (those a first call compiles)
STRATEGY_KERNELS = {
    "direct": (_direct._forward, _direct._grad_input, _direct._grad_weight),
    "im2col": (_im2col._build, _im2col._col2im, _im2col._wide),
    "fft": (_fft._reduce_forward, _fft._reduce_grad_input, _fft._reduce_grad_weight),
    "winograd": (_winograd._run,),
}


def cached(strategy, dtype):
    """Whether Numba's on-disk cache holds every kernel of conv ``strategy`` for ``dtype``
    ("float32" or "float64"), compiled for this CPU: True, False, or None when it cannot tell
    (an unknown strategy, or a Numba whose cache layout differs).  True means a first call
    loads instead of compiling (an input shape may still reach a helper not listed).

    >>> cached("direct", "float32") in (True, False)
    True
    """
    from numba.core import types
    kernels = STRATEGY_KERNELS.get(strategy)
    if kernels is None:
        return None
    try:
        for d in kernels:
            magic = d.targetctx.codegen().magic_tuple()
            index = d._cache._cache_file._load_index()     # {} when the source changed
            if not any(key[1] == magic and next((str(t.dtype) for t in key[0]
                                                 if isinstance(t, types.Array)), None) == dtype
                       for key in index):
                return False
    except Exception:   # noqa: BLE001 -- a private layout: say "cannot tell"
        return None
    return True

__all__ = [
    "direct_forward", "direct_grad_input", "direct_grad_weight",
    "im2col_forward", "im2col_grad_input", "im2col_grad_weight",
    "fft_reduce_forward", "fft_reduce_grad_input", "fft_reduce_grad_weight", "strided_crop",
    "pool_forward", "pool_backward",
    "matmul",
    "winograd_input_transform", "winograd_output_transform",
    "winograd_output_transform_adjoint",
    "set_num_threads", "get_num_threads", "cached", "STRATEGY_KERNELS",
]
