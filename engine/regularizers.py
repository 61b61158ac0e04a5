"""Weight regularizers (Keras's l1, l2, l1_l2): a penalty on a weight, added to the training
loss and reported in it, as Keras's ``model.losses``.

Layers take ``kernel_regularizer=`` and ``bias_regularizer=`` (a name, an object or a
``{"class_name", "config"}`` dict); ``layer.losses`` lists the penalties now, and
``fit`` / ``train_on_batch`` / ``evaluate`` add their sum to the loss.

    >>> import numpy as np, engine
    >>> L2(0.5)(engine.Tensor(np.array([1.0, 2.0]))).item()
    2.5
"""
from __future__ import annotations

import numbers

from . import functional as F
from .ops import extra as E

__all__ = ["Regularizer", "L1", "L2", "L1L2", "get", "penalty", "REGULARIZERS"]


def _factor(owner, name, v):
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or v < 0:
        raise ValueError(f"{owner}: {name} must be a number >= 0, received {v!r}")
    return float(v)


class Regularizer:
    """``reg(weight Tensor) -> scalar Tensor`` (on the tape) and ``get_config()``."""

    def __call__(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w**2) (Keras: no factor 1/2).

    >>> import numpy as np, engine
    >>> L1L2(l1=1.0, l2=1.0)(engine.Tensor(np.array([-2.0]))).item()
    6.0
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor(type(self).__name__, "l1", l1)
        self.l2 = _factor(type(self).__name__, "l2", l2)

    def __call__(self, w):
        out = None
        if self.l1:
            out = F.mul(F.sum(E.abs(w)), self.l1)
        if self.l2:
            term = F.mul(F.sum(E.square(w)), self.l2)
            out = term if out is None else F.add(out, term)
        return out if out is not None else F.mul(F.sum(w), 0.0)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum(|w|), l1 = 0.01 by default (Keras)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(w**2), l2 = 0.01 by default (Keras)."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier, owner="regularizer"):
    """A Regularizer from None (None), a name ("l1", "l2", "l1_l2"), a
    ``{"class_name", "config"}`` dict, a Regularizer, or a callable ``w -> Tensor``."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier in REGULARIZERS:
        return REGULARIZERS[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in REGULARIZERS:
        return REGULARIZERS[identifier["class_name"]](**identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise ValueError(f"{owner}: unknown regularizer {identifier!r}; valid names: l1, l2, "
                     f"l1_l2 (or a Regularizer, or a callable w -> scalar Tensor)")


def serialize(reg):
    """The JSON-friendly form of a regularizer or constraint for get_config (None stays)."""
    if reg is None:
        return None
    if not hasattr(reg, "get_config"):
        raise TypeError(f"a custom {type(reg).__name__} cannot be saved: give it get_config()")
    return {"class_name": type(reg).__name__, "config": reg.get_config()}


def penalty(layers):
    """The sum of the regularization penalties of ``layers`` (a scalar Tensor), or None."""
    total = None
    for layer in layers:
        for t in layer.losses:
            total = t if total is None else F.add(total, t)
    return total
