"""kernels.select: a pure function returning (strategy, backend, reason); forcing through
kernels.use() and CONVLAB_STRATEGY; the autotune cache ("measured"), including a corrupt file."""
import json
import os
import warnings

import numpy as np
import pytest

import kernels
from conftest import unsupported
from kernels import config, registry

SHAPES = [((2, 3, 16, 16), (8, 3, 3, 3), dict(padding=1)),
          ((1, 32, 12, 12), (32, 32, 3, 3), dict(padding=1)),
          ((1, 8, 20, 20), (8, 1, 3, 3), dict(groups=8)),
          ((1, 4, 30), (4, 4, 11), dict(padding="same")),
          ((2, 2, 5, 6, 7), (3, 2, 2, 2, 2), dict(stride=2)),
          ((1, 4, 9, 9), (4, 4, 5, 5), dict(dilation=2))]
HAS_COMPILED = any(s != "reference" for s, _ in kernels.available("conv"))


@pytest.fixture
def rules_only(monkeypatch):
    """select() as the rules see it: nothing forced, no autotune cache."""
    monkeypatch.setattr(config, "FORCE_STRATEGY", None)
    monkeypatch.setattr(config, "FORCE_BACKEND", None)
    monkeypatch.setattr(config, "USE_AUTOTUNE", False)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An autotune cache in a fresh directory (as CONVLAB_CACHE_DIR would give)."""
    monkeypatch.setattr(config, "FORCE_STRATEGY", None)
    monkeypatch.setattr(config, "FORCE_BACKEND", None)
    monkeypatch.setattr(config, "USE_AUTOTUNE", True)
    monkeypatch.setattr(config, "cache_dir", lambda: str(tmp_path / "convlab"))
    registry.reload_cache()
    yield tmp_path / "convlab" / "autotune.json"
    registry.reload_cache()


@pytest.fixture
def spy(monkeypatch):
    """spy(strategy) -> list that records each call of that strategy's forward."""
    def install(strategy):
        mod = registry.strategy_module(strategy)
        calls, forward = [], mod.forward
        monkeypatch.setattr(mod, "forward", lambda *a, **k: calls.append(a[3]) or forward(*a, **k))
        return calls
    return install


def sel(x, w, kw, **extra):
    return kernels.select(x, w, **kw, **extra)


@pytest.mark.parametrize("x,w,kw", SHAPES)
def test_select_returns_a_usable_triple_with_a_reason(x, w, kw, rules_only):
    strategy, backend, reason = sel(x, w, kw)
    assert isinstance(reason, str) and reason.strip() and "\n" not in reason
    assert (strategy, backend) in kernels.available("conv")
    assert unsupported(strategy, x, w, kw) is None


@pytest.mark.parametrize("x,w,kw", SHAPES)
def test_select_is_pure(x, w, kw, rules_only):
    first = sel(x, w, kw, need_backward=True)
    assert sel(x, w, kw, need_backward=True) == first
    kernels.conv(np.ones(x), np.ones(w), **kw)                 # running a conv changes nothing
    assert sel(x, w, kw, need_backward=True) == first


def test_select_rejects_bad_shapes():
    with pytest.raises(ValueError, match="select.*output would be empty"):
        kernels.select((1, 1, 4), (1, 1, 5))


@pytest.mark.skipif(not HAS_COMPILED, reason="no compiled backend: auto means reference")
@pytest.mark.parametrize("x,w,kw", SHAPES)
def test_conv_auto_runs_what_select_chose(x, w, kw, rules_only, spy):
    strategy, _, _ = sel(x, w, kw)
    calls = spy(strategy)
    kernels.conv(np.ones(x), np.ones(w), **kw)
    assert len(calls) == 1


def test_use_forces_the_strategy_and_restores(rules_only, spy):
    calls = spy("reference")
    x, w = np.ones((1, 2, 6, 6)), np.ones((3, 2, 3, 3))
    with kernels.use(strategy="reference"):
        kernels.conv(x, w)
        with kernels.use(strategy="direct"):                    # nested: inner wins ...
            kernels.conv(x, w)
        kernels.conv(x, w)                                       # ... and is undone
    assert len(calls) == 2
    if HAS_COMPILED:
        kernels.conv(x, w)                                       # forcing is over
        assert len(calls) == 2


def test_use_loses_to_an_explicit_request(rules_only, spy):
    if ("direct", "numba") not in kernels.available("conv") and \
            ("direct", "cython") not in kernels.available("conv"):
        pytest.skip("no direct strategy here")
    calls = spy("reference")
    with kernels.use(strategy="reference"):
        kernels.conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), strategy="direct")
    assert calls == []


@pytest.mark.parametrize("backend", [b for b in ("numba", "cython")
                                     if ("direct", b) in kernels.available("conv")])
def test_use_forces_the_backend(backend, rules_only, spy):
    calls = spy("direct")
    with kernels.use(backend=backend):
        kernels.conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), strategy="direct")
    assert calls == [backend]


def test_use_rejects_an_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategy 'magic'"):
        with kernels.use(strategy="magic"):
            pass


