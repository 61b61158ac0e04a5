"""Presenting measurements: rich tables, progress bars, JSON files and PNG plots.

Nothing here measures; the rows come from :mod:`bench.measure` (dicts with shape, strategy,
backend, pass, median_ms, gflops, pct_peak, max_rel_err, workspace_bytes, speedups, winner).
"""
from __future__ import annotations

import contextlib
import json
import math
import os

from rich import box
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table

__all__ = ["console", "progress", "compare_tables", "winners_table", "info_table",
           "cache_table", "tune_table", "write_json", "plot", "plot_bars", "plot_crossover",
           "crossover_grid"]

PASS_LABEL = {"fwd": "forward", "grad_input": "grad-input", "grad_weight": "grad-weight"}


def console(stderr=False):
    """A rich Console; 160 columns wide when the output is a file or pipe (and COLUMNS is
    not set), so that tables in logs do not wrap."""
    c = Console(stderr=stderr)
    if not c.is_terminal and "COLUMNS" not in os.environ:
        c = Console(stderr=stderr, width=160)
    return c


@contextlib.contextmanager
def progress(total, description="measuring"):
    """A progress bar on stderr; yields ``advance(label)`` to call after each step."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[label]}"),
                   console=console(stderr=True), transient=True)
    with bar:
        task = bar.add_task(description, total=total, label="")

        def advance(label):
            bar.update(task, advance=1, label=label)
        yield advance


# --------------------------------------------------------------------------------------
# number formatting
# --------------------------------------------------------------------------------------

def _num(v, fmt="{:.3g}"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return fmt.format(v)


def _ms(v):
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 1 else f"{v:.4g}" if v < 1000 else f"{v:.0f}"


def _mb(v):
    return "-" if v is None else "0" if v == 0 else f"{v / 2**20:.3g}"


def _speedup(v):
    return "-" if v is None else f"{v:.2f}x"


def _threads(n):
    return f"{n} thread" if n == 1 else f"{n} threads"


def _label(r):
    return f"{r['strategy']}/{r['backend']}"


def _group_by(rows, *keys):
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------

def compare_tables(rows, skipped=(), baselines=()):
    """One rich Table per case: every pass and (strategy, backend), the winner marked *."""
    tables = []
    skipped_by_case = _group_by(skipped, "name")
    for (name,), mine in _group_by(rows, "name").items():
        r0 = mine[0]
        head = name if name == r0["shape"] else f"{name}  {r0['shape']}"
        t = Table(title=f"[bold]{head}[/]  ({r0['flops'] / 1e9:.3g} GFLOP per pass, "
                        f"{r0['dtype']}, {_threads(r0['threads'])})",
                  box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
        t.add_column("pass", no_wrap=True)
        t.add_column("strategy/backend", no_wrap=True)
        for col in ("ms", "GFLOP/s", "% peak", "work MB", "max err", "region err",
                    "vs direct") + \
                tuple(f"vs {b}" for b in baselines):
            t.add_column(col, justify="right", no_wrap=True)
        t.add_column("", no_wrap=True)
        for i, ((pass_,), group) in enumerate(_group_by(mine, "pass").items()):
            if i:
                t.add_section()
            for j, r in enumerate(sorted(group, key=lambda r: r["median_ms"])):
                style = "bold green" if r["winner"] else "bold red" if not r["ok"] \
                    else "dim" if r["kind"] == "baseline" else None
                cells = [PASS_LABEL[pass_] if j == 0 else "", _label(r), _ms(r["median_ms"]),
                         _num(r["gflops"], "{:.1f}"), _num(r["pct_peak"], "{:.0f}%"),
                         _mb(r["workspace_bytes"]), _num(r["max_rel_err"], "{:.0e}"),
                         _num(r.get("region_rel_err"), "{:.0e}"),
                         _speedup(r["speedup_vs_direct"])]
                cells += [_speedup(r.get(f"speedup_vs_{b}")) for b in baselines]
                cells.append("*" if r["winner"] else "" if r["ok"] else "WRONG")
                t.add_row(*cells, style=style)
        notes = _skip_notes(skipped_by_case.get((name,), []), {r["pass"] for r in mine})
        if notes:
            t.caption = "not measured: " + "; ".join(notes)
            t.caption_justify = "left"
        tables.append(t)
    return tables


def _skip_notes(skipped, measured_passes):
    """'a/x, b/y: reason' lines, one per distinct reason; the passes are named unless the
    reason holds for every measured pass."""
    by_reason = {}
    for s in skipped:
        labels, passes = by_reason.setdefault(s["reason"], ([], []))
        if f"{s['strategy']}/{s['backend']}" not in labels:
            labels.append(f"{s['strategy']}/{s['backend']}")
        if s["pass"] not in passes:
            passes.append(s["pass"])
    return [f"{', '.join(labels)}: {reason}" +
            ("" if set(passes) >= measured_passes else
             f" ({', '.join(PASS_LABEL[p] for p in passes)})")
            for reason, (labels, passes) in by_reason.items()]


def _ranked(group):
    """The correct convlab rows of one (case, pass), fastest first (reference excluded)."""
    return sorted((r for r in group if r["kind"] == "convlab" and r["strategy"] != "reference"
                   and r.get("ok", True)), key=lambda r: r["median_ms"])


def winners_table(rows, baselines=()):
    """One line per (case, pass): the fastest convlab strategy and how it compares."""
    t = Table(title="[bold]winners[/]", box=box.SIMPLE_HEAD, title_justify="left",
              pad_edge=False)
    for col in ("case", "pass", "fastest", "ms", "GFLOP/s", "vs direct"):
        t.add_column(col, justify="right" if col in ("ms", "GFLOP/s", "vs direct") else "left")
    for b in baselines:
        t.add_column(f"vs {b}", justify="right")
    t.add_column("runner-up (slower by)")
    has_auto = any(r["kind"] == "auto" for r in rows)
    if has_auto:
        t.add_column("auto picks")
        t.add_column("auto / fastest", justify="right")
        for b in baselines[:1]:
            t.add_column(f"auto vs {b}", justify="right")
    for (name, pass_), group in _group_by(rows, "name", "pass").items():
        ranked = _ranked(group)
        if not ranked:
            continue
        w = ranked[0]
        runner = (f"{_label(ranked[1])} {ranked[1]['median_ms'] / w['median_ms']:.2f}x"
                  if len(ranked) > 1 else "-")
        cells = [name, PASS_LABEL[pass_], _label(w), _ms(w["median_ms"]),
                 _num(w["gflops"], "{:.1f}"), _speedup(w["speedup_vs_direct"])]
        cells += [_speedup(w.get(f"speedup_vs_{b}")) for b in baselines]
        cells.append(runner)
        if has_auto:
            auto = next((r for r in group if r["kind"] == "auto"), None)
            if auto is None:
                cells += ["-", "-"] + ["-"] * len(baselines[:1])
            else:
                cells += [auto["backend"], f"{auto['median_ms'] / w['median_ms']:.2f}x"]
                cells += [_speedup(auto.get(f"speedup_vs_{b}")) for b in baselines[:1]]
        t.add_row(*cells)
    return t


def info_table(info):
    """The [(label, value)] of :func:`bench.measure.machine_info` as a two-column table."""
    t = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in info:
        t.add_row(k, v)
    return t


def cache_table(entries, cpu, threads):
    """The autotune cache (dict key -> entry) as a table; foreign entries are marked."""
    t = Table(title=f"[bold]autotune cache[/] ({len(entries)} entries)", box=box.SIMPLE_HEAD,
              title_justify="left", pad_edge=False)
    for col in ("case", "x", "w", "params", "pass", "dtype", "threads", "winner", "ms",
                "runner-up"):
        t.add_column(col, justify="right" if col in ("ms", "threads") else "left")
    foreign = other_threads = 0
    for key, e in sorted(entries.items()):
        try:
            k = json.loads(key)
        except ValueError:
            k = {}
        other = k.get("cpu") != cpu
        foreign += other
        other_threads += k.get("threads") != threads
        ptxt = _params_text(k.get("params", {}))
        t.add_row(str(e.get("name", "-")), _compact(k.get("x")), _compact(k.get("w")), ptxt,
                  str(k.get("pass", "?")), str(k.get("dtype", "?")),
                  str(k.get("threads", "?")) + ("" if k.get("threads") == threads else " *"),
                  f"{e['strategy']}/{e['backend']}", _ms(e.get("median_ms")),
                  str(e.get("runner_up") or "-"), style="dim" if other else None)
    notes = []
    if other_threads:
        notes.append(f"* {other_threads} entries were measured with another thread count "
                     f"than the {threads} in use, and are not used now")
    if foreign:
        notes.append(f"{foreign} entries (dim) come from another CPU and are not used here")
    if notes:
        t.caption = "; ".join(notes)
        t.caption_justify = "left"
    return t


def _params_text(params):
    """'stride=2 padding=1' from a cache key's params; defaults left out, equal dims merged."""
    out = []
    for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
        v = params.get(name, default)
        flat = [x for p in v for x in (p if isinstance(p, list) else [p])] \
            if isinstance(v, list) else [v]
        if len(set(flat)) == 1:
            if flat[0] != default:
                out.append(f"{name}={flat[0]}")
        else:
            out.append(f"{name}={_compact(v)}")
    return " ".join(out) or "-"


