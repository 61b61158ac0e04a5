"""Pooling (max, avg, sum, l2; 1-3 spatial dims) and global pooling against a naive numpy
pooling written here, forward and backward, for every backend in kernels.available("pool")."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels

BACKENDS = [b for _, b in kernels.available("pool")]
KINDS = ("max", "avg", "sum", "l2")
DTYPES = (np.float32, np.float64)


def _windows(xp_shape, size, stride):
    """(output index, window slices) over the padded input."""
    out = [(n - k) // s + 1 for n, k, s in zip(xp_shape[2:], size, stride)]
    for o in itertools.product(*map(range, out)):
        yield o, tuple(slice(i * s, i * s + k) for i, s, k in zip(o, stride, size))


def naive_pool(x, kind, size, stride, pads):
    """Float64 pooling, one window at a time.  pads: (lo, hi) pairs; padding is -inf for max
    (never wins) and 0 otherwise; avg divides by the full window volume."""
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0)) + tuple(pads),
                constant_values=fill)
    out = [(n - k) // s + 1 for n, k, s in zip(xp.shape[2:], size, stride)]
    y = np.empty(x.shape[:2] + tuple(out))
    for o, win in _windows(xp.shape, size, stride):
        v = xp[(slice(None), slice(None)) + win].reshape(x.shape[:2] + (-1,))
        y[(slice(None), slice(None)) + o] = {
            "max": lambda: v.max(-1), "avg": lambda: v.sum(-1) / v.shape[-1],
            "sum": lambda: v.sum(-1), "l2": lambda: np.sqrt((v * v).sum(-1))}[kind]()
    return y


def naive_pool_grad(gy, x, kind, size, stride, pads):
    """Float64 gradient of :func:`naive_pool`; max sends each window's gradient to its first
    maximal element in C (scan) order, l2 sends gy * x / y (0 where y == 0)."""
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0)) + tuple(pads),
                constant_values=fill)
    y = naive_pool(x, kind, size, stride, pads)
    gxp = np.zeros(xp.shape)
    for o, win in _windows(xp.shape, size, stride):
        sl = (slice(None), slice(None)) + win
        g_nc = np.asarray(gy, np.float64)[(slice(None), slice(None)) + o]
        g = g_nc.reshape(g_nc.shape + (1,) * len(size))
        if kind == "max":
            for n, c in np.ndindex(*x.shape[:2]):
                first = np.unravel_index(np.argmax(xp[(n, c) + win]), size)
                gxp[(n, c) + tuple(w.start + i for w, i in zip(win, first))] += g_nc[n, c]
        elif kind == "avg":
            gxp[sl] += g / np.prod(size)
        elif kind == "sum":
            gxp[sl] += g
        else:
            yo = y[(slice(None), slice(None)) + o].reshape(g.shape)
            gxp[sl] += np.where(yo == 0, 0.0, g * xp[sl] / np.where(yo == 0, 1.0, yo))
    crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, x.shape[2:]))
    return gxp[(slice(None), slice(None)) + crop]


def normalised(x_shape, size, stride, padding):
    p = kernels.params.pool_params(x_shape, size, stride, padding)
    return p.size, p.stride, p.padding


def check_pool(backend, x, kind, size, stride, padding, gy=None):
    """Forward (and backward when gy is given) against the naive pooling.  Each output is a
    sum of at most V = window-volume terms (each input is hit by at most V windows in
    backward), so the error is at most ~V*u times the same pooling of |x| (see conftest)."""
    sz, st_, pads = normalised(x.shape, size, stride, padding)
    vol = int(np.prod(sz))
    u = np.finfo(x.dtype).eps / 2
    if gy is None:
        got = kernels.pool(x, kind, size, stride=stride, padding=padding, backend=backend)
        want = naive_pool(x, kind, sz, st_, pads)
        scale = naive_pool(np.abs(x), "sum" if kind != "max" else "max", sz, st_, pads)
    else:
        got = kernels.pool_grad(gy, x, kind, size, stride=stride, padding=padding,
                                backend=backend)
        want = naive_pool_grad(gy, x, kind, sz, st_, pads)
        scale = naive_pool_grad(np.abs(gy), x, "sum", sz, st_, pads)
    assert got.dtype == x.dtype and got.shape == want.shape
    tol = 8 * u * vol * max(float(np.abs(scale).max(initial=0)), float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)



CASES = [
    ((2, 3, 9), 2, None, 0),
    ((1, 2, 10), 3, 2, 1),
    ((1, 1, 7), 4, 1, ((3, 0),)),
    ((2, 2, 9), 3, 2, "same"),
    ((2, 2, 6, 6), 2, None, 0),
    ((1, 3, 7, 9), (3, 2), (2, 1), (1, (0, 1))),
    ((1, 2, 5, 5), 3, 1, "same"),
    ((2, 1, 8, 7), 3, 3, 1),
    ((1, 2, 4, 4, 4), 2, None, 0),
    ((2, 1, 5, 6, 5), (2, 3, 2), (1, 2, 2), (1, (1, 2), 0)),
    ((1, 2, 5, 4, 5), 3, 2, "same"),
]


def case_id(case):
    shape, size, stride, padding = case
    return (f"{len(shape) - 2}d-{'x'.join(map(str, shape))}-k{size}-s{stride}-p{padding}"
            .replace(" ", ""))


def check_pool_both(backend, rng, shape, dtype, kind, size, stride, padding):
    """Forward, then the gradient for a random gy, of random x against the naive pools."""
    x = rng.standard_normal(shape).astype(dtype)
    check_pool(backend, x, kind, size, stride, padding)
    y_shape = kernels.pool(x, kind, size, stride=stride, padding=padding,
                           backend=backend).shape
    check_pool(backend, x, kind, size, stride, padding,
               gy=rng.standard_normal(y_shape).astype(dtype))


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_and_backward_match_naive(backend, dtype, kind, case, rng):
    shape, size, stride, padding = case
    check_pool_both(backend, rng, shape, dtype, kind, size, stride, padding)


@pytest.mark.parametrize("layout,padding", [
    ("sliced", 0), ("sliced", 1), ("transposed", 0),
    ("transposed", 1)])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_noncontiguous_input(backend, kind, layout, padding, rng):
    base = rng.standard_normal((2, 3, 6, 10) if layout == "sliced" else (5, 6, 3, 2))
    x = base[..., ::2] if layout == "sliced" else base.T
    gy = rng.standard_normal((2, 3, 3 + padding, 2 + padding))
    check_pool(backend, x, kind, 2, None, padding)
    check_pool(backend, x, kind, 2, None, padding, gy=gy)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stride_defaults_to_size(backend, rng):
    x = rng.standard_normal((1, 2, 7, 6))
    np.testing.assert_array_equal(kernels.pool(x, "max", (3, 2), backend=backend),
                                  kernels.pool(x, "max", (3, 2), stride=(3, 2),
                                               backend=backend))
    assert kernels.pool(x, "avg", (3, 2), backend=backend).shape == (1, 2, 2, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_avg_divides_by_the_full_window_padding_included(backend):
    y = kernels.pool(np.ones((1, 1, 2)), "avg", 2, stride=1, padding=1, backend=backend)
    np.testing.assert_array_equal(y, [[[0.5, 1.0, 0.5]]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_padding_never_wins(backend):
    x = -np.arange(1.0, 6.0).reshape(1, 1, 5)                # all negative
    y = kernels.pool(x, "max", 3, stride=2, padding=1, backend=backend)
    np.testing.assert_array_equal(y, [[[-1.0, -2.0, -4.0]]])


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("backend", BACKENDS)
def test_max_ties_route_gradient_to_first_maximal_element(backend, ndim):
    x = np.full((1, 1) + (4,) * ndim, 7.0)                   # every element ties
    gy = np.arange(1.0, 1 + 2**ndim).reshape((1, 1) + (2,) * ndim)
    gx = kernels.pool_grad(gy, x, "max", 2, backend=backend)
    want = np.zeros_like(x)
    want[(0, 0) + (slice(None, None, 2),) * ndim] = gy[0, 0]  # first in scan order
    np.testing.assert_array_equal(gx, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_ties_across_overlapping_windows(backend):
    x = np.array([[[1.0, 5.0, 5.0, 2.0, 5.0]]])
    gy = np.array([[[1.0, 10.0, 100.0, 1000.0]]])
    gx = kernels.pool_grad(gy, x, "max", 2, stride=1, backend=backend)
    np.testing.assert_array_equal(gx, [[[0.0, 11.0, 100.0, 0.0, 1000.0]]])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_propagates(backend, kind):
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    for pos in [(0, 0), (1, 2), (2, 3)]:                       # first, middle, last in window
        xn = x.copy()
        xn[(0, 0) + pos] = np.nan
        y = kernels.pool(xn, kind, 2, stride=1, backend=backend)
        hit = np.zeros((2, 3), bool)
        hit[max(pos[0] - 1, 0):pos[0] + 1, max(pos[1] - 1, 0):pos[1] + 1] = True
        np.testing.assert_array_equal(np.isnan(y[0, 0]), hit, err_msg=f"NaN at {pos}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_l2_gradient_is_zero_where_the_window_is_zero(backend):
    x = np.zeros((1, 1, 4))
    x[0, 0, 3] = 3.0
    gx = kernels.pool_grad(np.ones((1, 1, 2)), x, "l2", 2, backend=backend)
    np.testing.assert_array_equal(gx, [[[0.0, 0.0, 0.0, 1.0]]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_pool_grad_of_float32_is_float32(backend, rng):
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    gy = rng.standard_normal((1, 2, 2, 2))                      # float64 gy, float32 x
    assert kernels.pool_grad(gy, x, "avg", 2, backend=backend).dtype == np.float32


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("backend", BACKENDS)
def test_global_pool(backend, ndim, kind, rng):
    x = rng.standard_normal((2, 3) + (5, 4, 3)[:ndim])
    axes = tuple(range(2, 2 + ndim))
    want = {"max": lambda: x.max(axes), "avg": lambda: x.mean(axes),
            "sum": lambda: x.sum(axes), "l2": lambda: np.sqrt((x * x).sum(axes))}[kind]()
    got = kernels.global_pool(x, kind, backend=backend)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    got32 = kernels.global_pool(x.astype(np.float32), kind, backend=backend)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=1e-5, atol=1e-5)


@st.composite
def pool_configs(draw):
    ndim = draw(st.integers(1, 3))
    size, stride, pads, shape = [], [], [], [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    for _ in range(ndim):
        k = draw(st.integers(1, 4 if ndim < 3 else 3))
        lo, hi = draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))
        smallest = max(1, k - lo - hi)
        shape.append(draw(st.integers(smallest, smallest + (8 if ndim == 1 else 4))))
        size.append(k)
        stride.append(draw(st.integers(1, 3)))
        pads.append((lo, hi))
    padding = draw(st.sampled_from(["same", tuple(pads)]))
    return (tuple(shape), tuple(size), tuple(stride), padding,
            draw(st.sampled_from(KINDS)), draw(st.sampled_from(DTYPES)),
            draw(st.integers(0, 2**32 - 1)))


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None)
@given(cfg=pool_configs())
def test_random_pool_configuration(backend, cfg):
    shape, size, stride, padding, kind, dtype, seed = cfg
    check_pool_both(backend, np.random.default_rng(seed), shape, dtype, kind, size, stride,
                    padding)
