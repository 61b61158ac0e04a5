"""Hypothesis: random convolution configurations, every (strategy, backend) against the
float64 reference (forward and both gradients), and the reference against the per-element
loop.  Pooling and matmul have their own searches in test_pool.py and test_matmul.py, next to
their naive implementations."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels
from conftest import check_conv, conv_pairs, naive_conv, pair_id, unsupported

MAX_KERNEL = {1: 7, 2: 4, 3: 3}
MAX_EXTRA = {1: 12, 2: 6, 3: 3}      # input size beyond the smallest legal one


@st.composite
def conv_configs(draw, small=False):
    """(x_shape, w_shape, kwargs, dtype, seed) of a legal convolution with a non-empty output.
    ``small`` keeps it tiny enough for the per-element loop."""
    ndim = draw(st.integers(1, 2 if small else 3))
    groups = draw(st.integers(1, 3))
    c_per_group, out_per_group = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    batch = draw(st.integers(1, 2))
    same = draw(st.booleans())
    ks, strides, dils, pads, sizes = [], [], [], [], []
    for _ in range(ndim):
        k = draw(st.integers(1, 3 if small else MAX_KERNEL[ndim]))
        d = draw(st.integers(1, 3))
        eff = d * (k - 1) + 1
        lo, hi = (eff - 1) // 2, eff - 1 - (eff - 1) // 2
        if not same:
            lo, hi = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        smallest = max(1, eff - lo - hi)
        sizes.append(draw(st.integers(smallest, smallest + (3 if small else MAX_EXTRA[ndim]))))
        ks.append(k)
        dils.append(d)
        strides.append(draw(st.integers(1, 3)))
        pads.append((lo, hi))
    x_shape = (batch, groups * c_per_group, *sizes)
    w_shape = (groups * out_per_group, c_per_group, *ks)
    kw = dict(stride=tuple(strides), padding="same" if same else tuple(pads),
              dilation=tuple(dils), groups=groups)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return x_shape, w_shape, kw, dtype, draw(st.integers(0, 2**32 - 1))


def data(x_shape, w_shape, kw, dtype, seed):
    rng = np.random.default_rng(seed)
    gy_shape = kernels.conv_params(x_shape, w_shape, **kw).out_shape(x_shape, w_shape)
    return tuple(rng.uniform(-1, 1, s).astype(dtype) for s in (x_shape, w_shape, gy_shape))


@pytest.mark.parametrize("pair", conv_pairs(), ids=pair_id)
@settings(max_examples=25, deadline=None)
@given(cfg=conv_configs())
def test_random_configuration_matches_reference(pair, cfg):
    strategy, backend = pair
    x_shape, w_shape, kw, dtype, seed = cfg
    # A strategy serves what its supports() accepts; other draws are someone else's job.
    if unsupported(strategy, x_shape, w_shape, kw) is not None:
        return
    x, w, gy = data(x_shape, w_shape, kw, dtype, seed)
    for op in ("forward", "grad_input", "grad_weight"):
        check_conv(op, strategy, backend, x, w, gy, kw)


@st.composite
def layer_3x3_configs(draw):
    """The common CNN layer: 2-D, 3x3, stride 1, dilation 1 (what Winograd serves), with more
    channels and tile-unaligned sizes."""
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in, c_out = groups * draw(st.integers(1, 6)), groups * draw(st.integers(1, 6))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    sizes = tuple(draw(st.integers(max(1, 3 - lo - hi), 12)) for lo, hi in pads)
    padding = draw(st.sampled_from(["same", "valid", pads]))
    if padding == "valid":
        sizes = tuple(max(s, 3) for s in sizes)
    kw = dict(stride=1, padding=padding, dilation=1, groups=groups)
    return ((draw(st.integers(1, 3)), c_in, *sizes), (c_out, c_in // groups, 3, 3), kw,
            draw(st.sampled_from([np.float32, np.float64])), draw(st.integers(0, 2**32 - 1)))


@pytest.mark.parametrize("pair", conv_pairs(), ids=pair_id)
@settings(max_examples=15, deadline=None)
@given(cfg=layer_3x3_configs())
def test_random_3x3_layer_matches_reference(pair, cfg):
    strategy, backend = pair
    x_shape, w_shape, kw, dtype, seed = cfg
    if unsupported(strategy, x_shape, w_shape, kw) is not None:
        return
    x, w, gy = data(x_shape, w_shape, kw, dtype, seed)
    for op in ("forward", "grad_input", "grad_weight"):
        check_conv(op, strategy, backend, x, w, gy, kw)


@settings(max_examples=20, deadline=None)
@given(cfg=conv_configs(small=True))
def test_reference_matches_per_element_loop(cfg):
    """Forward against the loop; the gradients through the adjoint identities
    <conv(x, w), gy> == <x, grad_input(gy, w)> == <w, grad_weight(gy, x)>."""
    x_shape, w_shape, kw, _, seed = cfg
    x, w, gy = data(x_shape, w_shape, kw, np.float64, seed)
    p = kernels.conv_params(x_shape, w_shape, **kw)
    y = naive_conv(x, w, p.stride, p.padding, p.dilation, p.groups)
    np.testing.assert_allclose(kernels.conv(x, w, strategy="reference", **kw), y,
                               rtol=1e-12, atol=1e-12)
    gx = kernels.conv_grad_input(gy, w, x_shape, strategy="reference", **kw)
    gw = kernels.conv_grad_weight(gy, x, w_shape, strategy="reference", **kw)
    scale = np.abs(y).sum() * np.abs(gy).max() + 1
    assert abs(np.vdot(y, gy) - np.vdot(x, gx)) <= 1e-12 * scale
    assert abs(np.vdot(y, gy) - np.vdot(w, gw)) <= 1e-12 * scale
