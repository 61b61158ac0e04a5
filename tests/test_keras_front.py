"""engine.keras behaviours checked against hand-computed values: namespace, data formats,
Keras 1 translations and their errors, weight layouts, offline datasets, BatchNormalization,
optimizers' lr/decay, regularizers and constraints, failed adds, serialisation."""
import gzip
import json
import os
import pickle
import warnings

import numpy as np
import pytest

import engine
import engine.keras as keras
from engine.keras import LegacyWarning, backend, layers, models, optimizers
from tests.keras_helpers import front_state, keras_home, write_mnist_npz  # noqa: F401


def test_namespace_mirrors_keras():
    for name in ("models", "layers", "optimizers", "losses", "metrics", "activations",
                 "initializers", "regularizers", "constraints", "callbacks", "datasets",
                 "utils", "backend"):
        assert hasattr(keras, name), name
    from engine.keras.datasets import cifar10, fashion_mnist, mnist  # noqa: F401
    from engine.keras.layers.convolutional import Convolution2D  # noqa: F401
    from engine.keras.layers.core import Dense  # noqa: F401
    from engine.keras.optimizers import Adam, schedules  # noqa: F401
    from engine.keras.utils import np_utils, to_categorical  # noqa: F401
    assert keras.Sequential is models.Sequential and keras.Model is models.Model
    assert issubclass(layers.Conv2D, engine.layers.Conv2D)   # a front, not a second engine
    assert keras.Input((3, 4)).shape == (None, 3, 4)


# -- data formats ------------------------------------------------------------------------

def test_default_format_follows_backend_and_keras_json(tmp_path, monkeypatch):
    assert layers.Conv2D(2, 3).data_format == "channels_last"
    backend.set_image_data_format("channels_first")
    assert layers.Conv2D(2, 3).data_format == "channels_first"
    backend._state["format"] = None
    home = tmp_path / "kh"
    home.mkdir()
    (home / "keras.json").write_text(json.dumps({"image_data_format": "channels_first"}))
    monkeypatch.setenv("KERAS_HOME", str(home))
    assert backend.image_data_format() == "channels_first"
    assert layers.MaxPooling2D().data_format == "channels_first"
    with pytest.raises(ValueError, match="channels_first.*channels_last"):
        backend.set_image_data_format("nhwc")


