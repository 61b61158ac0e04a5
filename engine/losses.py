"""Losses by name for ``model.compile``: each maps to a function of engine.functional.

    "mse" / "mean_squared_error"        mean over the last axis, then over the batch (Keras)
    "binary_crossentropy"               targets in [0, 1], same shape as the predictions
    "categorical_crossentropy"          one-hot targets (N, classes)
    "sparse_categorical_crossentropy"   integer targets (N,)
    "mae", "mape", "msle", "huber", "log_cosh", "hinge", "squared_hinge", "categorical_hinge",
    "kl_divergence", "poisson", "cosine_similarity", "dice", "tversky",
    "binary_focal_crossentropy", "categorical_focal_crossentropy"    (Keras's formulas)

Every loss but Dice/Tversky with axis=None has a per-sample form (``loss.per_sample(pred,
target)``, shape (N,)), which fit's class_weight / sample_weight multiply.

The cross-entropies are fused with a final softmax/sigmoid by engine.functional (stable, and the
gradient is exactly (softmax - onehot) / N).  Loss objects take ``from_logits=True`` for models
whose last layer has no activation, and ``label_smoothing`` (binary and categorical).

    >>> import numpy as np, engine
    >>> loss = engine.losses.get("mse")
    >>> loss(engine.Tensor(np.zeros((2, 2))), np.ones((2, 2))).item()
    1.0
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .ops import extra as E
from .ops.activation import log_softmax
from .ops.loss import EPSILON

__all__ = ["Loss", "MeanSquaredError", "BinaryCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "MeanAbsoluteError", "MeanAbsolutePercentageError",
           "MeanSquaredLogarithmicError", "Huber", "LogCosh", "Hinge", "SquaredHinge",
           "CategoricalHinge", "KLDivergence", "Poisson", "CosineSimilarity", "Dice", "Tversky",
           "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy", "get", "LOSSES"]


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
        return F.mean(self.per_sample(pred, target))

    def per_sample(self, pred, target):
        """The loss of each sample, an (N,) Tensor (its mean is the loss; sample and class
        weights multiply it)."""
        raise TypeError(f"{type(self).__name__}: no per-sample form, so sample_weight and "
                        f"class_weight cannot be used with it")

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

    def per_sample(self, pred, target):
        return _batch_mean(E.square(F.sub(pred, _const(target, pred))))


class _CrossEntropy(Loss):
    def __init__(self, from_logits=False, label_smoothing=0.0):
        if not isinstance(from_logits, bool):
            raise TypeError(f"{type(self).__name__}: from_logits must be a bool, received "
                            f"{from_logits!r}")
        self.from_logits = from_logits
        if not isinstance(label_smoothing, (int, float)) or isinstance(label_smoothing, bool) \
                or not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"{type(self).__name__}: label_smoothing must be a number in "
                             f"[0, 1], received {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def get_config(self):
        cfg = {"from_logits": self.from_logits}
        if self.label_smoothing:
            cfg["label_smoothing"] = self.label_smoothing
        return cfg


class BinaryCrossentropy(_CrossEntropy):
    """Binary cross-entropy; predictions are probabilities unless ``from_logits``."""

    name = "binary_crossentropy"

    def _smooth(self, target):
        if not self.label_smoothing:
            return target
        t = _host(target)
        return t * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing

    def __call__(self, pred, target):
        return F.binary_cross_entropy(pred, self._smooth(target), from_logits=self.from_logits)

    def per_sample(self, pred, target):
        y = _const(self._smooth(target), pred)
        z = pred if self.from_logits else _fused(pred, "sigmoid")
        if z is not None:   # max(z, 0) - z * y + log1p(exp(-|z|))
            per = F.sub(F.add(E.relu_ext(z), E.softplus(F.neg(E.abs(z)))), F.mul(z, y))
        else:
            p = E.clip(pred, EPSILON, 1 - EPSILON)
            per = F.neg(F.add(F.mul(y, F.log(p)), F.mul(F.sub(1.0, y), F.log(F.sub(1.0, p)))))
        return _batch_mean(per)


class CategoricalCrossentropy(_CrossEntropy):
    """Cross-entropy against one-hot targets (N, classes)."""

    name = "categorical_crossentropy"

    def _smooth(self, target):
        if not self.label_smoothing:
            return target
        t = _host(target)
        return t * (1.0 - self.label_smoothing) + self.label_smoothing / t.shape[-1]

    def __call__(self, pred, target):
        return F.categorical_cross_entropy(pred, self._smooth(target),
                                           from_logits=self.from_logits)

    def per_sample(self, pred, target):
        return _categorical_per_sample(pred, _const(self._smooth(target), pred),
                                       self.from_logits)


class SparseCategoricalCrossentropy(_CrossEntropy):
    """Cross-entropy against integer class labels (N,)."""

    name = "sparse_categorical_crossentropy"
    sparse = True

    def __init__(self, from_logits=False):
        super().__init__(from_logits)

    def __call__(self, pred, target):
        return F.sparse_categorical_cross_entropy(pred, target, from_logits=self.from_logits)

    def per_sample(self, pred, target):
        labels = _host(target).reshape(-1).astype(np.int64)
        onehot = np.zeros((len(labels), pred.shape[-1]), np.float32)
        onehot[np.arange(len(labels)), labels] = 1.0
        return _categorical_per_sample(pred, _const(onehot, pred), self.from_logits)


def _host(a):
    from .device import host
    return np.asarray(host(a.data if hasattr(a, "requires_grad") else a), dtype=np.float32)


def _const(target, like):
    """``target`` as a constant Tensor on ``like``'s device, in its dtype."""
    from .tensor import as_tensor
    return as_tensor(target.data if hasattr(target, "requires_grad") else target, like=like)