def test_use_rejects_an_unknown_backend():
    with pytest.raises(ValueError, match="backend 'bogus'"):
        with kernels.use(backend="bogus"):
            pass


def test_env_strategy_forces_select(monkeypatch):
    forced = "direct" if HAS_COMPILED else "reference"
    monkeypatch.setattr(config, "FORCE_STRATEGY", forced)
    strategy, backend, reason = kernels.select((1, 3, 8, 8), (4, 3, 3, 3))
    assert strategy == forced and (strategy, backend) in kernels.available("conv")
    assert reason == f"forced by CONVLAB_STRATEGY={forced}"


def test_env_strategy_that_cannot_serve_is_not_forced(monkeypatch):
    if registry.strategy_module("winograd") is None:
        pytest.skip("winograd is not part of this build")
    monkeypatch.setattr(config, "FORCE_STRATEGY", "winograd")
    monkeypatch.setattr(config, "USE_AUTOTUNE", False)
    strategy, _, reason = kernels.select((1, 3, 8, 8), (4, 3, 5, 5))
    assert strategy != "winograd" and "forced" not in reason


# --------------------------------------------------------------------------------------
# autotune cache
# --------------------------------------------------------------------------------------

X, W, KW = (1, 3, 10, 10), (4, 3, 3, 3), dict(padding=1)


def record(pass_="fwd", strategy="reference", backend="numpy", dtype="float32"):
    p = kernels.conv_params(X, W, **KW)
    registry.record_tuned(X, W, p, dtype, pass_, strategy, backend, 1.25)


def test_measured_choice_wins_and_says_so(cache, spy):
    # reference/numpy is usable everywhere and never what the rules pick: a visible change
    record()
    strategy, backend, reason = sel(X, W, KW)
    assert (strategy, backend) == ("reference", "numpy")
    assert reason.startswith("measured") and "1.25" in reason
    calls = spy("reference")
    kernels.conv(np.ones(X, np.float32), np.ones(W, np.float32), **KW)   # auto follows it
    assert len(calls) == 1


def test_cache_is_keyed_by_dtype_params_and_pass(cache):
    record()
    assert not sel(X, W, KW, dtype="float64")[2].startswith("measured")
    assert not sel(X, W, dict(padding=0))[2].startswith("measured")
    assert sel(X, W, KW, need_backward=True)[2].endswith("pass fwd)")   # falls back to fwd
    record(pass_="all", dtype="float64")
    assert sel(X, W, KW, dtype="float64", need_backward=True)[2].startswith("measured")
    assert not sel(X, W, KW, dtype="float64")[2].startswith("measured")


def test_cache_persists_on_disk_and_clears(cache):
    record()
    doc = json.loads(cache.read_text())
    assert doc["format"] == registry.CACHE_FORMAT and len(doc["entries"]) == 1
    registry.reload_cache()                                      # as a new process would
    assert sel(X, W, KW)[2].startswith("measured")
    registry.clear_cache()
    assert not cache.exists()
    assert not sel(X, W, KW)[2].startswith("measured")


def test_measured_choice_that_cannot_run_is_ignored(cache):
    record(backend="no-such-backend")
    assert not sel(X, W, KW)[2].startswith("measured")


def test_no_autotune_ignores_the_cache(cache, monkeypatch):
    record()
    monkeypatch.setattr(config, "USE_AUTOTUNE", False)
    assert not sel(X, W, KW)[2].startswith("measured")


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": "other"}),
                                     json.dumps({"format": registry.CACHE_FORMAT,
                                                 "version": 99, "entries": {}}), "\xff\xfe"])
def test_corrupt_cache_warns_once_and_falls_back_to_rules(cache, content, monkeypatch):
    os.makedirs(cache.parent, exist_ok=True)
    cache.write_bytes(content.encode("latin-1"))
    registry.reload_cache()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = sel(X, W, KW)
        second = sel(X, W, KW, need_backward=True)
        sel((1, 3, 9, 9), W, KW)
    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(runtime) == 1, [str(w.message) for w in caught]
    assert str(cache) in str(runtime[0].message)
    monkeypatch.setattr(config, "USE_AUTOTUNE", False)
    assert first == sel(X, W, KW) and second == sel(X, W, KW, need_backward=True)


# The rules of kernels.registry.RULES on the shapes they were derived from (bench suites):
# (x, w, conv kwargs, expected strategy for fwd, grad_input, grad_weight).
def _team(without):
    """3-D and dilated layers: im2col in every pass when the Cython im2col runs the batch in
    its team layout (2+ threads, kernels.strategies._common.im2col_team), else ``without``
    (the direct / FFT rules measured before that layout)."""
    return {True: ("im2col", "im2col", "im2col"), False: without}


