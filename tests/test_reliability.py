"""Hostile and edge inputs (issue 13): every numbered item has tests here.

Cases that could kill the interpreter or take gigabytes run in a child process with a
timeout and an address-space limit (resource.setrlimit(RLIMIT_AS)), so a regression shows up
as a failed test, not as a dead or swapping test run.
"""
import gzip
import io
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import zipfile

import numpy as np
import pytest

import engine
import kernels
from engine.io import ModelFileError
from kernels import config, registry
from kernels.strategies import fft, winograd

from conftest import conv_pairs, naive_conv, pair_id

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 2**30


# --------------------------------------------------------------------------------------
# a child process with a timeout and a memory limit
# --------------------------------------------------------------------------------------

def run_limited(code, *, mem_gib=3.0, timeout=240, env=None, args=None):
    """Run ``code`` (python -c) or ``args`` (a python -m command line) in a child process
    limited to ``mem_gib`` GiB of address space; returns the CompletedProcess."""
    limit = int(mem_gib * GIB)

    def preexec():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    full_env = dict(os.environ, PYTHONPATH=ROOT, CONVLAB_NUM_THREADS="2")
    full_env.update(env or {})
    cmd = [sys.executable] + (args if args is not None else ["-c", textwrap.dedent(code)])
    return subprocess.run(cmd, cwd=ROOT, env=full_env, preexec_fn=preexec,
                          capture_output=True, text=True, timeout=timeout)


def child_json(code, **kw):
    """Run ``code``, which prints one JSON line last; returns it (the child must exit 0)."""
    proc = run_limited(code, **kw)
    assert proc.returncode == 0, f"child died ({proc.returncode}): {proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# helper source shared by child processes: max RSS in MiB
_RSS = """
import resource, json
def rss_mib():
    # VmHWM: this process's peak resident memory.  ru_maxrss would do, except that Linux
    # carries it across execve from the forking parent (pytest, hundreds of MiB late in a run).
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""


# --------------------------------------------------------------------------------------
# 1. thread counts that kill the interpreter
# --------------------------------------------------------------------------------------

def test_item01_huge_thread_count_is_clamped_and_the_process_survives():
    out = child_json(_RSS + """
import warnings, numpy as np, kernels, engine
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    kernels.set_num_threads(100000)
    engine.set_num_threads(70000)
n = kernels.get_num_threads()
x = np.random.rand(2, 3, 16, 16).astype(np.float32)
w = np.random.rand(4, 3, 3, 3).astype(np.float32)
ys = [kernels.conv(x, w, strategy=s, backend="cython") for s in ("direct", "winograd")
      if s != "winograd"]
ys.append(kernels.conv(np.random.rand(2, 16, 8, 8).astype(np.float32),
                       np.random.rand(16, 16, 3, 3).astype(np.float32),
                       strategy="winograd", backend="cython"))
p = kernels.pool(x, "max", 2, backend="cython")
print(json.dumps({"n": n, "warned": [str(c.message) for c in caught]}))
""")
    assert 1 <= out["n"] <= (os.cpu_count() or 1)
    assert any("100000 threads requested" in m for m in out["warned"])


def test_item01_env_and_cli_thread_counts_are_clamped():
    out = child_json("""
import json, warnings, kernels, numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    n = kernels.get_num_threads()
kernels.conv(np.ones((1, 1, 8, 8), np.float32), np.ones((1, 1, 3, 3), np.float32),
             strategy="direct", backend="cython")
print(json.dumps({"n": n, "warned": [str(c.message) for c in caught]}))
""", env={"CONVLAB_NUM_THREADS": "100000"})
    assert out["n"] <= (os.cpu_count() or 1)
    assert any("CONVLAB_NUM_THREADS" in m for m in out["warned"])
    proc = run_limited(None, args=["-m", "bench.cli", "compare", "--shape", "1,1,8,8:1,3,3",
                                   "--strategies", "direct", "--backends", "cython",
                                   "--repeat", "1", "--peak", "1", "--threads", "100000",
                                   "--baselines", "none"])
    assert proc.returncode == 0, proc.stderr


def test_item01_process_limit_lowers_the_thread_ceiling(monkeypatch):
    import resource

    from kernels import runtime as threads
    monkeypatch.setattr(threads, "_cores", lambda: 256)
    monkeypatch.setattr(resource, "getrlimit", lambda what: (200, 200))
    assert threads.max_threads() == 50


# --------------------------------------------------------------------------------------
# 2. small files that take gigabytes
# --------------------------------------------------------------------------------------

def _idx_header(code, shape):
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes()


def test_item02_read_idx_gzip_bomb_is_refused_within_memory(tmp_path):
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:    # header: 10 bytes; data: 512 MiB
        f.write(_idx_header(0x08, (10,)))
        chunk = bytes(1 << 24)
        for _ in range(32):
            f.write(chunk)
    assert path.stat().st_size < 8 << 20
    out = child_json(_RSS + f"""
