"""Weight constraints (Keras's max_norm, min_max_norm, non_neg, unit_norm), applied in place
after every optimizer update by fit / train_on_batch.

``axis`` names the axes of engine's own layout over which norms are taken: a Dense kernel
(in, out) with axis=0 is Keras's default (one norm per unit); for a channels-first conv kernel
(out, in, *k) the per-filter norm is axis=(1, 2, 3) (Keras's (0, 1, 2) of (*k, in, out)).

    >>> import numpy as np
    >>> w = np.array([[3.0], [4.0]])
    >>> MaxNorm(1.0)(w).round(4).tolist()
    [[0.6], [0.8]]
"""
from __future__ import annotations

import numbers

from .device import array_module

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "get", "apply",
           "CONSTRAINTS"]

EPSILON = 1e-7


def _axis(axis):
    return tuple(int(a) for a in axis) if isinstance(axis, (tuple, list)) else int(axis)


def _norms(w, axis):
    xp = array_module(w)
    return xp.sqrt((w * w).sum(axis=axis, keepdims=True))


class Constraint:
    """``c(array) -> array`` (the constrained weights) and ``get_config()``."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Scale each slice whose L2 norm (over ``axis``) exceeds ``max_value`` back to it."""

    def __init__(self, max_value=2.0, axis=0):
        if not isinstance(max_value, numbers.Real) or max_value <= 0:
            raise ValueError(f"MaxNorm: max_value must be a number > 0, received {max_value!r}")
        self.max_value, self.axis = float(max_value), _axis(axis)

    def __call__(self, w):
        xp = array_module(w)
        n = _norms(w, self.axis)
        return w * (xp.clip(n, 0, self.max_value) / (EPSILON + n))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Norms pulled into [min_value, max_value]: rate * clip(n) + (1 - rate) * n."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        if not 0 <= min_value <= max_value:
            raise ValueError(f"MinMaxNorm: need 0 <= min_value <= max_value, received "
                             f"{min_value!r}, {max_value!r}")
        self.min_value, self.max_value = float(min_value), float(max_value)
        self.rate, self.axis = float(rate), _axis(axis)

    def __call__(self, w):
        xp = array_module(w)
        n = _norms(w, self.axis)
        desired = self.rate * xp.clip(n, self.min_value, self.max_value) + (1 - self.rate) * n
        return w * (desired / (EPSILON + n))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


class NonNeg(Constraint):
    """Negative weights set to 0."""

    def __call__(self, w):
        return w * (w >= 0)


class UnitNorm(Constraint):
    """Each slice divided by its L2 norm over ``axis``."""

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def __call__(self, w):
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


CONSTRAINTS = {"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg,
               "unit_norm": UnitNorm, "MaxNorm": MaxNorm, "MinMaxNorm": MinMaxNorm,
               "NonNeg": NonNeg, "UnitNorm": UnitNorm}


def get(identifier, owner="constraint"):
    """A Constraint from None, a name, a ``{"class_name", "config"}`` dict, a Constraint or a
    callable ``array -> array``."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str) and identifier in CONSTRAINTS:
        return CONSTRAINTS[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in CONSTRAINTS:
        return CONSTRAINTS[identifier["class_name"]](**identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise ValueError(f"{owner}: unknown constraint {identifier!r}; valid names: max_norm, "
                     f"min_max_norm, non_neg, unit_norm (or a callable array -> array)")


def apply(layers):
    """Apply every layer's weight constraints in place (after an optimizer update)."""
    for layer in layers:
        for t, c in getattr(layer, "_constraints", ()):
            t.data[...] = c(t.data)
            t._version = getattr(t, "_version", 0) + 1   # drops prepared transforms
