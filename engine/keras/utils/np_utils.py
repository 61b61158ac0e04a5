"""Keras 1's keras.utils.np_utils."""
from __future__ import annotations

import numpy as np


def to_categorical(y, nb_classes=None, num_classes=None):
    """Keras 1's to_categorical(y, nb_classes)."""
    from ...data import to_categorical as _to_categorical
    return _to_categorical(np.asarray(y), num_classes if num_classes is not None
                           else nb_classes)
