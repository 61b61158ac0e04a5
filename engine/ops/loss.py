"""Losses.  Each returns a scalar Tensor: the mean over the batch (and over every other
non-class axis), with Keras semantics.

Fusion: when ``pred`` is the output of :func:`engine.ops.activation.softmax` over its last
axis (or of sigmoid for binary cross-entropy), the cross-entropies are computed from the
logits that softmax/sigmoid came from, so the loss is finite for any logits and the gradient
w.r.t. the logits is exactly ``(softmax(logits) - onehot) / N``.  Otherwise probabilities
are clipped to [1e-7, 1 - 1e-7] like Keras (no gradient where clipped).

Targets are constants: they receive no gradient, except in ``mse_loss``.
"""
from __future__ import annotations

import numpy as np

from ..device import array_module, host, same_device
from ..autograd import record
from ..tensor import Tensor, as_tensor
from .activation import expit, log_softmax_array, softmax_array

__all__ = ["mse_loss", "binary_cross_entropy", "categorical_cross_entropy",
           "sparse_categorical_cross_entropy", "cross_entropy"]

EPSILON = 1e-7  # Keras backend.epsilon(): probability clipping


def _scalar(v, dtype):
    """A 0-d array of ``dtype`` on the device of ``v``."""
    return array_module(v).asarray(v, dtype=dtype)


def _same_shape(op, pred, target):
    if pred.shape != target.shape:
        raise ValueError(f"{op}: pred of shape {pred.shape} does not match target of shape "
                         f"{target.shape}: expected equal shapes")
    if pred.size == 0:
        raise ValueError(f"{op}: pred is empty (shape {pred.shape})")


def _fused_logits(pred, kind):
    """The logits behind ``pred`` if it is the output of softmax (last axis) or sigmoid."""
    mark = getattr(pred, "_activation_of", None)
    if mark is None or mark[0] != kind:
        return None
    if kind == "softmax" and mark[2] != pred.ndim - 1:
        return None
    return mark[1]


def mse_loss(pred, target):
    """Mean squared error: mean over the last axis, then over the batch (Keras "mse").

    Examples
    --------
    >>> mse_loss(Tensor([[1.0, 3.0]]), np.array([[0.0, 0.0]], np.float32))
    Tensor(5.)
    """
    pred = as_tensor(pred)
    target = as_tensor(target, like=pred)
    same_device("mse_loss", pred, target)
    _same_shape("mse_loss", pred, target)
    diff = pred.data - target.data
    loss = _scalar((diff * diff).mean(), pred.dtype)

    def backward(g):
        gp = diff * (g * (2.0 / diff.size))
        return (gp if pred.requires_grad else None,
                -gp if target.requires_grad else None)
    return record(Tensor._result(loss), "mse_loss", (pred, target), backward)


def binary_cross_entropy(pred, target, from_logits=False):
    """Binary cross-entropy, averaged over every element.

    Parameters
    ----------
    pred : Tensor
        Probabilities (or logits with ``from_logits=True``); the output of sigmoid is fused
        with the loss automatically.
    target : array-like of the shape of ``pred``, values in [0, 1]

    Examples
    --------
    >>> round(binary_cross_entropy(Tensor([0.0]), np.array([1.0]), from_logits=True).item(), 6)
    0.693147
    """
    op = "binary_cross_entropy"
    pred = as_tensor(pred)
    target = _constant_target(op, pred, target)
    _same_shape(op, pred, target)
    xp = array_module(pred)
    t = target.data
    n = pred.size
    z = pred if from_logits else _fused_logits(pred, "sigmoid")
    if z is not None:
        zd = z.data
        # max(z, 0) - z t + log(1 + exp(-|z|)): finite for every z
        loss = xp.maximum(zd, 0) - zd * t + xp.log1p(xp.exp(-xp.abs(zd)))
        loss = _scalar(loss.mean(), pred.dtype)
        return record(Tensor._result(loss), op, (z,),
                      lambda g: ((expit(zd) - t) * (g / n),))
    p = pred.data
    pc = xp.clip(p, EPSILON, 1 - EPSILON)
    loss = _scalar(-(t * xp.log(pc) + (1 - t) * xp.log1p(-pc)).mean(), pred.dtype)

    def backward(g):
        inside = (p >= EPSILON) & (p <= 1 - EPSILON)
        return ((pc - t) / (pc * (1 - pc)) * inside * (g / n),)
    return record(Tensor._result(loss), op, (pred,), backward)


