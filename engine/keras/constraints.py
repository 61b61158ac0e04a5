"""keras.constraints: MaxNorm, NonNeg, UnitNorm, MinMaxNorm (and Keras 1's maxnorm, nonneg,
unitnorm).  A constraint maps a weight array (in Keras's layout: conv kernels
(*kernel, in, out)) to its projected value; engine.keras models apply it after every update,
as Keras does.

    >>> import numpy as np
    >>> from engine.keras.constraints import MaxNorm
    >>> MaxNorm(1.0)(np.array([[3.0], [4.0]])).ravel().round(6).tolist()
    [0.6, 0.8]
"""
from __future__ import annotations

import numpy as np

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "max_norm",
           "maxnorm", "non_neg", "nonneg", "unit_norm", "unitnorm", "min_max_norm", "get",
           "serialize"]

_EPS = 1e-7


class Constraint:
    def __call__(self, w):
        return w

    def get_config(self):
        return {}


class MaxNorm(Constraint):
    """Rescale so the L2 norm over ``axis`` is at most ``max_value`` (Keras: w * clip(n, 0,
    max) / (eps + n))."""

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = float(max_value), axis

    def __call__(self, w):
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        return w * (np.clip(norms, 0, self.max_value) / (_EPS + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    def __call__(self, w):
        return w * (w >= 0)


class UnitNorm(Constraint):
    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        return w / (_EPS + np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True)))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + \
            (1 - self.rate) * norms
        return w * (desired / (_EPS + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


max_norm = maxnorm = MaxNorm
non_neg = nonneg = NonNeg
unit_norm = unitnorm = UnitNorm
min_max_norm = MinMaxNorm
_CLASSES = {c.__name__: c for c in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_NAMES = {"max_norm": MaxNorm, "maxnorm": MaxNorm, "non_neg": NonNeg, "nonneg": NonNeg,
          "unit_norm": UnitNorm, "unitnorm": UnitNorm, "min_max_norm": MinMaxNorm}


def get(identifier, owner="constraint"):
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    if callable(identifier) and not isinstance(identifier, type):
        return identifier
    raise ValueError(f"{owner}: unknown constraint {identifier!r}; valid: "
                     f"{', '.join(sorted(_NAMES))}, a Constraint or a callable")


def serialize(c):
    if isinstance(c, Constraint):
        return {"class_name": type(c).__name__, "config": c.get_config()}
    return c
