"""keras.utils: to_categorical (Keras 1's keras.utils.np_utils.to_categorical too),
set_random_seed."""
from __future__ import annotations

import numpy as np

from ...data import to_categorical as _to_categorical
from ...init import set_seed
from . import np_utils  # noqa: F401

__all__ = ["to_categorical", "set_random_seed", "np_utils"]


def to_categorical(x, num_classes=None):
    """One-hot encode integer labels (N,) or (N, 1) -> (N, num_classes) float32.

    >>> to_categorical([0, 2], 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    return _to_categorical(np.asarray(x), num_classes)


def set_random_seed(seed):
    """Seed convlab's generator (weights, dropout, shuffling)."""
    set_seed(seed)
