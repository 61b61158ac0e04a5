"""conv1d/2d/3d: gradcheck through every conv strategy the kernels offer, plus errors."""
import numpy as np
import pytest

import kernels
from engine import functional as F
from engine.autograd import gradcheck
from engine.tensor import Tensor

# gradcheck makes hundreds of tiny kernel calls; thread wake-ups would dominate
pytestmark = pytest.mark.usefixtures("one_thread")


# Every (strategy, backend) pair this build offers, plus strategy="auto" (backend "auto").
PAIRS = kernels.available("conv") + [("auto", "auto")]

# (fn, x shape, w shape, keyword arguments)
CONFIGS = {
    "1d-plain": (F.conv1d, (2, 2, 7), (3, 2, 3), {}),
    "1d-stride2-pad1": (F.conv1d, (1, 2, 8), (2, 2, 3), dict(stride=2, padding=1)),
    "1d-dilated-same": (F.conv1d, (1, 2, 7), (2, 2, 3), dict(dilation=2, padding="same")),
    "1d-asym-groups": (F.conv1d, (1, 4, 6), (4, 2, 2), dict(padding=((2, 1),), groups=2)),
    "2d-plain": (F.conv2d, (2, 2, 5, 5), (3, 2, 3, 3), {}),
    "2d-3x3": (F.conv2d, (2, 2, 5, 6), (3, 2, 3, 3), dict(padding=1)),
    "2d-same": (F.conv2d, (1, 2, 5, 4), (2, 2, 3, 2), dict(padding="same")),
    "2d-stride-asym": (F.conv2d, (1, 2, 6, 5), (2, 2, 3, 3),
                       dict(stride=(2, 1), padding=((1, 0), (0, 2)))),
    "2d-dilated": (F.conv2d, (1, 2, 7, 6), (2, 2, 3, 2), dict(dilation=(2, 1), padding=1)),
    "2d-depthwise": (F.conv2d, (1, 2, 5, 4), (4, 1, 2, 3), dict(groups=2, stride=2)),
    "3d-pad": (F.conv3d, (1, 2, 4, 3, 4), (2, 2, 2, 3, 2), dict(padding=1)),
    "3d-stride-same": (F.conv3d, (1, 1, 5, 4, 3), (2, 1, 3, 2, 3),
                       dict(stride=2, padding="same")),
    "3d-groups-dilated": (F.conv3d, (1, 2, 5, 4, 4), (2, 1, 2, 2, 2),
                          dict(groups=2, dilation=(2, 1, 2))),
}


