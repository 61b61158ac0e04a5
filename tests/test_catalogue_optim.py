"""Optimizers, clipping and learning-rate schedules against closed forms and real Keras 3."""
import math

import numpy as np
import pytest

import engine
from engine import optim, schedules
from engine.tensor import Tensor
from tests._keras_ref import keras_or_none

keras = keras_or_none()
needs_keras = pytest.mark.skipif(keras is None, reason="keras 3 (torch backend) not installed")

W0 = np.array([[0.5, -1.0, 2.0], [0.1, 0.0, -0.3]], np.float32)
B0 = np.array([0.2, -0.4], np.float32)


def _grads(step):
    """A fixed sequence of gradients, different each step, including a zero entry."""
    r = np.random.default_rng(100 + step)
    gw = r.normal(size=W0.shape).astype(np.float32)
    gw[0, 1] = 0.0
    return gw, r.normal(size=B0.shape).astype(np.float32) * 3


def _ours(opt, steps=5):
    w, b = Tensor(W0.copy(), requires_grad=True), Tensor(B0.copy(), requires_grad=True)
    out = []
    for s in range(steps):
        w.grad, b.grad = _grads(s)
        opt.step([w, b])
        out.append((w.data.copy(), b.data.copy()))
    return out


def _theirs(opt, steps=5):
    w, b = keras.Variable(W0.copy()), keras.Variable(B0.copy())
    out = []
    for s in range(steps):
        gw, gb = _grads(s)
        opt.apply_gradients([(keras.ops.convert_to_tensor(gw), w),
                             (keras.ops.convert_to_tensor(gb), b)])
        out.append((keras.ops.convert_to_numpy(w.value), keras.ops.convert_to_numpy(b.value)))
    return out


CASES = [
    ("SGD", dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(learning_rate=0.01)),
    ("AdamW", dict(learning_rate=0.01, weight_decay=0.1)),
    ("Adamax", dict(learning_rate=0.02)),
    ("Nadam", dict(learning_rate=0.01)),
    ("Adadelta", dict(learning_rate=1.0)),
    ("Lion", dict(learning_rate=0.01)),
    ("Lamb", dict(learning_rate=0.01)),
    ("Adam", dict(learning_rate=0.01, clipnorm=0.5)),
    ("Adam", dict(learning_rate=0.01, global_clipnorm=0.5)),
    ("SGD", dict(learning_rate=0.1, clipvalue=0.3)),
    ("Nadam", dict(learning_rate=0.01, weight_decay=0.05, global_clipnorm=1.0)),
]


@needs_keras
@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{'-'.join(k)}" for n, k in CASES])
def test_five_step_trajectory_matches_keras(name, kw):
    ours = _ours(getattr(optim, name)(**kw))
    theirs = _theirs(getattr(keras.optimizers, name)(**kw))
    for (w1, b1), (w2, b2) in zip(ours, theirs):
        np.testing.assert_allclose(w1, w2, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(b1, b2, rtol=2e-5, atol=2e-6)


SCHEDS = [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5)),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5,
                              staircase=True)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=2, decay_rate=0.7)),
    ("PiecewiseConstantDecay", dict(boundaries=[2, 5], values=[0.1, 0.05, 0.01])),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=4, power=2.0)),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=3, cycle=True)),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=5, alpha=0.1)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=5, warmup_target=0.2,
                         warmup_steps=3)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=3)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=2, t_mul=1.0,
                                 m_mul=0.5, alpha=0.1)),
]


@needs_keras
@pytest.mark.parametrize("name,kw", SCHEDS, ids=[s[0] for s in SCHEDS])
def test_schedule_values_match_keras(name, kw):
    ours = getattr(schedules, name)(**kw)
    theirs = getattr(keras.optimizers.schedules, name)(**kw)
    for step in range(12):
        assert ours(step) == pytest.approx(float(theirs(step)), rel=1e-6, abs=1e-9)


