"""engine.keras against real Keras 3 (torch backend), when it is installed: parameter
counts, output shapes and summary totals; predictions from the same weights (which checks
the weight layouts, data formats, 'same' padding at stride 2, BatchNormalization's axis and
Flatten's order); optimizer trajectories; training steps."""
import os
import re

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip("these checks run Keras 3 on its torch backend", allow_module_level=True)

import engine.keras as ek  # noqa: E402
from tests.keras_helpers import front_state  # noqa: E402,F401


def both(build):
    """(engine.keras model, Keras 3 model) from one builder taking a layers namespace."""
    ek.backend.clear_session()
    return build(ek.layers, ek.models.Sequential), build(keras.layers, keras.Sequential)


def mnist_net(L, Sequential):
    return Sequential([
        L.Conv2D(20, kernel_size=5, activation="relu", input_shape=(28, 28, 1)),
        L.Conv2D(40, kernel_size=5, activation="relu"), L.Flatten(),
        L.Dense(100, activation="relu"), L.Dense(10, activation="softmax")])


def totals(text):
    return [line.strip() for line in text.splitlines() if "params:" in line]


def test_mnist_net_counts_shapes_and_summary_totals(capsys):
    ours, theirs = both(mnist_net)
    assert [la.count_params() for la in ours.layers] == \
        [la.count_params() for la in theirs.layers]
    assert [la.output.shape for la in ours.layers] == \
        [tuple(la.output.shape) for la in theirs.layers]
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    ours.summary()
    mine = capsys.readouterr().out
    theirs.summary()
    real = capsys.readouterr().out
    assert totals(mine) == totals(real)
    assert max(map(len, mine.splitlines())) <= 80


def channels_last_net(L, Sequential):
    return Sequential([
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu", input_shape=(9, 10, 2)),
        L.MaxPooling2D(3, strides=2, padding="same"),
        L.BatchNormalization(),
        L.Conv2D(3, 2, padding="same"),
        L.AveragePooling2D(2, padding="same"),
        L.Flatten(), L.Dense(5, activation="softmax")])


def channels_first_net(L, Sequential):
    return Sequential([
        L.Conv3D(4, 3, data_format="channels_first", input_shape=(2, 6, 7, 8)),
        L.BatchNormalization(),                       # axis=-1: the last spatial axis
        L.MaxPooling3D(2, data_format="channels_first", padding="same"),
        L.Flatten(data_format="channels_first"),
        L.Dense(3)])


@pytest.mark.parametrize("build,shape", [(channels_last_net, (6, 9, 10, 2)),
                                         (channels_first_net, (3, 2, 6, 7, 8))],
                         ids=["channels_last", "channels_first_bn_axis_-1"])
def test_same_weights_give_keras3_predictions(build, shape):
    ours, theirs = both(build)
    assert [tuple(la.output.shape) for la in theirs.layers] == \
        [la.output.shape for la in ours.layers]
    assert ours.count_params() == theirs.count_params()
    gen = np.random.default_rng(0)
    weights = [gen.standard_normal(w.shape).astype(np.float32) * 0.5
               for w in theirs.get_weights()]
    for layer in theirs.layers:                       # positive moving variances
        if isinstance(layer, keras.layers.BatchNormalization):
            idx = [i for i, w in enumerate(theirs.weights) if "moving_variance" in w.path]
            for i in idx:
                weights[i] = np.abs(weights[i]) + 0.5
    theirs.set_weights(weights)
    ours.set_weights(weights)                         # Keras layouts go in unchanged
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = gen.random(shape, dtype=np.float32)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=2e-5, atol=2e-5)


def test_same_padding_stride_2_values():
    x = np.arange(8, dtype=np.float32).reshape(1, 8, 1)
    kernel = np.array([1, 0, 0], np.float32).reshape(3, 1, 1)
    for L in (ek.layers, keras.layers):
        conv = L.Conv1D(1, 3, strides=2, padding="same", use_bias=False)
        conv.build((None, 8, 1))
        conv.set_weights([kernel])
        y = np.asarray(keras.ops.convert_to_numpy(conv(x)) if L is keras.layers else
                       conv(x).numpy()).ravel()
        np.testing.assert_array_equal(y, [0, 2, 4, 6])  # TF rule: the odd unit at the end
        pool = L.MaxPooling1D(3, strides=2, padding="same")
        y = keras.ops.convert_to_numpy(pool(x)) if L is keras.layers else pool(x).numpy()
        np.testing.assert_array_equal(np.ravel(y), [2, 4, 6, 7])


