"""Losses, incl. the softmax/sigmoid + cross-entropy fusion."""
import numpy as np
import pytest
from scipy.special import expit, log_softmax, softmax

from engine import functional as F
from engine.autograd import gradcheck
from engine.tensor import Tensor


def T(shape, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def probs(shape, seed=0):
    """A leaf Tensor of probabilities (rows sum to 1) that is not a softmax output."""
    return Tensor(softmax(np.random.default_rng(seed).standard_normal(shape), axis=-1),
                  requires_grad=True)


def onehot(labels, k):
    return np.eye(k)[labels]


# -- mse --------------------------------------------------------------------------------

def test_mse_value_is_keras_mean_over_last_axis_then_batch():
    pred, target = T((4, 3), 1), np.random.default_rng(2).standard_normal((4, 3))
    loss = F.mse_loss(pred, target)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(np.mean(np.mean((pred.data - target) ** 2, axis=-1)))


def test_mse_gradcheck_wrt_pred_and_target():
    assert gradcheck(F.mse_loss, [T((3, 2, 4), 3), T((3, 2, 4), 4)])


# -- binary cross-entropy ---------------------------------------------------------------

def test_bce_value_and_gradcheck():
    p = Tensor(np.random.default_rng(5).random((4, 3)) * 0.8 + 0.1, requires_grad=True)
    t = (np.random.default_rng(6).random((4, 3)) > 0.5).astype(float)
    ref = -np.mean(t * np.log(p.data) + (1 - t) * np.log(1 - p.data))
    assert F.binary_cross_entropy(p, t).item() == pytest.approx(ref)
    assert gradcheck(lambda a: F.binary_cross_entropy(a, t), [p])


def test_bce_from_logits_and_sigmoid_fusion():
    z = T((5, 2), 7)
    t = np.random.default_rng(8).random((5, 2))
    ref = -np.mean(t * np.log(expit(z.data)) + (1 - t) * np.log(1 - expit(z.data)))
    assert F.binary_cross_entropy(z, t, from_logits=True).item() == pytest.approx(ref)
    assert F.binary_cross_entropy(F.sigmoid(z), t).item() == pytest.approx(ref)
    assert gradcheck(lambda a: F.binary_cross_entropy(a, t, from_logits=True), [z])
    assert gradcheck(lambda a: F.binary_cross_entropy(F.sigmoid(a), t), [z])
    big = Tensor(np.array([[100.0, -100.0]]), requires_grad=True)
    loss = F.binary_cross_entropy(F.sigmoid(big), np.array([[0.0, 1.0]]))
    assert loss.item() == pytest.approx(100.0)
    loss.backward()
    np.testing.assert_allclose(big.grad, [[0.5, -0.5]])


def test_bce_clips_probabilities_like_keras():
    p = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    loss = F.binary_cross_entropy(p, np.array([1.0, 0.0]))
    assert loss.item() == pytest.approx(-np.log(1e-7), rel=1e-6)
    loss.backward()
    np.testing.assert_array_equal(p.grad, [0.0, 0.0])  # no gradient where clipped


# -- categorical cross-entropy ----------------------------------------------------------

def test_categorical_value_and_gradcheck_on_probabilities():
    p = probs((4, 5), 9)
    t = onehot([0, 3, 4, 1], 5)
    assert F.categorical_cross_entropy(p, t).item() == pytest.approx(
        -np.mean(np.log(p.data[np.arange(4), [0, 3, 4, 1]])))
    assert gradcheck(lambda a: F.categorical_cross_entropy(a, t), [p])


def test_categorical_soft_targets_and_extra_axes_gradcheck():
    z = T((2, 3, 4), 10)
    t = softmax(np.random.default_rng(11).standard_normal((2, 3, 4)), axis=-1)
    ref = -np.sum(t * log_softmax(z.data, axis=-1)) / 6
    assert F.categorical_cross_entropy(z, t, from_logits=True).item() == pytest.approx(ref)
    assert gradcheck(lambda a: F.categorical_cross_entropy(F.softmax(a), t), [z])
    assert gradcheck(lambda a: F.categorical_cross_entropy(a, t, from_logits=True), [z])


def test_softmax_fusion_gradient_is_softmax_minus_onehot_over_n():
    z = T((6, 4), 12)
    labels = np.array([0, 1, 2, 3, 3, 1])
    t = onehot(labels, 4)
    F.categorical_cross_entropy(F.softmax(z), t).backward()
    np.testing.assert_allclose(z.grad, (softmax(z.data, axis=-1) - t) / 6, rtol=1e-14,
                               atol=1e-16)
    z.zero_grad()
    F.sparse_categorical_cross_entropy(F.softmax(z), labels).backward()
    np.testing.assert_allclose(z.grad, (softmax(z.data, axis=-1) - t) / 6, rtol=1e-14,
                               atol=1e-16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_path_is_finite_for_huge_logits(dtype):
    z = Tensor(np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]], dtype),
               requires_grad=True)
    t = onehot([1, 1], 3)
    loss = F.categorical_cross_entropy(F.softmax(z), t)
    assert loss.dtype == dtype
    assert loss.item() == pytest.approx(500.0)  # (1000 + 0) / 2
    loss.backward()
    assert np.isfinite(z.grad).all()
    np.testing.assert_allclose(z.grad, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-7)
    # The unfused path (probabilities only) clips instead: finite, but capped.
    p = Tensor(softmax(z.data.astype(np.float64), axis=-1), requires_grad=True)
    assert F.categorical_cross_entropy(p, t).item() == pytest.approx(-np.log(1e-7) / 2)


