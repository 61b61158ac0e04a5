"""Cheap argument checks shared by the Numba backend's Python wrappers.

The strategies guarantee the contract of :mod:`kernels.backends`; these checks turn a
violation into a clear ValueError/TypeError before a kernel runs, instead of an out-of-bounds
write (the kernels do no bounds checking) or a silent extra Numba compilation for a
non-contiguous or mixed-dtype signature.  They cost a few microseconds per call.
"""
from __future__ import annotations

import numpy as np

REAL = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX = (np.dtype(np.complex64), np.dtype(np.complex128))


def check_arrays(op, names, arrays, ndim, kinds=REAL):
    """Every array an ndarray with ``ndim`` dims, C-contiguous, all of one dtype in ``kinds``."""
    dtype = None
    for name, a in zip(names, arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a numpy array, received "
                            f"{type(a).__name__}")
        if a.ndim != ndim:
            raise ValueError(f"{op}: {name} must have {ndim} dims, received shape {a.shape}")
        if a.dtype not in kinds:
            raise TypeError(f"{op}: {name} must have dtype "
                            f"{' or '.join(str(k) for k in kinds)}, received {a.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous, received strides "
                             f"{a.strides} for shape {a.shape}")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            raise TypeError(f"{op}: all arrays must share one dtype, received {name} of dtype "
                            f"{a.dtype} with {names[0]} of dtype {dtype}")


def positive_ints(op, **values):
    """The keyword values as Python ints, each checked to be an integer >= 1."""
    out = []
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{op}: {name} must be a positive int, received {v!r}")
        out.append(int(v))
    return out


def check_conv_shapes(op, x_shape, w_shape, y_shape, strides, dilations, groups,
                      names=("xp", "w", "y")):
    """Padded input ``x_shape``, weight ``w_shape`` and output ``y_shape`` (all 5-D) agree
    with the strides, dilations and groups (output size rule without padding)."""
    n, c = x_shape[:2]
    c_out, cg = w_shape[:2]
    expect = [n, c_out]
    for size, k, s, d in zip(x_shape[2:], w_shape[2:], strides, dilations):
        expect.append((size - d * (k - 1) - 1) // s + 1 if size >= d * (k - 1) + 1 else 0)
    if c % groups or c_out % groups or cg * groups != c:
        raise ValueError(f"{op}: groups={groups} does not fit {names[0]} of shape {x_shape} "
                         f"and {names[1]} of shape {w_shape}")
    if tuple(y_shape) != tuple(expect):
        raise ValueError(f"{op}: {names[2]} must have shape {tuple(expect)} for {names[0]} "
                         f"{x_shape}, {names[1]} {w_shape}, strides {tuple(strides)}, "
                         f"dilations {tuple(dilations)}, received {tuple(y_shape)}")


def conv_ints(op, sd, sh, sw, dd, dh, dw, groups):
    """[sd, sh, sw, dd, dh, dw, groups] as Python ints, each checked to be >= 1."""
    return positive_ints(op, sd=sd, sh=sh, sw=sw, dd=dd, dh=dh, dw=dw, groups=groups)