@needs_keras
def test_schedule_inside_optimizer_matches_keras():
    kw = dict(initial_learning_rate=0.05, decay_steps=2, decay_rate=0.3)
    ours = _ours(optim.Adam(learning_rate=schedules.ExponentialDecay(**kw)))
    theirs = _theirs(keras.optimizers.Adam(
        learning_rate=keras.optimizers.schedules.ExponentialDecay(**kw)))
    for (w1, _), (w2, _) in zip(ours, theirs):
        np.testing.assert_allclose(w1, w2, rtol=2e-5, atol=2e-6)


def test_schedules_closed_forms():
    assert schedules.ExponentialDecay(1.0, 2, 0.5)(4) == pytest.approx(0.25)
    assert schedules.InverseTimeDecay(1.0, 2, 1.0, staircase=True)(3) == pytest.approx(0.5)
    pc = schedules.PiecewiseConstantDecay([1], [3.0, 1.0])
    assert (pc(0), pc(1), pc(2)) == (3.0, 3.0, 1.0)
    assert schedules.PolynomialDecay(1.0, 2, end_learning_rate=0.0, power=2)(1) == 0.25
    cd = schedules.CosineDecay(0.0, 4, warmup_target=1.0, warmup_steps=2)
    assert [cd(s) for s in (0, 1, 2)] == [0.0, 0.5, 1.0]
    assert cd(4) == pytest.approx(0.5) and cd(100) == pytest.approx(0.0)


def test_schedule_drives_learning_rate_per_step():
    opt = optim.SGD(learning_rate=schedules.PiecewiseConstantDecay([0], [1.0, 0.1]))
    w = Tensor(np.zeros(1, np.float32), requires_grad=True)
    for _ in range(3):
        w.grad = np.ones(1, np.float32)
        opt.step([w])
    assert w.data[0] == pytest.approx(-1.2)        # 1.0, then 0.1 twice
    cfg = opt.get_config()
    again = optim.get({"class_name": "SGD", "config": cfg})
    assert isinstance(again.schedule, schedules.PiecewiseConstantDecay)


def test_clipping_closed_forms():
    w = Tensor(np.zeros(2, np.float32), requires_grad=True)
    w.grad = np.array([3.0, 4.0], np.float32)       # norm 5
    optim.SGD(learning_rate=1.0, clipnorm=1.0).step([w])
    np.testing.assert_allclose(w.data, [-0.6, -0.8], rtol=1e-6)
    a, b = Tensor(np.zeros(1, np.float32), requires_grad=True), \
        Tensor(np.zeros(1, np.float32), requires_grad=True)
    a.grad, b.grad = np.array([3.0], np.float32), np.array([4.0], np.float32)
    optim.SGD(learning_rate=1.0, global_clipnorm=2.5).step([a, b])
    np.testing.assert_allclose([a.data[0], b.data[0]], [-1.5, -2.0], rtol=1e-6)
    with pytest.raises(ValueError, match="at most one"):
        optim.SGD(clipnorm=1.0, clipvalue=1.0)


def test_lion_and_adamax_closed_form_first_step():
    w = Tensor(np.array([1.0, 1.0], np.float32), requires_grad=True)
    w.grad = np.array([0.5, -2.0], np.float32)
    optim.Lion(learning_rate=0.1).step([w])
    np.testing.assert_allclose(w.data, [0.9, 1.1], rtol=1e-6)   # lr * sign(g)
    w = Tensor(np.array([1.0], np.float32), requires_grad=True)
    w.grad = np.array([0.5], np.float32)
    optim.Adamax(learning_rate=0.1, epsilon=0.0).step([w])
    # m = 0.05, u = 0.5, step = 0.1 / 0.1 * 0.05 / 0.5 = 0.1
    np.testing.assert_allclose(w.data, [0.9], rtol=1e-6)


def test_optimizers_by_name():
    for name in ("adamw", "adamax", "nadam", "adadelta", "lion", "lamb"):
        assert type(optim.get(name)).__name__.lower() == name
