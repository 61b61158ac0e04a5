"""keras.datasets.mnist.

    >>> from engine.keras.datasets import mnist
    >>> (x_train, y_train), (x_test, y_test) = mnist.load_data()   # doctest: +SKIP
    >>> x_train.shape, x_train.dtype                                  # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
"""
from ...data import mnist_arrays

__all__ = ["load_data"]


def load_data(path="mnist.npz"):
    """((x_train, y_train), (x_test, y_test)) as Keras returns them: uint8 images (60000, 28,
    28) and (10000, 28, 28), uint8 labels.

    ``path``: Keras's mnist.npz (looked for as given, then in ``$KERAS_HOME/datasets/`` and
    ``~/.keras/datasets/``), or a directory of the four IDX files; ``$CONVLAB_DATA`` may
    name such a directory.  Nothing is downloaded: with no file present the FileNotFoundError
    says which file to put where.
    """
    return mnist_arrays(path, where="mnist.load_data")
