"""Batch normalisation over the channel axis (axis 1) of (N, C, *spatial) inputs."""
from __future__ import annotations

import numbers

import numpy as np

from ..device import array_module, device_of, same_device
from ..autograd import record
from ..tensor import Tensor, as_tensor

__all__ = ["batch_norm"]


def _stat(op, name, v, c, required):
    """A running statistic as a float ndarray of shape (C,), or None."""
    if v is None:
        if required:
            raise ValueError(f"{op}: {name} is required in inference mode, received None")
        return None
    arr = v.data if isinstance(v, Tensor) else v
    if not hasattr(arr, "shape") or not hasattr(arr, "dtype") or arr.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a float ndarray of shape ({c},) (it is updated "
                        f"in place), received {type(arr).__name__}")
    if arr.shape != (c,):
        raise ValueError(f"{op}: {name} must have shape ({c},) for x with {c} channels, "
                         f"received {arr.shape}")
    return arr


def check_args(op, x, gamma, beta, momentum, eps):
    """(C, gamma, beta) of a batch normalisation, checked: x (N, C, ...), gamma and beta None or
    (C,) Tensors like x, momentum in [0, 1], eps > 0 (shared with engine.distributed's
    synchronised variant)."""
    if x.ndim < 2:
        raise ValueError(f"{op}: x must have at least 2 dims (N, C, *spatial), received shape "
                         f"{x.shape}")
    c = x.shape[1]
    gamma = None if gamma is None else as_tensor(gamma, like=x)
    beta = None if beta is None else as_tensor(beta, like=x)
    for name, t in (("gamma", gamma), ("beta", beta)):
        if t is not None and t.shape != (c,):
            raise ValueError(f"{op}: {name} must have shape ({c},) for x of shape {x.shape}, "
                             f"received {t.shape}")
    for name, v in (("momentum", momentum), ("eps", eps)):
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            raise TypeError(f"{op}: {name} must be a float, received {v!r}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"{op}: momentum must be in [0, 1], received {momentum}")
    if eps <= 0:
        raise ValueError(f"{op}: eps must be > 0, received {eps}")
    return c, gamma, beta


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.99, eps=1e-3):
    """Normalise each channel by batch statistics (training) or running statistics.

    Parameters
    ----------
    x : Tensor, shape (N, C, *spatial)
        Statistics are taken over N and every spatial dim, per channel.
    gamma, beta : Tensor of shape (C,) or None
        Scale and offset (None: 1 and 0).
    running_mean, running_var : ndarray of shape (C,)
        In training they are updated in place, Keras style:
        ``r = momentum * r + (1 - momentum) * batch_stat``, with the biased batch variance
        (as Keras).  Inference normalises with them.  May be None in training (no update).
    training : bool
    momentum, eps : float

    Returns
    -------
    Tensor of the shape of ``x``: ``gamma * (x - mean) / sqrt(var + eps) + beta``.

    Examples
    --------
    >>> x = Tensor(np.arange(8.0, dtype=np.float32).reshape(4, 2))
    >>> rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    >>> y = batch_norm(x, None, None, rm, rv, training=True)
    >>> np.allclose(y.numpy().mean(axis=0), 0, atol=1e-6)
    True
    """
    op = "batch_norm"
    x = as_tensor(x)
    c, gamma, beta = check_args(op, x, gamma, beta, momentum, eps)
    same_device(op, x, gamma, beta)
    xp = array_module(x)
    rm = _stat(op, "running_mean", running_mean, c, not training)
    rv = _stat(op, "running_var", running_var, c, not training)
    if training:  # updated in place: they must live where x does
        for name, v in (("running_mean", rm), ("running_var", rv)):
            if v is not None and device_of(v) != device_of(x.data):
                raise ValueError(f"{op}: {name} is on '{device_of(v)}' but x on "
                                 f"'{device_of(x.data)}'; training updates it in place, so "
                                 f"it must be on x's device")
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, c) + (1,) * (x.ndim - 2)
    count = x.size // c
    dt = x.dtype.type
    g_b = None if gamma is None else gamma.data.reshape(bshape)

    if training:
        if count < 1:
            raise ValueError(f"{op}: training needs at least one value per channel, received "
                             f"x of shape {x.shape}")
        mean = x.data.mean(axis=axes, keepdims=True)
        xhat = x.data - mean
        var = (xhat * xhat).mean(axis=axes, keepdims=True)
        inv = 1.0 / xp.sqrt(var + dt(eps))
        xhat *= inv
        if rm is not None:
            rm *= momentum
            rm += (1 - momentum) * mean.reshape(c)
        if rv is not None:
            rv *= momentum
            rv += (1 - momentum) * var.reshape(c)
    else:
        inv = (1.0 / xp.sqrt(rv.astype(x.dtype) + dt(eps))).reshape(bshape)
        xhat = None
        mean = rm.astype(x.dtype).reshape(bshape)

    if training:
        y = xhat * g_b if g_b is not None else xhat.copy()
    else:
        scale = inv if g_b is None else inv * g_b
        y = (x.data - mean) * scale
    if beta is not None:
        y += beta.data.reshape(bshape)

    def backward(g):
        gbeta = g.sum(axis=axes)
        ggamma = gx = None
        if (gamma is not None and gamma.requires_grad) or (training and x.requires_grad):
            xh = xhat if training else (x.data - mean) * inv
            ggamma = (g * xh).sum(axis=axes)
        if x.requires_grad:
            scale = inv if g_b is None else inv * g_b
            if training:
                gx = scale * (g - gbeta.reshape(bshape) / count
                              - xh * (ggamma.reshape(bshape) / count))
            else:
                gx = g * scale
        return (gx,
                ggamma if gamma is not None and gamma.requires_grad else None,
                gbeta if beta is not None and beta.requires_grad else None)
    return record(Tensor._result(y), op, (x, gamma, beta), backward)
