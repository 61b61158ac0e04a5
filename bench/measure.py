"""Measuring convolution strategies: timings, FLOP rates, errors, workspace, baselines.

Every number the CLI prints comes from here (the pytest-benchmark files in bench/ time with
pytest-benchmark's own statistics and use only the helpers for FLOPs, peak and error):

- time: :func:`time_call` -- ``time.perf_counter`` over ``warmup`` calls, then ``repeat``
  samples; the median per call.  Fast calls are looped so one sample lasts >= 1 ms.
- FLOPs: :func:`kernels.conv_flops` (2 x multiply-adds of the direct algorithm); grad-input
  and grad-weight count the same as forward, so GFLOP/s compare across passes and strategies
  (FFT and Winograd do fewer real operations: their "GFLOP/s" is an effective rate).
- error: max|y - ref| / max|ref| against the float64 reference strategy, the oracle, and
  the same per region (:func:`region_rel_err`), which shows quiet regions lost beside loud ones.
- peak: :func:`gemm_peak`, the median GFLOP/s of a float32 ``np.dot`` at a few large square
  sizes, measured once per process and thread count.
- baselines: PyTorch CPU convolution (``torch.nn.functional.convNd`` under ``no_grad`` and
  ``aten.convolution_backward``) and ``scipy.signal.fftconvolve`` (groups 1, stride 1,
  dilation 1), each with convlab's thread count, when installed.

    >>> from bench import measure, suites
    >>> rows, skipped = measure.measure_cases(suites.get_suite("quick")[:1], ("fwd",),
    ...                                       [("direct", "numba")], repeat=3)  # doctest: +SKIP
    >>> rows[0]["median_ms"], rows[0]["gflops"]                                # doctest: +SKIP
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
import statistics
import time

import numpy as np

import kernels
from kernels import backends, registry

__all__ = ["PASSES", "PASS_CHOICES", "BASELINES", "time_call", "gemm_peak", "make_inputs",
           "pass_fn", "reference", "max_rel_err", "region_rel_err", "baseline_missing",
           "baseline_fn",
           "Unsupported", "measure_cases", "autotune", "machine_info", "strategy_pairs",
           "busy_warning", "unsupported_reason", "as_numpy", "warm_numba", "first_calls",
           "compile_split", "CompileHelper", "COMPILE_SECONDS"]

PASSES = ("fwd", "grad_input", "grad_weight")
PASS_CHOICES = {"fwd": ("fwd",), "bwd": ("grad_input", "grad_weight"), "all": PASSES}
BASELINES = ("torch", "scipy")
# a result further than this from the reference is flagged (ok: false), never a winner and
# never written to the autotune cache
TOLERANCE = {"float32": 1e-3, "float64": 1e-9}


class Unsupported(Exception):
    """A strategy or baseline cannot serve a case; the message is the one-line reason."""


# --------------------------------------------------------------------------------------
# timing and peak
# --------------------------------------------------------------------------------------

def time_call(fn, *, repeat=5, warmup=1, min_sample_s=1e-3, max_number=1000):
    """Median seconds per call of ``fn()``.

    ``warmup`` untimed calls (the first compiles Numba kernels), then ``repeat`` samples;
    a call faster than ``min_sample_s`` is repeated ``number`` times per sample.

    Returns
    -------
    dict with ``median_s``, ``min_s``, ``times`` (per-call seconds of each sample) and
    ``number`` (calls per sample).

    >>> time_call(lambda: sum(range(100)), repeat=3)["median_s"] < 1e-3
    True
    """
    if repeat < 1 or warmup < 0:
        raise ValueError(f"time_call: repeat must be >= 1 and warmup >= 0, received "
                         f"repeat={repeat}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    number = max(1, min(max_number, math.ceil(min_sample_s / max(first, 1e-9))))
    times = [first] if number == 1 else []
    while len(times) < repeat:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return {"median_s": statistics.median(times), "min_s": min(times), "times": times,
            "number": number}


_peaks = {}


def gemm_peak(sizes=(1024, 1536, 2048)):
    """The machine's measured float32 GEMM rate in GFLOP/s (cached per thread count).

    For each square size n: one warm-up ``np.dot``, then the best of two timed ones
    (2 n^3 FLOPs each); the median over sizes is returned.  BLAS runs with convlab's thread
    count (:func:`kernels.set_num_threads` limits it through threadpoolctl).
    """
    key = (tuple(sizes), kernels.get_num_threads())
    if key not in _peaks:
        from threadpoolctl import threadpool_limits
        rates = []
        gen = np.random.default_rng(0)
        with threadpool_limits(limits=kernels.get_num_threads(), user_api="blas"):
            for n in sizes:
                # uniform, not normal: a third of the time to draw, the same GEMM time
                a = gen.random((n, n), dtype=np.float32)
                b = gen.random((n, n), dtype=np.float32)
                np.dot(a, b)
                best = min(_timed(np.dot, a, b) for _ in range(2))
                rates.append(2.0 * n ** 3 / best / 1e9)
        _peaks[key] = statistics.median(rates)
    return _peaks[key]


def _timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------
# one pass of one strategy
# --------------------------------------------------------------------------------------

def strategy_pairs(strategies=None, backends=None):
    """The (strategy, backend) pairs offered here, filtered by the requested names.

    ``strategies=None`` means every strategy except the reference (the oracle is measured
    only when named); ``backends=None`` means every backend.
    """
    pairs = kernels.available("conv")
    if strategies is None:
        pairs = [p for p in pairs if p[0] != "reference"]
    else:
        pairs = [p for p in pairs if p[0] in strategies]
    if backends is not None:
        pairs = [p for p in pairs if p[1] in backends or p[0] == "reference"]
    return pairs


def make_inputs(case, dtype="float32", seed=0):
    """Random x, w and an output gradient gy for ``case`` (standard normal, fixed seed)."""
    gen = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    return {"x": gen.standard_normal(case.x_shape).astype(dt),
            "w": gen.standard_normal(case.w_shape).astype(dt),
            "gy": gen.standard_normal(case.out_shape).astype(dt)}


def pass_fn(case, pass_, strategy, backend, inputs):
    """A no-argument callable running one pass of convlab's (strategy, backend) on inputs."""
    kw = dict(case.conv_kwargs(), strategy=strategy, backend=backend)
    x, w, gy = inputs["x"], inputs["w"], inputs["gy"]
    if backend == "cuda":
        return _on_device(case, pass_, kw, x, w, gy)
    if pass_ == "fwd":
        return lambda: kernels.conv(x, w, **kw)
    if pass_ == "grad_input":
        return lambda: kernels.conv_grad_input(gy, w, case.x_shape, **kw)
    if pass_ == "grad_weight":
        return lambda: kernels.conv_grad_weight(gy, x, case.w_shape, **kw)
    raise ValueError(f"pass must be one of {PASSES}, received {pass_!r}")


