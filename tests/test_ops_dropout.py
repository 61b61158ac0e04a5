"""Inverted dropout."""
import numpy as np
import pytest

from engine import functional as F
from engine.autograd import gradcheck
from engine.tensor import Tensor


def test_identity_when_not_training_or_rate_zero():
    x = Tensor(np.ones((3, 4)), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True) is x


def test_mask_is_reproducible_and_scaled():
    x = Tensor(np.ones((200, 50), np.float32))
    a = F.dropout(x, 0.25, True, rng=np.random.default_rng(1)).numpy()
    b = F.dropout(x, 0.25, True, rng=np.random.default_rng(1)).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert set(np.unique(a).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert abs((a == 0).mean() - 0.25) < 0.02
    assert abs(a.mean() - 1.0) < 0.03  # inverted dropout keeps the expectation


def test_gradient_uses_the_same_mask():
    x = Tensor(np.random.default_rng(2).standard_normal((4, 5)), requires_grad=True)
    y = F.dropout(x, 0.5, True, rng=np.random.default_rng(3))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, (y.numpy() != 0) * 2.0)
    assert gradcheck(lambda t: F.dropout(t, 0.3, True, rng=np.random.default_rng(4)), [x])


def test_errors():
    x = Tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"dropout: rate must be in \[0, 1\), received 1.0"):
        F.dropout(x, 1.0, True)
    with pytest.raises(ValueError, match="dropout: rate must be in"):
        F.dropout(x, -0.1, True)
    with pytest.raises(TypeError, match="dropout: rate must be a float"):
        F.dropout(x, "0.5", True)
    with pytest.raises(TypeError, match="dropout: rng must be a numpy.random.Generator"):
        F.dropout(x, 0.5, True, rng=np.random.RandomState(0))