def test_channels_last_and_first_compute_the_same():
    """The same kernels on transposed data give transposed outputs (conv, pooling, BN,
    global pooling), and Flatten(channels_first) orders like channels_last."""
    gen = np.random.default_rng(0)
    x = gen.standard_normal((2, 3, 9, 8)).astype(np.float32)

    def net(fmt):
        return [engine.layers.Conv2D(4, 3, strides=2, padding="same", data_format=fmt),
                engine.layers.MaxPooling2D(2, padding="same", data_format=fmt),
                engine.layers.BatchNormalization(data_format=fmt)]

    cf, cl = net("channels_first"), net("channels_last")
    a, b = x, x.transpose(0, 2, 3, 1)
    for la, lb in zip(cf, cl):
        a = la(a, training=True)
        lb(b, training=True) if not lb.built else None
        lb.set_weights(la.get_weights())      # engine layouts do not depend on the format
        b = lb(b, training=True)
    np.testing.assert_allclose(b.numpy(), a.numpy().transpose(0, 2, 3, 1), rtol=1e-5,
                               atol=1e-5)
    ga = engine.layers.GlobalAveragePooling2D()(a).numpy()
    gb = engine.layers.GlobalAveragePooling2D(data_format="channels_last")(b).numpy()
    np.testing.assert_allclose(ga, gb, rtol=1e-5, atol=1e-6)
    fa = engine.layers.Flatten(data_format="channels_first")(a).numpy()
    fb = engine.layers.Flatten(data_format="channels_last")(b).numpy()
    np.testing.assert_allclose(fa, fb, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(engine.layers.Flatten()(a).numpy(),
                                  a.numpy().reshape(2, -1))      # engine's default: stored


def test_channels_last_looking_shape_on_a_channels_first_layer_says_so():
    model = engine.Sequential()
    with pytest.raises(ValueError) as e:
        model.add(engine.layers.Conv2D(20, 5, input_shape=(28, 28, 1)))
    msg = str(e.value)
    assert "(None, 28, 28, 1) looks channels-last" in msg
    assert "data_format='channels_last'" in msg and "input_shape=(1, 28, 28)" in msg
    with pytest.raises(ValueError, match="looks channels-last"):
        engine.layers.MaxPooling2D(2)(np.zeros((1, 28, 28, 1), np.float32))


def test_failed_add_leaves_the_model_as_it_was(capsys):
    model = models.Sequential()
    model.add(layers.Conv2D(4, 3, input_shape=(8, 8, 1)))
    before = (model.count_params(), model.output_shape, len(model.layers))
    bad = layers.Conv2D(2, 9)                     # kernel larger than the 6x6 maps
    with pytest.raises(ValueError, match="output would be empty"):
        model.add(bad)
    assert (model.count_params(), model.output_shape, len(model.layers)) == before
    assert not bad.built and bad.weights == []
    model.add(layers.Flatten())
    model.add(layers.Dense(2))
    model.summary()
    assert "conv2d_1" not in capsys.readouterr().out
    assert model.output_shape == (None, 2)
    first = models.Sequential()
    with pytest.raises(ValueError):
        first.add(engine.layers.Conv2D(2, 5, input_shape=(3, 3, 1)))
    assert not first.built and first.layers == []


# -- Keras 1 arguments -------------------------------------------------------------------

def test_unknown_keyword_names_the_layer_and_the_new_spelling():
    with pytest.raises(TypeError, match=r"Dense: unknown argument 'border_mode'; in Keras 2 "
                                        r"and later it is padding="):
        layers.Dense(3, border_mode="same")
    with pytest.raises(TypeError, match=r"Conv2D: unknown argument 'kernal_size'; did you "
                                        r"mean 'kernel_size'"):
        layers.Conv2D(3, kernal_size=3)
    with pytest.raises(TypeError, match="fit: unknown argument 'nb_epochs'"):
        models.Sequential([layers.Dense(1, input_shape=(2,))]).fit(
            np.zeros((2, 2)), np.zeros(2), nb_epochs=1)


def test_each_legacy_argument_warns_once_and_translates():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conv = layers.Conv2D(nb_filter=8, nb_row=3, nb_col=2, subsample=(2, 1),
                             border_mode="same", bias=False, dim_ordering="tf")
    msgs = [str(w.message) for w in caught if w.category is LegacyWarning]
    assert len(msgs) == 6 and all(w.filename == __file__ for w in caught)
    assert conv.filters == 8 and conv.kernel_size == (3, 2) and conv.strides == (2, 1)
    assert conv.padding == "same" and conv.use_bias is False
    assert conv.data_format == "channels_last"
    with pytest.warns(LegacyWarning, match="pool_length"):
        pool = layers.MaxPooling1D(pool_length=3, stride=1)
    assert pool.pool_size == (3,) and pool.strides == (1,)
    x, y = keras.Input((4,)), None
    y = layers.Dense(2)(x)
    with pytest.warns(LegacyWarning, match="'input'.*inputs="):
        model = models.Model(input=x, output=y)
    assert model.output_shape == (None, 2)


def test_keras1_pooling_follows_its_convolution_but_keras3_code_does_not():
    with pytest.warns(LegacyWarning):
        conv = layers.Convolution2D(4, 3, 3, input_shape=(1, 10, 10))
    model = models.Sequential([conv, layers.Activation("relu"), layers.MaxPooling2D((2, 2))])
    assert model.output_shape == (None, 4, 4, 4)      # channels first: (4, 8, 8) -> (4, 4, 4)
    assert model.layers[-1].data_format == "channels_first"
    # Keras 3 decides a layer's format from image_data_format() alone
    modern = models.Sequential([layers.Conv2D(4, 3, data_format="channels_first",
                                              input_shape=(1, 10, 10)),
                                layers.MaxPooling2D((2, 2))])
    assert modern.layers[-1].data_format == "channels_last"
    assert modern.output_shape == (None, 2, 4, 8)


# -- weights ---------------------------------------------------------------------------------

def test_keras3_layouts_at_the_front_engine_layouts_inside():
    conv = layers.Conv2D(5, (3, 2), input_shape=(7, 6, 4))
    models.Sequential([conv])
    k, b = conv.get_weights()
    assert k.shape == (3, 2, 4, 5) and b.shape == (5,)
    assert conv.kernel.shape == (5, 4, 3, 2)
    np.testing.assert_array_equal(k, conv.kernel.numpy().transpose(2, 3, 1, 0))
    new = np.random.default_rng(0).standard_normal(k.shape).astype(np.float32)
    conv.set_weights([new, b])
    np.testing.assert_array_equal(conv.get_weights()[0], new)
    with pytest.raises(ValueError, match=r"must have shape \(3, 2, 4, 5\) \(Keras layout\), "
                                         r"received \(5, 4, 3, 2\)"):
        conv.set_weights([conv.kernel.numpy(), b])
    bn = layers.BatchNormalization(center=False)
    models.Sequential([keras.Input((3, 4)), bn])
    assert [w.shape for w in bn.get_weights()] == [(4,), (4,), (4,)]   # gamma, mean, var


def test_batch_normalization_axis_minus_1_on_channels_first_maps():
    """Keras's default axis=-1 on channels-first Conv3D maps normalises the last spatial
    axis: parameters 4 x its size, half of them not trainable."""
    backend.set_image_data_format("channels_first")
    model = models.Sequential([layers.Conv3D(8, 3, input_shape=(2, 10, 12, 14)),
                               layers.BatchNormalization()])
    bn = model.layers[1]
    assert bn.count_params() == 4 * 12                 # (None, 8, 8, 10, 12): axis -1 is 12
    assert len(model.non_trainable_weights) == 2
    x = np.random.default_rng(0).standard_normal((3, 2, 10, 12, 14)).astype(np.float32)
    y = model(x, training=True).numpy()
    # training mode: each index of the last axis has mean 0 and variance 1 over the rest
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2, 3)), 1, atol=1e-2)
    e = engine.layers.BatchNormalization(axis=2, momentum=0.5, epsilon=0.1, scale=False)
    z = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    out = e(z, training=True).numpy()
    m, v = z.mean(axis=(0, 1)), z.var(axis=(0, 1))
    np.testing.assert_allclose(out, (z - m) / np.sqrt(v + 0.1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(e.moving_mean.numpy(), 0.5 * m, rtol=1e-6)


# -- optimizers ------------------------------------------------------------------------------

def _run(opt, w0, grads):
    w = engine.Tensor(np.array(w0, np.float64), requires_grad=True)
    for g in grads:
        w.grad = np.array(g, np.float64)
        opt.step([w])
    return w.numpy()


def test_rmsprop_keras1_arguments_and_keras3_rule():
    gen = np.random.default_rng(4)
    w0, grads = gen.standard_normal(5), [gen.standard_normal(5) for _ in range(5)]
    with pytest.warns(LegacyWarning):
        opt = optimizers.RMSprop(lr=0.01, rho=0.9, epsilon=None, decay=0.1)
    got = _run(opt, w0, grads)
    w, v = w0.copy(), np.zeros(5)
    for t, g in enumerate(grads):                      # by hand: Keras 3's rule
        lr = 0.01 / (1 + 0.1 * t)
        v = 0.9 * v + 0.1 * g * g
        w = w - lr * g / np.sqrt(v + 1e-7)
    np.testing.assert_allclose(got, w, rtol=1e-12)


def test_adam_epsilon_none_and_sgd_decay_by_hand():
    with pytest.warns(LegacyWarning, match="epsilon=None"):
        adam = optimizers.Adam(lr=0.1, epsilon=None, amsgrad=False, decay=0.0)
    assert adam.epsilon == 1e-7 and adam.learning_rate == 0.1
    with pytest.warns(LegacyWarning):
        sgd = optimizers.SGD(lr=0.5, decay=1.0)
    got = _run(sgd, [1.0], [[1.0], [1.0], [1.0]])
    np.testing.assert_allclose(got, [1.0 - 0.5 - 0.25 - 0.5 / 3])
    with pytest.raises(TypeError, match="RMSprop: unknown argument 'beta'"):
        optimizers.RMSprop(beta=0.9)
    clipped = _run(optimizers.SGD(learning_rate=1.0, clipnorm=1.0), [0.0, 0.0], [[3.0, 4.0]])
    np.testing.assert_allclose(clipped, [-0.6, -0.8])


# -- training extras -------------------------------------------------------------------------

def test_regularizer_is_added_to_the_loss():
    from engine.keras import regularizers
    model = models.Sequential([layers.Dense(1, input_shape=(2,), use_bias=False,
                                            kernel_regularizer=regularizers.l2(0.1))])
    model.set_weights([np.array([[1.0], [2.0]], np.float32)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.array([[1.0, 1.0]], np.float32), np.array([[0.0]], np.float32)
    # (3 - 0)^2 + 0.1 * (1 + 4)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(9.5, rel=1e-6)


def test_layer_output_and_trainable_weights():
    model = models.Sequential([layers.Dense(3, input_shape=(2,)), layers.Dropout(0.5),
                               layers.BatchNormalization()])
    assert model.layers[0].output.shape == (None, 3)
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 2


# -- serialisation ---------------------------------------------------------------------------

def test_json_save_and_weights_roundtrips(tmp_path):
    from engine.keras import constraints
    model = models.Sequential([
        layers.Conv2D(3, 3, padding="same", input_shape=(6, 6, 2), kernel_initializer=
                      keras.initializers.RandomUniform(-0.1, 0.1, seed=1),
                      kernel_constraint=constraints.MaxNorm(2.0)),
        layers.AveragePooling2D(2, strides=1, padding="same"), layers.Flatten(),
        layers.Dense(2, activation=keras.activations.softmax)])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((4, 6, 6, 2), dtype=np.float32)
    want = model.predict(x, verbose=0)
    same = models.model_from_json(model.to_json())
    same.set_weights(model.get_weights())
    np.testing.assert_allclose(same.predict(x), want, rtol=1e-6)
    model.save(tmp_path / "m.npz")
    loaded = models.load_model(tmp_path / "m.npz")
    assert isinstance(loaded.layers[0], layers.Conv2D)
    np.testing.assert_allclose(loaded.predict(x), want, rtol=1e-6)
    assert loaded.get_weights()[0].shape == (3, 3, 2, 3)
    model.save_weights(tmp_path / "w.npz")
    fresh = models.model_from_json(model.to_json())
    fresh.load_weights(tmp_path / "w.npz")
    np.testing.assert_allclose(fresh.predict(x), want, rtol=1e-6)
    plain = models.Sequential([layers.Conv2D(2, 3, input_shape=(6, 6, 2)), layers.Flatten(),
                               layers.Dense(2)])
    plain.save(tmp_path / "p.npz")                     # engine reads a plain front model
    np.testing.assert_allclose(engine.load_model(tmp_path / "p.npz").predict(x),
                               plain.predict(x), rtol=1e-6)


# -- datasets ------------------------------------------------------------------------------

def test_mnist_from_keras_cache(keras_home):
    (xt, yt), (xv, yv) = keras.datasets.mnist.load_data()
    assert xt.shape == (60000, 28, 28) and xt.dtype == np.uint8 and yt.shape == (60000,)
    assert xv.shape == (10000, 28, 28) and yv.dtype == np.uint8
    with np.load(keras_home / "datasets" / "mnist.npz") as f:
        np.testing.assert_array_equal(xv, f["x_test"])
    (x1, y1), _ = engine.data.load_dataset("mnist")          # engine.data agrees
    assert x1.shape == (60000, 1, 28, 28) and x1.dtype == np.float32
    np.testing.assert_allclose(x1[:5, 0], xt[:5] / 255.0, rtol=1e-6)


def test_mnist_from_idx_files_and_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "nothing"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError) as e:
        keras.datasets.mnist.load_data()
    msg = str(e.value)
    assert "downloads nothing" in msg and os.path.join("nothing", "datasets", "mnist.npz") \
        in msg and "train-images-idx3-ubyte" in msg and "$CONVLAB_DATA" in msg
    arrays = write_mnist_npz(tmp_path / "tmp.npz", 30, 10)
    d = tmp_path / "idx"
    d.mkdir()
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    for key, stem in names.items():
        engine.data.write_idx(d / stem, arrays[key])
        with open(d / stem, "rb") as f, gzip.open(tmp_path / (stem + ".gz"), "wb") as g:
            g.write(f.read())
    monkeypatch.setenv("CONVLAB_DATA", str(d))
    (xt, yt), (xv, yv) = keras.datasets.mnist.load_data()
    np.testing.assert_array_equal(xt, arrays["x_train"])
    np.testing.assert_array_equal(yv, arrays["y_test"])
    (xt2, _), _ = keras.datasets.mnist.load_data(path=str(d))
    np.testing.assert_array_equal(xt2, arrays["x_train"])
    fm = tmp_path / "nothing" / "datasets" / "fashion-mnist"
    fm.mkdir(parents=True)
    for stem in names.values():
        os.replace(tmp_path / (stem + ".gz"), fm / (stem + ".gz"))
    (fx, fy), _ = keras.datasets.fashion_mnist.load_data()
    np.testing.assert_array_equal(fx, arrays["x_train"])


def test_cifar10_batches_and_the_arrays_only_unpickler(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    d = tmp_path / "datasets" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    gen = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = gen.integers(0, 256, (4, 3072)).astype(np.uint8)
        labels = gen.integers(0, 10, 4).tolist()
        batches[name] = (data, labels)
        with open(d / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
    (xt, yt), (xv, yv) = keras.datasets.cifar10.load_data()
    assert xt.shape == (20, 32, 32, 3) and yt.shape == (20, 1) and xv.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(xt[0], batches["data_batch_1"][0][0].reshape(3, 32, 32)
                                  .transpose(1, 2, 0))
    assert yv.ravel().tolist() == batches["test_batch"][1]
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"data": os.system, b"labels": []}, f)       # not an array: refused
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        keras.datasets.cifar10.load_data()


def test_metric_classes_loss_functions_and_missing_layers():
    model = models.Sequential([layers.Dense(3, activation="softmax", input_shape=(2,))])
    model.compile(optimizer=optimizers.SGD(0.1), loss=keras.losses.sparse_categorical_crossentropy,
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    x = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    y = np.array([0, 2])
    pred = model.predict(x, verbose=0)
    loss, acc = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(-np.mean(np.log(pred[[0, 1], y])), rel=1e-5)
    assert acc == np.mean(pred.argmax(1) == y)
    with pytest.raises(AttributeError, match="has no 'LSTM'.*Conv2D"):
        layers.LSTM(4)
