"""Probe convlab with the hostile inputs of issue 13, each in its own process.

    python tests/probe_reliability.py            # all probes, a table and the totals
    python tests/probe_reliability.py --item 3   # one item

Every probe runs in a child process with a timeout (120 s) and an address-space limit
(4 GiB), and is classed as
  correct       the result is right (checked against the reference, a closed form, or
                the expected state of files),
  clear error   ValueError / TypeError / FileNotFoundError (ModelFileError is a
                ValueError) with a message, or a CLI exit status 2 with a one-line message
                (1 where the arguments are fine and the environment is not),
  wrong         a result that is not right, or a clear error after taking > 1 GiB,
  unclear error any other exception (KeyError, RecursionError, MemoryError, a Numba
                TypingError...), or a CLI traceback,
  crash         the process died (signal, libgomp exit) or ran past the timeout.
Not a test (pytest does not collect it); the tests in test_reliability.py and test_fuzz.py
check the same items.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 120
MEM = 4 * 2**30

PRELUDE = '''
import json, os, sys, resource, warnings, io, gzip, zipfile, threading, subprocess, time
import numpy as np
import kernels, engine
from engine.io import ModelFileError
rng = np.random.default_rng(0)
def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def ref(fn, *a, **kw):
    return fn(*[np.asarray(v, np.float64) if isinstance(v, np.ndarray) else v for v in a],
              strategy="reference", **kw)
def same_nonfinite(got, want):
    return bool(np.array_equal(~np.isfinite(got), ~np.isfinite(want)))
def idx_header(code, shape):
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes()
def config_member(units=3, inputs=4):
    m = engine.Sequential([engine.layers.Input((4,)), engine.layers.Dense(3)])
    meta = {"format": "convlab-model", "version": 1, "class_name": "Sequential",
            "config": m.get_config(), "weights": [], "training_config": None}
    meta["config"]["input_shape"] = [inputs]
    meta["config"]["layers"][0]["config"]["units"] = units
    return np.frombuffer(json.dumps(meta).encode(), np.uint8)
def npy(a):
    b = io.BytesIO(); np.lib.format.write_array(b, a, allow_pickle=False); return b.getvalue()
def npy_header(shape, descr="<f4"):
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": descr, "fortran_order": False,
                                             "shape": shape})
    return b.getvalue()
def mlp(lr=0.01):
    engine.set_seed(0)
    m = engine.Sequential([engine.layers.Input((4,)), engine.layers.Dense(8, activation="relu"),
                           engine.layers.Dense(3)])
    m.compile(engine.optimizers.SGD(lr), "sparse_categorical_crossentropy")
    return m
TMP = sys.argv[1]
'''

RUNNER = '''
try:
    outcome = probe()
    status, detail = outcome if isinstance(outcome, tuple) else (outcome, "")
except (ValueError, TypeError, FileNotFoundError) as e:
    msg = " ".join(str(e).split())
    status = "clear error" if msg and type(e).__name__ not in ("TypingError",) else \\
        "unclear error"
    detail = f"{type(e).__name__}: {msg[:150]}"
except BaseException as e:
    status, detail = "unclear error", f"{type(e).__name__}: {' '.join(str(e).split())[:150]}"
if status == "clear error" and rss_mib() > 1024:
    status, detail = "wrong", f"clear error after {rss_mib():.0f} MiB: {detail}"
print("PROBE-RESULT " + json.dumps({"status": status, "detail": detail, "rss": rss_mib()}))
'''


def cli_probe(args, want_code, fragment, env=None):
    """A probe running `python -m bench.cli ARGS` inside the child."""
    return f'''
def probe():
    env = dict(os.environ, **{env or {}!r})
    p = subprocess.run([sys.executable, "-m", "bench.cli"] + {list(args)!r}, cwd={ROOT!r},
                       env=env, capture_output=True, text=True, timeout=100)
    if "Traceback" in p.stderr:
        return "unclear error", p.stderr.strip().splitlines()[-1][:150]
    if p.returncode < 0:
        return "crash", f"signal {{-p.returncode}}"
    if p.returncode == {want_code} and {fragment!r} in p.stderr:
        return ("clear error" if {want_code} else "correct"), " ".join(p.stderr.split())[:150]
    if p.returncode == 0:
        return "correct" if {want_code} == 0 else "wrong", "exit 0"
    return ("unclear error" if p.returncode in (1, 2) else "crash",
            f"exit {{p.returncode}}: {{p.stderr.strip()[-150:]}}")
'''


PROBES = []


def probe(item, name, body, env=None, nproc=None):
    PROBES.append({"item": item, "name": name, "body": textwrap.dedent(body), "env": env,
                   "nproc": nproc})


# 1 -- thread counts -------------------------------------------------------------------
_THREADS = '''
def probe():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        {setter}
    x = rng.standard_normal((2, 16, 10, 10)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    ok = all(np.allclose(kernels.conv(x, w, padding=1, strategy=s, backend="cython"),
                         ref(kernels.conv, x, w, padding=1), atol=1e-3)
             for s in ("direct", "winograd", "im2col"))
    p = kernels.pool(x, "max", 2, backend="cython")
    return ("correct" if ok and kernels.get_num_threads() <= os.cpu_count() else "wrong",
            f"threads {{kernels.get_num_threads()}}")
'''
for n in (100, 40000, 70000, 100000):
    probe(1, f"kernels.set_num_threads({n})",
          _THREADS.format(setter=f"kernels.set_num_threads({n})"))
probe(1, "engine.set_num_threads(100000)",
      _THREADS.format(setter="engine.set_num_threads(100000)"))
probe(1, "CONVLAB_NUM_THREADS=100000", _THREADS.format(setter="pass"),
      env={"CONVLAB_NUM_THREADS": "100000"})
probe(1, "RLIMIT_NPROC 200, 100 threads", _THREADS.format(setter="kernels.set_num_threads(100)"),
      nproc=200)
probe(1, "CLI --threads 100000",
      cli_probe(["compare", "--shape", "1,16,8,8:16,3,3:padding=1", "--strategies", "winograd",
                 "--backends", "cython", "--repeat", "1", "--peak", "1", "--threads", "100000",
                 "--baselines", "none"], 0, ""))

# 2 -- small files, big memory ---------------------------------------------------------
probe(2, "read_idx gzip bomb (10-byte header, 512 MiB of data)", '''
def probe():
    p = os.path.join(TMP, "bomb.gz")
    with gzip.open(p, "wb", compresslevel=9) as f:
        f.write(idx_header(8, (10,)))
        for _ in range(32):
            f.write(bytes(1 << 24))
    engine.data.read_idx(p)
    return "wrong", "read"
''')
probe(2, "read_idx symlink to /dev/zero", '''
def probe():
    p = os.path.join(TMP, "zero"); os.symlink("/dev/zero", p)
    engine.data.read_idx(p)
    return "wrong", "read"
''')
probe(2, "read_idx header 10**12 elements, 76-byte file", '''
def probe():
    p = os.path.join(TMP, "claim")
    open(p, "wb").write(idx_header(0x0D, (10**6, 10**6)) + bytes(64))
    engine.data.read_idx(p)
    return "wrong", "read"
''')
probe(2, "read_idx gzip header 2**34 bytes, 4 KiB of data", '''
def probe():
    p = os.path.join(TMP, "claim.gz")
    with gzip.open(p, "wb") as f:
        f.write(idx_header(0x0E, (2**31, 1)) + bytes(4096))
    engine.data.read_idx(p)
    return "wrong", "read"
''')
probe(2, "load_model member inflating to 512 MiB", '''
def probe():
    p = os.path.join(TMP, "inflate.npz")
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("__config__.npy", npy(config_member()))
        with zf.open("w00000.npy", "w", force_zip64=True) as f:
            f.write(npy_header((2**27,)))
            for _ in range(32):
                f.write(bytes(1 << 24))
        zf.writestr("w00001.npy", npy(np.zeros(3, np.float32)))
    engine.load_model(p)
    return "wrong", "loaded"
''')
probe(2, "load_model 2 KB architecture of Dense(20000) on 20000 inputs", '''
def probe():
    p = os.path.join(TMP, "arch.npz")
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("__config__.npy", npy(config_member(20000, 20000)))
    engine.load_model(p)
    return "wrong", "loaded"
''')
probe(2, "load_model .npy header claiming 10**12 elements", '''
def probe():
    p = os.path.join(TMP, "npy.npz")
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("__config__.npy", npy(config_member()))
        zf.writestr("w00000.npy", npy_header((10**12,)) + bytes(64))
        zf.writestr("w00001.npy", npy(np.zeros(3, np.float32)))
    engine.load_model(p)
    return "wrong", "loaded"
''')

# 3 -- Inf / NaN ------------------------------------------------------------------------
for bad in ("inf", "nan"):
    for s in ("auto", "direct", "im2col", "fft", "winograd"):
        for op in ("fwd", "grad_input"):
            probe(3, f"{op} {s}, one {bad}", f'''
def probe():
    x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    if {op!r} == "fwd":
        x[0, 3, 5, 7] = np.{bad}
        got = kernels.conv(x, w, padding=1, strategy={s!r})
        want = ref(kernels.conv, x, w, padding=1)
    else:
        gy = rng.standard_normal((2, 16, 12, 12)).astype(np.float32); gy[1, 2, 4, 4] = np.{bad}
        got = kernels.conv_grad_input(gy, w, x.shape, padding=1, strategy={s!r})
        want = ref(kernels.conv_grad_input, gy, w, x.shape, padding=1)
    n = int((~np.isfinite(got)).sum())
    return ("correct" if same_nonfinite(got, want) else "wrong"), f"{{n}} non-finite"
''')

# 4 -- FFT dynamic range ---------------------------------------------------------------
for s, b in (("auto", "auto"), ("fft", "numba"), ("fft", "cython")):
    probe(4, f"1e4 | 1e-4 halves, k=255, 2**18 samples, {s}/{b}", f'''
def probe():
    n = 2**18
    x = np.empty((1, 1, n), np.float32)
    x[..., :n // 2] = 1e4 * (1 + rng.random(n // 2)); x[..., n // 2:] = 1e-4 * (1 + rng.random(n // 2))
    w = rng.random((1, 1, 255)).astype(np.float32)
    y = kernels.conv(x, w, strategy={s!r}, backend={b!r})
    r = kernels.conv(x.astype(np.float64), w.astype(np.float64), strategy="direct")
    q = slice(n // 2 + 255, None)
    e = float(np.abs(y[..., q] - r[..., q]).max() / np.abs(r[..., q]).max())
    return ("correct" if e < 1e-4 else "wrong"), f"quiet-half relative error {{e:.2g}}"
''')
probe(4, "compare reports a region-wise error", '''
def probe():
    p = os.path.join(TMP, "c.json")
    r = subprocess.run([sys.executable, "-m", "bench.cli", "compare", "--shape", "1,1,4096:1,1,65",
                        "--strategies", "fft", "--repeat", "1", "--peak", "1", "--baselines",
                        "none", "--json", p], capture_output=True, text=True)
    rows = json.load(open(p))
    rows = rows["rows"] if isinstance(rows, dict) else rows
    ok = all("region_rel_err" in row for row in rows) and "region err" in r.stdout
    return ("correct" if ok else "wrong"), ""
''')

# 5 -- fit and NaN, zero samples --------------------------------------------------------
for what, edit in (("NaN in x", "x[5, 1] = np.nan"), ("Inf in x", "x[5, 1] = np.inf")):
    probe(5, f"fit with {what}", f'''
def probe():
    m = mlp(); x = rng.standard_normal((32, 4)).astype(np.float32); y = rng.integers(0, 3, 32)
    {edit}
    try:
        h = m.fit(x, y, epochs=1, verbose=0)
    except ValueError as e:
        fine = all(np.isfinite(v).all() for v in m.get_weights())
        return ("clear error" if fine else "wrong"), str(e)[:150]
    return "wrong", f"history {{h.history['loss']}}"
''')
probe(5, "fit with NaN in y (mse)", '''
def probe():
    m = engine.Sequential([engine.layers.Input((4,)), engine.layers.Dense(1)]); m.compile("sgd", "mse")
    x = rng.standard_normal((32, 4)).astype(np.float32); y = np.ones((32, 1), np.float32); y[3] = np.nan
    h = m.fit(x, y, verbose=0)
    return "wrong", f"history {h.history['loss']}"
''')
probe(5, "fit diverging (lr 1e6)", '''
def probe():
    m = engine.Sequential([engine.layers.Input((4,)), engine.layers.Dense(1)])
    m.compile(engine.optimizers.SGD(1e6), "mse")
    x = rng.standard_normal((64, 4)).astype(np.float32); y = x.sum(1, keepdims=True) * 1e3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            m.fit(x, y, batch_size=8, epochs=50, verbose=0)
        except ValueError as e:
            fine = all(np.isfinite(v).all() for v in m.get_weights())
            return ("clear error" if fine else "wrong"), str(e)[:150]
    return "wrong", "no error"
''')
probe(5, "evaluate on zero samples", '''
def probe():
    v = mlp().evaluate(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    return "wrong", f"returned {v}"
''')
probe(5, "fit on zero samples", '''
def probe():
    h = mlp().fit(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), verbose=0)
    return "wrong", f"history {h.history}"
''')

# 6 -- foreign names --------------------------------------------------------------------
probe(6, "autotune cache entry naming strategy 'bogus'", '''
def probe():
    from kernels import registry
    p = kernels.conv_params((1, 3, 10, 10), (4, 3, 3, 3), padding=1)
    key = registry.tune_key((1, 3, 10, 10), (4, 3, 3, 3), p, "float32", "fwd")
    os.makedirs(os.environ["CONVLAB_CACHE_DIR"], exist_ok=True)
    json.dump({"format": registry.CACHE_FORMAT, "version": registry.CACHE_VERSION,
               "entries": {key: {"strategy": "bogus", "backend": "cython", "median_ms": 1}}},
              open(registry.cache_path(), "w"))
    with warnings.catch_warnings(record=True) as c:
        warnings.simplefilter("always")
        x, w = rng.random((1, 3, 10, 10)), rng.random((4, 3, 3, 3))
        ok = np.allclose(kernels.conv(x, w, padding=1), ref(kernels.conv, x, w, padding=1))
    n = sum("autotune cache" in str(m.message) for m in c)
    return ("correct" if ok and n == 1 else "wrong"), f"{n} warnings"
''', env={"CONVLAB_CACHE_DIR": "{TMP}/cache"})
probe(6, "CONVLAB_STRATEGY=bogus", '''
def probe():
    kernels.conv(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)))
    return "wrong", "ran"
''', env={"CONVLAB_STRATEGY": "bogus"})
probe(6, "CLI with CONVLAB_STRATEGY=bogus",
      cli_probe(["compare", "--shape", "1,1,8,8:1,3,3", "--repeat", "1", "--peak", "1",
                 "--baselines", "none"], 1, "CONVLAB_STRATEGY", env={"CONVLAB_STRATEGY": "bogus"}))

# 7 -- 2**31 elements, huge padding ------------------------------------------------------
probe(7, "select for a 2**32-element input", '''
def probe():
    c = kernels.select((1, 1, 2**16, 2**16), (1, 1, 3, 3))
    return ("correct" if c[1] == "numba" else "wrong"), str(c[:2])
''')
probe(7, "explicit cython on a 2**32-element input", '''
def probe():
    x = np.broadcast_to(np.float32(1), (1, 1, 2**16, 2**16))
    kernels.conv(x, np.ones((1, 1, 3, 3), np.float32), strategy="direct", backend="cython")
    return "wrong", "ran"
''')
for s, b in (("auto", "auto"), ("direct", "numba"), ("direct", "cython"), ("im2col", "numba"),
             ("im2col", "cython"), ("fft", "numba"), ("fft", "cython"), ("reference", "auto")):
    probe(7, f"padding=2**30, stride=2**30, 3 outputs, {s}/{b}", f'''
def probe():
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 1, 8); w = np.array([[[1, 10, 100]]], np.float32)
    y = kernels.conv(x, w, stride=2**30, padding=2**30, strategy={s!r}, backend={b!r})
    return ("correct" if y.ravel().tolist() == [0, 321, 0] else "wrong"), f"{{y.ravel()}}"
''')

# 8 -- read-only and non-contiguous ------------------------------------------------------
for s, b in (("direct", "numba"), ("direct", "cython"), ("im2col", "numba"), ("im2col", "cython"),
             ("fft", "numba"), ("fft", "cython"), ("winograd", "numba"), ("winograd", "cython")):
    for layout in ("mmap", "strided"):
        probe(8, f"{layout} x, {s}/{b}, forward + grad-weight", f'''
def probe():
    x0 = rng.standard_normal((2, 16, 10, 10)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    if {layout!r} == "mmap":
        np.save(os.path.join(TMP, "x.npy"), x0); x = np.load(os.path.join(TMP, "x.npy"), mmap_mode="r")
    else:
        big = np.repeat(x0, 2, axis=-1); x = big[..., ::2]
    y = kernels.conv(x, w, padding=1, strategy={s!r}, backend={b!r})
    gw = kernels.conv_grad_weight(np.ones_like(y), x, w.shape, padding=1, strategy={s!r},
                                  backend={b!r})
    ok = np.allclose(y, ref(kernels.conv, x0, w, padding=1), atol=1e-3) and np.allclose(
        gw, ref(kernels.conv_grad_weight, np.ones_like(y), x0, w.shape, padding=1), atol=1e-2)
    return ("correct" if ok else "wrong"), ""
''')

# 9 -- overflow -------------------------------------------------------------------------
for kw in ("stride=2**70", "padding=2**62", "dilation=2**70", "padding=2**70"):
    probe(9, f"conv {kw}", f'''
def probe():
    kernels.conv(np.ones((1, 1, 8), np.float32), np.ones((1, 1, 3), np.float32), {kw})
    return "wrong", "ran"
''')
probe(9, "pool stride=2**70", '''
def probe():
    kernels.pool(np.ones((1, 1, 8), np.float32), "max", 2, stride=2**70)
    return "wrong", "ran"
''')
probe(9, "CLI --shape 10**20,3,8,8:4,3,3",
      cli_probe(["compare", "--shape", "100000000000000000000,3,8,8:4,3,3"], 2, "--shape"))

# 10 -- threads and the cache -----------------------------------------------------------
probe(10, "kernels.use in one thread, auto in another", '''
def probe():
    p = kernels.conv_params((1, 16, 8, 8), (16, 16, 3, 3), padding=1)
    a, b, seen = threading.Event(), threading.Event(), {}
    def hold():
        with kernels.use(strategy="fft"):
            a.set(); b.wait(10)
    t = threading.Thread(target=hold); t.start(); a.wait(10)
    name, _, _ = kernels._dispatch("conv", p, (1, 16, 8, 8), (16, 16, 3, 3), np.float32,
                                   "auto", "auto", "cpu")
    b.set(); t.join()
    return ("correct" if name != "fft" else "wrong"), name
''')
probe(10, "3 concurrent cache writers x 16 entries", '''
def probe():
    code = ("import sys, kernels\\nfrom kernels import registry\\nt = int(sys.argv[1])\\n"
            "for i in range(16):\\n    x = (1, 1, 8 + 100 * t + i, 8)\\n"
            "    registry.record_tuned(x, (1, 1, 3, 3), kernels.conv_params(x, (1, 1, 3, 3)),"
            " 'float32', 'fwd', 'direct', 'numba', 1.0)\\n")
    ps = [subprocess.Popen([sys.executable, "-c", code, str(t)]) for t in range(3)]
    [p.wait() for p in ps]
    from kernels import registry
    n = len(json.load(open(registry.cache_path()))["entries"])
    return ("correct" if n == 48 else "wrong"), f"{n} of 48 entries"
''', env={"CONVLAB_CACHE_DIR": "{TMP}/cache10"})

# 11 -- kill -9 during save -------------------------------------------------------------
probe(11, "10 x kill -9 during model.save, then save", '''
def probe():
    target = os.path.join(TMP, "m.npz")
    code = ("import sys, engine\\nm = engine.Sequential([engine.layers.Input((1500,)), "
            "engine.layers.Dense(1500)])\\nprint('ready', flush=True)\\nwhile True:\\n"
            f"    m.save({target!r})\\n")
    for i in range(10):
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        p.stdout.readline(); time.sleep(0.05 + 0.04 * i); p.kill(); p.wait(); p.stdout.close()
    engine.Sequential([engine.layers.Input((3,)), engine.layers.Dense(2)]).save(target)
    left = [f for f in os.listdir(TMP) if f.endswith(".tmp")]
    engine.load_model(target)
    return ("correct" if not left else "wrong"), f"{len(left)} temporaries left"
''')

# 12 -- the smaller list ----------------------------------------------------------------
probe(12, "ModelCheckpoint {val_loss} without validation", '''
def probe():
    m = mlp(); cb = engine.training.ModelCheckpoint(os.path.join(TMP, "ck-{val_loss:.3f}.npz"))
    m.fit(rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 3, 16), verbose=0,
          callbacks=[cb])
    return "wrong", "ran"
''')
probe(12, "deeply nested architecture JSON", '''
def probe():
    p = os.path.join(TMP, "nest.npz")
    text = '{"format": "convlab-model", "version": 1, "config": ' + "[" * 100000 + "]" * 100000 + "}"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("__config__.npy", npy(np.frombuffer(text.encode(), np.uint8)))
    engine.load_model(p)
    return "wrong", "loaded"
''')
probe(12, "CONVLAB_WORKSPACE_MB=abc at import", '''
def probe():
    r = subprocess.run([sys.executable, "-c", "import kernels"], capture_output=True, text=True,
                       env=dict(os.environ, CONVLAB_WORKSPACE_MB="abc"))
    ok = r.returncode == 0 and "Traceback" not in r.stderr and "CONVLAB_WORKSPACE_MB" in r.stderr
    return ("correct" if ok else "wrong"), r.stderr.strip().splitlines()[-1][:150]
''')
probe(12, "--json to an unwritable path",
      cli_probe(["compare", "--suite", "quick", "--json", "/proc/none/x.json"], 2, "--json"))
probe(12, "train --optimizer bogus",
      cli_probe(["train", "--optimizer", "bogus"], 2, "unknown optimizer"))
probe(12, "autotune --model bogus",
      cli_probe(["autotune", "--model", "bogus"], 2, "unknown model"))
probe(12, "IDX dims (65536,) x 4", '''
def probe():
    p = os.path.join(TMP, "i"); open(p, "wb").write(idx_header(8, (65536,) * 4))
    try:
        engine.data.read_idx(p)
    except ValueError as e:
        ok = "18446744073709551636" in str(e)
        return ("clear error" if ok else "wrong"), str(e)[-80:]
    return "wrong", "read"
''')
probe(12, "IDX dims (2**32-1,) x 3", '''
def probe():
    p = os.path.join(TMP, "i"); open(p, "wb").write(idx_header(0x0E, (2**32 - 1,) * 3))
    try:
        engine.data.read_idx(p)
    except ValueError as e:
        ok = str(16 + (2**32 - 1) ** 3 * 8) in str(e)
        return ("clear error" if ok else "wrong"), str(e)[-80:]
    return "wrong", "read"
''')
for what, images, labels in (("1-D images", "np.zeros(10, np.uint8)", "np.zeros(10, np.uint8)"),
                             ("3-D labels", "np.zeros((10, 4, 4), np.uint8)",
                              "np.zeros((10, 2, 2), np.uint8)")):
    probe(12, f"load_mnist with {what}", f'''
def probe():
    for stem, a in (("train-images-idx3-ubyte", {images}), ("train-labels-idx1-ubyte", {labels}),
                    ("t10k-images-idx3-ubyte", {images}), ("t10k-labels-idx1-ubyte", {labels})):
        engine.data.write_idx(os.path.join(TMP, stem), a)
    engine.data.load_mnist(TMP)
    return "wrong", "loaded"
''')
probe(12, "save into a missing directory", '''
def probe():
    t = os.path.join(TMP, "no", "m.npz")
    try:
        engine.Sequential([engine.layers.Input((3,)), engine.layers.Dense(2)]).save(t)
    except FileNotFoundError as e:
        ok = ".tmp" not in str(e) and os.path.dirname(t) in str(e)
        return ("clear error" if ok else "wrong"), str(e)[:150]
    return "wrong", "saved"
''')
probe(12, "train_on_batch with string labels", '''
def probe():
    mlp().train_on_batch(np.zeros((2, 4), np.float32), np.array(["a", "b"]))
    return "wrong", "ran"
''')
probe(12, 'model.save("model.h5")', '''
def probe():
    os.umask(0o022)
    with warnings.catch_warnings(record=True) as c:
        warnings.simplefilter("always")
        engine.Sequential([engine.layers.Input((3,)), engine.layers.Dense(2)]).save(
            os.path.join(TMP, "model.h5"))
    mode = os.stat(os.path.join(TMP, "model.h5")).st_mode & 0o777
    ok = any("HDF5" in str(m.message) for m in c) and mode == 0o644
    return ("correct" if ok else "wrong"), f"mode {oct(mode)}, {len(c)} warnings"
''')


def run_probe(p):
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=ROOT)
        for k, v in (p["env"] or {}).items():
            env[k] = v.replace("{TMP}", tmp)
        code = PRELUDE + p["body"] + RUNNER
        nproc = p["nproc"]

        def limit():
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (MEM, MEM))
            if nproc:
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

        t = time.perf_counter()
        try:
            r = subprocess.run([sys.executable, "-c", code, tmp], cwd=ROOT, env=env,
                               preexec_fn=limit, capture_output=True, text=True,
                               timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return {"status": "crash", "detail": f"hang: over {TIMEOUT} s", "rss": None,
                    "s": TIMEOUT}
        s = time.perf_counter() - t
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("PROBE-RESULT ")]
        if not line:
            why = f"exit {r.returncode}" if r.returncode >= 0 else f"signal {-r.returncode}"
            tail = (r.stderr.strip().splitlines() or [""])[-1][:150]
            return {"status": "crash", "detail": f"{why}: {tail}", "rss": None, "s": s}
        out = json.loads(line[-1][len("PROBE-RESULT "):])
        out["s"] = s
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--item", type=int, action="append", help="only these items")
    args = ap.parse_args()
    totals = {}
    for p in PROBES:
        if args.item and p["item"] not in args.item:
            continue
        r = run_probe(p)
        totals[r["status"]] = totals.get(r["status"], 0) + 1
        rss = f"{r['rss']:.0f} MiB" if r.get("rss") else "-"
        print(f"{p['item']:>2}  {r['status']:<13} {r['s']:6.1f} s {rss:>9}  {p['name']}: "
              f"{r['detail']}", flush=True)
    order = ("clear error", "correct", "wrong", "crash", "unclear error")
    print("\n" + ", ".join(f"{totals.get(k, 0)} {k}" for k in order) +
          f" ({sum(totals.values())} probes)")


if __name__ == "__main__":
    main()
