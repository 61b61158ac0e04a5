"""More of Keras's layers, composed from engine ops (their gradients come from the tape):
LayerNormalization, GroupNormalization (channels first), UnitNormalization, Rescaling,
Identity and Embedding."""
from __future__ import annotations

import numbers

import numpy as np

from .. import functional as F
from .. import init as initializers
from ..ops import extra as E
from ..tensor import Tensor
from .base import Layer, is_int

__all__ = ["LayerNormalization", "GroupNormalization", "UnitNormalization", "Rescaling",
           "Identity", "Embedding"]


def _axes(owner, axis):
    axes = (axis,) if is_int(axis) else tuple(axis) if isinstance(axis, (tuple, list)) else None
    if not axes or not all(is_int(a) and a != 0 for a in axes):
        raise ValueError(f"{owner}: axis must be a non-zero int or a tuple of them (0 is the "
                         f"batch), received {axis!r}")
    return tuple(int(a) for a in axes)


def _eps(owner, epsilon):
    if not isinstance(epsilon, numbers.Real) or isinstance(epsilon, bool) or epsilon <= 0:
        raise ValueError(f"{owner}: epsilon must be a number > 0, received {epsilon!r}")
    return float(epsilon)


def _normalize(x, axes, eps):
    mean = F.mean(x, axis=axes, keepdims=True)
    centred = F.sub(x, mean)
    var = F.mean(E.square(centred), axis=axes, keepdims=True)
    return F.div(centred, F.sqrt(F.add(var, eps)))


class LayerNormalization(Layer):
    """(x - mean) / sqrt(var + epsilon) * gamma + beta, statistics over ``axis`` of each
    sample (Keras default -1); gamma and beta have the shape of those axes.

    >>> import numpy as np
    >>> LayerNormalization()(np.array([[1.0, 3.0]], np.float32)).numpy().round(3).tolist()
    [[-1.0, 1.0]]
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.axis = _axes("LayerNormalization", axis)
        self.epsilon = _eps("LayerNormalization", epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self._binit = initializers.get(beta_initializer, "beta_initializer", "LayerNormalization")
        self._ginit = initializers.get(gamma_initializer, "gamma_initializer",
                                       "LayerNormalization")
        self.gamma = self.beta = None

    def build(self, input_shape):
        nd = len(input_shape)
        if any(not -nd < a < nd for a in self.axis):
            raise ValueError(f"{self.describe()}: axis {self.axis} out of range for input "
                             f"shape {tuple(input_shape)}")
        self._norm_axes = tuple(sorted(a % nd for a in self.axis))
        shape = tuple(input_shape[a] if a in self._norm_axes else 1 for a in range(1, nd))
        self._fixed_axes = {a: input_shape[a] for a in self._norm_axes}
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self._ginit)
        if self.center:
            self.beta = self.add_weight("beta", shape, self._binit)

    def call(self, x, training=False):
        y = _normalize(x, self._norm_axes, self.epsilon)
        if self.gamma is not None:
            y = F.mul(y, self.gamma)
        if self.beta is not None:
            y = F.add(y, self.beta)
        return y

    def get_config(self):
        return {**super().get_config(), "axis": list(self.axis), "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer}


class GroupNormalization(Layer):
    """Normalise each of ``groups`` channel groups of a sample over its channels and spatial
    positions, then a per-channel gamma and beta (channels first: (N, C, ...)).

    >>> import numpy as np
    >>> GroupNormalization(groups=2)(np.ones((1, 4, 3), np.float32)).shape
    (1, 4, 3)
    """

    def __init__(self, groups=32, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        if not is_int(groups) or groups < 1:
            raise ValueError(f"GroupNormalization: groups must be an int >= 1, received "
                             f"{groups!r}")
        self.groups = int(groups)
        self.epsilon = _eps("GroupNormalization", epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.gamma = self.beta = None

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[1] % self.groups:
            raise ValueError(f"{self.describe()}: groups={self.groups} must divide the channels "
                             f"(axis 1), received input shape {tuple(input_shape)}")
        c = input_shape[1]
        self._fixed_axes = {1: c}
        shape = (c,) + (1,) * (len(input_shape) - 2)
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, initializers.get("ones"))
        if self.center:
            self.beta = self.add_weight("beta", shape, initializers.get("zeros"))

    def call(self, x, training=False):
        n, c = x.shape[:2]
        g = F.reshape(x, (n, self.groups, -1))
        y = F.reshape(_normalize(g, (2,), self.epsilon), x.shape)
        if self.gamma is not None:
            y = F.mul(y, self.gamma)
        if self.beta is not None:
            y = F.add(y, self.beta)
        return y

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


class UnitNormalization(Layer):
    """x / max(||x||, 1e-12) along ``axis`` (Keras default -1; axis=1 for channels first).

    >>> import numpy as np
    >>> UnitNormalization()(np.array([[0.0, 2.0]], np.float32)).numpy().tolist()
    [[0.0, 1.0]]
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axes("UnitNormalization", axis)

    def call(self, x, training=False):
        sq = F.sum(E.square(x), axis=self.axis, keepdims=True)
        return F.div(x, F.sqrt(E.maximum(sq, 1e-24)))

    def get_config(self):
        return {**super().get_config(), "axis": list(self.axis)}


class Rescaling(Layer):
    """x * scale + offset (e.g. Rescaling(1 / 255) for 8-bit images).

    >>> import numpy as np
    >>> Rescaling(0.5, offset=1.0)(np.array([[2.0]], np.float32)).numpy().tolist()
    [[2.0]]
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        for name, v in (("scale", scale), ("offset", offset)):
            if not isinstance(v, numbers.Real) or isinstance(v, bool):
                raise TypeError(f"Rescaling: {name} must be a number, received {v!r}")
        self.scale, self.offset = float(scale), float(offset)

    def call(self, x, training=False):
        y = F.mul(x, self.scale)
        return F.add(y, self.offset) if self.offset else y

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Identity(Layer):
    """Returns its input unchanged."""

    def call(self, x, training=False):
        return x


class Embedding(Layer):
    """Integer indices (N, ...) -> rows of a learned (input_dim, output_dim) table,
    (N, ..., output_dim).  Indices arrive as floats through the graph and are checked to be
    integers in [0, input_dim).

    >>> import numpy as np
    >>> Embedding(10, 3)(np.array([[1, 2, 2]])).shape
    (1, 3, 3)
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        for name, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not is_int(v) or v < 1:
                raise ValueError(f"Embedding: {name} must be an int >= 1, received {v!r}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = embeddings_initializer
        if embeddings_initializer == "uniform":   # Keras's default: U(-0.05, 0.05)
            self._einit = lambda shape, fi, fo: initializers.rng().uniform(-0.05, 0.05, shape)
        else:
            self._einit = initializers.get(embeddings_initializer, "embeddings_initializer",
                                           "Embedding")
        self.embeddings = None

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self._einit)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def call(self, x, training=False):
        from ..device import host
        idx = np.asarray(host(x.data if isinstance(x, Tensor) else x))
        if idx.size and (np.any(idx != np.round(idx)) or idx.min() < 0 or
                         idx.max() >= self.input_dim):
            raise ValueError(f"{self.describe()}: indices must be integers in [0, "
                             f"{self.input_dim}), received values in [{idx.min()}, "
                             f"{idx.max()}]")
        return F.getitem(self.embeddings, idx.astype(np.int64))

    def receptive_field(self, rf, jump):
        return None

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": self.embeddings_initializer}
