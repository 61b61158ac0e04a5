"""Every (strategy, backend) against the float64 reference on a curated grid; and the reference
itself against a per-element loop and scipy.signal.correlate.

The grid is a hand-picked list of small configurations that together cross every axis (1-3
spatial dims, kernel 1-7, stride 1-3, dilation 1-3, symmetric / asymmetric / "same" padding,
groups 1 / 2 / depthwise, batch 1 and 3, odd sizes, non-contiguous operands) rather than their
Cartesian product, each run for every pair in kernels.available("conv"), both float dtypes and
forward, grad-input and grad-weight.  Pairs appear automatically when their backend loads.
"""
from typing import NamedTuple

import numpy as np
import pytest
import scipy.signal

import kernels
from conftest import check_conv, conv_pairs, naive_conv, pair_id, unsupported


class Case(NamedTuple):
    x: tuple
    w: tuple
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1
    layout: str = "c"          # "c", "transposed" (reversed-axes view), "sliced" (step 2)

    def kw(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)


CASES = [
    # 1-D
    Case((1, 1, 5), (1, 1, 1)),
    Case((3, 2, 11), (3, 2, 3), stride=2, padding=1),
    Case((2, 3, 13), (4, 3, 5), stride=3, padding=((2, 1),), dilation=2),
    Case((1, 4, 9), (4, 1, 3), padding="same", dilation=3, groups=4),
    Case((2, 4, 10), (6, 2, 7), padding="same", groups=2, layout="sliced"),
    Case((1, 2, 7), (2, 2, 7)),
    Case((3, 3, 8), (3, 3, 4), stride=1, padding=((0, 3),), layout="transposed"),
    # 2-D
    Case((1, 1, 6, 7), (1, 1, 3, 3)),
    Case((2, 3, 9, 8), (4, 3, 3, 3), padding=1),
    Case((3, 2, 10, 11), (3, 2, 5, 5), stride=2, padding=2),
    Case((1, 4, 9, 9), (4, 1, 3, 3), padding=1, dilation=2, groups=4),
    Case((2, 4, 8, 7), (6, 2, 2, 3), padding=((0, 1), (2, 0)), groups=2),
    Case((1, 3, 13, 12), (2, 3, 7, 7), padding="same"),
    Case((2, 2, 7, 9), (3, 2, 1, 1), stride=2),
    Case((1, 2, 11, 10), (2, 2, 3, 2), stride=(3, 2), padding=(1, (0, 2)), dilation=(1, 3)),
    Case((1, 6, 7, 7), (6, 1, 3, 3), stride=2, padding="same", groups=6),
    Case((2, 2, 5, 6), (2, 2, 4, 4), padding=((1, 2), (2, 1))),
    Case((1, 3, 9, 9), (3, 3, 3, 3), padding=3, dilation=3),
    Case((1, 2, 6, 6), (4, 2, 6, 6)),
    Case((3, 3, 9, 7), (4, 3, 3, 3), stride=2, padding=1, layout="transposed"),
    Case((2, 4, 7, 8), (4, 2, 3, 3), padding=(1, 0), groups=2, layout="sliced"),
    Case((1, 1, 3, 3), (1, 1, 3, 3), padding="valid"),
    Case((2, 5, 11, 10), (7, 5, 3, 3), padding=((2, 0), (0, 1))),
    Case((1, 4, 6, 9), (4, 1, 3, 3), padding=1, groups=4),
    # 3-D
    Case((1, 1, 5, 5, 5), (1, 1, 3, 3, 3)),
    Case((2, 2, 6, 5, 7), (3, 2, 2, 3, 3), stride=(1, 2, 1), padding=((1, 0), 1, (0, 2))),
    Case((1, 4, 5, 6, 5), (4, 1, 3, 3, 3), padding="same", dilation=(2, 1, 1), groups=4),
    Case((1, 2, 7, 7, 7), (4, 1, 3, 3, 3), stride=2, padding=2, dilation=2, groups=2),
    Case((2, 3, 4, 5, 6), (2, 3, 1, 2, 3), layout="transposed"),
    Case((3, 2, 5, 4, 5), (2, 2, 2, 2, 2), stride=3, padding=1, layout="sliced"),
]
OPS = ("forward", "grad_input", "grad_weight")
DTYPES = (np.float32, np.float64)


def case_id(case):
    sp = "x".join(map(str, case.x[2:]))
    k = "x".join(map(str, case.w[2:]))
    return (f"{len(case.x) - 2}d-n{case.x[0]}c{case.x[1]}-{sp}-k{k}-s{case.stride}-"
            f"p{case.padding}-d{case.dilation}-g{case.groups}-{case.layout}").replace(" ", "")


