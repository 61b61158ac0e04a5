"""keras.layers.pooling."""
from . import (AveragePooling1D, AveragePooling2D, AveragePooling3D,  # noqa: F401
               GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D,
               GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPooling1D,
               MaxPooling2D, MaxPooling3D)
