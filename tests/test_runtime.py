"""kernels.runtime: the process-wide settings are applied when work runs, never on import; BLAS
runs on convlab's OpenMP team (OpenBLAS's threads callback) and gives the same numbers; the
callback never deadlocks (thread limits, concurrent callers, a forked child); the thread count
is convlab's own even when PyTorch shares the OpenMP runtime.

Each case that depends on what a process loaded, and in which order, runs in its own process
(with a timeout: a deadlock fails the test instead of hanging the suite)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kernels
from kernels import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_CYTHON = ("im2col", "cython") in kernels.available("conv")
cython = pytest.mark.skipif(not HAVE_CYTHON, reason="the Cython backend is not built")
two_cores = pytest.mark.skipif(runtime.max_threads() < 2,
                               reason="a team of two threads needs two usable cores")


def _team_callbacks_installed():
    return [b for b in runtime.settings()["blas"] if b["threads"].startswith("convlab's")]


def _run(code, env=None, timeout=120):
    """Run ``code`` in a fresh interpreter from the repository root; returns its last stdout
    line parsed as JSON."""
    full_env = dict(os.environ)
    for k in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "CONVLAB_BLAS_THREADS",
              "OMP_THREAD_LIMIT", "CONVLAB_NUM_THREADS"):
        full_env.pop(k, None)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_changes_nothing_global():
    out = _run("""
        import json, os
        before = dict(os.environ)
        import kernels, engine, bench
        from kernels import runtime
        maps = open("/proc/self/maps").read()
        print(json.dumps({"env": sorted(set(os.environ.items()) ^ set(before.items())),
                          "applied": runtime._applied, "gomp": "libgomp" in maps}))
    """)
    assert out == {"env": [], "applied": False, "gomp": False}


@cython
@two_cores
def test_first_work_applies_the_settings_and_blas_runs_on_the_team():
    out = _run("""
        import json, numpy as np
        import kernels
        from kernels import runtime
        x = np.ones((1, 2, 6, 6), np.float32); w = np.ones((3, 2, 3, 3), np.float32)
        kernels.conv(x, w)
        from kernels._cython import threads
        before = threads.blas_callback_counts()[0]
        a = np.random.default_rng(0).standard_normal((400, 300))
        b = np.random.default_rng(1).standard_normal((300, 500))
        c = a @ b
        ref = np.einsum("ik,kj->ij", a, b)
        s = runtime.settings()
        print(json.dumps({"regions": threads.blas_callback_counts()[0] - before,
                          "err": float(abs(c - ref).max()), "openmp": s["openmp"],
                          "blas": [b["threads"] for b in s["blas"]]}))
    """, env={"CONVLAB_NUM_THREADS": "2"})
    assert out["regions"] >= 1
    assert out["err"] < 1e-9
    assert out["openmp"].startswith("OMP_WAIT_POLICY=PASSIVE")
    assert any(t.startswith("convlab's") for t in out["blas"])


@cython
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 300, 5), (513, 257, 129), (64, 1000, 64)])
def test_gemm_on_the_team_equals_float64(dtype, shape):
    runtime.ensure()
    assert _team_callbacks_installed()
    m, k, n = shape
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    tol = (1e-4 if dtype == np.float32 else 1e-11) * np.sqrt(k)
    np.testing.assert_allclose(a @ b, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(a.T.copy().T @ b, ref, rtol=tol, atol=tol)


@cython
@two_cores
def test_concurrent_callers_each_get_their_own_team():
    """np.dot from four Python threads at once (each call opens its own OpenMP team)."""
    out = _run("""
        import json, numpy as np
        from concurrent.futures import ThreadPoolExecutor
        import kernels
        kernels.runtime.ensure()
        from kernels._cython import threads
        rng = np.random.default_rng(0)
        mats = [rng.standard_normal((300, 300)) for _ in range(8)]
        def one(i):
            return float(abs(mats[i] @ mats[i] - np.einsum("ik,kj->ij", mats[i], mats[i])).max())
        with ThreadPoolExecutor(4) as pool:
            errs = list(pool.map(one, range(8)))
        print(json.dumps({"err": max(errs), "regions": threads.blas_callback_counts()[0]}))
    """, env={"CONVLAB_NUM_THREADS": "2"})
    assert out["err"] < 1e-9 and out["regions"] >= 1


@cython
def test_thread_limit_below_the_jobs_runs_them_on_fresh_threads():
    """OMP_THREAD_LIMIT=1: an OpenMP team cannot hold OpenBLAS's two jobs, which wait on each
    other; the callback starts threads of its own instead of deadlocking."""
    out = _run("""
        import json, numpy as np
        import kernels
        kernels.runtime.ensure()
        from threadpoolctl import threadpool_limits
        from kernels._cython import threads
        with threadpool_limits(2, user_api="blas"):
            a = np.random.default_rng(0).standard_normal((600, 600))
            c = a @ a
        print(json.dumps({"err": float(abs(c - np.einsum("ik,kj->ij", a, a)).max()),
                          "counts": threads.blas_callback_counts()}))
    """, env={"OMP_THREAD_LIMIT": "1"})
    assert out["err"] < 1e-9
    assert out["counts"][1] >= 1


@cython
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_gets_blas_its_own_pool_back():
    out = _run("""
        import json, os, numpy as np
        import kernels
        x = np.ones((2, 3, 8, 8), np.float32); w = np.ones((4, 3, 3, 3), np.float32)
        kernels.conv(x, w)
        a = np.random.default_rng(0).standard_normal((500, 500)); a @ a
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            ok = float(abs(a @ a - np.einsum("ik,kj->ij", a, a)).max()) < 1e-9
            s = kernels.runtime.settings()
            os.write(wfd, json.dumps({"ok": ok, "blas": [b["threads"] for b in s["blas"]]})
                     .encode())
            os._exit(0)
        os.close(wfd)
        data = os.read(r, 10000); os.waitpid(pid, 0)
        print(data.decode())
    """, timeout=60)
    assert out["ok"]
    assert all(not t.startswith("convlab's") for t in out["blas"])


def test_native_mode_leaves_openblas_alone_and_bad_values_are_named():
    out = _run("""
        import json, kernels
        print(json.dumps([b["threads"] for b in kernels.runtime.settings()["blas"]]))
    """, env={"CONVLAB_BLAS_THREADS": "native"})
    assert out and all(not t.startswith("convlab's") for t in out)
    proc = subprocess.run([sys.executable, "-c", "import kernels; kernels.runtime.ensure()"],
                          cwd=ROOT, env={**os.environ, "CONVLAB_BLAS_THREADS": "sometimes"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "CONVLAB_BLAS_THREADS" in proc.stderr
    assert "'sometimes'" in proc.stderr


@cython
@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None,
                    reason="needs torch")
@two_cores
def test_torch_first_shares_the_runtime_but_not_the_thread_count():
    """torch loads libgomp at import; convlab's kernels then run on that runtime.  Its
    set_num_threads (OpenMP's process-wide default) must not change convlab's team."""
    out = _run("""
        import json, numpy, scipy, torch
        torch.set_num_threads(1)
        import kernels
        kernels.set_num_threads(2)
        import numpy as np
        x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
        w = np.random.default_rng(1).standard_normal((8, 3, 3, 3)).astype(np.float32)
        y = kernels.conv(x, w, strategy="im2col", backend="cython")
        ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w)).numpy()
        from kernels._cython import threads
        s = kernels.runtime.settings()
        print(json.dumps({"team": threads.get_num_threads(), "torch": torch.get_num_threads(),
                          "err": float(abs(y - ref).max()), "openmp": s["openmp"],
                          "blas": [b["threads"] for b in s["blas"]]}))
    """)
    assert out["team"] == 2 and out["torch"] == 1
    assert out["err"] < 1e-4
    assert "another library" in out["openmp"]
    assert any(t.startswith("convlab's") for t in out["blas"])


def test_ensure_is_idempotent_and_settings_describe_it():
    runtime.ensure()
    runtime.ensure()
    s = runtime.settings()
    assert s["threads"] == kernels.get_num_threads() >= 1
    assert isinstance(s["memory"], str) and isinstance(s["openmp"], str)
    paths = [b["path"] for b in s["blas"]]
    assert len(paths) == len(set(paths))
