"""keras.datasets from files already on this machine (convlab downloads nothing): mnist,
fashion_mnist and cifar10 return Keras's arrays from Keras's own cache
(``$KERAS_HOME/datasets``, else ``~/.keras/datasets``), from ``$CONVLAB_DATA``, or from a path
you give; with none present the error says which file to put where."""
from . import cifar10, fashion_mnist, mnist  # noqa: F401

__all__ = ["mnist", "fashion_mnist", "cifar10"]
