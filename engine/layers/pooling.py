"""Pooling layers (max, average, sum, L2; 1-3 spatial dims) and global pooling."""
from __future__ import annotations

import numpy as np

import kernels
from kernels.params import pool_params

from .. import functional as F
from .base import Layer, check_data_format, format_shape
from .conv import _SPATIAL, DataFormatMixin, channels_last_hint, check_padding, expand_tuple

__all__ = ["BasePooling", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
           "AveragePooling2D", "AveragePooling3D", "SumPooling1D", "SumPooling2D",
           "SumPooling3D", "L2Pooling1D", "L2Pooling2D", "L2Pooling3D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
           "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"]

_POOL_FUNCS = {(kind, rank): getattr(F, f"{kind}_pool{rank}d")
               for kind in ("max", "avg", "sum", "l2") for rank in (1, 2, 3)}


class BasePooling(DataFormatMixin, Layer):
    """Pooling over ``rank`` spatial dims, per channel.

    Parameters
    ----------
    pool_size : int or tuple (default 2)
    strides : int, tuple or None (None = pool_size)
    padding : "valid", "same" (out = ceil(in / stride)), an int or a tuple
    data_format : "channels_first" (default) or "channels_last"
    count_include_pad : bool (average pooling)
        True (default): divide by the full window, padding included (PyTorch's default);
        False: by the number of input values under the window (Keras/TensorFlow "same")

    out = floor((in + pad_lo + pad_hi - pool_size) / stride) + 1 per spatial dim.  L2
    pooling is sqrt(sum x**2).
    """

    kind = None
    rank = None

    def __init__(self, pool_size=2, strides=None, padding="valid",
                 data_format="channels_first", count_include_pad=True, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.data_format = check_data_format(owner, data_format)
        if not isinstance(count_include_pad, bool):
            raise TypeError(f"{owner}: count_include_pad must be a bool, received "
                            f"{count_include_pad!r}")
        self.count_include_pad = count_include_pad
        self._inv_counts = {}
        self.pool_size = expand_tuple(owner, "pool_size", pool_size, self.rank, 1)
        self.strides = self.pool_size if strides is None else \
            expand_tuple(owner, "strides", strides, self.rank, 1)
        self.padding = check_padding(owner, padding, self.rank)
        self.ndim = self.rank + 2
        self._pool = _POOL_FUNCS[(self.kind, self.rank)]

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # shape errors (with their hints) up front

    def compute_output_shape(self, input_shape):
        spatial = self.spatial_of(input_shape)
        try:
            p = pool_params((1, 1) + spatial, self.pool_size, self.strides, self.padding,
                            op=self.describe())
        except ValueError as e:
            raise ValueError(f"{e} (input shape {format_shape(input_shape)})"
                             f"{channels_last_hint(self, input_shape)}") from None
        return self.with_channels(input_shape[self.channel_axis],
                                  p.out_spatial(spatial, self.pool_size))

    def call(self, x, training=False):
        x = self._nchw(x)
        if self.kind == "avg" and not self.count_include_pad:
            y = F.pool(x, "sum", self.pool_size, stride=self.strides, padding=self.padding)
            return self._back(F.mul(y, self._inv_count(tuple(x.shape[2:]), y.dtype)))
        return self._back(self._pool(x, self.pool_size, stride=self.strides,
                                     padding=self.padding))

    def _inv_count(self, spatial, dtype):
        """1 / (input values under each window), shape (1, 1, *out), cached per input size."""
        key = (spatial, np.dtype(dtype).name)
        if key not in self._inv_counts:
            ones = np.ones((1, 1) + spatial, dtype=dtype)
            counts = kernels.pool(ones, "sum", self.pool_size, stride=self.strides,
                                  padding=self.padding)
            self._inv_counts[key] = (1.0 / counts).astype(dtype)
        return self._inv_counts[key]

    def receptive_field(self, rf, jump):
        if rf is None:
            return None
        rf = tuple(r + (k - 1) * j for r, k, j in zip(rf, self.pool_size, jump))
        return rf, tuple(j * s for j, s in zip(jump, self.strides))

    def get_config(self):
        config = {**super().get_config(), "pool_size": self.pool_size,
                  "strides": self.strides, "padding": self.padding,
                  "data_format": self.data_format}
        if not self.count_include_pad:
            config["count_include_pad"] = False
        return config


def _pooling(kind, rank, doc):
    name = {"max": "MaxPooling", "avg": "AveragePooling", "sum": "SumPooling",
            "l2": "L2Pooling"}[kind] + f"{rank}D"
    return type(name, (BasePooling,), {"kind": kind, "rank": rank, "__doc__": doc,
                                       "__module__": __name__})


MaxPooling1D = _pooling("max", 1, "Max pooling over (N, C, L).  See :class:`BasePooling`.")
MaxPooling2D = _pooling("max", 2, """Max pooling over (N, C, H, W).  See :class:`BasePooling`.

    >>> import numpy as np
    >>> MaxPooling2D(2)(np.zeros((1, 3, 8, 8), np.float32)).shape
    (1, 3, 4, 4)
    """)
MaxPooling3D = _pooling("max", 3, "Max pooling over (N, C, D, H, W).")
AveragePooling1D = _pooling("avg", 1, "Average pooling over (N, C, L).")
AveragePooling2D = _pooling("avg", 2, "Average pooling over (N, C, H, W).")
AveragePooling3D = _pooling("avg", 3, "Average pooling over (N, C, D, H, W).")
SumPooling1D = _pooling("sum", 1, "Sum pooling over (N, C, L).")
SumPooling2D = _pooling("sum", 2, "Sum pooling over (N, C, H, W).")
SumPooling3D = _pooling("sum", 3, "Sum pooling over (N, C, D, H, W).")
L2Pooling1D = _pooling("l2", 1, "L2 pooling (sqrt of the sum of squares) over (N, C, L).")
L2Pooling2D = _pooling("l2", 2, "L2 pooling (sqrt of the sum of squares) over (N, C, H, W).")
L2Pooling3D = _pooling("l2", 3, "L2 pooling (sqrt of the sum of squares) over (N, C, D, H, W).")


class _GlobalPooling(DataFormatMixin, Layer):
    """Pool over every spatial position: (N, C, *spatial) -> (N, C) (channels_first, the
    default) or (N, *spatial, C) -> (N, C) (channels_last)."""

    rank = None
    kind = None

    def __init__(self, data_format="channels_first", **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(type(self).__name__, data_format)
        self.ndim = self.rank + 2
        self._pool = F.global_avg_pool if self.kind == "avg" else F.global_max_pool

    def compute_output_shape(self, input_shape):
        return (None, input_shape[self.channel_axis])

    def call(self, x, training=False):
        return self._pool(self._nchw(x))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}

    def receptive_field(self, rf, jump):
        return None


def _global(kind, rank):
    name = {"avg": "GlobalAveragePooling", "max": "GlobalMaxPooling"}[kind] + f"{rank}D"
    doc = (f"Global {'average' if kind == 'avg' else 'max'} pooling: (N, C, "
           f"{_SPATIAL[rank]}) -> (N, C).")
    return type(name, (_GlobalPooling,), {"kind": kind, "rank": rank, "__doc__": doc,
                                          "__module__": __name__})


GlobalAveragePooling1D = _global("avg", 1)
GlobalAveragePooling2D = _global("avg", 2)
GlobalAveragePooling3D = _global("avg", 3)
GlobalMaxPooling1D = _global("max", 1)
GlobalMaxPooling2D = _global("max", 2)
GlobalMaxPooling3D = _global("max", 3)
