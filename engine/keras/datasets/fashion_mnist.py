"""keras.datasets.fashion_mnist: the four IDX files Keras keeps in
``~/.keras/datasets/fashion-mnist/`` (or ``$KERAS_HOME/datasets/fashion-mnist/``, or
``$CONVLAB_DATA/fashion-mnist/``)."""
from __future__ import annotations

import os

from ... import data as _data

__all__ = ["load_data"]

_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
          "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def load_data(path=None):
    """((x_train, y_train), (x_test, y_test)): uint8 images (60000, 28, 28) / (10000, 28, 28)
    and uint8 labels, from ``path`` (a directory of the IDX files) or the places above."""
    dirs = [path] if path is not None else []
    dirs.append(os.path.join(_data.keras_datasets_dir(), "fashion-mnist"))
    dirs.append(os.path.join(os.path.expanduser("~"), ".keras", "datasets", "fashion-mnist"))
    if os.environ.get("CONVLAB_DATA"):
        dirs.append(os.path.join(os.environ["CONVLAB_DATA"], "fashion-mnist"))
    for d in dirs:
        if os.path.isdir(d) and _data._has_idx(d, _FILES):
            a = _data._idx_arrays(d, _FILES, "fashion_mnist.load_data")
            return (a["x_train"], a["y_train"]), (a["x_test"], a["y_test"])
    raise FileNotFoundError(
        f"fashion_mnist.load_data: Fashion-MNIST is not on this machine (convlab downloads "
        f"nothing). Put its four IDX files ({', '.join(s + '.gz' for s in _FILES.values())}, "
        f"from https://github.com/zalandoresearch/fashion-mnist) in "
        f"{os.path.join(_data.keras_datasets_dir(), 'fashion-mnist')}. Looked in: "
        f"{', '.join(dirs)}")
