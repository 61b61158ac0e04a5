"""Depthwise and separable convolutions (channels first), written with ``groups``:

- DepthwiseConv1D/2D: a convolution with groups = C and C * depth_multiplier output channels;
  its ``depthwise_kernel`` is stored (C * depth_multiplier, 1, *kernel_size), output channel
  c * depth_multiplier + m reading input channel c.  Keras's kernel (*k, C, multiplier)
  maps to it by ``k.transpose(rank, rank + 1, 0, ...).reshape(C * m, 1, *k)``.
- SeparableConv1D/2D: that depthwise convolution (no bias) followed by a 1x1 ``pointwise``
  convolution (filters, C * depth_multiplier, 1, ...) with the bias.

Both passes go through the kernels' convolution, so every strategy serves them.
"""
from __future__ import annotations

from kernels.registry import strategies

from .. import functional as F
from .. import init as initializers
from .base import Layer, get_activation, is_int
from .conv import check_padding, expand_tuple

__all__ = ["DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"]


class _DepthwiseBase(Layer):
    rank = 2

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 strategy="auto", depthwise_regularizer=None, depthwise_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self._add_weight_rules("depthwise_kernel", depthwise_regularizer, depthwise_constraint)
        owner = type(self).__name__
        self.ndim = self.rank + 2
        self.kernel_size = expand_tuple(owner, "kernel_size", kernel_size, self.rank, 1)
        self.strides = expand_tuple(owner, "strides", strides, self.rank, 1)
        self.dilation_rate = expand_tuple(owner, "dilation_rate", dilation_rate, self.rank, 1)
        self.padding = check_padding(owner, padding, self.rank)
        if not is_int(depth_multiplier) or depth_multiplier < 1:
            raise ValueError(f"{owner}: depth_multiplier must be an int >= 1, received "
                             f"{depth_multiplier!r}")
        self.depth_multiplier = int(depth_multiplier)
        self.activation = activation
        self._act = get_activation(activation, owner)
        if not isinstance(use_bias, bool):
            raise TypeError(f"{owner}: use_bias must be a bool, received {use_bias!r}")
        self.use_bias = use_bias
        self.depthwise_initializer = depthwise_initializer
        self.bias_initializer = bias_initializer
        self._dinit = initializers.get(depthwise_initializer, "depthwise_initializer", owner)
        self._binit = initializers.get(bias_initializer, "bias_initializer", owner)
        if strategy not in ("auto",) + strategies():
            raise ValueError(f"{owner}: strategy must be one of {('auto',) + strategies()}, "
                             f"received {strategy!r}")
        self.strategy = strategy
        self.depthwise_kernel = self.bias = None

    def _dims_hint(self):
        return f": (batch, channels, {('L', 'H, W')[self.rank - 1]})"

    def _build_depthwise(self, channels):
        self._fixed_axes = {1: channels}
        shape = (channels * self.depth_multiplier, 1) + self.kernel_size
        k = 1
        for v in self.kernel_size:
            k *= v
        # Keras's fans for its (*k, C, multiplier) kernel
        self.depthwise_kernel = self.add_weight("depthwise_kernel", shape, self._dinit,
                                                channels * k, self.depth_multiplier * k)

    def _depthwise(self, x):
        return F.conv(x, self.depthwise_kernel, None, stride=self.strides,
                      padding=self.padding, dilation=self.dilation_rate, groups=x.shape[1],
                      strategy=self.strategy)

    def _out_spatial(self, s):
        out = []
        for d, k, st, dl, p in zip(s[2:], self.kernel_size, self.strides, self.dilation_rate,
                                   self._pads(s)):
            out.append((d + p[0] + p[1] - dl * (k - 1) - 1) // st + 1)
        return tuple(out)

    def _pads(self, s):
        from kernels.params import conv_params
        x_shape = (1,) + tuple(s[1:])
        w_shape = (s[1], 1) + self.kernel_size
        p = conv_params(x_shape, w_shape, self.strides, self.padding, self.dilation_rate,
                        s[1], op=self.describe())
        return p.padding

    def receptive_field(self, rf, jump):
        if rf is None:
            return None
        rf = tuple(r + (k - 1) * d * j for r, k, d, j in
                   zip(rf, self.kernel_size, self.dilation_rate, jump))
        return rf, tuple(j * s for j, s in zip(jump, self.strides))

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "depth_multiplier": self.depth_multiplier, "dilation_rate": self.dilation_rate,
                "activation": self.activation, "use_bias": self.use_bias,
                "depthwise_initializer": self.depthwise_initializer,
                "bias_initializer": self.bias_initializer, "strategy": self.strategy}