RULE_CASES = [
    ((8, 256, 14, 14), (256, 1, 3, 3), dict(padding=1, groups=256),
     ("direct", "direct", "direct")),                       # depthwise
    ((4, 128, 28, 28), (128, 4, 3, 3), dict(padding=1, groups=32),
     ("direct", "direct", "direct")),                       # resnext, 4 channels a group
    ((8, 256, 14, 14), (256, 256, 3, 3), dict(padding=1),
     ("winograd", "winograd", "winograd")),
    ((4, 64, 56, 56), (64, 64, 3, 3), dict(padding=1),
     ("winograd", "winograd", "winograd")),
    ((32, 16, 32, 32), (16, 16, 3, 3), dict(padding=1),
     ("winograd", "winograd", "winograd")),                 # from 16 channels
    ((8, 512, 7, 7), (512, 512, 3, 3), dict(padding=1),
     ("im2col", "im2col", "im2col")),                       # too few tiles for winograd
    ((1, 1, 512, 512), (1, 1, 31, 31), dict(padding="same"), ("fft", "fft", "fft")),
    ((1, 1, 256, 256), (1, 1, 15, 15), dict(padding="same"), ("direct", "fft", "fft")),
    ((4, 16, 8192), (16, 16, 65), dict(padding="same"), ("fft", "fft", "fft")),
    ((64, 20, 24, 24), (40, 20, 5, 5), {}, ("im2col", "fft", "fft")),        # MNIST conv2
    ((4, 64, 27, 27), (192, 64, 5, 5), dict(padding=2),
     ("im2col", "im2col", "im2col")),                       # AlexNet conv2, batch 4
    ((32, 64, 27, 27), (192, 64, 5, 5), dict(padding=2), ("im2col", "fft", "fft")),
    ((64, 1, 28, 28), (20, 1, 5, 5), {}, ("im2col", "im2col", "im2col")),    # MNIST conv1
    ((16, 1, 4096), (16, 1, 9), dict(padding="same"), ("direct", "direct", "im2col")),
    ((1, 8, 128, 128), (8, 8, 11, 11), dict(padding=5), ("fft", "fft", "fft")),
    ((2, 16, 32, 32, 32), (32, 16, 3, 3, 3), dict(stride=2, padding=1),
     ("im2col", "im2col", "im2col")),
    ((2, 16, 32, 32, 32), (16, 16, 3, 3, 3), dict(padding=1), _team(("direct", "direct", "fft"))),
    ((2, 16, 32, 32, 32), (32, 16, 3, 3, 3), dict(padding=1), _team(("direct", "direct", "fft"))),
    ((2, 8, 32, 32, 32), (16, 8, 3, 3, 3), dict(padding=1), _team(("direct", "direct", "im2col"))),
    ((2, 32, 16, 16, 16), (64, 32, 3, 3, 3), dict(padding=1), _team(("direct", "direct", "im2col"))),
    ((4, 64, 56, 56), (64, 64, 3, 3), dict(padding=2, dilation=2),
     _team(("direct", "direct", "fft"))),                   # dilated 3x3
    ((8, 16, 64, 64), (16, 16, 3, 3), dict(padding=2, dilation=2),
     {True: ("im2col", "direct", "im2col"), False: ("direct", "direct", "fft")}),
    ((4, 128, 28, 28), (128, 128, 3, 3), dict(padding=4, dilation=4),
     _team(("direct", "im2col", "im2col"))),                       # 128 channels: im2col's GEMMs
    ((8, 16, 4096), (32, 16, 31), dict(padding="same"), ("fft", "fft", "fft")),
    ((4, 1, 16384), (16, 1, 127), dict(padding="same"), ("fft", "fft", "fft")),
    ((4, 8, 2048), (16, 8, 33), dict(padding="same"), ("im2col", "fft", "fft")),
    ((4, 64, 56, 56), (128, 64, 1, 1), dict(stride=2), ("im2col", "im2col", "im2col")),
    ((8, 64, 1024), (64, 64, 3), dict(padding="same", dilation=8),
     ("im2col", "im2col", "im2col")),
    ((1, 8, 32, 32, 32), (8, 8, 5, 5, 5), dict(padding=2), ("direct", "direct", "fft")),
]


@pytest.mark.skipif(not HAS_COMPILED, reason="no compiled backend: auto means reference")
@pytest.mark.parametrize("x,w,kw,expected", RULE_CASES)
def test_rules_choose_per_pass_as_documented(x, w, kw, expected, rules_only):
    got = tuple(sel(x, w, kw, pass_=p)[0] for p in ("fwd", "grad_input", "grad_weight"))
    if isinstance(expected, dict):
        from kernels.strategies._common import im2col_team
        expected = expected[im2col_team(x[0])]
    assert got == expected


@pytest.mark.skipif(not HAS_COMPILED, reason="no compiled backend: auto means reference")
def test_3d_and_dilated_rules_without_the_team_layout(rules_only, monkeypatch):
    from kernels import config
    monkeypatch.setattr(config, "IM2COL_TEAM", False)
    got = tuple(sel((2, 16, 32, 32, 32), (32, 16, 3, 3, 3), dict(padding=1), pass_=p)[0]
                for p in ("fwd", "grad_input", "grad_weight"))
    assert got == ("direct", "direct", "fft")


def test_select_rejects_an_unknown_pass():
    with pytest.raises(ValueError, match="pass_ must be"):
        kernels.select((1, 1, 8), (1, 1, 3), pass_="backward")
