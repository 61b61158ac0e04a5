"""Losses by name for ``model.compile``: each maps to a function of engine.functional.

    "mse" / "mean_squared_error"        mean over the last axis, then over the batch (Keras)
    "binary_crossentropy"               targets in [0, 1], same shape as the predictions
    "categorical_crossentropy"          one-hot targets (N, classes)
    "sparse_categorical_crossentropy"   integer targets (N,)

The cross-entropies are fused with a final softmax/sigmoid by engine.functional (stable, and the
gradient is exactly (softmax - onehot) / N).  Loss objects take ``from_logits=True`` for models
whose last layer has no activation.

    >>> import numpy as np, engine
    >>> loss = engine.losses.get("mse")
    >>> loss(engine.Tensor(np.zeros((2, 2))), np.ones((2, 2))).item()
    1.0
"""
from __future__ import annotations

import numpy as np

from . import functional as F

__all__ = ["Loss", "MeanSquaredError", "BinaryCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "get", "LOSSES"]


class Loss:
    """A loss: ``loss(pred, target) -> scalar Tensor`` plus what the targets must look like.

    Attributes
    ----------
    name : str            the name used in logs and saved files
    sparse : bool         targets are integer class indices (N,) rather than arrays shaped
                          like the predictions
    """

    name = "loss"
    sparse = False

    def __call__(self, pred, target):
        raise NotImplementedError

    def target_dtype(self):
        return np.int64 if self.sparse else np.float32

    def check_targets(self, pred_shape, y_shape, where="fit"):
        """Raise ValueError when targets of ``y_shape`` cannot go with predictions of
        ``pred_shape`` (batch dims excluded from the comparison)."""
        if self.sparse:
            if len(y_shape) != 1 and not (len(y_shape) == 2 and y_shape[1] == 1):
                raise ValueError(
                    f"{where}: loss {self.name!r} expects integer class labels of shape (N,), "
                    f"received y of shape {tuple(y_shape)}; for one-hot targets use "
                    f"'categorical_crossentropy'")
            return
        if tuple(y_shape[1:]) != tuple(pred_shape[1:]):
            hint = ""
            if len(y_shape) == 1 and len(pred_shape) == 2 and pred_shape[1] > 1:
                hint = ("; for integer class labels use 'sparse_categorical_crossentropy' or "
                        "engine.data.to_categorical(y)")
            raise ValueError(f"{where}: loss {self.name!r} expects targets shaped like the "
                             f"model output {tuple(pred_shape)}, received y of shape "
                             f"{tuple(y_shape)}{hint}")

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MeanSquaredError(Loss):
    """Mean over the last axis of (pred - target)**2, then mean over the batch."""

    name = "mse"

    def __call__(self, pred, target):
        return F.mse_loss(pred, target)


class _CrossEntropy(Loss):
    def __init__(self, from_logits=False):
        if not isinstance(from_logits, bool):
            raise TypeError(f"{type(self).__name__}: from_logits must be a bool, received "
                            f"{from_logits!r}")
        self.from_logits = from_logits

    def get_config(self):
        return {"from_logits": self.from_logits}


class BinaryCrossentropy(_CrossEntropy):
    """Binary cross-entropy; predictions are probabilities unless ``from_logits``."""

    name = "binary_crossentropy"

    def __call__(self, pred, target):
        return F.binary_cross_entropy(pred, target, from_logits=self.from_logits)


class CategoricalCrossentropy(_CrossEntropy):
    """Cross-entropy against one-hot targets (N, classes)."""

    name = "categorical_crossentropy"

    def __call__(self, pred, target):
        return F.categorical_cross_entropy(pred, target, from_logits=self.from_logits)


class SparseCategoricalCrossentropy(_CrossEntropy):
    """Cross-entropy against integer class labels (N,)."""

    name = "sparse_categorical_crossentropy"
    sparse = True

    def __call__(self, pred, target):
        return F.sparse_categorical_cross_entropy(pred, target, from_logits=self.from_logits)


class _Custom(Loss):
    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "loss")

    def __call__(self, pred, target):
        return self.fn(pred, target)

    def check_targets(self, pred_shape, y_shape, where="fit"):
        return


LOSSES = {"mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
          "binary_crossentropy": BinaryCrossentropy,
          "categorical_crossentropy": CategoricalCrossentropy,
          "sparse_categorical_crossentropy": SparseCategoricalCrossentropy}


def get(identifier):
    """A :class:`Loss` from a name (see the module docstring), a Loss object, a
    ``{"class_name": ..., "config": ...}`` dict, or a callable ``fn(pred, target) -> Tensor``.

    >>> get("categorical_crossentropy")
    CategoricalCrossentropy(from_logits=False)
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier in LOSSES:
        return LOSSES[identifier]()
    if isinstance(identifier, dict):
        classes = {c.__name__: c for c in LOSSES.values()}
        cls = classes.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"loss: unknown class_name {identifier.get('class_name')!r}; "
                             f"valid: {', '.join(sorted(classes))}")
        return cls(**identifier.get("config", {}))
    if callable(identifier):
        return _Custom(identifier)
    raise ValueError(f"loss: unknown loss {identifier!r}; valid names: {', '.join(LOSSES)} "
                     f"(or a callable fn(pred, target) returning a scalar Tensor)")
