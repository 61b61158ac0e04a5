"""The Numba backend compiles each kernel once per dtype (issue 5, target 7: cold compile).

Every distinct argument-type signature of an ``@njit`` function is a compilation of its own
(seconds each): a literal int argument (``Literal[int](0)`` instead of ``int64``), an 'A'
layout, a readonly array or a uint64 loop index each compile the kernel again.  A mixed
workload (both dtypes, 1-D to 3-D, strides, dilations, groups, padding, every strategy and
pooling kind) must leave every kernel with exactly one signature per dtype.

Run as a script (``python tests/test_numba_compile.py``), this file runs the float32 workload
and prints every Numba function's signatures as JSON; the slow test does that in a fresh
process with an empty cache, where the helpers the kernels call are compiled too.
"""
import json
import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest
from numba import njit
from numba.core.registry import CPUDispatcher

import kernels
from conftest import unsupported
from kernels._numba import conv_direct, fft, gemm, im2col, pool, threads, winograd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = (conv_direct, fft, gemm, im2col, pool, winograd)
CONV_STRATEGIES = ("direct", "im2col", "fft", "winograd")


def dispatchers():
    """{'module.name': dispatcher} of every Numba function of the backend."""
    return {f"{mod.__name__.rsplit('.', 1)[1]}.{name}": obj for mod in MODULES
            for name, obj in vars(mod).items() if isinstance(obj, CPUDispatcher)}


def workload(dtype, seed=0):
    """Call every kernel through the public API with varied parameters."""
    rng = np.random.default_rng(seed)

    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    convs = [
        ((2, 4, 9, 9), (6, 4, 3, 3), dict(padding=1)),
        ((2, 4, 10, 11), (4, 2, 3, 3), dict(stride=2, groups=2)),
        ((2, 3, 12), (4, 3, 5), dict(dilation=2, padding=((3, 1),))),
        ((1, 2, 5, 6, 6), (2, 2, 3, 2, 3), dict(stride=(1, 2, 1), padding=1)),
        ((3, 8, 6, 6), (8, 8, 1, 1), {}),
    ]
    for x_shape, w_shape, kw in convs:
        x, w = r(*x_shape), r(*w_shape)
        for strategy in CONV_STRATEGIES:
            if unsupported(strategy, x_shape, w_shape, kw):
                continue
            y = kernels.conv(x, w, strategy=strategy, backend="numba", **kw)
            kernels.conv_grad_input(y, w, x.shape, strategy=strategy, backend="numba", **kw)
            kernels.conv_grad_weight(y, x, w.shape, strategy=strategy, backend="numba", **kw)
    # im2col's per-image block layout (a big GEMM per image)
    x, w = r(2, 64, 24, 24), r(64, 64, 3, 3)
    y = kernels.conv(x, w, padding=1, strategy="im2col", backend="numba")
    kernels.conv_grad_input(y, w, x.shape, padding=1, strategy="im2col", backend="numba")
    kernels.conv_grad_weight(y, x, w.shape, padding=1, strategy="im2col", backend="numba")
    x = r(2, 3, 7, 8)
    for kind in ("max", "avg", "sum", "l2"):
        for kw in (dict(size=2), dict(size=3, stride=2, padding=1)):
            y = kernels.pool(x, kind, backend="numba", **kw)
            kernels.pool_grad(np.ones_like(y), x, kind, backend="numba", **kw)
    kernels.global_pool(x, "avg", backend="numba")
    fft.strided_crop(r(2, 3, 1, 7, 8), np.empty((2, 3, 1, 4, 3), dtype), 1, 2, 3)
    kernels.matmul(r(5, 7), r(7, 3), backend="numba")
    kernels.matmul(r(70, 130), r(130, 300), backend="numba")


def signatures():
    """{'module.name': [[str(type) of each argument], ...]} of every compiled signature."""
    return {name: [[str(t) for t in sig] for sig in d.signatures]
            for name, d in dispatchers().items() if d.signatures}


def _array_dtype(sig):
    """The dtype of the first array argument of a signature (as Numba prints it)."""
    for t in sig:
        if "array(" in t:           # 'array(float32, 5d, C)', 'readonly array(...)'
            return t.split("array(", 1)[1].split(",")[0]
    return None


def _problems(sigs):
    """Kernels with more than one signature for one dtype, or with a literal argument."""
    out = []
    for name, sig_list in sigs.items():
        per_dtype = {}
        for sig in sig_list:
            per_dtype.setdefault(_array_dtype(sig), []).append(sig)
            if any(t.startswith("Literal") for t in sig):
                out.append(f"{name}: literal argument in {sig}")
        for dt, same in per_dtype.items():
            if len(same) > 1:
                out.append(f"{name}: {len(same)} signatures for {dt}: {same}")
    return out