def _fused(pred, kind):
    mark = getattr(pred, "_activation_of", None)
    if mark is None or mark[0] != kind or (kind == "softmax" and mark[2] != pred.ndim - 1):
        return None
    return mark[1]


def _batch_mean(per_element):
    """Mean over the last axis, then over every axis but the batch: (N,)."""
    t = F.mean(per_element, axis=-1) if per_element.ndim > 1 else per_element
    return F.mean(t, axis=tuple(range(1, t.ndim))) if t.ndim > 1 else t


def _categorical_per_sample(pred, y, from_logits):
    z = pred if from_logits else _fused(pred, "softmax")
    if z is not None:
        per = F.neg(F.sum(F.mul(y, log_softmax(z, axis=-1)), axis=-1))
    else:   # Keras: probabilities renormalised, then clipped
        p = E.clip(F.div(pred, F.sum(pred, axis=-1, keepdims=True)), EPSILON, 1 - EPSILON)
        per = F.neg(F.sum(F.mul(y, F.log(p)), axis=-1))
    return F.mean(per, axis=tuple(range(1, per.ndim))) if per.ndim > 1 else per


class _Elementwise(Loss):
    """A loss whose value per sample is the mean over the last axis of ``elementwise``."""

    def per_sample(self, pred, target):
        return _batch_mean(self.elementwise(pred, _const(target, pred)))


class MeanAbsoluteError(_Elementwise):
    """mean(|pred - target|) over the last axis, then over the batch.

    >>> import engine
    >>> MeanAbsoluteError()(engine.Tensor([[1.0, -1.0]]), [[0.0, 0.0]]).item()
    1.0
    """

    name = "mean_absolute_error"

    def elementwise(self, p, y):
        return E.abs(F.sub(p, y))


class MeanAbsolutePercentageError(_Elementwise):
    """100 * mean(|(target - pred) / max(|target|, 1e-7)|) (Keras).

    >>> import engine
    >>> MeanAbsolutePercentageError()(engine.Tensor([[1.5]]), [[2.0]]).item()
    25.0
    """

    name = "mean_absolute_percentage_error"

    def elementwise(self, p, y):
        denom = np.maximum(np.abs(_host(y)), EPSILON)
        return F.mul(E.abs(F.div(F.sub(y, p), _const(denom, p))), 100.0)


