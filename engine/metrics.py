"""Metrics for ``model.compile(metrics=[...])``, computed on ndarrays (no tape).

Each metric is ``fn(pred, target) -> float``, the mean over the batch; ``fit`` and ``evaluate``
average them over an epoch weighted by batch size.  "accuracy" (or "acc") is resolved from the
loss as Keras does: sparse labels -> sparse categorical accuracy; binary cross-entropy or a
single output unit -> binary accuracy (threshold 0.5); otherwise categorical accuracy
(argmax of prediction vs argmax of target).

    >>> import numpy as np
    >>> categorical_accuracy(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[1, 0], [1, 0]]))
    0.5
"""
from __future__ import annotations

import numpy as np

__all__ = ["categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy", "mse",
           "mae", "get", "METRICS"]


def categorical_accuracy(pred, target):
    """Fraction of rows where argmax(pred) == argmax(target)."""
    return float(np.mean(pred.argmax(axis=-1) == target.argmax(axis=-1)))


def sparse_categorical_accuracy(pred, target):
    """Fraction of rows where argmax(pred) equals the integer label."""
    return float(np.mean(pred.argmax(axis=-1) == target.reshape(pred.shape[:-1])))


def binary_accuracy(pred, target, threshold=0.5):
    """Fraction of entries where (pred > threshold) equals the 0/1 target."""
    return float(np.mean((pred > threshold) == (target > 0.5)))


def mse(pred, target):
    """Mean squared error over all entries."""
    return float(np.mean(np.square(pred - target)))


def mae(pred, target):
    """Mean absolute error over all entries."""
    return float(np.mean(np.abs(pred - target)))


METRICS = {"categorical_accuracy": categorical_accuracy,
           "sparse_categorical_accuracy": sparse_categorical_accuracy,
           "binary_accuracy": binary_accuracy, "mse": mse, "mae": mae}


def get(identifier, loss=None, output_shape=None):
    """(name, fn) for a metric name or callable ``fn(pred, target) -> float``.

    ``loss`` (an engine.losses.Loss) and ``output_shape`` resolve "accuracy"/"acc".
    """
    if callable(identifier):
        return getattr(identifier, "__name__", "metric"), identifier
    if identifier in ("accuracy", "acc"):
        if loss is not None and loss.sparse:
            fn = sparse_categorical_accuracy
        elif (loss is not None and loss.name == "binary_crossentropy") or (
                output_shape is not None and output_shape[-1] == 1):
            fn = binary_accuracy
        else:
            fn = categorical_accuracy
        return identifier, fn
    if isinstance(identifier, str) and identifier in METRICS:
        return identifier, METRICS[identifier]
    raise ValueError(f"metrics: unknown metric {identifier!r}; valid names: accuracy, acc, "
                     f"{', '.join(METRICS)} (or a callable fn(pred, target) -> float)")
