"""The ``filters`` suites of ``convlab compare``: kernels.filters' strategies against
scipy.ndimage and, when installed, OpenCV (``pip install opencv-python-headless``).

    convlab compare --suite filters          Gaussian (sigma 1, 4, 16), Sobel, box 7, median
                                             3 / 5 / 9 on 1024x1024 float32 (and uint8 median 9)
    convlab compare --suite filters-sweep    Gaussian separable vs FFT over sigma x image size:
                                             the crossover table (and map with --plot)

Timing is interleaved: each round calls every contender once, in turn, so a busy machine
slows them alike; the median over rounds is reported.  Errors are max|y - scipy| / max|scipy|.
OpenCV's borders are matched to scipy's mode (BORDER_REFLECT = "reflect"); its median takes
float32 only up to 5x5, so median 9 is compared on uint8.

    >>> from bench.filter_bench import get_cases
    >>> [c.name for c in get_cases("filters")][:2]
    ['gaussian-s1-1024px', 'gaussian-s4-1024px']
"""
from __future__ import annotations

import importlib.util
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FILTER_SUITES", "FilterCase", "get_cases", "contenders", "measure", "compare",
           "crossover"]

FILTER_SUITES = ("filters", "filters-sweep")


@dataclass(frozen=True)
class FilterCase:
    """One filter call: ``op`` ("gaussian", "sobel", "uniform", "median") with ``arg``
    (sigma or size) on an image of ``shape`` and ``dtype``."""
    name: str
    op: str
    arg: float
    shape: tuple = (1024, 1024)
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)

    def image(self, seed=0):
        gen = np.random.default_rng(seed)
        if self.dtype == "uint8":
            return gen.integers(0, 256, self.shape).astype(np.uint8)
        return gen.random(self.shape, dtype=np.float64).astype(self.dtype)


def _suite_filters():
    return (FilterCase("gaussian-s1-1024px", "gaussian", 1.0),
            FilterCase("gaussian-s4-1024px", "gaussian", 4.0),
            FilterCase("gaussian-s16-1024px", "gaussian", 16.0),
            FilterCase("sobel-1024px", "sobel", 0),
            FilterCase("box7-1024px", "uniform", 7),
            FilterCase("median3-1024px", "median", 3),
            FilterCase("median5-1024px", "median", 5),
            FilterCase("median9-1024px", "median", 9),
            FilterCase("median9-1024px-uint8", "median", 9, dtype="uint8"))


SWEEP_SIGMAS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
SWEEP_SIZES = (128, 256, 512, 1024)


def _suite_sweep():
    return tuple(FilterCase(f"gaussian-s{s:g}-{n}px", "gaussian", s, shape=(n, n))
                 for n in SWEEP_SIZES for s in SWEEP_SIGMAS)


def get_cases(name):
    """The cases of filter suite ``name`` ("filters" or "filters-sweep")."""
    if name == "filters":
        return _suite_filters()
    if name == "filters-sweep":
        return _suite_sweep()
    raise ValueError(f"unknown filter suite {name!r}; valid: {', '.join(FILTER_SUITES)}")


def opencv_missing():
    """None when OpenCV can be imported here, else the reason."""
    if importlib.util.find_spec("cv2") is None:
        return "OpenCV is not installed (pip install opencv-python-headless)"
    return None


def _scipy_fn(case, x):
    import scipy.ndimage as ndi
    a = case.arg
    if case.op == "gaussian":
        return lambda: ndi.gaussian_filter(x, a)
    if case.op == "sobel":
        return lambda: ndi.sobel(x, int(a))
    if case.op == "uniform":
        return lambda: ndi.uniform_filter(x, int(a))
    return lambda: ndi.median_filter(x, int(a))


def _opencv_fn(case, x):
    """OpenCV's call for the case (reflect borders), or None where it has none."""
    import cv2
    a = case.arg
    if case.op == "gaussian":
        r = int(4.0 * a + 0.5)
        return lambda: cv2.GaussianBlur(x, (2 * r + 1, 2 * r + 1), a,
                                        borderType=cv2.BORDER_REFLECT)
    if case.op == "sobel":
        dx, dy = (0, 1) if int(a) == 0 else (1, 0)
        return lambda: cv2.Sobel(x, -1, dx, dy, borderType=cv2.BORDER_REFLECT)
    if case.op == "uniform":
        k = int(a)
        return lambda: cv2.blur(x, (k, k), borderType=cv2.BORDER_REFLECT)
    k = int(a)
    if x.dtype == np.float32 and k > 5:
        return None                       # cv2.medianBlur: float32 only for 3 and 5
    return lambda: cv2.medianBlur(x, k)


