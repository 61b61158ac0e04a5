"""Activations: relu, leaky_relu, sigmoid, tanh, softmax, log_softmax."""
import numpy as np
import pytest
from scipy.special import expit, log_softmax as sp_log_softmax, softmax as sp_softmax

from engine import functional as F
from engine.autograd import gradcheck
from engine.tensor import Tensor


def T(shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    a[np.abs(a) < 0.05] += 0.2  # keep finite differences away from the relu kink
    return Tensor(a, requires_grad=True)


CASES = [
    (F.relu, lambda a: np.maximum(a, 0)),
    (lambda t: F.leaky_relu(t, 0.1), lambda a: np.where(a > 0, a, 0.1 * a)),
    (F.leaky_relu, lambda a: np.where(a > 0, a, 0.3 * a)),
    (F.sigmoid, expit),
    (F.tanh, np.tanh),
    (F.softmax, lambda a: sp_softmax(a, axis=-1)),
    (lambda t: F.softmax(t, axis=0), lambda a: sp_softmax(a, axis=0)),
    (F.log_softmax, lambda a: sp_log_softmax(a, axis=-1)),
    (lambda t: F.log_softmax(t, axis=1), lambda a: sp_log_softmax(a, axis=1)),
]


@pytest.mark.parametrize("fn,ref", CASES)
def test_activation_values_and_gradcheck(fn, ref):
    x = T((3, 4, 2), 1)
    np.testing.assert_allclose(fn(x).numpy(), ref(x.data), rtol=1e-12, atol=1e-15)
    assert gradcheck(fn, [x])


def test_tensor_methods():
    x = T((5,), 2)
    np.testing.assert_allclose(x.relu().numpy(), np.maximum(x.data, 0))
    np.testing.assert_allclose(x.sigmoid().numpy(), expit(x.data))
    np.testing.assert_allclose(x.tanh().numpy(), np.tanh(x.data))


def test_large_logits_stay_finite():
    z = Tensor(np.array([[1000.0, 0.0, -1000.0]], np.float32), requires_grad=True)
    assert np.isfinite(F.softmax(z).numpy()).all()
    ls = F.log_softmax(z)
    np.testing.assert_allclose(ls.numpy(), [[0.0, -1000.0, -2000.0]])
    ls.sum().backward()
    assert np.isfinite(z.grad).all()
    assert F.sigmoid(Tensor([-1000.0, 1000.0])).numpy().tolist() == [0.0, 1.0]


@pytest.mark.parametrize("fn", [F.relu, F.leaky_relu, F.sigmoid, F.tanh, F.softmax,
                                F.log_softmax])
def test_float32_preserved(fn):
    x = Tensor(np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32),
               requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_errors():
    with pytest.raises(ValueError, match=r"softmax: axis 2 is out of range for x of shape "
                                         r"\(2, 3\)"):
        F.softmax(Tensor(np.ones((2, 3))), axis=2)
    with pytest.raises(TypeError, match="leaky_relu: alpha must be a real number"):
        F.leaky_relu(Tensor(np.ones(2)), alpha="0.3")
