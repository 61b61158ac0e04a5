"""The strategy protocol: a strategy from outside the package, per-backend functions, the rule
hooks, prepared weights (kernels.prepare / PreparedCache) and the engine's per-version cache.

The toy strategy below lives in this file only: it joins the registry through
kernels.register_strategy and is then offered, selected on request (and by its rule hook),
and checked against the float64 reference on the same grid as the built-in strategies.
"""
import types

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import engine
import kernels
from conftest import check_conv
from kernels import backends, registry
from kernels.params import pad5d
from kernels.strategies import fft, winograd
from test_conv_grid import CASES as GRID, DTYPES, OPS, operands

# ---------------------------------------------------------------------------------------------
# a toy strategy written against the protocol: windows as a strided view, one einsum a group


class Toy:
    """Windowed einsum, on the host ("numpy" column), with a rule hook that claims 2x2
    kernels.  Independent of every built-in strategy (no backend function, no im2col)."""
    NAME = "toy_windows"
    BACKENDS = ("numpy",)
    NEEDS = ()

    def __init__(self):
        self.prepared = 0

    @staticmethod
    def supports(params, x_shape, w_shape):
        return None

    def prepare(self, w, params, x_shape, backend, pass_="fwd"):
        self.prepared += 1
        return None

    @staticmethod
    def _windows(xp, params, w_shape, out_sp):
        k = tuple(d * (kk - 1) + 1 for d, kk in zip(params.dilation, w_shape[2:]))
        win = sliding_window_view(xp, k, axis=(2, 3, 4))
        win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in params.stride)]
        win = win[(slice(None), slice(None)) + tuple(slice(0, o) for o in out_sp)]
        return win[(Ellipsis,) + tuple(slice(None, None, d) for d in params.dilation)]

    def forward(self, x, w, params, backend, prepared=None):
        out_sp = params.out_spatial(x.shape[2:], w.shape[2:])
        win = self._windows(pad5d(x.astype(np.float64), params), params, w.shape, out_sp)
        g, cg = params.groups, w.shape[1]
        cog = w.shape[0] // g
        ys = [np.einsum("ncdhwijk,ocijk->nodhw", win[:, i * cg:(i + 1) * cg],
                        w[i * cog:(i + 1) * cog].astype(np.float64)) for i in range(g)]
        return np.ascontiguousarray(np.concatenate(ys, axis=1), dtype=x.dtype)

    def grad_input(self, gy, w, x_shape, params, backend, prepared=None):
        # the adjoint of forward, by the transposed einsum onto the windows of a zero buffer
        xp = np.zeros(tuple(x_shape[:2]) + params.padded_spatial(x_shape[2:]))
        win = self._windows(xp, params, w.shape, gy.shape[2:])
        win.flags.writeable  # a view of xp: np.add.at through it is not allowed, so loop taps
        g, cg = params.groups, w.shape[1]
        cog = w.shape[0] // g
        for i in range(g):
            part = np.einsum("nodhw,ocijk->ncdhwijk", gy[:, i * cog:(i + 1) * cog],
                             w[i * cog:(i + 1) * cog].astype(np.float64))
            for tap in np.ndindex(*w.shape[2:]):
                idx = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, s, o in
                            zip(tap, params.dilation, params.stride, gy.shape[2:]))
                xp[(slice(None), slice(i * cg, (i + 1) * cg)) + idx] += part[(Ellipsis,) + tap]
        crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(params.padding, x_shape[2:]))
        return np.ascontiguousarray(xp[(slice(None), slice(None)) + crop], dtype=gy.dtype)

    def grad_weight(self, gy, x, w_shape, params, backend, prepared=None):
        win = self._windows(pad5d(x.astype(np.float64), params), params, w_shape, gy.shape[2:])
        g, cg = params.groups, w_shape[1]
        cog = w_shape[0] // g
        parts = [np.einsum("nodhw,ncdhwijk->ocijk", gy[:, i * cog:(i + 1) * cog],
                           win[:, i * cg:(i + 1) * cg]) for i in range(g)]
        return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=gy.dtype)

    @staticmethod
    def workspace_bytes(params, x_shape, w_shape, itemsize):
        return 0

    @staticmethod
    def rule(params, x_shape, w_shape, pass_, device):
        if tuple(w_shape[2:]) == (2, 2):
            return 99, "rule: toy claims 2x2 kernels"
        return None


