"""Where a Tensor's data lives and the array namespace its ops compute with.

A Tensor is on "cpu" (``.data`` is a NumPy array) or on "cuda" (``.data`` is a
:class:`kernels.cuda.xp.CudaArray`, a C-contiguous device array with numpy's operators).  Ops
are written once: :func:`array_module` gives numpy or :mod:`kernels.cuda.xp` from the inputs,
and kernels' public functions (conv, pool, matmul) take either kind of array.  This module
holds no op, only placement:

- all Tensor operands of an op on one device, else ValueError naming the op and both devices
  (:func:`same_device`); Python numbers mix with either;
- moving arrays (:func:`move`, :func:`host`) and checking device names.

numba.cuda is imported only when a CUDA tensor is made: CPU-only use never pays for it::

    x = engine.Tensor(np.ones((2, 3), np.float32), device="cuda")
    (engine.functional.relu(x) * 2.0).numpy()      # a (2, 3) float32 array of 2.0
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["DEVICES", "array_module", "cuda_available", "check_device", "is_cuda",
           "device_of", "move", "host", "same_device"]

DEVICES = ("cpu", "cuda")

_kc = None


def _kernels():
    """kernels.cuda, imported on first use."""
    global _kc
    if _kc is None:
        import kernels.cuda as kc
        _kc = kc
    return _kc


def _raw(a):
    data = getattr(a, "data", None)
    return data if data is not None and not isinstance(a, (np.ndarray, np.generic)) \
        and hasattr(a, "requires_grad") else a


def is_cuda(a):
    """True for a device array (a CudaArray, a numba device array, or anything exporting
    ``__cuda_array_interface__``)."""
    return not isinstance(a, (np.ndarray, np.generic, numbers.Number)) and (
        hasattr(a, "copy_to_host") or hasattr(a, "__cuda_array_interface__"))


def array_module(*arrays):
    """The array namespace of ``arrays`` (Tensors, arrays, numbers; None skipped): numpy on
    the CPU, :mod:`kernels.cuda.xp` (numpy's names over device arrays) when any is on cuda.
    Ops write their math once against it, as Chainer's ``get_array_module``::

        xp = array_module(x)
        y = xp.maximum(x.data, 0)
    """
    for a in arrays:
        if a is not None and is_cuda(_raw(a)):
            return _kernels().xp
    return np


def cuda_available():
    """True when CUDA kernels can run (a GPU, or the simulator).  Never raises."""
    try:
        return _kernels().available()
    except ImportError:
        return False


def check_device(owner, device, argument="device"):
    """``device`` checked to be "cpu" or "cuda", and "cuda" only where CUDA can run."""
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"{owner}: {argument} must be 'cpu' or 'cuda', received {device!r}")
    if device == "cuda" and not cuda_available():
        raise ValueError(f"{owner}: {argument}='cuda' but CUDA is not available here (no GPU "
                         f"found; NUMBA_ENABLE_CUDASIM=1 selects numba's CUDA simulator)")
    return device


def device_of(a):
    """"cuda" for a device array, "cpu" for anything else."""
    return "cuda" if is_cuda(_raw(a)) else "cpu"


def move(a, device):
    """The array ``a`` on ``device`` (``a`` itself when it is already there); device arrays
    come back as CudaArrays."""
    if device == "cuda":
        return _kernels().xp.asarray(a)
    return a.copy_to_host() if is_cuda(a) else a


def host(a):
    """A NumPy array with the values of ``a`` (a copy for a device array)."""
    return a.copy_to_host() if is_cuda(a) else a


def _is_constant(t):
    """A number wrapped as a Tensor (0-d host data, no gradient): it meets any device."""
    d = t.data
    return isinstance(d, np.ndarray) and d.ndim == 0 and not t.requires_grad


def same_device(op, *tensors):
    """The device shared by the Tensors (None and number constants skipped); ValueError naming
    ``op`` if they are on different devices."""
    dev = None
    for t in tensors:
        if t is None or _is_constant(t):
            continue
        d = device_of(t.data)
        if dev is None:
            dev = d
        elif d != dev:
            raise ValueError(f"{op}: all tensors must be on one device, received tensors on "
                             f"'{dev}' and '{d}' (move them with .to(device))")
    return dev or "cpu"
