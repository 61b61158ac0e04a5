"""The CUDA backend (kernels/cuda) against naive float64 NumPy references.

Without a GPU the kernels run under the CUDA simulator (every thread in Python), so shapes
are tiny and the tile / block sizes small; on a GPU the same tests run natively with the
default tunables.  The simulator must be chosen before numba.cuda is first imported, so
without a GPU the in-process tests skip and one test reruns this file in a subprocess with
NUMBA_ENABLE_CUDASIM=1.

Outputs are prefilled with NaN, so a cell a kernel forgets to write fails.
"""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import kernels
from cudasim import MODE, in_process, run_file_under_simulator, small_tunables

if MODE != "subprocess":
    from numba import cuda

    from kernels import cuda as kc
    from kernels.cuda import config as cfg

    DEFAULT_TILE = cfg.GEMM_TILE

RTOL = {np.float32: 1e-4, np.float64: 1e-10}
DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def _small_tunables(monkeypatch):
    yield from small_tunables(monkeypatch, max_blocks=8)


def test_suite_in_simulator_subprocess():
    run_file_under_simulator(__file__, timeout=900)


def assert_close(out, ref, dtype, what):
    """Max abs error within rtol of the reference's largest magnitude; every cell finite."""
    assert out.shape == ref.shape, f"{what}: shape {out.shape} != {ref.shape}"
    assert np.isfinite(out).all(), f"{what}: non-finite values (a cell was not written?)"
    scale = max(np.abs(ref).max(initial=0.0), 1e-30)
    err = np.abs(out.astype(np.float64) - ref).max(initial=0.0)
    assert err <= RTOL[dtype] * scale, f"{what}: max abs error {err:.3g}, scale {scale:.3g}"


# ---------------------------------------------------------------------------------------------
# naive float64 references, one kernel tap at a time (the contract's formulas)

def out_size(size, k, s, d):
    return (size - d * (k - 1) - 1) // s + 1


def taps(kshape):
    return itertools.product(*(range(k) for k in kshape))


def tap_view(tap, strides, dils, oshape):
    """Slices of the padded input seen by one tap at every output position."""
    return (slice(None), slice(None)) + tuple(
        slice(k * d, k * d + (o - 1) * s + 1, s) for k, s, d, o in zip(tap, strides, dils, oshape))


def ref_forward(xp, w, strides, dils, groups):
    cg, cog = w.shape[1], w.shape[0] // groups
    oshape = tuple(map(out_size, xp.shape[2:], w.shape[2:], strides, dils))
    y = np.zeros((xp.shape[0], w.shape[0]) + oshape)
    for tap in taps(w.shape[2:]):
        xs = xp[tap_view(tap, strides, dils, oshape)]
        for g in range(groups):
            y[:, g * cog:(g + 1) * cog] += np.einsum(
                "ncdhw,oc->nodhw", xs[:, g * cg:(g + 1) * cg],
                w[(slice(g * cog, (g + 1) * cog), slice(None)) + tap])
    return y


def ref_grad_input(gy, w, xp_shape, strides, dils, groups):
    cg, cog = w.shape[1], w.shape[0] // groups
    gxp = np.zeros(xp_shape)
    for tap in taps(w.shape[2:]):
        view = tap_view(tap, strides, dils, gy.shape[2:])
        for g in range(groups):
            gxp[:, g * cg:(g + 1) * cg][view] += np.einsum(
                "nodhw,oc->ncdhw", gy[:, g * cog:(g + 1) * cog],
                w[(slice(g * cog, (g + 1) * cog), slice(None)) + tap])
    return gxp


def ref_grad_weight(gy, xp, w_shape, strides, dils, groups):
    cg, cog = w_shape[1], w_shape[0] // groups
    gw = np.zeros(w_shape)
    for tap in taps(w_shape[2:]):
        xs = xp[tap_view(tap, strides, dils, gy.shape[2:])]
        for g in range(groups):
            gw[(slice(g * cog, (g + 1) * cog), slice(None)) + tap] = np.einsum(
                "nodhw,ncdhw->oc", gy[:, g * cog:(g + 1) * cog], xs[:, g * cg:(g + 1) * cg])
    return gw


