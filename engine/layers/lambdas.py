"""Lambda: a Python callable over Tensors as a layer (its ops record on the tape)."""
from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor
from .base import Layer

__all__ = ["Lambda"]


class Lambda(Layer):
    """Wrap ``function(x) -> Tensor`` (engine.functional ops, Tensor operators) as a layer.

    ``output_shape`` (per sample, batch excluded) may be given; otherwise it is found by
    running the function once on zeros of batch 1.  A Lambda holds Python code, which
    convlab's files never store (no pickle): saving a model with one raises TypeError.

    >>> import numpy as np
    >>> Lambda(lambda x: x * 2)(np.ones((1, 3), np.float32)).numpy()
    array([[2., 2., 2.]], dtype=float32)
    """

    def __init__(self, function, output_shape=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable, received {function!r}")
        self.function = function
        self.output_shape_arg = None if output_shape is None else tuple(output_shape)
        self.arguments = dict(arguments or {})

    def compute_output_shape(self, input_shape):
        if self.output_shape_arg is not None:
            return (input_shape[0],) + self.output_shape_arg
        if any(d is None for d in input_shape[1:]):
            raise ValueError(f"{self.describe()}: cannot infer the output shape from input "
                             f"{tuple(input_shape)}; pass output_shape")
        with no_grad():
            y = self.call(Tensor(np.zeros((1,) + tuple(input_shape[1:]), np.float32)))
        return (input_shape[0],) + tuple(y.shape[1:])

    def call(self, x, training=False):
        y = self.function(x, **self.arguments)
        if not isinstance(y, Tensor):
            raise TypeError(f"{self.describe()}: function must return a Tensor, returned "
                            f"{type(y).__name__}")
        return y

    def receptive_field(self, rf, jump):
        return None

    def get_config(self):
        raise TypeError(f"{self.describe()}: a Lambda layer holds Python code, which convlab "
                        f"does not serialise (no pickle); rebuild the model in code and use "
                        f"save_weights / set_weights, or write a Layer subclass")