def _on_device(case, pass_, kw, x, w, gy):
    """The pass on device-resident inputs (uploaded once), synchronised after each call, so
    the cuda column's time is the kernels' and not the transfers'."""
    from numba import cuda
    x, w, gy = cuda.to_device(x), cuda.to_device(w), cuda.to_device(gy)
    call = {"fwd": lambda: kernels.conv(x, w, **kw),
            "grad_input": lambda: kernels.conv_grad_input(gy, w, case.x_shape, **kw),
            "grad_weight": lambda: kernels.conv_grad_weight(gy, x, case.w_shape, **kw)}
    if pass_ not in call:
        raise ValueError(f"pass must be one of {PASSES}, received {pass_!r}")

    def run():
        out = call[pass_]()
        cuda.synchronize()
        return out
    return run


def reference(case, pass_, inputs):
    """The float64 reference result of one pass (the oracle every error is measured from)."""
    inputs64 = {k: v.astype(np.float64) for k, v in inputs.items()}
    return pass_fn(case, pass_, "reference", "numpy", inputs64)()


def max_rel_err(y, ref):
    """max|y - ref| / max|ref| (max|y - ref| when ref is all zeros).

    >>> round(max_rel_err(np.array([1.0, 2.1]), np.array([1.0, 2.0])), 6)
    0.05
    """
    y = np.asarray(y, dtype=np.float64)
    if y.shape != ref.shape:
        raise ValueError(f"max_rel_err: result shape {y.shape} differs from the reference "
                         f"shape {ref.shape}")
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    diff = float(np.max(np.abs(y - ref))) if ref.size else 0.0
    return diff / scale if scale > 0 else diff


