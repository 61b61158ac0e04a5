"""Regularizers, constraints, fit's weights and steps, callbacks and metrics: against real
Keras 3 where installed, closed forms otherwise."""
import csv
import math

import numpy as np
import pytest

import engine
from engine import callbacks as C
from engine import constraints, metrics, regularizers
from engine.layers import Dense, Input
from tests._keras_ref import keras_or_none

keras = keras_or_none()
needs_keras = pytest.mark.skipif(keras is None, reason="keras 3 (torch backend) not installed")

R = np.random.default_rng(21)
X = R.normal(size=(12, 4)).astype(np.float32)
Y_INT = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 0, 1, 2])
Y = np.eye(3, dtype=np.float32)[Y_INT]
K0 = R.normal(size=(4, 3)).astype(np.float32) * 0.5
B0 = R.normal(size=(3,)).astype(np.float32) * 0.1


def ours(opt=None, loss="categorical_crossentropy", metrics_=None, **dense_kw):
    m = engine.Sequential([Dense(3, activation="softmax", input_shape=(4,), **dense_kw)])
    m.compile(opt or engine.optimizers.SGD(0.1), loss, metrics=metrics_)
    m.set_weights([K0, B0])
    return m


def theirs(opt=None, loss="categorical_crossentropy", metrics_=None, **dense_kw):
    m = keras.Sequential([keras.Input((4,)),
                          keras.layers.Dense(3, activation="softmax", **dense_kw)])
    m.compile(opt or keras.optimizers.SGD(0.1), loss, metrics=metrics_)
    m.set_weights([K0, B0])
    return m


@needs_keras
@pytest.mark.parametrize("kw", [dict(kernel_regularizer="l2"),
                                dict(kernel_regularizer={"class_name": "L1L2",
                                                         "config": {"l1": 0.02, "l2": 0.03}},
                                     bias_regularizer="l1")])
def test_regularised_loss_and_training_match_keras(kw):
    kkw = {k: (keras.regularizers.L1L2(**v["config"]) if isinstance(v, dict) else v)
           for k, v in kw.items()}
    a, b = ours(**kw), theirs(**kkw)
    assert a.evaluate(X, Y) == pytest.approx(b.evaluate(X, Y, verbose=0), rel=1e-5)
    assert float(sum(t.item() for t in a.losses)) == pytest.approx(
        float(sum(keras.ops.convert_to_numpy(t) for t in b.losses)), rel=1e-5)
    ha = a.fit(X, Y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    hb = b.fit(X, Y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-4)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)


@needs_keras
def test_constraints_match_keras_in_training():
    a = ours(kernel_constraint=constraints.MaxNorm(0.6), bias_constraint="non_neg")
    b = theirs(kernel_constraint=keras.constraints.MaxNorm(0.6), bias_constraint="non_neg")
    a.fit(X, Y, batch_size=6, epochs=2, shuffle=False, verbose=0)
    b.fit(X, Y, batch_size=6, epochs=2, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)
    assert np.all(np.linalg.norm(a.get_weights()[0], axis=0) <= 0.6 + 1e-6)


@needs_keras
@pytest.mark.parametrize("name,kw", [("MaxNorm", dict(max_value=1.0, axis=0)),
                                     ("MinMaxNorm", dict(min_value=0.5, max_value=1.0,
                                                         rate=0.7, axis=1)),
                                     ("UnitNorm", dict(axis=0)), ("NonNeg", {})])
def test_constraint_values_match_keras(name, kw):
    w = R.normal(size=(5, 3)).astype(np.float32) * 2
    ref = keras.ops.convert_to_numpy(getattr(keras.constraints, name)(**kw)(w))
    np.testing.assert_allclose(getattr(constraints, name)(**kw)(w), ref, rtol=1e-5, atol=1e-7)


@needs_keras
@pytest.mark.parametrize("which", ["class_weight", "sample_weight"])
def test_class_and_sample_weighted_training_match_keras(which):
    kw = {"class_weight": {0: 1.0, 1: 3.0, 2: 0.5}} if which == "class_weight" else \
        {"sample_weight": R.uniform(0.2, 2.0, size=12).astype(np.float32)}
    a, b = ours(), theirs()
    ha = a.fit(X, Y, batch_size=4, epochs=3, shuffle=False, verbose=0, **kw)
    hb = b.fit(X, Y, batch_size=4, epochs=3, shuffle=False, verbose=0, **kw)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-4)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)
    # sparse labels take the same weights
    a2 = ours(loss="sparse_categorical_crossentropy")
    a2.fit(X, Y_INT, batch_size=4, epochs=3, shuffle=False, verbose=0, **kw)
    for wa, wb in zip(a2.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)


def test_class_weight_closed_form_and_errors():
    m = ours()
    before = m.evaluate(X[:1], Y[:1])
    m2 = ours()
    # one sample of class 0 weighted 3: the loss (before the update) is 3 times the plain one
    assert m2.train_on_batch(X[:1], Y[:1], class_weight={0: 3.0}) == pytest.approx(3 * before)
    with pytest.raises(ValueError, match="together"):
        m.fit(X, Y, class_weight={0: 1.0}, sample_weight=np.ones(12), verbose=0)
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        m.fit(X, Y, sample_weight=np.ones(5), verbose=0)


