"""engine.data: IDX files, digits, generated signals, one-hot, batching."""
import gzip
import sys

import numpy as np
import pytest

from engine import data


def mnist_like_bytes(images):
    """IDX bytes written by hand (not by write_idx): magic 0x00000803, dims, uint8 data."""
    n, h, w = images.shape
    return (b"\x00\x00\x08\x03" + n.to_bytes(4, "big") + h.to_bytes(4, "big")
            + w.to_bytes(4, "big") + images.astype(np.uint8).tobytes())


def test_read_idx_hand_written_plain_and_gz(tmp_path):
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    raw = mnist_like_bytes(images)
    (tmp_path / "imgs").write_bytes(raw)
    (tmp_path / "imgs.gz").write_bytes(gzip.compress(raw))
    for name in ("imgs", "imgs.gz"):
        got = data.read_idx(tmp_path / name)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, images)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = tmp_path / f"a.idx{suffix}"
    data.write_idx(path, a)
    b = data.read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    np.testing.assert_array_equal(a, b)


def test_big_endian_values(tmp_path):
    path = tmp_path / "ints"
    path.write_bytes(b"\x00\x00\x0c\x01" + (2).to_bytes(4, "big") + (1).to_bytes(4, "big")
                     + (258).to_bytes(4, "big"))
    np.testing.assert_array_equal(data.read_idx(path), [1, 258])


def test_bad_idx_files(tmp_path):
    raw = mnist_like_bytes(np.zeros((2, 3, 4)))
    bad = tmp_path / "bad"
    bad.write_bytes(raw[:-1])
    with pytest.raises(ValueError, match=r"truncated.*\(2, 3, 4\).*40 bytes.*39"):
        data.read_idx(bad)
    bad.write_bytes(raw + b"\x00")
    with pytest.raises(ValueError, match="longer than its header"):
        data.read_idx(bad)
    bad.write_bytes(raw[:10])
    with pytest.raises(ValueError, match="header needs 16 bytes"):
        data.read_idx(bad)
    bad.write_bytes(b"\x50\x4b\x03\x04" + raw[4:])
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(bad)
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        data.read_idx(bad)
    bad.write_bytes(gzip.compress(raw)[:20])
    with pytest.raises(ValueError, match="cannot read"):
        data.read_idx(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        data.read_idx(tmp_path / "missing")
    with pytest.raises(TypeError, match="dtype"):
        data.write_idx(tmp_path / "c", np.zeros(2, np.complex64))


def test_load_mnist_from_idx_files(tmp_path):
    gen = np.random.default_rng(0)
    for stem, n in (("train", 5), ("t10k", 3)):
        data.write_idx(tmp_path / f"{stem}-images-idx3-ubyte.gz",
                       gen.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        data.write_idx(tmp_path / f"{stem}-labels-idx1-ubyte",
                       gen.integers(0, 10, n).astype(np.uint8))
    (x, y), (xt, yt) = data.load_mnist(tmp_path)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
    assert y.dtype == np.int64 and xt.shape == (3, 1, 28, 28) and yt.shape == (3,)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"t10k-labels-idx1-ubyte\[\.gz\] not found"):
        data.load_mnist(tmp_path)


def test_load_digits():
    (x, y), (xt, yt) = data.load_digits()
    assert x.shape == (1438, 1, 8, 8) and xt.shape == (359, 1, 8, 8)
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    (x2, _), _ = data.load_digits()
    np.testing.assert_array_equal(x, x2)                    # seeded split
    (x3, _), _ = data.load_digits(seed=1)
    assert not np.array_equal(x, x3)


def test_load_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="needs scikit-learn.*pip install scikit-learn"):
        data.load_digits()


def test_generated_signals():
    x, y = data.make_signals(300, length=96, num_classes=3, seed=4)
    assert x.shape == (300, 1, 96) and x.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1, 2} and np.abs(x).max() <= 1.0 + 1e-6
    x2, y2 = data.make_signals(300, length=96, num_classes=3, seed=4)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    # classes differ: the class means are further apart than the noise within a class
    means = np.stack([x[y == c, 0].mean(axis=0) for c in range(3)])
    assert np.abs(means[0] - means[1]).max() > 0.3
    (xtr, _), (xte, _) = data.load_signals(100, length=32, test_size=0.25)
    assert len(xtr) == 75 and len(xte) == 25
    with pytest.raises(ValueError, match="length"):
        data.make_signals(10, length=4)


def test_load_dataset_by_name():
    (x, _), _ = data.load_dataset("signals", n_samples=40, length=32)
    assert x.shape[1:] == (1, 32)
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*digits, signals, mnist"):
        data.load_dataset("cifar")


def test_to_categorical():
    np.testing.assert_array_equal(data.to_categorical([2, 0, 1]),
                                  [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert data.to_categorical(np.array([[1], [0]]), 4).shape == (2, 4)
    with pytest.raises(ValueError, match="does not fit num_classes=2"):
        data.to_categorical([0, 2], 2)
    with pytest.raises(ValueError, match=">= 0"):
        data.to_categorical([-1, 0])
    with pytest.raises(ValueError, match="integer"):
        data.to_categorical([0.5, 1.0])


def test_batching():
    x, y = np.arange(10), np.arange(10) * 10
    batches = list(data.batch_iterator(x, y, batch_size=4))
    assert [b[0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert np.shares_memory(batches[0][0], x)                # unshuffled batches are views
    shuffled = list(data.batch_iterator(x, y, batch_size=3, shuffle=True,
                                        rng=np.random.default_rng(0)))
    xs = np.concatenate([b[0] for b in shuffled])
    assert sorted(xs.tolist()) == list(range(10)) and xs.tolist() != list(range(10))
    assert all((b[1] == b[0] * 10).all() for b in shuffled)
    assert [len(b) for b in data.batch_iterator(x, batch_size=4, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match="batch_size"):
        list(data.batch_indices(10, 0))
    with pytest.raises(ValueError, match="same length"):
        list(data.batch_iterator(x, y[:5]))
