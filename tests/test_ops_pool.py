"""Pooling ops: every kind in 1-3 spatial dims, global pooling, errors."""
import numpy as np
import pytest

import kernels
from engine import functional as F
from engine.autograd import gradcheck
from engine.tensor import Tensor


# gradcheck makes hundreds of tiny kernel calls; thread wake-ups would dominate
pytestmark = pytest.mark.usefixtures("one_thread")


def T(shape, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


# (x shape, size, stride, padding)
CONFIGS = {
    1: [((2, 2, 7), 3, 2, 1), ((1, 2, 6), 2, None, 0)],
    2: [((1, 2, 5, 6), (2, 3), None, 0), ((1, 2, 5, 5), 2, 2, "same"),
        ((1, 1, 6, 5), 3, (2, 1), ((1, 0), (0, 1)))],
    3: [((1, 2, 4, 4, 3), 2, (1, 2, 1), 0), ((1, 1, 5, 3, 4), (3, 2, 2), 2, "same")],
}
CASES = [(kind, nd, cfg) for kind in ("max", "avg", "sum", "l2") for nd in (1, 2, 3)
         for cfg in CONFIGS[nd]]


@pytest.mark.parametrize("kind,nd,cfg", CASES)
def test_pool_gradcheck(kind, nd, cfg):
    x_shape, size, stride, padding = cfg
    fn = getattr(F, f"{kind}_pool{nd}d")
    x = T(x_shape, nd)
    y = fn(x, size, stride=stride, padding=padding)
    np.testing.assert_allclose(y.numpy(), kernels.pool(x.data, kind, size, stride=stride,
                                                       padding=padding))
    assert gradcheck(lambda t: fn(t, size, stride=stride, padding=padding), [x])


def test_max_pool_values_and_routing():
    x = Tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    y = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(y.numpy(), [[[[5, 7], [13, 15]]]])
    y.sum().backward()
    expected = np.zeros((4, 4))
    expected[1::2, 1::2] = 1
    np.testing.assert_array_equal(x.grad[0, 0], expected)


def test_avg_pool_counts_padding_as_zeros():
    x = Tensor(np.ones((1, 1, 2)))
    np.testing.assert_allclose(F.avg_pool1d(x, 2, stride=1, padding=1).numpy(),
                               [[[0.5, 1.0, 0.5]]])


@pytest.mark.parametrize("kind", ["avg", "max", "sum", "l2"])
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 2, 3, 4), (1, 2, 2, 3, 2)])
def test_global_pool_gradcheck(kind, shape):
    x = T(shape, 5)
    ref = {"avg": np.mean, "max": np.max, "sum": np.sum,
           "l2": lambda a, axis: np.sqrt(np.sum(a * a, axis=axis))}[kind]
    y = F.global_pool(x, kind)
    assert y.shape == shape[:2]
    np.testing.assert_allclose(y.numpy(), ref(x.data, axis=tuple(range(2, len(shape)))))
    assert gradcheck(lambda t: F.global_pool(t, kind), [x])


def test_global_avg_and_max_pool_names():
    x = T((2, 3, 4, 4), 6)
    np.testing.assert_allclose(F.global_avg_pool(x).numpy(), x.data.mean(axis=(2, 3)))
    np.testing.assert_allclose(F.global_max_pool(x).numpy(), x.data.max(axis=(2, 3)))
    assert gradcheck(F.global_max_pool, [x]) and gradcheck(F.global_avg_pool, [x])


def test_float32_preserved():
    x = Tensor(np.random.default_rng(7).standard_normal((2, 3, 6, 6)).astype(np.float32),
               requires_grad=True)
    for y in (F.max_pool2d(x, 2), F.avg_pool2d(x, 3, stride=1, padding="same"),
              F.global_avg_pool(x), F.global_max_pool(x)):
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == np.float32


def test_errors_name_the_op():
    x = Tensor(np.ones((1, 2, 5)))
    with pytest.raises(ValueError, match=r"max_pool2d: x must have 4 dims \(N, C, H, W\), "
                                         r"received shape \(1, 2, 5\)"):
        F.max_pool2d(x, 2)
    with pytest.raises(ValueError, match="avg_pool1d: padding must be smaller than the pool "
                                         "size"):
        F.avg_pool1d(x, 2, padding=2)
    with pytest.raises(ValueError, match="sum_pool1d: output would be empty"):
        F.sum_pool1d(x, 6)
    with pytest.raises(ValueError, match="pool: kind must be 'max', 'avg', 'sum' or 'l2'"):
        F.pool(x, "median", 2)
    with pytest.raises(ValueError, match=r"global_avg_pool: x must have 3, 4 or 5 dims"):
        F.global_avg_pool(Tensor(np.ones((2, 3))))
