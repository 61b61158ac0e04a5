"""keras.datasets.cifar10 from the files Keras or the CIFAR site leave on disk: the "python
version" batches (``cifar-10-batches-py``, read with an unpickler that admits only numpy
arrays, lists, dicts and bytes) or the "binary version" (``cifar-10-batches-bin``)."""
from __future__ import annotations

import io
import os
import pickle

import numpy as np

from ... import data as _data
from .. import backend

__all__ = ["load_data"]


class _ArraysOnly(pickle.Unpickler):
    """Unpickles the CIFAR batches (dicts of bytes, lists and numpy arrays) and nothing
    else: any other global raises."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray",
                                                            "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"cifar10: refusing to load {module}.{name} from a "
                                     f"batch file (only numpy arrays are expected)")


def _py_batch(path):
    with open(path, "rb") as f:
        d = _ArraysOnly(io.BytesIO(f.read()), encoding="bytes").load()
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return x, np.asarray(d["labels"], dtype=np.uint8)


def _bin_batch(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 1 + 3 * 32 * 32)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].copy()


def _candidates(path):
    base = [path] if path is not None else []
    roots = [_data.keras_datasets_dir(), os.path.join(os.path.expanduser("~"), ".keras",
                                                      "datasets")]
    if os.environ.get("CONVLAB_DATA"):
        roots.append(os.environ["CONVLAB_DATA"])
    for r in roots:
        base += [os.path.join(r, "cifar-10-batches-py-target", "cifar-10-batches-py"),
                 os.path.join(r, "cifar-10-batches-py"), os.path.join(r, "cifar-10-batches-bin")]
    return base


def load_data(path=None):
    """((x_train, y_train), (x_test, y_test)): uint8 images (50000, 32, 32, 3) and
    (10000, 32, 32, 3) -- (N, 3, 32, 32) when backend.image_data_format() is channels_first,
    as Keras -- and uint8 labels of shape (N, 1)."""
    looked = _candidates(path)
    for d in looked:
        py = [os.path.join(d, f"data_batch_{i}") for i in range(1, 6)] + \
            [os.path.join(d, "test_batch")]
        binary = [os.path.join(d, f"data_batch_{i}.bin") for i in range(1, 6)] + \
            [os.path.join(d, "test_batch.bin")]
        if all(os.path.isfile(p) for p in py):
            batches = [_py_batch(p) for p in py]
            break
        if all(os.path.isfile(p) for p in binary):
            batches = [_bin_batch(p) for p in binary]
            break
    else:
        raise FileNotFoundError(
            f"cifar10.load_data: CIFAR-10 is not on this machine (convlab downloads nothing). "
            f"Extract https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (or the binary "
            f"version) so that data_batch_1 ... data_batch_5 and test_batch lie in "
            f"{os.path.join(_data.keras_datasets_dir(), 'cifar-10-batches-py')}. Looked in: "
            f"{', '.join(looked)}")
    x_train = np.concatenate([b[0] for b in batches[:5]])
    y_train = np.concatenate([b[1] for b in batches[:5]]).reshape(-1, 1)
    x_test, y_test = batches[5][0], batches[5][1].reshape(-1, 1)
    if backend.image_data_format() == "channels_last":
        x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    return (x_train, y_train), (x_test, y_test)
