"""Shared fixtures of the engine.keras tests: a temporary KERAS_HOME holding a generated
mnist.npz with Keras's array names, shapes and dtypes, and a clean Keras front state."""
import numpy as np
import pytest

from engine.keras import backend


def write_mnist_npz(path, n_train=60000, n_test=10000, seed=0):
    """Keras's mnist.npz layout: uint8 images (N, 28, 28) and uint8 labels.  Each class
    lights a band of rows (so a small net can learn it), plus noise."""
    gen = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        y = gen.integers(0, 10, n).astype(np.uint8)
        x = gen.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for c in range(10):
            x[y == c, 2 + 2 * c:4 + 2 * c, 4:24] = 250
        arrays["x_" + part], arrays["y_" + part] = x, y
    np.savez(path, **arrays)
    return arrays


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """$KERAS_HOME with datasets/mnist.npz (60,000 + 10,000 generated images)."""
    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    write_mnist_npz(home / "datasets" / "mnist.npz")
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.delenv("CONVLAB_DATA", raising=False)
    return home


@pytest.fixture(autouse=True)
def front_state(monkeypatch, tmp_path):
    """Default formats and layer names for every test; no user keras.json."""
    if "KERAS_HOME" not in __import__("os").environ:
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    backend._state.update(format=None, ordering="th")
    backend.clear_session()
    yield
    backend._state.update(format=None, ordering="th")
