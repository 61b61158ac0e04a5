"""The strategy x backend table, supports() checks, select() and the autotune cache.

A strategy is any object (a module in kernels/strategies/, or one registered from outside
with :func:`register_strategy`) with one face, the same for every strategy::

    NAME                                  its name ("direct", "fft", ...)
    BACKENDS                              the backend columns it can run on
    NEEDS                                 backend functions it calls (kernels/backends.py):
                                          a backend lacking one loses this strategy only
    supports(params, x_shape, w_shape)    None, or the reason it cannot serve this configuration
    prepare(w, params, x_shape, backend, pass_)      the weight's transform for one pass, or
                                          None (FFT spectra, Winograd's G g G^T): the caller
                                          may keep it while the weight stays the same
    forward(x, w, params, backend, prepared=None)               -> y
    grad_input(gy, w, x_shape, params, backend, prepared=None)  -> gx
    grad_weight(gy, x, w_shape, params, backend, prepared=None) -> gw
    workspace_bytes(params, x_shape, w_shape, itemsize)         -> int
    rule(params, x_shape, w_shape, pass_, device)  optional: (priority, reason) when the
                                          rules from bench data pick it, else None

All arrays there are 5-D (N, C, D, H, W), C-contiguous, one float dtype (device arrays on the
"cuda" backend), and ``params`` is the 3-D form of :class:`kernels.params.ConvParams`.  A new
strategy is one module plus one line in ``_STRATEGY_MODULES`` (or one register_strategy call).
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
    "reference": "kernels.strategies.reference",
    "direct": "kernels.strategies.direct",
    "im2col": "kernels.strategies.im2col",
    "fft": "kernels.strategies.fft",
    "winograd": "kernels.strategies.winograd",
}
# The built-in strategies (a strategy registered later is in strategies(), not here).
STRATEGIES = tuple(_STRATEGY_MODULES)
BACKENDS = ("numba", "cython", "cuda")
# Backend columns per device: select(device=...) chooses among these.
DEVICE_BACKENDS = {"cpu": ("numba", "cython"), "cuda": ("cuda",)}
# Backend preference for backend="auto" when no measurement says otherwise: Cython needs no
# compile at first use, and was faster in the geometric mean of every strategy (2 threads, all
# suites, 195 shape x pass cases: time 0.92x numba's for direct, 0.84x im2col, 0.94x fft; 60
# cases, 0.65x winograd).  A strategy may name its own with a PREFERRED_BACKEND attribute.
_BACKEND_ORDER = ("cython", "numba")
_PASSES = ("fwd", "grad_input", "grad_weight")

_mods = {}
_registered = {}      # name -> strategy object registered with register_strategy


def strategy_module(name):
    """The strategy ``name`` (a module or a registered object), or None when it is not part
    of this build."""
    if name in _registered:
        return _registered[name]
    if name not in _mods:
        try:
            _mods[name] = importlib.import_module(_STRATEGY_MODULES[name])
        except KeyError:
            return None
        except ModuleNotFoundError as e:
            if e.name != _STRATEGY_MODULES[name]:
                raise
            _mods[name] = None
    return _mods[name]


def strategies():
    """Every strategy name, built-in first, then those registered with register_strategy."""
    return STRATEGIES + tuple(n for n in _registered if n not in STRATEGIES)


_FACE = ("supports", "prepare", "forward", "grad_input", "grad_weight", "workspace_bytes")


def register_strategy(strategy, *, replace=False):
    """Add a strategy defined outside the package to the registry.

    It is then offered by :func:`available`, selectable by name (``strategy=NAME`` in
    kernels.conv / conv_grad_input / conv_grad_weight / select's rules via its ``rule``) and
    checked by the tests' reference grid like the built-in ones.

    Parameters
    ----------
    strategy : module or object with the face described in this module's docstring
        (NAME, BACKENDS, NEEDS, supports, prepare, forward, grad_input, grad_weight,
        workspace_bytes; ``rule`` optional).
    replace : bool
        Allow replacing a strategy registered earlier under the same name (never a
        built-in one).

    Returns
    -------
    The strategy's name.

    Examples
    --------
    >>> import types, kernels
    >>> from kernels.strategies import direct
    >>> toy = types.SimpleNamespace(**{k: getattr(direct, k) for k in (
    ...     "BACKENDS", "NEEDS", "supports", "prepare", "forward", "grad_input", "grad_weight",
    ...     "workspace_bytes")}, NAME="toy_direct")
    >>> kernels.register_strategy(toy)
    'toy_direct'
    >>> kernels.unregister_strategy("toy_direct")
    """
    op = "register_strategy"
    name = getattr(strategy, "NAME", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"{op}: strategy.NAME must be an identifier string, received {name!r}")
    if name == "auto" or name in STRATEGIES:
        raise ValueError(f"{op}: NAME {name!r} is taken by a built-in strategy; choose "
                         f"another name")
    if name in _registered and not replace:
        raise ValueError(f"{op}: a strategy named {name!r} is already registered (pass "
                         f"replace=True to replace it)")
    missing = [f for f in _FACE if not callable(getattr(strategy, f, None))]
    if missing:
        raise TypeError(f"{op}: strategy {name!r} lacks the callables {missing}; a strategy "
                        f"has {list(_FACE)}")
    bes = getattr(strategy, "BACKENDS", None)
    if (not isinstance(bes, tuple) or not bes
            or any(b not in BACKENDS + ("numpy",) for b in bes)):
        raise ValueError(f"{op}: strategy {name!r}: BACKENDS must be a non-empty tuple of "
                         f"{BACKENDS + ('numpy',)}, received {bes!r}")
    needs = getattr(strategy, "NEEDS", ())
    if not isinstance(needs, tuple) or not all(isinstance(f, str) for f in needs):
        raise TypeError(f"{op}: strategy {name!r}: NEEDS must be a tuple of backend function "
                        f"names, received {needs!r}")
    rule = getattr(strategy, "rule", None)
    if rule is not None and not callable(rule):
        raise TypeError(f"{op}: strategy {name!r}: rule must be callable or absent, received "
                        f"{rule!r}")
    _registered[name] = strategy
    _memo.clear()
    return name


def unregister_strategy(name):
    """Remove a strategy added with :func:`register_strategy` (built-ins stay)."""
    if name not in _registered:
        raise ValueError(f"unregister_strategy: no registered strategy {name!r}; registered: "
                         f"{sorted(_registered)}")
    del _registered[name]
    _memo.clear()


def backend_ok(name):
    """True when backend ``name`` loads on this machine."""
    if name == "numpy":
        return True
    return backends.load(name) is not None


def usable(strategy, backend):
    """None when ``strategy`` can run on ``backend`` here, else the reason (one line)."""
    mod = strategy_module(strategy)
    if mod is None:
        return f"strategy {strategy!r} is not part of this build"
    if backend not in mod.BACKENDS:
        return f"strategy {strategy!r} runs on {mod.BACKENDS}, not {backend!r}"
    if backend == "numpy":
        return None
    if not backend_ok(backend):
        return backends.error(backend) or f"backend {backend!r} is not available"
    lacking = backends.lacks(backend, getattr(mod, "NEEDS", ()))
    if lacking:
        return (f"backend {backend!r} lacks {', '.join(lacking)}, which strategy "
                f"{strategy!r} needs ({backends.error(backend, lacking[0]) or 'not built'})")
    return None


def backends_of(strategy, device=None):
    """The backends ``strategy`` can run on here (on ``device``'s columns when given)."""
    mod = strategy_module(strategy)
    if mod is None:
        return ()
    cols = DEVICE_BACKENDS[device] if device is not None else mod.BACKENDS
    return tuple(b for b in mod.BACKENDS if (b in cols or (b == "numpy" and device != "cuda"))
                 and usable(strategy, b) is None)


def available(op="conv"):
    """(strategy, backend) pairs usable on this machine for ``op``.

    op: "conv" (strategy, backend) pairs; "pool" and "matmul" give ("pool"/"matmul", backend)
    pairs, matmul including ("matmul", "blas").
    """
    if op == "conv":
        return [(s, b) for s in strategies() for b in backends_of(s)]
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
    """CONVLAB_STRATEGY, checked: a name that is no strategy (built-in or registered) is
    refused, naming the variable."""
    forced = config.FORCE_STRATEGY
    if forced and forced not in strategies():
        raise ValueError(f"CONVLAB_STRATEGY={forced!r} is not a strategy; expected one of "
                         f"{strategies()} (or unset it)")
    return forced


# The Cython kernels index with C ints and call BLAS with int sizes: arrays of more than
# 2**31 - 1 elements go to Numba (int64 indices).
CYTHON_MAX_ELEMENTS = 2**31 - 1


def _volume(shape):
    v = 1
    for s in shape:
        v *= s
    return v


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


def fit_backend(backend, mod, params, x_shape, w_shape, device="cpu"):
    """``backend``, or Numba when ``backend`` cannot take these sizes and Numba can (a
    column of the cpu device; the cuda column has no such limit here)."""
    if backend_limit(backend, params, x_shape, w_shape) is None:
        return backend
    if (device == "cpu" and "numba" in getattr(mod, "BACKENDS", ())
            and usable(getattr(mod, "NAME", None), "numba") is None):
        return "numba"
    return backend


# --------------------------------------------------------------------------------------
# selection
# --------------------------------------------------------------------------------------

# Thresholds of the strategies' rules (kernels.config.RULES, with the measurements they come
# from); the strategies read them from there, so patching this dict patches the rules.
RULES = config.RULES

def rule_choice(params, x_shape, w_shape, pass_="fwd", device="cpu"):
    """(strategy, reason) from the rules for one pass ("fwd", "grad_input", "grad_weight").

    Every strategy usable on ``device`` that has a ``rule`` hook scores the layer; the
    highest priority wins (built-in priorities: depthwise direct 50, winograd 40, fft 30,
    thin-GEMM direct 20, im2col 10).  ``params`` is a ConvParams (any ndim).  The thresholds
    live in :data:`RULES`; the autotune cache (``convlab autotune``), when it holds this
    shape, wins over them.
    """
    p3, x5, w5 = params.as3d(), _lift(x_shape), _lift(w_shape)
    best = None
    for name in strategies():
        mod = strategy_module(name)
        rule = getattr(mod, "rule", None)
        if rule is None or not backends_of(name, device) or mod.supports(p3, x5, w5):
            continue
        hit = rule(params, tuple(x_shape), tuple(w_shape), pass_, device)
        if hit is not None and (best is None or hit[0] > best[0]):
            best = (hit[0], name, hit[1])
    if best is None:
        return "direct", "fallback: direct supports every configuration"
    return best[1], best[2]


def _lift(shape):
    shape = tuple(shape)
    return shape[:2] + (1,) * (5 - len(shape)) + shape[2:]


def select(x_shape, w_shape, *, stride=1, padding=0, dilation=1, groups=1,
           dtype="float32", need_backward=False, pass_="fwd", device="cpu"):
    """Choose (strategy, backend, reason) for a convolution.  Pure; callable from tests.

    Order: CONVLAB_STRATEGY env var > autotune cache (measured) > rules > direct, among the
    backend columns of ``device`` ("cpu": numba, cython; "cuda": cuda).
    """
    from .params import conv_params
    p = conv_params(x_shape, w_shape, stride, padding, dilation, groups, op="select")
    return _select(p, tuple(x_shape), tuple(w_shape), str(_dtype_name(dtype)), need_backward,
                   pass_, _device_name(device))


def _device_name(device):
    if device not in DEVICE_BACKENDS:
        raise ValueError(f"select: device must be one of {tuple(DEVICE_BACKENDS)}, received "
                         f"{device!r}")
    return device


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


def _select(p, x_shape, w_shape, dtype, need_backward, pass_="fwd", device="cpu"):
    """select() on validated arguments, memoised (every conv call with strategy="auto"
    comes here; the memo is dropped whenever the autotune cache or the registry changes)."""
    from .runtime import get_num_threads
    key = (p, x_shape, w_shape, dtype, need_backward, pass_, device, config.FORCE_STRATEGY,
           config.FORCE_BACKEND, config.USE_AUTOTUNE, config.IM2COL_TEAM, get_num_threads())
    hit = _memo.get(key)
    if hit is None:
        hit = _memo[key] = _select_uncached(p, x_shape, w_shape, dtype, need_backward, pass_,
                                            device)
    return hit


def _pick_backend(strategy, device):
    """The backend of ``strategy`` on ``device`` when nothing measured says otherwise."""
    cols = backends_of(strategy, device)
    forced = _forced_backend()
    if forced in cols:
        return forced
    preferred = getattr(strategy_module(strategy), "PREFERRED_BACKEND", None)
    if preferred in cols:
        return preferred
    for b in _BACKEND_ORDER:
        if b in cols:
            return b
    return cols[0] if cols else None


def _select_uncached(p, x_shape, w_shape, dtype, need_backward, pass_, device="cpu"):
    x5, w5, p3 = _lift(x_shape), _lift(w_shape), p.as3d()
    cols = DEVICE_BACKENDS[device]

    def fits(s, b):
        mod = strategy_module(s)
        return (mod is not None and (b in cols or (b == "numpy" and device == "cpu"))
                and usable(s, b) is None
                and mod.supports(p3, x5, w5) is None
                and backend_limit(b, p3, x5, w5) is None)

    forced = _forced_strategy()
    if forced:
        mod = strategy_module(forced)
        b = _pick_backend(forced, device) if mod is not None else None
        if b is not None and mod.supports(p3, x5, w5) is None:
            return (forced, fit_backend(b, mod, p3, x5, w5, device),
                    f"forced by CONVLAB_STRATEGY={forced}")
    if config.USE_AUTOTUNE:
        # the pass's own measurement first, then the whole-step and forward winners
        passes = ((pass_, "all", "fwd") if pass_ in ("grad_input", "grad_weight")
                  else ("all", "fwd") if need_backward else ("fwd",))
        for ps in passes:
            hit = lookup_tuned(x_shape, w_shape, p, dtype, ps, device)
            if hit and fits(hit["strategy"], hit["backend"]):
                return (hit["strategy"], hit["backend"],
                        f"measured: {hit['strategy']}/{hit['backend']} fastest "
                        f"({hit.get('median_ms', float('nan')):.3g} ms, autotune cache, "
                        f"pass {ps})")
    strat, reason = rule_choice(p, x_shape, w_shape, pass_, device)
    b = _pick_backend(strat, device)
    if b is None or strategy_module(strat).supports(p3, x5, w5) is not None:
        strat, reason = "direct", "fallback: direct supports every configuration"
        b = _pick_backend(strat, device)
    if b is None:
        if device != "cpu":
            raise ValueError(f"select: no strategy can run on device {device!r} here: "
                             f"{backends.error('cuda') or 'backend not available'}")
        return "reference", "numpy", "fallback: no compiled backend available"
    if device != "cpu":
        reason += f" (on {device})"
    return strat, fit_backend(b, strategy_module(strat), p3, x5, w5, device), reason


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


def tune_key(x_shape, w_shape, params, dtype, pass_, device="cpu"):
    """The cache key of one measurement (a string); ``device`` "cpu" keeps the keys of
    caches written before the cuda column existed."""
    from .runtime import get_num_threads
    d = {"cpu": cpu_model(), "threads": get_num_threads(), "dtype": _dtype_name(dtype),
         "x": list(x_shape), "w": list(w_shape), "params": params.key(), "pass": pass_}
    if device != "cpu":
        d["device"] = device
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
                    if (v["strategy"] in strategies()
                            and v["backend"] in BACKENDS + ("numpy",)):
                        entries[k] = v
                    else:
                        foreign.append(f"{v['strategy']}/{v['backend']}")
            if foreign:
                _warn_once(f"convlab: ignoring {len(foreign)} autotune cache entries of {path} "
                           f"that name an unknown strategy or backend (first: {foreign[0]}); "
                           f"known: {strategies()} x {BACKENDS}")
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


def lookup_tuned(x_shape, w_shape, params, dtype, pass_, device="cpu"):
    return read_cache().get(tune_key(x_shape, w_shape, params, dtype, pass_, device))


def device_of_backend(backend):
    """"cuda" for the cuda column, else "cpu"."""
    return "cuda" if backend == "cuda" else "cpu"


def record_tuned(x_shape, w_shape, params, dtype, pass_, strategy, backend, median_ms,
                 device=None, **extra):
    """Write one measured winner to the cache (``device`` defaults to the backend's)."""
    entry = {"strategy": strategy, "backend": backend, "median_ms": float(median_ms)}
    entry.update(extra)
    device = device or device_of_backend(backend)
    write_cache({tune_key(x_shape, w_shape, params, dtype, pass_, device): entry})


def cache_digest():
    """A short digest of the cache contents (for reports)."""
    blob = json.dumps(read_cache(), sort_keys=True).encode()
    return hashlib.sha1(blob).hexdigest()[:10]