def make(shape, dtype, layout, rng):
    """Uniform(-1, 1) data of ``shape`` as a C-contiguous array or a non-contiguous view."""
    if layout == "transposed":
        return rng.uniform(-1, 1, shape[::-1]).astype(dtype).T
    if layout == "sliced":
        return rng.uniform(-1, 1, shape[:-1] + (2 * shape[-1],)).astype(dtype)[..., ::2]
    return rng.uniform(-1, 1, shape).astype(dtype)


def operands(case, dtype, rng):
    p = kernels.conv_params(case.x, case.w, **case.kw())
    gy_shape = p.out_shape(case.x, case.w)
    x, w, gy = (make(s, dtype, case.layout, rng) for s in (case.x, case.w, gy_shape))
    if case.layout != "c":
        assert not x.flags.c_contiguous or x.size <= 1
    return x, w, gy


def test_grid_crosses_every_axis():
    """The curated grid keeps covering what the issue asks for."""
    seen = {
        "ndim": {len(c.x) - 2 for c in CASES},
        "kernel": {k for c in CASES for k in c.w[2:]},
        "stride": {s for c in CASES for s in np.ravel(c.stride)},
        "dilation": {d for c in CASES for d in np.ravel(c.dilation)},
        "batch": {c.x[0] for c in CASES},
        "layout": {c.layout for c in CASES},
    }
    assert seen["ndim"] == {1, 2, 3}
    assert set(range(1, 8)) <= seen["kernel"]
    assert {1, 2, 3} <= seen["stride"] and {1, 2, 3} <= seen["dilation"]
    assert {1, 3} <= seen["batch"] and {"c", "transposed", "sliced"} <= seen["layout"]
    assert any(c.padding == "same" for c in CASES)
    assert any(c.groups == c.x[1] > 1 for c in CASES)            # depthwise
    assert any(1 < c.groups < c.x[1] for c in CASES)
    assert any(isinstance(p, tuple) and p[0] != p[1]             # asymmetric (lo, hi)
               for c in CASES if isinstance(c.padding, tuple)
               for p in c.padding if isinstance(p, tuple))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("pair", conv_pairs(), ids=pair_id)
def test_matches_reference(pair, dtype, case, op, rng):
    strategy, backend = pair
    reason = unsupported(strategy, case.x, case.w, case.kw())
    if reason is not None:
        pytest.skip(f"{strategy} cannot serve this configuration: {reason}")
    x, w, gy = operands(case, dtype, rng)
    check_conv(op, strategy, backend, x, w, gy, case.kw())


@pytest.mark.parametrize("pair", conv_pairs(), ids=pair_id)
def test_bias_is_added_per_output_channel(pair, rng):
    strategy, backend = pair
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    bias = rng.standard_normal(4)
    y = kernels.conv(x, w, bias, padding=1, strategy=strategy, backend=backend)
    y0 = kernels.conv(x, w, padding=1, strategy="reference")
    np.testing.assert_allclose(y, y0 + bias[:, None, None], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pair", conv_pairs(), ids=pair_id)
def test_repeated_calls_agree(pair, rng):
    """No state leaks between calls (cached spectra, workspaces, thread buffers)."""
    strategy, backend = pair
    x1, x2 = rng.standard_normal((2, 2, 7, 6)), rng.standard_normal((1, 2, 9, 9))
    w = rng.standard_normal((3, 2, 3, 3))
    first = kernels.conv(x1, w, strategy=strategy, backend=backend)
    kernels.conv(x2, w, strategy=strategy, backend=backend)
    np.testing.assert_array_equal(kernels.conv(x1, w, strategy=strategy, backend=backend),
                                  first)


@pytest.mark.parametrize("pair", [p for p in conv_pairs() if p[0] == "im2col"], ids=pair_id)
def test_small_workspace_budget_chunks_correctly(pair, rng, monkeypatch):
    """A budget far below one image's columns forces im2col to work in chunks."""
    strategy, backend = pair
    monkeypatch.setattr(kernels.config, "WORKSPACE_BYTES", 256)
    x, w = rng.standard_normal((2, 2, 9, 8)), rng.standard_normal((3, 2, 3, 3))
    gy = rng.standard_normal((2, 3, 7, 6))
    for op in ("forward", "grad_input", "grad_weight"):
        check_conv(op, strategy, backend, x, w, gy, dict(stride=1, padding=0, dilation=1,
                                                         groups=1))


@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("pair", [p for p in conv_pairs() if p[0] == "winograd"], ids=pair_id)
def test_winograd_tile_sizes(pair, tile, rng, monkeypatch):
    """Both output tiles, F(2x2, 3x3) and F(4x4, 3x3), on sizes that are not tile multiples."""
    for name in ("WINOGRAD_TILE", "WINOGRAD_GRAD_WEIGHT_TILE"):
        monkeypatch.setattr(kernels.config, name, tile)
    kw = dict(stride=1, padding=((1, 0), (2, 1)), dilation=1, groups=2)
    for dtype in DTYPES:
        x = rng.uniform(-1, 1, (2, 4, 9, 7)).astype(dtype)
        w = rng.uniform(-1, 1, (6, 2, 3, 3)).astype(dtype)
        gy = rng.uniform(-1, 1, (2, 6, 8, 8)).astype(dtype)
        for op in OPS:
            check_conv(op, *pair, x, w, gy, kw)


# --------------------------------------------------------------------------------------
# the oracle checked: reference vs a per-element loop, and vs scipy.signal.correlate
# --------------------------------------------------------------------------------------

ORACLE_CASES = [
    Case((2, 3, 6), (4, 3, 3), stride=2, padding=((1, 2),), dilation=2),
    Case((1, 4, 5, 6), (2, 2, 2, 3), stride=(2, 1), padding=(1, (0, 2)), dilation=(1, 2),
         groups=2),
    Case((1, 2, 4, 3, 5), (2, 1, 2, 1, 3), stride=(1, 1, 2), padding=(0, 1, (2, 0)),
         groups=2),
    Case((2, 3, 5, 5), (3, 1, 3, 3), padding="same", dilation=2, groups=3),
]


def _params(case):
    return kernels.conv_params(case.x, case.w, **case.kw())


@pytest.mark.parametrize("case", ORACLE_CASES, ids=case_id)
def test_reference_forward_matches_per_element_loop(case, rng):
    x, w = rng.standard_normal(case.x), rng.standard_normal(case.w)
    p = _params(case)
    want = naive_conv(x, w, p.stride, p.padding, p.dilation, p.groups)
    got = kernels.conv(x, w, strategy="reference", **case.kw())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ORACLE_CASES, ids=case_id)