def test_one_signature_per_dtype():
    workload(np.float32)
    workload(np.float64, seed=1)
    workload(np.float32, seed=2)
    sigs = signatures()
    assert not _problems(sigs), "\n".join(_problems(sigs))
    # the workload reached every kernel (cached or compiled), in both dtypes
    called = {name for name, d in dispatchers().items()
              if d.targetoptions.get("nogil") and not d.targetoptions.get("inline")}
    for name in called:
        dtypes = {_array_dtype(s) for s in sigs.get(name, [])}
        assert dtypes == {"float32", "float64"}, f"{name}: {sigs.get(name)}"


def test_no_parfor_kernels():
    """The kernels run on threads.run_jobs: parallel=True compiles about twice as long."""
    for name, d in dispatchers().items():
        assert not d.targetoptions.get("parallel"), f"{name} is parallel=True"
        if d.targetoptions.get("nogil"):
            assert type(d._cache).__name__ != "NullCache", f"{name} is not cache=True"


@pytest.mark.parametrize("n_threads", [1, 2])
def test_run_jobs_runs_each_job_once(n_threads):
    if n_threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}")

    @njit(nogil=True)
    def mark(out, first, step):
        for job in range(first, out.shape[0], step):
            out[job, 0] += 1
            out[job, 1] = first

    before = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        for jobs in (0, 1, 5):
            out = np.zeros((jobs, 2), np.int64)
            threads.run_jobs(mark, jobs, out)
            assert out[:, 0].tolist() == [1] * jobs
            assert set(out[:, 1].tolist()) == set(range(min(jobs, n_threads)))
        out = np.zeros((5, 2), np.int64)
        threads.run_jobs(mark, 5, out, parallel=False)
        assert out[:, 1].tolist() == [0] * 5
    finally:
        numba.set_num_threads(before)


def test_run_jobs_waits_for_every_thread_on_error():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one Numba thread")
    done = threading.Event()

    def kernel(first, step):
        if first == 0:
            raise ValueError("job 0 failed")
        done.wait(0.05)
        done.set()

    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match="job 0 failed"):
            threads.run_jobs(kernel, 2)
        assert done.is_set()        # the other thread finished before the call returned
    finally:
        numba.set_num_threads(before)


