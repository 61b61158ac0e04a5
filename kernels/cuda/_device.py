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

from .. import plan
from . import config

REAL, COMPLEX = plan.REAL, plan.COMPLEX


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
    dtype from ``kinds``; raises TypeError/ValueError naming the offending argument (the
    planner's check, kernels.plan, with device arrays allowed)."""
    return plan.check_arrays(op, names, arrays, ndim, kinds, device=True)


positive_ints = plan.positive_ints


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


def launch(kernel, size, *args):
    """One grid-stride launch of ``kernel`` over ``size`` elements (none when ``size`` is
    0), with config.THREADS threads a block."""
    if size:
        t = threads()
        kernel[blocks_for(size, t), t](*args)


def fill(d, value):
    """Set every element of the contiguous device array ``d`` to ``value``."""
    launch(_fill, d.size, flat(d), value)


@cuda.jit(device=True)
def unravel5(idx, c_n, d_n, h_n, w_n):
    """(n, c, d, h, w) of the flat index ``idx`` of a C-ordered (N, c_n, d_n, h_n, w_n)
    array: the coordinates of one grid-stride element."""
    w = idx % w_n
    r = idx // w_n
    h = r % h_n
    r //= h_n
    d = r % d_n
    r //= d_n
    return r // c_n, r % c_n, d, h, w


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
