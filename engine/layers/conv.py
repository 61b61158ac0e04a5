"""Convolution layers: one BaseConv parameterised by rank serves Conv1D, Conv2D and Conv3D."""
from __future__ import annotations

import kernels
from kernels.params import conv_params
from kernels.registry import strategies

from .. import functional as F
from .. import init as initializers
from .base import (Layer, check_data_format, format_shape, get_activation, is_int,
                   looks_channels_last, to_channels_first, to_channels_last)

__all__ = ["BaseConv", "Conv1D", "Conv2D", "Conv3D", "DataFormatMixin"]

_FUNCS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def layout_text(rank, data_format):
    """'(batch, channels, H, W)' or '(batch, H, W, channels)'."""
    if data_format == "channels_last":
        return f"(batch, {_SPATIAL[rank]}, channels)"
    return f"(batch, channels, {_SPATIAL[rank]})"


def channels_last_hint(layer, input_shape):
    """A sentence for errors on a channels-first layer fed what looks like channels-last data
    (empty when the shape does not look so)."""
    shape = tuple(input_shape)
    if layer.data_format != "channels_first" or not looks_channels_last(shape):
        return ""
    cf = (shape[-1],) + shape[1:-1]
    return (f"; the input shape {format_shape(shape)} looks channels-last ({shape[-1]} "
            f"channel{'s' if shape[-1] > 1 else ''} at the end) but {layer.describe()} is "
            f"channels_first {layout_text(len(shape) - 2, 'channels_first')}: give it "
            f"data_format='channels_last', or input_shape={cf} (engine.keras layers follow "
            f"keras.backend.image_data_format(), channels_last by default)")


class DataFormatMixin:
    """Channel axis and spatial dims of a layer with ``data_format``; channels_last inputs are
    transposed to channels first around the kernels (which are NCHW) and back."""

    data_format = "channels_first"

    @property
    def channel_axis(self):
        return 1 if self.data_format == "channels_first" else -1

    def spatial_of(self, shape):
        return tuple(shape[2:]) if self.data_format == "channels_first" else tuple(shape[1:-1])

    def with_channels(self, channels, spatial):
        """A (None, ...) shape in this layer's layout."""
        if self.data_format == "channels_first":
            return (None, channels) + tuple(spatial)
        return (None,) + tuple(spatial) + (channels,)

    def _dims_hint(self):
        return ": " + layout_text(self.rank, self.data_format)

    def _nchw(self, x):
        return x if self.data_format == "channels_first" else to_channels_first(x)

    def _back(self, y):
        return y if self.data_format == "channels_first" else to_channels_last(y)


def expand_tuple(owner, name, value, rank, minimum):
    """An int or a tuple of ``rank`` ints, each >= ``minimum``, as a tuple."""
    if is_int(value):
        value = (int(value),) * rank
    if not isinstance(value, (tuple, list)) or len(value) != rank or \
            not all(is_int(v) and v >= minimum for v in value):
        raise ValueError(f"{owner}: {name} must be an int or a tuple of {rank} ints, each >= "
                         f"{minimum}, received {value!r}")
    return tuple(int(v) for v in value)


def check_padding(owner, padding, rank):
    """'valid', 'same', an int >= 0, or a tuple of ``rank`` ints / (lo, hi) pairs (JSON-friendly
    lists become tuples)."""
    if isinstance(padding, str):
        if padding.lower() in ("valid", "same"):
            return padding.lower()
    elif is_int(padding) and padding >= 0:
        return int(padding)
    elif isinstance(padding, (tuple, list)) and len(padding) == rank:
        out = []
        for p in padding:
            if is_int(p) and p >= 0:
                out.append(int(p))
            elif isinstance(p, (tuple, list)) and len(p) == 2 and \
                    all(is_int(q) and q >= 0 for q in p):
                out.append((int(p[0]), int(p[1])))
            else:
                break
        else:
            return tuple(out)
    raise ValueError(f"{owner}: padding must be 'valid', 'same', an int >= 0 or a tuple of "
                     f"{rank} ints or (lo, hi) pairs, received {padding!r}")