@pytest.fixture
def toy():
    strategy = Toy()
    kernels.register_strategy(strategy)
    yield strategy
    kernels.unregister_strategy(Toy.NAME)


def test_registered_strategy_is_offered_selectable_and_reference_checked(toy, rng):
    """Offered by available(), and the grid of tests/test_conv_grid.py (every case, dtype and
    pass, with its tolerance model) holds for it as for the built-in strategies."""
    assert (Toy.NAME, "numpy") in kernels.available("conv")
    assert Toy.NAME in registry.strategies()
    for case in GRID:
        for dtype in DTYPES:
            x, w, gy = operands(case, dtype, rng)
            for op in OPS:
                check_conv(op, Toy.NAME, "numpy", x, w, gy, case.kw())


def test_rule_hook_lets_a_strategy_win_auto(toy):
    s, b, reason = kernels.select((2, 3, 9, 9), (4, 3, 2, 2))
    assert (s, b, reason) == (Toy.NAME, "numpy", "rule: toy claims 2x2 kernels")
    assert kernels.select((2, 3, 9, 9), (4, 3, 3, 3))[0] != Toy.NAME
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 9))
    w = np.random.default_rng(2).standard_normal((4, 3, 2, 2))
    np.testing.assert_allclose(kernels.conv(x, w), kernels.conv(x, w, strategy="reference"))


def test_unregister_and_registration_errors(toy):
    with pytest.raises(ValueError, match="already registered"):
        kernels.register_strategy(Toy())
    with pytest.raises(ValueError, match="built-in"):
        kernels.register_strategy(types.SimpleNamespace(**{**vars(Toy), "NAME": "fft"}))
    bad = types.SimpleNamespace(NAME="toy_broken", BACKENDS=("numpy",), NEEDS=())
    with pytest.raises(TypeError, match=r"lacks the callables \['supports'"):
        kernels.register_strategy(bad)
    kernels.unregister_strategy(Toy.NAME)
    assert Toy.NAME not in registry.strategies()
    with pytest.raises(ValueError, match="unknown strategy 'toy_windows'"):
        kernels.conv(np.ones((1, 1, 4)), np.ones((1, 1, 2)), strategy=Toy.NAME)
    kernels.register_strategy(Toy())         # for the fixture's teardown


def test_a_missing_backend_function_disables_one_strategy_on_one_backend(monkeypatch):
    """A strategy declares what it calls: the backend that lacks it loses that strategy
    only.  Here a toy needs a function no backend has, and the numba backend loses its
    Winograd transforms."""
    needy = types.SimpleNamespace(**{k: getattr(Toy, k) for k in (
        "supports", "forward", "grad_input", "grad_weight", "workspace_bytes")},
        prepare=lambda *a: None, NAME="toy_needy", BACKENDS=("numba",),
        NEEDS=("no_such_function",))
    kernels.register_strategy(needy)
    try:
        assert not [p for p in kernels.available("conv") if p[0] == "toy_needy"]
        with pytest.raises(ValueError, match="lacks no_such_function"):
            kernels.conv(np.ones((1, 1, 4)), np.ones((1, 1, 2)), strategy="toy_needy")
    finally:
        kernels.unregister_strategy("toy_needy")
    numba_be = backends.load("numba")
    before = set(kernels.available("conv"))
    monkeypatch.delattr(numba_be, "winograd_input_transform")
    registry._memo.clear()
    after = set(kernels.available("conv"))
    assert before - after == {("winograd", "numba")}
    with pytest.raises(ValueError, match="lacks winograd_input_transform"):
        kernels.conv(np.ones((1, 1, 6, 6)), np.ones((1, 1, 3, 3)), strategy="winograd",
                     backend="numba")
    registry._memo.clear()