def _convlab_fn(case, x, strategy):
    from kernels import filters as F
    a = case.arg
    if case.op == "gaussian":
        return lambda: F.gaussian(x, a, strategy=strategy)
    if case.op == "sobel":
        return lambda: F.sobel(x, int(a))
    if case.op == "uniform":
        return lambda: F.uniform(x, int(a), strategy=strategy)
    return lambda: F.median(x, int(a), strategy=strategy)


def _strategies(case, x):
    """(strategy, reason-or-None) for every strategy that serves the case, auto first."""
    from kernels import filters as F
    if case.op == "sobel":
        return [("auto", "separable [-1, 0, 1] x [1, 2, 1] passes")]
    kw = {"sigma": case.arg} if case.op == "gaussian" else {"size": int(case.arg)}
    chosen, reason = F.select(case.op, x.shape, x.dtype, **kw)
    out = [("auto", f"{chosen}: {reason}")]
    for s in F.STRATEGIES[case.op]:
        if case.op == "median":
            from kernels.filters import _median
            fp = np.ones((int(case.arg),) * x.ndim, bool)
            if _median.supports(s, fp, x.dtype):
                continue
        out.append((s, None))
    return out


def contenders(case, x, baselines=("scipy", "opencv")):
    """[(label, kind, fn)] for a case: convlab's strategies, then the baselines."""
    items = [(s, "auto" if s == "auto" else "convlab", _convlab_fn(case, x, s), why)
             for s, why in _strategies(case, x)]
    if "scipy" in baselines:
        items.append(("scipy.ndimage", "baseline", _scipy_fn(case, x), None))
    if "opencv" in baselines and opencv_missing() is None:
        fn = _opencv_fn(case, x)
        if fn is not None:
            items.append(("opencv", "baseline", fn, None))
    return items