OPTIMIZERS = {
    "sgd-nesterov": (lambda m: m.SGD(learning_rate=0.1, momentum=0.9, nesterov=True), {}),
    "rmsprop": (lambda m: m.RMSprop(learning_rate=0.01, rho=0.9), {}),
    "rmsprop-eps": (lambda m: m.RMSprop(learning_rate=0.01, rho=0.9, epsilon=0.1), {}),
    "adam": (lambda m: m.Adam(learning_rate=0.01), {}),
    "amsgrad": (lambda m: m.Adam(learning_rate=0.01, amsgrad=True), {}),
    "adagrad": (lambda m: m.Adagrad(learning_rate=0.1), {}),
    "adam-schedule": (lambda m: m.Adam(learning_rate=m.schedules.ExponentialDecay(
        0.05, decay_steps=2, decay_rate=0.5)), {}),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_trajectories(name):
    make, _ = OPTIMIZERS[name]
    gen = np.random.default_rng(1)
    w0 = gen.standard_normal(6).astype(np.float32)
    grads = [gen.standard_normal(6).astype(np.float32) for _ in range(5)]
    import engine
    ours = make(ek.optimizers)
    w = engine.Tensor(w0.copy(), requires_grad=True)
    for g in grads:
        w.grad = g.copy()
        ours.step([w])
    theirs = make(keras.optimizers)
    v = keras.Variable(w0.copy())
    for g in grads:
        theirs.apply_gradients([(keras.ops.convert_to_tensor(g), v)])
    got, want = w.numpy(), keras.ops.convert_to_numpy(v)
    np.testing.assert_allclose(got - w0, want - w0, rtol=2e-5, atol=1e-7)


def test_keras1_decay_is_keras3_inverse_time_decay():
    import engine
    gen = np.random.default_rng(2)
    w0 = gen.standard_normal(4).astype(np.float32)
    with pytest.warns(ek.LegacyWarning):
        ours = ek.optimizers.SGD(lr=0.1, decay=0.5)
    w = engine.Tensor(w0.copy(), requires_grad=True)
    theirs = keras.optimizers.SGD(learning_rate=keras.optimizers.schedules.InverseTimeDecay(
        0.1, decay_steps=1, decay_rate=0.5))
    v = keras.Variable(w0.copy())
    for _ in range(4):
        g = gen.standard_normal(4).astype(np.float32)
        w.grad = g.copy()
        ours.step([w])
        theirs.apply_gradients([(keras.ops.convert_to_tensor(g), v)])
    np.testing.assert_allclose(w.numpy(), keras.ops.convert_to_numpy(v), rtol=1e-6)


def small_net(L, Sequential):
    return Sequential([
        L.Conv2D(3, 3, activation="relu", input_shape=(8, 8, 1)),
        L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(1, activation="sigmoid")])


def test_training_steps_with_1d_binary_targets_match():
    ours, theirs = both(small_net)
    gen = np.random.default_rng(3)
    theirs.set_weights([gen.standard_normal(w.shape).astype(np.float32) * 0.3
                        for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())
    ours.compile(optimizer=ek.optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy")
    theirs.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                   loss="binary_crossentropy")
    x = gen.random((16, 8, 8, 1), dtype=np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.float32)          # (N,) targets
    for _ in range(3):
        a = ours.train_on_batch(x, y)
        b = float(np.asarray(theirs.train_on_batch(x, y)))
        assert a == pytest.approx(b, rel=1e-4)
    for p, q in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-3, atol=1e-5)


def test_course_snippets_counts_and_shapes_match_keras3():
    from tests.test_keras_snippets import BINARY_150

    def binary(L, Sequential):
        scope = {}
        exec(BINARY_150.replace("from engine.keras import models, layers", "")
             .replace("model.compile(loss='binary_crossentropy', optimizer='rmsprop', "
                      "metrics=['acc'])", ""),
             {"models": type("m", (), {"Sequential": Sequential}), "layers": L}, scope)
        return scope["model"]

    def keras1(L, Sequential):                      # the Keras 1 snippet in Keras 3 words
        cf = "channels_first"
        if L is ek.layers:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                first = L.Convolution2D(32, 6, 6, border_mode="same", input_shape=(1, 20, 20))
                rest = [L.Convolution2D(4, 5, 5, activation="relu")]
        else:
            first = L.Conv2D(32, (6, 6), padding="same", data_format=cf,
                             input_shape=(1, 20, 20))
            rest = [L.Conv2D(4, (5, 5), activation="relu", data_format=cf)]
        pool = L.MaxPooling2D(pool_size=(2, 2)) if L is ek.layers else \
            L.MaxPooling2D(pool_size=(2, 2), data_format=cf)
        return Sequential([first, L.Activation("relu"), L.Dropout(0.5), pool] + rest +
                          [L.BatchNormalization(), L.Flatten(), L.Dense(1)])

    for build in (binary, keras1):
        ours, theirs = both(build)
        assert [la.count_params() for la in ours.layers] == \
            [la.count_params() for la in theirs.layers], build.__name__
        assert [la.output.shape for la in ours.layers] == \
            [tuple(la.output.shape) for la in theirs.layers], build.__name__
        assert len(ours.non_trainable_weights) == len(theirs.non_trainable_weights)


def test_load_keras3_files(tmp_path):
    pytest.importorskip("h5py")
    L = keras.layers
    seq = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(3, 3, padding="same"),
                            L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(),
                            L.Dropout(0.5), L.Dense(2, activation="softmax")])
    x_in = keras.Input((6,))
    h = L.Dense(4, activation="relu", name="hidden")(x_in)
    out = L.Dense(3)(L.add([h, L.Dense(4)(x_in)]))
    fun = keras.Model(x_in, out)
    gen = np.random.default_rng(5)
    for model, shape in ((seq, (4, 8, 8, 1)), (fun, (4, 6))):
        values = [gen.standard_normal(w.shape).astype(np.float32) * 0.5 for w in model.weights]
        model.set_weights([np.abs(v) + 0.5 if "variance" in w.path else v
                           for v, w in zip(values, model.weights)])
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        ours = ek.models.load_model(path)
        x = gen.random(shape, dtype=np.float32)
        np.testing.assert_allclose(ours.predict(x, verbose=0), model.predict(x, verbose=0),
                                   rtol=2e-5, atol=2e-5)
        assert ours.count_params() == model.count_params()
