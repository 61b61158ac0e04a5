"""linear (Dense: x @ w + b, w in Keras (in, out) layout) and matmul."""
import numpy as np
import pytest

from engine import functional as F
from engine.autograd import gradcheck
from engine.tensor import Tensor


def T(shape, seed=0, rg=True):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=rg)


@pytest.mark.parametrize("x_shape", [(4, 3), (3,), (2, 5, 3)])
def test_linear_values_and_gradcheck(x_shape):
    x, w, b = T(x_shape, 1), T((3, 2), 2), T((2,), 3)
    np.testing.assert_allclose(F.linear(x, w, b).numpy(), x.data @ w.data + b.data)
    assert gradcheck(F.linear, [x, w, b])
    assert gradcheck(lambda x_, w_: F.linear(x_, w_), [x, w])


def test_linear_skips_the_input_gradient_when_not_needed():
    x, w = T((4, 3), 1, rg=False), T((3, 2), 2)
    F.linear(x, w).sum().backward()
    assert x.grad is None
    np.testing.assert_allclose(w.grad, x.data.T @ np.ones((4, 2)))


def test_linear_errors_name_the_shapes():
    x = Tensor(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"^linear: x of shape \(4, 3\) does not match w of "
                                         r"shape \(5, 2\): expected x\[\.\.\., 5\]$"):
        F.linear(x, Tensor(np.ones((5, 2))))
    with pytest.raises(ValueError, match=r"linear: b of shape \(3,\) does not match w of shape "
                                         r"\(3, 2\): expected \(2,\)"):
        F.linear(x, Tensor(np.ones((3, 2))), Tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"linear: w must have 2 dims \(in, out\)"):
        F.linear(x, Tensor(np.ones(3)))


def test_linear_float32_and_ndarray_arguments():
    x = np.ones((2, 3), np.float32)
    w = Tensor(np.ones((3, 4), np.float32), requires_grad=True)
    y = F.linear(x, w, np.zeros(4, np.float32))
    assert isinstance(y, Tensor) and y.dtype == np.float32
    y.sum().backward()
    assert w.grad.dtype == np.float32


@pytest.mark.parametrize("sa,sb", [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)),
                                   ((3,), (3,)), ((2, 2, 3), (3, 4)), ((2, 1, 2, 3), (3, 3, 2))])
def test_matmul_gradcheck(sa, sb):
    a, b = T(sa, 4), T(sb, 5)
    np.testing.assert_allclose((a @ b).numpy(), a.data @ b.data)
    assert gradcheck(F.matmul, [a, b])


def test_matmul_errors():
    with pytest.raises(ValueError, match=r"matmul: a of shape \(2, 3\) does not match b of "
                                         r"shape \(4, 2\)"):
        T((2, 3)) @ T((4, 2))
    with pytest.raises(ValueError, match="matmul: batch dims of shapes"):
        T((2, 2, 3)) @ T((3, 3, 2))