class MeanSquaredLogarithmicError(_Elementwise):
    """mean((log(max(pred, eps) + 1) - log(max(target, eps) + 1))**2) (Keras).

    >>> import engine
    >>> round(MeanSquaredLogarithmicError()(engine.Tensor([[0.0]]), [[np.e - 1]]).item(), 6)
    1.0
    """

    name = "mean_squared_logarithmic_error"

    def elementwise(self, p, y):
        ly = np.log1p(np.maximum(_host(y), EPSILON))
        return E.square(F.sub(E.log1p(E.maximum(p, EPSILON)), _const(ly, p)))


class Huber(_Elementwise):
    """0.5 e**2 where |e| <= delta, delta * |e| - 0.5 delta**2 elsewhere (e = pred - target).

    >>> import engine
    >>> Huber(delta=1.0)(engine.Tensor([[0.5, 3.0]]), [[0.0, 0.0]]).item()
    1.3125
    """

    name = "huber"

    def __init__(self, delta=1.0):
        if not isinstance(delta, (int, float)) or isinstance(delta, bool) or delta <= 0:
            raise ValueError(f"Huber: delta must be a number > 0, received {delta!r}")
        self.delta = float(delta)

    def elementwise(self, p, y):
        a = E.abs(F.sub(p, y))
        q = E.minimum(a, self.delta)          # quadratic part, then the linear rest
        return F.add(F.mul(E.square(q), 0.5), F.mul(F.sub(a, q), self.delta))

    def get_config(self):
        return {"delta": self.delta}


class LogCosh(_Elementwise):
    """mean(log(cosh(pred - target))).

    >>> import engine
    >>> round(LogCosh()(engine.Tensor([[1.0]]), [[0.0]]).item(), 5)
    0.43378
    """

    name = "log_cosh"

    def elementwise(self, p, y):
        return E.log_cosh(F.sub(p, y))


def _hinge_labels(y):
    """0/1 targets become -1/1 as Keras does; -1/1 targets stay."""
    t = _host(y)
    return 2.0 * t - 1.0 if np.all((t == 0) | (t == 1)) else t


class Hinge(_Elementwise):
    """mean(max(1 - target * pred, 0)); 0/1 targets are read as -1/1.

    >>> import engine
    >>> Hinge()(engine.Tensor([[0.5, -2.0]]), [[1.0, 0.0]]).item()
    0.25
    """

    name = "hinge"

    def elementwise(self, p, y):
        return E.maximum(F.sub(1.0, F.mul(p, _const(_hinge_labels(y), p))), 0.0)


class SquaredHinge(Hinge):
    """mean(max(1 - target * pred, 0)**2).

    >>> import engine
    >>> SquaredHinge()(engine.Tensor([[0.5, -2.0]]), [[1.0, 0.0]]).item()
    0.125
    """

    name = "squared_hinge"

    def elementwise(self, p, y):
        return E.square(super().elementwise(p, y))


class CategoricalHinge(Loss):
    """max(max((1 - target) * pred) - sum(target * pred) + 1, 0) per sample.

    >>> import engine
    >>> CategoricalHinge()(engine.Tensor([[0.25, 0.75]]), [[1.0, 0.0]]).item()
    1.5
    """

    name = "categorical_hinge"

    def per_sample(self, pred, target):
        y = _const(target, pred)
        pos = F.sum(F.mul(y, pred), axis=-1)
        neg = F.max(F.mul(F.sub(1.0, y), pred), axis=-1)
        return E.maximum(F.add(F.sub(neg, pos), 1.0), 0.0)


class KLDivergence(Loss):
    """sum(t * log(t / p)) over the last axis with t, p clipped to [1e-7, 1].

    >>> import engine
    >>> KLDivergence()(engine.Tensor([[0.5, 0.5]]), [[0.5, 0.5]]).item()
    0.0
    """

    name = "kl_divergence"

    def per_sample(self, pred, target):
        t = np.clip(_host(target), EPSILON, 1.0)
        p = E.clip(pred, EPSILON, 1.0)
        return F.sum(F.mul(_const(t, pred), F.sub(_const(np.log(t), pred), F.log(p))),
                     axis=-1)


