"""The FFT strategy's own paths that the shared grid's small shapes never reach: forced
overlap-save tiles (with single circular tiles in the other dims), the polyphase split of
strided problems, the plan's cost model, and a prepared kernel spectrum.

Each case runs forward, grad-input and grad-weight through kernels.strategies.fft directly and
compares with the float64 reference.  Tolerance: FFT rounding errs by ~u*log2(L)*||a||*||b||
(Higham 24.1); a factor 8 covers constants.  An index bug is off by O(|a||b|), far more.
"""
import math

import numpy as np
import pytest

import kernels
from kernels import registry
from kernels.strategies import fft
from kernels.params import to5d

BACKENDS = [b for b in fft.BACKENDS if registry.backend_ok(b)]

# (x shape, w shape, conv kwargs, forced transform lengths per lifted dim)
CASES = [
    ((2, 3, 37), (4, 3, 5), dict(padding=2), (1, 1, 12)),
    ((1, 2, 50), (3, 2, 7), dict(padding=((5, 1),)), (1, 1, 16)),
    ((2, 2, 41), (2, 2, 4), dict(stride=3, padding=1, dilation=2), (1, 1, 9)),
    ((1, 1, 23, 29), (1, 1, 5, 6), dict(padding="same"), (1, 10, 12)),
    ((2, 4, 19, 17), (6, 2, 3, 5), dict(padding=(2, (0, 3)), groups=2), (1, 8, None)),
    ((1, 3, 21, 22), (2, 3, 3, 3), dict(stride=2, padding=1, dilation=(1, 2)), (1, 6, 8)),
    ((2, 2, 25, 16), (3, 2, 7, 3), dict(stride=(3, 1), padding=(3, 0)), (1, 5, None)),
    ((1, 4, 18, 18), (4, 1, 3, 3), dict(padding=1, groups=4), (1, 7, 9)),
    ((1, 2, 9, 11, 10), (2, 2, 3, 4, 3), dict(padding=(1, 2, 0)), (6, 8, 7)),
    ((1, 1, 13, 9, 12), (2, 1, 3, 3, 5), dict(stride=(1, 2, 2), padding="valid"), (7, 4, 6)),
]


def _ops(x, w, gy, kw, **fkw):
    p3 = kernels.conv_params(x.shape, w.shape, **kw).as3d()
    x5, w5, gy5 = to5d(x), to5d(w), to5d(gy)
    return p3, x5, w5, gy5


def _reference(x, w, gy, kw):
    x64, w64, gy64 = x.astype(np.float64), w.astype(np.float64), gy.astype(np.float64)
    return (kernels.conv(x64, w64, strategy="reference", **kw),
            kernels.conv_grad_input(gy64, w64, x.shape, strategy="reference", **kw),
            kernels.conv_grad_weight(gy64, x64, w.shape, strategy="reference", **kw))


def _check(got, want, a, b, dtype, length):
    u = np.finfo(dtype).eps / 2
    tol = 8 * u * (math.log2(length + 1) + a.shape[1]) * np.linalg.norm(a) * np.linalg.norm(b)
    assert got.shape == want.shape and got.dtype == dtype
    err = np.abs(got.astype(np.float64) - want).max()
    assert err <= tol, f"max|err| {err:.3g} > tol {tol:.3g}"


