"""The `convlab` command (python -m bench) end to end, on tiny shapes, plus the library
pieces behind it: JSON schema, exit codes, autotune cache round trip, baselines, plots."""
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import kernels
from bench import cli, measure, report
from bench.suites import get_suite, parse_spec, sweep_axes
from kernels import registry

ROOT = Path(__file__).resolve().parents[1]
TINY = "2,3,10,12:4,3,3:padding=1"
TINY_1D = "2,2,40:3,5:padding=same,dilation=2"
ROW_KEYS = {"name": str, "shape": str, "strategy": str, "backend": str, "pass": str,
            "median_ms": float, "gflops": float, "max_rel_err": float,
            "speedup_vs_direct": float, "winner": bool, "threads": int, "dtype": str}


def run(*args, cache_dir, timeout=300, extra_env=None):
    """Run `python -m bench ARGS` from the repo root with the cache in ``cache_dir``."""
    env = dict(os.environ, CONVLAB_CACHE_DIR=str(cache_dir), COLUMNS="160")
    env.pop("CONVLAB_NO_AUTOTUNE", None)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc, code, fragment):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines()
             if ln.strip() and "the machine is busy" not in ln]
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0], lines[0]


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    """CONVLAB_CACHE_DIR -> tmp_path for this process too; the in-memory cache reset."""
    monkeypatch.setenv("CONVLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels.config, "USE_AUTOTUNE", True)
    registry.reload_cache()
    yield tmp_path
    monkeypatch.undo()
    registry.reload_cache()


# --------------------------------------------------------------------------------------
# info and compare
# --------------------------------------------------------------------------------------


@pytest.fixture
def zoo():
    """engine.zoo (the model zoo the CLI trains and summarises), or skip."""
    return pytest.importorskip("engine.zoo", reason="engine.zoo is not importable")

def test_info(tmp_path):
    proc = run("info", "--no-peak", cache_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for label in ("CPU", "vector features", "threads in use", "BLAS", "numba",
                  "threading layer", "cython extensions", "CUDA", "conv strategies",
                  "autotune cache"):
        assert label in proc.stdout, label
    assert str(tmp_path) in proc.stdout


def test_compare_json_and_plot(tmp_path):
    out_json, out_png = tmp_path / "c.json", tmp_path / "c.png"
    have_mpl = importlib.util.find_spec("matplotlib") is not None
    args = ["compare", "--shape", TINY, "--shape", TINY_1D, "--repeat", "2", "--warmup", "0",
            "--peak", "50", "--json", str(out_json)] + (["--plot", str(out_png)] if have_mpl
                                                        else [])
    proc = run(*args, cache_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "winners" in proc.stdout and "GEMM peak" in proc.stdout
    rows = json.loads(out_json.read_text())
    assert isinstance(rows, list) and rows
    pairs = measure.strategy_pairs()
    baselines = [b for b in measure.BASELINES if measure.baseline_missing(b) is None]
    for r in rows:
        for key, typ in ROW_KEYS.items():
            assert isinstance(r[key], typ), (key, r)
        assert set(r) >= {"pct_peak", "workspace_bytes"} | {f"speedup_vs_{b}"
                                                             for b in baselines}
        assert r["pass"] in measure.PASSES and r["name"] in (TINY, TINY_1D)
        assert r["shape"] == parse_spec(r["name"]).spec()
        assert r["median_ms"] > 0 and r["max_rel_err"] < 1e-4
        assert abs(r["pct_peak"] - 100 * r["gflops"] / 50) < 1e-6 * r["pct_peak"] + 1e-12
        if r["kind"] == "convlab":
            assert (r["strategy"], r["backend"]) in pairs
            assert isinstance(r["workspace_bytes"], int) and r["workspace_bytes"] >= 0
            if r["strategy"] == "direct":
                assert r["speedup_vs_direct"] == pytest.approx(1.0)
        elif r["kind"] == "auto":
            # strategy="auto" is measured too; its backend field names what select() picked
            assert r["strategy"] == "auto" and r["winner"] is False
            assert tuple(r["backend"].split("/")) in pairs
        else:
            assert r["kind"] == "baseline" and r["strategy"] in baselines
    for shape in (TINY, TINY_1D):
        for pass_ in measure.PASSES:
            group = [r for r in rows if r["name"] == shape and r["pass"] == pass_]
            assert {(r["strategy"], r["backend"]) for r in group
                    if r["kind"] == "convlab"} <= set(pairs)
            assert sum(r["winner"] for r in group) == 1
            assert sum(r["kind"] == "auto" for r in group) == 1
            winner = next(r for r in group if r["winner"])
            assert winner["median_ms"] == min(r["median_ms"] for r in group
                                              if r["kind"] == "convlab")
    if have_mpl:
        assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_pass_and_selection(tmp_path):
    out_json = tmp_path / "c.json"
    proc = run("compare", "--shape", TINY, "--strategies", "direct,reference", "--pass",
               "bwd", "--baselines", "none", "--repeat", "1", "--peak", "10",
               "--json", str(out_json), cache_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out_json.read_text())
    assert {r["pass"] for r in rows} == {"grad_input", "grad_weight"}
    assert {r["strategy"] for r in rows} == {"direct", "reference"}
    assert all(r["kind"] == "convlab" for r in rows)
    # the reference is measured when asked for, but never the winner
    assert not any(r["winner"] for r in rows if r["strategy"] == "reference")
    # the oracle itself: only the float32 rounding of its float64 result
    assert all(r["max_rel_err"] < 1e-6 for r in rows if r["strategy"] == "reference")


def test_compare_bad_arguments_exit_2(tmp_path):
    proc = run("compare", "--shape", "8,128,28:128,3,3,3", cache_dir=tmp_path)
    assert_one_line_error(proc, 2, "W must be C_out plus 1 kernel sizes")
    proc = run("compare", "--suite", "nope", cache_dir=tmp_path)
    assert_one_line_error(proc, 2, "invalid choice: 'nope'")
    proc = run("compare", "--shape", TINY, "--strategies", "fast", cache_dir=tmp_path)
    assert_one_line_error(proc, 2, "unknown strategy 'fast'")


@pytest.mark.parametrize("argv, fragment", [
    ([], "the following arguments are required: COMMAND"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["compare", "--repeat", "0"], "expected a positive int, received '0'"),
    (["compare", "--pass", "sideways"], "invalid choice: 'sideways'"),
    (["compare", "--suite", "quick", "--shape", TINY], "not allowed with argument"),
    (["compare", "--peak", "-3"], "expected a positive number"),
    (["compare", "--shape", TINY, "--backends", "fortran"], "unknown backend 'fortran'"),
    (["compare", "--shape", TINY, "--baselines", "matlab"], "unknown baseline 'matlab'"),
    (["compare", "--shape", TINY, "--json", "/nonexistent-dir/x.json"], "does not exist"),
    (["autotune", "--model", "mnist", "--suite", "quick"], "not allowed with argument"),
    (["train", "--dataset", "cifar"], "unknown dataset 'cifar'"),
    (["train", "--dataset", "idx"], "--dataset idx needs one directory"),
    (["summary"], "the following arguments are required: --model"),
])
def test_bad_arguments_in_process(argv, fragment, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert fragment in err and len(err.strip().splitlines()) == 1, err


def test_other_failures_exit_1(tmp_path):
    # the arguments are fine, the environment names no strategy: one line, status 1
    proc = run("compare", "--shape", TINY, "--baselines", "none", "--repeat", "1",
               "--peak", "10", cache_dir=tmp_path, extra_env={"CONVLAB_STRATEGY": "bogus"})
    assert_one_line_error(proc, 1, "convlab compare: error: CONVLAB_STRATEGY='bogus'")


def test_unwritable_json_is_refused_before_measuring(tmp_path):
    # a directory as --json: refused up front (status 2), nothing measured
    proc = run("compare", "--shape", TINY, "--strategies", "direct", "--baselines", "none",
               "--repeat", "1", "--peak", "10", "--json", str(tmp_path), cache_dir=tmp_path)
    assert_one_line_error(proc, 2, "is a directory")
    assert proc.stdout == ""


# --------------------------------------------------------------------------------------
# autotune: the cache round trip
# --------------------------------------------------------------------------------------

def test_autotune_round_trip(cache_env):
    proc = run("autotune", "--shape", TINY, "--repeat", "1", cache_dir=cache_env)
    assert proc.returncode == 0, proc.stderr
    path = cache_env / "autotune.json"
    doc = json.loads(path.read_text())
    assert doc["format"] == registry.CACHE_FORMAT and doc["version"] == registry.CACHE_VERSION
    entries = list(doc["entries"].items())
    assert {json.loads(k)["pass"] for k, _ in entries} == {"fwd", "grad_input",
                                                           "grad_weight", "all"}
    for key, e in entries:
        k = json.loads(key)
        assert k["x"] == [2, 3, 10, 12] and k["w"] == [4, 3, 3, 3]
        assert k["cpu"] == registry.cpu_model() and k["threads"] == kernels.get_num_threads()
        assert (e["strategy"], e["backend"]) in measure.strategy_pairs()
        assert e["median_ms"] > 0

    # kernels.select() reads the cache first and says so
    case = parse_spec(TINY)
    fwd = next(e for k, e in entries if json.loads(k)["pass"] == "fwd")
    s, b, reason = kernels.select(case.x_shape, case.w_shape, **case.conv_kwargs())
    assert (s, b) == (fwd["strategy"], fwd["backend"])
    assert reason.startswith("measured")
    train = next(e for k, e in entries if json.loads(k)["pass"] == "all")
    s, b, reason = kernels.select(case.x_shape, case.w_shape, need_backward=True,
                                  **case.conv_kwargs())
    assert (s, b) == (train["strategy"], train["backend"]) and "measured" in reason
    # each gradient pass runs its own measured winner
    x = np.random.default_rng(0).standard_normal(case.x_shape).astype(np.float32)
    gy = np.ones(case.out_shape, np.float32)
    w = np.ones(case.w_shape, np.float32)
    gw_best = next(e for k, e in entries if json.loads(k)["pass"] == "grad_weight")
    with kernels.use(strategy=gw_best["strategy"], backend=gw_best["backend"]):
        want = kernels.conv_grad_weight(gy, x, case.w_shape, **case.conv_kwargs())
    from kernels import registry as reg
    picked = reg._select(case.params(), case.x_shape, case.w_shape, "float32", True,
                         "grad_weight")
    assert picked[:2] == (gw_best["strategy"], gw_best["backend"]) and "grad_weight" in picked[2]
    np.testing.assert_allclose(kernels.conv_grad_weight(gy, x, case.w_shape,
                                                        **case.conv_kwargs()), want, rtol=1e-5)

    show = run("autotune", "--show", cache_dir=cache_env)
    assert show.returncode == 0, show.stderr
    assert "4 entries" in show.stdout and "(2,3,10,12)" in show.stdout

    clear = run("autotune", "--clear", cache_dir=cache_env)
    assert clear.returncode == 0 and "removed" in clear.stdout
    assert not path.exists()
    registry.reload_cache()
    assert not kernels.select(case.x_shape, case.w_shape,
                              **case.conv_kwargs())[2].startswith("measured")


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": "other", "x": 1})])
def test_corrupt_or_foreign_cache_warns_once(cache_env, content):
    (cache_env / "autotune.json").write_text(content)
    proc = run("autotune", "--show", cache_dir=cache_env)
    assert proc.returncode == 0, proc.stderr
    warns = [ln for ln in proc.stderr.splitlines() if "ignoring autotune cache" in ln]
    assert len(warns) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "0 entries" in proc.stdout

    case = parse_spec(TINY)
    with pytest.warns(RuntimeWarning, match="ignoring autotune cache") as record:
        for _ in range(3):
            reason = kernels.select(case.x_shape, case.w_shape, **case.conv_kwargs())[2]
            assert not reason.startswith("measured")
    assert len(record) == 1


def test_autotune_unwritable_cache_exits_1(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run("autotune", "--shape", TINY, "--strategies", "direct", "--repeat", "1",
               cache_dir=blocker)
    assert_one_line_error(proc, 1, "convlab autotune: error:")


def test_autotune_model(cache_env, zoo):
    proc = run("autotune", "--model", "small_cnn", "--batch-size", "2", "--repeat", "1",
               "--strategies", "direct,im2col", cache_dir=cache_env)
    assert proc.returncode == 0, proc.stderr
    assert "small_cnn-" in proc.stdout
    entries = json.loads((cache_env / "autotune.json").read_text())["entries"]
    assert len(entries) == 8  # two conv layers x (fwd, grad_input, grad_weight, all)


# --------------------------------------------------------------------------------------
# train and summary (need the engine)
# --------------------------------------------------------------------------------------

def test_summary(tmp_path, zoo):
    proc = run("summary", "--model", "mnist", cache_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1,621,670" in proc.stdout and "Conv2D" in proc.stdout
    assert "grad-weight" in proc.stdout           # the strategy of each pass
    proc = run("summary", "--model", "alexnet", cache_dir=tmp_path)
    assert_one_line_error(proc, 2, "unknown model 'alexnet'")


def test_train_signals(tmp_path, zoo):
    proc = run("train", "--dataset", "signals1d", "--limit", "64", "--epochs", "1",
               "--batch-size", "16", cache_dir=tmp_path)
    assert proc.returncode == 0, proc.stderr
    acc = float(proc.stdout.split("held-out accuracy:")[1].split()[0])
    assert 0.0 <= acc <= 1.0


def test_train_missing_idx_files_exit_1(tmp_path, zoo):
    proc = run("train", "--dataset", "idx", str(tmp_path), cache_dir=tmp_path)
    assert_one_line_error(proc, 1, "not found")


# --------------------------------------------------------------------------------------
# the library behind compare: baselines, errors, timing, plots
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("baseline", measure.BASELINES)
@pytest.mark.parametrize("spec", [TINY, "2,4,9,8:4,2,3:padding=same",
                                  "1,2,5,6,7:3,2,3,2:padding=1",
                                  "2,4,9,9:4,3,3:stride=2,padding=1,groups=2,dilation=1,2"])
def test_baselines_match_the_reference(baseline, spec):
    if measure.baseline_missing(baseline):
        pytest.skip(measure.baseline_missing(baseline))
    case = parse_spec(spec)
    inputs = measure.make_inputs(case, "float64")
    for pass_ in measure.PASSES:
        try:
            fn = measure.baseline_fn(baseline, case, pass_, inputs)
        except measure.Unsupported as e:
            assert baseline == "scipy" and "groups=1, stride 1, dilation 1" in str(e)
            continue
        ref = measure.reference(case, pass_, inputs)
        assert measure.max_rel_err(measure.as_numpy(fn()), ref) < 1e-12, (spec, pass_)


def test_max_rel_err_and_time_call():
    ref = np.array([1.0, -4.0])
    assert measure.max_rel_err(np.array([1.0, -4.0]), ref) == 0.0
    assert measure.max_rel_err(np.array([1.4, -4.0]), ref) == pytest.approx(0.1)
    assert measure.max_rel_err(np.array([0.5]), np.array([0.0])) == 0.5
    with pytest.raises(ValueError, match="differs from the reference"):
        measure.max_rel_err(np.zeros(3), ref)
    calls = []
    t = measure.time_call(lambda: calls.append(1), repeat=3, warmup=2)
    assert len(t["times"]) == 3 and t["min_s"] <= t["median_s"]
    assert len(calls) == 2 + 1 + 3 * t["number"] - (1 if t["number"] == 1 else 0)
    with pytest.raises(ValueError, match="repeat must be >= 1"):
        measure.time_call(lambda: None, repeat=0)


def test_crossover_plot(tmp_path):
    pytest.importorskip("matplotlib")
    cases = get_suite("sweep")
    ks, ss = sweep_axes(cases)
    rows = []
    for c in cases:  # synthetic timings: fft wins for large kernels
        k = c.w_shape[-1]
        for s, ms in (("direct", k * k), ("fft", 60.0)):
            rows.append({"name": c.name, "pass": "fwd", "strategy": s, "backend": "numba",
                         "kind": "convlab", "median_ms": float(ms), "x_shape": c.x_shape,
                         "w_shape": c.w_shape, "threads": 2})
    grid = report.crossover_grid(rows, ks, ss, "fwd")
    assert grid[(3, 16)][0] == "direct/numba" and grid[(21, 16)][0] == "fft/numba"
    assert grid[(21, 16)][1] == pytest.approx(441 / 60)
    path = tmp_path / "map.png"
    report.plot(path, rows, sweep=(ks, ss))
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_wrong_results_are_flagged_and_never_chosen(monkeypatch, cache_env):
    pairs = [p for p in (("direct", "numba"), ("direct", "cython"), ("im2col", "numba"))
             if p in kernels.available("conv")]
    if not any(s == "im2col" for s, _ in pairs) or len(pairs) < 2:
        pytest.skip("needs im2col/numba and a direct backend")
    real = measure.pass_fn

    def broken(case, pass_, strategy, backend, inputs):
        if strategy == "im2col":  # instant and wrong: it would win every race
            zeros = np.zeros_like(real(case, pass_, strategy, backend, inputs)())
            return lambda: zeros
        return real(case, pass_, strategy, backend, inputs)
    monkeypatch.setattr(measure, "pass_fn", broken)
    case = parse_spec(TINY)
    rows, _ = measure.measure_cases([case], ("fwd",), pairs, repeat=1, peak=1.0)
    bad = next(r for r in rows if r["strategy"] == "im2col")
    assert not bad["ok"] and not bad["winner"] and bad["max_rel_err"] == pytest.approx(1.0)
    assert sum(r["winner"] for r in rows) == 1
    text = io.StringIO()
    Console(file=text, width=200).print(report.compare_tables(rows)[0])
    assert "WRONG" in text.getvalue()
    written = measure.autotune([case], pairs, repeat=1)
    assert written and all(w["strategy"] != "im2col" for w in written)
