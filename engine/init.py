"""Weight initializers by name, and the engine's seeded random generator.

Every random draw the engine makes (initial weights, dropout masks when a layer has no seed of
its own, the shuffling in ``fit``) comes from one ``numpy.random.Generator``.  Call
:func:`set_seed` first for a reproducible run::

    >>> import engine
    >>> engine.set_seed(0)
    >>> engine.init.get("he_normal")((3, 4), fan_in=3, fan_out=4).shape
    (3, 4)

Fans follow Keras: a Dense kernel (in, out) has fan_in = in and fan_out = out; a convolution
kernel (C_out, C_in/groups, *k) has fan_in = C_in/groups * prod(k) and fan_out = C_out * prod(k)
(see :func:`fans`).  The normal initializers draw from a normal truncated at two standard
deviations, rescaled so the variance is the target one, as Keras does.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["set_seed", "rng", "get", "fans", "INITIALIZERS", "he_normal", "he_uniform",
           "glorot_normal", "glorot_uniform", "lecun_normal", "lecun_uniform", "zeros", "ones"]

_state = {"rng": np.random.default_rng()}

# std of a standard normal truncated to [-2, 2]; dividing by it restores unit variance
_TRUNC_STD = 0.87962566103423978


def set_seed(seed):
    """Seed the engine's generator (weights, dropout, shuffling).

    Parameters
    ----------
    seed : int or None (None: fresh entropy)

    Examples
    --------
    >>> set_seed(42); a = rng().random()
    >>> set_seed(42); a == rng().random()
    True
    """
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)
                             or seed < 0):
        raise TypeError(f"set_seed: seed must be a non-negative int or None, received {seed!r}")
    _state["rng"] = np.random.default_rng(seed)


def rng():
    """The engine's current ``numpy.random.Generator``."""
    return _state["rng"]


def fans(shape, layout="dense"):
    """(fan_in, fan_out) of a kernel.

    layout "dense": shape (in, out);  layout "conv": shape (C_out, C_in/groups, *kernel).

    >>> fans((20, 1, 5, 5), "conv")
    (25, 500)
    """
    shape = tuple(shape)
    if layout == "conv":
        receptive = int(np.prod(shape[2:], dtype=np.int64))
        return shape[1] * receptive, shape[0] * receptive
    if len(shape) == 1:
        return shape[0], shape[0]
    return int(np.prod(shape[:-1], dtype=np.int64)), shape[-1]


def _truncated_normal(shape, std, gen):
    """Normal(0, std^2) truncated at 2 std (std is the pre-truncation scale)."""
    out = gen.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = gen.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * std


def _scaled_normal(shape, scale, gen):
    return _truncated_normal(shape, math.sqrt(scale) / _TRUNC_STD, gen)


def _scaled_uniform(shape, scale, gen):
    limit = math.sqrt(3.0 * scale)
    return gen.uniform(-limit, limit, size=shape)


def he_normal(shape, fan_in, fan_out, gen=None):
    """Truncated normal with variance 2 / fan_in (ReLU nets)."""
    return _scaled_normal(shape, 2.0 / fan_in, gen or rng())


def he_uniform(shape, fan_in, fan_out, gen=None):
    """Uniform in [-sqrt(6 / fan_in), sqrt(6 / fan_in)]."""
    return _scaled_uniform(shape, 2.0 / fan_in, gen or rng())


def glorot_normal(shape, fan_in, fan_out, gen=None):
    """Truncated normal with variance 2 / (fan_in + fan_out)."""
    return _scaled_normal(shape, 2.0 / (fan_in + fan_out), gen or rng())


def glorot_uniform(shape, fan_in, fan_out, gen=None):
    """Uniform in [-sqrt(6 / (fan_in + fan_out)), +sqrt(6 / (fan_in + fan_out))]."""
    return _scaled_uniform(shape, 2.0 / (fan_in + fan_out), gen or rng())


def lecun_normal(shape, fan_in, fan_out, gen=None):
    """Truncated normal with variance 1 / fan_in (SELU nets)."""
    return _scaled_normal(shape, 1.0 / fan_in, gen or rng())


def lecun_uniform(shape, fan_in, fan_out, gen=None):
    """Uniform in [-sqrt(3 / fan_in), sqrt(3 / fan_in)]."""
    return _scaled_uniform(shape, 1.0 / fan_in, gen or rng())


def zeros(shape, fan_in=None, fan_out=None, gen=None):
    """All zeros."""
    return np.zeros(shape)


def ones(shape, fan_in=None, fan_out=None, gen=None):
    """All ones."""
    return np.ones(shape)


INITIALIZERS = {f.__name__: f for f in (he_normal, he_uniform, glorot_normal, glorot_uniform,
                                        lecun_normal, lecun_uniform, zeros, ones)}


def get(identifier, argument="initializer", owner="initializer"):
    """The initializer called ``identifier`` (or ``identifier`` itself when callable).

    An initializer is called as ``init(shape, fan_in, fan_out)`` and returns an array of
    ``shape``.  Unknown names raise ValueError naming ``argument`` and listing the valid names.

    >>> get("zeros")((2,), 2, 2)
    array([0., 0.])
    """
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in INITIALIZERS:
        return INITIALIZERS[identifier]
    raise ValueError(f"{owner}: unknown {argument} {identifier!r}; valid names: "
                     f"{', '.join(sorted(INITIALIZERS))} (or a callable "
                     f"init(shape, fan_in, fan_out))")


def name_of(init):
    """The registered name of an initializer, or None for a custom callable."""
    for name, f in INITIALIZERS.items():
        if f is init:
            return name
    return None