import engine
try:
    engine.data.read_idx({str(path)!r}); err = None
except ValueError as e:
    err = str(e)
print(json.dumps({{"err": err, "rss": rss_mib()}}))
""", mem_gib=2.0)
    assert out["err"] and "longer than its header says" in out["err"]
    assert out["rss"] < 300


def test_item02_read_idx_header_promises_more_than_the_file_holds(tmp_path):
    plain = tmp_path / "huge-claim"
    plain.write_bytes(_idx_header(0x0D, (10**6, 10**6)) + bytes(64))
    gz = tmp_path / "huge-claim.gz"
    with gzip.open(gz, "wb") as f:
        f.write(_idx_header(0x0E, (2**31, 4)) + bytes(4096))
    out = child_json(_RSS + f"""
import engine
errs = []
for p in ({str(plain)!r}, {str(gz)!r}, "/dev/zero"):
    try:
        engine.data.read_idx(p); errs.append(None)
    except ValueError as e:
        errs.append(str(e))
print(json.dumps({{"errs": errs, "rss": rss_mib()}}))
""", mem_gib=2.0, timeout=60)
    plain_err, gz_err, zero_err = out["errs"]
    assert "truncated" in plain_err and "4000000000012 bytes" in plain_err
    assert "truncated" in gz_err
    assert "not an IDX file" in zero_err
    assert out["rss"] < 600


def test_item02_idx_symlink_to_dev_zero(tmp_path):
    link = tmp_path / "zero-idx"
    os.symlink("/dev/zero", link)
    with pytest.raises(ValueError, match="not an IDX file"):
        engine.data.read_idx(link)


def _npy_member(shape, dtype="<f4", data=b""):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue() + data


def _small_model():
    model = engine.Sequential([engine.layers.Input((4,)), engine.layers.Dense(3)])
    return model


def _config_member(model):
    meta = {"format": "convlab-model", "version": 1, "class_name": type(model).__name__,
            "config": model.get_config(), "weights": [], "training_config": None}
    return np.frombuffer(json.dumps(meta).encode(), np.uint8)


def _write_npz(path, members, compress=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compress) as zf:
        for name, payload in members.items():
            if isinstance(payload, np.ndarray):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, payload, allow_pickle=False)
                payload = buf.getvalue()
            zf.writestr(name + ".npy", payload)


def test_item02_load_model_zip_member_that_inflates_is_not_read(tmp_path):
    path = tmp_path / "inflates.npz"
    cfg = _config_member(_small_model())
    # w00000 inflates to 512 MiB of zeros (compressed ~0.5 MiB); the architecture needs 12
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        buf = io.BytesIO()
        np.lib.format.write_array(buf, cfg, allow_pickle=False)
        zf.writestr("__config__.npy", buf.getvalue())
        with zf.open("w00000.npy", "w", force_zip64=True) as f:
            f.write(_npy_member((2**27,)))
            chunk = bytes(1 << 24)
            for _ in range(32):
                f.write(chunk)
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.zeros(3, np.float32))
        zf.writestr("w00001.npy", buf.getvalue())
    out = child_json(_RSS + f"""
import engine, time
t = time.perf_counter()
try:
    engine.load_model({str(path)!r}); err = None
except engine.io.ModelFileError as e:
    err = str(e)
print(json.dumps({{"err": err, "rss": rss_mib(), "s": time.perf_counter() - t}}))
""", mem_gib=2.0)
    assert out["err"] and "weight 0 has shape (134217728,)" in out["err"]
    assert out["rss"] < 300


def test_item02_load_model_architecture_larger_than_the_file(tmp_path):
    path = tmp_path / "big-arch.npz"
    cfg = json.loads(_config_member(engine.Sequential(
        [engine.layers.Input((20,)), engine.layers.Dense(20)])).tobytes())
    cfg["config"]["input_shape"] = [20000]
    cfg["config"]["layers"][0]["config"]["units"] = 20000      # 1.6 GB of weights
    _write_npz(path, {"__config__": np.frombuffer(json.dumps(cfg).encode(), np.uint8)})
    assert path.stat().st_size < 4096
    out = child_json(_RSS + f"""
import engine
try:
    engine.load_model({str(path)!r}); err = None
except engine.io.ModelFileError as e:
    err = str(e)
print(json.dumps({{"err": err, "rss": rss_mib()}}))
""", mem_gib=2.0)
    assert out["err"] and "does not match its architecture" in out["err"]
    assert "400000000 elements" in out["err"]
    assert out["rss"] < 600


def test_item02_npy_header_claiming_1e12_elements(tmp_path):
    path = tmp_path / "claims.npz"
    _write_npz(path, {"__config__": _config_member(_small_model()),
                      "w00000": _npy_member((10**12,), data=bytes(64)),
                      "w00001": np.zeros(3, np.float32)})
    out = child_json(_RSS + f"""
