"""keras.regularizers: L1, L2, L1L2 (and l1, l2, l1_l2).  A regularizer maps a weight
Tensor to a scalar Tensor added to the loss (engine.keras models add them in training and
evaluation, as Keras does).

    >>> import numpy as np, engine
    >>> from engine.keras import regularizers
    >>> float(regularizers.l2(0.01)(engine.Tensor(np.array([1.0, -2.0]))).item())
    0.05
"""
from __future__ import annotations

from .. import functional as F

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize"]


def _abs(w):
    return F.add(F.relu(w), F.relu(F.neg(w)))


class Regularizer:
    def __call__(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w**2)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        total = None
        if self.l1:
            total = F.mul(F.sum(_abs(w)), self.l1)
        if self.l2:
            term = F.mul(F.sum(F.mul(w, w)), self.l2)
            total = term if total is None else F.add(total, term)
        return total if total is not None else F.mul(F.sum(w), 0.0)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2
_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier, owner="regularizer"):
    if identifier is None or isinstance(identifier, Regularizer) or callable(identifier) \
            and not isinstance(identifier, type):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in ("l1", "l2", "l1_l2"):
        return {"l1": L1, "l2": L2, "l1_l2": L1L2}[identifier.lower()]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]](**identifier.get("config", {}))
    raise ValueError(f"{owner}: unknown regularizer {identifier!r}; valid: l1, l2, l1_l2, "
                     f"a Regularizer or a callable weight -> scalar Tensor")


def serialize(reg):
    if isinstance(reg, Regularizer):
        return {"class_name": type(reg).__name__, "config": reg.get_config()}
    return reg