class _Depthwise(_DepthwiseBase):
    def build(self, input_shape):
        channels = input_shape[1]
        self._build_depthwise(channels)
        if self.use_bias:
            self.bias = self.add_weight("bias", (channels * self.depth_multiplier,),
                                        self._binit)

    def compute_output_shape(self, s):
        return (s[0], s[1] * self.depth_multiplier) + self._out_spatial(s)

    def call(self, x, training=False):
        y = self._depthwise(x)
        if self.bias is not None:
            y = F.add(y, F.reshape(self.bias, (1, -1) + (1,) * self.rank))
        return self._act(y)


class DepthwiseConv1D(_Depthwise):
    """Depthwise 1-D convolution: (N, C, L) -> (N, C * depth_multiplier, L_out).

    >>> import numpy as np
    >>> DepthwiseConv1D(3, depth_multiplier=2)(np.ones((1, 3, 8), np.float32)).shape
    (1, 6, 6)
    """
    rank = 1


class DepthwiseConv2D(_Depthwise):
    """Depthwise 2-D convolution: (N, C, H, W) -> (N, C * depth_multiplier, H_out, W_out).

    >>> import numpy as np
    >>> DepthwiseConv2D(3, padding="same")(np.ones((1, 3, 8, 8), np.float32)).shape
    (1, 3, 8, 8)
    """
    rank = 2


class _Separable(_DepthwiseBase):
    def __init__(self, filters, kernel_size, pointwise_initializer="glorot_uniform",
                 pointwise_regularizer=None, pointwise_constraint=None, **kwargs):
        super().__init__(kernel_size, **kwargs)
        self._add_weight_rules("pointwise_kernel", pointwise_regularizer, pointwise_constraint)
        if not is_int(filters) or filters <= 0:
            raise ValueError(f"{type(self).__name__}: filters must be a positive int, "
                             f"received {filters!r}")
        self.filters = int(filters)
        self.pointwise_initializer = pointwise_initializer
        self._pinit = initializers.get(pointwise_initializer, "pointwise_initializer",
                                       type(self).__name__)
        self.pointwise_kernel = None

    def build(self, input_shape):
        channels = input_shape[1]
        self._build_depthwise(channels)
        mid = channels * self.depth_multiplier
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (self.filters, mid) + (1,) * self.rank, self._pinit, mid,
            self.filters)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self._binit)

    def compute_output_shape(self, s):
        return (s[0], self.filters) + self._out_spatial(s)

    def call(self, x, training=False):
        y = F.conv(self._depthwise(x), self.pointwise_kernel, self.bias,
                   strategy=self.strategy)
        return self._act(y)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "pointwise_initializer": self.pointwise_initializer}


class SeparableConv1D(_Separable):
    """Depthwise then pointwise 1-D convolution: (N, C, L) -> (N, filters, L_out).

    >>> import numpy as np
    >>> SeparableConv1D(4, 3)(np.ones((1, 3, 8), np.float32)).shape
    (1, 4, 6)
    """
    rank = 1


class SeparableConv2D(_Separable):
    """Depthwise then pointwise 2-D convolution: (N, C, H, W) -> (N, filters, H_out, W_out).

    >>> import numpy as np
    >>> SeparableConv2D(4, 3, padding="same")(np.ones((1, 3, 8, 8), np.float32)).shape
    (1, 4, 8, 8)
    """
    rank = 2
