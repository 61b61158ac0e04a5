"""Training: the course's backprop example, digits, residual nets, optimizers, callbacks."""
import os

import re

import numpy as np
import pytest

import engine
from engine import optimizers
from engine.layers import Dense, Dropout

RNG = np.random.default_rng(2)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def tiny_classifier(n_in=4, classes=3, dropout=0.0):
    layers = [Dense(8, activation="relu", input_shape=(n_in,))]
    if dropout:
        layers.append(Dropout(dropout))
    return engine.Sequential(layers + [Dense(classes, activation="softmax")])


def blobs(n=120, n_in=4, classes=3, seed=0):
    """Linearly separable-ish Gaussian blobs."""
    gen = np.random.default_rng(seed)
    y = gen.integers(0, classes, n)
    centres = gen.normal(0, 3, (classes, n_in))
    return (centres[y] + gen.normal(0, 0.5, (n, n_in))).astype(np.float32), y


# -- the course's worked example ---------------------------------------------------------

def course_network():
    """Dense 2-2-2 sigmoid with w1..w8 = .15 .20 .25 .30 .40 .45 .50 .55, biases .35 and .60.

    w1 and w2 feed hidden unit 1 from inputs 1 and 2, w3 and w4 hidden unit 2; w5 and w6
    feed output 1 from hidden units 1 and 2, w7 and w8 output 2.  Keras kernels are
    (in, out), so kernel[i, j] is the weight from unit i to unit j."""
    model = engine.Sequential([Dense(2, activation="sigmoid", input_shape=(2,)),
                               Dense(2, activation="sigmoid")])
    w1, w2, w3, w4, w5, w6, w7, w8 = 0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55
    model.set_weights([np.array([[w1, w3], [w2, w4]]), np.array([0.35, 0.35]),
                       np.array([[w5, w7], [w6, w8]]), np.array([0.60, 0.60])])
    return model


def test_course_backprop_example():
    model = course_network()
    model.compile(optimizers.SGD(0.5), "mse")
    x, y = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])
    # mse = mean over the 2 outputs of (t - o)^2 = the course's E = sum 1/2 (t - o)^2
    loss = model.train_on_batch(x, y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(0.298371109, abs=2e-8)
    kernel2 = model.get_weights()[2]
    w5, w6, w7, w8 = kernel2[0, 0], kernel2[1, 0], kernel2[0, 1], kernel2[1, 1]
    assert w5 == pytest.approx(0.35891648, abs=1e-7)
    assert w6 == pytest.approx(0.408666186, abs=1e-7)
    assert w7 == pytest.approx(0.511301270, abs=1e-7)
    assert w8 == pytest.approx(0.561370121, abs=1e-7)
    kernel1 = model.get_weights()[0]
    assert kernel1[0, 0] == pytest.approx(0.149780716, abs=1e-7)     # w1
    assert kernel1[1, 1] == pytest.approx(0.29950229, abs=1e-7)      # w4


def test_train_on_batch_returns_loss_before_update():
    model = tiny_classifier()
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = blobs(16)
    before = model.evaluate(x, y, batch_size=16)
    assert model.train_on_batch(x, y) == pytest.approx(before, rel=1e-5)
    assert model.evaluate(x, y, batch_size=16) < before


# -- learning ----------------------------------------------------------------------------

def test_small_cnn_learns_digits_to_95_percent():
    engine.set_seed(0)
    (x_train, y_train), (x_test, y_test) = engine.data.load_digits()
    model = engine.zoo.get_model("small_cnn", (1, 8, 8), 10)
    model.compile(optimizers.Adam(0.003), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=5, verbose=0)
    loss, acc = model.evaluate(x_test, y_test)
    assert acc >= 0.95, f"held-out accuracy {acc:.3f}"
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert len(history.timing["fwd_ms_per_example"]) == 5


def test_residual_model_trains():
    engine.set_seed(1)
    (x_train, y_train), _ = engine.data.load_digits()
    x, y = x_train[:256], y_train[:256]
    model = engine.zoo.get_model("small_resnet", (1, 8, 8), 10)
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    bn = model.get_layer("block1_bn1")
    assert not np.allclose(bn.get_weights()[2], 0)            # moving mean moved


def test_categorical_targets_and_mse_accuracy():
    x, y = blobs(90)
    for loss, target in (("categorical_crossentropy", engine.data.to_categorical(y, 3)),
                         ("mse", engine.data.to_categorical(y, 3))):
        engine.set_seed(0)
        model = tiny_classifier()
        model.compile(optimizers.Adam(0.05), loss, metrics=["accuracy"])
        history = model.fit(x, target, batch_size=16, epochs=15, verbose=0)
        assert history.history["accuracy"][-1] > 0.9, loss


def test_binary_crossentropy_with_sigmoid_output():
    engine.set_seed(0)
    x, y = blobs(80, classes=2)
    model = engine.Sequential([Dense(1, activation="sigmoid", input_shape=(4,))])
    model.compile(optimizers.SGD(0.5), "binary_crossentropy", ["accuracy"])
    model.fit(x, y[:, None].astype(np.float32), epochs=20, batch_size=16, verbose=0)
    assert model.evaluate(x, y[:, None])[1] > 0.9


def test_signal1d_learns_generated_signals():
    engine.set_seed(0)
    (x_train, y_train), (x_test, y_test) = engine.data.load_signals(400, length=64)
    model = engine.zoo.get_model("signal1d", (1, 64), 4)
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=8, verbose=0)
    assert model.evaluate(x_test, y_test)[1] > 0.8


