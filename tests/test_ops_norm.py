"""batch_norm in training and inference mode."""
import numpy as np
import pytest

from engine import functional as F
from engine.autograd import gradcheck
from engine.tensor import Tensor


def T(shape, seed=0, scale=1.0, shift=0.0):
    a = np.random.default_rng(seed).standard_normal(shape) * scale + shift
    return Tensor(a, requires_grad=True)


def _bn_ref(x, gamma, beta, mean, var, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) \
        * gamma.reshape(shape) + beta.reshape(shape)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4), (2, 2, 3, 3), (2, 2, 2, 2, 3)])
def test_training_values_and_gradcheck(shape):
    c = shape[1]
    x, gamma, beta = T(shape, 1, 2.0, 1.0), T((c,), 2), T((c,), 3)
    axes = (0,) + tuple(range(2, len(shape)))
    y = F.batch_norm(x, gamma, beta, None, None, training=True)
    ref = _bn_ref(x.data, gamma.data, beta.data, x.data.mean(axis=axes),
                  x.data.var(axis=axes), 1e-3)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)
    # A weighted sum: the plain sum of a batch-normalised output has zero gradient w.r.t. x.
    wts = np.random.default_rng(4).standard_normal(shape)
    assert gradcheck(lambda a, g, b: F.batch_norm(a, g, b, None, None, True) * wts,
                     [x, gamma, beta])


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
def test_inference_values_and_gradcheck(shape):
    c = shape[1]
    x, gamma, beta = T(shape, 5), T((c,), 6), T((c,), 7)
    rm = np.random.default_rng(8).standard_normal(c)
    rv = np.random.default_rng(9).random(c) + 0.5
    y = F.batch_norm(x, gamma, beta, rm, rv, training=False, eps=1e-5)
    np.testing.assert_allclose(y.numpy(), _bn_ref(x.data, gamma.data, beta.data, rm, rv, 1e-5))
    before = rm.copy(), rv.copy()
    assert gradcheck(lambda a, g, b: F.batch_norm(a, g, b, rm, rv, False), [x, gamma, beta])
    g_const = Tensor(gamma.data)
    assert gradcheck(lambda a: F.batch_norm(a, g_const, None, rm, rv, False), [x])
    np.testing.assert_array_equal(rm, before[0])  # inference never updates the statistics
    np.testing.assert_array_equal(rv, before[1])


def test_running_statistics_update_in_place_keras_style():
    x = T((6, 2, 3), 10, 3.0, 2.0)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    ids = id(rm), id(rv)
    F.batch_norm(x, None, None, rm, rv, training=True, momentum=0.9)
    assert (id(rm), id(rv)) == ids and rm.dtype == np.float32
    mean, var = x.data.mean(axis=(0, 2)), x.data.var(axis=(0, 2))  # biased variance
    np.testing.assert_allclose(rm, 0.1 * mean, rtol=1e-6)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * var, rtol=1e-6)


def test_without_gamma_and_beta_and_gradcheck():
    x = T((4, 2, 3), 11)
    y = F.batch_norm(x, None, None, None, None, training=True)
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 2)), 0, atol=1e-12)
    wts = np.random.default_rng(12).standard_normal((4, 2, 3))
    assert gradcheck(lambda a: F.batch_norm(a, None, None, None, None, True) * wts, [x])


def test_float32_preserved():
    x = Tensor(np.random.default_rng(13).standard_normal((4, 3, 2, 2)).astype(np.float32),
               requires_grad=True)
    g = Tensor(np.ones(3, np.float32), requires_grad=True)
    b = Tensor(np.zeros(3, np.float32), requires_grad=True)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    for training in (True, False):
        y = F.batch_norm(x, g, b, rm, rv, training)
        assert y.dtype == np.float32
        (y * y).sum().backward()
        assert x.grad.dtype == g.grad.dtype == b.grad.dtype == np.float32


def test_errors():
    x = Tensor(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"batch_norm: gamma must have shape \(3,\) for x of "
                                         r"shape \(4, 3\), received \(2,\)"):
        F.batch_norm(x, np.ones(2), None, None, None, True)
    with pytest.raises(ValueError, match="batch_norm: running_mean is required in inference"):
        F.batch_norm(x, None, None, None, np.ones(3), False)
    with pytest.raises(ValueError, match=r"batch_norm: running_var must have shape \(3,\)"):
        F.batch_norm(x, None, None, np.zeros(3), np.ones(4), False)
    with pytest.raises(TypeError, match="batch_norm: running_mean must be a float ndarray"):
        F.batch_norm(x, None, None, [0.0, 0.0, 0.0], np.ones(3), True)
    with pytest.raises(ValueError, match="batch_norm: x must have at least 2 dims"):
        F.batch_norm(Tensor(np.ones(3)), None, None, None, None, True)
    with pytest.raises(ValueError, match="batch_norm: momentum must be in"):
        F.batch_norm(x, None, None, None, None, True, momentum=1.5)