@needs_keras
def test_learning_rate_scheduler_matches_keras():
    def sched(epoch, lr):
        return lr if epoch < 1 else lr * 0.5
    a, b = ours(), theirs()
    ha = a.fit(X, Y, batch_size=4, epochs=4, shuffle=False, verbose=0,
               callbacks=[C.LearningRateScheduler(sched)])
    hb = b.fit(X, Y, batch_size=4, epochs=4, shuffle=False, verbose=0,
               callbacks=[keras.callbacks.LearningRateScheduler(sched)])
    np.testing.assert_allclose(ha.history["learning_rate"], hb.history["learning_rate"],
                               rtol=1e-6)
    assert ha.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)


@needs_keras
def test_reduce_lr_on_plateau_matches_keras():
    kw = dict(monitor="loss", factor=0.5, patience=1, min_delta=0.05, cooldown=1, min_lr=0.02)
    a, b = ours(), theirs()
    ha = a.fit(X, Y, batch_size=4, epochs=8, shuffle=False, verbose=0,
               callbacks=[C.ReduceLROnPlateau(**kw)])
    hb = b.fit(X, Y, batch_size=4, epochs=8, shuffle=False, verbose=0,
               callbacks=[keras.callbacks.ReduceLROnPlateau(**kw)])
    np.testing.assert_allclose(ha.history["learning_rate"], hb.history["learning_rate"],
                               rtol=1e-6)
    assert min(ha.history["learning_rate"]) < 0.1      # it did reduce
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-4)


def test_reduce_lr_on_plateau_closed_form():
    m = ours()
    cb = C.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_lr=0.03)
    cb.set_model(m)
    cb.on_train_begin()
    lrs = []
    for loss in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]:
        logs = {"loss": loss}
        cb.on_epoch_end(0, logs)
        lrs.append(m.optimizer.learning_rate)
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.03, 0.03, 0.03])


@needs_keras
@pytest.mark.parametrize("name,ours_m,keras_m,y,p", [
    ("precision", "precision", "Precision", None, None),
    ("recall", "recall", "Recall", None, None),
    ("auc", "auc", "AUC", None, None),
])
def test_stateful_metrics_match_keras(name, ours_m, keras_m, y, p):
    y = (R.random((40, 3)) > 0.6).astype(np.float32)
    p = R.random((40, 3)).astype(np.float32)
    km = getattr(keras.metrics, keras_m)()
    for lo in range(0, 40, 16):   # three batches accumulate
        km.update_state(y[lo:lo + 16], p[lo:lo + 16])
    _, om = metrics.get(ours_m)
    om.reset_state()
    for lo in range(0, 40, 16):
        om.update_state(p[lo:lo + 16], y[lo:lo + 16])
    assert om.result() == pytest.approx(float(keras.ops.convert_to_numpy(km.result())),
                                        rel=1e-5)


@needs_keras
def test_top_k_and_mae_match_keras():
    p = R.random((30, 6)).astype(np.float32)
    lab = R.integers(0, 6, 30)
    onehot = np.eye(6, dtype=np.float32)[lab]
    for k in (1, 2, 4):
        ref = keras.metrics.TopKCategoricalAccuracy(k=k)
        ref.update_state(onehot, p)
        assert metrics.top_k_categorical_accuracy(p, onehot, k) == pytest.approx(
            float(keras.ops.convert_to_numpy(ref.result())))
        assert metrics.sparse_top_k_categorical_accuracy(p, lab, k) == pytest.approx(
            float(keras.ops.convert_to_numpy(ref.result())))
    ref = keras.metrics.MeanAbsoluteError()
    ref.update_state(onehot, p)
    assert metrics.MeanAbsoluteError()(p, onehot) == pytest.approx(
        float(keras.ops.convert_to_numpy(ref.result())), rel=1e-6)


def test_metrics_in_fit_accumulate_over_the_epoch():
    m = ours(metrics_=["precision", metrics.Recall(), "top_k_categorical_accuracy", "auc"])
    h = m.fit(X, Y, batch_size=5, epochs=1, shuffle=False, verbose=0)
    pred = m.predict(X)
    _, prec = metrics.get("precision")
    # after the epoch, evaluate's precision is the one of the whole set (not a batch mean)
    values = m.evaluate(X, Y, batch_size=5)
    assert values[1] == pytest.approx(prec(pred, Y))
    tp = ((pred > 0.5) & (Y > 0.5)).sum()
    assert values[2] == pytest.approx(tp / Y.sum())
    assert values[3] == 1.0          # top-5 of 3 classes
    assert set(h.history) == {"loss", "precision", "recall", "top_k_categorical_accuracy",
                              "auc"}