class Poisson(_Elementwise):
    """mean(pred - target * log(pred + 1e-7)).

    >>> import engine
    >>> Poisson()(engine.Tensor([[1.0]]), [[0.0]]).item()
    1.0
    """

    name = "poisson"

    def elementwise(self, p, y):
        return F.sub(p, F.mul(y, F.log(F.add(p, EPSILON))))


class CosineSimilarity(Loss):
    """-sum(l2_normalize(target) * l2_normalize(pred)) along ``axis`` (Keras: -1 for
    aligned vectors; x / sqrt(max(sum(x**2), 1e-12)) normalises).

    >>> import engine
    >>> CosineSimilarity()(engine.Tensor([[2.0, 0.0]]), [[1.0, 0.0]]).item()
    -1.0
    """

    name = "cosine_similarity"

    def __init__(self, axis=-1):
        self.axis = int(axis)

    def per_sample(self, pred, target):
        t = _host(target)
        t = t / np.sqrt(np.maximum((t * t).sum(axis=self.axis, keepdims=True), 1e-12))
        norm = F.sqrt(E.maximum(F.sum(E.square(pred), axis=self.axis, keepdims=True), 1e-12))
        per = F.neg(F.sum(F.mul(F.div(pred, norm), _const(t, pred)), axis=self.axis))
        return F.mean(per, axis=tuple(range(1, per.ndim))) if per.ndim > 1 else per

    def get_config(self):
        return {"axis": self.axis}


class BinaryFocalCrossentropy(BinaryCrossentropy):
    """Binary cross-entropy scaled by (1 - p_t) ** gamma (Lin et al.), optionally weighted by
    alpha for positives and 1 - alpha for negatives (``apply_class_balancing``); Keras's form,
    on probabilities (logits go through a sigmoid first).

    >>> import engine
    >>> BinaryFocalCrossentropy(gamma=0.0)(engine.Tensor([[0.5]]), [[1.0]]).item() > 0.69
    True
    """

    name = "binary_focal_crossentropy"

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0):
        super().__init__(from_logits, label_smoothing)
        self.apply_class_balancing = bool(apply_class_balancing)
        self.alpha, self.gamma = float(alpha), float(gamma)

    def __call__(self, pred, target):
        return F.mean(self.per_sample(pred, target))

    def per_sample(self, pred, target):
        y = _const(self._smooth(target), pred)
        p = F.sigmoid(pred) if self.from_logits else pred
        pc = E.clip(p, EPSILON, 1 - EPSILON)
        bce = F.neg(F.add(F.mul(y, F.log(pc)), F.mul(F.sub(1.0, y), F.log(F.sub(1.0, pc)))))
        p_t = F.add(F.mul(y, p), F.mul(F.sub(1.0, y), F.sub(1.0, p)))
        out = F.mul(F.power(F.sub(1.0, p_t), self.gamma), bce)
        if self.apply_class_balancing:
            out = F.mul(out, F.add(F.mul(y, self.alpha), F.mul(F.sub(1.0, y), 1 - self.alpha)))
        return _batch_mean(out)

    def get_config(self):
        return {**super().get_config(), "apply_class_balancing": self.apply_class_balancing,
                "alpha": self.alpha, "gamma": self.gamma}


class CategoricalFocalCrossentropy(CategoricalCrossentropy):
    """sum(alpha * (1 - p) ** gamma * -t log p) over the classes, p renormalised and clipped
    (Keras's form; logits go through a softmax first).

    >>> import engine
    >>> round(CategoricalFocalCrossentropy(alpha=1.0, gamma=0.0)(
    ...     engine.Tensor([[0.5, 0.5]]), [[1.0, 0.0]]).item(), 5)
    0.69315
    """

    name = "categorical_focal_crossentropy"

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
        super().__init__(from_logits, label_smoothing)
        self.alpha, self.gamma = float(alpha), float(gamma)

    def __call__(self, pred, target):
        return F.mean(self.per_sample(pred, target))

    def per_sample(self, pred, target):
        y = _const(self._smooth(target), pred)
        p = F.softmax(pred, axis=-1) if self.from_logits else pred
        out = E.clip(F.div(p, F.sum(p, axis=-1, keepdims=True)), EPSILON, 1 - EPSILON)
        cce = F.neg(F.mul(y, F.log(out)))
        focal = F.mul(F.mul(F.power(F.sub(1.0, out), self.gamma), self.alpha), cce)
        per = F.sum(focal, axis=-1)
        return F.mean(per, axis=tuple(range(1, per.ndim))) if per.ndim > 1 else per

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}