def ref_pool(xp, kind, k, s):
    """(y, gxp for gy) of pooling kind 0 max, 1 avg, 2 sum, 3 l2, window by window."""
    oshape = tuple(map(out_size, xp.shape[2:], k, s, (1, 1, 1)))
    y = np.zeros(xp.shape[:2] + oshape)
    for n, c, *o in itertools.product(*map(range, y.shape)):
        win = xp[(n, c) + tuple(slice(i * st, i * st + kk) for i, st, kk in zip(o, s, k))]
        y[(n, c, *o)] = [win.max(), win.mean(), win.sum(), np.sqrt((win ** 2).sum())][kind]
    return y


def ref_pool_grad(gy, xp, y, kind, k, s):
    gxp = np.zeros(xp.shape)
    for n, c, *o in itertools.product(*map(range, gy.shape)):
        sl = (n, c) + tuple(slice(i * st, i * st + kk) for i, st, kk in zip(o, s, k))
        g, win = gy[(n, c, *o)], xp[sl]
        if kind == 0:
            first = np.unravel_index(np.argmax(win), win.shape)  # first maximal element
            gxp[sl][first] += g
        elif kind == 1:
            gxp[sl] += g / win.size
        elif kind == 2:
            gxp[sl] += g
        elif y[(n, c, *o)] != 0:
            gxp[sl] += g * win / y[(n, c, *o)]
    return gxp


def test_references_are_adjoint():
    """<gy, conv(x, w)> = <gx, x> = <gw, w>: the two gradient references fit the forward."""
    rng = np.random.default_rng(0)
    xp, w = rng.standard_normal((2, 4, 3, 6, 5)), rng.standard_normal((6, 2, 2, 2, 2))
    s, d = (1, 2, 1), (1, 1, 2)
    y = ref_forward(xp, w, s, d, 2)
    gy = rng.standard_normal(y.shape)
    assert np.isclose((ref_grad_input(gy, w, xp.shape, s, d, 2) * xp).sum(), (gy * y).sum())
    assert np.isclose((ref_grad_weight(gy, xp, w.shape, s, d, 2) * w).sum(), (gy * y).sum())


# ---------------------------------------------------------------------------------------------
# convolution

# (padded input shape, weight shape, strides, dilations, groups), 1-D / 2-D / 3-D in 5-D form
CONV_CASES = [
    ((2, 4, 1, 1, 11), (6, 2, 1, 1, 3), (1, 1, 2), (1, 1, 2), 2),      # 1-D, stride, dil, groups
    ((2, 3, 1, 6, 7), (4, 3, 1, 3, 2), (1, 2, 1), (1, 1, 2), 1),       # 2-D
    ((1, 4, 4, 5, 4), (4, 1, 2, 2, 2), (2, 1, 1), (1, 2, 1), 4),       # 3-D depthwise
]
CONV_IDS = ["1d-g2", "2d", "3d-depthwise"]
PASSES = ["forward", "grad_input", "grad_weight"]


def conv_data(case, dtype, seed=0):
    xshape, wshape, strides, dils, groups = case
    rng = np.random.default_rng(seed)
    oshape = tuple(map(out_size, xshape[2:], wshape[2:], strides, dils))
    return (rng.standard_normal(xshape).astype(dtype), rng.standard_normal(wshape).astype(dtype),
            rng.standard_normal((xshape[0], wshape[0]) + oshape).astype(dtype),
            strides + dils + (groups,))


def run_conv(strategy, pass_, data, *extra):
    xp, w, gy, ints = data
    out = np.full({"forward": gy, "grad_input": xp, "grad_weight": w}[pass_].shape, np.nan,
                  xp.dtype)
    a, b = {"forward": (xp, w), "grad_input": (gy, w), "grad_weight": (gy, xp)}[pass_]
    getattr(kc, f"{strategy}_{pass_}")(a, b, out, *ints, *extra)
    return out


