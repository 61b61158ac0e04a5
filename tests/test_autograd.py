"""Tensor, the tape (backward, accumulation, no_grad) and gradcheck."""
import threading

import numpy as np
import pytest

from engine import functional as F
from engine.autograd import (GradcheckError, gradcheck, is_grad_enabled, no_grad, record,
                             set_num_threads)
from engine.tensor import Tensor


# -- Tensor construction and attributes -------------------------------------------------

def test_float_lists_default_to_float32():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(3.0).dtype == np.float32
    assert Tensor(np.ones(2, np.float16)).dtype == np.float32


def test_float64_arrays_are_kept_and_dtype_is_honoured():
    assert Tensor(np.ones(3)).dtype == np.float64
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64
    assert Tensor(np.ones(3), dtype=np.float32).dtype == np.float32


def test_integer_data_keeps_its_dtype_and_cannot_require_grad():
    assert Tensor(np.array([1, 2])).dtype.kind == "i"
    with pytest.raises(TypeError, match="requires_grad=True needs a float dtype"):
        Tensor(np.array([1, 2]), requires_grad=True)


def test_non_numeric_data_is_rejected():
    with pytest.raises(TypeError, match="Tensor: data must be numeric"):
        Tensor(np.array(["a"]))
    with pytest.raises(TypeError, match="Tensor: data must be numeric"):
        Tensor(np.array([1j]))


def test_attributes_and_conversions():
    a = np.arange(6.0).reshape(2, 3)
    t = Tensor(a, requires_grad=True)
    assert (t.shape, t.ndim, t.size, t.dtype) == ((2, 3), 2, 6, np.float64)
    assert t.numpy() is a and np.asarray(t) is a
    assert t.grad is None and t.requires_grad and t.is_leaf
    d = (t * 2).detach()
    assert not d.requires_grad and d.is_leaf
    assert Tensor([[4.0]]).item() == 4.0
    with pytest.raises(ValueError, match="item: only size-1"):
        t.item()
    assert "requires_grad=True" in repr(t)


def test_comparisons_return_plain_arrays_and_tensors_stay_hashable():
    t = Tensor([1.0, 2.0, 3.0])
    for r in (t > 1.5, t <= 2.0, t == Tensor([1.0, 0.0, 3.0]), t != 2.0, t < 3, t >= 2):
        assert type(r) is np.ndarray and r.dtype == bool
    assert (t > 1.5).tolist() == [False, True, True]
    assert len({t, Tensor([1.0])}) == 2


def test_ndarray_on_the_left_defers_to_tensor():
    t = Tensor([1.0, 2.0], requires_grad=True)
    y = np.array([10.0, 20.0]) + t
    assert isinstance(y, Tensor) and y.requires_grad
    assert isinstance(np.ones((3, 2)) @ t, Tensor)


def test_float32_stays_float32_with_scalars_and_float64_arrays():
    t = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    for y in (t + 1.5, 2.0 * t, t / np.float64(3), t - np.ones(2), np.ones(2) * t,
              t ** 2, -t, (t * t).sum(), t.mean(axis=0), t.exp().log().sqrt()):
        assert y.dtype == np.float32
    (t * np.ones(2)).sum().backward()
    assert t.grad.dtype == np.float32


# -- backward ---------------------------------------------------------------------------

def test_backward_defaults_to_one_for_scalars_only():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])
    with pytest.raises(ValueError, match=r"grad must be given for a non-scalar tensor.*\(2,\)"):
        (x * 3).backward()
    with pytest.raises(ValueError, match=r"grad must have the shape of the tensor \(2,\)"):
        (x * 3).backward(np.ones(3))


def test_backward_with_explicit_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 40.0])


def test_backward_on_a_constant_is_an_error():
    with pytest.raises(ValueError, match="does not require a gradient"):
        (Tensor([1.0]) * 2).backward()


def test_leaf_grad_accumulates_until_zero_grad():
    w = Tensor([1.0, -2.0], requires_grad=True)
    (w * 2).sum().backward()
    (w * 2).sum().backward()
    np.testing.assert_allclose(w.grad, [4.0, 4.0])
    w.zero_grad()
    assert w.grad is None
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad, [2.0, -4.0])


def test_tensor_used_twice_accumulates():
    x = Tensor([3.0], requires_grad=True)
    (x * x + x).backward()
    np.testing.assert_allclose(x.grad, [7.0])


def test_diamond_graph_accumulates_both_paths():
    x = Tensor(np.array([0.5, -1.5]), requires_grad=True)
    a = x.sigmoid()
    y = (a * 2 + a.exp()).sum()
    y.backward()
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(x.grad, (2 + np.exp(s)) * s * (1 - s))


def test_shared_gradient_arrays_are_not_aliased_into_grad():
    a = Tensor([1.0], requires_grad=True)
    b = Tensor([1.0], requires_grad=True)
    (a + b).backward()
    a.grad += 5  # an optimizer updating in place must not touch b.grad
    np.testing.assert_allclose(b.grad, [1.0])


def test_deep_graph_has_no_recursion_limit():
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.backward()
    np.testing.assert_allclose(x.grad, [1.0])


def test_gradient_reaches_inputs_as_well_as_weights():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    F.linear(x, w).sum().backward()
    np.testing.assert_allclose(x.grad, np.ones((4, 2)) @ w.data.T)
    np.testing.assert_allclose(w.grad, x.data.T @ np.ones((4, 2)))


