"""The strategy x backend table, supports() checks, select() and the autotune cache.

A strategy is a module in kernels/conv/ with the same face::

    NAME, BACKENDS                       its name and the backends it can run on
    supports(params, x_shape, w_shape)   None, or the reason it cannot serve this configuration
    prepare(w, params)                   cached weight transform (or None) reused by forward
    forward(x, w, params, backend, prepared=None)      -> y
    grad_input(gy, w, x_shape, params, backend)        -> gx
    grad_weight(gy, x, w_shape, params, backend)       -> gw

All arrays there are 5-D (N, C, D, H, W), C-contiguous, one float dtype, and ``params`` is the
3-D form of :class:`kernels.params.ConvParams`.  A new strategy is one module plus one line in
``_STRATEGY_MODULES``.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import json
import os
import platform
import warnings

from . import backends, config
from ._io import atomic_write

_STRATEGY_MODULES = {
    "reference": "kernels.conv.reference",
    "direct": "kernels.conv.direct",
    "im2col": "kernels.conv.im2col",
    "fft": "kernels.conv.fft",
    "winograd": "kernels.conv.winograd",
}
STRATEGIES = tuple(_STRATEGY_MODULES)
BACKENDS = ("numba", "cython", "cuda")
# Backend preference for backend="auto" when no measurement says otherwise.
_BACKEND_ORDER = ("cython", "numba")

_mods = {}


def strategy_module(name):
    """The module of strategy ``name`` or None when it is not part of this build."""
    if name not in _mods:
        try:
            _mods[name] = importlib.import_module(_STRATEGY_MODULES[name])
        except ModuleNotFoundError as e:
            if e.name != _STRATEGY_MODULES[name]:
                raise
            _mods[name] = None
    return _mods[name]


def backend_ok(name):
    """True when backend ``name`` loads on this machine."""
    if name == "numpy":
        return True
    return backends.load(name) is not None


def available(op="conv"):
    """(strategy, backend) pairs usable on this machine for ``op``.

    op: "conv" (strategy, backend) pairs; "pool" and "matmul" give ("pool"/"matmul", backend)
    pairs, matmul including ("matmul", "blas").
    """
    if op == "conv":
        out = []
        for s in STRATEGIES:
            mod = strategy_module(s)
            if mod is None:
                continue
            out.extend((s, b) for b in mod.BACKENDS if backend_ok(b))
        return out
    if op in ("pool", "matmul"):
        out = [(op, "blas")] if op == "matmul" else []
        out += [(op, b) for b in ("numba", "cython", "cuda") if backend_ok(b)]
        return out
    raise ValueError(f"available: op must be 'conv', 'pool' or 'matmul', received {op!r}")


def resolve_backend(backend, allowed, op):
    """The concrete backend for a request: "auto" picks the first that loads."""
    if backend == "auto":
        forced = _forced_backend()
        if forced and forced in allowed and backend_ok(forced):
            return forced
        for b in _BACKEND_ORDER + tuple(allowed):
            if b in allowed and backend_ok(b):
                return b
        raise ValueError(f"{op}: no backend available among {allowed}")
    if not isinstance(backend, str):
        raise TypeError(f"{op}: backend must be a string, received {backend!r}")
    if backend not in allowed and backend not in BACKENDS:
        raise ValueError(f"{op}: unknown backend {backend!r}, expected one of "
                         f"{('auto',) + tuple(allowed)}")
    if backend not in allowed:
        raise ValueError(f"{op}: backend {backend!r} cannot serve this op, expected one of "
                         f"{('auto',) + tuple(allowed)}")
    if not backend_ok(backend):
        why = backends.error(backend) or "not available on this machine"
        raise ValueError(f"{op}: backend {backend!r} is not available: {why}")
    return backend


def _forced_backend():
    """CONVLAB_BACKEND, checked: a name that is no backend is refused, naming the variable."""
    forced = config.FORCE_BACKEND
    if forced and forced not in BACKENDS:
        raise ValueError(f"CONVLAB_BACKEND={forced!r} is not a backend; expected one of "
                         f"{BACKENDS} (or unset it)")
    return forced


def _forced_strategy():
    forced = config.FORCE_STRATEGY
    if forced and forced not in STRATEGIES:
        raise ValueError(f"CONVLAB_STRATEGY={forced!r} is not a strategy; expected one of "
                         f"{STRATEGIES} (or unset it)")
    return forced


# The Cython kernels index with C ints and call BLAS with int sizes: arrays of more than
# 2**31 - 1 elements go to Numba (int64 indices).
CYTHON_MAX_ELEMENTS = 2**31 - 1


def backend_limit(backend, params, x_shape, w_shape):
    """None when ``backend`` can take arrays of these (5-D) shapes, else the reason."""
    if backend != "cython":
        return None
    out = params.out_spatial(x_shape[2:], w_shape[2:])
    sizes = {"x": _volume(x_shape), "w": _volume(w_shape),
             "y": x_shape[0] * w_shape[0] * _volume(out),
             "padded x": x_shape[0] * x_shape[1] * _volume(params.padded_spatial(x_shape[2:]))}
    big = {k: v for k, v in sizes.items() if v > CYTHON_MAX_ELEMENTS}
    if big:
        name, n = next(iter(big.items()))
        return (f"backend 'cython' indexes arrays with C ints: {name} would have {n} elements, "
                f"more than 2**31 - 1 (x {tuple(x_shape)}, w {tuple(w_shape)}); use "
                f"backend='numba'")
    return None


def fit_backend(backend, mod, params, x_shape, w_shape):
    """``backend``, or Numba when ``backend`` cannot take these sizes and Numba can."""
    if backend_limit(backend, params, x_shape, w_shape) is None:
        return backend
    if "numba" in mod.BACKENDS and backend_ok("numba"):
        return "numba"
    return backend


# --------------------------------------------------------------------------------------
# selection
# --------------------------------------------------------------------------------------

def _volume(shape):
    v = 1
    for s in shape:
        v *= s
    return v


# Thresholds of rule_choice, from `convlab compare --suite <each> --pass all --threads 2` on
# the 2-core AMD EPYC (AVX2) this project is developed on, on a quiet machine, November 2026
# (README, "How auto chooses").  Each is a crossing point of two strategies' median times;
# where two were within noise, the one with less workspace is kept.
RULES = {
    # depthwise / thin groups (groups > 1): a GEMM of <= 4 rows wastes BLAS; direct won every
    # pass (mobilenet dw 3x3 at 14-112 px, effnet dw 5x5, resnext g32 with 4 channels a group).
    "thin_group_channels": 4,
    # Winograd needs enough channels to amortise its transforms (16 channels, three runs:
    # cifar 32 px forward winograd 2.0-3.0 ms, direct 2.2-2.3, im2col 2.9-3.5; grad-input won
    # or tied direct; grad-weight won 2 of 3 against im2col; digits 8 px won 7 of 9 pass-runs;
    # 32c/28px won forward and grad-weight 1.1x, lost grad-input 1.2x; 64c and up won
    # 1.0-1.8x over im2col) and enough output to fill tiles (7x7 output with 512 channels:
    # im2col 1.6-2.5x faster).
    "winograd_min_channels": 16,
    "winograd_min_out_pixels": 64,
    # FFT when k_volume * sqrt(channels summed over) reaches these scores (2-D and 1-D; 3-D
    # kernels stay off FFT for forward and grad-input: 3x3x3 16c lost 3-5x, 5x5x5 8c lost
    # 1.25x forward and won 1.1x grad-input, not worth its memory).  Forward: 7x7 32c (277)
    # lost to im2col 1.2x, 9x9 16c (324) won 1.2x, 11x11 8c (342) won 1.8x, 21x21 1c won
    # 1.7x.  Grad-input (direct's scatter form is slower): 15x15 1c (225) won 1.1x, 9x9 16c
    # 1.3x, 5x5 40c (158) 1.2-1.3x over im2col.  1-D transforms are cheaper: k65 16c won
    # 1.9x, k31 32c 1.7x.
    "fft_score_fwd": 300.0,
    "fft_score_grad_input": 150.0,
    "fft_score_1d": 160.0,
    # ... on outputs of >= 100 positions an image (MNIST 5x5 20 -> 50 channels on 8x8
    # outputs: im2col 1.8x faster than FFT).
    "fft_min_out_pixels": 100,
    # FFT for grad-weight (stride 1): from a 7x7 kernel (1-D: k >= 15; 3-D 5x5x5 8c won
    # 1.2-1.35x) it beat im2col and direct on every measured shape (1.1-5x); from 5x5 when
    # both channel counts are >= 16 and the output has >= 100 positions (MNIST conv2, 20 -> 40
    # channels at 24 px: 1.1-1.6x over im2col in four runs; at 12 px im2col won 1.5-1.9x;
    # 1 -> 20 channels im2col won 3-4x).
    "fft_grad_weight_min_kvol": 49,
    "fft_grad_weight_min_k_1d": 15,
    "fft_grad_weight_min_kvol_wide": 25,
    "fft_grad_weight_wide_channels": 16,
    # direct beats im2col (stride 1, >= 100 output positions an image; below that im2col's
    # few large copies win, 8x8 digits: 1.5-2x) when the GEMM would be thin: forward with a
    # reduction C_in/groups * k_volume <= 16 or <= 8 output channels (1-channel 15x15 filter:
    # im2col 12x slower); grad-input with C_out/groups * k_volume <= 150 (1-D k9 16 -> 1
    # channels: direct 1.3x faster; k3 64 channels: im2col 1.3x faster) or a kernel of >= 49
    # taps that FFT did not take; 3-D kernels up to 32 channels (volume 3x3x3 16c: direct
    # 1.8x faster forward, 1.2x grad-input; with stride 2 im2col won 1.5x).
    "direct_min_out_pixels": 100,
    "direct_fwd_max_reduction": 16,
    "direct_fwd_max_out_channels": 8,
    "direct_grad_input_max_reduction": 150,
    "direct_grad_input_min_kvol": 49,
    "direct_3d_max_channels": 32,
}

# Backend each strategy runs on when no measurement says otherwise (backend="auto"): Cython
# needs no compile at first use, and was faster in the geometric mean of every strategy
# (2 threads, all suites, 195 shape x pass cases: time 0.92x numba's for direct, 0.84x
# im2col, 0.94x fft; 60 cases, 0.65x winograd).
RULE_BACKEND = {"direct": "cython", "im2col": "cython", "fft": "cython", "winograd": "cython"}


def rule_choice(params, x_shape, w_shape, pass_="fwd"):
    """(strategy, reason) from the rules for one pass ("fwd", "grad_input", "grad_weight").

    ``params`` is a ConvParams (any ndim).  The thresholds live in :data:`RULES`, with the
    measurements they come from; the autotune cache (``convlab autotune``), when it holds
    this shape, wins over them.
    """
    r = RULES
    cin_g, cout = w_shape[1], w_shape[0]
    cout_g = cout // params.groups
    k = tuple(w_shape[2:])
    kvol = _volume(k)
    nd = sum(1 for kk in k if kk > 1) if len(k) == 3 else len(k)   # 3-D with a flat axis: 2-D
    stride1 = all(s == 1 for s in params.stride)
    out_px = _volume(params.out_spatial(x_shape[2:], k))
    kname = "x".join(map(str, k))

    if (params.groups > 1 and cin_g <= r["thin_group_channels"]
            and cout_g <= r["thin_group_channels"]):
        return "direct", "rule: depthwise / thin-group layer -> direct (GEMM too thin)"

    wino = strategy_module("winograd")
    if (wino is not None and wino.supports(params.as3d(), _lift(x_shape), _lift(w_shape)) is None
            and min(cin_g, cout_g) >= r["winograd_min_channels"]
            and out_px >= r["winograd_min_out_pixels"]):
        return "winograd", "rule: 3x3 stride-1 layer with >= 16 channels -> winograd"

    if stride1 and out_px >= r["fft_min_out_pixels"]:
        if pass_ == "grad_weight":
            wide = (nd < 3 and min(cin_g, cout_g) >= r["fft_grad_weight_wide_channels"]
                    and out_px >= r["direct_min_out_pixels"]
                    and kvol >= r["fft_grad_weight_min_kvol_wide"])
            if wide or (k[0] >= r["fft_grad_weight_min_k_1d"] if len(k) == 1
                        else kvol >= r["fft_grad_weight_min_kvol"]):
                return "fft", f"rule: grad-weight of a large kernel ({kname}) -> fft"
        elif nd < 3:
            chans = cin_g if pass_ == "fwd" else cout_g
            score = kvol * min(chans, 64) ** 0.5
            limit = (r["fft_score_1d"] if len(k) == 1 else
                     r["fft_score_fwd"] if pass_ == "fwd" else r["fft_score_grad_input"])
            if score >= limit:
                return "fft", f"rule: large kernel ({kname}) x channels -> fft"

    if pass_ != "grad_weight" and stride1:
        if nd == 3 and cin_g <= r["direct_3d_max_channels"]:
            return "direct", "rule: 3-D kernel with <= 32 channels -> direct"
        if out_px >= r["direct_min_out_pixels"]:
            if pass_ == "fwd" and (cin_g * kvol <= r["direct_fwd_max_reduction"]
                                   or cout_g <= r["direct_fwd_max_out_channels"]):
                return "direct", "rule: thin GEMM (few channels x small kernel) -> direct"
            if pass_ == "grad_input" and (
                    cout_g * kvol <= r["direct_grad_input_max_reduction"]
                    or kvol >= r["direct_grad_input_min_kvol"]):
                return "direct", "rule: thin GEMM or long kernel -> direct"
    return "im2col", "rule: dense layer -> im2col+GEMM (BLAS)"


def _lift(shape):
    shape = tuple(shape)
    return shape[:2] + (1,) * (5 - len(shape)) + shape[2:]


def select(x_shape, w_shape, *, stride=1, padding=0, dilation=1, groups=1,
           dtype="float32", need_backward=False, pass_="fwd"):
    """Choose (strategy, backend, reason) for a convolution.  Pure; callable from tests.

    Order: CONVLAB_STRATEGY env var > autotune cache (measured) > rules > direct.
    """
    from .params import conv_params
    p = conv_params(x_shape, w_shape, stride, padding, dilation, groups, op="select")
    return _select(p, tuple(x_shape), tuple(w_shape), str(_dtype_name(dtype)), need_backward,
                   pass_)


def _dtype_name(dtype):
    import numpy as np
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(f"select: dtype must be 'float32' or 'float64', received {dtype!r}")
    return name


_memo = {}


def _select(p, x_shape, w_shape, dtype, need_backward, pass_="fwd"):
    """select() on validated arguments, memoised (every conv call with strategy="auto"
    comes here; the memo is dropped whenever the autotune cache changes)."""
    from .threads import get_num_threads
    key = (p, x_shape, w_shape, dtype, need_backward, pass_, config.FORCE_STRATEGY,
           config.USE_AUTOTUNE, get_num_threads())
    hit = _memo.get(key)
    if hit is None:
        hit = _memo[key] = _select_uncached(p, x_shape, w_shape, dtype, need_backward, pass_)
    return hit


def _select_uncached(p, x_shape, w_shape, dtype, need_backward, pass_):
    x5, w5, p3 = _lift(x_shape), _lift(w_shape), p.as3d()

    def usable(s, b):
        mod = strategy_module(s) if s in _STRATEGY_MODULES else None
        return (mod is not None and b in mod.BACKENDS and backend_ok(b)
                and mod.supports(p3, x5, w5) is None
                and backend_limit(b, p3, x5, w5) is None)

    forced = _forced_strategy()
    if forced:
        mod = strategy_module(forced)
        if mod is not None and mod.supports(p3, x5, w5) is None:
            b = resolve_backend("auto", mod.BACKENDS, "select")
            return forced, fit_backend(b, mod, p3, x5, w5), \
                f"forced by CONVLAB_STRATEGY={forced}"
    if config.USE_AUTOTUNE:
        # the pass's own measurement first, then the whole-step and forward winners
        passes = ((pass_, "all", "fwd") if pass_ in ("grad_input", "grad_weight")
                  else ("all", "fwd") if need_backward else ("fwd",))
        for ps in passes:
            hit = lookup_tuned(x_shape, w_shape, p, dtype, ps)
            if hit and usable(hit["strategy"], hit["backend"]):
                return (hit["strategy"], hit["backend"],
                        f"measured: {hit['strategy']}/{hit['backend']} fastest "
                        f"({hit.get('median_ms', float('nan')):.3g} ms, autotune cache, "
                        f"pass {ps})")
    strat, reason = rule_choice(p, x_shape, w_shape, pass_)
    mod = strategy_module(strat)
    if mod is None or mod.supports(p3, x5, w5) is not None:
        strat, reason = "direct", "fallback: direct supports every configuration"
        mod = strategy_module("direct")
    preferred = RULE_BACKEND.get(strat)
    if preferred in mod.BACKENDS and backend_ok(preferred) and not _forced_backend():
        return strat, fit_backend(preferred, mod, p3, x5, w5), reason
    try:
        b = resolve_backend("auto", mod.BACKENDS, "select")
    except ValueError:
        return "reference", "numpy", "fallback: no compiled backend available"
    return strat, fit_backend(b, mod, p3, x5, w5), reason


# --------------------------------------------------------------------------------------
# autotune cache: JSON in the user's cache dir, keyed by CPU model, threads, dtype, shapes,
# parameters and pass.  A corrupt or foreign file is ignored with one warning.
# --------------------------------------------------------------------------------------

CACHE_FORMAT = "convlab-autotune"
CACHE_VERSION = 1
_cache = None
_warned = False


@functools.lru_cache(maxsize=None)
def cpu_model():
    """The CPU's model name (part of every autotune key)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_path():
    return os.path.join(config.cache_dir(), "autotune.json")


