"""Shape ops: reshape, transpose, flatten, indexing, concatenation and zero padding.

Forward results are numpy views wherever numpy gives one (reshape of a contiguous array,
transpose, basic indexing), so these ops copy nothing.
"""
from __future__ import annotations

import numpy as np

from ..device import array_module, same_device
from ..autograd import record
from ..tensor import Tensor, as_tensor

__all__ = ["reshape", "transpose", "flatten", "getitem", "concat", "pad"]


def reshape(x, shape):
    """``x`` with a new shape of the same size (one entry may be -1).

    Examples
    --------
    >>> reshape(Tensor([1.0, 2.0, 3.0, 4.0]), (2, -1)).shape
    (2, 2)
    """
    x = as_tensor(x)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    try:
        y = x.data.reshape(shape)
    except (ValueError, TypeError):
        raise ValueError(f"reshape: cannot reshape x of shape {x.shape} (size {x.size}) "
                         f"into shape {shape}") from None
    return record(Tensor._result(y), "reshape", (x,), lambda g: (g.reshape(x.shape),))


def transpose(x, axes=None):
    """Permute the axes of ``x`` (None reverses them, as numpy).

    Examples
    --------
    >>> transpose(Tensor(np.zeros((2, 3, 4))), (0, 2, 1)).shape
    (2, 4, 3)
    """
    x = as_tensor(x)
    if axes is not None:
        nd = x.ndim
        axes = tuple(axes)
        if len(axes) != nd or not all(-nd <= a < nd for a in axes) \
                or sorted(a % nd for a in axes) != list(range(nd)):
            raise ValueError(f"transpose: axes must be a permutation of {nd} axes for x "
                             f"of shape {x.shape}, received {axes}")
        axes = tuple(int(a) % nd for a in axes)
    y = x.data.transpose(axes)
    inverse = None if axes is None else tuple(np.argsort(axes))
    return record(Tensor._result(y), "transpose", (x,), lambda g: (g.transpose(inverse),))


def flatten(x, start=1):
    """Merge the axes from ``start`` on into one; ``flatten(x)`` keeps the batch axis.

    Examples
    --------
    >>> flatten(Tensor(np.zeros((2, 3, 4, 5)))).shape
    (2, 60)
    """
    x = as_tensor(x)
    if not -x.ndim <= start < max(x.ndim, 1):
        raise ValueError(f"flatten: start={start} is out of range for x of shape {x.shape}")
    start %= x.ndim
    return reshape(x, x.shape[:start] + (-1,))


def _is_basic(index):
    """True when ``index`` uses only ints, slices, None and Ellipsis (no repeated cells)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice))
               for i in items)


def getitem(x, index):
    """``x[index]`` with numpy semantics: basic indexing, integer arrays, boolean masks.

    Examples
    --------
    >>> getitem(Tensor([[1.0, 2.0], [3.0, 4.0]]), (slice(None), 1))
    Tensor([2., 4.])
    """
    x = as_tensor(x)
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    try:
        y = x.data[index]
    except IndexError as e:
        raise IndexError(f"getitem: index {index!r} is invalid for x of shape {x.shape}: "
                         f"{e}") from None
    basic = _is_basic(index)

    def backward(g):
        xp = array_module(g)
        gx = xp.zeros(x.shape, dtype=g.dtype)
        if basic:
            gx[index] = g
        else:
            xp.add.at(gx, index, g)  # integer arrays may repeat a cell
        return (gx,)
    return record(Tensor._result(y), "getitem", (x,), backward)


def concat(tensors, axis=-1):
    """Join tensors along an existing axis (all other dims must match).

    Examples
    --------
    >>> concat([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 1)))], axis=1).shape
    (2, 4)
    """
    ts = [as_tensor(t) for t in tensors]
    if not ts:
        raise ValueError("concat: needs at least one tensor, received none")
    nd = ts[0].ndim
    if not -nd <= axis < max(nd, 1):
        raise ValueError(f"concat: axis {axis} is out of range for tensors of shape "
                         f"{ts[0].shape}")
    ax = axis % nd
    for t in ts[1:]:
        if t.ndim != nd or t.shape[:ax] + t.shape[ax + 1:] != \
                ts[0].shape[:ax] + ts[0].shape[ax + 1:]:
            raise ValueError(f"concat: all shapes must match except along axis {axis}, "
                             f"received {[t.shape for t in ts]}")
    same_device("concat", *ts)
    y = array_module(*ts).concatenate([t.data for t in ts], axis=ax)
    bounds = np.cumsum([0] + [t.shape[ax] for t in ts])

    def backward(g):
        out = []
        for t, lo, hi in zip(ts, bounds[:-1], bounds[1:]):
            if t.requires_grad:
                sl = [slice(None)] * nd
                sl[ax] = slice(int(lo), int(hi))
                out.append(g[tuple(sl)])
            else:
                out.append(None)
        return tuple(out)
    return record(Tensor._result(y), "concat", ts, backward)


def pad(x, pad_width):
    """Zero padding, ``pad_width`` as in ``numpy.pad``: an int, a (before, after) pair, or
    one pair per axis.

    Examples
    --------
    >>> pad(Tensor(np.ones((1, 2))), ((0, 0), (1, 2))).shape
    (1, 5)
    """
    x = as_tensor(x)
    try:
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    except (ValueError, TypeError):
        raise ValueError(f"pad: pad_width must be an int, a (before, after) pair or one pair "
                         f"per axis for x of shape {x.shape}, received {pad_width!r}") from None
    if (widths < 0).any():
        raise ValueError(f"pad: pad_width must be >= 0, received {pad_width!r}")
    widths = tuple((int(lo), int(hi)) for lo, hi in widths)
    y = array_module(x).pad(x.data, widths)
    crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
    return record(Tensor._result(y), "pad", (x,), lambda g: (g[crop],))
