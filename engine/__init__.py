"""convlab engine: Tensor + autograd tape, differentiable ops, Keras-style layers and models,
training, data and save/load.  engine's own layers are channels first by default; Keras 1 / 2 /
3 course code runs on :mod:`engine.keras` with only its import line changed
(``from keras.X import Y`` -> ``from engine.keras.X import Y``)::

    >>> import engine
    >>> from engine.layers import Conv2D, Flatten, Dense
    >>> model = engine.Sequential([
    ...     Conv2D(20, 5, activation="relu", input_shape=(1, 28, 28)),
    ...     Conv2D(40, 5, activation="relu"), Flatten(),
    ...     Dense(100, activation="relu"), Dense(10, activation="softmax")])
    >>> model.compile(engine.optimizers.SGD(0.01), "categorical_crossentropy",
    ...               metrics=["accuracy"])
    >>> model.count_params()
    1621670
"""
import kernels  # noqa: F401,I001
from . import functional
from .autograd import GradcheckError, gradcheck, is_grad_enabled, no_grad, set_num_threads
from .tensor import Tensor
from . import data, device, init, layers, losses, metrics
from . import optim
from . import optim as optimizers
from .graph import Model, Sequential
from .init import set_seed
from .io import ModelFileError, load_model
from .layers import Input
from .training import Callback, EarlyStopping, History, ModelCheckpoint
from . import callbacks  # engine.callbacks.EarlyStopping, ReduceLROnPlateau, ... as in Keras
from . import constraints, regularizers, schedules
from . import zoo

__all__ = ["Tensor", "no_grad", "is_grad_enabled", "gradcheck", "GradcheckError",
           "set_num_threads", "set_seed", "device", "functional", "layers", "optimizers", "optim",
           "losses", "metrics", "init", "data", "zoo", "callbacks", "regularizers",
           "constraints", "schedules", "Sequential", "Model",
           "Input", "load_model", "ModelFileError", "Callback", "History", "EarlyStopping",
           "ModelCheckpoint"]