def _compact(v):
    if isinstance(v, list):
        return "(" + ",".join(_compact(x) for x in v) + ")"
    return str(v)


def tune_table(written):
    """The winners just written by :func:`bench.measure.autotune`."""
    t = Table(title="[bold]autotune: written to the cache[/]", box=box.SIMPLE_HEAD,
              title_justify="left", pad_edge=False)
    for col in ("case", "pass", "winner", "ms", "runner-up", "all candidates (ms)"):
        t.add_column(col, justify="right" if col == "ms" else "left")
    for w in written:
        cands = ", ".join(f"{k} {_ms(v)}" for k, v in w["candidates"].items())
        t.add_row(w["name"], "forward" if w["pass"] == "fwd" else "fwd+bwd",
                  f"{w['strategy']}/{w['backend']}", _ms(w["median_ms"]),
                  w["runner_up"] or "-", cands)
    return t


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------

def _jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def write_json(path, rows):
    """Write ``rows`` as a JSON list of objects (non-finite numbers become null)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(_jsonable(rows), f, indent=1)
        f.write("\n")


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot(path, rows, peak=None, sweep=None):
    """Write a PNG: the crossover map when ``sweep`` is (kernel sizes, image sizes), else bars
    per shape.  Needs matplotlib (the ``compare`` extra).  strategy="auto" rows are left
    out (they repeat one of the strategies)."""
    rows = [r for r in rows if r["kind"] != "auto"]
    if sweep is not None:
        plot_crossover(path, rows, *sweep)
    else:
        plot_bars(path, rows, peak)


_COLORS = {"direct": "#4c72b0", "im2col": "#dd8452", "fft": "#55a868", "winograd": "#c44e52",
           "reference": "#8c8c8c", "torch": "#222222", "scipy": "#9467bd"}


def _color(label):
    """(colour, hatch) of a strategy/backend: one hue per strategy, a lighter shade and a
    hatch for the cython backend (so that bars and map cells stay distinct)."""
    strategy, backend = label.split("/")
    base = _COLORS.get(strategy, "#937860")
    if backend not in ("cython", "cuda"):
        return base, None
    rgb = [int(base[i:i + 2], 16) for i in (1, 3, 5)]
    light = "#" + "".join(f"{int(c + 0.45 * (255 - c)):02x}" for c in rgb)
    return light, "//" if backend == "cython" else ".."


def plot_bars(path, rows, peak=None):
    """GFLOP/s (log scale) per case, one bar per strategy/backend and baseline; one panel
    per pass; the measured GEMM peak as a dashed line."""
    plt = _pyplot()
    passes = [p for p in PASS_LABEL if any(r["pass"] == p for r in rows)]
    names = list(dict.fromkeys(r["name"] for r in rows))
    labels = list(dict.fromkeys(_label(r) for r in rows))
    width = 0.8 / max(len(labels), 1)
    fig_w = max(8.0, 0.9 * len(names) * max(1.0, len(labels) / 4) + 2.5)
    fig, axes = plt.subplots(len(passes), 1, figsize=(fig_w, 3.4 * len(passes) + 1.2),
                             squeeze=False, sharex=True)
    by = {(r["name"], r["pass"], _label(r)): r for r in rows}
    for ax, pass_ in zip(axes[:, 0], passes):
        for j, lab in enumerate(labels):
            xs, ys, wins = [], [], []
            for i, n in enumerate(names):
                r = by.get((n, pass_, lab))
                if r is not None and r["gflops"]:
                    xs.append(i - 0.4 + width * (j + 0.5))
                    ys.append(r["gflops"])
                    wins.append(r["winner"])
            color, hatch = _color(lab)
            bars = ax.bar(xs, ys, width, label=lab, color=color, hatch=hatch,
                          edgecolor="white" if hatch is None else "#333333", linewidth=0.5)
            for b, won in zip(bars, wins):
                if won:
                    ax.annotate("*", (b.get_x() + b.get_width() / 2, b.get_height()),
                                ha="center", va="bottom", fontsize=12, fontweight="bold")
        if peak:
            ax.axhline(peak, color="#aa0000", linestyle="--", linewidth=1)
            ax.text(len(names) - 0.5, peak, f" GEMM peak {peak:.0f}", color="#aa0000",
                    va="bottom", ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_axisbelow(True)
        ax.set_ylabel("GFLOP/s (log)")
        ax.set_title(PASS_LABEL[pass_], loc="left", fontsize=10, fontweight="bold")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.set_xlim(-0.6, len(names) - 0.4)
    axes[-1, 0].set_xticks(range(len(names)))
    axes[-1, 0].set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    handles, labs = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labs, loc="upper center", ncol=min(len(labs), 6), fontsize=8,
               frameon=False)
    threads = rows[0]["threads"] if rows else 0
    fig.suptitle(f"convlab: convolution rate per shape ({_threads(threads)}; * = fastest "
                 f"convlab strategy; FFT rates are effective, direct-algorithm FLOPs)",
                 fontsize=9, y=0.005, va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def crossover_grid(rows, kernels_, sizes, pass_):
    """{(kernel, size): (winner label, speedup over the runner-up)} for one pass."""
    grid = {}
    for (name, p), group in _group_by(rows, "name", "pass").items():
        if p != pass_:
            continue
        ranked = _ranked(group)
        if not ranked:
            continue
        k, s = ranked[0]["w_shape"][-1], ranked[0]["x_shape"][-1]
        margin = ranked[1]["median_ms"] / ranked[0]["median_ms"] if len(ranked) > 1 else None
        grid[(k, s)] = (_label(ranked[0]), margin)
    return grid


def plot_crossover(path, rows, kernels_, sizes):
    """A crossover map per pass: which strategy/backend wins for each (kernel, image) size,
    each cell annotated with the winner's margin over the runner-up."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    passes = [p for p in PASS_LABEL if any(r["pass"] == p for r in rows)]
    labels = sorted({_label(r) for r in rows if r["kind"] == "convlab"
                     and r["strategy"] != "reference"})
    index = {lab: i for i, lab in enumerate(labels)}
    cmap = ListedColormap([_color(lab)[0] for lab in labels] or ["#ffffff"])
    fig, axes = plt.subplots(1, len(passes), figsize=(0.9 * len(kernels_) * len(passes) + 2.5,
                                                      0.7 * len(sizes) + 2.2), squeeze=False)
    for ax, pass_ in zip(axes[0], passes):
        grid = crossover_grid(rows, kernels_, sizes, pass_)
        data = [[index[grid[(k, s)][0]] if (k, s) in grid else float("nan")
                 for k in kernels_] for s in sizes]
        ax.imshow(data, cmap=cmap, vmin=-0.5, vmax=len(labels) - 0.5, origin="lower",
                  aspect="auto")
        for i, s in enumerate(sizes):
            for j, k in enumerate(kernels_):
                if (k, s) in grid:
                    lab, margin = grid[(k, s)]
                    text = lab + (f"\n{margin:.2f}x" if margin else "")
                    ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                            color="black")
        ax.set_xticks(range(len(kernels_)))
        ax.set_xticklabels([f"{k}x{k}" for k in kernels_], fontsize=8)
        ax.set_yticks(range(len(sizes)))
        ax.set_yticklabels([f"{s}px" for s in sizes], fontsize=8)
        ax.set_xlabel("kernel size")
        ax.set_ylabel("image size")
        ax.set_title(PASS_LABEL[pass_], fontsize=10, fontweight="bold")
    handles = [Patch(color=_color(lab)[0], label=lab) for lab in labels]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 6), fontsize=8,
               frameon=False)
    r0 = rows[0] if rows else {"x_shape": ["?"] * 4, "w_shape": ["?"] * 4, "threads": 0}
    fig.suptitle(f"fastest strategy per shape: N={r0['x_shape'][0]}, {r0['x_shape'][1]}->"
                 f"{r0['w_shape'][0]} channels, 'same' padding, {_threads(r0['threads'])}; "
                 f"cell: winner, margin over the runner-up", fontsize=8, y=0.01, va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 0.92))
    fig.savefig(path, dpi=110)
    plt.close(fig)
