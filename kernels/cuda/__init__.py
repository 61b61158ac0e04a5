"""The CUDA backend: numba.cuda kernels for every function of the :mod:`kernels.backends`
contract, with the same names and signatures as ``kernels._numba`` and ``kernels._cython``.

Every function accepts NumPy arrays (copied to the device, results copied back into the
NumPy outputs) or device arrays (numba device arrays, or anything exporting
``__cuda_array_interface__``), in any mix, so an engine can keep activations on the GPU::

    >>> from numba import cuda                                    # doctest: +SKIP
    >>> dx, dw = cuda.to_device(xp), cuda.to_device(w)
    >>> dy = cuda.device_array(y_shape, dtype=xp.dtype)
    >>> kernels.cuda.direct_forward(dx, dw, dy, 1, 1, 1, 1, 1, 1, 1)   # no host copy

:func:`pad5d` and :func:`crop5d` pad an input and crop a padded-input gradient on the device.

Importing this package neither creates a CUDA context nor fails on a machine without CUDA
(numba compiles kernels lazily, on first launch, and caches them on disk); :func:`available`
says whether kernels can run: on a GPU, or under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before numba.cuda is first imported), where every thread runs
in Python -- tiny shapes only.  Tunables (block
sizes, GEMM tile, grid cap) are in :mod:`kernels.cuda.config`.
"""
import sys as _sys
import threading as _threading

from numba import cuda as _cuda

from . import config, xp
from .conv_direct import direct_forward, direct_grad_input, direct_grad_weight
from .fft import fft_reduce_forward, fft_reduce_grad_input, fft_reduce_grad_weight, strided_crop
from .gemm import matmul
from .im2col import im2col_forward, im2col_grad_input, im2col_grad_weight
from .layout import add_channel_bias, crop5d, pad5d
from .pool import pool_backward, pool_forward

__all__ = [
    "available", "simulated", "config", "pad5d", "crop5d", "add_channel_bias",
    "direct_forward", "direct_grad_input", "direct_grad_weight",
    "im2col_forward", "im2col_grad_input", "im2col_grad_weight",
    "fft_reduce_forward", "fft_reduce_grad_input", "fft_reduce_grad_weight", "strided_crop",
    "pool_forward", "pool_backward",
    "matmul", "xp",
    "set_num_threads", "get_num_threads",
]


def simulated():
    """True when numba.cuda is the CUDA simulator (kernels run as Python threads)."""
    return _cuda.jit.__module__.startswith("numba.cuda.simulator")


def available():
    """True when CUDA kernels can run here (a usable GPU, or the simulator).  Never raises."""
    try:
        return bool(_cuda.is_available())
    except Exception:  # a broken driver install reports itself in many ways
        return False


_host_threads = 1


def set_num_threads(n):
    """Record the host thread count (part of the contract so that one setting applies to
    every backend); CUDA kernels run on the device, the host side is one thread."""
    global _host_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, received {n!r}")
    _host_threads = n


def get_num_threads():
    """The host thread count last set with :func:`set_num_threads`."""
    return _host_threads


def _fix_simulator_shared_arrays():
    """Make the CUDA simulator's ``cuda.shared.array`` safe when a block's threads race.

    The simulator (numba 0.68) runs each thread of a block as a Python thread and finds a
    block's shared array in a dict keyed by the caller's (file, line): ``get``, and on a miss
    ``np.empty`` then store, with no lock.  Two threads that both miss (the GIL switched
    between the lookup and the store) get *different* arrays, so each sees only its own
    writes to the GEMM tile or the reduction buffer and reads garbage for the rest: the
    intermittent wrong results under load (the tests shorten the GIL switch interval, which
    makes the switch likelier).  This replaces the method with the same lookup under a lock.
    Real GPUs are unaffected; on them this function does nothing.
    """
    from numba.core import types
    from numba.np import numpy_support
    from numba.cuda.simulator import kernelapi
    import numpy as np

    shared = kernelapi.FakeCUDAShared
    if getattr(shared.array, "_convlab_locked", False):
        return
    unlocked = shared.array
    lock = _threading.Lock()

    def array(self, shape, dtype):
        if shape == 0:  # dynamic shared memory: one buffer, no lookup
            return unlocked(self, shape, dtype)
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        frame = _sys._getframe(1)  # the kernel line that asked, as the simulator keys it
        key = (frame.f_code.co_filename, frame.f_lineno)
        with lock:
            res = self._allocations.get(key)
            if res is None:
                res = self._allocations[key] = np.empty(shape, dtype)
        return res

    array._convlab_locked = True
    shared.array = array


if simulated():
    _fix_simulator_shared_arrays()