def ref_conv(pass_, data):
    xp, w, gy, ints = data
    xp, w, gy = (a.astype(np.float64) for a in (xp, w, gy))
    s, d, groups = ints[:3], ints[3:6], ints[6]
    if pass_ == "forward":
        return ref_forward(xp, w, s, d, groups)
    if pass_ == "grad_input":
        return ref_grad_input(gy, w, xp.shape, s, d, groups)
    return ref_grad_weight(gy, xp, w.shape, s, d, groups)


# column budgets of im2col: every image at once; then one image per chunk (1-D case) or runs
# of output positions of one image (2-D, 3-D cases); direct has none
BUDGETS = [1 << 40, 64]


@in_process
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
@pytest.mark.parametrize("strategy", ["direct", "im2col"])
def test_conv_kernels(strategy, case, dtype):
    data = conv_data(case, dtype)
    budgets = [None] if strategy == "direct" else \
        BUDGETS if dtype == np.float64 else BUDGETS[:1]
    for pass_ in PASSES:
        ref = ref_conv(pass_, data)
        for budget in budgets:
            args = () if budget is None else (budget,)
            assert_close(run_conv(strategy, pass_, data, *args), ref, dtype,
                         f"{strategy} {pass_} max_col_elems={budget}")


@in_process
def test_grids_larger_than_one_wave(monkeypatch):
    """Capping the grid at 2 small blocks makes every kernel loop grid-stride."""
    monkeypatch.setattr(cfg, "MAX_BLOCKS", 2)
    monkeypatch.setattr(cfg, "THREADS", 16)
    monkeypatch.setattr(cfg, "REDUCE_THREADS", 4)
    monkeypatch.setattr(cfg, "GEMM_TILE", (8, 8, 4, 2, 2))
    data = conv_data(CONV_CASES[1], np.float64, seed=1)
    for strategy, extra in (("direct", ()), ("im2col", (1 << 40,))):
        for pass_ in PASSES:
            assert_close(run_conv(strategy, pass_, data, *extra), ref_conv(pass_, data),
                         np.float64, f"{strategy} {pass_} with MAX_BLOCKS=2")
    xp = data[0]
    y = np.full((2, 3, 1, 5, 3), np.nan)
    kc.pool_forward(xp, y, 1, 1, 2, 3, 1, 1, 2)
    assert_close(y, ref_pool(xp.astype(np.float64), 1, (1, 2, 3), (1, 1, 2)), np.float64,
                 "avg pool with MAX_BLOCKS=2")


@in_process
def test_device_arrays_in_and_out():
    """Device arrays are used in place: results stay on the device until asked for."""
    data = conv_data(CONV_CASES[1], np.float32)
    xp, w, gy, ints = data
    dx, dw = cuda.to_device(xp), cuda.to_device(w)
    dy = cuda.device_array(gy.shape, dtype=np.float32)
    kc.direct_forward(dx, dw, dy, *ints)
    dgx = cuda.device_array(xp.shape, dtype=np.float32)
    kc.im2col_grad_input(dy, dw, dgx, *ints, 1 << 20)
    ref_y = ref_conv("forward", data)
    assert_close(dy.copy_to_host(), ref_y, np.float32, "forward on device arrays")
    assert_close(dgx.copy_to_host(), ref_conv("grad_input", (xp, w, ref_y, ints)), np.float32,
                 "grad_input of a device-resident output")
    pads = ((0, 0), (1, 2), (2, 0))
    dxp = cuda.device_array((2, 3, 1, 9, 9), dtype=np.float32)
    kc.pad5d(dgx, pads, dxp, value=-1.0)
    back = np.full(xp.shape, np.nan, np.float32)
    kc.crop5d(dxp, pads, back)
    host = dxp.copy_to_host()
    assert np.array_equal(host, np.pad(dgx.copy_to_host(), ((0, 0), (0, 0)) + pads,
                                       constant_values=-1.0))
    assert np.array_equal(back, dgx.copy_to_host())
    c = np.full((4, 3), np.nan, np.float32)
    a = np.arange(20, dtype=np.float32).reshape(4, 5)
    kc.matmul(cuda.to_device(a), np.ones((5, 3), np.float32), c)  # mixed host and device
    assert_close(c, a.astype(np.float64) @ np.ones((5, 3)), np.float32, "mixed matmul")


