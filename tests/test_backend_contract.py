"""Every compute backend against the contract of kernels/backends.py.

Each contract function is compared with a naive float64 NumPy implementation written here,
on a grid of small shapes (1-D, 2-D and 3-D problems lifted to 5-D; kernels 1..5, strides
1..3, dilations 1..3, groups 1 / 2 / depthwise; batch 1 and 3; odd sizes), in float32 and
float64.  Outputs are prefilled with NaN, so a cell the kernel forgets to write fails.
A backend that cannot be loaded here (e.g. the Cython extensions were not built) is skipped
with the reason kernels.backends.error() gives.
"""
import itertools

import numpy as np
import pytest

from kernels import backends

RTOL = {np.float32: 1e-4, np.float64: 1e-10}
DTYPES = [np.float32, np.float64]


@pytest.fixture(params=backends.names())
def be(request):
    mod = backends.load(request.param)
    if mod is None:
        pytest.skip(backends.error(request.param))
    return mod


def assert_close(out, ref, dtype, what):
    """Max abs error within rtol of the reference's magnitude (relative to its max)."""
    assert out.shape == ref.shape, f"{what}: shape {out.shape} != {ref.shape}"
    scale = max(np.abs(ref).max(initial=0.0), 1e-30)
    err = np.abs(out - ref).max(initial=0.0)  # computed in float64 / complex128
    assert np.isfinite(out).all(), f"{what}: non-finite values in the output"
    assert err <= RTOL[dtype] * scale, f"{what}: max abs error {err:.3g}, scale {scale:.3g}"


# ---------------------------------------------------------------------------------------------
# naive float64 references (the contract's formulas, one kernel tap at a time)

def out_size(size, k, s, d):
    return (size - d * (k - 1) - 1) // s + 1


def tap_slices(kshape_tap, strides, dils, oshape):
    """Index of the padded input seen by tap (kd, kh, kw) at every output position."""
    return tuple(slice(k * d, k * d + (o - 1) * s + 1, s)
                 for k, s, d, o in zip(kshape_tap, strides, dils, oshape))


def ref_forward(xp, w, strides, dils, groups):
    n, c = xp.shape[:2]
    c_out, cg = w.shape[:2]
    oshape = tuple(out_size(*a) for a in zip(xp.shape[2:], w.shape[2:], strides, dils))
    y = np.zeros((n, c_out) + oshape)
    cog = c_out // groups
    for tap in itertools.product(*(range(k) for k in w.shape[2:])):
        xs = xp[(slice(None), slice(None)) + tap_slices(tap, strides, dils, oshape)]
        for g in range(groups):
            wg = w[(slice(g * cog, (g + 1) * cog), slice(None)) + tap]
            y[:, g * cog:(g + 1) * cog] += np.einsum("ncdhw,oc->nodhw",
                                                     xs[:, g * cg:(g + 1) * cg], wg)
    return y


def ref_grad_input(gy, w, xp_shape, strides, dils, groups):
    c_out, cg = w.shape[:2]
    cog = c_out // groups
    gxp = np.zeros(xp_shape)
    for tap in itertools.product(*(range(k) for k in w.shape[2:])):
        sl = (slice(None), slice(None)) + tap_slices(tap, strides, dils, gy.shape[2:])
        for g in range(groups):
            wg = w[(slice(g * cog, (g + 1) * cog), slice(None)) + tap]
            gxp[:, g * cg:(g + 1) * cg][sl] += np.einsum("nodhw,oc->ncdhw",
                                                         gy[:, g * cog:(g + 1) * cog], wg)
    return gxp


def ref_grad_weight(gy, xp, w_shape, strides, dils, groups):
    c_out, cg = w_shape[:2]
    cog = c_out // groups
    gw = np.zeros(w_shape)
    for tap in itertools.product(*(range(k) for k in w_shape[2:])):
        xs = xp[(slice(None), slice(None)) + tap_slices(tap, strides, dils, gy.shape[2:])]
        for g in range(groups):
            gw[(slice(g * cog, (g + 1) * cog), slice(None)) + tap] = np.einsum(
                "nodhw,ncdhw->oc", gy[:, g * cog:(g + 1) * cog], xs[:, g * cg:(g + 1) * cg])
    return gw