class _Overlap(Loss):
    """Dice / Tversky: 1 - an overlap ratio of target and prediction, summed over ``axis``
    (None: everything, one value for the batch, as Keras; a tuple of non-batch axes: one
    value per sample, then the batch mean)."""

    def __init__(self, axis=None):
        if axis is not None:
            axis = (axis,) if isinstance(axis, int) else tuple(axis)
            if 0 in axis or not all(isinstance(a, int) for a in axis):
                raise ValueError(f"{type(self).__name__}: axis must be None or non-batch "
                                 f"axes, received {axis!r}")
        self.axis = axis

    def _value(self, pred, y, axis):
        raise NotImplementedError

    def __call__(self, pred, target):
        if self.axis is None:
            return self._value(pred, _const(target, pred), None)
        return F.mean(self.per_sample(pred, target))

    def per_sample(self, pred, target):
        if self.axis is None:
            return super().per_sample(pred, target)
        return self._value(pred, _const(target, pred), self.axis)

    def get_config(self):
        return {"axis": None if self.axis is None else list(self.axis)}


class Dice(_Overlap):
    """1 - 2 sum(t * p) / (sum(t) + sum(p) + 1e-7) (segmentation overlap).

    >>> import engine
    >>> Dice()(engine.Tensor([[1.0, 0.0]]), [[1.0, 0.0]]).item() < 1e-6
    True
    """

    name = "dice"

    def _value(self, p, y, axis):
        inter = F.sum(F.mul(y, p), axis=axis)
        return F.sub(1.0, F.div(F.mul(inter, 2.0),
                                F.add(F.add(F.sum(y, axis=axis), F.sum(p, axis=axis)),
                                      EPSILON)))


class Tversky(_Overlap):
    """1 - sum(t p) / (sum(t p) + alpha sum((1 - p) t) + beta sum(p (1 - t)) + 1e-7)
    (Keras's form; alpha = beta = 0.5 is Dice).

    >>> import engine
    >>> round(Tversky()(engine.Tensor([[1.0, 1.0]]), [[1.0, 0.0]]).item(), 5)
    0.33333
    """

    name = "tversky"

    def __init__(self, alpha=0.5, beta=0.5, axis=None):
        super().__init__(axis)
        self.alpha, self.beta = float(alpha), float(beta)

    def _value(self, p, y, axis):
        inter = F.sum(F.mul(y, p), axis=axis)
        fp = F.sum(F.mul(F.sub(1.0, p), y), axis=axis)
        fn = F.sum(F.mul(p, F.sub(1.0, y)), axis=axis)
        denom = F.add(F.add(F.add(inter, F.mul(fp, self.alpha)), F.mul(fn, self.beta)),
                      EPSILON)
        return F.sub(1.0, F.div(inter, denom))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


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
          "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
          "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
          "mape": MeanAbsolutePercentageError,
          "mean_absolute_percentage_error": MeanAbsolutePercentageError,
          "msle": MeanSquaredLogarithmicError,
          "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
          "huber": Huber, "huber_loss": Huber, "log_cosh": LogCosh, "logcosh": LogCosh,
          "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
          "kl_divergence": KLDivergence, "kld": KLDivergence,
          "kullback_leibler_divergence": KLDivergence, "poisson": Poisson,
          "cosine_similarity": CosineSimilarity, "dice": Dice, "tversky": Tversky,
          "binary_focal_crossentropy": BinaryFocalCrossentropy,
          "categorical_focal_crossentropy": CategoricalFocalCrossentropy}


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
