"""The ``convlab`` command: argument parsing only; the work is in measure, report, engine.

    convlab info                      this machine: CPU, threads, BLAS, Numba, Cython, CUDA, peak
    convlab compare --suite quick     every strategy x backend on a suite, tables, --json, --plot
    convlab compile                   compile the Numba kernels ahead into Numba's cache
    convlab autotune --suite 3x3      measure and write the autotune cache (--show, --clear)
    convlab train --dataset digits    train a zoo model, print held-out accuracy
    mpirun -n 4 convlab train ... --distributed      the same, data parallel over MPI
    convlab summary --model mnist     a zoo model's layer table and conv strategies
    convlab explain MODEL INPUT ...   a picture of what a saved model does (bench.explain_cmd)

Exit status: 0 on success, 2 on bad arguments (one line, no traceback), 1 on other failures.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import warnings

__all__ = ["main", "build_parser"]

if __name__ == "__main__":          # run as `python -m bench.cli`: one module, one UsageError
    sys.modules.setdefault("bench.cli", sys.modules[__name__])

# engine.data.DATASET_NAMES (digits, signals, mnist) plus the older spellings idx DIR and
# signals1d
DATASETS = ("digits", "mnist", "signals", "idx", "signals1d")
DEFAULT_MODEL = {"digits": "small_cnn", "idx": "mnist", "mnist": "mnist", "signals": "signal1d",
                 "signals1d": "signal1d"}


class UsageError(Exception):
    """A bad argument found after parsing (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``convlab compare: error: ...`` and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------------------
# argument types
# --------------------------------------------------------------------------------------

def _memory_bytes():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _spec(text):
    from .suites import parse_spec
    try:
        case = parse_spec(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    # x, w and y in float64 (the reference) must fit in this machine's memory
    y_shape = case.params().out_shape(case.x_shape, case.w_shape)
    need = 8 * sum(math.prod(s) for s in (case.x_shape, case.w_shape, y_shape))
    have = _memory_bytes()
    if have and need > have:
        raise argparse.ArgumentTypeError(
            f"shape spec {text!r} needs {need / 2**30:.3g} GiB for x, w and y in float64 "
            f"(the reference), more than this machine's {have / 2**30:.3g} GiB")
    return case


def _positive(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, received {text!r}") \
            from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, received {text!r}")
    return v


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}")
    return v


def _non_negative(text):
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, received {text!r}")
    return v


def _names(text):
    """'a,b' or 'a' -> ['a', 'b'] (used with nargs='+', so 'a b' works too)."""
    return [t for t in (s.strip() for s in text.split(",")) if t]


def _flat(lists):
    return None if lists is None else [x for group in lists for x in group]


def _shape_tuple(text):
    try:
        vals = tuple(int(t) for t in text.split(","))
    except ValueError:
        vals = ()
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive ints such as "
                                         f"1,28,28, received {text!r}")
    return vals


# --------------------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------------------

