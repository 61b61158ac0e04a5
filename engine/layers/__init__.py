"""Keras-style layers (channels first).  Every public layer class is listed in LAYERS, the
registry engine.load_model uses to rebuild saved models (nothing else is ever instantiated)."""
from .base import Layer, SymbolicTensor
from .conv import BaseConv, Conv1D, Conv2D, Conv3D
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, ReLU, Reshape
from .merge import Add, Concatenate
from .normalization import BatchNormalization, SyncBatchNormalization
from .pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, BasePooling,
                      GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D,
                      GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, L2Pooling1D,
                      L2Pooling2D, L2Pooling3D, MaxPooling1D, MaxPooling2D, MaxPooling3D,
                      SumPooling1D, SumPooling2D, SumPooling3D)

LAYERS = {cls.__name__: cls for cls in (
    InputLayer, Conv1D, Conv2D, Conv3D, Dense, Flatten, Reshape, Dropout, Activation, ReLU,
    Add, Concatenate, BatchNormalization, SyncBatchNormalization,
    MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D, AveragePooling2D,
    AveragePooling3D, SumPooling1D, SumPooling2D, SumPooling3D, L2Pooling1D, L2Pooling2D,
    L2Pooling3D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D,
    GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D)}

__all__ = ["Layer", "SymbolicTensor", "BaseConv", "BasePooling", "LAYERS"] + list(LAYERS) + \
    ["Input"]