@in_process
def test_bad_arguments_raise_before_any_kernel():
    xp, w, gy, ints = conv_data(CONV_CASES[1], np.float32)
    with pytest.raises(ValueError, match=r"direct_forward: y must have shape \(2, 4, 1, 2, 5\)"):
        kc.direct_forward(xp, w, np.empty((2, 4, 2, 2, 4), np.float32), *ints)
    with pytest.raises(TypeError, match="all arrays must share one dtype"):
        kc.direct_forward(xp, w.astype(np.float64), gy, *ints)
    with pytest.raises(ValueError, match="groups=2 does not fit"):
        kc.direct_grad_weight(gy, xp, np.empty_like(w), *ints[:6], 2)
    with pytest.raises(ValueError, match="sd must be a positive int"):
        kc.im2col_forward(xp, w, gy, 0, *ints[1:], 100)
    with pytest.raises(ValueError, match="max_col_elems must be a positive int"):
        kc.im2col_forward(xp, w, gy, *ints, 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        kc.matmul(np.ones((4, 6), np.float32)[:, ::2], np.ones((3, 2), np.float32),
                  np.empty((4, 2), np.float32))
    with pytest.raises(ValueError, match="kind must be 0"):
        kc.pool_forward(xp, np.empty((2, 3, 1, 3, 3), np.float32), 4, 1, 2, 2, 1, 2, 2)
    with pytest.raises(TypeError, match="numpy or CUDA device array"):
        kc.matmul([[1.0]], np.ones((1, 1)), np.empty((1, 1)))


# ---------------------------------------------------------------------------------------------
# pooling

# (padded input shape, window, strides): overlapping windows, 1-D, 2-D and 3-D
POOL_CASES = [
    ((2, 2, 1, 1, 9), (1, 1, 3), (1, 1, 2)),
    ((1, 2, 1, 7, 6), (1, 3, 2), (1, 2, 1)),
    ((1, 1, 4, 5, 4), (2, 2, 2), (1, 2, 2)),
]


@in_process
@pytest.mark.parametrize("kind", [0, 1, 2, 3], ids=["max", "avg", "sum", "l2"])
@pytest.mark.parametrize("case", POOL_CASES, ids=["1d", "2d", "3d"])
def test_pool(case, kind):
    shape, k, s = case
    rng = np.random.default_rng(kind)
    # small integers: max pooling windows hold ties, which must go to the first maximum
    xp = rng.integers(-3, 4, shape).astype(np.float64)
    oshape = shape[:2] + tuple(map(out_size, shape[2:], k, s, (1, 1, 1)))
    gy = rng.standard_normal(oshape)
    y = np.full(oshape, np.nan)
    kc.pool_forward(xp, y, kind, *k, *s)
    ref_y = ref_pool(xp, kind, k, s)
    assert_close(y, ref_y, np.float64, f"pool kind {kind}")
    gxp = np.full(shape, np.nan)
    kc.pool_backward(gy, xp, y, gxp, kind, *k, *s)
    assert_close(gxp, ref_pool_grad(gy, xp, ref_y, kind, k, s), np.float64,
                 f"pool_backward kind {kind}")


@in_process
def test_max_pool_float32_nan_and_padding():
    """A window with a NaN gives NaN and sends its gradient to that NaN; -inf padding loses."""
    xp = np.array([-np.inf, 1.0, 1.0, np.nan, 2.0, -np.inf], np.float32).reshape(1, 1, 1, 1, 6)
    y = np.full((1, 1, 1, 1, 3), 7.0, np.float32)
    kc.pool_forward(xp, y, 0, 1, 1, 2, 1, 1, 2)
    assert y.ravel()[0] == 1.0 and np.isnan(y.ravel()[1]) and y.ravel()[2] == 2.0
    gxp = np.full(xp.shape, 7.0, np.float32)
    kc.pool_backward(np.ones_like(y), xp, y, gxp, 0, 1, 1, 2, 1, 1, 2)
    assert gxp.ravel().tolist() == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]


