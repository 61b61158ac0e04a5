"""Asking the network: the input it likes best for a class (class model visualisation), and
how sure it is (Monte Carlo dropout)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd import no_grad
from ..layers.core import Dropout
from ._net import (Net, check_batch_size, check_float, check_int, check_seed, check_targets,
                   check_x, chunks, ends_in_softmax, host, input_gradients, n_outputs,
                   rows_per_chunk)

__all__ = ["class_model", "mc_dropout", "MCDropout"]


def class_model(model, target, steps=200, l2=0.3, lr=0.05, seed=None, start=None):
    """An input that maximises the target's score: argmax_I S_c(I) - l2 * ||I||^2
    (Simonyan et al.), by gradient ascent on the input with the weights fixed.

    The ascent takes Adam steps of size ``lr`` (beta1 0.9, beta2 0.999), which keeps one
    learning rate sensible across models and input scales.

    Parameters
    ----------
    model : an engine model with one input
    target : class index
    steps : int >= 1, ascent steps
    l2 : float >= 0, weight of the squared-norm penalty
    lr : float > 0, Adam step size
    seed : int or None; the start is N(0, 0.01^2) noise drawn from it (unless ``start``)
    start : None, or one sample to start from

    Returns
    -------
    float32 array of the input shape (one sample, no batch dim)

    Examples
    --------
    >>> import engine
    >>> m = engine.zoo.get_model("small_cnn", (1, 8, 8), 3)
    >>> class_model(m, 1, steps=5, seed=0).shape
    (1, 8, 8)
    """
    where = "explain.class_model"
    net = Net(model, where)
    t = check_targets(target, 1, n_outputs(net), where)
    steps = check_int(steps, where, "steps", 1)
    l2 = check_float(l2, where, "l2", minimum=0.0)
    lr = check_float(lr, where, "lr", positive=True)
    rng = check_seed(seed, where)
    if start is None:
        img = (0.01 * rng.standard_normal((1,) + net.input_shape)).astype(np.float64)
    else:
        img = check_x(net, start, where, "start").astype(np.float64)[:1]
    m = np.zeros_like(img)
    v = np.zeros_like(img)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for k in range(1, steps + 1):
        g, _ = input_gradients(net, img.astype(np.float32), t, 1)
        g = g.astype(np.float64) - 2.0 * l2 * img
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        img = img + lr * (m / (1 - b1 ** k)) / (np.sqrt(v / (1 - b2 ** k)) + eps)
    return img[0].astype(np.float32)


@dataclass
class MCDropout:
    """What :func:`mc_dropout` returns.

    samples : (T, N, *output) the model's outputs with freshly sampled dropout masks
    mean, std : (N, *output) over the T samples
    entropy : (N,) entropy of the mean prediction (nats), when the outputs are
        probabilities (the model ends in a softmax), else None
    mutual_information : (N,) entropy minus the mean entropy of the samples (BALD: the
        part of the uncertainty that comes from the weights), or None
    """

    samples: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    entropy: np.ndarray | None
    mutual_information: np.ndarray | None


def _entropy(p, axis=-1):
    p = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=axis)


def mc_dropout(model, x, samples=50, seed=None, batch_size=None):
    """Monte Carlo dropout (Gal & Ghahramani): the model's outputs over ``samples`` passes in
    which the Dropout layers drop (their masks drawn from ``seed``) while every other layer,
    BatchNormalization included, stays in inference mode.

    Parameters
    ----------
    model : an engine model with at least one Dropout layer
    x : (N, *input shape) array, or one sample
    samples : int >= 1 (T)
    seed : int or None; equal seeds and batch sizes give equal samples
    batch_size : rows per forward pass (None: fit a memory budget)

    Returns
    -------
    MCDropout (.samples (T, N, *output), .mean, .std, .entropy, .mutual_information)

    Examples
    --------
    >>> import engine
    >>> from engine.layers import Dense, Dropout
    >>> m = engine.Sequential([Dense(8, activation="relu", input_shape=(4,)), Dropout(0.5),
    ...                        Dense(3, activation="softmax")])
    >>> r = mc_dropout(m, np.ones((2, 4)), samples=10, seed=0)
    >>> r.samples.shape, r.entropy.shape
    ((10, 2, 3), (2,))
    """
    where = "explain.mc_dropout"
    net = Net(model, where)
    x = check_x(net, x, where)
    samples = check_int(samples, where, "samples", 1)
    if not any(isinstance(layer, Dropout) for layer in net.layers()):
        raise ValueError(f"{where}: model {net.model.name!r} has no Dropout layer, so every "
                         f"sample would be the same prediction")
    rng = check_seed(seed, where)
    rows = rows_per_chunk(net, check_batch_size(batch_size, where), False)
    n = len(x)
    out = np.empty((samples * n,) + net.output_shape, dtype=np.float32)
    softmax = False
    with no_grad():
        # Row r = sample r // n of input r % n: the T copies of x run as one long batch.
        for a, b in chunks(samples * n, rows):
            y = net.run_output(x[np.arange(a, b) % n], dropout_rng=rng)
            softmax = softmax or ends_in_softmax(y)
            out[a:b] = host(y.data)
    out = out.reshape((samples, n) + net.output_shape)
    mean, std = out.mean(axis=0), out.std(axis=0)
    entropy = mi = None
    if softmax:
        entropy = _entropy(mean.reshape(n, -1))
        mi = entropy - _entropy(out.reshape(samples, n, -1)).mean(axis=0)
    return MCDropout(samples=out, mean=mean, std=std, entropy=entropy, mutual_information=mi)