def _rel_err(y, ref):
    y = np.asarray(y, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if y.shape != ref.shape:
        return float("nan")
    scale = max(float(np.abs(ref).max()), 1e-30)
    return float(np.abs(y - ref).max() / scale)


def measure(cases, *, repeat=5, warmup=1, baselines=("scipy", "opencv"), progress=None):
    """Rows (dicts) of interleaved median times for every contender of every case.

    Keys: shape, strategy, backend, pass, median_ms, gflops (None: filters have no FLOP
    rate), max_rel_err (vs scipy.ndimage), workspace_bytes (0), and name, op, arg, dtype,
    kind ("convlab" / "auto" / "baseline"), reason, vs_scipy, vs_opencv, threads.
    """
    import kernels
    threads = kernels.get_num_threads()
    if "opencv" in baselines and opencv_missing() is None:
        import cv2
        cv2.setNumThreads(threads)
    rows = []
    for case in cases:
        x = case.image()
        items = contenders(case, x, baselines)
        ref = _scipy_fn(case, x)()
        errs = {}
        for label, _, fn, _ in items:
            for _ in range(warmup):
                y = fn()
            errs[label] = _rel_err(y if warmup else fn(), ref)
        times = {label: [] for label, *_ in items}
        for _ in range(repeat):
            for label, _, fn, _ in items:
                t0 = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
        med = {label: statistics.median(ts) * 1e3 for label, ts in times.items()}
        for label, kind, _, why in items:
            rows.append({
                "name": case.name, "op": case.op, "arg": case.arg, "dtype": case.dtype,
                "shape": list(case.shape), "strategy": label,
                "backend": "numba" if kind != "baseline" else label, "pass": "fwd",
                "kind": kind, "median_ms": med[label], "gflops": None,
                "max_rel_err": errs[label], "workspace_bytes": 0, "reason": why,
                "vs_scipy": med.get("scipy.ndimage", float("nan")) / med[label],
                "vs_opencv": (med["opencv"] / med[label]) if "opencv" in med else None,
                "threads": threads})
        if progress:
            progress(case.name)
    return rows


def crossover(rows):
    """{(sigma, size): (winner, margin over the other)} between the Gaussian strategies."""
    grid = {}
    by = {}
    for r in rows:
        if r["op"] == "gaussian" and r["kind"] == "convlab":
            by.setdefault((r["arg"], r["shape"][-1]), []).append(r)
    for key, group in by.items():
        group = sorted(group, key=lambda r: r["median_ms"])
        margin = group[1]["median_ms"] / group[0]["median_ms"] if len(group) > 1 else None
        grid[key] = (group[0]["strategy"], margin)
    return grid


# --------------------------------------------------------------------------------------
# the compare command for filter suites
# --------------------------------------------------------------------------------------

def _baselines(args):
    if args.baselines is None:
        return ("scipy", "opencv")
    if args.baselines == ["none"]:
        return ()
    valid = ("scipy", "opencv")
    for b in args.baselines:
        if b not in valid:
            from .cli import UsageError
            raise UsageError(f"unknown baseline {b!r} for a filter suite; valid: "
                             f"{', '.join(valid)}, none")
    return tuple(args.baselines)


def _table(rows):
    from rich.table import Table

    from .report import _ms, _num
    t = Table(title="filters: convlab strategies vs scipy.ndimage and OpenCV "
                    "('vs X' = X's time / this time; above 1: faster)")
    for col in ("case", "strategy", "median ms", "vs scipy", "vs OpenCV", "max rel err",
                "why (auto)"):
        t.add_column(col, justify="right" if "ms" in col or "vs" in col or "err" in col
                     else "left")
    last = None
    for r in rows:
        name = r["name"] if r["name"] != last else ""
        last = r["name"]
        t.add_row(name, r["strategy"], _ms(r["median_ms"]),
                  _num(r["vs_scipy"], "{:.2f}x"), _num(r["vs_opencv"], "{:.2f}x"),
                  _num(r["max_rel_err"], "{:.1e}"), r["reason"] or "")
    return t


def _crossover_table(grid):
    from rich.table import Table
    t = Table(title="Gaussian crossover: faster strategy (margin over the other)")
    t.add_column("image \\ sigma")
    for s in SWEEP_SIGMAS:
        t.add_column(f"{s:g}", justify="center")
    for n in SWEEP_SIZES:
        cells = []
        for s in SWEEP_SIGMAS:
            w = grid.get((s, n))
            cells.append("-" if w is None else f"{w[0]} {w[1]:.2f}x" if w[1] else w[0])
        t.add_row(f"{n}px", *cells)
    return t


def _plot_crossover(path, grid):
    from .report import _pyplot
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.1 * len(SWEEP_SIGMAS) + 2, 0.7 * len(SWEEP_SIZES) + 2))
    data = [[(1 if grid.get((s, n), ("separable",))[0] == "fft" else 0)
             for s in SWEEP_SIGMAS] for n in SWEEP_SIZES]
    ax.imshow(data, cmap="coolwarm", vmin=-0.5, vmax=1.5, origin="lower", aspect="auto")
    for i, n in enumerate(SWEEP_SIZES):
        for j, s in enumerate(SWEEP_SIGMAS):
            if (s, n) in grid:
                lab, m = grid[(s, n)]
                ax.text(j, i, f"{lab}\n{m:.2f}x" if m else lab, ha="center", va="center",
                        fontsize=7)
    ax.set_xticks(range(len(SWEEP_SIGMAS)))
    ax.set_xticklabels([f"{s:g}" for s in SWEEP_SIGMAS])
    ax.set_yticks(range(len(SWEEP_SIZES)))
    ax.set_yticklabels([f"{n}px" for n in SWEEP_SIZES])
    ax.set_xlabel("sigma")
    ax.set_ylabel("image size (square, float32)")
    ax.set_title("Gaussian: separable passes vs per-axis FFT (cell: winner, margin)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare(args):
    """``convlab compare --suite filters|filters-sweep``: measure, print, --json, --plot."""
    from . import report
    from .cli import _check_writable, _set_threads
    out = report.console()
    _set_threads(args)
    for flag in ("json", "plot"):
        if getattr(args, flag, None):
            _check_writable(getattr(args, flag), f"--{flag}")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise RuntimeError("--plot needs matplotlib (pip install 'convlab[compare]')")
    baselines = _baselines(args)
    if "opencv" in baselines and opencv_missing():
        out.print(f"[dim]baselines not measured: opencv ({opencv_missing()})[/]")
    cases = get_cases(args.suite)
    with report.progress(len(cases), f"compare {args.suite}") as advance:
        rows = measure(cases, repeat=args.repeat, warmup=args.warmup, baselines=baselines,
                       progress=advance)
    out.print(_table(rows))
    grid = crossover(rows) if args.suite == "filters-sweep" else None
    if grid:
        out.print(_crossover_table(grid))
    out.print(f"{rows[0]['threads'] if rows else '?'} threads; medians of {args.repeat} "
              f"interleaved rounds")
    if args.json:
        report.write_json(args.json, rows)
        out.print(f"wrote {len(rows)} measurements to {args.json}")
    if args.plot:
        if grid:
            _plot_crossover(args.plot, grid)
            out.print(f"wrote the crossover map to {args.plot}")
        else:
            out.print("--plot draws the crossover map of --suite filters-sweep; nothing "
                      "written")
    return 0