def _inputs(x_shape, w_shape, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = Tensor(rng.standard_normal(w_shape), requires_grad=True)
    b = Tensor(rng.standard_normal(w_shape[0]), requires_grad=True) if bias else None
    return x, w, b


def _call_or_skip(fn, *args, **kwargs):
    """Run a conv; skip the test when an explicitly requested strategy cannot serve it."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        if "cannot serve" in str(e):
            pytest.skip(str(e))
        raise


@pytest.mark.parametrize("strategy,backend", PAIRS, ids=[f"{s}-{b}" for s, b in PAIRS])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_conv_gradcheck(name, strategy, backend):
    fn, x_shape, w_shape, kw = CONFIGS[name]
    x, w, b = _inputs(x_shape, w_shape)
    # The ops take a strategy; the backend is pinned for forward and backward by kernels.use.
    ref = kernels.conv(x.data, w.data, b.data, strategy="reference", **kw)
    with kernels.use(backend=None if backend in ("auto", "numpy") else backend):
        y = _call_or_skip(fn, x, w, b, strategy=strategy, **kw)
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-10)
        assert gradcheck(lambda x_, w_, b_: fn(x_, w_, b_, strategy=strategy, **kw),
                         [x, w, b], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["1d-plain", "2d-stride-asym", "3d-pad"])
def test_conv_without_bias_gradcheck(name):
    fn, x_shape, w_shape, kw = CONFIGS[name]
    x, w, _ = _inputs(x_shape, w_shape, seed=1, bias=False)
    assert gradcheck(lambda x_, w_: fn(x_, w_, **kw), [x, w])


def test_generic_conv_infers_the_rank():
    x, w, b = _inputs((1, 2, 5, 5), (3, 2, 3, 3), seed=2)
    np.testing.assert_allclose(F.conv(x, w, b, padding=1).numpy(),
                               F.conv2d(x, w, b, padding=1).numpy())


def test_backward_skips_grad_input_when_x_needs_none(monkeypatch):
    x, w, b = _inputs((1, 2, 5, 5), (3, 2, 3, 3), seed=3)
    x.requires_grad = False

    def forbidden(*a, **k):
        raise AssertionError("conv_grad_input must not run when x needs no gradient")
    monkeypatch.setattr(kernels, "conv_grad_input", forbidden)
    F.conv2d(x, w, b).sum().backward()
    assert w.grad.shape == w.shape and b.grad.shape == b.shape and x.grad is None


def test_forward_and_backward_use_the_requested_strategy(monkeypatch):
    seen = []
    for name in ("conv", "conv_grad_input", "conv_grad_weight"):
        real = getattr(kernels, name)

        def spy(*a, _real=real, _name=name, **k):
            seen.append((_name, k["strategy"]))
            return _real(*a, **k)
        monkeypatch.setattr(kernels, name, spy)
    x, w, b = _inputs((1, 2, 5, 5), (3, 2, 3, 3), seed=4)
    F.conv2d(x, w, b, strategy="reference").sum().backward()
    assert sorted(seen) == [("conv", "reference"), ("conv_grad_input", "reference"),
                            ("conv_grad_weight", "reference")]


def test_bias_gradient_is_gy_summed_over_batch_and_space():
    x, w, b = _inputs((2, 2, 4, 4), (3, 2, 3, 3), seed=5)
    gy = np.random.default_rng(6).standard_normal((2, 3, 2, 2))
    F.conv2d(x, w, b).backward(gy)
    np.testing.assert_allclose(b.grad, gy.sum(axis=(0, 2, 3)))


def test_float32_stays_float32():
    x = Tensor(np.random.default_rng(7).standard_normal((2, 3, 6, 6)).astype(np.float32),
               requires_grad=True)
    w = Tensor(np.random.default_rng(8).standard_normal((4, 3, 3, 3)).astype(np.float32),
               requires_grad=True)
    b = Tensor(np.zeros(4, np.float32), requires_grad=True)
    y = F.conv2d(x, w, b, padding="same")
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


def test_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    gy_shape = (2, 6, 5, 8)
    gy = rng.standard_normal(gy_shape)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=(2, 1), padding=(1, 1),
                                    dilation=(1, 2), groups=2)
    ty.backward(torch.tensor(gy))
    ex, ew, eb = (Tensor(a, requires_grad=True) for a in (x, w, b))
    ey = F.conv2d(ex, ew, eb, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    assert ey.shape == gy_shape
    ey.backward(gy)
    np.testing.assert_allclose(ey.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for ours, theirs in ((ex, tx), (ew, tw), (eb, tb)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_errors_name_the_op_and_shapes():
    x = Tensor(np.ones((1, 2, 5)))
    with pytest.raises(ValueError, match=r"conv2d: x must have 4 dims \(N, C, H, W\), received "
                                         r"shape \(1, 2, 5\)"):
        F.conv2d(x, np.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"conv1d: w must have 3 dims .* received w of shape "
                                         r"\(1, 2, 3, 3\)"):
        F.conv1d(x, np.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"conv1d: channel mismatch: w of shape \(1, 3, 3\)"):
        F.conv1d(x, np.ones((1, 3, 3)))
    with pytest.raises(ValueError, match=r"conv1d: b must have shape \(4,\) to match w of shape "
                                         r"\(4, 2, 3\), received \(3,\)"):
        F.conv1d(x, np.ones((4, 2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="conv1d: output would be empty"):
        F.conv1d(x, np.ones((1, 2, 7)))
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        F.conv1d(x, np.ones((1, 2, 3)), strategy="nope")