def tune_key(x_shape, w_shape, params, dtype, pass_):
    """The cache key of one measurement (a string)."""
    from .threads import get_num_threads
    d = {"cpu": cpu_model(), "threads": get_num_threads(), "dtype": _dtype_name(dtype),
         "x": list(x_shape), "w": list(w_shape), "params": params.key(), "pass": pass_}
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def _warn_once(msg):
    global _warned
    if not _warned:
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        _warned = True


def read_cache():
    """The cache's entries (dict key -> {"strategy", "backend", "median_ms", ...})."""
    global _cache
    if _cache is not None:
        return _cache
    path = cache_path()
    entries = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            if (not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT
                    or doc.get("version") != CACHE_VERSION
                    or not isinstance(doc.get("entries"), dict)):
                raise ValueError("not a convlab autotune cache of version "
                                 f"{CACHE_VERSION}")
            foreign = []
            for k, v in doc["entries"].items():
                if (isinstance(v, dict) and isinstance(v.get("strategy"), str)
                        and isinstance(v.get("backend"), str)):
                    if v["strategy"] in STRATEGIES and v["backend"] in BACKENDS + ("numpy",):
                        entries[k] = v
                    else:
                        foreign.append(f"{v['strategy']}/{v['backend']}")
            if foreign:
                _warn_once(f"convlab: ignoring {len(foreign)} autotune cache entries of {path} "
                           f"that name an unknown strategy or backend (first: {foreign[0]}); "
                           f"known: {STRATEGIES} x {BACKENDS}")
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:
            _warn_once(f"convlab: ignoring autotune cache {path}: {e}")
            entries = {}
    _cache = entries
    return _cache