import engine
try:
    engine.load_model({str(path)!r}); err = None
except engine.io.ModelFileError as e:
    err = str(e)
print(json.dumps({{"err": err, "rss": rss_mib()}}))
""", mem_gib=2.0)
    assert out["err"] and "is corrupted" in out["err"] and "(1000000000000,)" in out["err"]


def test_item02_deflate_ratio_beyond_1032_is_refused(tmp_path):
    saved, good = tmp_path / "saved.npz", tmp_path / "good.npz"
    _small_model().save(saved)
    with np.load(saved) as npz:
        _write_npz(good, {k: npz[k] for k in npz.files}, zipfile.ZIP_DEFLATED)
    engine.load_model(good)
    data = bytearray(good.read_bytes())
    # the central-directory record of w00000.npy: declare 1 GiB uncompressed (offset 24)
    pos = data.find(b"PK\x01\x02")
    while data[pos + 46:pos + 46 + 10] != b"w00000.npy":
        pos = data.find(b"PK\x01\x02", pos + 4)
        assert pos >= 0
    data[pos + 24:pos + 28] = (1 << 30).to_bytes(4, "little")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="deflate cannot expand more than 1032:1"):
        engine.load_model(bad)


# --------------------------------------------------------------------------------------
# 3. Inf and NaN stay where the direct definition puts them
# --------------------------------------------------------------------------------------

STRATS = ["auto", "direct", "im2col", "fft", "winograd"]


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("strategy", STRATS)
@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_item03_non_finite_stays_put(bad, strategy, backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    xb, gyb = x.copy(), gy.copy()
    xb[0, 3, 5, 7] = bad
    gyb[1, 2, 4, 4] = bad
    be = "auto" if strategy == "auto" else backend
    cases = [
        (kernels.conv(xb, w, padding=1, strategy=strategy, backend=be),
         naive_or_ref("fwd", xb, w)),
        (kernels.conv_grad_input(gyb, w, x.shape, padding=1, strategy=strategy, backend=be),
         naive_or_ref("gi", gyb, w)),
        (kernels.conv_grad_weight(gy, xb, w.shape, padding=1, strategy=strategy, backend=be),
         naive_or_ref("gw", gy, xb)),
    ]
    for got, want in cases:
        bad_got, bad_want = ~np.isfinite(got), ~np.isfinite(want)
        assert bad_want.sum() > 0
        np.testing.assert_array_equal(bad_got, bad_want)
        np.testing.assert_allclose(got[~bad_want], want[~bad_want], rtol=2e-3, atol=2e-3)


def naive_or_ref(op, a, b):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if op == "fwd":
        return kernels.conv(a64, b64, padding=1, strategy="reference")
    if op == "gi":
        return kernels.conv_grad_input(a64, b64, (2, 16, 12, 12), padding=1,
                                       strategy="reference")
    return kernels.conv_grad_weight(a64, b64, (16, 16, 3, 3), padding=1, strategy="reference")


def test_item03_one_inf_touches_the_144_outputs_of_its_windows():
    x = np.zeros((2, 16, 12, 12), np.float32)
    x[0, 3, 5, 7] = np.inf
    w = np.ones((16, 16, 3, 3), np.float32)
    for s in STRATS:
        y = kernels.conv(x, w, padding=1, strategy=s)
        assert (~np.isfinite(y)).sum() == 16 * 9, s


# --------------------------------------------------------------------------------------
# 4. FFT must not lose small values beside large ones
# --------------------------------------------------------------------------------------

def _loud_and_quiet(n=2**18, k=255, seed=4):
    rng = np.random.default_rng(seed)
    x = np.empty((1, 1, n), np.float32)
    x[..., :n // 2] = 1e4 * (1 + rng.random(n // 2))
    x[..., n // 2:] = 1e-4 * (1 + rng.random(n // 2))
    w = rng.random((1, 1, k)).astype(np.float32)
    return x, w


@pytest.mark.parametrize("strategy,backend", [("auto", "auto"), ("fft", "numba"),
                                              ("fft", "cython")])
def test_item04_quiet_half_keeps_its_precision(strategy, backend):
    x, w = _loud_and_quiet()
    n, k = x.shape[-1], w.shape[-1]
    ref = kernels.conv(x.astype(np.float64), w.astype(np.float64), strategy="direct")
    y = kernels.conv(x, w, strategy=strategy, backend=backend)
    quiet = slice(n // 2 + k, None)
    rel = np.abs(y[..., quiet] - ref[..., quiet]).max() / np.abs(ref[..., quiet]).max()
    assert rel < 1e-5, rel
    gy = np.ones_like(ref, dtype=np.float32)
    gy[..., :n // 2] = 1e4
    gy[..., n // 2:] = 1e-4
    gref = kernels.conv_grad_input(gy.astype(np.float64), w.astype(np.float64), x.shape,
                                   strategy="direct")
    gx = kernels.conv_grad_input(gy, w, x.shape, strategy=strategy, backend=backend)
    q = slice(n // 2 + 2 * k, None)
    assert np.abs(gx[..., q] - gref[..., q]).max() / np.abs(gref[..., q]).max() < 1e-5


def test_item04_unguarded_float32_fft_does_lose_them_and_region_error_shows_it():
    from bench.measure import max_rel_err, region_rel_err
    x, w = _loud_and_quiet(n=2**14, k=63)
    p3 = kernels.conv_params(x.shape, w.shape).as3d()
    x5, w5 = kernels.to5d(x), kernels.to5d(w)
    raw = fft._forward(x5, w5, p3, "numba").reshape(1, 1, -1)     # the transform alone
    ref = kernels.conv(x.astype(np.float64), w.astype(np.float64), strategy="reference")
    assert max_rel_err(raw, ref) < 1e-5             # norm-wise: looks fine
    assert region_rel_err(raw, ref) > 1e-2          # region-wise: the quiet half is lost
    guarded = kernels.conv(x, w, strategy="fft", backend="numba")
    assert region_rel_err(guarded, ref) < 1e-5


def test_item04_ordinary_data_keeps_the_float32_transform():
    rng = np.random.default_rng(5)
    x5 = rng.standard_normal((2, 3, 1, 32, 32)).astype(np.float32)
    w5 = rng.standard_normal((4, 3, 1, 7, 7)).astype(np.float32)
    assert fft._route(x5, (w5,), (1, 7, 7)) == "fft"
    images = (rng.random((2, 1, 1, 28, 28)) * (rng.random((2, 1, 1, 28, 28)) > 0.7))
    assert fft._route(images.astype(np.float32), (w5,), (1, 5, 5)) == "fft"
    x5[0, 0, 0, :16] *= 1e6
    assert fft._route(x5, (w5,), (1, 7, 7)) == "float64"
    x5[0, 0, 0, :16] *= 1e30
    assert fft._route(x5.astype(np.float64), (w5,), (1, 7, 7)) == "direct"


def test_item04_region_rel_err_closed_form():
    from bench.measure import region_rel_err
    ref = np.array([[[1e4, 1e4, 1e-4, 1e-4]]])
    assert region_rel_err(ref, ref) == 0.0
    assert region_rel_err(ref + [[[0, 0, 5e-5, 0]]], ref, regions=2) == pytest.approx(0.5)
    assert region_rel_err(np.zeros((1, 1, 4)) + [[[0, 0, 0, 1]]], np.zeros((1, 1, 4))) == 1.0


# --------------------------------------------------------------------------------------
# 5. fit must not train silently into NaN; no samples is an error
# --------------------------------------------------------------------------------------

def _mlp(lr=0.01):
    engine.set_seed(0)
    m = engine.Sequential([engine.layers.Input((4,)), engine.layers.Dense(8, activation="relu"),
                           engine.layers.Dense(3)])
    m.compile(engine.optimizers.SGD(lr), "sparse_categorical_crossentropy")
    return m


def _xy(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_item05_non_finite_inputs_are_refused_naming_the_sample(bad):
    m = _mlp()
    x, y = _xy()
    x[17, 2] = bad
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match=r"fit: x holds non-finite values .* index \(17, 2\)"):
        m.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="evaluate: x holds non-finite"):
        m.evaluate(x, y)
    with pytest.raises(ValueError, match="train_on_batch: x holds non-finite"):
        m.train_on_batch(x, y)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_item05_non_finite_targets_are_refused():
    m = engine.Sequential([engine.layers.Input((4,)), engine.layers.Dense(1)])
    m.compile("sgd", "mse")
    x, _ = _xy()
    y = np.ones((32, 1), np.float32)
    y[5, 0] = np.nan
    with pytest.raises(ValueError, match=r"fit: y holds non-finite values .* index \(5, 0\)"):
        m.fit(x, y, verbose=0)


def test_item05_divergence_stops_before_the_update_keeping_finite_weights():
    m = engine.Sequential([engine.layers.Input((4,)), engine.layers.Dense(1)])
    m.compile(engine.optimizers.SGD(1e6), "mse")
    x, _ = _xy(64)
    y = (x.sum(axis=1, keepdims=True) * 1e3).astype(np.float32)
    with pytest.raises(ValueError, match=r"fit: epoch \d+, batch \d+: the loss is (nan|inf)"):
        m.fit(x, y, batch_size=8, epochs=50, verbose=0)
    assert all(np.isfinite(w).all() for w in m.get_weights())


def test_item05_zero_samples_are_errors():
    m = _mlp()
    x, y = np.zeros((0, 4), np.float32), np.zeros((0,), np.int64)
    with pytest.raises(ValueError, match="evaluate: .*no samples"):
        m.evaluate(x, y)
    with pytest.raises(ValueError, match="fit: .*no samples"):
        m.fit(x, y, verbose=0)


# --------------------------------------------------------------------------------------
# 6. foreign strategy names
# --------------------------------------------------------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLAB_CACHE_DIR", str(tmp_path / "convlab"))
    monkeypatch.setattr(config, "USE_AUTOTUNE", True)
    registry.reload_cache()
    yield tmp_path / "convlab" / "autotune.json"
    registry.reload_cache()


X6, W6 = (1, 3, 10, 10), (4, 3, 3, 3)


def test_item06_cache_entry_with_unknown_strategy_is_ignored_with_one_warning(cache):
    p = kernels.conv_params(X6, W6, padding=1)
    key = registry.tune_key(X6, W6, p, "float32", "fwd")
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"format": registry.CACHE_FORMAT,
                                 "version": registry.CACHE_VERSION,
                                 "entries": {key: {"strategy": "bogus", "backend": "cython",
                                                   "median_ms": 1.0}}}))
    registry.reload_cache()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        choice = kernels.select(X6, W6, padding=1)
        y = kernels.conv(np.ones(X6), np.ones(W6), padding=1)
        kernels.select(X6, W6, padding=2)
    assert not choice[2].startswith("measured")
    assert y.shape == (1, 4, 10, 10)
    msgs = [str(c.message) for c in caught if "autotune cache" in str(c.message)]
    assert len(msgs) == 1 and "bogus/cython" in msgs[0]


def test_item06_unknown_strategy_variable_is_refused_naming_it(monkeypatch):
    monkeypatch.setattr(config, "FORCE_STRATEGY", "bogus")
    with pytest.raises(ValueError, match="CONVLAB_STRATEGY='bogus' is not a strategy"):
        kernels.conv(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)))
    monkeypatch.setattr(config, "FORCE_STRATEGY", None)
    monkeypatch.setattr(config, "FORCE_BACKEND", "bogus")
    with pytest.raises(ValueError, match="CONVLAB_BACKEND='bogus' is not a backend"):
        kernels.conv(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), strategy="direct")


def test_item06_cli_names_the_variable():
    proc = run_limited(None, args=["-m", "bench.cli", "compare", "--shape", "1,1,8,8:1,3,3",
                                   "--repeat", "1", "--peak", "1", "--baselines", "none"],
                       env={"CONVLAB_STRATEGY": "bogus"})
    assert proc.returncode == 1
    assert "CONVLAB_STRATEGY='bogus'" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------------------
# 7. inputs over 2**31 elements, padding far beyond the kernel
# --------------------------------------------------------------------------------------

def test_item07_selection_knows_the_cython_element_limit():
    big, small = (1, 1, 2**16, 2**16), (1, 1, 2**15, 2**15)
    assert kernels.select(big, (1, 1, 3, 3))[1] == "numba"
    assert kernels.select(small, (1, 1, 3, 3))[1] == "cython"
    # the padded copy counts too: 2**31 elements only after "same" padding
    assert kernels.select((1, 1, 46341, 46340), (1, 1, 3, 3), padding=1)[1] == "numba"


def test_item07_limit_applies_to_measured_forced_and_explicit_strategy_choices(cache,
                                                                             monkeypatch):
    """The device-aware selection keeps the Cython limit on the cpu column wherever a backend
    is picked: a measured cython entry for a shape beyond it is passed over, CONVLAB_BACKEND=
    cython and an explicit strategy with backend="auto" fall to numba, the cuda column keeps
    its own choice (no allocation: shapes only)."""
    big, w = (1, 1, 2**16, 2**16), (1, 1, 3, 3)
    p = kernels.conv_params(big, w)
    registry.record_tuned(big, w, p, "float32", "fwd", "direct", "cython", 1.0)
    s, b, reason = kernels.select(big, w)
    assert b == "numba" and not (s == "direct" and reason.startswith("measured"))
    monkeypatch.setattr(config, "FORCE_BACKEND", "cython")
    assert kernels.select(big, w)[1] == "numba"
    assert kernels.select((1, 1, 64, 64), w)[1] == "cython"
    name, _, be = kernels._dispatch("conv", p, big, w, np.float32, "im2col", "auto", "cpu")
    assert (name, be) == ("im2col", "numba")
    with pytest.raises(ValueError, match="2\\*\\*31 - 1"):
        kernels._dispatch("conv", p, big, w, np.float32, "im2col", "cython", "cpu")


def test_item07_explicit_cython_on_a_huge_input_is_refused_before_any_copy():
    out = child_json(_RSS + """
