"""engine.ops.extra: values against closed forms / scipy, gradients by gradcheck."""
import math

import numpy as np
import pytest
from scipy.special import erf, expit

from engine.autograd import gradcheck
from engine.ops import extra as E
from engine.tensor import Tensor
from engine import functional as F

X = np.array([-3.5, -1.2, -0.3, 0.4, 1.1, 2.7, 7.0])

UNARY = [
    (E.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    (lambda t: E.elu(t, 0.5), lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    (E.selu, lambda x: E.SELU_SCALE * np.where(x > 0, x, E.SELU_ALPHA * (np.exp(x) - 1))),
    (E.softplus, lambda x: np.log1p(np.exp(x))),
    (E.softsign, lambda x: x / (1 + np.abs(x))),
    (E.gelu, lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2)))),
    (lambda t: E.gelu(t, approximate=True),
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    (E.swish, lambda x: x * expit(x)),
    (E.hard_sigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    (E.exponential, np.exp),
    (lambda t: E.relu_ext(t, max_value=2.0, negative_slope=0.1, threshold=0.5),
     lambda x: np.where(x >= 2.0, 2.0, np.where(x >= 0.5, x, 0.1 * (x - 0.5)))),
    (E.abs, np.abs),
    (E.square, np.square),
    (E.log_cosh, lambda x: np.log(np.cosh(x))),
    (lambda t: E.clip(t, -1.0, 1.5), lambda x: np.clip(x, -1.0, 1.5)),
]


@pytest.mark.parametrize("i", range(len(UNARY)))
def test_unary_values_and_gradcheck(i):
    fn, ref = UNARY[i]
    np.testing.assert_allclose(fn(Tensor(X, dtype=np.float64)).numpy(), ref(X), rtol=1e-10,
                               atol=1e-12)
    # away from kinks (|x| = 3 of hard_sigmoid, thresholds of relu_ext and clip)
    x = Tensor(np.array([-2.2, -0.7, 0.2, 0.9, 1.3]), requires_grad=True)
    assert gradcheck(fn, [x])


def test_log1p_softplus_no_overflow():
    assert np.isfinite(E.softplus(Tensor([1000.0, -1000.0])).numpy()).all()
    assert E.log_cosh(Tensor([1000.0], dtype=np.float64)).numpy()[0] == \
        pytest.approx(1000 - math.log(2))
    x = Tensor(np.array([0.5, 2.0]), requires_grad=True)
    assert gradcheck(E.log1p, [x])


def test_prelu_maximum_minimum_gradcheck():
    r = np.random.default_rng(0)
    x = Tensor(r.normal(size=(2, 3, 4)), requires_grad=True)
    a = Tensor(r.uniform(0.1, 0.5, size=(3, 1)), requires_grad=True)
    assert gradcheck(E.prelu, [x, a])
    b = Tensor(r.normal(size=(2, 3, 4)), requires_grad=True)
    assert gradcheck(E.maximum, [x, b]) and gradcheck(E.minimum, [x, b])
    np.testing.assert_array_equal(E.maximum(x, b).numpy(), np.maximum(x.data, b.data))


@pytest.mark.parametrize("size", [(2,), (2, 3), (1, 2, 2)])
def test_upsample_matches_repeat_and_gradcheck(size):
    r = np.random.default_rng(1)
    x = Tensor(r.normal(size=(2, 2) + (3,) * len(size)), requires_grad=True)
    ref = x.data
    for i, s in enumerate(size):
        ref = np.repeat(ref, s, axis=2 + i)
    np.testing.assert_array_equal(E.upsample(x, size).numpy(), ref)
    assert gradcheck(lambda t: E.upsample(t, size), [x])


def test_repeat_vector_gradcheck():
    x = Tensor(np.random.default_rng(2).normal(size=(2, 3)), requires_grad=True)
    y = E.repeat_vector(x, 4)
    assert y.shape == (2, 4, 3) and np.all(y.numpy() == x.data[:, None, :])
    assert gradcheck(lambda t: E.repeat_vector(t, 4), [x])


def _naive_conv_transpose(x, w, stride, out_len, pad_lo):
    """1-D scatter form: y[n, o, i*s + k - pad_lo] += x[n, c, i] * w[c, o, k]."""
    n, c, length = x.shape
    _, co, k = w.shape
    y = np.zeros((n, co, out_len + pad_lo + k + stride * length))
    for i in range(length):
        for kk in range(k):
            y[:, :, i * stride + kk] += x[:, :, i] @ w[:, :, kk]
    return y[:, :, pad_lo:pad_lo + out_len]


@pytest.mark.parametrize("stride,padding,k", [(1, "valid", 3), (2, "valid", 3), (2, "same", 3),
                                              (3, "same", 2), (2, "valid", 1), (2, "same", 4)])
def test_conv_transpose_1d_against_scatter(stride, padding, k):
    r = np.random.default_rng(3)
    x = r.normal(size=(2, 3, 5))
    w = r.normal(size=(3, 4, k))
    y = E.conv_transpose(Tensor(x), Tensor(w), stride=stride, padding=padding,
                         strategy="reference").numpy()
    out, pads = E.transpose_output_shape((5,), (k,), (stride,), (1,), padding)
    assert y.shape == (2, 4) + out
    np.testing.assert_allclose(y, _naive_conv_transpose(x, w, stride, out[0], pads[0][0]),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_transpose_2d_gradcheck(groups):
    r = np.random.default_rng(4)
    x = Tensor(r.normal(size=(2, 4, 3, 3)), requires_grad=True)
    w = Tensor(r.normal(size=(4, 3, 3, 2)), requires_grad=True)
    b = Tensor(r.normal(size=(3 * groups,)), requires_grad=True)
    assert gradcheck(lambda a, c, d: E.conv_transpose(a, c, d, stride=2, padding="same",
                                                      groups=groups, strategy="reference"),
                     [x, w, b])


def test_conv_transpose_is_adjoint_of_conv():
    """<conv_transpose(x), y> == <x, conv(y)> for the same weight and parameters."""
    r = np.random.default_rng(5)
    x = r.normal(size=(1, 3, 4, 5))
    w = r.normal(size=(3, 2, 3, 3))
    yt = E.conv_transpose(Tensor(x), Tensor(w), stride=2, strategy="reference").numpy()
    y = r.normal(size=yt.shape)
    back = F.conv2d(Tensor(y), Tensor(w), stride=2, strategy="reference").numpy()
    assert np.vdot(yt, y) == pytest.approx(np.vdot(x, back), rel=1e-10)


def test_conv_transpose_errors():
    with pytest.raises(ValueError, match="conv_transpose: w's first dim"):
        E.conv_transpose(Tensor(np.ones((1, 2, 4, 4))), Tensor(np.ones((3, 2, 3, 3))))
    with pytest.raises(ValueError, match="padding"):
        E.conv_transpose(Tensor(np.ones((1, 2, 4))), Tensor(np.ones((2, 2, 3))), padding=1)
