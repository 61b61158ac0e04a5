"""Keras 1's keras.layers.core."""
from . import Activation, Dense, Dropout, Flatten, Reshape  # noqa: F401