# ---------------------------------------------------------------------------------------------
# matmul and the FFT helpers

@in_process
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("mkn", [(17, 33, 9), (65, 70, 3), (1, 1, 1), (5, 0, 4)])
def test_matmul_sizes_not_multiple_of_tile(mkn, dtype):
    m, k, n = mkn
    rng = np.random.default_rng(m * 1000 + k)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype)
    kc.matmul(a, b, c)
    assert_close(c, a.astype(np.float64) @ b, dtype, f"matmul {mkn}")


@in_process
@pytest.mark.parametrize("trans_a,trans_b", [(True, False), (False, True), (True, True)])
def test_matmul_transposes_as_strides(trans_a, trans_b):
    rng = np.random.default_rng(7)
    m, k, n = 19, 11, 23
    a = rng.standard_normal((k, m) if trans_a else (m, k))
    b = rng.standard_normal((n, k) if trans_b else (k, n))
    c = np.full((m, n), np.nan)
    kc.matmul(a, b, c, trans_a=trans_a, trans_b=trans_b)
    assert_close(c, (a.T if trans_a else a) @ (b.T if trans_b else b), np.float64,
                 f"matmul trans_a={trans_a} trans_b={trans_b}")
    with pytest.raises(ValueError, match="expected op\\(a\\) \\(M, K\\)"):
        kc.matmul(a, b, c, trans_a=not trans_a, trans_b=trans_b)


@in_process
def test_matmul_default_tile(monkeypatch):
    """The default (large) tile, registers and all, on a size it does not divide."""
    monkeypatch.setattr(cfg, "GEMM_TILE", DEFAULT_TILE)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((20, 21)), rng.standard_normal((21, 13))
    c = np.full((20, 13), np.nan)
    kc.matmul(a, b, c)
    assert_close(c, a @ b, np.float64, "matmul with the default tile")


@in_process
def test_fft_helpers():
    rng = np.random.default_rng(5)

    def crandn(*shape):
        return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)

    n, c, c_out, groups, f = 2, 4, 6, 2, 5
    cg, cog = c // groups, c_out // groups
    X, W, GY = crandn(n, c, f), crandn(c_out, cg, f), crandn(n, c_out, f)
    Xg, GYg = X.reshape(n, groups, cg, f), GY.reshape(n, groups, cog, f)
    Wg = W.reshape(groups, cog, cg, f)
    want = {
        "fwd": np.einsum("ngcf,gocf->ngof", Xg, Wg.conj()).reshape(n, c_out, f),
        "gin": np.einsum("ngof,gocf->ngcf", GYg, Wg).reshape(n, c, f),
        "gw": np.einsum("ngof,ngcf->gocf", GYg, Xg.conj()).reshape(c_out, cg, f),
    }
    for key, fn, args, shape in (("fwd", kc.fft_reduce_forward, (X, W), (n, c_out, f)),
                                 ("gin", kc.fft_reduce_grad_input, (GY, W), (n, c, f)),
                                 ("gw", kc.fft_reduce_grad_weight, (GY, X), (c_out, cg, f))):
        for cdt in (np.complex64, np.complex128):
            out = np.full(shape, np.nan, cdt)
            fn(*(a.astype(cdt) for a in args), out, groups)
            tol = 1e-4 if cdt == np.complex64 else 1e-12
            assert np.abs(out - want[key]).max() <= tol * np.abs(want[key]).max(), key
    src = rng.standard_normal((1, 2, 3, 5, 7)).astype(np.float32)
    dst = np.full((1, 2, 2, 3, 3), np.nan, np.float32)
    kc.strided_crop(src, dst, 2, 2, 3)
    assert np.array_equal(dst, src[:, :, ::2, ::2, ::3])


@in_process
def test_available_and_contract_names():
    from kernels import backends
    assert kc.available()
    assert kc.simulated() == (MODE == "simulator")
    missing = [f for f in backends.FUNCTIONS if not callable(getattr(kc, f, None))]
    assert not missing, f"kernels.cuda lacks {missing}"
    kc.set_num_threads(3)
    assert kc.get_num_threads() == 3


