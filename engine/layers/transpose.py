"""Transposed convolutions Conv1DTranspose / Conv2DTranspose / Conv3DTranspose, channels first.

The forward pass is the grad-input pass of a convolution (``kernels.conv_grad_input``), so
every strategy and the selection serve it; see :func:`engine.ops.extra.conv_transpose`.
The kernel is stored (C_in, filters / groups, *kernel_size) -- the weight of the convolution
that maps the output back to the input (PyTorch's ConvTranspose layout).  Keras's kernel
(*kernel_size, filters, C_in) becomes this one by moving its last two axes to the front:
``k.transpose(ndim - 1, ndim - 2, 0, 1, ...)``.
"""
from __future__ import annotations

from kernels.registry import strategies

from .. import init as initializers
from ..ops import extra as E
from .base import Layer, get_activation, is_int
from .conv import expand_tuple

__all__ = ["BaseConvTranspose", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"]


class BaseConvTranspose(Layer):
    """N-d transposed convolution.

    Parameters
    ----------
    rank : 1, 2 or 3;  filters : int (output channels);  kernel_size : int or tuple
    strides, dilation_rate : int or tuple;  padding : "valid" or "same"
    output_padding : None, int or tuple (each < stride)
    groups, activation, use_bias, kernel_initializer, bias_initializer, strategy : as Conv2D

    Output size per spatial dim (Keras's rule, k_eff = dilation * (k - 1) + 1):
    "valid": in * s + max(k_eff - s, 0); "same": in * s; with output_padding op:
    (in - 1) * s + k_eff - 2 * pad + op (pad = k_eff // 2 for "same", 0 for "valid").
    """

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid",
                 output_padding=None, dilation_rate=1, groups=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 strategy="auto", **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.rank = rank
        self.ndim = rank + 2
        if not is_int(filters) or filters <= 0:
            raise ValueError(f"{owner}: filters must be a positive int, received {filters!r}")
        self.filters = int(filters)
        self.kernel_size = expand_tuple(owner, "kernel_size", kernel_size, rank, 1)
        self.strides = expand_tuple(owner, "strides", strides, rank, 1)
        self.dilation_rate = expand_tuple(owner, "dilation_rate", dilation_rate, rank, 1)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"{owner}: padding must be 'valid' or 'same', received "
                             f"{padding!r}")
        self.padding = padding.lower()
        self.output_padding = None if output_padding is None else expand_tuple(
            owner, "output_padding", output_padding, rank, 0)
        if self.output_padding is not None and any(
                o >= s for o, s in zip(self.output_padding, self.strides)):
            raise ValueError(f"{owner}: output_padding must be < strides per dim, received "
                             f"output_padding={self.output_padding}, strides={self.strides}")
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
        self.kernel = self.bias = None

    def _dims_hint(self):
        return f": (batch, channels, {('L', 'H, W', 'D, H, W')[self.rank - 1]})"

    def build(self, input_shape):
        channels = input_shape[1]
        if channels % self.groups:
            raise ValueError(f"{self.describe()}: groups={self.groups} must divide the input "
                             f"channels, received input shape {tuple(input_shape)}")
        self._fixed_axes = {1: channels}
        shape = (channels, self.filters // self.groups) + self.kernel_size
        # fans as Keras computes them for its (*k, filters, C_in) kernel
        k = 1
        for v in self.kernel_size:
            k *= v
        fan_in, fan_out = self.filters // self.groups * k, channels * k
        self.kernel = self.add_weight("kernel", shape, self._kinit, fan_in, fan_out)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self._binit, fan_in, fan_out)

    def compute_output_shape(self, s):
        out, _ = E.transpose_output_shape(s[2:], self.kernel_size, self.strides,
                                          self.dilation_rate, self.padding,
                                          self.output_padding)
        return (s[0], self.filters) + out

    def call(self, x, training=False):
        y = E.conv_transpose(x, self.kernel, self.bias, self.strides, self.padding,
                             self.dilation_rate, self.groups, self.output_padding,
                             self.strategy)
        return self._act(y)

    def receptive_field(self, rf, jump):
        return None

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "output_padding": self.output_padding,
                "dilation_rate": self.dilation_rate, "groups": self.groups,
                "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "strategy": self.strategy}


class Conv1DTranspose(BaseConvTranspose):
    """(N, C, L) -> (N, filters, L_out).  See :class:`BaseConvTranspose`.

    >>> import numpy as np
    >>> Conv1DTranspose(4, 3, strides=2, padding="same")(np.ones((1, 2, 5), np.float32)).shape
    (1, 4, 10)
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(1, filters, kernel_size, **kwargs)


class Conv2DTranspose(BaseConvTranspose):
    """(N, C, H, W) -> (N, filters, H_out, W_out).  See :class:`BaseConvTranspose`.

    >>> import numpy as np
    >>> Conv2DTranspose(3, 3, strides=2)(np.ones((1, 2, 4, 4), np.float32)).shape
    (1, 3, 9, 9)
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(2, filters, kernel_size, **kwargs)


class Conv3DTranspose(BaseConvTranspose):
    """(N, C, D, H, W) -> (N, filters, D_out, H_out, W_out).

    >>> import numpy as np
    >>> Conv3DTranspose(2, 2, strides=2)(np.ones((1, 1, 2, 2, 2), np.float32)).shape
    (1, 2, 4, 4, 4)
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(3, filters, kernel_size, **kwargs)