import numpy as np, kernels
x = np.broadcast_to(np.float32(1), (1, 1, 2**16, 2**16))
w = np.ones((1, 1, 3, 3), np.float32)
errs = []
for call in (lambda: kernels.conv(x, w, strategy="direct", backend="cython"),
             lambda: kernels.pool(x, "max", 2, backend="cython")):
    try:
        call(); errs.append(None)
    except ValueError as e:
        errs.append(str(e))
print(json.dumps({"errs": errs, "rss": rss_mib()}))
""", mem_gib=2.0)
    for e in out["errs"]:
        assert e and "backend 'cython'" in e and "2**31 - 1" in e and "xp" not in e.split(":")[0]


@pytest.mark.parametrize("pair", conv_pairs(), ids=pair_id)
def test_item07_huge_padding_and_stride_cost_nothing(pair):
    strategy, backend = pair
    if strategy == "winograd" or backend == "cuda":
        pytest.skip("winograd needs stride 1; cuda is checked in test_cuda")
    out = child_json(_RSS + f"""
import numpy as np, kernels
x = np.arange(8, dtype=np.float32).reshape(1, 1, 8) + 1
w = np.array([[[1, 10, 100]]], np.float32)
kw = dict(stride=2**30, padding=2**30, strategy={strategy!r}, backend={backend!r})
y = kernels.conv(x, w, **kw)
gx = kernels.conv_grad_input(np.ones_like(y), w, x.shape, **kw)
gw = kernels.conv_grad_weight(np.ones_like(y), x, w.shape, **kw)
print(json.dumps({{"y": y.ravel().tolist(), "gx": gx.ravel().tolist(),
                  "gw": gw.ravel().tolist(), "rss": rss_mib()}}))