@contextlib.contextmanager
def _cache_lock(path):
    """An exclusive lock on ``path`` + ".lock" (fcntl; no lock where fcntl is missing), so
    concurrent writers (two `convlab autotune` runs) merge instead of overwriting."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path + ".lock", "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_cache(entries):
    """Merge ``entries`` into the cache file, atomically (temp file + os.replace), under a
    lock: what other processes wrote since this one read the file is re-read and kept."""
    global _cache
    path = cache_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with _cache_lock(path):
        _cache = None                    # the file as it is now, other writers included
        merged = dict(read_cache())
        merged.update(entries)
        with atomic_write(path, "w", encoding="utf-8") as f:
            json.dump({"format": CACHE_FORMAT, "version": CACHE_VERSION, "entries": merged},
                      f, indent=1, sort_keys=True)
    _cache = merged
    _memo.clear()


def clear_cache():
    """Delete the cache file (if any)."""
    global _cache, _warned
    _cache, _warned = None, False
    _memo.clear()
    try:
        os.unlink(cache_path())
    except FileNotFoundError:
        pass


def reload_cache():
    """Forget the in-memory copy (after another process wrote the file)."""
    global _cache, _warned
    _cache, _warned = None, False
    _memo.clear()


def lookup_tuned(x_shape, w_shape, params, dtype, pass_):
    return read_cache().get(tune_key(x_shape, w_shape, params, dtype, pass_))


def record_tuned(x_shape, w_shape, params, dtype, pass_, strategy, backend, median_ms,
                 **extra):
    """Write one measured winner to the cache."""
    entry = {"strategy": strategy, "backend": backend, "median_ms": float(median_ms)}
    entry.update(extra)
    write_cache({tune_key(x_shape, w_shape, params, dtype, pass_): entry})


def cache_digest():
    """A short digest of the cache contents (for reports)."""
    blob = json.dumps(read_cache(), sort_keys=True).encode()
    return hashlib.sha1(blob).hexdigest()[:10]