# ---------------------------------------------------------------------------------------------
# the native compile path, without a GPU: the simulator runs kernels as Python and accepts
# code that numba's CUDA compiler rejects, so every kernel is also compiled to PTX here

PTX_SCRIPT = r"""
import sys
import numpy as np
from numba import cuda, types as t
from numba.cuda.cudadrv import nvvm
if not nvvm.is_available():
    sys.exit("SKIP: libNVVM is not installed")
import numba.cuda.dispatcher as dispatcher
from kernels.cuda import _device, conv_direct, fft, gemm, im2col, layout, pool


class Device:  # device functions ask the current device for its compute capability
    compute_capability = (9, 0)


dispatcher.get_current_device = Device
i, f32, c64 = t.int64, t.float32, t.complex64
a1, a3, a5 = (t.Array(f32, nd, "C") for nd in (1, 3, 5))
c3 = t.Array(c64, 3, "C")
jobs = [
    (conv_direct._forward, (a5, a5, a5) + (i,) * 7 + (f32,)),
    (conv_direct._grad_input, (a5, a5, a5) + (i,) * 7 + (f32,)),
    (conv_direct._grad_weight_kernel(np.float32, 128), (a5, a5, a5) + (i,) * 7 + (f32,)),
    (pool._forward, (a5, a5) + (i,) * 7 + (f32,)),
    (pool._backward, (a5, a5, a5, a5) + (i,) * 7 + (f32,)),
    (im2col._im2col, (a5, a1) + (i,) * 15),
    (im2col._col2im, (a1, a5) + (i,) * 16 + (t.boolean, f32)),
    (_device._fill, (a1, t.float64)),
    (fft._strided_crop, (a5, a5, i, i, i)),
    (layout._pad, (a5, a5, i, i, i, t.float64)),
    (layout._crop, (a5, a5, i, i, i)),
    (fft._reduce_forward, (c3, c3, c3, i, c64)),
    (fft._reduce_grad_input, (c3, c3, c3, i, c64)),
    (fft._reduce_grad_weight, (c3, c3, c3, i, c64)),
]
for dt in (t.float32, t.float64):
    a = t.Array(dt, 1, "C")
    jobs.append((gemm.kernel(np.dtype(str(dt)))[0], (a, a, a) + (i,) * 23 + (t.boolean,)))
for kern, sig in jobs:
    ptx, _ = cuda.compile_ptx(kern.py_func, sig, cc=(9, 0))
    name = kern.py_func.__name__
    if name == "gemm" and "local_depot" in ptx:
        sys.exit("FAIL: the GEMM accumulators spilled to local memory")
print("compiled", len(jobs), "kernels")
"""


def test_kernels_compile_to_ptx():
    if MODE != "simulator":
        pytest.skip("on a GPU every test compiles its kernels natively; in 'subprocess' mode "
                    "the subprocess runs this test")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, "-c", PTX_SCRIPT], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.stderr.strip().endswith("SKIP: libNVVM is not installed"):
        pytest.skip("libNVVM is not installed: cannot compile CUDA kernels here")
    assert proc.returncode == 0 and "compiled" in proc.stdout, proc.stderr[-4000:]


# ---------------------------------------------------------------------------------------------
# kernels' public functions on device arrays: "cuda" as a backend column of the registry.
# Device arrays in give numba device arrays out; select(device="cuda") chooses among the cuda
# column with a reason; padding happens once, on the device, in the strategies' shared helper;
# the bench measures the column on device-resident inputs.  Every result is compared with the
# float64 reference strategy on the host.

TOL = {np.float32: 1e-4, np.float64: 1e-10}


def close(got, want, dtype, what):
    assert hasattr(got, "copy_to_host"), f"{what}: expected a device array, got {type(got)}"
    host = got.copy_to_host()
    assert host.shape == want.shape and host.dtype == dtype, what
    scale = max(np.abs(want).max(initial=0.0), 1e-30)
    assert np.abs(host - want).max(initial=0.0) <= TOL[dtype] * scale, what