""", mem_gib=2.5)
    # out = 3; output 1 starts at padded index 2**30 = x[0]: 1 + 20 + 300
    assert out["y"] == [0.0, 321.0, 0.0]
    assert out["gx"] == [1, 10, 100, 0, 0, 0, 0, 0]
    assert out["gw"] == [1, 2, 3]
    assert out["rss"] < 800


def test_item07_trimmed_padding_matches_the_formula():
    rng = np.random.default_rng(7)
    for _ in range(60):
        n, k, d = (int(v) for v in rng.integers(1, [9, 4, 3]))
        s = int(rng.integers(1, 6))
        lo, hi = (int(v) for v in rng.integers(0, 14, 2))
        if n + lo + hi < d * (k - 1) + 1:
            continue
        x = rng.standard_normal((2, 3, n))
        w = rng.standard_normal((2, 3, k))
        kw = dict(stride=s, padding=((lo, hi),), dilation=d)
        want = naive_conv(x, w, (s,), ((lo, hi),), (d,), 1)
        np.testing.assert_allclose(kernels.conv(x, w, **kw), want, atol=1e-12)
        gy = rng.standard_normal(want.shape)
        # gradients from the explicitly padded problem (no trimming applies at padding 0)
        xp = np.pad(x, ((0, 0), (0, 0), (lo, hi)))
        gxp = kernels.conv_grad_input(gy, w, xp.shape, stride=s, dilation=d,
                                      strategy="reference")
        np.testing.assert_allclose(kernels.conv_grad_input(gy, w, x.shape, **kw),
                                   gxp[:, :, lo:lo + n], atol=1e-12)
        np.testing.assert_allclose(
            kernels.conv_grad_weight(gy, x, w.shape, **kw),
            kernels.conv_grad_weight(gy, xp, w.shape, stride=s, dilation=d,
                                     strategy="reference"), atol=1e-12)


# --------------------------------------------------------------------------------------
# 8. read-only and non-contiguous inputs, every strategy x backend
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["mmap-readonly", "strided", "fortran", "negative"])
@pytest.mark.parametrize("pair", [p for p in conv_pairs() if p[1] != "cuda"], ids=pair_id)
def test_item08_every_layout_is_taken(pair, layout, tmp_path):
    strategy, backend = pair
    rng = np.random.default_rng(8)
    x0 = rng.standard_normal((2, 16, 10, 10)).astype(np.float32)
    w0 = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    gy0 = rng.standard_normal((2, 16, 10, 10)).astype(np.float32)

    def lay(a, name):
        if layout == "mmap-readonly":
            np.save(tmp_path / f"{name}.npy", a)
            return np.load(tmp_path / f"{name}.npy", mmap_mode="r")
        if layout == "strided":
            big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
            big[..., ::2] = a
            return big[..., ::2]
        if layout == "fortran":
            return np.asfortranarray(a)
        rev = np.ascontiguousarray(a[..., ::-1])
        return rev[..., ::-1]

    x, w, gy = lay(x0, "x"), lay(w0, "w"), lay(gy0, "gy")
    kw = dict(padding=1, strategy=strategy, backend=backend)
    ref = dict(padding=1, strategy="reference")
    np.testing.assert_allclose(kernels.conv(x, w, **kw), kernels.conv(x0, w0, **ref),
                               rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(kernels.conv_grad_input(gy, w, x.shape, **kw),
                               kernels.conv_grad_input(gy0, w0, x0.shape, **ref),
                               rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(kernels.conv_grad_weight(gy, x, w.shape, **kw),
                               kernels.conv_grad_weight(gy0, x0, w0.shape, **ref),
                               rtol=1e-3, atol=2e-3)
    p = kernels.pool(x, "max", 2, backend=backend)
    np.testing.assert_array_equal(p, kernels.pool(x0, "max", 2, backend=backend))


# --------------------------------------------------------------------------------------
# 9. overflowing stride / padding, CLI exit codes
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw,pattern", [
    (dict(stride=2**70), "stride must be <= 2\\*\\*62"),
    (dict(dilation=2**70), "dilation must be <= 2\\*\\*62"),
    (dict(padding=2**70), "padding must be <= 2\\*\\*62"),
    (dict(padding=2**62), "output would have .* elements"),
])
def test_item09_overflowing_parameters_are_clear_errors(kw, pattern):
    x, w = np.ones((1, 1, 8), np.float32), np.ones((1, 1, 3), np.float32)
    with pytest.raises(ValueError, match=pattern):
        kernels.conv(x, w, **kw)
    with pytest.raises(ValueError, match=pattern.split(" must")[0].split(" would")[0]):
        kernels.select(x.shape, w.shape, **kw)


def test_item09_pool_overflow_is_a_clear_error():
    with pytest.raises(ValueError, match="stride must be <= 2\\*\\*62"):
        kernels.pool(np.ones((1, 1, 8), np.float32), "max", 2, stride=2**70)


def test_item09_cli_huge_shape_exits_2():
    proc = run_limited(None, args=["-m", "bench.cli", "compare", "--shape",
                                   "100000000000000000000,3,8,8:4,3,3"])
    assert proc.returncode == 2, proc.stderr
    assert "--shape" in proc.stderr
    proc = run_limited(None, args=["-m", "bench.cli", "compare", "--shape",
                                   "100000,3,1000,1000:4,3,3"])
    assert proc.returncode == 2 and "GiB" in proc.stderr


# --------------------------------------------------------------------------------------
# 10. kernels.use is thread-local; concurrent cache writers merge
# --------------------------------------------------------------------------------------

def test_item10_use_is_thread_local():
    p = kernels.conv_params((1, 16, 8, 8), (16, 16, 3, 3), padding=1)
    inside, outside = threading.Event(), threading.Event()
    seen = {}

    def holder():
        with kernels.use(strategy="fft"):
            seen["holder"] = kernels._dispatch("conv", p, (1, 16, 8, 8), (16, 16, 3, 3),
                                               np.float32, "auto", "auto", "cpu")[0]
            inside.set()
            outside.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    inside.wait(10)
    other = kernels._dispatch("conv", p, (1, 16, 8, 8), (16, 16, 3, 3), np.float32, "auto",
                              "auto", "cpu")[0]
    outside.set()
    t.join()
    assert seen["holder"] == "fft"
    assert other != "fft"


def test_item10_concurrent_cache_writers_lose_nothing(tmp_path):
    code = """