def test_softmax_over_another_axis_is_not_fused():
    z = T((3, 4), 13)
    t = onehot([0, 1, 2], 4)
    p = F.softmax(z, axis=0)
    ref = -np.mean(np.sum(t * np.log(np.clip(p.data, 1e-7, 1 - 1e-7)), axis=-1))
    assert F.categorical_cross_entropy(p, t).item() == pytest.approx(ref)
    assert gradcheck(lambda a: F.categorical_cross_entropy(F.softmax(a, axis=0), t), [z])


# -- sparse categorical cross-entropy and cross_entropy ---------------------------------

@pytest.mark.parametrize("label_shape", [(4,), (4, 1)])
def test_sparse_value_and_gradcheck(label_shape):
    labels = np.array([2, 0, 1, 2]).reshape(label_shape)
    p = probs((4, 3), 14)
    ref = -np.mean(np.log(p.data[np.arange(4), labels.ravel()]))
    assert F.sparse_categorical_cross_entropy(p, labels).item() == pytest.approx(ref)
    assert gradcheck(lambda a: F.sparse_categorical_cross_entropy(a, labels), [p])
    z = T((4, 3), 15)
    assert gradcheck(lambda a: F.sparse_categorical_cross_entropy(F.softmax(a), labels), [z])
    assert gradcheck(lambda a: F.cross_entropy(a, labels), [z])


def test_sparse_with_extra_axes_and_float_labels():
    z = T((2, 3, 4), 16)
    labels = np.array([[0, 3, 1], [2, 2, 0]], dtype=np.float64)
    ls = log_softmax(z.data, axis=-1)
    ref = -np.mean(np.take_along_axis(ls, labels.astype(int)[..., None], -1))
    assert F.cross_entropy(z, labels).item() == pytest.approx(ref)
    assert gradcheck(lambda a: F.cross_entropy(a, labels), [z])


def test_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    z = T((5, 4), 17)
    labels = np.array([3, 0, 1, 1, 2])
    tz = torch.tensor(z.data, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tz, torch.tensor(labels))
    tl.backward()
    loss = F.cross_entropy(z, labels)
    loss.backward()
    assert loss.item() == pytest.approx(tl.item(), rel=1e-12)
    np.testing.assert_allclose(z.grad, tz.grad.numpy(), rtol=1e-10)


def test_losses_keep_float32():
    z = Tensor(np.random.default_rng(18).standard_normal((3, 4)).astype(np.float32),
               requires_grad=True)
    labels = np.array([0, 1, 3])
    for loss in (F.cross_entropy(z, labels), F.mse_loss(z, np.zeros((3, 4))),
                 F.categorical_cross_entropy(F.softmax(z), onehot(labels, 4)),
                 F.sparse_categorical_cross_entropy(F.softmax(z), labels),
                 F.binary_cross_entropy(F.sigmoid(z), np.ones((3, 4)))):
        assert loss.dtype == np.float32
        z.zero_grad()
        loss.backward()
        assert z.grad.dtype == np.float32


def test_loss_errors():
    p = Tensor(np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"mse_loss: pred of shape \(2, 3\) does not match "
                                         r"target of shape \(3, 2\)"):
        F.mse_loss(p, np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"categorical_cross_entropy: pred of shape \(2, 3\) "
                                         r"does not match target of shape \(2,\)"):
        F.categorical_cross_entropy(p, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"sparse_categorical_cross_entropy: target labels "
                                         r"must be in \[0, 3\)"):
        F.sparse_categorical_cross_entropy(p, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"sparse_categorical_cross_entropy: target of shape "
                                         r"\(3,\) does not match pred of shape \(2, 3\)"):
        F.sparse_categorical_cross_entropy(p, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="target must hold integer class labels"):
        F.cross_entropy(p, np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: pred of shape"):
        F.binary_cross_entropy(p, np.ones(3))