# (x, w, keyword arguments): 1-D, 2-D with asymmetric padding and stride, grouped dilated
API_CASES = [
    ((2, 2, 7), (3, 2, 3), dict(padding=1)),
    ((1, 2, 5, 6), (2, 2, 2, 3), dict(stride=(2, 1), padding=((1, 0), (2, 1)))),
    ((1, 4, 5, 5), (4, 2, 2, 2), dict(groups=2, dilation=2, padding="same")),
]


@in_process
def test_cuda_is_a_column_of_the_registry():
    pairs = kernels.available("conv")
    assert ("direct", "cuda") in pairs and ("im2col", "cuda") in pairs
    assert ("fft", "cuda") not in pairs and ("winograd", "cuda") not in pairs
    s, b, reason = kernels.select((2, 3, 8, 8), (4, 3, 3, 3), padding=1, device="cuda")
    assert b == "cuda" and s in ("direct", "im2col") and reason.endswith("(on cuda)")
    s, b, _ = kernels.select((2, 1, 8, 8), (4, 1, 3, 3), groups=1, device="cpu")
    assert b in ("numba", "cython")
    with pytest.raises(ValueError, match="device must be one of"):
        kernels.select((2, 3, 8, 8), (4, 3, 3, 3), device="gpu")


@in_process
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("strategy", ["auto", "direct", "im2col"])
@pytest.mark.parametrize("case", API_CASES, ids=["1d", "2d-asym", "grouped"])
def test_conv_passes_on_device_arrays(case, strategy, dtype):
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    y = kernels.conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                     strategy="reference", **kw)
    gy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db, dgy = (cuda.to_device(a) for a in (x, w, b, gy))
    close(kernels.conv(dx, dw, db, strategy=strategy, **kw), y, dtype, "forward")
    gx = kernels.conv_grad_input(gy.astype(np.float64), w.astype(np.float64), x_shape,
                                 strategy="reference", **kw)
    close(kernels.conv_grad_input(dgy, dw, x_shape, strategy=strategy, **kw), gx, dtype,
          "grad_input")
    gw = kernels.conv_grad_weight(gy.astype(np.float64), x.astype(np.float64), w_shape,
                                  strategy="reference", **kw)
    close(kernels.conv_grad_weight(dgy, dx, w_shape, strategy=strategy, **kw), gw, dtype,
          "grad_weight")


@in_process
def test_host_arrays_on_the_cuda_backend_come_back_as_numpy():
    x = np.arange(10.0).reshape(1, 1, 10)
    w = np.array([[[1.0, -1.0]]])
    y = kernels.conv(x, w, backend="cuda", strategy="direct", padding=1)
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, kernels.conv(x, w, strategy="reference", padding=1))
    # the reference serves device arrays through a host round trip: device array out
    out = kernels.conv(cuda.to_device(x), cuda.to_device(w), strategy="reference")
    np.testing.assert_allclose(out.copy_to_host(), kernels.conv(x, w, strategy="reference"))