def test_reference_matches_the_scalar_definition():
    """The tap-wise reference equals the contract's sum written out scalar by scalar."""
    rng = np.random.default_rng(0)
    xp = rng.standard_normal((2, 4, 3, 4, 5))
    w = rng.standard_normal((6, 2, 2, 2, 2))
    s, d, groups = (1, 2, 1), (1, 1, 2), 2
    y = ref_forward(xp, w, s, d, groups)
    cog, cg = 3, 2
    for n, co, od, oh, ow in itertools.product(*(range(k) for k in y.shape)):
        g = co // cog
        total = sum(xp[n, g * cg + ci, od * s[0] + kd * d[0], oh * s[1] + kh * d[1],
                       ow * s[2] + kw * d[2]] * w[co, ci, kd, kh, kw]
                    for ci, kd, kh, kw in itertools.product(range(cg), *(range(k) for k in
                                                                          w.shape[2:])))
        assert abs(y[n, co, od, oh, ow] - total) < 1e-12
    # the gradients are the adjoints of the forward: <gy, conv(x, w)> = <gx, x> = <gw, w>
    gy = rng.standard_normal(y.shape)
    inner = (gy * y).sum()
    assert np.isclose((ref_grad_input(gy, w, xp.shape, s, d, groups) * xp).sum(), inner)
    assert np.isclose((ref_grad_weight(gy, xp, w.shape, s, d, groups) * w).sum(), inner)


# (padded input shape, weight shape, strides, dilations, groups)
CONV_CASES = [
    ((1, 2, 1, 1, 11), (3, 2, 1, 1, 3), (1, 1, 1), (1, 1, 1), 1),          # 1-D
    ((3, 4, 1, 1, 13), (6, 2, 1, 1, 5), (1, 1, 3), (1, 1, 2), 2),          # 1-D, groups 2
    ((3, 3, 1, 7, 9), (4, 3, 1, 2, 3), (1, 2, 1), (1, 1, 3), 1),           # 2-D
    ((1, 5, 1, 8, 7), (5, 1, 1, 3, 3), (1, 2, 2), (1, 1, 1), 5),           # 2-D depthwise
    ((3, 4, 1, 9, 8), (8, 1, 1, 3, 2), (1, 1, 2), (1, 2, 1), 4),           # depthwise x2
    ((1, 3, 1, 11, 10), (2, 3, 1, 4, 4), (1, 2, 3), (1, 3, 2), 1),         # k 4, d 3
    ((3, 2, 1, 5, 7), (3, 2, 1, 1, 1), (1, 3, 3), (1, 1, 1), 1),           # 1x1, stride 3
    ((1, 2, 1, 5, 5), (2, 2, 1, 5, 5), (1, 1, 1), (1, 1, 1), 1),           # kernel = input
    ((1, 2, 5, 6, 7), (3, 2, 2, 3, 1), (1, 2, 3), (2, 1, 1), 1),           # 3-D
    ((3, 4, 4, 5, 5), (4, 2, 3, 2, 2), (1, 1, 1), (1, 1, 1), 2),           # 3-D, groups 2
    ((1, 3, 7, 5, 6), (3, 1, 2, 2, 3), (3, 1, 2), (3, 2, 1), 3),           # 3-D depthwise
]
CONV_IDS = [f"x{c[0]}-w{c[1]}-s{c[2]}-d{c[3]}-g{c[4]}".replace(" ", "") for c in CONV_CASES]


def conv_data(case, dtype, seed=0):
    xshape, wshape, strides, dils, groups = case
    rng = np.random.default_rng(seed)
    xp = rng.standard_normal(xshape).astype(dtype)
    w = rng.standard_normal(wshape).astype(dtype)
    oshape = tuple(out_size(*a) for a in zip(xshape[2:], wshape[2:], strides, dils))
    gy = rng.standard_normal((xshape[0], wshape[0]) + oshape).astype(dtype)
    return xp, w, gy, strides + dils + (groups,)


def conv_call(be, strategy, pass_, args, dtype, budget):
    """Run one conv kernel of ``be`` on NaN-filled output; return that output."""
    xp, w, gy, ints = args
    extra = () if strategy == "direct" else (budget,)
    if pass_ == "forward":
        out = np.full(gy.shape, np.nan, dtype)
        getattr(be, f"{strategy}_forward")(xp, w, out, *ints, *extra)
    elif pass_ == "grad_input":
        out = np.full(xp.shape, np.nan, dtype)
        getattr(be, f"{strategy}_grad_input")(gy, w, out, *ints, *extra)
    else:
        out = np.full(w.shape, np.nan, dtype)
        getattr(be, f"{strategy}_grad_weight")(gy, xp, out, *ints, *extra)
    return out