@pytest.mark.parametrize("reduction", ["kernel", "blas"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[str(c[:2]) for c in CASES])
def test_forced_tiles_match_reference(case, dtype, backend, reduction, monkeypatch):
    xs, ws, kw, tile = case
    if reduction == "blas":     # every groups=1 case through the batched cgemm
        if kw.get("groups", 1) > 1:
            pytest.skip("the BLAS reduction serves groups=1")
        monkeypatch.setattr(kernels.config, "FFT_BLAS_MIN_CHANNELS", 1)
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    out = kernels.conv_params(xs, ws, **kw).out_shape(xs, ws)
    gy = rng.standard_normal(out).astype(dtype)
    p3, x5, w5, gy5 = _ops(x, w, gy, kw)
    prep = fft.prepare(w5, p3, x5.shape, tile=tile)
    assert any(d.nt > 1 for d in prep.dims), prep.dims   # the case does tile
    assert prep.blas == (reduction == "blas")
    y_want, gx_want, gw_want = _reference(x, w, gy, kw)
    length = math.prod(d.T for d in prep.dims)
    for prepared in (None, prep):
        y = fft.forward(x5, w5, p3, backend, prepared=prepared, tile=tile).reshape(out)
        _check(y, y_want, x, w, dtype, length)
        gx = fft.grad_input(gy5, w5, x5.shape, p3, backend, prepared=prepared,
                            tile=tile).reshape(xs)
        _check(gx, gx_want, gy, w, dtype, length)
        gw = fft.grad_weight(gy5, x5, w5.shape, p3, backend, prepared=prepared,
                             tile=tile).reshape(ws)
        _check(gw, gw_want, gy, x, dtype, length)


def test_single_tile_is_circular_and_shorter_than_the_padded_input():
    # "same" padding of 15 on 512: the circular tile needs 512 + 15 = 527 -> 528 (11-smooth),
    # 540 on the real axis; not the padded 542
    p3 = kernels.conv_params((1, 1, 512, 512), (1, 1, 31, 31), padding="same").as3d()
    dims = fft.plan(fft.geometry(p3, (1, 1, 1, 512, 512), (1, 1, 1, 31, 31)))
    assert [(d.T, d.nt, d.shift) for d in dims[1:]] == [(528, 1, 15), (540, 1, 15)]


def test_plan_tiles_a_long_signal_with_a_short_kernel():
    p3 = kernels.conv_params((4, 1, 2**20), (2, 1, 9)).as3d()
    d = fft.plan(fft.geometry(p3, (4, 1, 1, 1, 2**20), (2, 1, 1, 1, 9)))[2]
    assert d.nt > 1 and d.T < 2**16 and d.S == d.T - 8


def test_strided_problem_transforms_only_the_phases():
    # AlexNet conv1: 11x11 stride 4 on 228 padded -> 4x4 phases of 57 samples, 3x3 taps
    p3 = kernels.conv_params((1, 3, 224, 224), (8, 3, 11, 11), stride=4, padding=2).as3d()
    g = fft.geometry(p3, (1, 3, 1, 224, 224), (8, 3, 1, 11, 11))
    assert g.x == (1, 48, 1, 57, 57) and g.k == (8, 48, 1, 3, 3) and g.out == (1, 55, 55)


@pytest.mark.parametrize("backend", BACKENDS)
def test_prepared_spectrum_is_used_as_given_and_replaced_on_a_new_shape(backend):
    rng = np.random.default_rng(1)
    x = to5d(rng.standard_normal((2, 2, 20)))
    w = to5d(rng.standard_normal((3, 2, 5)))
    p3 = kernels.conv_params((2, 2, 20), (3, 2, 5)).as3d()
    prep = fft.prepare(w, p3, x.shape)
    # the spectrum of other weights (same shape) is used as given: prepare() is the cache
    other = fft.prepare(2 * w, p3, x.shape)
    np.testing.assert_allclose(fft.forward(x, w, p3, backend, prepared=other),
                               2 * fft.forward(x, w, p3, backend, prepared=prep), rtol=1e-10)
    # a spectrum made for another input shape is not used
    x2 = to5d(rng.standard_normal((2, 2, 27)))
    p3b = kernels.conv_params((2, 2, 27), (3, 2, 5)).as3d()
    want = kernels.conv(x2[:, :, 0, 0], w[:, :, 0, 0], strategy="reference")
    np.testing.assert_allclose(fft.forward(x2, w, p3b, backend, prepared=other)[:, :, 0, 0],
                               want, rtol=1e-10, atol=1e-12)


def test_tile_shorter_than_the_kernel_is_refused():
    p3 = kernels.conv_params((1, 1, 40), (1, 1, 9)).as3d()
    with pytest.raises(ValueError, match="shorter than the kernel"):
        fft.prepare(np.ones((1, 1, 1, 1, 9)), p3, (1, 1, 1, 1, 40), tile=(1, 1, 8))


@pytest.mark.parametrize("limit", [0, 1 << 20])
def test_one_channel_pair_is_a_pointwise_product(limit, monkeypatch):
    # one input and one output channel: numpy's pointwise product of the spectra (limit 2**20)
    # or the backend's reduction (limit 0) -- both the correlation the reference computes
    from kernels import config
    from kernels.strategies import fft as fft_mod
    monkeypatch.setattr(config, "FFT_POINTWISE_MAX_ELEMS", limit)
    calls = []
    real = fft_mod._be

    class Spy:
        def __init__(self, be):
            self._be = be

        def __getattr__(self, name):
            if name == "fft_reduce_forward":
                calls.append(name)
            return getattr(self._be, name)
    monkeypatch.setattr(fft_mod, "_be", lambda b: Spy(real(b)))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1, 40, 37)).astype(np.float32)
    w = rng.standard_normal((1, 1, 9, 9)).astype(np.float32)
    y = kernels.conv(x, w, padding="same", strategy="fft")
    ref = kernels.conv(x.astype(np.float64), w.astype(np.float64), padding="same",
                       strategy="reference")
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    assert bool(calls) == (limit == 0)
