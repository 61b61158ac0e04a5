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
           "mae", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "Metric",
           "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "MeanAbsoluteError",
           "Precision", "Recall", "AUC", "get", "METRICS"]


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


def _in_top_k(pred, labels, k):
    """True where the label's score is among the k largest of its row (ties count for the
    label, as Keras's in_top_k)."""
    rows = pred.reshape(-1, pred.shape[-1])
    own = rows[np.arange(len(rows)), labels.reshape(-1)]
    return (rows > own[:, None]).sum(axis=1) < k


def top_k_categorical_accuracy(pred, target, k=5):
    """Fraction of rows whose one-hot target's class is among the k highest predictions."""
    return float(np.mean(_in_top_k(pred, target.reshape(-1, pred.shape[-1]).argmax(axis=1),
                                   k)))


def sparse_top_k_categorical_accuracy(pred, target, k=5):
    """Fraction of rows whose integer label is among the k highest predictions."""
    return float(np.mean(_in_top_k(pred, np.asarray(target).astype(np.int64), k)))


class Metric:
    """A metric accumulated over an epoch (Keras's stateful metrics): ``update_state(pred,
    target)`` per batch, ``result()`` at any time, ``reset_state()`` at the start of an epoch
    and of evaluate.  Calling it computes the value on one batch alone."""

    name = "metric"
    stateful = True

    def __call__(self, pred, target):
        saved = self.__dict__.copy()
        self.reset_state()
        self.update_state(pred, target)
        value = self.result()
        self.__dict__.update(saved)
        return value

    def reset_state(self):
        raise NotImplementedError

    def update_state(self, pred, target):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError


class _MeanMetric(Metric):
    fn = None

    def __init__(self, name=None):
        self.name = name or self.name
        self.reset_state()

    def reset_state(self):
        self.total, self.count = 0.0, 0

    def update_state(self, pred, target):
        m = len(pred)
        self.total += type(self).fn(pred, target) * m
        self.count += m

    def result(self):
        return self.total / self.count if self.count else 0.0


class MeanAbsoluteError(_MeanMetric):
    """Mean of |pred - target| over the epoch."""
    name = "mean_absolute_error"
    fn = staticmethod(mae)


class TopKCategoricalAccuracy(_MeanMetric):
    """top_k_categorical_accuracy with ``k`` (default 5) over the epoch."""
    name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None):
        self.k = int(k)
        super().__init__(name)

    def update_state(self, pred, target):
        self.total += top_k_categorical_accuracy(pred, target, self.k) * len(pred)
        self.count += len(pred)


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """sparse_top_k_categorical_accuracy with ``k`` over the epoch."""
    name = "sparse_top_k_categorical_accuracy"

    def update_state(self, pred, target):
        self.total += sparse_top_k_categorical_accuracy(pred, target, self.k) * len(pred)
        self.count += len(pred)


class _Confusion(Metric):
    """Counts of true/false positives/negatives with predictions > threshold as positive,
    every entry an independent binary decision (Keras)."""

    def __init__(self, thresholds=0.5, name=None):
        self.thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float32))
        self.name = name or self.name
        self.reset_state()

    def reset_state(self):
        z = np.zeros(len(self.thresholds))
        self.tp, self.fp, self.tn, self.fn = z.copy(), z.copy(), z.copy(), z.copy()

    def update_state(self, pred, target):
        p = np.asarray(pred, dtype=np.float32).reshape(-1)
        t = np.asarray(target).reshape(-1) > 0.5
        if p.shape != t.shape:
            raise ValueError(f"{type(self).__name__}: predictions of shape "
                             f"{np.shape(pred)} do not match targets of shape "
                             f"{np.shape(target)}")
        above = p[None, :] > self.thresholds[:, None]
        self.tp += (above & t).sum(axis=1)
        self.fp += (above & ~t).sum(axis=1)
        self.fn += (~above & t).sum(axis=1)
        self.tn += (~above & ~t).sum(axis=1)


class Precision(_Confusion):
    """tp / (tp + fp) over the epoch, predictions > ``thresholds`` (0.5) positive."""
    name = "precision"

    def result(self):
        d = self.tp[0] + self.fp[0]
        return float(self.tp[0] / d) if d else 0.0


class Recall(_Confusion):
    """tp / (tp + fn) over the epoch, predictions > ``thresholds`` (0.5) positive."""
    name = "recall"

    def result(self):
        d = self.tp[0] + self.fn[0]
        return float(self.tp[0] / d) if d else 0.0


class AUC(_Confusion):
    """Area under the ROC curve over the epoch, Keras's estimate: counts at
    ``num_thresholds`` thresholds (-eps, evenly spaced inside (0, 1), 1 + eps), then the
    trapezoidal rule over (fpr, tpr).  Only curve="ROC" is offered."""
    name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", name=None):
        if curve != "ROC":
            raise ValueError(f"AUC: curve must be 'ROC' (the PR curve is not implemented), "
                             f"received {curve!r}")
        if not isinstance(num_thresholds, int) or num_thresholds < 2:
            raise ValueError(f"AUC: num_thresholds must be an int > 1, received "
                             f"{num_thresholds!r}")
        self.num_thresholds = num_thresholds
        inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        super().__init__([0.0 - 1e-7] + inner + [1.0 + 1e-7], name)

    def result(self):
        tpr = self.tp / np.maximum(self.tp + self.fn, 1e-30)
        fpr = self.fp / np.maximum(self.fp + self.tn, 1e-30)
        return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


METRICS = {"categorical_accuracy": categorical_accuracy,
           "sparse_categorical_accuracy": sparse_categorical_accuracy,
           "binary_accuracy": binary_accuracy, "mse": mse, "mae": mae,
           "mean_squared_error": mse, "mean_absolute_error": mae,
           "top_k_categorical_accuracy": top_k_categorical_accuracy,
           "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
           "precision": Precision, "recall": Recall, "auc": AUC}


def get(identifier, loss=None, output_shape=None):
    """(name, fn) for a metric name or callable ``fn(pred, target) -> float``.

    ``loss`` (an engine.losses.Loss) and ``output_shape`` resolve "accuracy"/"acc".
    """
    if isinstance(identifier, Metric):
        return identifier.name, identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        m = identifier()
        return m.name, m
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
        fn = METRICS[identifier]
        return identifier, (fn() if isinstance(fn, type) else fn)
    raise ValueError(f"metrics: unknown metric {identifier!r}; valid names: accuracy, acc, "
                     f"{', '.join(METRICS)} (or a callable fn(pred, target) -> float)")


def reset(compiled):
    """Reset the stateful metrics among ``compiled`` [(name, fn)] (start of an epoch or of
    evaluate)."""
    for _, fn in compiled:
        if getattr(fn, "stateful", False):
            fn.reset_state()


def accumulate(fn, pred, target, running_sum, m, seen):
    """The new running sum of a metric after a batch of ``m`` (``seen`` samples with it):
    a plain function adds its batch mean times m; a stateful Metric updates its state and
    the sum becomes result * seen, so that sum / seen is its epoch value."""
    if getattr(fn, "stateful", False):
        fn.update_state(pred, target)
        return fn.result() * seen
    return running_sum + fn(pred, target) * m
