"""The Cython backend: every function of the contract in kernels/backends.py.

Importing this package raises ImportError when the extension modules have not been built
(``python setup.py build_ext --inplace``, or ``pip install .``); kernels.backends.load
reports the backend as unavailable then.
"""
from .conv_direct import direct_forward, direct_grad_input, direct_grad_weight
from .fft import (fft_reduce_forward, fft_reduce_grad_input, fft_reduce_grad_weight,
                  strided_crop)
from .im2col import im2col_forward, im2col_grad_input, im2col_grad_weight
from .matmul import matmul
from .pool import pool_backward, pool_forward
from .threads import get_num_threads, set_num_threads


def _use_numpy_blas():
    """Route the im2col GEMMs to numpy's BLAS when its entry points are found (see
    kernels._blas: one BLAS and one thread pool in the process)."""
    from .. import _blas
    from . import im2col
    ptrs = _blas.gemm_pointers()
    if ptrs is not None:
        im2col.use_blas(ptrs[0], ptrs[1])


_use_numpy_blas()

__all__ = [
    "direct_forward", "direct_grad_input", "direct_grad_weight",
    "im2col_forward", "im2col_grad_input", "im2col_grad_weight",
    "fft_reduce_forward", "fft_reduce_grad_input", "fft_reduce_grad_weight", "strided_crop",
    "pool_forward", "pool_backward",
    "matmul",
    "set_num_threads", "get_num_threads",
]