@in_process
def test_device_errors_are_raised_before_any_kernel():
    dx = cuda.to_device(np.ones((1, 2, 6, 6), np.float32))
    dw = cuda.to_device(np.ones((2, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="strategy 'fft' cannot run on 'cuda' arrays"):
        kernels.conv(dx, dw, strategy="fft")
    with pytest.raises(ValueError, match="backend 'numba' cannot take 'cuda' arrays"):
        kernels.conv(dx, dw, backend="numba")
    with pytest.raises(TypeError, match="device arrays must share one dtype"):
        kernels.conv(dx, cuda.to_device(np.ones((2, 2, 3, 3))))
    with pytest.raises(ValueError, match="w must have shape|channels|groups"):
        kernels.conv(dx, cuda.to_device(np.ones((2, 3, 3, 3), np.float32)))


@in_process
@pytest.mark.parametrize("kind", ["max", "avg", "l2"])
def test_pool_and_matmul_on_device_arrays(kind):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 5, 6))
    kw = dict(stride=(2, 1), padding=((1, 0), (0, 1)))
    y = kernels.pool(x, kind, (2, 3), backend="numba", **kw)
    dy = kernels.pool(cuda.to_device(x), kind, (2, 3), **kw)
    close(dy, y, np.float64, "pool")
    gy = rng.standard_normal(y.shape)
    close(kernels.pool_grad(cuda.to_device(gy), cuda.to_device(x), kind, (2, 3), **kw),
          kernels.pool_grad(gy, x, kind, (2, 3), backend="numba", **kw), np.float64,
          "pool_grad")
    close(kernels.global_pool(cuda.to_device(x), kind), kernels.global_pool(x, kind),
          np.float64, "global_pool")
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    close(kernels.matmul(cuda.to_device(a), cuda.to_device(b)), a @ b, np.float64, "matmul")
    with pytest.raises(ValueError, match="cannot take 'cuda' arrays"):
        kernels.pool(cuda.to_device(x), kind, 2, backend="cython")


@in_process
def test_bench_measures_and_autotune_records_the_cuda_column(tmp_path, monkeypatch):
    from bench import measure, suites
    from kernels import registry
    monkeypatch.setenv("CONVLAB_CACHE_DIR", str(tmp_path))
    registry.reload_cache()
    case = suites.parse_spec("1,2,6,6:3,2,3,3:padding=1")
    rows, skipped = measure.measure_cases([case], ("fwd",), [("direct", "cuda")], (),
                                          repeat=1, warmup=0, errors=True, peak=0.0,
                                          auto=False)
    assert not skipped and rows[0]["backend"] == "cuda" and rows[0]["max_rel_err"] < 1e-5
    registry.record_tuned(case.x_shape, case.w_shape, case.params(), "float32", "fwd",
                          "direct", "cuda", 1.0)
    s, b, reason = kernels.select(case.x_shape, case.w_shape, device="cuda",
                                  **case.conv_kwargs())
    assert (s, b) == ("direct", "cuda") and reason.startswith("measured")
    assert kernels.select(case.x_shape, case.w_shape, **case.conv_kwargs())[1] != "cuda"
    registry.clear_cache()


@in_process
def test_reliability_guards_leave_device_arrays_alone():
    """Issue 13's guards on the device path: device arrays are never copied or trimmed on the
    host (a padding of a whole kernel runs on the device, device array out), host arrays on
    the cuda backend are trimmed and read-only ones copied (NumPy out), absurd padding is
    refused before any kernel, and kernels.use(backend="cuda") in one thread leaves host
    calls of other threads on the CPU."""
    import threading
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    kw = dict(padding=4, stride=2)      # padding >= the kernel: the host path trims it
    want = kernels.conv(x.astype(np.float64), w.astype(np.float64), strategy="reference",
                        **kw)
    close(kernels.conv(cuda.to_device(x), cuda.to_device(w), **kw), want, np.float32,
          "device arrays, padding of a whole kernel")
    ro = x.copy()
    ro.setflags(write=False)
    y = kernels.conv(ro, w, backend="cuda", **kw)
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    gy = rng.standard_normal(want.shape).astype(np.float32)
    gx = kernels.conv_grad_input(gy.astype(np.float64), w.astype(np.float64), x.shape,
                                 strategy="reference", **kw)
    close(kernels.conv_grad_input(cuda.to_device(gy), cuda.to_device(w), x.shape, **kw), gx,
          np.float32, "grad_input, device arrays, padding of a whole kernel")
    with pytest.raises(ValueError, match="padded input"):
        kernels.conv(cuda.to_device(x), cuda.to_device(w), padding=2**20, dilation=2**19)
    seen = {}
    inside, done = threading.Event(), threading.Event()

    def holder():
        with kernels.use(backend="cuda"):
            seen["holder"] = kernels._on_device("auto", x, w)
            inside.set()
            done.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    inside.wait(10)
    seen["other"] = kernels._on_device("auto", x, w)
    done.set()
    t.join()
    assert seen == {"holder": "cuda", "other": "cpu"}
