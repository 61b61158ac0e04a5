"""Element-wise arithmetic with numpy broadcasting, on every device.

Each op writes its math once against ``xp``, the array namespace of its inputs
(:func:`engine.device.array_module`: numpy on the CPU, :mod:`kernels.cuda.xp` on cuda).

Gradients are summed back over broadcast axes (:func:`engine.autograd.unbroadcast`) so every
input receives a gradient of its own shape.  A Python scalar or ndarray operand takes the
dtype of the Tensor operand, so float32 stays float32.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..device import array_module, same_device
from ..autograd import record, unbroadcast
from ..tensor import Tensor, as_tensor

__all__ = ["add", "sub", "mul", "div", "neg", "power", "exp", "log", "sqrt"]


def _pair(a, b, op="op"):
    """Both operands as Tensors on one device: a number or host array meeting a Tensor takes
    its dtype (and its device when it is a number)."""
    if isinstance(a, Tensor):
        b = as_tensor(b, like=a)
    elif isinstance(b, Tensor):
        a = as_tensor(a, like=b)
    else:
        a, b = as_tensor(a), as_tensor(b)
    same_device(op, a, b)
    return a, b


def _broadcast(op, fn, a, b):
    try:
        return fn(a.data, b.data)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast "
                         f"together") from None


def add(a, b):
    """a + b with broadcasting.

    Examples
    --------
    >>> add(Tensor([1.0, 2.0]), 1.0)
    Tensor([2., 3.])
    """
    a, b = _pair(a, b, "add")
    y = _broadcast("add", array_module(a, b).add, a, b)

    def backward(g):
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(g, b.shape) if b.requires_grad else None)
    return record(Tensor._result(y), "add", (a, b), backward)


def sub(a, b):
    """a - b with broadcasting."""
    a, b = _pair(a, b, "sub")
    y = _broadcast("sub", array_module(a, b).subtract, a, b)

    def backward(g):
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(-g, b.shape) if b.requires_grad else None)
    return record(Tensor._result(y), "sub", (a, b), backward)


def mul(a, b):
    """a * b with broadcasting."""
    a, b = _pair(a, b, "mul")
    y = _broadcast("mul", array_module(a, b).multiply, a, b)

    def backward(g):
        return (unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                unbroadcast(g * a.data, b.shape) if b.requires_grad else None)
    return record(Tensor._result(y), "mul", (a, b), backward)


def div(a, b):
    """a / b with broadcasting."""
    a, b = _pair(a, b, "div")
    y = _broadcast("div", array_module(a, b).divide, a, b)

    def backward(g):
        gb = g / b.data
        return (unbroadcast(gb, a.shape) if a.requires_grad else None,
                unbroadcast(-gb * y, b.shape) if b.requires_grad else None)
    return record(Tensor._result(y), "div", (a, b), backward)


def neg(x):
    """-x."""
    x = as_tensor(x)
    return record(Tensor._result(-x.data), "neg", (x,), lambda g: (-g,))


def power(x, exponent):
    """x ** exponent for a scalar (Python or numpy number) exponent.

    Examples
    --------
    >>> power(Tensor([2.0, 3.0]), 2)
    Tensor([4., 9.])
    """
    x = as_tensor(x)
    if not isinstance(exponent, numbers.Real) or isinstance(exponent, bool):
        raise TypeError(f"power: exponent must be a real scalar, received "
                        f"{type(exponent).__name__}")
    p = exponent
    y = x.data ** p

    def backward(g):
        if p == 2:
            return (g * (2 * x.data),)
        return (g * (p * x.data ** (p - 1)),)
    return record(Tensor._result(y), "power", (x,), backward)


def exp(x):
    """e ** x."""
    x = as_tensor(x)
    y = array_module(x).exp(x.data)
    return record(Tensor._result(y), "exp", (x,), lambda g: (g * y,))


def log(x):
    """Natural logarithm (-inf at 0, nan below, as numpy)."""
    x = as_tensor(x)
    y = array_module(x).log(x.data)
    return record(Tensor._result(y), "log", (x,), lambda g: (g / x.data,))


def sqrt(x):
    """Square root."""
    x = as_tensor(x)
    y = array_module(x).sqrt(x.data)
    return record(Tensor._result(y), "sqrt", (x,), lambda g: (g * 0.5 / y,))
