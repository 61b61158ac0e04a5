"""The Keras front: Keras's namespace, argument names, data formats and weight layouts
translated onto engine's own layers (no second implementation).  Course code written for
Keras 1, 2 or 3 runs with only its import line changed -- ``from keras.X import Y`` becomes
``from engine.keras.X import Y``, ``import keras`` becomes ``import engine.keras as keras``::

    >>> from engine.keras.models import Sequential
    >>> from engine.keras.layers import Conv2D, Flatten, Dense
    >>> model = Sequential()
    >>> model.add(Conv2D(20, kernel_size=5, activation="relu", input_shape=(28, 28, 1)))
    >>> model.add(Conv2D(40, kernel_size=5, activation="relu"))
    >>> model.add(Flatten())
    >>> model.add(Dense(100, activation="relu"))
    >>> model.add(Dense(10, activation="softmax"))
    >>> model.count_params(), model.output_shape
    (1621670, (None, 10))

Channels last by default, as Keras (``backend.image_data_format()``); Keras 1 names and
arguments follow ``backend.image_dim_ordering()`` ("th" by default).  Keras 1/2 spellings
give one warning each (engine.keras.LegacyWarning) naming today's spelling.
"""
from . import backend  # noqa: I001
from ._legacy import LegacyWarning
from . import (activations, callbacks, constraints, datasets, initializers, layers, losses,
               metrics, optimizers, regularizers, utils)
from . import models
from .layers import Input
from .models import Model, Sequential

__version__ = "3 (convlab front)"

__all__ = ["models", "layers", "optimizers", "losses", "metrics", "activations",
           "initializers", "regularizers", "constraints", "callbacks", "datasets", "utils",
           "backend", "Sequential", "Model", "Input", "LegacyWarning"]
