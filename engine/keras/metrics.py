"""keras.metrics: names ("accuracy", "acc", "categorical_accuracy", ...) and functions,
resolved to engine's metrics."""
from __future__ import annotations

from .. import metrics as _em

__all__ = ["categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy", "mse",
           "mae", "Accuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
           "BinaryAccuracy", "MeanSquaredError", "MeanAbsoluteError", "get"]


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


class _Metric:
    """Keras 3's metric classes, as compile arguments (they stand for their name)."""

    keras_name = None

    def __init__(self, name=None, dtype=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: arguments {sorted(kwargs)} are not "
                            f"supported by convlab")
        self.name = name


def _metric_class(cls_name, name):
    return type(cls_name, (_Metric,), {"keras_name": name, "__module__": __name__,
                                       "__doc__": f"keras.metrics.{cls_name}()."})


Accuracy = _metric_class("Accuracy", "accuracy")
CategoricalAccuracy = _metric_class("CategoricalAccuracy", "categorical_accuracy")
SparseCategoricalAccuracy = _metric_class("SparseCategoricalAccuracy",
                                          "sparse_categorical_accuracy")
BinaryAccuracy = _metric_class("BinaryAccuracy", "binary_accuracy")
MeanSquaredError = _metric_class("MeanSquaredError", "mse")
MeanAbsoluteError = _metric_class("MeanAbsoluteError", "mae")


def get(identifier):
    """The name engine's compile understands for ``identifier``."""
    name = getattr(identifier, "keras_name", None)
    if name is not None:
        return name
    if isinstance(identifier, str):
        return _ALIASES.get(identifier, identifier)
    return identifier
