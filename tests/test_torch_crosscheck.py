"""Cross-check against PyTorch (float64, CPU): convolution forward and both gradients through
autograd, and pooling.  Skipped when torch is not installed."""
import numpy as np
import pytest

import kernels
from conftest import conv_pairs, pair_id, unsupported

torch = pytest.importorskip("torch")
F = torch.nn.functional

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CASES = [  # x, w, stride, (lo, hi) per dim, dilation, groups
    ((2, 3, 11), (4, 3, 3), (2,), ((1, 2),), (1,), 1),
    ((1, 4, 9, 10), (6, 2, 3, 2), (1, 2), ((0, 1), (2, 2)), (2, 1), 2),
    ((2, 3, 8, 7), (3, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 3),
    ((1, 2, 12, 9), (4, 2, 5, 3), (3, 1), ((2, 0), (0, 0)), (1, 3), 1),
    ((1, 2, 6, 5, 7), (2, 1, 3, 2, 3), (2, 1, 1), ((1, 1), (0, 2), (1, 0)), (1, 2, 1), 2),
]


def torch_conv(x, w, bias, gy, stride, pads, dilation, groups):
    """(y, gx, gw, gb) from torch: explicit F.pad first, since torch pads symmetrically."""
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(bias, requires_grad=True)
    flat = [p for lo_hi in reversed(pads) for p in lo_hi]    # F.pad: last dim first
    y = CONV[x.ndim - 2](F.pad(tx, flat), tw, tb, stride=stride, dilation=dilation,
                         groups=groups)
    y.backward(torch.tensor(gy))
    return y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{'x'.join(map(str, c[0]))}-g{c[5]}")
@pytest.mark.parametrize("pair", [("reference", "auto"), ("auto", "auto")] + conv_pairs(),
                         ids=pair_id)
def test_conv_matches_torch(pair, case, rng):
    strategy, backend = pair
    x_shape, w_shape, stride, pads, dilation, groups = case
    kw = dict(stride=stride, padding=pads, dilation=dilation, groups=groups)
    p = kernels.conv_params(x_shape, w_shape, **kw)
    if strategy not in ("reference", "auto"):
        reason = unsupported(strategy, x_shape, w_shape, kw)
        if reason:
            pytest.skip(reason)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    bias, gy = rng.standard_normal(w_shape[0]), rng.standard_normal(p.out_shape(x_shape,
                                                                                 w_shape))
    y, gx, gw, _ = torch_conv(x, w, bias, gy, stride, pads, dilation, groups)
    run = dict(kw, strategy=strategy, backend=backend)
    np.testing.assert_allclose(kernels.conv(x, w, bias, **run), y, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kernels.conv_grad_input(gy, w, x_shape, **run), gx,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kernels.conv_grad_weight(gy, x, w_shape, **run), gw,
                               rtol=1e-10, atol=1e-10)


MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
LP = {1: F.lp_pool1d, 2: F.lp_pool2d, 3: F.lp_pool3d}
POOL_CASES = [((2, 3, 11), 3, 2, 1), ((1, 2, 9, 8), (3, 2), (2, 1), (1, 0)),
              ((2, 2, 6, 7), 2, None, 0), ((1, 2, 5, 6, 7), (2, 3, 3), (1, 2, 2), (1, 1, 0))]


def torch_pool(kind, x, gy, size, stride, padding):
    """(y, gx) from torch; sum is avg x window volume, l2 is lp_pool with p=2 (no padding)."""
    tx = torch.tensor(x, requires_grad=True)
    nd = x.ndim - 2
    if kind == "max":
        y = MAX[nd](tx, size, stride=stride, padding=padding)
    elif kind == "l2":
        y = LP[nd](tx, 2, size, stride=stride)
    else:
        y = AVG[nd](tx, size, stride=stride, padding=padding, count_include_pad=True)
        if kind == "sum":
            y = y * float(np.prod(np.broadcast_to(size, (nd,))))
    y.backward(torch.tensor(gy))
    return y.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "x".join(map(str, c[0])))
@pytest.mark.parametrize("kind", ["max", "avg", "sum", "l2"])
@pytest.mark.parametrize("backend", [b for _, b in kernels.available("pool")])
def test_pool_matches_torch(backend, kind, case, rng):
    shape, size, stride, padding = case
    if kind == "l2":
        padding = 0                      # torch's lp_pool has no padding
    x = rng.standard_normal(shape)
    y = kernels.pool(x, kind, size, stride=stride, padding=padding, backend=backend)
    gy = rng.standard_normal(y.shape)
    ty, tgx = torch_pool(kind, x, gy, size, stride, padding)
    np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)
    gx = kernels.pool_grad(gy, x, kind, size, stride=stride, padding=padding, backend=backend)
    np.testing.assert_allclose(gx, tgx, rtol=1e-10, atol=1e-12)
