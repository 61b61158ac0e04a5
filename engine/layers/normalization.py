"""Batch normalization over one feature axis (the channel axis by default)."""
from __future__ import annotations

import numbers

from .. import functional as F
from .. import init as initializers
from .base import Layer, check_data_format, format_shape, is_int

__all__ = ["BatchNormalization", "SyncBatchNormalization"]


class BatchNormalization(Layer):
    """Normalise each entry of one feature axis over the batch and every other axis.

    Parameters
    ----------
    momentum : float in [0, 1)      moving statistics' momentum
    epsilon : float > 0
    center, scale : bool            learn beta / gamma (False: 0 / 1, no weight)
    axis : int, optional            the feature axis (batch excluded, negative counts from the
        end); by default the channel axis of ``data_format``: 1 for channels_first, -1 for
        channels_last.  Keras's default is -1 whatever the data format.
    data_format : "channels_first" (default) or "channels_last"

    Training: ``y = gamma * (x - mean_b) / sqrt(var_b + epsilon) + beta`` with the batch
    statistics, and the moving statistics move as ``m = momentum * m + (1 - momentum) * b``
    (Keras convention).  Inference uses the moving statistics.

    Weights: gamma (if scale), beta (if center) (trainable, shape (C,)), moving_mean,
    moving_variance (not trainable), C the size of ``axis``.

    >>> import numpy as np
    >>> BatchNormalization()(np.ones((4, 3, 2, 2), np.float32)).shape
    (4, 3, 2, 2)
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True, axis=None,
                 data_format="channels_first", **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format("BatchNormalization", data_format)
        if axis is not None and (not is_int(axis) or axis == 0):
            raise ValueError(f"BatchNormalization: axis must be a non-zero int (axis 0 is the "
                             f"batch) or None, received {axis!r}")
        for name, v in (("center", center), ("scale", scale)):
            if not isinstance(v, bool):
                raise TypeError(f"BatchNormalization: {name} must be a bool, received {v!r}")
        self.axis = None if axis is None else int(axis)
        self.center, self.scale = center, scale
        for name, v in (("momentum", momentum), ("epsilon", epsilon)):
            if not isinstance(v, numbers.Real) or isinstance(v, bool):
                raise TypeError(f"BatchNormalization: {name} must be a number, received {v!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1), received "
                             f"{momentum!r}")
        if not epsilon > 0.0:
            raise ValueError(f"BatchNormalization: epsilon must be > 0, received {epsilon!r}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def check_input_shape(self, shape):
        if len(shape) < 2:
            raise ValueError(f"{self.describe()}: expected input of at least 2 dims "
                             f"(batch, channels, ...), received shape {format_shape(shape)}")
        super().check_input_shape(shape)

    def _axis(self, ndim):
        """The normalised axis as a positive index for inputs of ``ndim`` dims."""
        axis = self.axis if self.axis is not None else \
            (1 if self.data_format == "channels_first" else -1)
        if not -ndim < axis < ndim:
            raise ValueError(f"{self.describe()}: axis={axis} is out of range for inputs of "
                             f"{ndim} dims")
        return axis % ndim

    def build(self, input_shape):
        axis = self._axis(len(input_shape))
        if axis == 0:
            raise ValueError(f"{self.describe()}: axis={self.axis} is the batch axis for inputs "
                             f"of shape {format_shape(input_shape)}")
        c = input_shape[axis]
        self._fixed_axes = {axis: c}
        self.gamma = self.add_weight("gamma", (c,), initializers.ones) if self.scale else None
        self.beta = self.add_weight("beta", (c,), initializers.zeros) if self.center else None
        self.moving_mean = self.add_weight("moving_mean", (c,), initializers.zeros,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (c,), initializers.ones,
                                               trainable=False)

    _normalize = staticmethod(F.batch_norm)  # SyncBatchNormalization all-reduces instead

    def call(self, x, training=False):
        axis = self._axis(x.ndim)
        perm = None
        if axis != 1:  # move the feature axis to 1, where batch_norm normalises
            perm = (0, axis) + tuple(i for i in range(1, x.ndim) if i != axis)
            x = F.transpose(x, perm)
        y = self._normalize(x, self.gamma, self.beta, self.moving_mean.data,
                            self.moving_variance.data, training, momentum=self.momentum,
                            eps=self.epsilon)
        if perm is not None:
            y = F.transpose(y, tuple(perm.index(i) for i in range(x.ndim)))
        return y

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "axis": self.axis,
                "data_format": self.data_format}


class SyncBatchNormalization(BatchNormalization):
    """BatchNormalization whose training statistics are those of the global batch in
    data-parallel training (engine.distributed): the per-channel sums are all-reduced over
    the ranks, so that N ranks train as one process does.  In a world of one, and in
    inference, it computes what BatchNormalization computes.

    >>> import numpy as np
    >>> SyncBatchNormalization()(np.ones((4, 3, 2, 2), np.float32)).shape
    (4, 3, 2, 2)
    """

    @staticmethod
    def _normalize(*args, **kwargs):
        from ..distributed import sync_batch_norm
        return sync_batch_norm(*args, **kwargs)
