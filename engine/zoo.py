"""Named example models, uncompiled, for the CLI (``convlab train/summary``) and tutorials.

    >>> import engine
    >>> engine.zoo.get_model("mnist", (1, 28, 28), 10).count_params()
    1621670

"mnist"         the course's MNIST net: Conv2D 20 5x5 relu, Conv2D 40 5x5 relu, Flatten,
                Dense 100 relu, Dense num_classes softmax
"small_cnn"     two 3x3 "same" convolutions with max pooling; trains on 8x8 digits in seconds
"small_resnet"  functional Model: a stem conv and two residual blocks with
                BatchNormalization, global average pooling, softmax
"signal1d"      Conv1D net for (1, length) signals such as engine.data.load_signals()
"""
from __future__ import annotations

from .graph import Model, Sequential
from .layers import (Activation, Add, BatchNormalization, Conv1D, Conv2D, Dense, Flatten,
                     GlobalAveragePooling1D, GlobalAveragePooling2D, Input, MaxPooling1D,
                     MaxPooling2D, ReLU)
from .layers.base import check_shape_arg, is_int

__all__ = ["get_model", "MODEL_NAMES"]


def _mnist(input_shape, num_classes):
    return Sequential([
        Conv2D(20, 5, activation="relu", input_shape=input_shape),
        Conv2D(40, 5, activation="relu"),
        Flatten(),
        Dense(100, activation="relu"),
        Dense(num_classes, activation="softmax"),
    ], name="mnist")


def _small_cnn(input_shape, num_classes):
    return Sequential([
        Conv2D(16, 3, padding="same", activation="relu", kernel_initializer="he_uniform",
               input_shape=input_shape),
        MaxPooling2D(2),
        Conv2D(32, 3, padding="same", activation="relu", kernel_initializer="he_uniform"),
        Flatten(),
        Dense(64, activation="relu", kernel_initializer="he_uniform"),
        Dense(num_classes, activation="softmax"),
    ], name="small_cnn")


def _residual_block(x, filters, name):
    y = Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = BatchNormalization(name=f"{name}_bn1")(y)
    y = ReLU(name=f"{name}_relu1")(y)
    y = Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = BatchNormalization(name=f"{name}_bn2")(y)
    return ReLU(name=f"{name}_out")(Add(name=f"{name}_add")([x, y]))


def _small_resnet(input_shape, num_classes, filters=16, blocks=2):
    x = Input(input_shape, name="input")
    y = Conv2D(filters, 3, padding="same", use_bias=False, name="stem_conv")(x)
    y = Activation("relu", name="stem_relu")(BatchNormalization(name="stem_bn")(y))
    for i in range(blocks):
        y = _residual_block(y, filters, f"block{i + 1}")
    y = GlobalAveragePooling2D(name="pool")(y)
    return Model(x, Dense(num_classes, activation="softmax", name="classifier")(y),
                 name="small_resnet")


def _signal1d(input_shape, num_classes):
    return Sequential([
        Conv1D(16, 7, padding="same", activation="relu", input_shape=input_shape),
        MaxPooling1D(2),
        Conv1D(32, 5, padding="same", activation="relu"),
        MaxPooling1D(2),
        Conv1D(32, 3, padding="same", activation="relu"),
        GlobalAveragePooling1D(),
        Dense(num_classes, activation="softmax"),
    ], name="signal1d")


_BUILDERS = {"mnist": _mnist, "small_cnn": _small_cnn, "small_resnet": _small_resnet,
             "signal1d": _signal1d}
MODEL_NAMES = tuple(_BUILDERS)
_DEFAULT_SHAPES = {"mnist": (1, 28, 28), "small_cnn": (1, 8, 8), "small_resnet": (1, 8, 8),
                   "signal1d": (1, 128)}


def get_model(name, input_shape=None, num_classes=10):
    """A fresh, uncompiled model called ``name`` (see the module docstring).

    Parameters
    ----------
    name : one of MODEL_NAMES
    input_shape : per-sample shape, channels first (default: the model's usual input,
        mnist (1, 28, 28), small_cnn/small_resnet (1, 8, 8), signal1d (1, 128))
    num_classes : int >= 2

    >>> get_model("small_resnet", (1, 8, 8), 10).output_shape
    (None, 10)
    """
    if name not in _BUILDERS:
        raise ValueError(f"get_model: unknown model {name!r}; valid names: "
                         f"{', '.join(MODEL_NAMES)}")
    if not is_int(num_classes) or num_classes < 2:
        raise ValueError(f"get_model: num_classes must be an int >= 2, received "
                         f"{num_classes!r}")
    shape = _DEFAULT_SHAPES[name] if input_shape is None else \
        check_shape_arg("get_model", "input_shape", input_shape)
    want = 2 if name == "signal1d" else 3
    if len(shape) != want:
        raise ValueError(f"get_model: model {name!r} needs an input_shape of {want} dims "
                         f"(channels, {'length' if want == 2 else 'height, width'}), received "
                         f"{shape}")
    return _BUILDERS[name](shape, int(num_classes))
