"""Batch normalization (per channel, channels first)."""
from __future__ import annotations

import numbers

from .. import functional as F
from .. import init as initializers
from .base import Layer, format_shape

__all__ = ["BatchNormalization", "SyncBatchNormalization"]


class BatchNormalization(Layer):
    """Normalise each channel (axis 1) over the batch and spatial dims.

    Training: ``y = gamma * (x - mean_b) / sqrt(var_b + epsilon) + beta`` with the batch
    statistics, and the moving statistics move as ``m = momentum * m + (1 - momentum) * b``
    (Keras convention).  Inference uses the moving statistics.

    Weights: gamma, beta (trainable, shape (C,)), moving_mean, moving_variance (not trainable).

    >>> import numpy as np
    >>> BatchNormalization()(np.ones((4, 3, 2, 2), np.float32)).shape
    (4, 3, 2, 2)
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
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

    def build(self, input_shape):
        c = input_shape[1]
        self._fixed_axes = {1: c}
        self.gamma = self.add_weight("gamma", (c,), initializers.ones)
        self.beta = self.add_weight("beta", (c,), initializers.zeros)
        self.moving_mean = self.add_weight("moving_mean", (c,), initializers.zeros,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (c,), initializers.ones,
                                               trainable=False)

    def call(self, x, training=False):
        return F.batch_norm(x, self.gamma, self.beta, self.moving_mean.data,
                            self.moving_variance.data, training, momentum=self.momentum,
                            eps=self.epsilon)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


class SyncBatchNormalization(BatchNormalization):
    """BatchNormalization whose training statistics are those of the global batch in
    data-parallel training (engine.distributed): the per-channel sums are all-reduced over
    the ranks, so that N ranks train as one process does.  In a world of one, and in
    inference, it computes what BatchNormalization computes.

    >>> import numpy as np
    >>> SyncBatchNormalization()(np.ones((4, 3, 2, 2), np.float32)).shape
    (4, 3, 2, 2)
    """

    def call(self, x, training=False):
        from ..distributed import sync_batch_norm
        return sync_batch_norm(x, self.gamma, self.beta, self.moving_mean.data,
                               self.moving_variance.data, training, momentum=self.momentum,
                               eps=self.epsilon)