def build_parser():
    """The argparse parser of ``convlab`` (subcommands info, compare, autotune, train,
    summary)."""
    from .filter_bench import FILTER_SUITES
    from .suites import SUITE_NAMES
    p = _Parser(prog="convlab", description="Compare convolution strategies on this machine; "
                "train and inspect small CNNs.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    info = sub.add_parser("info", help="machine, threads, BLAS, Numba/Cython/CUDA, GEMM peak",
                          description="Describe this machine and convlab's setup.")
    info.add_argument("--no-peak", action="store_true",
                      help="skip measuring the GEMM peak (a few seconds)")
    info.add_argument("--threads", type=_positive, help="thread count to report and use")
    info.set_defaults(func=cmd_info)

    def add_shapes(sp, default_suite, extra=()):
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--suite", choices=SUITE_NAMES + extra, metavar="NAME",
                       help=f"a named suite: {', '.join(SUITE_NAMES + extra)} (default "
                            f"{default_suite})" if default_suite else
                       f"a named suite: {', '.join(SUITE_NAMES)}")
        g.add_argument("--shape", type=_spec, action="append", metavar="SPEC",
                       help="a shape spec such as 8,128,28,28:128,3,3:stride=1,padding=1 "
                            "(X:W[:options], W = C_out,kernel...; repeatable)")
        return g

    def add_selection(sp):
        sp.add_argument("--strategies", type=_names, nargs="+", metavar="NAME",
                        help="strategies to measure, and 'auto' (default: all offered here except "
                             "reference, plus auto)")
        sp.add_argument("--backends", "--backend", type=_names, nargs="+", metavar="NAME",
                        help="backends to measure (default: all offered here)")
        sp.add_argument("--repeat", type=_positive, default=5,
                        help="timed samples per measurement; the median is reported "
                             "(default 5)")
        sp.add_argument("--warmup", type=_non_negative, default=1,
                        help="untimed calls before timing (default 1)")
        sp.add_argument("--threads", type=_positive,
                        help="threads for numba, OpenMP and BLAS (default: CONVLAB_NUM_THREADS "
                             "or all cores)")
        sp.add_argument("--dtype", choices=("float32", "float64"), default="float32")

    cmp_ = sub.add_parser("compare", help="measure every strategy x backend on shapes",
                          description="Measure every offered convolution strategy x backend "
                          "(and baselines) on a suite or on given shapes.")
    add_shapes(cmp_, "quick", FILTER_SUITES)
    add_selection(cmp_)
    cmp_.add_argument("--pass", dest="passes", choices=("fwd", "bwd", "all"), default="all",
                      help="forward, backward (grad-input + grad-weight) or all (default)")
    cmp_.add_argument("--baselines", type=_names, metavar="LIST",
                      help="comma list of torch, scipy, or none (default: those installed)")
    cmp_.add_argument("--peak", type=_positive_float, metavar="GFLOPS",
                      help="GEMM peak for the %% peak column, instead of measuring it")
    cmp_.add_argument("--json", metavar="FILE", help="write the measurements as JSON")
    cmp_.add_argument("--plot", metavar="FILE", help="write a PNG (bars per shape; a "
                      "crossover map for the sweep suite); needs matplotlib")
    cmp_.set_defaults(func=cmd_compare)

    comp = sub.add_parser("compile", help="compile the Numba kernels ahead, into Numba's cache",
                          description="Compile every Numba kernel that `convlab compare` runs "
                          "on a suite, on two cores where there are, into Numba's on-disk "
                          "cache (NUMBA_CACHE_DIR, else __pycache__ beside the kernels), so "
                          "that a first compare or training run loads them instead of "
                          "compiling.  Run it once after installing or upgrading Numba.")
    comp.add_argument("--suite", choices=SUITE_NAMES, default="quick", metavar="NAME",
                      help="the suite whose kernels to compile (default quick, which reaches "
                           "every conv kernel: one signature per dtype)")
    comp.add_argument("--dtype", choices=("float32", "float64"), nargs="+",
                      default=["float32"], help="dtypes to compile for (default float32)")
    comp.set_defaults(func=cmd_compile)

    tune = sub.add_parser("autotune", help="measure strategies and write the autotune cache",
                          description="Measure every strategy on the shapes of a suite or a "
                          "model and record the fastest in the autotune cache, which "
                          "kernels.select() consults first.")
    g = add_shapes(tune, None)
    g.add_argument("--model", metavar="NAME", help="the conv layers of a zoo model "
                   "(mnist, small_cnn, small_resnet, signal1d)")
    g.add_argument("--show", action="store_true", help="print the cache and exit")
    g.add_argument("--clear", action="store_true", help="delete the cache and exit")
    tune.add_argument("--batch-size", type=_positive, default=32,
                      help="batch size of the model's layers (--model; default 32)")
    tune.add_argument("--input-shape", type=_shape_tuple, metavar="C,H,W",
                      help="per-sample input shape of the model (--model)")
    add_selection(tune)
    tune.set_defaults(func=cmd_autotune)

    train = sub.add_parser("train", help="train a zoo model on a dataset",
                           description="Train a zoo model and print its held-out accuracy.")
    train.add_argument("--dataset", nargs="+", default=["digits"], metavar="NAME",
                       help="digits (scikit-learn's 8x8), signals (generated 1-D "
                            "spectra), or mnist [DIR] (MNIST's four IDX files in DIR, else "
                            "Keras's ~/.keras/datasets/mnist.npz or $CONVLAB_DATA); idx DIR "
                            "and signals1d are older spellings")
    train.add_argument("--model", metavar="NAME", help="zoo model (default: small_cnn for "
                       "digits, mnist for idx, signal1d for signals1d)")
    train.add_argument("--epochs", type=_positive, default=3)
    train.add_argument("--batch-size", type=_positive, default=32)
    train.add_argument("--limit", type=_positive,
                       help="use at most this many training samples (quick runs)")
    train.add_argument("--optimizer", default="adam", help="optimizer name (default adam)")
    train.add_argument("--threads", type=_positive)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--distributed", action="store_true",
                       help="data parallel over the MPI world (mpirun -n N convlab train ... "
                            "--distributed); --batch-size is the global batch")
    train.set_defaults(func=cmd_train)

    summ = sub.add_parser("summary", help="print a zoo model's layer table",
                          description="Print a zoo model's summary: layers, output shapes, "
                          "parameters, receptive fields and conv strategies.")
    summ.add_argument("--model", required=True, metavar="NAME")
    summ.add_argument("--input-shape", type=_shape_tuple, metavar="C,H,W",
                      help="per-sample input shape (default: the model's usual input)")
    summ.add_argument("--classes", type=_positive, default=10)
    summ.add_argument("--batch-size", type=_positive, default=32,
                      help="batch size for the conv strategy choice (default 32)")
    summ.set_defaults(func=cmd_summary)
    from .filter_cmd import add_parser as add_filter_parser
    add_filter_parser(sub)                  # `convlab filter` lives in bench/filter_cmd.py
    from . import explain_cmd
    explain_cmd.add_parser(sub, _positive)
    return p


