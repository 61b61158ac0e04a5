"""keras.metrics: names ("accuracy", "acc", "categorical_accuracy", ...) and functions,
resolved to engine's metrics."""
from __future__ import annotations

from .. import metrics as _em

__all__ = ["categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy", "mse",
           "mae", "get"]


def _named(name):
    fn = _em.METRICS[name]

    def metric(y_true, y_pred):
        return fn(y_pred, y_true)
    metric.__name__ = metric.__qualname__ = name
    metric.keras_name = name
    return metric


categorical_accuracy = _named("categorical_accuracy")
sparse_categorical_accuracy = _named("sparse_categorical_accuracy")
binary_accuracy = _named("binary_accuracy")
mse = _named("mse")
mae = _named("mae")
_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae"}


def get(identifier):
    """The name engine's compile understands for ``identifier``."""
    name = getattr(identifier, "keras_name", None)
    if name is not None:
        return name
    if isinstance(identifier, str):
        return _ALIASES.get(identifier, identifier)
    return identifier