def region_rel_err(y, ref, regions=8):
    """The worst region's max|y - ref| / max|ref|: each image and channel is cut into up to
    ``regions`` blocks per spatial dim, and the error of each block is relative to its own
    reference magnitude (blocks whose reference is all zeros are left out).

    :func:`max_rel_err` is relative to the largest output: it hides a strategy that loses
    quiet regions beside loud ones (FFT in float32 on data spanning 1e-4 to 1e4 had a
    norm-wise error of 2e-7 and relative errors of 7-14 in its quiet half).

    >>> ref = np.array([[[1e4, 1e4, 1e-4, 1e-4]]])
    >>> round(region_rel_err(ref + [[[0, 0, 1e-4, 0]]], ref, regions=2), 6)
    1.0
    """
    y = np.asarray(y, dtype=np.float64)
    if y.shape != ref.shape:
        raise ValueError(f"region_rel_err: result shape {y.shape} differs from the reference "
                         f"shape {ref.shape}")
    if ref.size == 0:
        return 0.0
    diff, mag = np.abs(y - ref), np.abs(ref)
    for ax in range(2, ref.ndim):
        n = ref.shape[ax]
        starts = np.arange(0, n, -(-n // regions))
        diff = np.maximum.reduceat(diff, starts, axis=ax)
        mag = np.maximum.reduceat(mag, starts, axis=ax)
    keep = mag > 0
    if not keep.any():
        return float(diff.max())
    return float((diff[keep] / mag[keep]).max())


# --------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------

def baseline_missing(name):
    """None when baseline ``name`` ("torch" or "scipy") can run here, else the reason."""
    if name not in BASELINES:
        return f"unknown baseline {name!r}; valid baselines: {', '.join(BASELINES)}"
    # find_spec, not import: importing torch takes seconds
    if importlib.util.find_spec(name) is None:
        return f"{name} is not installed"
    return None


def _pairs_symmetric(padding):
    return all(lo == hi for lo, hi in padding)


def _torch_fn(case, pass_, inputs):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(kernels.get_num_threads())
    p = case.params()
    nd = case.ndim
    conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    x = torch.from_numpy(inputs["x"])
    w = torch.from_numpy(inputs["w"])
    gy = torch.from_numpy(inputs["gy"])
    crop = None
    if _pairs_symmetric(p.padding):
        pad = [lo for lo, _ in p.padding]
    else:
        # torch pads symmetrically only: pad x once, outside the timed call
        flat = [v for lo_hi in reversed(p.padding) for v in lo_hi]
        x = F.pad(x, flat)
        pad = [0] * nd
        crop = (slice(None), slice(None)) + tuple(
            slice(lo, lo + n) for (lo, _), n in zip(p.padding, case.x_shape[2:]))
    stride, dil, groups = list(p.stride), list(p.dilation), p.groups

    if pass_ == "fwd":
        def run():
            with torch.no_grad():
                return conv(x, w, None, stride, pad, dil, groups)
        return run
    bwd = torch.ops.aten.convolution_backward
    if pass_ == "grad_input":
        def run():
            gx = bwd(gy, x, w, None, stride, pad, dil, False, [0] * nd, groups,
                     [True, False, False])[0]
            return gx if crop is None else gx[crop]
        return run

    def run():
        return bwd(gy, x, w, None, stride, pad, dil, False, [0] * nd, groups,
                   [False, True, False])[1]
    return run


def _scipy_fn(case, pass_, inputs):
    from scipy.signal import fftconvolve
    p = case.params()
    if p.groups != 1 or any(s != 1 for s in p.stride) or any(d != 1 for d in p.dilation):
        raise Unsupported("scipy.signal.fftconvolve: needs groups=1, stride 1, dilation 1")
    nd = case.ndim
    axes = tuple(range(2, 2 + nd))
    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * nd
    x, w, gy = inputs["x"], inputs["w"], inputs["gy"]
    # padding done once, outside the timed call (as for the torch baseline)
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(p.padding))
    c_out, c_in = case.w_shape[:2]

    if pass_ == "fwd":
        wf = np.ascontiguousarray(w[flip])

        def run():
            # one output channel at a time: correlate every input channel, sum over them
            y = np.empty(case.out_shape, dtype=x.dtype)
            for co in range(c_out):
                y[:, co] = fftconvolve(xp, wf[co:co + 1], mode="valid", axes=axes).sum(axis=1)
            return y
        return run
    if pass_ == "grad_input":
        crop = (slice(None), slice(None)) + tuple(
            slice(lo, lo + n) for (lo, _), n in zip(p.padding, case.x_shape[2:]))

        def run():
            # full convolution of gy with the (unflipped) kernel, summed over C_out
            gxp = np.empty(xp.shape, dtype=x.dtype)
            for ci in range(c_in):
                gxp[:, ci] = fftconvolve(gy, w[None, :, ci], mode="full", axes=axes).sum(axis=1)
            return gxp[crop]
        return run
    gyf = np.ascontiguousarray(gy[flip])

    def run():
        # correlate x with each output channel's gradient, summed over the batch
        gw = np.empty(case.w_shape, dtype=x.dtype)
        for co in range(c_out):
            gw[co] = fftconvolve(xp, gyf[:, co:co + 1], mode="valid", axes=axes).sum(axis=0)
        return gw
    return run


def baseline_fn(name, case, pass_, inputs):
    """A no-argument callable running baseline ``name`` on one pass of ``case``.

    Raises :class:`Unsupported` with a reason when the baseline cannot serve the case or is
    not installed.  Results may be torch tensors; :func:`as_numpy` converts them.
    """
    why = baseline_missing(name)
    if why:
        raise Unsupported(why)
    if pass_ not in PASSES:
        raise ValueError(f"pass must be one of {PASSES}, received {pass_!r}")
    return (_torch_fn if name == "torch" else _scipy_fn)(case, pass_, inputs)


def as_numpy(result):
    """A baseline's or strategy's result as a numpy array."""
    if isinstance(result, np.ndarray):
        return result
    if hasattr(result, "copy_to_host"):           # a numba device array (cuda column)
        return result.copy_to_host()
    return result.detach().numpy() if hasattr(result, "detach") else np.asarray(result)


# --------------------------------------------------------------------------------------
# measuring cases
# --------------------------------------------------------------------------------------

def unsupported_reason(strategy, case):
    """The strategy's own one-line reason when it cannot serve ``case``, else None."""
    mod = registry.strategy_module(strategy)

    def lift(shape):
        return tuple(shape[:2]) + (1,) * (5 - len(shape)) + tuple(shape[2:])
    return mod.supports(case.params().as3d(), lift(case.x_shape), lift(case.w_shape))


def _prepare(kind, strategy, backend, case, pass_, inputs, dtype):
    """(callable, its first result, workspace bytes) of one measurement.

    Raises Unsupported with the reason when the strategy or baseline cannot serve the case,
    or when its first call fails (a broken build must not stop the other measurements).
    """
    if kind == "baseline":
        fn = baseline_fn(strategy, case, pass_, inputs)
        workspace = None
    elif kind == "auto":
        fn = pass_fn(case, pass_, "auto", "auto", inputs)
        picked = auto_choice(case, pass_, dtype)[0]
        workspace = kernels.workspace_bytes(picked, case.x_shape, case.w_shape, dtype=dtype,
                                            **case.conv_kwargs())
    else:
        why = unsupported_reason(strategy, case)
        if why:
            raise Unsupported(why)
        fn = pass_fn(case, pass_, strategy, backend, inputs)
        workspace = kernels.workspace_bytes(strategy, case.x_shape, case.w_shape,
                                            dtype=dtype, **case.conv_kwargs())
    try:
        out = fn()  # also the first warm-up call (Numba compiles or loads its cache here)
    except Exception as e:
        raise Unsupported(f"failed: {type(e).__name__}: {' '.join(str(e).split())}") \
            from None
    return fn, out, workspace


def auto_choice(case, pass_, dtype):
    """(strategy, backend, reason) that strategy="auto" runs for one pass of ``case``."""
    return kernels.select(case.x_shape, case.w_shape, dtype=dtype,
                          need_backward=pass_ != "fwd", pass_=pass_, **case.conv_kwargs())


def _row(case, pass_, strategy, backend, kind, timing, err, workspace, peak, dtype,
         region_err=None):
    ms = timing["median_s"] * 1e3
    gflops = case.flops / timing["median_s"] / 1e9 if timing["median_s"] > 0 else float("inf")
    return {
        "name": case.name, "shape": case.spec(), "x_shape": list(case.x_shape),
        "w_shape": list(case.w_shape), "pass": pass_, "strategy": strategy,
        "backend": backend, "kind": kind, "dtype": np.dtype(dtype).name,
        "threads": kernels.get_num_threads(), "median_ms": ms,
        "min_ms": timing["min_s"] * 1e3, "samples": len(timing["times"]),
        "flops": case.flops, "gflops": gflops, "pct_peak": 100.0 * gflops / peak if peak else None,
        "max_rel_err": err, "region_rel_err": region_err, "workspace_bytes": workspace,
        "ok": err is None or err <= TOLERANCE[np.dtype(dtype).name],
        "speedup_vs_direct": None, "winner": False,
    }


def _finish_group(rows, baselines):
    """Fill speedups and the winner flag of the rows of one (case, pass)."""
    def median(pred):
        ms = [r["median_ms"] for r in rows if pred(r)]
        return min(ms) if ms else None

    best_direct = median(lambda r: r["strategy"] == "direct")
    base_ms = {b: median(lambda r, b=b: r["kind"] == "baseline" and r["strategy"] == b)
               for b in baselines}
    for r in rows:
        same = median(lambda q, r=r: q["strategy"] == "direct" and q["backend"] == r["backend"])
        ref = same if (same is not None and r["kind"] == "convlab") else best_direct
        r["speedup_vs_direct"] = ref / r["median_ms"] if ref else None
        for b, ms in base_ms.items():
            r[f"speedup_vs_{b}"] = ms / r["median_ms"] if ms else None
    contenders = [r for r in rows if r["kind"] == "convlab" and r["strategy"] != "reference"
                  and r["ok"]]
    if contenders:
        min(contenders, key=lambda r: r["median_ms"])["winner"] = True


# --------------------------------------------------------------------------------------
# compiling the Numba kernels on two cores
# --------------------------------------------------------------------------------------

# CPU seconds of the cold float32 compile of each strategy's Numba kernels on the quick suite
# (2-core EPYC, Numba 0.68; tests/test_numba_compile.py keeps each kernel to one signature
# per dtype): the split between this process and the helper balances these.
COMPILE_SECONDS = {"direct": 12.0, "winograd": 8.5, "im2col": 4.0, "fft": 1.0}


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def compile_split(strategies):
    """(mine, helper's): the Numba strategies split in two groups of about equal cold compile
    time (:data:`COMPILE_SECONDS`), heaviest first; this process also imports the baselines,
    so ties go to the helper.

    >>> compile_split(["direct", "im2col", "fft", "winograd"])
    (['winograd', 'im2col'], ['direct', 'fft'])
    """
    mine, theirs, t_mine, t_theirs = [], [], 0.0, 0.0
    for s in sorted(dict.fromkeys(strategies), key=lambda s: -COMPILE_SECONDS.get(s, 1.0)):
        if t_mine < t_theirs:
            mine.append(s)
            t_mine += COMPILE_SECONDS.get(s, 1.0)
        else:
            theirs.append(s)
            t_theirs += COMPILE_SECONDS.get(s, 1.0)
    return mine, theirs


def first_calls(cases, passes, strategies, dtype="float32"):
    """Run the first call of every (case, pass) of each strategy on the Numba backend: what
    :func:`measure_cases` runs first, so every Numba kernel it needs is compiled (or loaded
    from Numba's cache) with the very argument types of the measurement.  Cases a strategy
    does not serve, and failing calls, are passed over (the measurement reports them).
    Returns the number of calls made."""
    done = 0
    for case in cases:
        inputs = make_inputs(case, dtype)
        for strategy in strategies:
            if unsupported_reason(strategy, case):
                continue
            for pass_ in passes:
                try:
                    pass_fn(case, pass_, strategy, "numba", inputs)()
                    done += 1
                except Exception:  # reported by the measurement itself
                    pass
    return done


def _first_calls_child():
    """Entry point of the helper process: (cases, passes, strategies, dtype) pickled on
    stdin; compiles into Numba's on-disk cache, which the parent then loads."""
    import pickle
    import sys
    cases, passes, strategies, dtype = pickle.load(sys.stdin.buffer)
    first_calls(cases, passes, strategies, dtype)


class CompileHelper:
    """A second process that compiles some strategies' Numba kernels into Numba's on-disk
    cache (``cache=True``) while this process compiles the others: a cold run's compile
    takes the slower half's time instead of the sum.  Nothing is timed while it runs, so
    no measurement shares the cores with a compile; the parent loads the helper's kernels
    from the cache, the same machine code it would have compiled itself.  When the helper
    fails (or the cache cannot be written) the parent compiles what it needs on first use,
    as without a helper.

    ``CompileHelper.start(...)`` returns None when there is nothing to split (fewer than two
    usable cores, fewer than two Numba strategies, or CONVLAB_COMPILE_HELPER=0).
    """

    def __init__(self, proc, strategies):
        self.proc, self.strategies = proc, strategies

    @classmethod
    def start(cls, cases, passes, strategies, dtype):
        import pickle
        import subprocess
        import sys
        if os.environ.get("CONVLAB_COMPILE_HELPER", "1") == "0" or _usable_cores() < 2:
            return None
        if os.environ.get("NUMBA_DISABLE_JIT") == "1" or len(set(strategies)) < 2:
            return None
        mine, theirs = compile_split(strategies)
        root = os.path.dirname(os.path.dirname(os.path.abspath(kernels.__file__)))
        env = dict(os.environ, CONVLAB_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(
                       [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                 if p]))
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", "from bench.measure import _first_calls_child; "
                 "_first_calls_child()"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=env, cwd=root)
            proc.stdin.write(pickle.dumps((list(cases), tuple(passes), theirs, dtype)))
            proc.stdin.close()
        except OSError:
            return None
        helper = cls(proc, theirs)
        helper.mine = mine
        return helper

    def wait(self):
        """Wait for the helper; its return code (0: its kernels are in the cache)."""
        return self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def warm_numba(cases, passes, pairs, dtype="float32", baselines=()):
    """Compile every Numba kernel the measurement of ``cases`` will run, on two cores when
    there are (:class:`CompileHelper`), before anything is timed; the baselines' modules are
    imported meanwhile.  Strategies whose kernels Numba's cache already holds
    (``kernels._numba.cached``) are left to load on first use.  Returns the helper's return
    code, or None when no helper ran."""
    strategies = list(dict.fromkeys(s for s, b in pairs if b == "numba" and s != "reference"))
    numba_backend = backends.load("numba") if strategies else None
    # strategies already in Numba's cache load on first use: nothing to compile ahead
    strategies = [s for s in strategies
                  if numba_backend is None or numba_backend.cached(s, np.dtype(dtype).name)
                  is not True]
    if not strategies:
        for b in baselines:
            if baseline_missing(b) is None:
                importlib.import_module(_BASELINE_MODULE[b])
        return None
    helper = CompileHelper.start(cases, passes, strategies, dtype)
    try:
        first_calls(cases, passes, helper.mine if helper else strategies, dtype)
        for b in baselines:            # imports take seconds (torch): while the helper works
            if baseline_missing(b) is None:
                importlib.import_module(_BASELINE_MODULE[b])
        return helper.wait() if helper else None
    finally:
        if helper is not None:
            helper.stop()


