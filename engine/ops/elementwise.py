"""Element-wise arithmetic with numpy broadcasting.

Gradients are summed back over broadcast axes (:func:`engine.autograd.unbroadcast`) so every
input receives a gradient of its own shape.  A Python scalar or ndarray operand takes the
dtype of the Tensor operand, so float32 stays float32.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import device as _dev
from ..autograd import record, unbroadcast
from ..tensor import Tensor, as_tensor

__all__ = ["add", "sub", "mul", "div", "neg", "power", "exp", "log", "sqrt"]


def _cuda_operand(a, b):
    """True when either operand is a Tensor on cuda (the op then runs in engine.device)."""
    return ((isinstance(a, Tensor) and not isinstance(a.data, np.ndarray))
            or (isinstance(b, Tensor) and not isinstance(b.data, np.ndarray)))


def _pair(a, b):
    if isinstance(a, Tensor):
        return a, as_tensor(b, like=a)
    if isinstance(b, Tensor):
        return as_tensor(a, like=b), b
    return as_tensor(a), as_tensor(b)


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
    if _cuda_operand(a, b):
        return _dev.binary("add", a, b)
    a, b = _pair(a, b)
    y = _broadcast("add", np.add, a, b)

    def backward(g):
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(g, b.shape) if b.requires_grad else None)
    return record(Tensor._result(y), "add", (a, b), backward)


def sub(a, b):
    """a - b with broadcasting."""
    if _cuda_operand(a, b):
        return _dev.binary("sub", a, b)
    a, b = _pair(a, b)
    y = _broadcast("sub", np.subtract, a, b)

    def backward(g):
        return (unbroadcast(g, a.shape) if a.requires_grad else None,
                unbroadcast(-g, b.shape) if b.requires_grad else None)
    return record(Tensor._result(y), "sub", (a, b), backward)


def mul(a, b):
    """a * b with broadcasting."""
    if _cuda_operand(a, b):
        return _dev.binary("mul", a, b)
    a, b = _pair(a, b)
    y = _broadcast("mul", np.multiply, a, b)

    def backward(g):
        return (unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                unbroadcast(g * a.data, b.shape) if b.requires_grad else None)
    return record(Tensor._result(y), "mul", (a, b), backward)


def div(a, b):
    """a / b with broadcasting (on cuda: a tensor divided by a Python number)."""
    if _cuda_operand(a, b):
        if isinstance(a, Tensor) and isinstance(b, numbers.Real) and not isinstance(b, bool):
            return _dev.binary("mul", a, 1.0 / b)
        _dev.cpu_only("div (of tensors on 'cuda', other than by a Python number)", a)
        _dev.cpu_only("div (of tensors on 'cuda', other than by a Python number)", b)
    a, b = _pair(a, b)
    y = _broadcast("div", np.divide, a, b)

    def backward(g):
        gb = g / b.data
        return (unbroadcast(gb, a.shape) if a.requires_grad else None,
                unbroadcast(-gb * y, b.shape) if b.requires_grad else None)
    return record(Tensor._result(y), "div", (a, b), backward)


def neg(x):
    """-x."""
    x = as_tensor(x)
    if not isinstance(x.data, np.ndarray):
        return _dev.neg(x)
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
    _dev.cpu_only("power", x)
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
    _dev.cpu_only("exp", x)
    y = np.exp(x.data)
    return record(Tensor._result(y), "exp", (x,), lambda g: (g * y,))


def log(x):
    """Natural logarithm (-inf at 0, nan below, as numpy)."""
    x = as_tensor(x)
    _dev.cpu_only("log", x)
    y = np.log(x.data)
    return record(Tensor._result(y), "log", (x,), lambda g: (g / x.data,))


def sqrt(x):
    """Square root."""
    x = as_tensor(x)
    _dev.cpu_only("sqrt", x)
    y = np.sqrt(x.data)
    return record(Tensor._result(y), "sqrt", (x,), lambda g: (g * 0.5 / y,))
