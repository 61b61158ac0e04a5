"""Host and device arrays at the public functions' door.

kernels' public functions take NumPy arrays (anything np.asarray accepts) or CUDA device
arrays (numba's, or any object exporting ``__cuda_array_interface__``: CuPy, torch).  Device
arrays in give numba device arrays out and run on the "cuda" backend column; host arrays with
an explicit ``backend="cuda"`` are uploaded once and the result copied back, so NumPy in
still gives NumPy out.  numba.cuda is imported only when a device array or the cuda backend
is seen.
"""
from __future__ import annotations

import numpy as np

from . import backends, plan
from .params import as_float_array, common_dtype

def is_device(a):
    """True for a CUDA device array: not a NumPy array, and a numba device array (real or the
    simulator's, which has ``copy_to_host``), a kernels.cuda.xp.CudaArray, or anything
    exporting ``__cuda_array_interface__``."""
    return a is not None and not isinstance(a, np.ndarray) and (
        hasattr(a, "copy_to_host") or hasattr(a, "__cuda_array_interface__"))


def any_device(*arrays):
    return any(is_device(a) for a in arrays)


def _cuda_backend(op):
    mod = backends.load("cuda")
    if mod is None:
        raise ValueError(f"{op}: device arrays need the 'cuda' backend, which is not available: "
                         f"{backends.error('cuda')}")
    return mod


def as_device(a, name, op):
    """``a`` as a C-contiguous float32/float64 numba device array (host arrays uploaded)."""
    _cuda_backend(op)
    from numba import cuda
    if not is_device(a):
        return cuda.to_device(np.ascontiguousarray(as_float_array(a, name, op)))
    d = plan._device_view(a)
    plan.check_arrays(op, (name,), (d,), d.ndim, device=True)
    return d


def inputs(op, device, **named):
    """The named arrays (None stays None) ready for one call, and their common dtype.

    ``device`` False: float ndarrays (ints promote, see as_float_array), dtype float32 when
    all are float32.  True: numba device arrays, which must share one dtype (a device array
    is never cast implicitly)."""
    if not device:
        out = {k: None if v is None else as_float_array(v, k, op) for k, v in named.items()}
        return out, np.dtype(common_dtype(*out.values()))
    out = {k: None if v is None else as_device(v, k, op) for k, v in named.items()}
    dtypes = {k: np.dtype(v.dtype) for k, v in out.items() if v is not None}
    if len(set(dtypes.values())) > 1:
        raise TypeError(f"{op}: device arrays must share one dtype (no implicit cast on the "
                        f"device), received " + ", ".join(f"{k} {d}" for k, d in dtypes.items()))
    return out, next(iter(dtypes.values()))


def cast(a, dtype):
    """A host array in ``dtype`` (device arrays already have it)."""
    return a if is_device(a) else a.astype(dtype, copy=False)


def shape(a):
    return tuple(a.shape)


def to_host(a):
    return a.copy_to_host() if is_device(a) else a