def measure_cases(cases, passes, pairs, baselines=(), *, repeat=5, warmup=1,
                  dtype="float32", errors=True, peak=None, progress=None, auto=True,
                  precompile=True):
    """Measure every (case, pass) for every (strategy, backend) pair and baseline.

    Parameters
    ----------
    cases : sequence of :class:`bench.suites.Case`
    passes : subset of ``PASSES``
    pairs : list of (strategy, backend), e.g. from :func:`strategy_pairs`
    baselines : subset of ``BASELINES``
    repeat, warmup : see :func:`time_call`
    errors : measure max_rel_err against the float64 reference (else None)
    peak : GEMM peak in GFLOP/s for pct_peak (None: measured by :func:`gemm_peak`)
    progress : callable(str) called once per measurement, after it (for progress bars)
    auto : also measure strategy="auto" (a row with strategy "auto", backend the pick as
        "strategy/backend", kind "auto"; never the winner, compared with it instead)
    precompile : first compile every Numba kernel the pairs need (:func:`warm_numba`, on two
        cores where there are), then measure the GEMM peak and time

    Returns
    -------
    (rows, skipped): rows are dicts with at least shape, strategy, backend, pass,
    median_ms, gflops, pct_peak, max_rel_err, workspace_bytes, speedup_vs_direct,
    speedup_vs_<baseline>, winner; skipped are dicts (name, pass, strategy, backend, reason).
    """
    if precompile:
        warm_numba(cases, passes, pairs, dtype, baselines)
    peak = gemm_peak() if peak is None else peak
    rows, skipped = [], []
    for case in cases:
        inputs = make_inputs(case, dtype)
        for pass_ in passes:
            ref = reference(case, pass_, inputs) if errors else None
            group = []
            # auto right after the pairs it chooses from, baselines last: a foreign
            # runtime's idle threads must not sit on the cores while convlab is timed.
            entries = [("convlab", s, b) for s, b in pairs]
            if auto:
                entries.append(("auto", "auto", "/".join(auto_choice(case, pass_,
                                                                     dtype)[:2])))
            entries += [("baseline", b, _BASELINE_BACKEND[b]) for b in baselines]
            for kind, strategy, backend in entries:
                try:
                    fn, out, workspace = _prepare(kind, strategy, backend, case, pass_,
                                                  inputs, dtype)
                except Unsupported as e:
                    skipped.append({"name": case.name, "shape": case.spec(), "pass": pass_,
                                    "strategy": strategy, "backend": backend,
                                    "reason": str(e)})
                else:
                    host = as_numpy(out) if errors else None
                    err = max_rel_err(host, ref) if errors else None
                    region = region_rel_err(host, ref) if errors else None
                    del out, host
                    timing = time_call(fn, repeat=repeat, warmup=max(warmup - 1, 0))
                    group.append(_row(case, pass_, strategy, backend, kind, timing, err,
                                      workspace, peak, dtype, region))
                if progress is not None:
                    progress(f"{case.name} {pass_} {strategy}/{backend}")
            _finish_group(group, baselines)
            rows.extend(group)
    return rows, skipped


