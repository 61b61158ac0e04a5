"""Inverted dropout: zero each element with probability ``rate`` and scale the survivors by
1 / (1 - rate) during training, so inference is the identity."""
from __future__ import annotations

import numbers

import numpy as np

from ..device import array_module
from ..autograd import record
from ..tensor import Tensor, as_tensor

__all__ = ["dropout"]

_default_rng = np.random.default_rng()


def dropout(x, rate, training, rng=None):
    """Inverted dropout.

    Parameters
    ----------
    x : Tensor, any shape
    rate : float in [0, 1)
        Fraction of elements to drop.
    training : bool
        False (inference) returns ``x`` unchanged.
    rng : numpy.random.Generator, optional
        Source of the mask (a module-level generator by default); pass a seeded one for
        reproducible masks.

    Examples
    --------
    >>> y = dropout(Tensor(np.ones((2, 4))), 0.5, True, rng=np.random.default_rng(0))
    >>> set(y.numpy().ravel().tolist()) <= {0.0, 2.0}
    True
    """
    x = as_tensor(x)
    if not isinstance(rate, numbers.Real) or isinstance(rate, bool):
        raise TypeError(f"dropout: rate must be a float, received {rate!r}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: rate must be in [0, 1), received {rate}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"dropout: rng must be a numpy.random.Generator, received "
                        f"{type(rng).__name__}")
    if not training or rate == 0.0:
        return x
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    rng = _default_rng if rng is None else rng
    # The scale mask is built in place in the random buffer: 1/(1-rate) where kept, else 0.
    scale = rng.random(x.shape, dtype=dtype)
    np.greater_equal(scale, rate, out=scale)
    scale *= 1.0 / (1.0 - rate)
    scale = array_module(x).asarray(scale)  # the host's mask, on x's device: same values
    y = x.data * scale
    return record(Tensor._result(y), "dropout", (x,), lambda g: (g * scale,))