def test_a_wrongly_shaped_backward_is_reported():
    x = Tensor([1.0, 2.0], requires_grad=True)
    out = record(Tensor._result(x.data.copy()), "bad_op", (x,), lambda g: (g[:1],))
    with pytest.raises(RuntimeError, match=r"bad_op: backward produced a gradient of shape "
                                           r"\(1,\) for an input of shape \(2,\)"):
        out.sum().backward()


# -- grad mode --------------------------------------------------------------------------

def test_no_grad_stops_recording_and_nests():
    w = Tensor([1.0], requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        with no_grad():
            y = w * 2
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.is_leaf


def test_no_grad_is_per_thread():
    seen = []
    with no_grad():
        t = threading.Thread(target=lambda: seen.append(is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_set_num_threads_reaches_kernels():
    import kernels
    before = kernels.get_num_threads()
    try:
        set_num_threads(1)
        assert kernels.get_num_threads() == 1
    finally:
        set_num_threads(before)


# -- gradcheck --------------------------------------------------------------------------

def test_gradcheck_passes_a_correct_op_and_leaves_inputs_untouched():
    x = Tensor(np.array([0.3, -0.7, 1.1], np.float32), requires_grad=True)
    assert gradcheck(lambda a: (a * a.tanh()).sum(), [x]) is True
    assert x.grad is None and x.dtype == np.float32


def test_gradcheck_catches_a_wrong_backward():
    def bad_square(t):
        # forward t^2, backward claims 3 t: wrong
        return record(Tensor._result(t.data ** 2), "bad_square", (t,),
                      lambda g: (g * 3 * t.data,))
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(bad_square, [x])
    msg = str(info.value)
    assert msg.startswith("output 0 w.r.t. input 0 at index (0,): numerical 2")
    assert "analytical 3" in msg


def test_gradcheck_names_the_failing_output_and_input():
    def two_outputs(a, b):
        wrong = record(Tensor._result(a.data * b.data), "bad_mul", (a, b),
                       lambda g: (g * b.data, g * b.data))  # d/db should be a
        return a + b, wrong
    a = Tensor(np.array([[1.0, 2.0]]), requires_grad=True)
    b = Tensor(np.array([[3.0, 5.0]]), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"^output 1 w\.r\.t\. input 1 at index \(0, 0\): "
                                             r"numerical 1, analytical 3"):
        gradcheck(two_outputs, [a, b])


def test_gradcheck_skips_inputs_without_requires_grad_and_validates():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = Tensor(np.array([3.0, 4.0]))
    assert gradcheck(lambda x, y: x * y, [a, c])
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        gradcheck(lambda x: x * 2, [c])
    with pytest.raises(TypeError, match="fn must return a Tensor"):
        gradcheck(lambda x: x.data, [a])
    with pytest.raises(TypeError, match="inputs must be Tensors"):
        gradcheck(lambda x: x, [np.ones(2)])


# -- the course's backprop worked example -----------------------------------------------

def test_course_backprop_example():
    x = Tensor(np.array([[0.05, 0.10]]))
    w1 = Tensor(np.array([[0.15, 0.25], [0.20, 0.30]]), requires_grad=True)
    b1 = Tensor(np.array([0.35, 0.35]), requires_grad=True)
    w2 = Tensor(np.array([[0.40, 0.50], [0.45, 0.55]]), requires_grad=True)
    b2 = Tensor(np.array([0.60, 0.60]), requires_grad=True)
    target = np.array([[0.01, 0.99]])

    h = F.sigmoid(x @ w1 + b1)
    out = F.sigmoid(F.linear(h, w2, b2))
    np.testing.assert_allclose(h.numpy(), [[0.593269992, 0.596884378]], rtol=1e-8)
    np.testing.assert_allclose(out.numpy(), [[0.75136507, 0.772928465]], rtol=1e-8)
    err = (0.5 * (target - out) ** 2).sum()
    assert err.item() == pytest.approx(0.298371109, abs=1e-9)
    # Keras "mse" (mean over the 2 outputs) of this example equals the course's E.
    assert F.mse_loss(out, target).item() == pytest.approx(err.item(), rel=1e-12)

    err.backward()
    lr = 0.5
    new_w2 = w2.data - lr * w2.grad
    new_w1 = w1.data - lr * w1.grad
    # w5 (h1 -> o1) is W2[0, 0]; w6 (h2 -> o1) is W2[1, 0]; w1 (x1 -> h1) is W1[0, 0]
    assert new_w2[0, 0] == pytest.approx(0.35891648, abs=1e-8)
    assert new_w2[1, 0] == pytest.approx(0.408666186, abs=1e-8)
    assert new_w2[0, 1] == pytest.approx(0.511301270, abs=1e-8)
    assert new_w2[1, 1] == pytest.approx(0.561370121, abs=1e-8)
    assert new_w1[0, 0] == pytest.approx(0.149780716, abs=1e-8)
    assert new_w1[1, 0] == pytest.approx(0.19956143, abs=1e-8)
    assert new_w1[0, 1] == pytest.approx(0.24975114, abs=1e-8)
    assert new_w1[1, 1] == pytest.approx(0.29950229, abs=1e-8)
