"""Regularising noise layers, active only in training (the identity at inference):
GaussianNoise, GaussianDropout, SpatialDropout1D/2D/3D (whole channels dropped).

The noise is drawn on the host from the engine's generator (see engine.set_seed) or the
layer's own ``seed``, then multiplied or added on the input's device."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import functional as F
from .. import init as initializers
from ..device import array_module
from .base import Layer, is_int

__all__ = ["GaussianNoise", "GaussianDropout", "SpatialDropout1D", "SpatialDropout2D",
           "SpatialDropout3D"]


class _Noise(Layer):
    def __init__(self, rate, seed=None, argument="rate", hi=1.0, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        if not isinstance(rate, numbers.Real) or isinstance(rate, bool) or \
                not 0.0 <= rate < (math.inf if hi is None else hi):
            rng = "[0, inf)" if hi is None else f"[0, {hi})"
            raise ValueError(f"{owner}: {argument} must be a number in {rng}, received {rate!r}")
        if seed is not None and (not is_int(seed) or seed < 0):
            raise ValueError(f"{owner}: seed must be a non-negative int or None, received "
                             f"{seed!r}")
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def rng(self):
        return self._rng if self._rng is not None else initializers.rng()

    def _const(self, x, a):
        """Host array ``a`` on x's device, in x's dtype."""
        return array_module(x).asarray(a.astype(x.dtype, copy=False))


class GaussianNoise(_Noise):
    """Adds N(0, stddev**2) noise in training.

    >>> import numpy as np
    >>> GaussianNoise(0.1)(np.ones((2, 3), np.float32)).numpy()   # inference: identity
    array([[1., 1., 1.],
           [1., 1., 1.]], dtype=float32)
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(stddev, seed, "stddev", None, **kwargs)
        self.stddev = float(stddev)

    def call(self, x, training=False):
        if not training or self.stddev == 0.0:
            return x
        noise = self.rng().normal(0.0, self.stddev, size=x.shape)
        return F.add(x, self._const(x.data, noise))

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise):
    """Multiplies by N(1, rate / (1 - rate)) noise in training.

    >>> import numpy as np
    >>> GaussianDropout(0.2)(np.ones((1, 2), np.float32)).numpy()
    array([[1., 1.]], dtype=float32)
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        self.rate = float(rate)

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            return x
        std = math.sqrt(self.rate / (1.0 - self.rate))
        noise = self.rng().normal(1.0, std, size=x.shape)
        return F.mul(x, self._const(x.data, noise))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class _SpatialDropout(_Noise):
    rank = 1

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed, **kwargs)
        self.rate = float(rate)
        self.ndim = self.rank + 2

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            return x
        # one keep/drop draw per (sample, channel), scaled by 1 / (1 - rate), broadcast over
        # the spatial dims (channels first)
        keep = self.rng().random(x.shape[:2]) >= self.rate
        mask = (keep / (1.0 - self.rate)).reshape(x.shape[:2] + (1,) * self.rank)
        return F.mul(x, self._const(x.data, mask))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of (N, C, L) in training.

    >>> import numpy as np
    >>> SpatialDropout1D(0.5)(np.ones((1, 2, 3), np.float32)).shape
    (1, 2, 3)
    """
    rank = 1


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of (N, C, H, W) in training.

    >>> import numpy as np
    >>> SpatialDropout2D(0.5)(np.ones((1, 2, 3, 3), np.float32)).shape
    (1, 2, 3, 3)
    """
    rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature volumes of (N, C, D, H, W) in training.

    >>> import numpy as np
    >>> SpatialDropout3D(0.5)(np.ones((1, 2, 2, 2, 2), np.float32)).shape
    (1, 2, 2, 2, 2)
    """
    rank = 3