@pytest.mark.slow
def test_cold_compile_once_per_dtype(tmp_path):
    """In a fresh process with an empty cache the helpers compile too: each exactly once."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sigs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "conv_direct._taps" in sigs and "winograd._comb4" in sigs, sorted(sigs)
    assert not _problems(sigs), "\n".join(_problems(sigs))


# --------------------------------------------------------------------------------------
# compiling on two cores (bench.measure.warm_numba): the helper process compiles some
# strategies into Numba's on-disk cache, this process loads them
# --------------------------------------------------------------------------------------

_WARM_SCRIPT = r"""
import json, sys
import numpy as np
from numba.core import event
from bench import measure
from bench.suites import parse_spec
from kernels._numba import conv_direct, fft
mode, out = sys.argv[1], sys.argv[2]
cases = [parse_spec("2,3,10,12:4,3,3:padding=1"), parse_spec("2,4,40:6,5:padding=same")]
pairs = [("direct", "numba"), ("fft", "numba")]
passes = measure.PASSES
helper_rc = measure.warm_numba(cases, passes, pairs) if mode == "helper" else None
compiled = []
class Rec(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        compiled.append(f.__module__ + "." + f.__name__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Rec())
results = {}
for case in cases:
    inputs = measure.make_inputs(case)
    for s, _ in pairs:
        for p in passes:
            results[f"{case.name}-{s}-{p}"] = measure.pass_fn(case, p, s, "numba", inputs)()
np.savez(out, **results)
hits = {d.py_func.__name__: sum(d._cache_hits.values())
        for d in (conv_direct._forward, conv_direct._grad_input, conv_direct._grad_weight)}
print(json.dumps({"helper_rc": helper_rc, "compiled": compiled, "direct_hits": hits}))
"""


def _warm_run(tmp_path, mode, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=ROOT)
    env.pop("CONVLAB_COMPILE_HELPER", None)
    if mode != "helper":
        env["CONVLAB_COMPILE_HELPER"] = "0"
    out = tmp_path / f"{mode}.npz"
    proc = subprocess.run([sys.executable, "-c", _WARM_SCRIPT, mode, str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


def test_compile_split_balances_and_covers():
    from bench.measure import COMPILE_SECONDS, compile_split
    names = list(COMPILE_SECONDS)
    mine, theirs = compile_split(names + ["direct"])         # a repeat counts once
    assert sorted(mine + theirs) == sorted(names) and not set(mine) & set(theirs)
    t = [sum(COMPILE_SECONDS[s] for s in g) for g in (mine, theirs)]
    # no move of one strategy to the other side would balance better
    for s in names:
        a, b = (t[0] - COMPILE_SECONDS[s], t[1] + COMPILE_SECONDS[s]) if s in mine else \
               (t[0] + COMPILE_SECONDS[s], t[1] - COMPILE_SECONDS[s])
        assert abs(t[0] - t[1]) <= abs(a - b)
    assert compile_split(["direct"]) == ([], ["direct"])
    assert compile_split(["somefuture"]) == ([], ["somefuture"])


def test_no_helper_on_one_core_or_when_disabled(monkeypatch):
    from bench import measure
    monkeypatch.setenv("CONVLAB_COMPILE_HELPER", "0")
    assert measure.CompileHelper.start([], ("fwd",), ["direct", "fft"], "float32") is None
    monkeypatch.delenv("CONVLAB_COMPILE_HELPER")
    monkeypatch.setattr(measure, "_usable_cores", lambda: 1)
    assert measure.CompileHelper.start([], ("fwd",), ["direct", "fft"], "float32") is None
    monkeypatch.setattr(measure, "_usable_cores", lambda: 2)
    assert measure.CompileHelper.start([], ("fwd",), ["direct"], "float32") is None
    # no Numba pair: nothing to warm, no process started
    assert measure.warm_numba([], ("fwd",), [("direct", "cython")]) is None


@pytest.mark.slow
def test_helper_compiles_into_the_cache_and_results_are_identical(tmp_path):
    """Cold, with the helper: direct's kernels (the helper's share) are loaded from the cache
    and never compiled in this process, and every result is bit-identical to a process that
    compiled everything itself with another empty cache."""
    info, got = _warm_run(tmp_path, "helper", tmp_path / "cache_helper")
    assert info["helper_rc"] == 0
    assert not [n for n in info["compiled"] if "conv_direct" in n], info["compiled"]
    assert all(h >= 1 for h in info["direct_hits"].values()), info["direct_hits"]
    solo, want = _warm_run(tmp_path, "solo", tmp_path / "cache_solo")
    assert solo["helper_rc"] is None
    assert "kernels._numba.conv_direct._forward" in solo["compiled"]
    assert sorted(got.files) == sorted(want.files) and len(want.files) == 12
    for k in want.files:
        assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k


_NO_COMPILE_SCRIPT = r"""
import json
from numba.core import event
from bench import measure
from bench.suites import get_suite
compiled = []
class Rec(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        compiled.append(f.__module__ + "." + f.__name__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Rec())
import kernels._numba as nb
strategies = [s for s, b in measure.strategy_pairs(backends=["numba"]) if b == "numba"]
probe = {s: nb.cached(s, "float32") for s in strategies}
probe64 = {s: nb.cached(s, "float64") for s in strategies}
n = measure.first_calls(get_suite("quick"), measure.PASSES, strategies)
print(json.dumps({"calls": n, "strategies": strategies, "compiled": compiled,
                  "cached": probe, "cached64": probe64}))
"""


@pytest.mark.slow
def test_convlab_compile_ahead(tmp_path):
    """`convlab compile` fills an empty cache; a later process running the quick suite's
    Numba calls (what `convlab compare` runs) then compiles nothing."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=ROOT)
    env.pop("CONVLAB_COMPILE_HELPER", None)
    probe = ("import json, kernels._numba as nb; print(json.dumps({s: nb.cached(s, 'float32') "
             "for s in nb.STRATEGY_KERNELS}))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert json.loads(proc.stdout) == {s: False for s in CONV_STRATEGIES}, proc.stdout
    proc = subprocess.run([sys.executable, "-m", "bench", "compile"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "float32 Numba kernels" in proc.stdout and str(tmp_path / "cache") in \
        " ".join(proc.stdout.split()), proc.stdout
    proc = subprocess.run([sys.executable, "-c", _NO_COMPILE_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(CONV_STRATEGIES) <= set(info["strategies"]) and info["calls"] > 20, info
    assert info["compiled"] == [], info["compiled"]
    # the probe compare uses to skip the compile-ahead step: float32 only was compiled
    assert all(info["cached"][s] is True for s in CONV_STRATEGIES), info["cached"]
    assert all(info["cached64"][s] is False for s in CONV_STRATEGIES), info["cached64"]


def test_cached_probe_unknown_strategy():
    from kernels import _numba
    assert _numba.cached("no-such-strategy", "float32") is None
    assert set(_numba.STRATEGY_KERNELS) == set(CONV_STRATEGIES)
    assert _numba.cached("direct", "float32") in (True, False)


def test_compile_command_bad_arguments():
    from bench import cli
    with pytest.raises(SystemExit) as e:
        cli.main(["compile", "--dtype", "float16"])
    assert e.value.code == 2


if __name__ == "__main__":
    workload(np.float32)
    print(json.dumps(signatures()))
