"""Convolution and pooling parameters, normalised once.

Every public entry point turns its user-facing arguments (ints, tuples, (lo, hi) pairs,
"valid", "same") into one frozen :class:`ConvParams` through :func:`conv_params`, which is
also where every shape error is raised.  Layers, the registry, the strategies and the shape
rule all take the same object, so the rules live in exactly one place.

Kernels work on a canonical 3-D form: a 1-D or 2-D problem is lifted to 3-D by adding
leading singleton spatial dimensions (:func:`to5d`, :meth:`ConvParams.as3d`), so every
backend kernel is written once, for (N, C, D, H, W).

Output size per spatial dim (as in every DL framework)::

    out = floor((in + pad_lo + pad_hi - dilation * (k - 1) - 1) / stride) + 1
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["ConvParams", "PoolParams", "conv_params", "pool_params", "as_float_array", "common_dtype",
           "to5d", "pad5d", "conv_out_size", "same_padding"]


def conv_out_size(n, k, stride, dilation, lo, hi):
    """Output length of one spatial dim."""
    return (n + lo + hi - dilation * (k - 1) - 1) // stride + 1


@dataclass(frozen=True)
class ConvParams:
    """Normalised convolution parameters for ``ndim`` spatial dimensions.

    stride, dilation: tuples of ``ndim`` positive ints.  padding: tuple of ``ndim`` (lo, hi)
    pairs of non-negative ints.  groups: positive int.
    """
    ndim: int
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int = 1

    def out_spatial(self, in_spatial, k_spatial):
        return tuple(conv_out_size(n, k, s, d, lo, hi) for n, k, s, d, (lo, hi) in
                     zip(in_spatial, k_spatial, self.stride, self.dilation, self.padding))

    def out_shape(self, x_shape, w_shape):
        """(N, C_out, *out_spatial) for input ``x_shape`` and weight ``w_shape``."""
        return (x_shape[0], w_shape[0]) + self.out_spatial(x_shape[2:], w_shape[2:])

    def padded_spatial(self, in_spatial):
        return tuple(n + lo + hi for n, (lo, hi) in zip(in_spatial, self.padding))

    @property
    def is_padded(self):
        return any(lo or hi for lo, hi in self.padding)

    def as3d(self):
        """The same parameters lifted to 3 spatial dims (leading singleton dims)."""
        extra = 3 - self.ndim
        return ConvParams(3, (1,) * extra + self.stride, ((0, 0),) * extra + self.padding,
                          (1,) * extra + self.dilation, self.groups)

    def key(self):
        """A hashable, JSON-friendly description (autotune cache keys, reports)."""
        return {"stride": list(self.stride), "padding": [list(p) for p in self.padding],
                "dilation": list(self.dilation), "groups": self.groups}


@dataclass(frozen=True)
class PoolParams(ConvParams):
    """ConvParams of a pooling window (dilation 1, groups 1) plus its ``size``."""
    size: tuple = ()


# Strides, dilations and paddings above this cannot describe an array numpy can hold (the
# kernels index with int64); outputs of more elements than this cannot be allocated.
MAX_PARAM = 2**62
MAX_ELEMENTS = 2**60


def _check_out_size(op, out_shape, what):
    total = 1
    for s in out_shape:
        total *= s
    if total > MAX_ELEMENTS:
        raise ValueError(f"{op}: output would have {total} elements (shape {tuple(out_shape)}) "
                         f"for {what}, more than the 2**60 an array can hold")


def _is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def _expand(name, value, ndim, op, minimum):
    """An int or a tuple of ``ndim`` ints, each >= minimum."""
    if _is_int(value):
        vals = (int(value),) * ndim
    elif isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ValueError(f"{op}: {name} must be an int or a tuple of {ndim} ints for "
                             f"{ndim}-D input, received {tuple(value)!r} (length {len(value)})")
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{op}: {name} must contain ints, received {tuple(value)!r}")
        vals = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {ndim} ints, "
                        f"received {value!r} of type {type(value).__name__}")
    for v in vals:
        if v < minimum:
            raise ValueError(f"{op}: {name} must be >= {minimum} in every dim, received "
                             f"{vals!r}")
        if v > MAX_PARAM:
            raise ValueError(f"{op}: {name} must be <= 2**62 in every dim, received {vals!r}")
    return vals


def same_padding(in_spatial, k_spatial, stride, dilation):
    """(lo, hi) pairs of TF/Keras "same" padding: out = ceil(in / stride), total padding
    max((out - 1) * stride + dilation * (k - 1) + 1 - in, 0), the odd unit at the end (hi).
    At stride 1 the total is dilation * (k - 1) whatever the input size.

    >>> same_padding((8,), (3,), (2,), (1,))
    ((0, 1),)
    """
    pads = []
    for n, k, s, d in zip(in_spatial, k_spatial, stride, dilation):
        out = -(-n // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _padding(value, ndim, k_spatial, dilation, op, in_spatial=None, stride=None):
    """Normalise padding to ``ndim`` (lo, hi) pairs ("same" needs the input size and the
    stride when the stride is above 1)."""
    if isinstance(value, str):
        mode = value.lower()
        if mode == "valid":
            return ((0, 0),) * ndim
        if mode == "same":
            # TensorFlow/Keras rule (out = ceil(in / stride)); the odd extra element goes on
            # the high side.  At stride 1 it is dilation*(k-1) in total, as in PyTorch.
            if in_spatial is None or stride is None:
                in_spatial, stride = (1,) * ndim, (1,) * ndim
            return same_padding(in_spatial, k_spatial, stride, dilation)
        raise ValueError(f"{op}: padding must be an int, a tuple, (lo, hi) pairs, 'valid' or "
                         f"'same', received {value!r}")
    if _is_int(value):
        pairs = ((int(value), int(value)),) * ndim
    elif isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ValueError(f"{op}: padding must have {ndim} entries for {ndim}-D input "
                             f"(an int or a (lo, hi) pair each), received {tuple(value)!r} "
                             f"(length {len(value)})")
        pairs = []
        for p in value:
            if _is_int(p):
                pairs.append((int(p), int(p)))
            elif isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(q) for q in p):
                pairs.append((int(p[0]), int(p[1])))
            else:
                raise ValueError(f"{op}: each padding entry must be an int or a (lo, hi) pair "
                                 f"of ints, received {p!r} in {tuple(value)!r}")
        pairs = tuple(pairs)
    else:
        raise TypeError(f"{op}: padding must be an int, a tuple, (lo, hi) pairs, 'valid' or "
                        f"'same', received {value!r} of type {type(value).__name__}")
    for lo, hi in pairs:
        if lo < 0 or hi < 0:
            raise ValueError(f"{op}: padding must be >= 0, received {pairs!r}")
        if lo > MAX_PARAM or hi > MAX_PARAM:
            raise ValueError(f"{op}: padding must be <= 2**62, received {pairs!r}")
    return pairs


def conv_params(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, op="conv"):
    """Validate shapes and arguments of a convolution; return :class:`ConvParams`.

    Raises ValueError/TypeError naming the argument, expected and received values, before
    any kernel runs.
    """
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) not in (3, 4, 5):
        raise ValueError(f"{op}: x must have 3, 4 or 5 dims (N, C, *spatial) with 1-3 spatial "
                         f"dims, received shape {x_shape} ({len(x_shape)} dims)")
    ndim = len(x_shape) - 2
    if len(w_shape) != len(x_shape):
        raise ValueError(f"{op}: w must have {len(x_shape)} dims (C_out, C_in/groups, *kernel) "
                         f"to match x of shape {x_shape}, received w of shape {w_shape}")
    if not _is_int(groups):
        raise TypeError(f"{op}: groups must be an int, received {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, received {groups}")
    n, c = x_shape[:2]
    c_out, c_per_group = w_shape[:2]
    if c % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input channels, received x of "
                         f"shape {x_shape} with {c} channels")
    if c_out % groups:
        raise ValueError(f"{op}: groups={groups} must divide the output channels, received w of "
                         f"shape {w_shape} with {c_out} output channels")
    if c_per_group != c // groups:
        raise ValueError(f"{op}: channel mismatch: w of shape {w_shape} expects "
                         f"{c_per_group * groups} input channels ({c_per_group} per group x "
                         f"groups={groups}), received x of shape {x_shape} with {c} channels")
    if any(k < 1 for k in w_shape[2:]):
        raise ValueError(f"{op}: kernel sizes must be >= 1, received w of shape {w_shape}")
    if c_out < 1:
        raise ValueError(f"{op}: w must have at least one output channel, received shape "
                         f"{w_shape}")
    stride = _expand("stride", stride, ndim, op, 1)
    dilation = _expand("dilation", dilation, ndim, op, 1)
    pad = _padding(padding, ndim, w_shape[2:], dilation, op, x_shape[2:], stride)
    p = ConvParams(ndim, stride, pad, dilation, groups)
    for i, (size, k, d, (lo, hi)) in enumerate(zip(x_shape[2:], w_shape[2:], dilation, pad)):
        if size + lo + hi < d * (k - 1) + 1:
            raise ValueError(
                f"{op}: output would be empty: kernel larger than the padded input in spatial "
                f"dim {i}: x {x_shape}, w {w_shape}, stride={stride}, padding={pad}, "
                f"dilation={dilation}, groups={groups} gives padded size {size + lo + hi} < "
                f"dilated kernel size {d * (k - 1) + 1}")
    _check_out_size(op, p.out_shape(x_shape, w_shape),
                    f"x {x_shape}, w {w_shape}, stride={stride}, padding={pad}, "
                    f"dilation={dilation}")
    return p


def pool_params(x_shape, size, stride=None, padding=0, op="pool"):
    """Validate pooling arguments; return :class:`PoolParams`."""
    x_shape = tuple(x_shape)
    if len(x_shape) not in (3, 4, 5):
        raise ValueError(f"{op}: x must have 3, 4 or 5 dims (N, C, *spatial), received shape "
                         f"{x_shape}")
    ndim = len(x_shape) - 2
    size = _expand("size", size, ndim, op, 1)
    stride = size if stride is None else _expand("stride", stride, ndim, op, 1)
    if isinstance(padding, str) and padding.lower() not in ("valid", "same"):
        raise ValueError(f"{op}: padding must be an int, a tuple, (lo, hi) pairs, 'valid' or "
                         f"'same', received {padding!r}")
    if isinstance(padding, str) and padding.lower() == "same":
        # Keras "same" pooling: out = ceil(in / stride), the rule convolution uses
        pad = same_padding(x_shape[2:], size, stride, (1,) * ndim)
    else:
        pad = _padding(padding, ndim, size, (1,) * ndim, op)
    for i, (k, (lo, hi)) in enumerate(zip(size, pad)):
        if lo >= k or hi >= k:
            raise ValueError(f"{op}: padding must be smaller than the pool size in every dim, "
                             f"received padding={pad} with size={size}")
    for i, (n, k, (lo, hi)) in enumerate(zip(x_shape[2:], size, pad)):
        if n + lo + hi < k:
            raise ValueError(f"{op}: output would be empty: pool size {size} larger than the "
                             f"padded input in spatial dim {i}: x {x_shape}, stride={stride}, "
                             f"padding={pad}")
    p = PoolParams(ndim, stride, pad, (1,) * ndim, 1, size)
    _check_out_size(op, x_shape[:2] + p.out_spatial(x_shape[2:], size),
                    f"x {x_shape}, size={size}, stride={stride}, padding={pad}")
    return p


_FLOATS = (np.float32, np.float64)


def as_float_array(a, name, op):
    """``a`` as a float32/float64 ndarray; ints and bools promote to float64, float16 to
    float32.  Complex, object and string data raise TypeError naming ``name``."""
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except Exception as e:  # ragged lists and the like
            raise TypeError(f"{op}: {name} must be a numeric array, could not convert "
                            f"{type(a).__name__}: {e}") from None
    kind = a.dtype.kind
    if kind == "c":
        raise TypeError(f"{op}: {name} must be real (float32 or float64), received complex "
                        f"dtype {a.dtype}")
    if kind not in "fiub":
        raise TypeError(f"{op}: {name} must be a numeric array (float32 or float64), received "
                        f"dtype {a.dtype}")
    if a.dtype == np.float16:
        return a.astype(np.float32)
    if kind in "iub":
        return a.astype(np.float64)
    if a.dtype not in _FLOATS:  # longdouble
        return a.astype(np.float64)
    return a


def common_dtype(*arrays):
    """float32 if every array is float32, else float64."""
    return np.float32 if all(a.dtype == np.float32 for a in arrays if a is not None) \
        else np.float64


def to5d(a):
    """View an (N, C, *spatial) array with 1-3 spatial dims as (N, C, D, H, W)."""
    extra = 5 - a.ndim
    return a.reshape(a.shape[:2] + (1,) * extra + a.shape[2:])


def pad5d(x5, p3, value=0.0):
    """Pad the spatial dims of a 5-D array by the (lo, hi) pairs of 3-D params ``p3``.

    Returns a C-contiguous array (``x5`` itself when no padding is needed and it is
    already contiguous)."""
    if not p3.is_padded:
        return np.ascontiguousarray(x5)
    out = np.full(x5.shape[:2] + p3.padded_spatial(x5.shape[2:]), value, dtype=x5.dtype)
    out[(slice(None), slice(None)) + tuple(slice(lo, lo + n) for (lo, _), n in
                                           zip(p3.padding, x5.shape[2:]))] = x5
    return out
