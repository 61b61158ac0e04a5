"""Keras 1's keras.layers.normalization."""
from . import BatchNormalization  # noqa: F401