# --------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------

def _set_threads(args):
    if getattr(args, "threads", None):
        import kernels
        kernels.set_num_threads(args.threads)


def cmd_info(args):
    from . import measure, report
    _set_threads(args)
    report.console().print(report.info_table(measure.machine_info(peak=not args.no_peak)))
    return 0


def _pairs(args):
    """(strategy, backend) pairs of --strategies / --backends, or UsageError."""
    import kernels
    from kernels import registry

    from . import measure
    strategies, backends = _flat(args.strategies), _flat(args.backends)
    offered = kernels.available("conv")
    if strategies:
        strategies = [s for s in strategies if s != "auto"]
    for s in strategies or ():
        if s not in registry.strategies():
            raise UsageError(f"unknown strategy {s!r}; valid: "
                             f"{', '.join(registry.strategies())}")
        if not any(o[0] == s for o in offered):
            raise UsageError(f"strategy {s!r} is not available here; available: "
                             f"{', '.join(sorted({o[0] for o in offered}))}")
    for b in backends or ():
        if b not in registry.BACKENDS:
            raise UsageError(f"unknown backend {b!r}; valid: {', '.join(registry.BACKENDS)}")
        if not any(o[1] == b for o in offered):
            raise UsageError(f"backend {b!r} is not available here; available: "
                             f"{', '.join(sorted({o[1] for o in offered} - {'numpy'}))}")
    pairs = measure.strategy_pairs(strategies, backends)
    if not pairs:
        raise UsageError(f"no offered strategy/backend matches --strategies "
                         f"{','.join(strategies or ['(all)'])} --backends "
                         f"{','.join(backends or ['(all)'])}; offered: "
                         f"{', '.join(f'{s}/{b}' for s, b in offered)}")
    return pairs