def test_reference_gradients_are_transposes_of_the_loop(case, rng):
    """Forward is linear in x and in w, so element i of grad-input is <loop(e_i, w), gy> and
    element j of grad-weight is <loop(x, e_j), gy>: the Jacobian, one column at a time."""
    x, w = rng.standard_normal(case.x), rng.standard_normal(case.w)
    p = _params(case)
    gy = rng.standard_normal(p.out_shape(case.x, case.w))
    args = (p.stride, p.padding, p.dilation, p.groups)
    want_gx, want_gw = np.zeros(case.x), np.zeros(case.w)
    for i in np.ndindex(case.x):
        e = np.zeros(case.x)
        e[i] = 1
        want_gx[i] = np.vdot(naive_conv(e, w, *args), gy)
    for j in np.ndindex(case.w):
        e = np.zeros(case.w)
        e[j] = 1
        want_gw[j] = np.vdot(naive_conv(x, e, *args), gy)
    gx = kernels.conv_grad_input(gy, w, case.x, strategy="reference", **case.kw())
    gw = kernels.conv_grad_weight(gy, x, case.w, strategy="reference", **case.kw())
    np.testing.assert_allclose(gx, want_gx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, want_gw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("stride,dilation,pad", [(1, 1, 0), (2, 1, 1), (1, 2, 2), (3, 2, 1)])
def test_reference_matches_scipy_correlate(ndim, stride, dilation, pad, rng):
    """Single channel: conv is scipy's 'valid' correlation of the zero-padded input with the
    kernel spread ``dilation`` apart, sampled every ``stride``."""
    sizes, ks = (9, 8, 7)[:ndim], (3, 2, 3)[:ndim]
    x, w = rng.standard_normal((1, 1) + sizes), rng.standard_normal((1, 1) + ks)
    w_dil = np.zeros(tuple(dilation * (k - 1) + 1 for k in ks))
    w_dil[(slice(None, None, dilation),) * ndim] = w[0, 0]
    full = scipy.signal.correlate(np.pad(x[0, 0], pad), w_dil, mode="valid", method="direct")
    want = full[(slice(None, None, stride),) * ndim]
    got = kernels.conv(x, w, stride=stride, padding=pad, dilation=dilation,
                       strategy="reference")
    np.testing.assert_allclose(got[0, 0], want, rtol=1e-12, atol=1e-12)


def test_reference_keeps_float32_and_computes_in_float64(rng):
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    y32 = kernels.conv(x, w, strategy="reference")
    y64 = kernels.conv(x.astype(np.float64), w.astype(np.float64), strategy="reference")
    assert y32.dtype == np.float32
    np.testing.assert_array_equal(y32, y64.astype(np.float32))


def test_convolve_flips_the_kernel(rng):
    """kernels.convolve is the textbook convolution: scipy.signal.convolve, 'valid'."""
    x, w = rng.standard_normal((1, 1, 7, 6)), rng.standard_normal((1, 1, 3, 2))
    got = kernels.convolve(x, w, strategy="reference")
    want = scipy.signal.convolve(x[0, 0], w[0, 0], mode="valid", method="direct")
    np.testing.assert_allclose(got[0, 0], want, rtol=1e-12, atol=1e-12)
