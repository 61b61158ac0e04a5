"""Datasets and batching: the IDX format of MNIST, scikit-learn's digits, generated 1-D signals.

Images come out channels first, float32 in [0, 1]: (N, 1, H, W); signals (N, 1, length);
labels int64.  Nothing here downloads anything.

    >>> import engine
    >>> (x_train, y_train), (x_test, y_test) = engine.data.load_digits()   # doctest: +SKIP
    >>> x_train.shape, x_train.dtype                                         # doctest: +SKIP
    ((1438, 1, 8, 8), dtype('float32'))
"""
from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from .init import rng as _engine_rng

__all__ = ["read_idx", "write_idx", "load_mnist", "mnist_arrays", "keras_datasets_dir",
           "load_digits", "make_signals",
           "load_signals", "load_dataset", "DATASET_NAMES", "to_categorical", "batch_indices",
           "batch_iterator", "train_test_split"]

# IDX type codes -> big-endian numpy dtypes
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_CODES = {np.dtype(v).newbyteorder("=").str: k for k, v in _IDX_TYPES.items()}


def _open(path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


# Deflate expands at most 1032:1; a gzip file shorter than its header's promise divided by
# this is truncated before a byte of it is decompressed.
_GZIP_MAX_RATIO = 1032
_CHUNK = 1 << 24


def _read_exactly(f, n, path):
    """``n`` bytes from ``f`` in chunks (memory follows the data that arrives, never a size
    a header merely claims), then one more read that must find the end of the file."""
    parts, left = [], n
    while left:
        part = f.read(min(left, _CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    if left:
        return b"".join(parts), n - left, False
    return b"".join(parts), n, not f.read(1)


def read_idx(path):
    """Read an IDX file (the format MNIST is distributed in), plain or gzip-compressed.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dims, each dim as a big-endian uint32, then the
    data in C order, big-endian.

    The header is checked first, against the file's size where it can be known (a plain
    file's length; a gzip file's 1032:1 bound), and no more data is ever read than the header
    promises: a damaged or hostile file costs no more memory than its honest contents.

    Returns
    -------
    ndarray of the stored shape, native byte order.

    Examples
    --------
    >>> images = read_idx("train-images-idx3-ubyte.gz")          # doctest: +SKIP
    >>> images.shape, images.dtype                               # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    path = os.fspath(path)
    try:
        if os.path.isdir(path):
            raise ValueError(f"read_idx: {path!r} is a directory, not an IDX file")
        size = os.stat(path).st_size if os.path.isfile(path) else None
        with _open(path) as f:
            gz = isinstance(f, gzip.GzipFile)
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
                raise ValueError(f"read_idx: {path!r} is not an IDX file: expected a header "
                                 f"00 00 <type code in {sorted(_IDX_TYPES)}> <ndim>, received "
                                 f"{head.hex(' ') or 'an empty file'}")
            dtype, ndim = _IDX_TYPES[head[2]], head[3]
            header = 4 + 4 * ndim
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise ValueError(f"read_idx: {path!r} is truncated: header needs {header} "
                                 f"bytes for {ndim} dims, file has {4 + len(dims)}")
            shape = tuple(int(d) for d in np.frombuffer(dims, ">u4", ndim))
            count = math.prod(shape)
            expected = header + count * dtype.itemsize
            if size is not None and not gz and size != expected:
                what = "truncated" if size < expected else "longer than its header says"
                raise ValueError(f"read_idx: {path!r} is {what}: shape {shape} of "
                                 f"{dtype.name} needs {expected} bytes, file has {size}")
            if size is not None and gz and expected > size * _GZIP_MAX_RATIO + 1024:
                raise ValueError(f"read_idx: {path!r} is truncated: shape {shape} of "
                                 f"{dtype.name} needs {expected} bytes, more than its {size} "
                                 f"compressed bytes can hold")
            raw, got, at_end = _read_exactly(f, expected - header, path)
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise FileNotFoundError(f"read_idx: no such file: {path!r}") from None
        raise ValueError(f"read_idx: cannot read {path!r}: {e}") from None
    if got < expected - header:
        raise ValueError(f"read_idx: {path!r} is truncated: shape {shape} of {dtype.name} "
                         f"needs {expected} bytes, file has {header + got}")
    if not at_end:
        raise ValueError(f"read_idx: {path!r} is longer than its header says: shape {shape} "
                         f"of {dtype.name} needs {expected} bytes")
    data = np.frombuffer(raw, dtype).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends with .gz).

    >>> write_idx("labels-idx1-ubyte", np.arange(10, dtype=np.uint8))    # doctest: +SKIP
    """
    a = np.asarray(array)
    code = _IDX_CODES.get(a.dtype.newbyteorder("=").str)
    if code is None:
        raise TypeError(f"write_idx: dtype must be one of uint8, int8, int16, int32, float32, "
                        f"float64, received {a.dtype}")
    if a.ndim > 255:
        raise ValueError(f"write_idx: at most 255 dims, received {a.ndim}")
    payload = (bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, ">u4").tobytes()
               + np.ascontiguousarray(a, _IDX_TYPES[code]).tobytes())
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


_MNIST_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
                "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def keras_datasets_dir():
    """Keras's dataset cache: ``$KERAS_HOME/datasets``, else ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def _idx_arrays(directory, files, where):
    """{key: array} from the IDX files (plain or .gz) named by ``files`` in ``directory``."""
    arrays = {}
    for key, stem in files.items():
        for name in (stem, stem + ".gz"):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                arrays[key] = read_idx(path)
                break
        else:
            raise FileNotFoundError(
                f"{where}: {stem}[.gz] not found in {directory!r}; it needs the four IDX "
                f"files {', '.join(files.values())}")
    return arrays


def _has_idx(directory, files):
    return all(os.path.exists(os.path.join(directory, stem)) or
               os.path.exists(os.path.join(directory, stem + ".gz")) for stem in files.values())


def _npz_arrays(path, where):
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as e:
        raise ValueError(f"{where}: {path!r} lacks the array {e}; Keras's mnist.npz holds "
                         f"x_train, y_train, x_test, y_test") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"{where}: cannot read {path!r}: {e}") from None


def mnist_arrays(path="mnist.npz", where="mnist"):
    """MNIST as Keras returns it, from files already on this machine (nothing is downloaded):
    ``((x_train, y_train), (x_test, y_test))``, uint8 images (60000, 28, 28) / (10000, 28,
    28) and uint8 labels.

    Looked for, in order: ``path`` itself (Keras's .npz, or a directory of the four IDX
    files); Keras's cache ``$KERAS_HOME/datasets/<path>`` then ``~/.keras/datasets/<path>``;
    ``$CONVLAB_DATA`` (the IDX files, or mnist.npz, in that directory or its ``mnist/``).
    """
    path = os.fspath(path)
    looked = []
    candidates = [path]
    if not os.path.isabs(path):
        home = os.environ.get("KERAS_HOME")
        if home:
            candidates.append(os.path.join(home, "datasets", path))
        candidates.append(os.path.join(os.path.expanduser("~"), ".keras", "datasets", path))
    data_dir = os.environ.get("CONVLAB_DATA")
    if data_dir:
        candidates += [data_dir, os.path.join(data_dir, "mnist"),
                       os.path.join(data_dir, "mnist.npz")]
    for c in candidates:
        looked.append(c)
        if os.path.isfile(c):
            a = _npz_arrays(c, where)
            break
        if os.path.isdir(c) and _has_idx(c, _MNIST_FILES):
            a = _idx_arrays(c, _MNIST_FILES, where)
            break
    else:
        raise FileNotFoundError(
            f"{where}: MNIST is not on this machine (convlab downloads nothing). Put Keras's "
            f"mnist.npz (https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
            f"mnist.npz) at {os.path.join(keras_datasets_dir(), 'mnist.npz')}, or the four "
            f"IDX files ({', '.join(s + '[.gz]' for s in _MNIST_FILES.values())}) in a "
            f"directory named by $CONVLAB_DATA or given as path=. Looked in: "
            f"{', '.join(looked)}")
    for part in ("train", "test"):
        if len(a["x_" + part]) != len(a["y_" + part]):
            raise ValueError(f"{where}: {len(a['x_' + part])} {part} images but "
                             f"{len(a['y_' + part])} labels")
    return (a["x_train"], a["y_train"]), (a["x_test"], a["y_test"])


def load_mnist(directory=None):
    """MNIST from the four IDX files in ``directory`` (plain or .gz; not downloaded here), or
    with ``directory=None`` from Keras's cache or ``$CONVLAB_DATA`` (see
    :func:`mnist_arrays`).

    Returns ``((x_train, y_train), (x_test, y_test))`` with images (N, 1, 28, 28) float32 in
    [0, 1] and labels int64.
    """
    if directory is None:
        arrays = mnist_arrays(where="load_mnist")
        return tuple((_images(x), y.astype(np.int64)) for x, y in arrays)
    arrays = {}
    for key, stem in _MNIST_FILES.items():
        for name in (stem, stem + ".gz"):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                arrays[key] = read_idx(path)
                break
        else:
            raise FileNotFoundError(
                f"load_mnist: {stem}[.gz] not found in {directory!r}; it needs the four MNIST "
                f"IDX files {', '.join(_MNIST_FILES.values())} (from "
                f"https://yann.lecun.com/exdb/mnist/ or a mirror)")
    out = []
    for part in ("train", "test"):
        x, y = arrays["x_" + part], arrays["y_" + part]
        if x.ndim != 3:
            raise ValueError(f"load_mnist: {part} images must be 3-D (N, height, width), "
                             f"received shape {x.shape}")
        if y.ndim != 1:
            raise ValueError(f"load_mnist: {part} labels must be 1-D (N,), received shape "
                             f"{y.shape}")
        if y.dtype.kind not in "iu":
            raise ValueError(f"load_mnist: {part} labels must be integers, received "
                             f"{y.dtype}")
        if len(x) != len(y):
            raise ValueError(f"load_mnist: {len(x)} {part} images but {len(y)} labels")
        out.append((_images(x), y.astype(np.int64)))
    return tuple(out)


def _images(x):
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    return (x.astype(np.float32) / np.float32(scale))[:, None]


def train_test_split(x, y, test_size=0.2, seed=0):
    """Shuffle with ``seed`` and split off a ``test_size`` fraction (0 < test_size < 1)."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"train_test_split: test_size must be in (0, 1), received {test_size!r}")
    if len(x) != len(y):
        raise ValueError(f"train_test_split: x and y must have the same length, received "
                         f"{len(x)} and {len(y)}")
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(len(x) * test_size)))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def load_digits(test_size=0.2, seed=0):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

    Returns ``((x_train, y_train), (x_test, y_test))``: images (N, 1, 8, 8) float32 in [0, 1],
    labels int64, split with a seeded shuffle.  Needs scikit-learn (the ``data`` extra).
    """
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise ImportError("load_digits needs scikit-learn, which is not installed; install it "
                          "with `pip install scikit-learn` (or `pip install convlab[data]`)") \
            from None
    d = sk_load_digits()
    x = (d.images.astype(np.float32) / np.float32(16.0))[:, None]
    return train_test_split(x, d.target.astype(np.int64), test_size, seed)


def make_signals(n_samples=1200, length=128, num_classes=4, noise=0.05, seed=0):
    """Generated spectra-like 1-D signals: (x (N, 1, length) float32, y (N,) int64).

    Class c places Gaussian peaks at its own set of positions (a few per class, shared
    partly between classes so that the task needs the peak pattern, not one peak); every
    sample jitters the positions (+-2% of the length), widths and heights, adds a slowly
    varying baseline and Gaussian noise of std ``noise``, then is scaled to max 1.

    >>> x, y = make_signals(10, length=64, num_classes=2)
    >>> x.shape, y.shape
    ((10, 1, 64), (10,))
    """
    for name, v, lo in (("n_samples", n_samples, 1), ("length", length, 16),
                        ("num_classes", num_classes, 2)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise ValueError(f"make_signals: {name} must be an int >= {lo}, received {v!r}")
    gen = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, length)
    # Peak positions per class: a shared peak plus two class-specific ones
    shared = gen.uniform(0.1, 0.9)
    centres = [np.concatenate(([shared], gen.uniform(0.08, 0.92, 2))) for _ in range(num_classes)]
    y = gen.integers(0, num_classes, n_samples)
    x = np.empty((n_samples, 1, length), dtype=np.float32)
    for i, c in enumerate(y):
        pos = centres[c] + gen.normal(0.0, 0.02, 3)
        width = gen.uniform(0.01, 0.03, 3)
        height = gen.uniform(0.5, 1.0, 3)
        sig = (height[:, None] * np.exp(-0.5 * ((grid[None] - pos[:, None]) / width[:, None])
                                        ** 2)).sum(axis=0)
        slope, offset = gen.normal(0.0, 0.1), gen.uniform(0.0, 0.2)
        sig += offset + slope * grid + gen.normal(0.0, noise, length)
        x[i, 0] = sig / max(np.abs(sig).max(), 1e-6)
    return x, y.astype(np.int64)


def load_signals(n_samples=1200, length=128, num_classes=4, noise=0.05, test_size=0.2,
                 seed=0):
    """:func:`make_signals` split into ``((x_train, y_train), (x_test, y_test))``."""
    x, y = make_signals(n_samples, length, num_classes, noise, seed)
    return train_test_split(x, y, test_size, seed)


DATASET_NAMES = ("digits", "signals", "mnist")


def load_dataset(name, **kwargs):
    """Load a dataset by name: "digits", "signals" or "mnist" (``directory=`` of the IDX
    files, or by default Keras's cache / ``$CONVLAB_DATA``: see :func:`mnist_arrays`).

    Returns ``((x_train, y_train), (x_test, y_test))``.
    """
    loaders = {"digits": load_digits, "signals": load_signals, "mnist": load_mnist}
    if name not in loaders:
        raise ValueError(f"load_dataset: unknown dataset {name!r}; valid names: "
                         f"{', '.join(DATASET_NAMES)}")
    return loaders[name](**kwargs)


def to_categorical(y, num_classes=None, dtype=np.float32):
    """One-hot encode integer labels: (N,) -> (N, num_classes).

    >>> to_categorical([0, 2], 3)
    array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"to_categorical: y must have shape (N,), received {y.shape}")
    if y.size and (y.dtype.kind not in "iub" and not np.all(np.equal(np.mod(y, 1), 0))):
        raise ValueError("to_categorical: y must hold integer class labels")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, received {int(y.min())}")
    n = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.size and y.max() >= n:
        raise ValueError(f"to_categorical: label {int(y.max())} does not fit num_classes={n}")
    out = np.zeros((len(y), n), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out


def batch_indices(n, batch_size, shuffle=False, rng=None, drop_last=False):
    """Yield the sample indices of each batch: slices in order, or index arrays of a
    permutation when ``shuffle`` (drawn from ``rng``, default the engine's generator).

    >>> [len(range(10)[b]) for b in batch_indices(10, 4)]
    [4, 4, 2]
    """
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, received {batch_size!r}")
    if shuffle:
        order = (_engine_rng() if rng is None else rng).permutation(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        yield order[start:end] if shuffle else slice(start, end)


def batch_iterator(x, y=None, batch_size=32, shuffle=False, rng=None, drop_last=False):
    """Iterate over mini-batches: yields ``xb`` or ``(xb, yb)``.

    Unshuffled batches are views (no copy); shuffled ones are gathered copies.

    >>> xs = np.arange(10)
    >>> [b.tolist() for b in batch_iterator(xs, batch_size=4)]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    """
    if y is not None and len(x) != len(y):
        raise ValueError(f"batch_iterator: x and y must have the same length, received "
                         f"{len(x)} and {len(y)}")
    for idx in batch_indices(len(x), batch_size, shuffle, rng, drop_last):
        yield x[idx] if y is None else (x[idx], y[idx])