def _cases(args, default_suite):
    from .suites import get_suite
    if args.shape:
        return list(args.shape), None
    name = args.suite or default_suite
    return list(get_suite(name)), name


def _baselines(args, console):
    from . import measure
    if args.baselines is None:
        chosen = [b for b in measure.BASELINES if measure.baseline_missing(b) is None]
        missing = [f"{b} ({measure.baseline_missing(b)})" for b in measure.BASELINES
                   if b not in chosen]
        if missing:
            console.print(f"[dim]baselines not measured: {', '.join(missing)}[/]")
        return chosen
    if args.baselines == ["none"]:
        return []
    for b in args.baselines:
        if b not in measure.BASELINES:
            raise UsageError(f"unknown baseline {b!r}; valid: "
                             f"{', '.join(measure.BASELINES)}, none")
    for b in args.baselines:
        why = measure.baseline_missing(b)
        if why:
            raise RuntimeError(f"baseline {b}: {why} (pip install 'convlab[compare]')")
    return list(dict.fromkeys(args.baselines))


def _check_writable(path, what):
    """Refuse, before any measurement, an output path that cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{what} {path!r}: directory {folder!r} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{what} {path!r} is a directory")
    existed = os.path.exists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        raise UsageError(f"{what} {path!r} cannot be written: {e.strerror or e}") from None
    if not existed:
        os.unlink(path)


def _warn_if_busy(measure):
    why = measure.busy_warning()
    if why:
        print(f"convlab: warning: {why}", file=sys.stderr)


def cmd_compare(args):
    from . import filter_bench, measure, report
    if args.suite in filter_bench.FILTER_SUITES:
        return filter_bench.compare(args)
    from .suites import SWEEP_SUITES, sweep_axes
    out = report.console()
    _set_threads(args)
    pairs = _pairs(args)
    cases, suite = _cases(args, "quick")
    for flag in ("json", "plot"):
        if getattr(args, flag):
            _check_writable(getattr(args, flag), f"--{flag}")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise RuntimeError("--plot needs matplotlib (pip install 'convlab[compare]')") \
                from None
    baselines = _baselines(args, out)
    passes = measure.PASS_CHOICES[args.passes]
    _warn_if_busy(measure)
    # measured by measure_cases after the Numba kernels are compiled (a compile on the other
    # core would lower it)
    peak = args.peak
    # strategy="auto" is measured beside the strategies unless --strategies leaves it out
    auto = not args.strategies or "auto" in _flat(args.strategies)
    total = len(cases) * len(passes) * (len(pairs) + len(baselines) + auto)
    # before anything is timed: the Numba kernels (compiled on a first run, on two cores
    # where there are; `convlab compile` does it ahead) and the baselines' imports
    with report.console(stderr=True).status("loading the Numba kernels (a first run "
                                            "compiles them) and the baselines"):
        measure.warm_numba(cases, passes, pairs, args.dtype, baselines)
    with report.progress(total, f"compare {suite or 'shapes'}") as advance:
        rows, skipped = measure.measure_cases(cases, passes, pairs, baselines,
                                              repeat=args.repeat, warmup=args.warmup,
                                              dtype=args.dtype, peak=peak, progress=advance,
                                              auto=auto, precompile=False)
    peak = peak or measure.gemm_peak()
    for t in report.compare_tables(rows, skipped, baselines):
        out.print(t)
    out.print(report.winners_table(rows, baselines))
    out.print(f"GEMM peak (float32 np.dot): {peak:.1f} GFLOP/s; times are medians of "
              f"{args.repeat} samples; 'vs X' = X's time / this time (above 1: faster).")
    if args.json:
        report.write_json(args.json, rows)
        out.print(f"wrote {len(rows)} measurements to {args.json}")
    if args.plot:
        sweep = sweep_axes(cases) if suite in SWEEP_SUITES else None
        report.plot(args.plot, rows, peak=peak, sweep=sweep)
        out.print(f"wrote {'crossover map' if sweep else 'bar chart'} to {args.plot}")
    return 0


def cmd_compile(args):
    import time

    from numba.core import config as numba_config

    from . import measure, report
    from .suites import get_suite
    out = report.console()
    pairs = measure.strategy_pairs(backends=["numba"])
    pairs = [p for p in pairs if p[1] == "numba"]
    if not pairs:
        raise RuntimeError("the numba backend offers no conv strategy here")
    where = numba_config.CACHE_DIR or "__pycache__ beside kernels/_numba"
    for dtype in dict.fromkeys(args.dtype):
        t0 = time.perf_counter()
        rc = measure.warm_numba(get_suite(args.suite), measure.PASSES, pairs, dtype)
        helper = "" if rc is None else (" on two processes" if rc == 0 else
                                        f" (the helper process failed with status {rc}; "
                                        f"its kernels compile on first use)")
        out.print(f"compiled or loaded the {dtype} Numba kernels of "
                  f"{', '.join(s for s, _ in pairs)} on suite {args.suite} in "
                  f"{time.perf_counter() - t0:.1f} s{helper}; cache: {where}")
    return 0


def cmd_autotune(args):
    import kernels
    from kernels import registry

    from . import measure, report
    out = report.console()
    _set_threads(args)
    if args.clear:
        path = registry.cache_path()
        existed = os.path.exists(path)
        registry.clear_cache()
        out.print(f"removed {path}" if existed else f"no cache at {path}")
        return 0
    if args.show:
        entries = registry.read_cache()
        out.print(f"cache file: {registry.cache_path()}")
        out.print(report.cache_table(entries, registry.cpu_model(), kernels.get_num_threads()))
        return 0
    pairs = _pairs(args)
    if args.model:
        from .suites import model_cases
        _check_model(_engine(), args.model)
        cases = model_cases(args.model, args.batch_size, args.input_shape)
        label = f"model {args.model}"
    else:
        cases, suite = _cases(args, "default")
        label = f"suite {suite}" if suite else "shapes"
    total = len(cases) * len(measure.PASSES) * len(pairs)
    _warn_if_busy(measure)
    with report.progress(total, f"autotune {label}") as advance:
        written = measure.autotune(cases, pairs, repeat=args.repeat, warmup=args.warmup,
                                   dtype=args.dtype, progress=advance)
    out.print(report.tune_table(written))
    out.print(f"wrote {len(written)} entries to {registry.cache_path()} "
              f"({kernels.get_num_threads()} threads, {args.dtype}); kernels.select() now "
              f"reports 'measured' for these shapes")
    return 0


def _engine():
    try:
        import engine
        import engine.zoo  # noqa: F401
    except ImportError as e:
        raise RuntimeError(f"this command needs convlab's engine (engine.zoo), which could "
                           f"not be imported: {e}") from None
    return engine


def _check_model(engine, name):
    if name not in engine.zoo.MODEL_NAMES:
        raise UsageError(f"unknown model {name!r}; valid models: "
                         f"{', '.join(engine.zoo.MODEL_NAMES)}")


def _check_dataset(dataset):
    kind = dataset[0]
    if kind not in DATASETS:
        raise UsageError(f"unknown dataset {kind!r}; valid: digits, signals, mnist [DIR] "
                         f"(also idx DIR, signals1d)")
    if kind == "mnist" and len(dataset) == 2:
        if not os.path.isdir(dataset[1]):
            raise UsageError(f"--dataset mnist: {dataset[1]!r} is not a directory")
    elif kind == "mnist" and len(dataset) > 2:
        raise UsageError("--dataset mnist takes at most one directory: --dataset mnist [DIR]")
    elif kind == "idx":
        if len(dataset) != 2:
            raise UsageError("--dataset idx needs one directory: --dataset idx DIR")
        if not os.path.isdir(dataset[1]):
            raise UsageError(f"--dataset idx: {dataset[1]!r} is not a directory")
    elif len(dataset) != 1:
        raise UsageError(f"--dataset {kind} takes no further argument, received "
                         f"{' '.join(dataset[1:])!r}")


def _load_dataset(engine, dataset, seed):
    kind = dataset[0]
    if kind == "digits":
        return engine.data.load_digits(seed=seed)
    if kind in ("signals", "signals1d"):
        return engine.data.load_signals(seed=seed)
    if kind == "mnist":  # the directory given, else Keras's cache or $CONVLAB_DATA
        return engine.data.load_mnist(dataset[1] if len(dataset) > 1 else None)
    return engine.data.load_mnist(dataset[1])


def cmd_train(args):
    from . import report
    _check_dataset(args.dataset)
    engine = _engine()
    out = report.console()
    if args.distributed:
        engine.distributed.init()  # before --threads, which overrides its share of the cores
        out.quiet = not engine.distributed.is_main()
    _set_threads(args)
    model_name = args.model or DEFAULT_MODEL[args.dataset[0]]
    _check_model(engine, model_name)
    if args.optimizer.lower() not in engine.optim.OPTIMIZERS:
        raise UsageError(f"unknown optimizer {args.optimizer!r}; valid optimizers: "
                         f"{', '.join(engine.optim.OPTIMIZERS)}")
    (x_train, y_train), (x_test, y_test) = _load_dataset(engine, args.dataset, args.seed)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:max(args.limit // 4, 1)], y_test[:max(args.limit // 4, 1)]
    classes = max(int(max(y_train.max(), y_test.max())) + 1, 2)
    engine.set_seed(args.seed)
    try:
        model = engine.zoo.get_model(model_name, x_train.shape[1:], classes)
    except ValueError as e:
        raise UsageError(f"model {model_name!r} does not fit dataset {args.dataset[0]}: {e}") \
            from None
    model.compile(optimizer=args.optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    out.print(f"training {model_name} ({model.count_params():,} parameters) on "
              f"{' '.join(args.dataset)}: {len(x_train)} training and {len(x_test)} held-out "
              f"samples of shape {tuple(x_train.shape[1:])}, {classes} classes, "
              f"{args.epochs} epochs, batch {args.batch_size}")
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=1,
              validation_data=(x_test, y_test))
    loss, acc = model.evaluate(x_test, y_test, batch_size=max(args.batch_size, 256))
    out.print(f"held-out accuracy: {acc:.4f} (loss {loss:.4f}, {len(x_test)} samples)")
    return 0


def cmd_summary(args):
    engine = _engine()
    _check_model(engine, args.model)
    try:
        model = engine.zoo.get_model(args.model, args.input_shape, args.classes)
    except ValueError as e:
        raise UsageError(str(e)) from None
    model.summary(batch_size=args.batch_size, strategies=True)
    return 0


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------

def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    return f"convlab: warning: {message}\n"


def _status(code):
    """The exit status; in an MPI world of more than one (train --distributed), a failing
    rank ends every rank, which would otherwise wait for it forever."""
    dist = sys.modules.get("engine.distributed")
    if code and dist is not None and dist.size() > 1:
        dist.abort(code)
    return code


def main(argv=None):
    """Run ``convlab`` with ``argv`` (default sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"convlab {args.command}"
    old_format, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        from kernels import runtime  # threads, memory, BLAS on convlab's team: before timing
        runtime.ensure()
        return args.func(args) or 0
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return _status(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return _status(130)
    except Exception as e:  # every other failure: one line, exit 1
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"{prog}: error: {msg}", file=sys.stderr)
        if os.environ.get("CONVLAB_TRACEBACK") == "1":
            raise
        return _status(1)
    finally:
        warnings.formatwarning = old_format


if __name__ == "__main__":
    sys.exit(main())
