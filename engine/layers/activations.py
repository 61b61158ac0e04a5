"""Activation layers: LeakyReLU, ELU, PReLU (learned slopes), ReLU (max_value, negative_slope,
threshold), Softmax.  Shapes pass through unchanged."""
from __future__ import annotations

import numbers

from .. import functional as F
from .. import init as initializers
from ..ops import extra as E
from .base import Layer, is_int

__all__ = ["LeakyReLU", "ELU", "PReLU", "ReLU", "Softmax"]


def _real(owner, name, v, lo=None):
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        raise TypeError(f"{owner}: {name} must be a real number, received {v!r}")
    if lo is not None and v < lo:
        raise ValueError(f"{owner}: {name} must be >= {lo}, received {v!r}")
    return float(v)


class LeakyReLU(Layer):
    """x for x > 0, negative_slope * x otherwise (Keras 3 default 0.3; Keras 2's ``alpha``
    is accepted).

    >>> import numpy as np
    >>> LeakyReLU(0.1)(np.array([[-1.0, 2.0]], np.float32)).numpy()
    array([[-0.1,  2. ]], dtype=float32)
    """

    def __init__(self, negative_slope=0.3, alpha=None, **kwargs):
        super().__init__(**kwargs)
        if alpha is not None:
            negative_slope = alpha
        self.negative_slope = _real("LeakyReLU", "negative_slope", negative_slope, 0.0)

    def call(self, x, training=False):
        return F.leaky_relu(x, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """x for x > 0, alpha * (exp(x) - 1) otherwise.

    >>> import numpy as np
    >>> ELU()(np.array([[0.0, 1.0]], np.float32)).numpy()
    array([[0., 1.]], dtype=float32)
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _real("ELU", "alpha", alpha)

    def call(self, x, training=False):
        return E.elu(x, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class ReLU(Layer):
    """Keras's ReLU: ``max_value`` caps, ``negative_slope`` leaks below ``threshold``.

    f(x) = max_value for x >= max_value; x for threshold <= x < max_value;
    negative_slope * (x - threshold) otherwise.

    >>> import numpy as np
    >>> ReLU(max_value=6.0)(np.array([[-1.0, 7.0]], np.float32)).numpy()
    array([[0., 6.]], dtype=float32)
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = None if max_value is None else _real("ReLU", "max_value", max_value, 0.0)
        self.negative_slope = _real("ReLU", "negative_slope", negative_slope, 0.0)
        self.threshold = _real("ReLU", "threshold", threshold)

    def call(self, x, training=False):
        if self.max_value is None and self.threshold == 0.0:
            return F.relu(x) if self.negative_slope == 0.0 else \
                F.leaky_relu(x, self.negative_slope)
        return E.relu_ext(x, self.max_value, self.negative_slope, self.threshold)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class Softmax(Layer):
    """softmax along ``axis`` (default -1).

    >>> import numpy as np
    >>> Softmax()(np.zeros((1, 2), np.float32)).numpy()
    array([[0.5, 0.5]], dtype=float32)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not is_int(axis) or axis == 0:
            raise ValueError(f"Softmax: axis must be a non-zero int (0 is the batch), "
                             f"received {axis!r}")
        self.axis = int(axis)

    def call(self, x, training=False):
        return F.softmax(x, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class PReLU(Layer):
    """x for x > 0, alpha * x otherwise, with ``alpha`` learned: one per input element
    (Keras's default), or shared along ``shared_axes`` (e.g. (2, 3) for one per channel of
    (N, C, H, W)).

    >>> import numpy as np
    >>> PReLU(shared_axes=(2,))(np.ones((1, 3, 4), np.float32)).shape
    (1, 3, 4)
    """

    def __init__(self, alpha_initializer="zeros", shared_axes=None, alpha_regularizer=None,
                 alpha_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self._add_weight_rules("alpha", alpha_regularizer, alpha_constraint)
        self.alpha_initializer = alpha_initializer
        self._ainit = initializers.get(alpha_initializer, "alpha_initializer", "PReLU")
        if shared_axes is not None:
            shared_axes = (shared_axes,) if is_int(shared_axes) else tuple(shared_axes)
            if not all(is_int(a) and a >= 1 for a in shared_axes):
                raise ValueError(f"PReLU: shared_axes must be ints >= 1 (0 is the batch), "
                                 f"received {shared_axes!r}")
        self.shared_axes = shared_axes
        self.alpha = None

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for a in self.shared_axes or ():
            if a >= len(input_shape):
                raise ValueError(f"{self.describe()}: shared axis {a} is out of range for "
                                 f"input shape {tuple(input_shape)}")
            shape[a - 1] = 1
        self._fixed_axes = {i + 1: s for i, s in enumerate(input_shape[1:]) if shape[i] != 1}
        self.alpha = self.add_weight("alpha", tuple(shape), self._ainit)

    def call(self, x, training=False):
        return E.prelu(x, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha_initializer": self.alpha_initializer,
                "shared_axes": None if self.shared_axes is None else list(self.shared_axes)}