def test_one_planner_for_both_cpu_backends():
    """The Numba and Cython wrappers check through kernels.plan: the same wrong call raises
    the same message (the Cython one names its backend first)."""
    bes = [b for b in ("numba", "cython") if backends.load(b) is not None]
    if len(bes) < 2:
        pytest.skip("needs both CPU backends")
    xp = np.ones((1, 2, 1, 5, 5), np.float32)
    w = np.ones((3, 2, 1, 3, 3), np.float32)
    bad_y = np.empty((1, 3, 1, 4, 3), np.float32)
    msgs = []
    for b in bes:
        with pytest.raises(ValueError) as info:
            backends.load(b).im2col_forward(xp, w, bad_y, 1, 1, 1, 1, 1, 1, 1, 100)
        msgs.append(str(info.value).removeprefix("cython "))
    assert msgs[0] == msgs[1] and "y must have shape (1, 3, 1, 3, 3)" in msgs[0]


@pytest.mark.parametrize("backend", [b for b in ("numba", "cython")
                                     if backends.load(b) is not None])
def test_im2col_tunables_patch_both_backends(backend, monkeypatch):
    """kernels.config holds the im2col planner's tunables once; either layout is exact."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 9, 9))
    w = rng.standard_normal((6, 4, 3, 3))
    ref = kernels.conv(x, w, strategy="reference", padding=1)
    for macs in (1, 1 << 40):
        monkeypatch.setattr(kernels.config, "IM2COL_BLOCK_MIN_MACS", macs)
        np.testing.assert_allclose(kernels.conv(x, w, strategy="im2col", backend=backend,
                                                padding=1), ref, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# prepared weights


def _spy(monkeypatch, mod):
    """Record the pass of every call of ``mod.prepare`` (a weight transform made)."""
    calls = []
    real = mod.prepare

    def prepare(w, params, x_shape=None, backend=None, pass_="fwd", **kw):
        calls.append(pass_)
        return real(w, params, x_shape, backend, pass_, **kw)
    monkeypatch.setattr(mod, "prepare", prepare)
    return calls


def _data(x_shape, w_shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(np.float32),
            rng.standard_normal(w_shape).astype(np.float32))


@pytest.mark.parametrize("strategy, shapes, pad", [
    ("fft", ((2, 3, 20, 20), (4, 3, 7, 7)), 3),
    ("winograd", ((2, 8, 10, 10), (6, 8, 3, 3)), 1),
])
def test_prepare_handle_gives_the_same_results(strategy, shapes, pad):
    x, w = _data(*shapes)
    y = kernels.conv(x, w, padding=pad, strategy=strategy)
    h = kernels.prepare(w, x.shape, padding=pad, strategy=strategy)
    assert h.strategy == strategy and h.payload is not None and h.pass_ == "fwd"
    np.testing.assert_array_equal(kernels.conv(x, w, padding=pad, prepared=h), y)
    gy = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)
    hg = kernels.prepare(w, x.shape, padding=pad, strategy=strategy, pass_="grad_input")
    np.testing.assert_array_equal(
        kernels.conv_grad_input(gy, w, x.shape, padding=pad, prepared=hg),
        kernels.conv_grad_input(gy, w, x.shape, padding=pad, strategy=strategy))
    # another shape, another pass: a caller error, raised before any kernel runs
    with pytest.raises(ValueError, match="prepared was made for pass 'fwd', x"):
        kernels.conv(x[:1], w, padding=pad, prepared=h)
    with pytest.raises(ValueError, match="prepared was made for pass 'fwd'"):
        kernels.conv_grad_input(gy, w, x.shape, padding=pad, prepared=h)
    # a handle of another strategy is not used (the call selects its own)
    np.testing.assert_allclose(kernels.conv(x, w, padding=pad, strategy="direct", prepared=h),
                               y, rtol=2e-3, atol=2e-3)
    with pytest.raises(TypeError, match="prepared must be a kernels.Prepared"):
        kernels.conv(x, w, padding=pad, prepared={"U": 1})


def test_prepared_cache_counts_and_fft_shares_one_spectrum(monkeypatch):
    x, w = _data((2, 3, 20, 20), (4, 3, 7, 7))
    calls = _spy(monkeypatch, fft)
    cache = kernels.PreparedCache()
    y = kernels.conv(x, w, padding=3, strategy="fft", prepared=cache.sync(0))
    gy = np.ones_like(y)
    gx = kernels.conv_grad_input(gy, w, x.shape, padding=3, strategy="fft",
                                 prepared=cache.sync(0))
    assert calls == ["fwd"] and (cache.misses, cache.hits) == (1, 1)
    np.testing.assert_array_equal(gx, kernels.conv_grad_input(gy, w, x.shape, padding=3,
                                                              strategy="fft"))
    assert calls == ["fwd", "fwd"]               # without the cache: a transform a call
    # a new version (the weight changed): prepared again, from the new weight
    w2 = 2 * w
    y2 = kernels.conv(x, w2, padding=3, strategy="fft", prepared=cache.sync(1))
    assert calls == ["fwd"] * 3
    np.testing.assert_allclose(y2, 2 * y, rtol=1e-5, atol=1e-4)


def _model(strategy, filters=16):
    # the tested conv second, so that its grad-input runs too
    m = engine.Sequential([engine.layers.Conv2D(8, 1, strategy="direct", input_shape=(8, 12, 12)),
                           engine.layers.Conv2D(filters, 3, padding="same", strategy=strategy),
                           engine.layers.Flatten(), engine.layers.Dense(3)])
    m.compile("sgd", "mse")
    return m


@pytest.mark.parametrize("strategy, per_step", [("winograd", 2), ("fft", 1)])
def test_engine_transforms_each_weight_once_per_version(strategy, per_step, monkeypatch):
    """A training step prepares the conv weight once per pass that transforms it (FFT: one
    spectrum for forward and grad-input; Winograd: w and its flipped transpose); evaluate
    over several batches prepares once; set_weights makes a new version."""
    calls = _spy(monkeypatch, {"fft": fft, "winograd": winograd}[strategy])
    m = _model(strategy)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 8, 12, 12)).astype(np.float32)
    t = rng.standard_normal((8, 3)).astype(np.float32)
    m.train_on_batch(x, t)
    m.train_on_batch(x, t)
    assert len(calls) == 2 * per_step
    calls.clear()
    m.evaluate(x, t, batch_size=2, verbose=0)
    assert calls == ["fwd"]
    # set_weights writes the kernel in place: the next pass (same shapes, so the same cache
    # key) must see the new weights
    before = m.predict(x, batch_size=2, verbose=0)
    weights = m.get_weights()
    weights[2] = weights[2] * 0.5
    m.set_weights(weights)
    fresh = _model("reference")
    fresh.set_weights(weights)
    after = m.predict(x, batch_size=2, verbose=0)
    np.testing.assert_allclose(after, fresh.predict(x, batch_size=2, verbose=0),
                               rtol=1e-4, atol=1e-4)
    assert not np.allclose(after, before, rtol=1e-4, atol=1e-4)


def test_gradcheck_through_a_prepared_weight():
    """gradcheck perturbs the weight in place: each perturbation is a new version."""
    rng = np.random.default_rng(4)
    x = engine.Tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    w = engine.Tensor(rng.standard_normal((2, 2, 3, 3)), requires_grad=True)
    assert engine.gradcheck(lambda a, b: engine.functional.conv2d(a, b, padding=1,
                                                                  strategy="winograd"),
                            [x, w])
