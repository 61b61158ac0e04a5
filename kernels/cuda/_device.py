"""Host/device plumbing shared by the wrappers of the CUDA backend.

Every backend function takes NumPy arrays *or* device arrays (numba device arrays, or any
object with ``__cuda_array_interface__`` such as a CuPy array or a CUDA torch tensor), in any
mix.  NumPy inputs are copied to the device; NumPy outputs get a device buffer that is copied
back into them when the kernels are done; device arrays are used in place, so a caller that
keeps its activations on the GPU pays no transfer.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
from numba import cuda

from . import config

REAL = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX = (np.dtype(np.complex64), np.dtype(np.complex128))


def is_device_array(a):
    """True for a numba device array, a :class:`kernels.cuda.xp.CudaArray`, or an object
    exporting ``__cuda_array_interface__``."""
    return not isinstance(a, np.ndarray) and (
        hasattr(a, "copy_to_host") or hasattr(a, "__cuda_array_interface__"))


def _as_numba_device(a):
    inner = getattr(a, "numba_array", None)  # a CudaArray: the device array it wraps
    if inner is not None:
        return inner
    if hasattr(a, "copy_to_host"):
        return a
    return cuda.as_cuda_array(a)


def check_arrays(op, names, arrays, ndim, kinds=REAL):
    """Each array (host or device) has ``ndim`` dims, is C-contiguous, and all share one
    dtype from ``kinds``; raises TypeError/ValueError naming the offending argument."""
    dtype = None
    for name, a in zip(names, arrays):
        if not isinstance(a, np.ndarray):
            if not is_device_array(a):
                raise TypeError(f"{op}: {name} must be a numpy or CUDA device array, received "
                                f"{type(a).__name__}")
            a = _as_numba_device(a)
        if a.ndim != ndim:
            raise ValueError(f"{op}: {name} must have {ndim} dims, received shape "
                             f"{tuple(a.shape)}")
        if np.dtype(a.dtype) not in kinds:
            raise TypeError(f"{op}: {name} must have dtype "
                            f"{' or '.join(str(k) for k in kinds)}, received {a.dtype}")
        contiguous = (a.flags.c_contiguous if isinstance(a, np.ndarray)
                      else a.is_c_contiguous())
        if not contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous, received strides "
                             f"{a.strides} for shape {tuple(a.shape)}")
        if dtype is None:
            dtype = np.dtype(a.dtype)
        elif np.dtype(a.dtype) != dtype:
            raise TypeError(f"{op}: all arrays must share one dtype, received {name} of dtype "
                            f"{a.dtype} with {names[0]} of dtype {dtype}")
    return dtype


def positive_ints(op, **values):
    """The keyword values as Python ints, each checked to be an integer >= 1."""
    out = []
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{op}: {name} must be a positive int, received {v!r}")
        out.append(int(v))
    return out


@contextlib.contextmanager
def device_io(inputs, outputs):
    """Yield device versions of ``inputs + outputs``; host outputs are copied back on exit.

    Host inputs are uploaded; host outputs get a fresh (uninitialised) device buffer, as
    every backend function overwrites its outputs.
    """
    dev_in = [cuda.to_device(a) if isinstance(a, np.ndarray) else _as_numba_device(a)
              for a in inputs]
    dev_out = [cuda.device_array(a.shape, dtype=a.dtype) if isinstance(a, np.ndarray)
               else _as_numba_device(a) for a in outputs]
    yield dev_in + dev_out
    for host, dev in zip(outputs, dev_out):
        if isinstance(host, np.ndarray):
            dev.copy_to_host(host)


def flat(d):
    """A 1-D view of a C-contiguous device array."""
    return d.reshape(d.size)


def blocks_for(total, threads):
    """Blocks of one grid-stride launch over ``total`` items (capped by MAX_BLOCKS)."""
    cap = int(config.MAX_BLOCKS)
    if cap < 1:
        raise ValueError(f"kernels.cuda.config.MAX_BLOCKS must be >= 1, received "
                         f"{config.MAX_BLOCKS!r}")
    return max(1, min(math.ceil(total / threads), cap))


def threads():
    """Threads per block of the element-wise kernels (config.THREADS, checked)."""
    n = int(config.THREADS)
    if not 1 <= n <= 1024:
        raise ValueError(f"kernels.cuda.config.THREADS must be in 1..1024, received "
                         f"{config.THREADS!r}")
    return n


@cuda.jit(cache=True)
def _fill(a, value):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] = value


def fill(d, value):
    """Set every element of the contiguous device array ``d`` to ``value``."""
    if d.size:
        t = threads()
        _fill[blocks_for(d.size, t), t](flat(d), value)


@cuda.jit(device=True)
def block_sum(part, tid, nt):
    """Sum of the shared array ``part[:nt]`` (nt a power of two), by a tree over the block.

    Every thread of the block calls it after writing its ``part[tid]``; all get the sum.  The
    caller syncs before writing ``part`` again (the next output of a grid-stride loop)."""
    cuda.syncthreads()
    half = nt // 2
    while half > 0:
        if tid < half:
            part[tid] += part[tid + half]
        cuda.syncthreads()
        half //= 2
    return part[0]