def conv_ref(pass_, args):
    xp, w, gy, ints = [a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args]
    strides, dils, groups = ints[:3], ints[3:6], ints[6]
    if pass_ == "forward":
        return ref_forward(xp, w, strides, dils, groups)
    if pass_ == "grad_input":
        return ref_grad_input(gy, w, xp.shape, strides, dils, groups)
    return ref_grad_weight(gy, xp, w.shape, strides, dils, groups)


PASSES = ["forward", "grad_input", "grad_weight"]
# im2col column budgets: unlimited, one output position per chunk, partial chunks
BUDGETS = [1 << 40, 1, 37]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_direct(be, case, dtype):
    args = conv_data(case, dtype)
    for pass_ in PASSES:
        out = conv_call(be, "direct", pass_, args, dtype, None)
        assert_close(out, conv_ref(pass_, args), dtype, f"direct {pass_}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_im2col(be, case, dtype):
    args = conv_data(case, dtype)
    for pass_ in PASSES:
        ref = conv_ref(pass_, args)
        for budget in BUDGETS:
            out = conv_call(be, "im2col", pass_, args, dtype, budget)
            assert_close(out, ref, dtype, f"im2col {pass_} max_col_elems={budget}")


# ---------------------------------------------------------------------------------------------
# FFT helpers

CDTYPE = {np.float32: np.complex64, np.float64: np.complex128}


def crandn(rng, shape, dtype):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(CDTYPE[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n, c, c_out, groups, nf", [(1, 1, 1, 1, 1), (3, 4, 6, 2, 17),
                                                     (2, 6, 6, 6, 9), (3, 3, 5, 1, 30)])
def test_fft_reduce(be, n, c, c_out, groups, nf, dtype):
    rng = np.random.default_rng(1)
    cg, cog = c // groups, c_out // groups
    X, W = crandn(rng, (n, c, nf), dtype), crandn(rng, (c_out, cg, nf), dtype)
    GY = crandn(rng, (n, c_out, nf), dtype)
    X64, W64, GY64 = (a.astype(np.complex128) for a in (X, W, GY))
    ref_y, ref_gx, ref_gw = (np.zeros(s, complex) for s in (GY.shape, X.shape, W.shape))
    for g in range(groups):
        xg, wg, gyg = X64[:, g * cg:(g + 1) * cg], W64[g * cog:(g + 1) * cog], \
            GY64[:, g * cog:(g + 1) * cog]
        ref_y[:, g * cog:(g + 1) * cog] = np.einsum("ncf,ocf->nof", xg, wg.conj())
        ref_gx[:, g * cg:(g + 1) * cg] = np.einsum("nof,ocf->ncf", gyg, wg)
        ref_gw[g * cog:(g + 1) * cog] = np.einsum("nof,ncf->ocf", gyg, xg.conj())
    for fn, a, b, ref in [(be.fft_reduce_forward, X, W, ref_y),
                          (be.fft_reduce_grad_input, GY, W, ref_gx),
                          (be.fft_reduce_grad_weight, GY, X, ref_gw)]:
        out = np.full(ref.shape, np.nan, CDTYPE[dtype])
        fn(a, b, out, groups)
        assert_close(out, ref, dtype, fn.__name__)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("src_shape, dst_shape, strides", [
    ((1, 1, 1, 1, 1), (1, 1, 1, 1, 1), (1, 1, 1)),
    ((2, 3, 1, 7, 9), (2, 3, 1, 3, 3), (1, 3, 3)),
    ((3, 2, 5, 6, 7), (3, 2, 2, 3, 7), (2, 2, 1)),
])
def test_strided_crop(be, src_shape, dst_shape, strides, dtype):
    src = np.random.default_rng(2).standard_normal(src_shape).astype(dtype)
    dst = np.full(dst_shape, np.nan, dtype)
    be.strided_crop(src, dst, *strides)
    ref = src[(slice(None), slice(None)) + tuple(slice(0, o * s, s) for o, s in
                                                  zip(dst_shape[2:], strides))]
    np.testing.assert_array_equal(dst, ref)


# ---------------------------------------------------------------------------------------------
# pooling

KINDS = backends.POOL_KINDS


def ref_pool(xp, gy, kind, size, strides):
    """(y, gxp) in float64 by looping over windows; max: gradient to np.argmax of the
    flattened window (the first maximum in scan order, or the first NaN)."""
    xp = xp.astype(np.float64)
    oshape = tuple((i - k) // s + 1 for i, k, s in zip(xp.shape[2:], size, strides))
    y = np.zeros(xp.shape[:2] + oshape)
    gxp = np.zeros(xp.shape)
    for n, c, *o in itertools.product(*(range(k) for k in y.shape)):
        win = (n, c) + tuple(slice(i * s, i * s + k) for i, s, k in zip(o, strides, size))
        vals, g = xp[win], gy[(n, c, *o)]
        if kind == "max":
            y[(n, c, *o)] = vals.max()
            first = np.unravel_index(np.argmax(vals), vals.shape)
            gxp[win][first] += g
        elif kind == "avg":
            y[(n, c, *o)] = vals.mean()
            gxp[win] += g / vals.size
        elif kind == "sum":
            y[(n, c, *o)] = vals.sum()
            gxp[win] += g
        else:
            r = np.sqrt((vals ** 2).sum())
            y[(n, c, *o)] = r
            if r != 0:
                gxp[win] += g * vals / r
    return y, gxp


# (padded input shape, window size, strides)
POOL_CASES = [
    ((1, 2, 1, 1, 9), (1, 1, 3), (1, 1, 2)),          # 1-D
    ((3, 2, 1, 7, 8), (1, 2, 3), (1, 2, 1)),          # 2-D, overlapping windows
    ((1, 3, 4, 5, 6), (2, 2, 3), (1, 2, 2)),          # 3-D
    ((1, 2, 1, 5, 5), (1, 5, 5), (1, 1, 1)),          # global
    ((3, 1, 1, 6, 6), (1, 3, 3), (1, 3, 3)),          # non-overlapping
]


def run_pool(be, xp, gy, kind, size, strides, dtype):
    y = np.full(gy.shape, np.nan, dtype)
    be.pool_forward(xp, y, KINDS[kind], *size, *strides)
    gxp = np.full(xp.shape, np.nan, dtype)
    be.pool_backward(gy.astype(dtype), xp, y, gxp, KINDS[kind], *size, *strides)
    return y, gxp


def pool_gy(xshape, size, strides, rng):
    oshape = tuple((i - k) // s + 1 for i, k, s in zip(xshape[2:], size, strides))
    return rng.standard_normal(xshape[:2] + oshape)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("case", POOL_CASES, ids=[str(c[1:]) for c in POOL_CASES])
def test_pool(be, case, kind, dtype):
    xshape, size, strides = case
    rng = np.random.default_rng(3)
    xp = rng.standard_normal(xshape).astype(dtype)
    gy = pool_gy(xshape, size, strides, rng).astype(dtype)
    y, gxp = run_pool(be, xp, gy, kind, size, strides, dtype)
    ref_y, ref_gx = ref_pool(xp, gy.astype(np.float64), kind, size, strides)
    assert_close(y, ref_y, dtype, f"pool_forward {kind}")
    assert_close(gxp, ref_gx, dtype, f"pool_backward {kind}")


@pytest.mark.parametrize("case", POOL_CASES, ids=[str(c[1:]) for c in POOL_CASES])
def test_max_pool_ties_go_to_the_first_element(be, case):
    xshape, size, strides = case
    rng = np.random.default_rng(4)
    xp = rng.integers(0, 2, xshape).astype(np.float64)   # many ties
    xp[..., 0] = -np.inf                                   # as -inf padding would
    gy = pool_gy(xshape, size, strides, rng)
    y, gxp = run_pool(be, xp, gy, "max", size, strides, np.float64)
    ref_y, ref_gx = ref_pool(xp, gy, "max", size, strides)
    np.testing.assert_array_equal(y, ref_y)
    np.testing.assert_allclose(gxp, ref_gx, rtol=1e-12, atol=1e-12)


def test_max_pool_of_an_all_minus_inf_window(be):
    xp = np.full((1, 1, 1, 1, 4), -np.inf)
    xp[..., 3] = 1.0
    gy = np.array([2.0, 3.0]).reshape(1, 1, 1, 1, 2)
    y, gxp = run_pool(be, xp, gy, "max", (1, 1, 2), (1, 1, 2), np.float64)
    assert y.ravel().tolist() == [-np.inf, 1.0]
    assert gxp.ravel().tolist() == [2.0, 0.0, 0.0, 3.0]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_pool_propagates_nan(be, kind, dtype):
    xshape, size, strides = (1, 1, 1, 4, 6), (1, 2, 2), (1, 2, 2)
    xp = np.arange(24, dtype=dtype).reshape(xshape)
    xp[0, 0, 0, 1, 1] = np.nan      # the first window's last element
    xp[0, 0, 0, 2, 4] = np.nan      # the last window's first element
    gy = np.ones((1, 1, 1, 2, 3), dtype)
    y, gxp = run_pool(be, xp, gy, kind, size, strides, dtype)
    isnan = np.isnan(y.ravel())
    assert isnan.tolist() == [True, False, False, False, False, True]
    if kind == "max":
        # the gradient of a NaN window goes to (the first) NaN
        assert gxp[0, 0, 0, 1, 1] == 1 and gxp[0, 0, 0, 2, 4] == 1
        assert gxp[0, 0, 0, :2, :2].sum() == 1 and gxp[0, 0, 0, 2:, 4:].sum() == 1


def test_l2_pool_gradient_is_zero_where_the_output_is_zero(be):
    xp = np.zeros((1, 1, 1, 2, 4))
    xp[0, 0, 0, :, 2:] = [[3.0, 0.0], [0.0, 4.0]]
    gy = np.ones((1, 1, 1, 1, 2))
    y, gxp = run_pool(be, xp, gy, "l2", (1, 2, 2), (1, 2, 2), np.float64)
    assert y.ravel().tolist() == [0.0, 5.0]
    np.testing.assert_allclose(gxp[0, 0, 0], [[0, 0, 0.6, 0], [0, 0, 0, 0.8]])


# ---------------------------------------------------------------------------------------------
# matmul and threads

@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (65, 130, 67), (257, 3, 129), (4, 300, 5),
                                     (3, 7, 300)])
def test_matmul(be, m, k, n, dtype):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype)
    be.matmul(a, b, c)
    assert_close(c, a.astype(np.float64) @ b.astype(np.float64), dtype, "matmul")