import sys, kernels
from kernels import registry
tag = int(sys.argv[1])
for i in range(24):
    x = (1, 1, 8 + tag * 100 + i, 8)
    p = kernels.conv_params(x, (1, 1, 3, 3))
    registry.record_tuned(x, (1, 1, 3, 3), p, "float32", "fwd", "direct", "numba", 1.0)
"""
    env = dict(os.environ, PYTHONPATH=ROOT, CONVLAB_CACHE_DIR=str(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(t)], cwd=ROOT, env=env)
             for t in range(3)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    doc = json.loads((tmp_path / "autotune.json").read_text())
    assert len(doc["entries"]) == 72


# --------------------------------------------------------------------------------------
# 11. kill -9 during save leaves no temporary files
# --------------------------------------------------------------------------------------

def test_item11_killed_savers_leave_no_temporaries(tmp_path):
    target = tmp_path / "model.npz"
    saver = f"""
import sys, engine
m = engine.Sequential([engine.layers.Input((1500,)), engine.layers.Dense(1500)])
sys.stdout.write("ready\\n"); sys.stdout.flush()
while True:
    m.save({str(target)!r})
"""
    env = dict(os.environ, PYTHONPATH=ROOT)
    kills = 0
    for delay in (0.05, 0.13, 0.21, 0.3, 0.45):
        proc = subprocess.Popen([sys.executable, "-c", saver], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        kills += 1
    m = engine.Sequential([engine.layers.Input((3,)), engine.layers.Dense(2)])
    m.save(target)
    left = [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert left == [] and kills == 5
    engine.load_model(target)


def test_item11_a_live_writers_temporary_is_kept(tmp_path):
    from kernels._io import remove_stale_temporaries
    target = tmp_path / "m.npz"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".m.npz.pid{dead.pid}.abc.tmp"
    live = tmp_path / f".m.npz.pid{os.getppid()}.abc.tmp"
    other = tmp_path / f".other.npz.pid{dead.pid}.abc.tmp"
    for f in (stale, live, other):
        f.write_bytes(b"x")
    assert remove_stale_temporaries(target) == [str(stale)]
    assert live.exists() and other.exists()


# --------------------------------------------------------------------------------------
# 12. the smaller list
# --------------------------------------------------------------------------------------

def test_item12_checkpoint_naming_an_unlogged_field(tmp_path):
    m = _mlp()
    x, y = _xy()
    cb = engine.training.ModelCheckpoint(str(tmp_path / "ck-{val_loss:.3f}.npz"))
    with pytest.raises(ValueError, match=r"names the field \{val_loss\}.*available: epoch, loss"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[cb])


def test_item12_deeply_nested_architecture_is_a_model_file_error(tmp_path):
    path = tmp_path / "nested.npz"
    text = ('{"format": "convlab-model", "version": 1, "class_name": "Sequential", "config": '
            + "[" * 100000 + "]" * 100000 + "}")
    _write_npz(path, {"__config__": np.frombuffer(text.encode(), np.uint8)})
    with pytest.raises(ModelFileError, match="nested too deeply"):
        engine.load_model(path)


def test_item12_workspace_variable_typo_warns_once():
    proc = run_limited("import kernels; print(kernels.config.WORKSPACE_BYTES)",
                       env={"CONVLAB_WORKSPACE_MB": "abc"})
    assert proc.returncode == 0
    assert proc.stdout.strip() == str(32 * 2**20)
    assert "CONVLAB_WORKSPACE_MB='abc'" in proc.stderr and "Traceback" not in proc.stderr


def test_item12_cli_checks_before_measuring(tmp_path):
    for path in ("/proc/no/such.json", str(tmp_path)):
        proc = run_limited(None, args=["-m", "bench.cli", "compare", "--suite", "quick",
                                       "--json", path])
        assert proc.returncode == 2, proc.stderr
        assert "--json" in proc.stderr and "GFLOP" not in proc.stdout
    proc = run_limited(None, args=["-m", "bench.cli", "train", "--optimizer", "bogus"])
    assert proc.returncode == 2 and "unknown optimizer 'bogus'" in proc.stderr
    proc = run_limited(None, args=["-m", "bench.cli", "autotune", "--model", "bogus"])
    assert proc.returncode == 2 and "unknown model 'bogus'" in proc.stderr


def test_item12_idx_header_dims_do_not_wrap(tmp_path):
    p = tmp_path / "wrap"
    p.write_bytes(_idx_header(0x08, (65536,) * 4))
    with pytest.raises(ValueError, match="18446744073709551636 bytes"):   # 2**64 + 20
        engine.data.read_idx(p)
    p.write_bytes(_idx_header(0x0E, (2**32 - 1,) * 3))
    want = 16 + (2**32 - 1) ** 3 * 8
    with pytest.raises(ValueError, match=f"needs {want} bytes"):
        engine.data.read_idx(p)


def test_item12_load_mnist_checks_dims(tmp_path):
    def write(images, labels):
        engine.data.write_idx(tmp_path / "train-images-idx3-ubyte", images)
        engine.data.write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
        engine.data.write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
        engine.data.write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)

    write(np.zeros(10, np.uint8), np.zeros(10, np.uint8))
    with pytest.raises(ValueError, match="images must be 3-D"):
        engine.data.load_mnist(tmp_path)
    write(np.zeros((10, 4, 4), np.uint8), np.zeros((10, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="labels must be 1-D"):
        engine.data.load_mnist(tmp_path)


def test_item12_save_into_missing_directory_names_the_target(tmp_path):
    m = _small_model()
    target = tmp_path / "no" / "such" / "model.npz"
    with pytest.raises(FileNotFoundError) as e:
        m.save(target)
    assert str(target.parent) in str(e.value) and ".tmp" not in str(e.value)


def test_item12_string_labels_are_a_type_error():
    m = _mlp()
    with pytest.raises(TypeError, match="y must hold numbers .* dtype <U"):
        m.train_on_batch(np.zeros((2, 4), np.float32), np.array(["cat", "dog"]))


def test_item12_h5_name_warns_and_mode_follows_the_umask(tmp_path):
    m = _small_model()
    with pytest.warns(UserWarning, match="not HDF5"):
        m.save(tmp_path / "model.h5")
    old = os.umask(0o022)
    try:
        m.save(tmp_path / "plain.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "plain.npz").stat().st_mode & 0o777 == 0o644
    engine.load_model(tmp_path / "model.h5")
