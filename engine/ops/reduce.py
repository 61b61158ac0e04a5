"""Reductions: sum, mean, max over one axis, several axes or everything."""
from __future__ import annotations

import numpy as np

from ..device import array_module
from ..autograd import record
from ..tensor import Tensor, as_tensor

__all__ = ["sum", "mean", "max"]


def _axes(op, axis, ndim, shape):
    """``axis`` normalised to a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: axis must be None, an int or a tuple of ints, received "
                        f"{axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: axis must be None, an int or a tuple of ints, received "
                            f"{axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor of shape {shape}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def _expand(g, axes, keepdims):
    """Re-insert the reduced axes (size 1) so ``g`` broadcasts against the input."""
    return g if keepdims else array_module(g).expand_dims(g, axes)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy's name
    """Sum over ``axis`` (None: all axes).

    Examples
    --------
    >>> sum(Tensor([[1.0, 2.0], [3.0, 4.0]]), axis=0)
    Tensor([4., 6.])
    """
    x = as_tensor(x)
    axes = _axes("sum", axis, x.ndim, x.shape)
    y = x.data.sum(axis=axes, keepdims=keepdims)

    def backward(g):
        return (array_module(g).broadcast_to(_expand(g, axes, keepdims), x.shape),)
    return record(Tensor._result(y), "sum", (x,), backward)


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis`` (None: all axes).

    Examples
    --------
    >>> mean(Tensor([[1.0, 2.0], [3.0, 4.0]]))
    Tensor(2.5)
    """
    x = as_tensor(x)
    axes = _axes("mean", axis, x.ndim, x.shape)
    count = int(np.prod([x.shape[a] for a in axes]))
    if count == 0:
        raise ValueError(f"mean: cannot average over an empty axis of shape {x.shape}")
    y = x.data.mean(axis=axes, keepdims=keepdims)

    def backward(g):
        return (array_module(g).broadcast_to(_expand(g, axes, keepdims) / count, x.shape),)
    return record(Tensor._result(y), "mean", (x,), backward)


def max(x, axis=None, keepdims=False):  # noqa: A001 - mirrors numpy's name
    """Maximum over ``axis``; the gradient is shared equally among tied maxima.

    Examples
    --------
    >>> max(Tensor([[1.0, 5.0], [3.0, 4.0]]), axis=1)
    Tensor([5., 4.])
    """
    x = as_tensor(x)
    axes = _axes("max", axis, x.ndim, x.shape)
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"max: cannot reduce over an empty axis of shape {x.shape}")
    y = x.data.max(axis=axes, keepdims=True)

    def backward(g):
        mask = x.data == y
        count = mask.sum(axis=axes, keepdims=True)
        return (mask * (_expand(g, axes, keepdims) / count).astype(x.dtype, copy=False),)
    out = y if keepdims else array_module(y).squeeze(y, axis=axes)
    return record(Tensor._result(out), "max", (x,), backward)
