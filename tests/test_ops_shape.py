"""Shape ops: reshape, transpose, flatten, indexing, concat, pad."""
import numpy as np
import pytest

from engine import functional as F
from engine.autograd import gradcheck
from engine.tensor import Tensor


def T(shape, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_reshape_and_method_forms():
    x = T((2, 3, 4))
    assert F.reshape(x, (6, -1)).shape == (6, 4)
    assert x.reshape(4, 6).shape == x.reshape((4, 6)).shape == (4, 6)
    assert np.shares_memory(x.reshape(24).numpy(), x.data)  # a view, not a copy
    assert gradcheck(lambda t: t.reshape(3, 8) * np.arange(24.0).reshape(3, 8), [x])
    with pytest.raises(ValueError, match=r"reshape: cannot reshape x of shape \(2, 3, 4\) "
                                         r"\(size 24\) into shape \(5, 5\)"):
        x.reshape(5, 5)


def test_transpose_forms_and_gradcheck():
    x = T((2, 3, 4))
    assert x.T.shape == (4, 3, 2)
    assert x.transpose(1, 0, 2).shape == F.transpose(x, (1, 0, 2)).shape == (3, 2, 4)
    assert np.shares_memory(x.T.numpy(), x.data)
    w = np.arange(24.0).reshape(4, 2, 3)
    assert gradcheck(lambda t: t.transpose(2, 0, -2) * w, [x])
    with pytest.raises(ValueError, match=r"transpose: axes must be a permutation of 3 axes"):
        x.transpose(0, 1, 5)


def test_flatten():
    x = T((2, 3, 4, 5))
    assert F.flatten(x).shape == (2, 60)
    assert x.flatten(2).shape == (2, 3, 20)
    assert x.flatten(0).shape == (120,)
    assert gradcheck(lambda t: F.flatten(t) * np.arange(60.0), [T((2, 3, 4, 5), 1)])
    with pytest.raises(ValueError, match="flatten: start=4 is out of range"):
        x.flatten(4)


@pytest.mark.parametrize("index", [
    (slice(None), 1), 0, (Ellipsis, slice(1, 3)), (None, 1, slice(None, None, -1)),
    np.array([0, 2, 2, 1]), (np.array([1, 1]), np.array([0, 3])),
    np.array([[True, False, True, False]] * 3),
])
def test_getitem_gradcheck(index):
    x = T((3, 4), 2)
    np.testing.assert_array_equal(x[index].numpy(), x.data[index])
    assert gradcheck(lambda t: t[index] * 2.5, [x])


def test_getitem_repeated_integer_index_accumulates():
    x = Tensor(np.zeros(3), requires_grad=True)
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 0.0, 1.0])


def test_getitem_errors():
    with pytest.raises(IndexError, match=r"getitem: index .* is invalid for x of shape \(3,\)"):
        T((3,))[5]


def test_concat():
    a, b, c = T((2, 3), 1), T((2, 1), 2), Tensor(np.ones((2, 2)))
    y = F.concat([a, b, c], axis=1)
    np.testing.assert_array_equal(y.numpy(), np.concatenate([a.data, b.data, c.data], 1))
    assert gradcheck(lambda p, q: F.concat([p, q, c], axis=-1) * np.arange(6.0), [a, b])
    assert gradcheck(lambda p, q: F.concat([p, q], axis=0), [T((1, 2), 3), T((3, 2), 4)])
    with pytest.raises(ValueError, match=r"concat: all shapes must match except along axis 0"):
        F.concat([a, b], axis=0)
    with pytest.raises(ValueError, match="concat: needs at least one tensor"):
        F.concat([], axis=0)


def test_pad():
    x = T((1, 2, 3))
    y = F.pad(x, ((0, 0), (1, 2), (0, 1)))
    assert y.shape == (1, 5, 4)
    np.testing.assert_array_equal(y.numpy()[:, 1:3, :3], x.data)
    assert F.pad(x, 1).shape == (3, 4, 5)
    assert gradcheck(lambda t: F.pad(t, ((1, 0), (0, 1), (2, 2))) * 1.5, [x])
    with pytest.raises(ValueError, match="pad: pad_width must be >= 0"):
        F.pad(x, -1)
    with pytest.raises(ValueError, match="pad: pad_width must be an int"):
        F.pad(x, ((1, 1), (1, 1)))
