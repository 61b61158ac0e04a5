"""keras.losses: Keras 3's classes and functions, resolved to engine's losses.

``model.compile(loss=losses.categorical_crossentropy)`` and ``loss=CategoricalCrossentropy()``
both select engine's fused softmax cross-entropy (names, not opaque callables).
"""
from __future__ import annotations

from .. import losses as _el
from ..losses import (BinaryCrossentropy, CategoricalCrossentropy,  # noqa: F401
                       MeanSquaredError, SparseCategoricalCrossentropy)

__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "MeanSquaredError", "binary_crossentropy", "categorical_crossentropy",
           "sparse_categorical_crossentropy", "mean_squared_error", "mse", "get"]


def _named(name):
    def loss(y_true, y_pred):
        """Keras's loss function (y_true first); in compile it stands for its name."""
        return _el.get(name)(y_pred, y_true)
    loss.__name__ = loss.__qualname__ = name
    loss.keras_name = name
    return loss


binary_crossentropy = _named("binary_crossentropy")
categorical_crossentropy = _named("categorical_crossentropy")
sparse_categorical_crossentropy = _named("sparse_categorical_crossentropy")
mean_squared_error = mse = _named("mean_squared_error")

_ALIASES = {"MSE": "mse", "mean_squared_error": "mse"}


def get(identifier):
    """An engine Loss for a Keras name, class instance or one of these functions."""
    name = getattr(identifier, "keras_name", None)
    if name is not None:
        return _el.get(name)
    if isinstance(identifier, str):
        identifier = _ALIASES.get(identifier, identifier)
    return _el.get(identifier)
