"""Argument checks for the Python-level wrappers of the Cython kernels.

The public API validates user input before dispatch; these checks guard the ``nogil``
kernels against a wrong *internal* call (a mismatched shape, dtype or stride), so that it
raises ValueError/TypeError instead of reading or writing out of bounds.
"""
from __future__ import annotations

import numpy as np

_REAL = (np.dtype(np.float32), np.dtype(np.float64))
_COMPLEX = (np.dtype(np.complex64), np.dtype(np.complex128))
# BLAS and the kernels' loop bounds use C int for sizes and leading dimensions.
_INT_MAX = 2**31 - 1


def arrays(op, ndim, out, complex_=False, **named):
    """Check that every array in ``named`` is a C-contiguous ndarray with ``ndim`` dims and
    that all share one float (or, with ``complex_``, complex) dtype, and that the one named
    ``out`` is writeable.  Return the dtype."""
    allowed = _COMPLEX if complex_ else _REAL
    dtype = None
    for name, a in named.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a numpy.ndarray, received "
                            f"{type(a).__name__}")
        if a.ndim != ndim:
            raise ValueError(f"{op}: {name} must have {ndim} dims, received shape {a.shape}")
        if a.dtype not in allowed:
            raise TypeError(f"{op}: {name} must have dtype "
                            f"{' or '.join(str(d) for d in allowed)}, received {a.dtype}")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            raise TypeError(f"{op}: all arrays must share one dtype, received {name} of dtype "
                            f"{a.dtype} with {next(iter(named))} of dtype {dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous, received a strided array of "
                             f"shape {a.shape}")
        if a.size > _INT_MAX:
            raise ValueError(f"{op}: {name} of shape {a.shape} has more than 2**31 - 1 "
                             f"elements")
    if not named[out].flags.writeable:
        raise ValueError(f"{op}: the output {out} must be writeable, received a read-only "
                         f"array")
    return dtype


def positive(op, **named):
    """Check that every value in ``named`` is an int >= 1; return them as a tuple of ints."""
    out = []
    for name, v in named.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{op}: {name} must be an int, received {v!r}")
        if v < 1:
            raise ValueError(f"{op}: {name} must be >= 1, received {v}")
        out.append(int(v))
    return tuple(out)


def conv(op, x_shape, w_shape, y_shape, stride, dilation, groups, names=("xp", "w", "y")):
    """Check that padded input, weight and output shapes agree for a strided, dilated,
    grouped cross-correlation: out = (in - dilation*(k-1) - 1) // stride + 1 per dim."""
    xn, wn, yn = names
    n, c = x_shape[:2]
    c_out, cg = w_shape[:2]
    where = (f"{xn} {x_shape}, {wn} {w_shape}, {yn} {y_shape}, stride={stride}, "
             f"dilation={dilation}, groups={groups}")
    if c % groups or c_out % groups:
        raise ValueError(f"{op}: groups must divide the input and output channels: {where}")
    if cg != c // groups:
        raise ValueError(f"{op}: {wn}.shape[1] must be {c // groups} (channels / groups): "
                         f"{where}")
    expected = [n, c_out]
    for i in range(3):
        size, k, s, d = x_shape[2 + i], w_shape[2 + i], stride[i], dilation[i]
        if k < 1 or size < d * (k - 1) + 1:
            raise ValueError(f"{op}: the dilated kernel does not fit the padded input in "
                             f"spatial dim {i}: {where}")
        expected.append((size - d * (k - 1) - 1) // s + 1)
    if tuple(y_shape) != tuple(expected):
        raise ValueError(f"{op}: {yn} must have shape {tuple(expected)} "
                         f"(out = (in - dilation*(k-1) - 1) // stride + 1), received: {where}")


def same_shape(op, a_name, a_shape, b_name, b_shape):
    if a_shape != b_shape:
        raise ValueError(f"{op}: {a_name} must have the shape of {b_name} {b_shape}, received "
                         f"{a_shape}")