def categorical_cross_entropy(pred, target_onehot, from_logits=False):
    """-sum(target * log(pred)) over the last (class) axis, averaged over the rest.

    Parameters
    ----------
    pred : Tensor, shape (..., K)
        Probabilities (or logits with ``from_logits=True``); the output of softmax is fused
        with the loss automatically.
    target_onehot : array-like, shape (..., K)

    Examples
    --------
    >>> from engine.ops.activation import softmax
    >>> p = softmax(Tensor([[1000.0, 0.0]], requires_grad=True))
    >>> categorical_cross_entropy(p, np.array([[0.0, 1.0]])).item()
    1000.0
    """
    op = "categorical_cross_entropy"
    pred = as_tensor(pred)
    target = _constant_target(op, pred, target_onehot)
    _same_shape(op, pred, target)
    xp = array_module(pred)
    if pred.ndim < 1:
        raise ValueError(f"{op}: pred must have a class axis, received shape {pred.shape}")
    t = target.data
    m = pred.size // pred.shape[-1]
    z = pred if from_logits else _fused_logits(pred, "softmax")
    if z is not None:
        zd = z.data
        loss = _scalar(-(t * log_softmax_array(zd, -1)).sum() / m, pred.dtype)

        def backward(g):
            # d/dz of -sum t (z - logsumexp z) = softmax * sum(t) - t; sum(t) == 1 for one-hot
            gz = softmax_array(zd, -1)
            gz *= t.sum(axis=-1, keepdims=True)
            gz -= t
            gz *= g / m
            return (gz,)
        return record(Tensor._result(loss), op, (z,), backward)
    p = pred.data
    pc = xp.clip(p, EPSILON, 1 - EPSILON)
    loss = _scalar(-(t * xp.log(pc)).sum() / m, pred.dtype)

    def backward(g):
        inside = (p >= EPSILON) & (p <= 1 - EPSILON)
        return (-(t / pc) * inside * (g / m),)
    return record(Tensor._result(loss), op, (pred,), backward)


def _labels(op, pred, target):
    """Integer labels of shape pred.shape[:-1] (a trailing 1 is accepted and dropped)."""
    if isinstance(target, Tensor) and target.requires_grad:
        raise ValueError(f"{op}: target must be a constant, received a tensor that requires "
                         f"a gradient")
    # labels are checked (and used as indices) on the host, whatever the device
    lab = np.asarray(host(target.data if isinstance(target, Tensor) else target))
    lead = pred.shape[:-1]
    if lab.shape == lead + (1,):
        lab = lab.reshape(lead)
    if lab.shape != lead:
        raise ValueError(f"{op}: target of shape {lab.shape} does not match pred of shape "
                         f"{pred.shape}: expected integer labels of shape {lead}")
    if lab.dtype.kind == "f":
        if not np.all(np.floor(lab) == lab):
            raise TypeError(f"{op}: target must hold integer class labels, received "
                            f"non-integral values of dtype {lab.dtype}")
    elif lab.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class labels, received dtype "
                        f"{lab.dtype}")
    lab = lab.astype(np.intp, copy=False)
    k = pred.shape[-1]
    if lab.size and (lab.min() < 0 or lab.max() >= k):
        raise ValueError(f"{op}: target labels must be in [0, {k}) for pred of shape "
                         f"{pred.shape}, received values in [{lab.min()}, {lab.max()}]")
    return lab


def sparse_categorical_cross_entropy(pred, target_int, from_logits=False):
    """Categorical cross-entropy with integer class labels.

    Parameters
    ----------
    pred : Tensor, shape (..., K)
        Probabilities (or logits with ``from_logits=True``); the output of softmax is fused
        with the loss automatically.
    target_int : array-like of ints, shape (...) or (..., 1)

    Examples
    --------
    >>> round(sparse_categorical_cross_entropy(Tensor([[0.25, 0.75]]), np.array([1])).item(), 6)
    0.287682
    """
    op = "sparse_categorical_cross_entropy"
    pred = as_tensor(pred)
    if pred.ndim < 1 or pred.size == 0:
        raise ValueError(f"{op}: pred must have a non-empty class axis, received shape "
                         f"{pred.shape}")
    lab = _labels(op, pred, target_int)
    xp = array_module(pred)
    k = pred.shape[-1]
    m = pred.size // k
    flat = lab.reshape(-1)
    rows = np.arange(m)
    z = pred if from_logits else _fused_logits(pred, "softmax")
    if z is not None:
        zd = z.data
        ls = log_softmax_array(zd, -1).reshape(m, k)
        loss = _scalar(-ls[rows, flat].sum() / m, pred.dtype)

        def backward(g):
            gz = softmax_array(zd, -1).reshape(m, k)
            gz[rows, flat] -= 1
            gz *= g / m
            return (gz.reshape(zd.shape),)
        return record(Tensor._result(loss), op, (z,), backward)
    p = pred.data.reshape(m, k)
    pt = p[rows, flat]
    ptc = xp.clip(pt, EPSILON, 1 - EPSILON)
    loss = _scalar(-xp.log(ptc).sum() / m, pred.dtype)

    def backward(g):
        gp = xp.zeros((m, k), dtype=pred.dtype)
        inside = (pt >= EPSILON) & (pt <= 1 - EPSILON)
        gp[rows, flat] = inside * (-(g / m) / ptc)
        return (gp.reshape(pred.shape),)
    return record(Tensor._result(loss), op, (pred,), backward)


def _constant_target(op, pred, target):
    """The target of a cross-entropy as a constant Tensor on ``pred``'s device."""
    if isinstance(target, Tensor):
        if target.requires_grad:
            raise ValueError(f"{op}: target must be a constant, received a tensor that "
                             f"requires a gradient")
        same_device(op, pred, target)
    return as_tensor(target, like=pred)


def cross_entropy(logits, target_int):
    """Cross-entropy from logits with integer labels (PyTorch's ``F.cross_entropy``).

    Examples
    --------
    >>> round(cross_entropy(Tensor([[0.0, 0.0]]), np.array([0])).item(), 6)
    0.693147
    """
    return sparse_categorical_cross_entropy(logits, target_int, from_logits=True)
