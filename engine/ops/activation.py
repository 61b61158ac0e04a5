"""Activations: relu, leaky_relu, sigmoid, tanh, softmax, log_softmax.

Backward passes use the saved output where the derivative can be written in terms of it
(sigmoid, tanh, softmax), so nothing beyond the output is kept alive.

softmax and sigmoid mark their output with the logits they came from
(``out._activation_of = (kind, logits, axis)``); the cross-entropy losses in
:mod:`engine.ops.loss` use it to compute the loss from the logits (stable, exact gradient).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..device import array_module
from ..autograd import record
from ..tensor import Tensor, as_tensor

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax"]


def expit(z):
    """The logistic function of an array, overflow-free and as exact as scipy's expit, on any
    device: with ``e = exp(-|z|)``, ``1 / (1 + e)`` for z >= 0 and ``e / (1 + e)`` below."""
    xp = array_module(z)
    e = xp.exp(-xp.abs(z))
    r = 1 / (1 + e)
    return xp.where(z >= 0, r, e * r)


def relu(x):
    """max(x, 0).

    Examples
    --------
    >>> relu(Tensor([-1.0, 2.0]))
    Tensor([0., 2.])
    """
    x = as_tensor(x)
    y = array_module(x).maximum(x.data, 0)
    return record(Tensor._result(y), "relu", (x,), lambda g: (g * (y > 0),))


def leaky_relu(x, alpha=0.3):
    """x for x > 0, alpha * x otherwise (Keras default alpha 0.3).

    Examples
    --------
    >>> leaky_relu(Tensor([-1.0, 2.0]), alpha=0.1)
    Tensor([-0.1,  2. ])
    """
    x = as_tensor(x)
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool):
        raise TypeError(f"leaky_relu: alpha must be a real number, received {alpha!r}")
    xp = array_module(x)
    pos = x.data > 0
    y = xp.where(pos, x.data, x.data * alpha)
    return record(Tensor._result(y), "leaky_relu", (x,),
                  lambda g: (xp.where(pos, g, g * alpha),))


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow.

    Examples
    --------
    >>> sigmoid(Tensor([0.0]))
    Tensor([0.5])
    """
    x = as_tensor(x)
    y = expit(x.data)
    out = record(Tensor._result(y), "sigmoid", (x,), lambda g: (g * y * (1 - y),))
    out._activation_of = ("sigmoid", x, None)
    return out


def tanh(x):
    """Hyperbolic tangent."""
    x = as_tensor(x)
    y = array_module(x).tanh(x.data)
    return record(Tensor._result(y), "tanh", (x,), lambda g: (g * (1 - y * y),))


def _axis(op, axis, x):
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, received {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for x of shape {x.shape}")
    return int(axis) % x.ndim


def softmax_array(z, axis):
    """Numerically stable softmax of an ndarray (a new array)."""
    e = z - z.max(axis=axis, keepdims=True)
    array_module(z).exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax_array(z, axis):
    """Numerically stable log-softmax of an ndarray (a new array)."""
    s = z - z.max(axis=axis, keepdims=True)
    xp = array_module(z)
    s -= xp.log(xp.exp(s).sum(axis=axis, keepdims=True))
    return s


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis`` (stable: the max is subtracted first).

    Examples
    --------
    >>> softmax(Tensor([[0.0, 0.0]]))
    Tensor([[0.5, 0.5]])
    """
    x = as_tensor(x)
    ax = _axis("softmax", axis, x)
    y = softmax_array(x.data, ax)

    def backward(g):
        return (y * (g - (g * y).sum(axis=ax, keepdims=True)),)
    out = record(Tensor._result(y), "softmax", (x,), backward)
    out._activation_of = ("softmax", x, ax)
    return out


def log_softmax(x, axis=-1):
    """x - log(sum(exp(x))) along ``axis``, stable for large logits.

    Examples
    --------
    >>> log_softmax(Tensor([[1000.0, 1000.0]]))
    Tensor([[-0.6931472, -0.6931472]])
    """
    x = as_tensor(x)
    ax = _axis("log_softmax", axis, x)
    y = log_softmax_array(x.data, ax)

    def backward(g):
        return (g - array_module(y).exp(y) * g.sum(axis=ax, keepdims=True),)
    return record(Tensor._result(y), "log_softmax", (x,), backward)