def test_threads(be):
    before = be.get_num_threads()
    assert isinstance(before, int) and before >= 1
    try:
        be.set_num_threads(1)
        assert be.get_num_threads() == 1
        # one thread must give the same results as many
        args = conv_data(CONV_CASES[2], np.float64)
        single = conv_call(be, "direct", "grad_weight", args, np.float64, None)
    finally:
        be.set_num_threads(before)
    # equal up to the order of the sums (partial sums per thread are merged at the end);
    # a race between threads would be off by whole terms, not by rounding
    np.testing.assert_allclose(conv_call(be, "direct", "grad_weight", args, np.float64,
                                         None), single, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError):
        be.set_num_threads(0)


# ---------------------------------------------------------------------------------------------
# argument checks of the Numba wrappers (the contract leaves validation to the strategies;
# the Numba backend checks anyway, so that a caller's bug cannot write out of bounds)

def test_numba_wrappers_reject_bad_arguments():
    nb = backends.load("numba")
    if nb is None:
        pytest.skip(backends.error("numba"))
    xp, w, gy, ints = conv_data(CONV_CASES[2], np.float64)
    y = np.empty_like(gy)
    with pytest.raises(ValueError, match=r"y must have shape \(3, 4, 1, 3, 3\)"):
        nb.direct_forward(xp, w, y[:, :, :, :2].copy(), *ints)
    with pytest.raises(TypeError, match="dtype"):
        nb.im2col_forward(xp, w.astype(np.float32), y, *ints, 100)
    with pytest.raises(ValueError, match="C-contiguous"):
        nb.direct_grad_weight(gy, np.asfortranarray(xp), np.empty_like(w), *ints)
    with pytest.raises(ValueError, match="stride|sd"):
        nb.direct_forward(xp, w, y, 0, *ints[1:])
    with pytest.raises(ValueError, match="kind"):
        nb.pool_forward(xp, np.empty_like(xp), 7, 1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="matmul"):
        nb.matmul(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)))
