"""Core layers: Input, Dense, Flatten, Reshape, Dropout, Activation, ReLU."""
from __future__ import annotations

import numbers

import numpy as np

from .. import functional as F
from .. import init as initializers
from .base import (Layer, SymbolicTensor, check_data_format, check_shape_arg, format_shape,
                   get_activation, is_int, to_channels_last)

__all__ = ["InputLayer", "Input", "Dense", "Flatten", "Reshape", "Dropout", "Activation",
           "ReLU"]


class InputLayer(Layer):
    """The entry of a graph: holds the per-sample input shape.  Use :func:`Input`."""

    def __init__(self, shape, name=None):
        super().__init__(name=name)
        self.shape = check_shape_arg(type(self).__name__, "shape", shape)
        self.ndim = len(self.shape) + 1
        self._fixed_axes = {i + 1: s for i, s in enumerate(self.shape)}
        self.built = True
        self.input_shape = (None,) + self.shape
        self.output = SymbolicTensor(self.input_shape, self, ())

    def call(self, x, training=False):
        return x

    def get_config(self):
        return {"shape": self.shape, "name": self.name}


def Input(shape, name=None):
    """A symbolic input of per-sample ``shape`` (batch excluded) for functional models.

    >>> x = Input((1, 28, 28)); x.shape
    (None, 1, 28, 28)
    """
    return InputLayer(shape, name=name).output


class Dense(Layer):
    """Fully connected layer: ``activation(x @ kernel + bias)`` on the last axis.

    Parameters
    ----------
    units : int (> 0)
    activation : str, callable or None
    use_bias : bool
    kernel_initializer, bias_initializer : str or callable

    Input (N, ..., in) -> output (N, ..., units); the kernel is (in, units) as in Keras.

    >>> Dense(3)(np.zeros((2, 5), np.float32)).shape
    (2, 3)
    """

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        if not is_int(units) or units <= 0:
            raise ValueError(f"{owner}: units must be a positive int, received {units!r}")
        self.units = int(units)
        self.activation = activation
        self._act = get_activation(activation, owner)
        if not isinstance(use_bias, bool):
            raise TypeError(f"{owner}: use_bias must be a bool, received {use_bias!r}")
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self._kinit = initializers.get(kernel_initializer, "kernel_initializer", owner)
        self._binit = initializers.get(bias_initializer, "bias_initializer", owner)
        self.kernel = self.bias = None

    def check_input_shape(self, shape):
        if len(shape) < 2:
            raise ValueError(f"{self.describe()}: expected input of at least 2 dims "
                             f"(batch, features), received shape {format_shape(shape)}")
        super().check_input_shape(shape)

    def build(self, input_shape):
        n_in = input_shape[-1]
        self._fixed_axes = {-1: n_in}
        self.kernel = self.add_weight("kernel", (n_in, self.units), self._kinit, n_in,
                                      self.units)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self._binit, n_in, self.units)

    def _expected_text(self, ndim):
        return "(None, ..., " + str(self._fixed_axes[-1]) + ")"

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def call(self, x, training=False):
        return self._act(F.linear(x, self.kernel, self.bias))

    def receptive_field(self, rf, jump):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer}


class Flatten(Layer):
    """Flatten every dim but the batch: (N, d1, d2, ...) -> (N, d1 * d2 * ...).

    Parameters
    ----------
    data_format : None (default), "channels_first" or "channels_last"
        None and "channels_last" flatten the values in their stored order.
        "channels_first" (as Keras) flattens (N, C, *spatial) in (*spatial, C) order, the
        order a channels_last model has, so a following Dense kernel is the same in both
        formats.

    >>> Flatten()(np.zeros((2, 3, 4), np.float32)).shape
    (2, 12)
    >>> Flatten(data_format="channels_first")(np.arange(4.0).reshape(1, 2, 2)).numpy()
    array([[0., 2., 1., 3.]], dtype=float32)
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = None if data_format is None else \
            check_data_format("Flatten", data_format)

    def compute_output_shape(self, input_shape):
        return (None, int(np.prod(input_shape[1:], dtype=np.int64)))

    def call(self, x, training=False):
        if self.data_format == "channels_first" and x.ndim > 2:
            x = to_channels_last(x)
        return F.flatten(x)

    def get_config(self):
        config = super().get_config()
        if self.data_format is not None:
            config["data_format"] = self.data_format
        return config

    def receptive_field(self, rf, jump):
        return None


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (batch excluded; one entry may be -1).

    >>> Reshape((4, 3))(np.zeros((2, 12), np.float32)).shape
    (2, 4, 3)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        shape = tuple(target_shape) if isinstance(target_shape, (tuple, list)) else None
        if not shape or not all(is_int(s) and (s > 0 or s == -1) for s in shape) or \
                sum(s == -1 for s in shape) > 1:
            raise ValueError(f"{owner}: target_shape must be a tuple of positive ints with at "
                             f"most one -1 (batch excluded), received {target_shape!r}")
        self.target_shape = tuple(int(s) for s in shape)

    def compute_output_shape(self, input_shape):
        total = int(np.prod(input_shape[1:], dtype=np.int64))
        known = int(np.prod([s for s in self.target_shape if s != -1], dtype=np.int64))
        if (-1 in self.target_shape and total % known) or \
                (-1 not in self.target_shape and known != total):
            raise ValueError(f"{self.describe()}: cannot reshape input of shape "
                             f"{format_shape(input_shape)} ({total} values per sample) to "
                             f"target_shape {self.target_shape}")
        return (None,) + tuple(total // known if s == -1 else s for s in self.target_shape)

    def call(self, x, training=False):
        return F.reshape(x, (x.shape[0],) + self.compute_output_shape(x.shape)[1:])

    def receptive_field(self, rf, jump):
        return None

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability ``rate`` and scale the
    rest by 1 / (1 - rate); the identity at inference.

    Parameters
    ----------
    rate : float in [0, 1)
    seed : int, optional   own generator; by default the engine's (see engine.set_seed)
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, numbers.Real) or isinstance(rate, bool) or \
                not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be a number in [0, 1), received {rate!r}")
        if seed is not None and (not is_int(seed) or seed < 0):
            raise ValueError(f"Dropout: seed must be a non-negative int or None, received "
                             f"{seed!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def call(self, x, training=False):
        rng = self._rng if self._rng is not None else initializers.rng()
        return F.dropout(x, self.rate, training, rng=rng)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Activation(Layer):
    """Apply an activation by name ("relu", "sigmoid", "tanh", "softmax", ...) or callable.

    >>> Activation("relu")(np.array([[-1.0, 2.0]], np.float32)).numpy()
    array([[0., 2.]], dtype=float32)
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self._act = get_activation(activation, type(self).__name__)

    def call(self, x, training=False):
        return self._act(x)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class ReLU(Layer):
    """max(x, 0), or leaky with ``negative_slope`` > 0: x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope=0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(negative_slope, numbers.Real) or isinstance(negative_slope, bool) \
                or negative_slope < 0:
            raise ValueError(f"ReLU: negative_slope must be a number >= 0, received "
                             f"{negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def call(self, x, training=False):
        if self.negative_slope:
            return F.leaky_relu(x, self.negative_slope)
        return F.relu(x)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}