_BASELINE_BACKEND = {"torch": "cpu", "scipy": "fftconvolve"}
_BASELINE_MODULE = {"torch": "torch", "scipy": "scipy.signal"}


# --------------------------------------------------------------------------------------
# autotune
# --------------------------------------------------------------------------------------

def autotune(cases, pairs, *, repeat=5, warmup=1, dtype="float32", progress=None):
    """Measure every pair on every pass of ``cases`` and record the winners in the cache.

    For each case four entries are written through :func:`kernels.registry.record_tuned`:
    passes "fwd", "grad_input" and "grad_weight" (the fastest pair of each pass, which
    kernels.conv / conv_grad_input / conv_grad_weight look up first) and "all" (fastest
    forward + grad-input + grad-weight with one pair).  A pair whose error against the reference exceeds
    ``TOLERANCE`` is never chosen.

    Returns the list of written entries (dicts: name, shape, pass, strategy, backend,
    median_ms, runner_up, candidates).
    """
    cases = list({c.name: c for c in cases}.values())  # a repeated case is measured once
    rows, _ = measure_cases(cases, PASSES, pairs, (), repeat=repeat, warmup=warmup,
                            dtype=dtype, errors=True, peak=0.0, progress=progress, auto=False)
    written = []
    for case in cases:
        mine = [r for r in rows if r["name"] == case.name and r["ok"]]
        for pass_ in PASSES + ("all",):
            times = {}
            for r in mine:
                if pass_ != "all" and r["pass"] != pass_:
                    continue
                key = (r["strategy"], r["backend"])
                times.setdefault(key, []).append(r["median_ms"])
            need = 1 if pass_ != "all" else len(PASSES)
            totals = {k: sum(v) for k, v in times.items() if len(v) == need}
            if not totals:
                continue
            ranked = sorted(totals.items(), key=lambda kv: kv[1])
            (strategy, backend), ms = ranked[0]
            runner_up = f"{ranked[1][0][0]}/{ranked[1][0][1]}" if len(ranked) > 1 else None
            candidates = {f"{s}/{b}": round(t, 4) for (s, b), t in ranked}
            registry.record_tuned(case.x_shape, case.w_shape, case.params(), dtype, pass_,
                                  strategy, backend, ms, name=case.name, runner_up=runner_up,
                                  candidates=candidates)
            written.append({"name": case.name, "shape": case.spec(), "pass": pass_,
                            "strategy": strategy, "backend": backend, "median_ms": ms,
                            "runner_up": runner_up, "candidates": candidates})
    return written


