"""Argument normalisation for kernels.filters, done once per call, before any kernel runs.

scipy.ndimage's conventions throughout:

- ``axes=None`` means every axis; negative axes count from the end; repeats are refused.
- ``size`` / ``sigma`` / ``mode`` / ``radius`` are one value or one per filtered axis.
- A window of size s (or a footprint, or weights of length s) is placed with origin 0: it
  covers offsets ``-(s // 2) ... s - 1 - s // 2`` around each output element.
- The boundary modes extend each line beyond its ends (:func:`extend_index`).
- The output has the input's dtype; each 1-D pass of a multi-pass filter writes the output
  dtype, so integer images are truncated (C cast) after every pass, as scipy does.
"""
from __future__ import annotations

import numbers

import numpy as np

MODES = ("reflect", "nearest", "mirror", "constant", "wrap")
# scipy's grid-* spellings mean the same for filters
_ALIASES = {"grid-mirror": "reflect", "grid-constant": "constant", "grid-wrap": "wrap"}
_DTYPES = ("float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
           "uint32", "uint64", "bool")


def is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def as_image(x, op):
    """``x`` as an ndarray of a supported real dtype (no copy when it already is one)."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{op}: x must be an array of numbers, received {type(x).__name__}")
    try:
        a = np.asarray(x)
    except Exception as e:
        raise TypeError(f"{op}: x must be an array of numbers, received "
                        f"{type(x).__name__} ({e})") from None
    if a.dtype.name not in _DTYPES:
        raise TypeError(f"{op}: x must have a real dtype among {', '.join(_DTYPES)} (as "
                        f"scipy.ndimage), received {a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"{op}: x must have at least 1 dimension, received a 0-d array")
    return a


def norm_axes(axes, ndim, op):
    """Tuple of non-negative, distinct axes (all axes when None)."""
    if axes is None:
        return tuple(range(ndim))
    if is_int(axes):
        axes = (axes,)
    if not isinstance(axes, (tuple, list)) or not all(is_int(a) for a in axes):
        raise TypeError(f"{op}: axes must be None, an int or a tuple of ints, received {axes!r}")
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for x with {ndim} dims "
                             f"(axes={tuple(axes)})")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axes must be distinct, received {tuple(axes)}")
    return tuple(out)


def norm_axis(axis, ndim, op):
    if not is_int(axis):
        raise TypeError(f"{op}: axis must be an int, received {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for x with {ndim} dims")
    return int(axis) % ndim


def per_axis(value, n, name, op, check):
    """``value`` (one, or a sequence of n) as a tuple of n values, each passed to ``check``."""
    if isinstance(value, (tuple, list, np.ndarray)) and not isinstance(value, str):
        vals = list(value)
        if len(vals) != n:
            raise ValueError(f"{op}: {name} must be one value or {n} (one per filtered axis), "
                             f"received {len(vals)}: {tuple(vals)!r}")
    else:
        vals = [value] * n
    return tuple(check(v) for v in vals)


def mode_checker(op):
    def check(m):
        if not isinstance(m, str):
            raise TypeError(f"{op}: mode must be a string, received {m!r}")
        m = _ALIASES.get(m, m)
        if m not in MODES:
            raise ValueError(f"{op}: mode must be one of {', '.join(MODES)}, received {m!r}")
        return m
    return check


def size_checker(op, name="size"):
    def check(s):
        if not is_int(s):
            raise TypeError(f"{op}: {name} must be a positive int, received {s!r}")
        if s < 1:
            raise ValueError(f"{op}: {name} must be >= 1, received {s}")
        return int(s)
    return check


def check_cval(cval, op):
    if isinstance(cval, bool) or not isinstance(cval, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{op}: cval must be a real number, received {cval!r}")
    return float(cval)


def extend_index(n, before, after, mode):
    """Source index of every element of a line of length ``n`` extended by ``before`` and
    ``after`` elements under ``mode`` (-1 where the value is cval), as scipy.ndimage::

        reflect   d c b a | a b c d | d c b a     (period 2n)
        mirror    d c b   | a b c d | c b a       (period 2n - 2; a line of 1 repeats)
        nearest   a a a a | a b c d | d d d d
        wrap      a b c d | a b c d | a b c d
        constant  k k k k | a b c d | k k k k

    >>> extend_index(4, 3, 3, "mirror").tolist()
    [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    """
    j = np.arange(-before, n + after, dtype=np.int64)
    if mode == "constant":
        return np.where((j >= 0) & (j < n), j, -1)
    if mode == "nearest":
        return np.clip(j, 0, n - 1)
    if mode == "wrap":
        return j % n
    if mode == "reflect":
        j = j % (2 * n)
        return np.where(j < n, j, 2 * n - 1 - j)
    if n == 1:                                   # mirror of a single element
        return np.zeros_like(j)
    j = j % (2 * n - 2)
    return np.where(j < n, j, 2 * n - 2 - j)


def c_cast(v, dtype):
    """float64 ``v`` written to ``dtype`` as scipy.ndimage's C code writes it: floats round,
    integers truncate toward zero and wrap modulo 2**bits (x86 conversion through int64);
    bool is the truncated byte read as a bool (0.4 is False, as in scipy)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return v.astype(dtype)
    with np.errstate(invalid="ignore"):
        t = np.trunc(v).astype(np.int64)
    if dtype.kind == "b":
        return t.astype(np.uint8).astype(bool)
    return t.astype(dtype)


def compute_dtype(dtype):
    """float32 images are filtered in float32, everything else in float64."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)
