"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum and Concatenate (several
inputs, one output)."""
from __future__ import annotations

from .. import functional as F
from ..ops import extra as E
from .base import Layer, format_shape, is_int

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]


class _Merge(Layer):
    multi_input = True

    def _check_count(self, shapes):
        if len(shapes) < 2:
            raise ValueError(f"{self.describe()}: expects a list of at least 2 inputs, "
                             f"received {len(shapes)}")

    def receptive_field_merge(self, fields):
        """Largest receptive field among the inputs (None when one sees everything)."""
        if any(f is None for f in fields) or len({len(f[0]) for f in fields}) != 1:
            return None
        rf = tuple(max(v) for v in zip(*(f[0] for f in fields)))
        jump = tuple(max(v) for v in zip(*(f[1] for f in fields)))
        return rf, jump


class Add(_Merge):
    """Element-wise sum of inputs of one shape (residual connections).

    >>> from engine.layers import Dense, Input
    >>> x = Input((4,)); Add()([Dense(4)(x), x]).shape
    (None, 4)
    """

    def check_input_shape(self, shapes):
        self._check_count(shapes)
        first = tuple(shapes[0][1:])
        for s in shapes[1:]:
            if tuple(s[1:]) != first:
                raise ValueError(f"{self.describe()}: all inputs must have the same shape, "
                                 f"received {', '.join(format_shape(t) for t in shapes)}")

    def _check_all(self, shapes):
        self.check_input_shape(shapes)

    def compute_output_shape(self, shapes):
        return tuple(shapes[0])

    def call(self, xs, training=False):
        out = xs[0]
        for x in xs[1:]:
            out = F.add(out, x)
        return out


class Concatenate(_Merge):
    """Join inputs along ``axis`` (default -1, as in Keras; use axis=1 for channels).

    All other dims must match.  The batch axis (0) cannot be joined.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not is_int(axis) or axis == 0:
            raise ValueError(f"Concatenate: axis must be a non-zero int (axis 0 is the batch), "
                             f"received {axis!r}")
        self.axis = int(axis)

    def check_input_shape(self, shapes):
        self._check_count(shapes)
        ndim = len(shapes[0])
        ax = self.axis % ndim if -ndim <= self.axis < ndim else None
        bad = ax is None or ax == 0 or any(len(s) != ndim for s in shapes) or any(
            tuple(d for i, d in enumerate(s) if i != ax) !=
            tuple(d for i, d in enumerate(shapes[0]) if i != ax) for s in shapes)
        if bad:
            raise ValueError(f"{self.describe()}: inputs must have the same shape except on "
                             f"axis {self.axis}, received "
                             f"{', '.join(format_shape(t) for t in shapes)}")

    def _check_all(self, shapes):
        self.check_input_shape(shapes)

    def compute_output_shape(self, shapes):
        ax = self.axis % len(shapes[0])
        out = list(shapes[0])
        out[ax] = sum(s[ax] for s in shapes)
        return tuple(out)

    def call(self, xs, training=False):
        return F.concat(list(xs), axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class _SameShape(_Merge):
    """Element-wise merge of inputs of one shape: ``fold`` applied left to right."""

    check_input_shape = Add.check_input_shape
    _check_all = Add._check_all
    compute_output_shape = Add.compute_output_shape

    def call(self, xs, training=False):
        out = xs[0]
        for x in xs[1:]:
            out = self.fold(out, x)
        return out


class Subtract(_SameShape):
    """inputs[0] - inputs[1] (exactly two inputs).

    >>> import numpy as np
    >>> Subtract()([np.ones((1, 2), np.float32), np.ones((1, 2), np.float32)]).numpy()
    array([[0., 0.]], dtype=float32)
    """

    def check_input_shape(self, shapes):
        if len(shapes) != 2:
            raise ValueError(f"{self.describe()}: expects exactly 2 inputs, received "
                             f"{len(shapes)}")
        Add.check_input_shape(self, shapes)

    def _check_all(self, shapes):
        self.check_input_shape(shapes)

    fold = staticmethod(F.sub)


class Multiply(_SameShape):
    """Element-wise product of the inputs.

    >>> import numpy as np
    >>> Multiply()([np.full((1, 2), 2, np.float32), np.full((1, 2), 3, np.float32)]).numpy()
    array([[6., 6.]], dtype=float32)
    """

    fold = staticmethod(F.mul)


class Maximum(_SameShape):
    """Element-wise maximum of the inputs."""

    fold = staticmethod(E.maximum)


class Minimum(_SameShape):
    """Element-wise minimum of the inputs."""

    fold = staticmethod(E.minimum)


class Average(_SameShape):
    """Element-wise mean of the inputs.

    >>> import numpy as np
    >>> Average()([np.zeros((1, 2), np.float32), np.full((1, 2), 4, np.float32)]).numpy()
    array([[2., 2.]], dtype=float32)
    """

    fold = staticmethod(F.add)

    def call(self, xs, training=False):
        return F.mul(super().call(xs, training), 1.0 / len(xs))
