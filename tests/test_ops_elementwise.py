"""Element-wise arithmetic: values, broadcasting gradients, dtype, errors."""
import numpy as np
import pytest

from engine import functional as F
from engine.autograd import gradcheck
from engine.tensor import Tensor


def T(shape, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return Tensor(np.abs(a) + 0.5 if positive else a, requires_grad=True)


SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1, 4), (3, 1)), ((4,), ()), ((1, 3), (2, 1))]


@pytest.mark.parametrize("sa,sb", SHAPES)
@pytest.mark.parametrize("op", [F.add, F.sub, F.mul, F.div])
def test_binary_ops_gradcheck_with_broadcasting(op, sa, sb):
    a, b = T(sa, 1), T(sb, 2, positive=True)
    assert gradcheck(op, [a, b])


@pytest.mark.parametrize("op,ref", [(F.add, np.add), (F.sub, np.subtract),
                                    (F.mul, np.multiply), (F.div, np.divide)])
def test_binary_ops_values(op, ref):
    a, b = np.arange(1.0, 7.0).reshape(2, 3), np.array([2.0, 4.0, 8.0])
    np.testing.assert_array_equal(op(Tensor(a), Tensor(b)).numpy(), ref(a, b))


def test_operators_match_functions_and_accept_scalars_both_sides():
    a = T((3,), 3, positive=True)
    for y, ref in [(a + 2, a.data + 2), (2 + a, 2 + a.data), (a - 2, a.data - 2),
                   (2 - a, 2 - a.data), (a * 2, a.data * 2), (2 * a, 2 * a.data),
                   (a / 2, a.data / 2), (2 / a, 2 / a.data), (-a, -a.data),
                   (a ** 3, a.data ** 3)]:
        np.testing.assert_allclose(y.numpy(), ref)
        assert y.requires_grad
    assert gradcheck(lambda t: 2 / t - 3 * t + (1 - t) * 0.5, [a])


@pytest.mark.parametrize("p", [2, 3, 0.5, -1.5])
def test_power_gradcheck(p):
    assert gradcheck(lambda t: t ** p, [T((2, 3), 4, positive=True)])


def test_power_needs_a_scalar_exponent():
    with pytest.raises(TypeError, match="power: exponent must be a real scalar"):
        T((2,)) ** Tensor([2.0])


@pytest.mark.parametrize("fn", [F.exp, F.log, F.sqrt, F.neg])
def test_unary_gradcheck(fn):
    assert gradcheck(fn, [T((3, 2), 5, positive=True)])


def test_unary_methods():
    a = T((4,), 6, positive=True)
    np.testing.assert_allclose(a.exp().numpy(), np.exp(a.data))
    np.testing.assert_allclose(a.log().numpy(), np.log(a.data))
    np.testing.assert_allclose(a.sqrt().numpy(), np.sqrt(a.data))


def test_broadcast_error_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"mul: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        Tensor(np.ones((2, 3))) * Tensor(np.ones(4))


def test_gradient_only_for_inputs_that_need_it():
    a = T((2, 2))
    b = Tensor(np.ones((2, 2)))
    (a * b).sum().backward()
    assert b.grad is None and a.grad is not None


def test_float32_survives_every_binary_op():
    a = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    for op in (F.add, F.sub, F.mul, F.div):
        y = op(a, np.full(3, 2.0))  # a float64 ndarray operand adopts the Tensor's dtype
        assert y.dtype == np.float32
        y.sum().backward()
        assert a.grad.dtype == np.float32
