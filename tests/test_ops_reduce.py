"""Reductions: sum, mean, max."""
import numpy as np
import pytest

from engine import functional as F
from engine.autograd import gradcheck
from engine.tensor import Tensor


def T(shape, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


AXES = [None, 0, 1, -1, (0, 2), (2, 0, 1)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reduce_values_and_gradcheck(name, axis, keepdims):
    x = T((2, 3, 4), 1)
    y = getattr(F, name)(x, axis=axis, keepdims=keepdims)
    ax = tuple(a % 3 for a in axis) if isinstance(axis, tuple) else axis
    ref = getattr(np, name)(x.data, axis=ax, keepdims=keepdims)
    np.testing.assert_allclose(y.numpy(), ref)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x])


def test_mean_gradient_value():
    x = T((2, 5))
    x.mean().backward()
    np.testing.assert_allclose(x.grad, np.full((2, 5), 0.1))


def test_max_shares_gradient_among_ties():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [1, 0, 0]])


def test_reduce_errors():
    x = T((2, 3))
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range for a tensor of shape "
                                         r"\(2, 3\)"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="mean: repeated axis"):
        x.mean(axis=(0, -2))
    with pytest.raises(TypeError, match="max: axis must be None, an int or a tuple of ints"):
        x.max(axis=1.0)
    with pytest.raises(ValueError, match="max: cannot reduce over an empty axis"):
        Tensor(np.ones((0, 2))).max(axis=0)


def test_float32_preserved():
    x = Tensor(np.ones((3, 4), np.float32), requires_grad=True)
    for y in (x.sum(), x.mean(axis=1), x.max(axis=0)):
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == np.float32