# -- optimizers --------------------------------------------------------------------------

def _run(opt, w0, grads):
    w = engine.Tensor(w0.copy(), requires_grad=True)
    for g in grads:
        w.grad = g.copy()
        opt.step([w])
    return w.data


def test_sgd_matches_hand_computation():
    w0 = np.array([1.0, -2.0], np.float32)
    g = np.array([0.5, 0.25], np.float32)
    np.testing.assert_allclose(_run(optimizers.SGD(0.1), w0, [g, g]), w0 - 0.2 * g, rtol=1e-6)
    # momentum 0.9: v1 = -lr g, v2 = 0.9 v1 - lr g; w = w0 + v1 + v2
    got = _run(optimizers.SGD(0.1, momentum=0.9), w0, [g, g])
    np.testing.assert_allclose(got, w0 - 0.1 * g - (0.9 * 0.1 + 0.1) * g, rtol=1e-6)
    # decoupled weight decay: w <- w - lr * wd * w, then the gradient step
    got = _run(optimizers.SGD(0.1, weight_decay=0.5), w0, [g])
    np.testing.assert_allclose(got, w0 - 0.05 * w0 - 0.1 * g, rtol=1e-6)


_TORCH_PAIRS = {
    "sgd-momentum": (lambda: optimizers.SGD(0.1, momentum=0.9),
                     lambda th, p: th.optim.SGD(p, lr=0.1, momentum=0.9)),
    "sgd-nesterov": (lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                     lambda th, p: th.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    # Keras 3 puts RMSprop's epsilon inside the sqrt, PyTorch outside: equal for epsilon = 0
    "rmsprop": (lambda: optimizers.RMSprop(0.01, rho=0.9, epsilon=0.0),
                lambda th, p: th.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=0.0)),
    # Keras puts epsilon inside the sqrt, PyTorch outside: equal for epsilon = 0
    "adagrad": (lambda: optimizers.Adagrad(0.1, initial_accumulator_value=0.1, epsilon=0.0),
                lambda th, p: th.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1,
                                               eps=0.0)),
    # epsilon scales differently with bias correction: negligible at 1e-12
    "adam": (lambda: optimizers.Adam(0.01, epsilon=1e-12),
             lambda th, p: th.optim.Adam(p, lr=0.01, eps=1e-12)),
    "amsgrad": (lambda: optimizers.Adam(0.01, epsilon=1e-12, amsgrad=True),
                lambda th, p: th.optim.Adam(p, lr=0.01, eps=1e-12, amsgrad=True)),
    "adam-decoupled-decay": (lambda: optimizers.Adam(0.01, epsilon=1e-12, weight_decay=0.1),
                             lambda th, p: th.optim.AdamW(p, lr=0.01, eps=1e-12,
                                                          weight_decay=0.1)),
}


@pytest.mark.parametrize("name", sorted(_TORCH_PAIRS))
def test_optimizers_match_pytorch(name):
    th = pytest.importorskip("torch")
    ours, theirs = _TORCH_PAIRS[name]
    gen = np.random.default_rng(0)
    w0 = gen.standard_normal(6)
    grads = [gen.standard_normal(6) for _ in range(5)]
    got = _run(ours(), w0, grads)
    p = th.nn.Parameter(th.tensor(w0))
    opt = theirs(th, [p])
    for g in grads:
        p.grad = th.tensor(g)
        opt.step()
    np.testing.assert_allclose(got, p.detach().numpy(), rtol=1e-6, atol=1e-9)


def test_optimizer_skips_params_without_grad_and_keeps_float32():
    w = engine.Tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optimizers.Adam()
    opt.step([w])
    np.testing.assert_array_equal(w.data, 1.0)
    w.grad = np.ones(3, np.float32)
    opt.step([w])
    assert w.data.dtype == np.float32 and np.all(w.data < 1.0)