class BaseConv(DataFormatMixin, Layer):
    """N-d convolution layer (cross-correlation), channels first by default.

    Parameters
    ----------
    rank : int                    1, 2 or 3 spatial dims
    filters : int                 output channels (> 0)
    kernel_size : int or tuple
    strides, dilation_rate : int or tuple
    padding : "valid", "same", an int, or a tuple (ints or (lo, hi) pairs per spatial dim)
    groups : int                  must divide filters and the input channels
    activation : str, callable or None
    use_bias : bool
    kernel_initializer, bias_initializer : str or callable
    strategy : "auto", "direct", "im2col", "fft", "winograd" or "reference"
        passed to the kernels on every forward and backward pass
    data_format : "channels_first" (default) or "channels_last"
        channels_last inputs (N, *spatial, C) are transposed to channels first around the
        kernels and back; the kernel layout does not change

    Input (N, C, *spatial) -> output (N, filters, *out) with, per spatial dim,
    out = floor((in + pad_lo + pad_hi - dilation * (k - 1) - 1) / stride) + 1.
    "same" pads as TensorFlow/Keras: out = ceil(in / stride), the odd unit at the end.
    The kernel is stored (filters, C / groups, *kernel_size).
    """

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", strategy="auto", data_format="channels_first",
                 **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.rank = rank
        self.data_format = check_data_format(owner, data_format)
        if not is_int(filters) or filters <= 0:
            raise ValueError(f"{owner}: filters must be a positive int, received {filters!r}")
        self.filters = int(filters)
        self.kernel_size = expand_tuple(owner, "kernel_size", kernel_size, rank, 1)
        self.strides = expand_tuple(owner, "strides", strides, rank, 1)
        self.dilation_rate = expand_tuple(owner, "dilation_rate", dilation_rate, rank, 1)
        self.padding = check_padding(owner, padding, rank)
        if not is_int(groups) or groups <= 0 or filters % groups:
            raise ValueError(f"{owner}: groups must be a positive int dividing filters="
                             f"{filters}, received {groups!r}")
        self.groups = int(groups)
        self.activation = activation
        self._act = get_activation(activation, owner)
        if not isinstance(use_bias, bool):
            raise TypeError(f"{owner}: use_bias must be a bool, received {use_bias!r}")
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self._kinit = initializers.get(kernel_initializer, "kernel_initializer", owner)
        self._binit = initializers.get(bias_initializer, "bias_initializer", owner)
        if strategy not in ("auto",) + strategies():
            raise ValueError(f"{owner}: strategy must be one of {('auto',) + strategies()}, "
                             f"received {strategy!r}")
        self.strategy = strategy
        self.ndim = rank + 2
        self._conv = _FUNCS[rank]
        self.kernel = self.bias = None

    def kernel_shape(self, channels):
        return (self.filters, channels // self.groups) + self.kernel_size

    def build(self, input_shape):
        channels = input_shape[self.channel_axis]
        if channels % self.groups:
            raise ValueError(f"{self.describe()}: groups={self.groups} must divide the input "
                             f"channels, received input shape {tuple(input_shape)}"
                             f"{channels_last_hint(self, input_shape)}")
        self._params(input_shape)  # shape errors before any weight exists
        self._fixed_axes = {self.channel_axis: channels}
        shape = self.kernel_shape(channels)
        fan_in, fan_out = initializers.fans(shape, "conv")
        self.kernel = self.add_weight("kernel", shape, self._kinit, fan_in, fan_out)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self._binit, fan_in, fan_out)

    def nchw_shape(self, input_shape, batch=1):
        """The input shape as the kernels see it: (batch, C, *spatial)."""
        return (batch, input_shape[self.channel_axis]) + self.spatial_of(input_shape)

    def _params(self, input_shape):
        x_shape = self.nchw_shape(input_shape)
        try:
            return conv_params(x_shape, self.kernel_shape(x_shape[1]), self.strides,
                               self.padding, self.dilation_rate, self.groups, op=self.describe())
        except ValueError as e:
            raise ValueError(f"{e} (input shape {format_shape(input_shape)})"
                             f"{channels_last_hint(self, input_shape)}") from None

    def compute_output_shape(self, input_shape):
        p = self._params(input_shape)
        return self.with_channels(self.filters, p.out_spatial(self.spatial_of(input_shape),
                                                              self.kernel_size))

    def call(self, x, training=False):
        y = self._conv(self._nchw(x), self.kernel, self.bias, stride=self.strides,
                       padding=self.padding, dilation=self.dilation_rate, groups=self.groups,
                       strategy=self.strategy)
        return self._back(self._act(y))

    def receptive_field(self, rf, jump):
        if rf is None:
            return None
        rf = tuple(r + (k - 1) * d * j for r, k, d, j in
                   zip(rf, self.kernel_size, self.dilation_rate, jump))
        return rf, tuple(j * s for j, s in zip(jump, self.strides))

    def strategy_choice(self, input_shape, batch_size=32, need_backward=True, pass_="fwd",
                        device="cpu"):
        """(strategy, backend, reason) the kernels pick for this layer's convolution in
        ``pass_`` ("fwd", "grad_input" or "grad_weight") on ``device``."""
        if self.strategy != "auto":
            return self.strategy, "", "requested by the layer"
        x_shape = self.nchw_shape(input_shape, batch_size)
        return kernels.select(x_shape, self.kernel_shape(x_shape[1]), stride=self.strides,
                              padding=self.padding, dilation=self.dilation_rate,
                              groups=self.groups, need_backward=need_backward, pass_=pass_,
                              device=device)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "dilation_rate": self.dilation_rate,
                "groups": self.groups, "activation": self.activation,
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "strategy": self.strategy,
                "data_format": self.data_format}


class Conv1D(BaseConv):
    """1-D convolution: (N, C, L) -> (N, filters, L_out).  See :class:`BaseConv`.

    >>> import numpy as np
    >>> Conv1D(8, 5, padding="same")(np.zeros((2, 1, 32), np.float32)).shape
    (2, 8, 32)
    """

    def __init__(self, filters, kernel_size, padding="valid", **kwargs):
        causal = isinstance(padding, str) and padding.lower() == "causal"
        super().__init__(1, filters, kernel_size, padding="valid" if causal else padding,
                         **kwargs)
        if causal:  # pad dilation * (k - 1) at the start only: y[t] sees x[:t + 1]
            self.padding = ((self.dilation_rate[0] * (self.kernel_size[0] - 1), 0),)


class Conv2D(BaseConv):
    """2-D convolution: (N, C, H, W) -> (N, filters, H_out, W_out).  See :class:`BaseConv`.

    >>> import numpy as np
    >>> Conv2D(20, 5, activation="relu")(np.zeros((2, 1, 28, 28), np.float32)).shape
    (2, 20, 24, 24)
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(2, filters, kernel_size, **kwargs)


class Conv3D(BaseConv):
    """3-D convolution: (N, C, D, H, W) -> (N, filters, D_out, H_out, W_out).

    >>> import numpy as np
    >>> Conv3D(4, 3)(np.zeros((1, 2, 5, 6, 7), np.float32)).shape
    (1, 4, 3, 4, 5)
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(3, filters, kernel_size, **kwargs)