# --------------------------------------------------------------------------------------
# machine description (convlab info)
# --------------------------------------------------------------------------------------

_VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni",
                 "avx512_bf16", "amx_tile", "asimd", "sve", "neon")


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [f for f in _VECTOR_FLAGS if f in have]
    except OSError:
        pass
    return []


def _blas():
    from threadpoolctl import threadpool_info
    for d in threadpool_info():
        if d.get("user_api") == "blas":
            return (f"{d.get('internal_api')} {d.get('version') or ''} "
                    f"({d.get('architecture') or 'unknown arch'}, "
                    f"{d.get('num_threads')} threads)").replace("  ", " ")
    return "none found by threadpoolctl"


def _numba():
    import numba
    layer = "not started"
    try:
        if ("direct", "numba") in kernels.available("conv"):
            # the threading layer is chosen on the first parallel call
            kernels.conv(np.ones((1, 1, 4), np.float32), np.ones((1, 1, 2), np.float32),
                         strategy="direct", backend="numba")
            layer = numba.threading_layer()
    except (ValueError, RuntimeError) as e:
        layer = f"unknown ({e})"
    return f"{numba.__version__}, threading layer {layer}"


def _cython():
    if backends.load("cython") is not None:
        return "built"
    return f"not available: {backends.error('cython') or 'unknown reason'}"


