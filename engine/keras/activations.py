"""keras.activations: functions of a Tensor, usable as ``activation=`` (engine.keras layers
store their names) or called directly.

    >>> import numpy as np, engine
    >>> from engine.keras import activations
    >>> activations.relu(engine.Tensor(np.array([-1.0, 2.0]))).numpy()
    array([0., 2.])
"""
from __future__ import annotations

from .. import functional as F

__all__ = ["relu", "sigmoid", "tanh", "softmax", "linear", "log_softmax", "leaky_relu", "get",
           "serialize"]


def relu(x):
    return F.relu(x)


def sigmoid(x):
    return F.sigmoid(x)


def tanh(x):
    return F.tanh(x)


def softmax(x):
    return F.softmax(x)


def log_softmax(x):
    return F.log_softmax(x)


def leaky_relu(x, negative_slope=0.2):
    return F.leaky_relu(x, negative_slope)


def linear(x):
    return x


_BY_FUNCTION = {f: f.__name__ for f in (relu, sigmoid, tanh, softmax, log_softmax, linear,
                                        leaky_relu)}


def serialize(activation):
    """The name of one of these functions, anything else unchanged."""
    try:
        return _BY_FUNCTION.get(activation, activation)
    except TypeError:  # unhashable
        return activation


def get(identifier):
    """A name engine's layers know, or a callable."""
    return serialize(identifier)
