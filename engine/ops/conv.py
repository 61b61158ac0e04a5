"""Convolution (cross-correlation) over 1, 2 or 3 spatial dims.

Forward, grad-input and grad-weight all go through the kernels package with the strategy the
caller asked for; the bias gradient is gy summed over the batch and spatial dims.  The weight's
transforms (FFT spectrum, Winograd's G g G^T) are kept on the weight Tensor per version
(:func:`prepared_weights`), so each is made once per weight version: once a training step,
once for a whole evaluate / predict.
"""
from __future__ import annotations

import kernels
from kernels.params import conv_params

from ..device import array_module, same_device
from ..autograd import record
from ..tensor import Tensor, as_tensor

__all__ = ["conv", "conv1d", "conv2d", "conv3d", "prepared_weights"]


def prepared_weights(w):
    """The kernels.PreparedCache of weight Tensor ``w`` at its current version.

    The version is ``w._version`` (bumped by the optimizers, set_weights and gradcheck when
    they write the weight in place) with the identity of ``w.data`` (a new array is a new
    weight); what was prepared for another version is dropped.  Code that edits
    ``w.data`` in place some other way bumps ``w._version`` too.
    """
    cache = getattr(w, "_prepared", None)
    if cache is None:
        cache = w._prepared = kernels.PreparedCache()
    return cache.sync((getattr(w, "_version", 0), id(w.data)))

_LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, strategy="auto", op=None):
    """Convolution with the spatial rank taken from ``x`` (1-3 spatial dims).

    See :func:`conv2d` for the parameters; ``op`` names the op in error messages.
    """
    x = as_tensor(x)
    w = as_tensor(w, like=x)
    nd = x.ndim - 2
    op = op or (f"conv{nd}d" if nd in _LAYOUT else "conv")
    if nd not in _LAYOUT:
        raise ValueError(f"{op}: x must have 3, 4 or 5 dims (N, C, *spatial), received shape "
                         f"{x.shape}")
    if w.ndim != x.ndim:
        raise ValueError(f"{op}: w must have {x.ndim} dims (C_out, C_in/groups, *kernel) to "
                         f"match x of shape {x.shape}, received w of shape {w.shape}")
    params = conv_params(x.shape, w.shape, stride, padding, dilation, groups, op=op)
    if b is not None:
        b = as_tensor(b, like=x)
        if b.shape != (w.shape[0],):
            raise ValueError(f"{op}: b must have shape ({w.shape[0]},) to match w of shape "
                             f"{w.shape}, received {b.shape}")
    same_device(op, x, w, b)
    xp = array_module(x, w, b)  # kernels take and return the arrays of either device
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                strategy=strategy)
    y = xp.asarray(kernels.conv(x.data, w.data, None if b is None else b.data,
                                prepared=prepared_weights(w), **args))
    spatial = tuple(range(2, x.ndim))

    def backward(g):
        gx = (xp.asarray(kernels.conv_grad_input(g, w.data, x.shape,
                                                 prepared=prepared_weights(w), **args))
              if x.requires_grad else None)
        gw = (xp.asarray(kernels.conv_grad_weight(g, x.data, w.shape, **args))
              if w.requires_grad else None)
        gb = g.sum(axis=(0,) + spatial) if b is not None and b.requires_grad else None
        return gx, gw, gb
    return record(Tensor._result(y), op, (x, w, b), backward)


def _ranked(nd, x, op):
    if x.ndim != nd + 2:
        raise ValueError(f"{op}: x must have {nd + 2} dims {_LAYOUT[nd]}, received shape "
                         f"{x.shape}")


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, strategy="auto"):
    """1-D convolution: x (N, C, L), w (C_out, C/groups, k) -> (N, C_out, L_out).

    Same parameters as :func:`conv2d`.

    Examples
    --------
    >>> import numpy as np
    >>> conv1d(Tensor(np.ones((1, 1, 5))), Tensor(np.ones((1, 1, 3)))).shape
    (1, 1, 3)
    """
    x = as_tensor(x)
    _ranked(1, x, "conv1d")
    return conv(x, w, b, stride, padding, dilation, groups, strategy, op="conv1d")


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, strategy="auto"):
    """2-D convolution (cross-correlation, as in every DL framework).

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W)
    w : Tensor, shape (C_out, C / groups, kh, kw)
    b : Tensor, shape (C_out,), optional
    stride, dilation : int or tuple of 2 ints
    padding : int, tuple, tuple of (lo, hi) pairs, "valid" or "same"
    groups : int
        Channel groups (groups = C with C_out a multiple of C is depthwise).
    strategy : str
        "auto", "reference", "direct", "im2col", "fft", "winograd" (what
        ``kernels.available("conv")`` lists); the same strategy serves forward and backward.

    Returns
    -------
    Tensor, shape (N, C_out, H_out, W_out) with, per spatial dim,
    ``out = floor((in + pad_lo + pad_hi - dilation * (k - 1) - 1) / stride) + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> x = Tensor(np.ones((2, 3, 8, 8), np.float32))
    >>> w = Tensor(np.ones((4, 3, 3, 3), np.float32), requires_grad=True)
    >>> conv2d(x, w, padding="same").shape
    (2, 4, 8, 8)
    """
    x = as_tensor(x)
    _ranked(2, x, "conv2d")
    return conv(x, w, b, stride, padding, dilation, groups, strategy, op="conv2d")


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, strategy="auto"):
    """3-D convolution: x (N, C, D, H, W), w (C_out, C/groups, kd, kh, kw).

    Same parameters as :func:`conv2d`.

    Examples
    --------
    >>> import numpy as np
    >>> conv3d(Tensor(np.ones((1, 1, 4, 4, 4))), Tensor(np.ones((2, 1, 3, 3, 3)))).shape
    (1, 2, 2, 2, 2)
    """
    x = as_tensor(x)
    _ranked(3, x, "conv3d")
    return conv(x, w, b, stride, padding, dilation, groups, strategy, op="conv3d")