def test_auc_closed_form():
    auc = metrics.AUC(num_thresholds=1000)
    auc.update_state(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    assert auc.result() == pytest.approx(0.75, abs=1e-3)     # sklearn's roc_auc_score


def test_regularizer_penalty_closed_form_and_config():
    d = Dense(2, input_shape=(2,), kernel_regularizer=regularizers.L1L2(l1=0.5, l2=0.25),
              bias_regularizer="l2")
    d(np.ones((1, 2), np.float32))
    d.set_weights([np.array([[1.0, -2.0], [0.0, 3.0]]), np.array([1.0, 1.0])])
    total = sum(t.item() for t in d.losses)
    assert total == pytest.approx(0.5 * 6 + 0.25 * 14 + 0.01 * 2)
    clone = Dense.from_config(d.get_config())
    assert isinstance(clone._weight_rules["kernel"][0], regularizers.L1L2)
    with pytest.raises(ValueError, match="unknown regularizer"):
        Dense(2, kernel_regularizer="l3")


def test_steps_per_epoch_and_initial_epoch():
    m = ours()
    h = m.fit(X, Y, batch_size=2, epochs=3, steps_per_epoch=2, initial_epoch=1, verbose=0)
    assert m.optimizer.iterations == 4 and h.epoch == [1, 2]


def test_csv_logger_terminate_on_nan_lambda(tmp_path):
    m = ours()
    path = tmp_path / "log.csv"
    seen = []
    m.fit(X, Y, batch_size=4, epochs=2, verbose=0,
          callbacks=[C.CSVLogger(path), C.LambdaCallback(
              on_epoch_end=lambda epoch, logs: seen.append((epoch, logs["loss"])))])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss"] and [r[0] for r in rows[1:]] == ["0", "1"]
    assert [float(r[1]) for r in rows[1:]] == pytest.approx([v for _, v in seen])
    m2 = ours(opt=engine.optimizers.SGD(1e30))
    x_big = X * 1e20
    h = m2.fit(x_big, Y, batch_size=2, epochs=5, verbose=0, callbacks=[C.TerminateOnNaN()])
    assert len(h.epoch) == 1


def test_backup_and_restore_resumes(tmp_path):
    class Crash(engine.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("crash")
    m = ours()
    backup = C.BackupAndRestore(tmp_path / "bk")
    with pytest.raises(RuntimeError):
        m.fit(X, Y, batch_size=4, epochs=4, shuffle=False, verbose=0,
              callbacks=[backup, Crash()])
    assert (tmp_path / "bk" / "backup.npz").exists()
    m2 = ours()                          # a new process would rebuild the model
    h = m2.fit(X, Y, batch_size=4, epochs=4, shuffle=False, verbose=0, callbacks=[backup])
    assert h.epoch == [2, 3]             # epochs 0 and 1 were backed up
    ref = ours()                         # SGD has no state: same as an uninterrupted run
    ref.fit(X, Y, batch_size=4, epochs=4, shuffle=False, verbose=0)
    for wa, wb in zip(m2.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
    assert m2.optimizer.iterations == ref.optimizer.iterations
    assert not (tmp_path / "bk" / "backup.npz").exists()   # deleted at the normal end


def test_rules_on_conv_separable_prelu_survive_save_load(tmp_path):
    from engine.layers import Conv2D, Flatten, PReLU, SeparableConv2D
    engine.set_seed(5)
    model = engine.Sequential([
        Conv2D(2, 3, input_shape=(1, 6, 6), kernel_regularizer="l2",
               kernel_constraint=constraints.MaxNorm(1.0, axis=(1, 2, 3))),
        SeparableConv2D(2, 3, depthwise_regularizer=regularizers.L1(0.1),
                        pointwise_constraint="non_neg"),
        PReLU(alpha_regularizer="l2", alpha_constraint=constraints.NonNeg()), Flatten(),
        Dense(1)])
    model.compile(engine.optimizers.SGD(0.5), "mse")
    x = R.normal(size=(8, 1, 6, 6)).astype(np.float32)
    y = R.normal(size=(8, 1)).astype(np.float32)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    conv, sep, prelu = model.layers[:3]
    assert np.all(np.sqrt((conv.kernel.data ** 2).sum(axis=(1, 2, 3))) <= 1.0 + 1e-6)
    assert np.all(sep.pointwise_kernel.data >= 0) and np.all(prelu.alpha.data >= 0)
    assert len(model.losses) == 3
    plain = float(np.mean((model.predict(x) - y) ** 2))
    penalty = sum(t.item() for t in model.losses)
    assert model.evaluate(x, y) == pytest.approx(plain + penalty, rel=1e-5)
    assert sep.get_config()["depthwise_regularizer"] == {"class_name": "L1",
                                                         "config": {"l1": 0.1}}
    path = str(tmp_path / "m.npz")
    model.save(path)
    again = engine.load_model(path)
    again.compile("sgd", "mse")
    assert len(again.losses) == 3
    assert again.evaluate(x, y) == pytest.approx(model.evaluate(x, y), rel=1e-6)