def test_optimizer_and_loss_names():
    assert isinstance(optimizers.get("Adam"), optimizers.Adam)
    assert isinstance(optimizers.get("sgd"), optimizers.SGD)
    with pytest.raises(ValueError, match="unknown optimizer 'ftrl'.*sgd, adagrad, rmsprop, "
                                         "adam"):
        tiny_classifier().compile("ftrl", "mse")
    with pytest.raises(ValueError, match="unknown loss 'hubber'.*mse.*binary_crossentropy.*"
                                         "sparse_categorical_crossentropy"):
        tiny_classifier().compile("sgd", "hubber")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        tiny_classifier().compile("sgd", "mse", metrics=["f1"])
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.SGD(-1.0)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(0.1, momentum=1.5)


# -- fit / evaluate / predict --------------------------------------------------------------

def test_fit_history_validation_and_metrics():
    x, y = blobs(100)
    model = tiny_classifier()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=10, epochs=3, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in history.history.values())
    assert history.epoch == [0, 1, 2] and history.params["samples"] == 80
    result = model.evaluate(x, y)
    assert isinstance(result, list) and len(result) == 2
    assert model.predict(x, batch_size=7).shape == (100, 3)
    plain = tiny_classifier()
    plain.compile("adam", "sparse_categorical_crossentropy")
    assert isinstance(plain.evaluate(x, y), float)


def test_bad_fit_inputs():
    x, y = blobs(20)
    model = tiny_classifier()
    with pytest.raises(ValueError, match="must be compiled"):
        model.fit(x, y)
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="same number of samples.*x with 20 and y with 19"):
        model.fit(x, y[:-1], verbose=0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        model.fit(x, y + 5, verbose=0)
    model.compile("sgd", "categorical_crossentropy")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"expects shape \(None, 4\), received \(20, 5\)"):
        model.fit(rand(20, 5), engine.data.to_categorical(y, 3), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, engine.data.to_categorical(y, 3), batch_size=0, verbose=0)


def test_verbose_output_shows_loss_metrics_and_timing(capsys):
    x, y = blobs(40)
    model = tiny_classifier()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=1)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("Epoch")] == ["Epoch 1/2", "Epoch 2/2"]
    first = out.split("Epoch 2/2")[0]
    assert re.search(r"5/5 ━{20} \d+s \d+(us|ms)/step - accuracy: \d\.\d{4} - "
                     r"loss: \d\.\d{4}", first)
    assert re.search(r"fwd/bwd \d+\.\d{3}/\d+\.\d{3} ms per example", first)
    assert max(len(line) for line in lines) <= 80
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_verbose_progress_bar_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")            # rich treats the output as a terminal
    monkeypatch.setenv("COLUMNS", "200")
    x, y = blobs(40)
    model = tiny_classifier()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=8, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "5/5" in out and "ms per example" in out
    assert "━" * 20 in out


def test_seeded_runs_are_reproducible():
    x, y = blobs(64)

    def run():
        engine.set_seed(123)
        model = tiny_classifier(dropout=0.3)
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_dropout_is_off_at_inference():
    model = tiny_classifier(dropout=0.5)
    x, _ = blobs(10)
    np.testing.assert_array_equal(model.predict(x), model.predict(x))


# -- callbacks ---------------------------------------------------------------------------

def test_early_stopping_stops_and_restores_best_weights():
    x, y = blobs(40)
    model = tiny_classifier()
    model.compile(optimizers.SGD(1e-9), "sparse_categorical_crossentropy")
    stop = engine.EarlyStopping(monitor="loss", min_delta=1.0, patience=2,
                                restore_best_weights=True)
    history = model.fit(x, y, epochs=20, callbacks=[stop], verbose=0, shuffle=False)
    assert len(history.epoch) == 4 and stop.stopped_epoch == 3
    bad = engine.EarlyStopping(monitor="val_loss")
    with pytest.raises(ValueError, match="'val_loss' is not in the logs; available: loss"):
        model.fit(x, y, epochs=1, callbacks=[bad], verbose=0)


def test_model_checkpoint_writes_loadable_files(tmp_path):
    x, y = blobs(40)
    model = tiny_classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{loss:.3f}.npz")
    model.fit(x, y, epochs=2, callbacks=[engine.ModelCheckpoint(pattern, monitor="loss")],
              verbose=0)
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 2 and files[0].startswith("ckpt-01-")
    best = tmp_path / "best.npz"
    cb = engine.ModelCheckpoint(str(best), monitor="loss", save_best_only=True)
    model.compile(optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    # full-batch gradient descent with a small step: every epoch improves, so the last is best
    history = model.fit(x, y, epochs=3, batch_size=40, callbacks=[cb], verbose=0)
    assert history.history["loss"] == sorted(history.history["loss"], reverse=True)
    np.testing.assert_array_equal(engine.load_model(best).predict(x), model.predict(x))
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
