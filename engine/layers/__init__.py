"""Keras-style layers (channels first).  Every public layer class but Lambda is listed in
LAYERS, the registry engine.load_model uses to rebuild saved models (nothing else is ever
instantiated)."""
from .base import Layer, SymbolicTensor
from .conv import BaseConv, Conv1D, Conv2D, Conv3D
from .activations import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, Reshape
from .lambdas import Lambda
from .more import (Embedding, GroupNormalization, Identity, LayerNormalization, Rescaling,
                   UnitNormalization)
from .merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .noise import (GaussianDropout, GaussianNoise, SpatialDropout1D, SpatialDropout2D,
                    SpatialDropout3D)
from .normalization import BatchNormalization, SyncBatchNormalization
from .pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, BasePooling,
                      GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D,
                      GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, L2Pooling1D,
                      L2Pooling2D, L2Pooling3D, MaxPooling1D, MaxPooling2D, MaxPooling3D,
                      SumPooling1D, SumPooling2D, SumPooling3D)
from .reshaping import (Cropping1D, Cropping2D, Cropping3D, Permute, RepeatVector,
                        UpSampling1D, UpSampling2D, UpSampling3D, ZeroPadding1D, ZeroPadding2D,
                        ZeroPadding3D)
from .separable import DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D
from .transpose import BaseConvTranspose, Conv1DTranspose, Conv2DTranspose, Conv3DTranspose

LAYERS = {cls.__name__: cls for cls in (
    InputLayer, Conv1D, Conv2D, Conv3D, Dense, Flatten, Reshape, Dropout, Activation, ReLU,
    Add, Concatenate, BatchNormalization, SyncBatchNormalization,
    MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D, AveragePooling2D,
    AveragePooling3D, SumPooling1D, SumPooling2D, SumPooling3D, L2Pooling1D, L2Pooling2D,
    L2Pooling3D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D,
    GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D,
    # the wider catalogue (ReLU is activations.ReLU: max_value, negative_slope, threshold)
    Conv1DTranspose, Conv2DTranspose, Conv3DTranspose, DepthwiseConv1D, DepthwiseConv2D,
    SeparableConv1D, SeparableConv2D, UpSampling1D, UpSampling2D, UpSampling3D,
    ZeroPadding1D, ZeroPadding2D, ZeroPadding3D, Cropping1D, Cropping2D, Cropping3D,
    Permute, RepeatVector, LeakyReLU, ELU, PReLU, Softmax, GaussianNoise, GaussianDropout,
    SpatialDropout1D, SpatialDropout2D, SpatialDropout3D, Subtract, Multiply, Average,
    Maximum, Minimum, LayerNormalization, GroupNormalization, UnitNormalization, Rescaling,
    Identity, Embedding)}
# Lambda holds Python code: never rebuilt from a file, so not in LAYERS

__all__ = ["Layer", "SymbolicTensor", "BaseConv", "BaseConvTranspose", "BasePooling",
           "LAYERS"] + list(LAYERS) + ["Input", "Lambda"]
