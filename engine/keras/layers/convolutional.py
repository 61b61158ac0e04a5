"""Keras 1's keras.layers.convolutional."""
from . import (AveragePooling1D, AveragePooling2D, AveragePooling3D, Conv1D, Conv2D,  # noqa: F401
               Conv3D, Convolution1D, Convolution2D, Convolution3D, MaxPooling1D, MaxPooling2D,
               MaxPooling3D)
