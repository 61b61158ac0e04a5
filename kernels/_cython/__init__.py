"""The Cython backend: the functions of the contract in kernels/backends.py.

Each extension module is imported on its own: one that was not built (``python setup.py
build_ext --inplace``, or ``pip install .``) leaves its functions out, with the reason in
``MISSING``, and kernels.backends offers only the strategies whose functions are present.
Without the thread module the backend does not load at all.
"""
import importlib as _importlib

from .threads import get_num_threads, set_num_threads

# module -> (its function, the contract's name)
_EXPORTS = {
    "conv_direct": [(f, f) for f in ("direct_forward", "direct_grad_input",
                                     "direct_grad_weight")],
    "fft": [(f, f) for f in ("fft_reduce_forward", "fft_reduce_grad_input",
                             "fft_reduce_grad_weight", "strided_crop")],
    "im2col": [(f, f) for f in ("im2col_forward", "im2col_grad_input", "im2col_grad_weight")],
    "matmul": [("matmul", "matmul")],
    "pool": [(f, f) for f in ("pool_forward", "pool_backward")],
    "winograd": [(f, "winograd_" + f) for f in ("input_transform", "output_transform",
                                                 "output_transform_adjoint")],
}
MISSING = {}

for _mod, _names in _EXPORTS.items():
    try:
        _m = _importlib.import_module(f"{__name__}.{_mod}")
    except ImportError as _e:
        for _, _name in _names:
            MISSING[_name] = f"kernels._cython.{_mod} could not be imported: {_e}"
        continue
    for _f, _name in _names:
        globals()[_name] = getattr(_m, _f)


def _use_numpy_blas():
    """Route the im2col GEMMs to numpy's BLAS when its entry points are found (see
    kernels._blas: one BLAS and one thread pool in the process)."""
    if "im2col_forward" not in globals():
        return
    from .. import _blas
    from . import im2col
    ptrs = _blas.gemm_pointers()
    if ptrs is not None:
        im2col.use_blas(ptrs[0], ptrs[1], *(_blas.thread_pointers() or (0, 0)))


_use_numpy_blas()

__all__ = ["set_num_threads", "get_num_threads", "MISSING"] + [
    name for names in _EXPORTS.values() for _, name in names if name not in MISSING]