def _cuda():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "simulator (NUMBA_ENABLE_CUDASIM=1)"
    try:
        from numba import cuda
        if cuda.is_available():
            return f"device: {cuda.get_current_device().name.decode()}"
    except Exception as e:  # a broken driver must not break `convlab info`
        return f"not available ({type(e).__name__}: {e})"
    return "no CUDA device"


def busy_warning():
    """A one-line warning when other processes keep the CPUs busy (timings then mean little),
    else None.  Uses the 1-minute load average where the OS offers it."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    if load <= cores + 0.5:
        return None
    return (f"the machine is busy (load average {load:.1f} on {cores} cores): timings are "
            f"noisy, parallel kernels suffer most; try again when idle or with --threads 1")


def _cython_blas():
    from kernels import _blas
    return _blas.describe()


def machine_info(peak=True):
    """[(label, value)] describing this machine and convlab's setup (for `convlab info`)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    flags = _cpu_flags()
    runtime = kernels.runtime.settings()
    info = [
        ("CPU", registry.cpu_model()),
        ("vector features", " ".join(flags) if flags else "unknown"),
        ("cores", f"{os.cpu_count()} logical, {affinity} usable by this process"),
        ("threads in use", str(kernels.get_num_threads())),
        ("load average", " ".join(f"{v:.2f}" for v in os.getloadavg())
         if hasattr(os, "getloadavg") else "unknown"),
        ("BLAS (numpy)", _blas()),
        ("BLAS of the Cython GEMMs", _cython_blas()),
        ("OpenMP idle threads", runtime["openmp"]),
        *[(f"BLAS threads ({os.path.basename(b['path'])})", b["threads"])
          for b in runtime["blas"]],
        ("memory", runtime["memory"]),
        ("numpy", np.__version__),
        ("numba", _numba()),
        ("cython extensions", _cython()),
        ("CUDA", _cuda()),
        ("conv strategies", ", ".join(f"{s}/{b}" for s, b in kernels.available("conv"))),
        ("autotune cache", f"{registry.cache_path()} ({len(registry.read_cache())} entries)"),
    ]
    for b in BASELINES:
        why = baseline_missing(b)
        if why is None:
            info.append((f"baseline {b}", importlib.metadata.version(b)))
        else:
            info.append((f"baseline {b}", why))
    if peak:
        info.append(("GEMM peak (float32)", f"{gemm_peak():.1f} GFLOP/s "
                     f"(median of np.dot at 1024, 1536, 2048)"))
    return info
