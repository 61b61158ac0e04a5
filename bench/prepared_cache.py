"""Time saved by keeping prepared weights (FFT spectra, Winograd filter transforms) per weight
version: same process, interleaved A/B, medians.

    python -m bench.prepared_cache [--rounds 15] [--batch 16]

A small model whose auto choice is Winograd for one conv (3x3, 16 -> 16 channels) and FFT for
another (9x9, 16 -> 16): each training step and each evaluate pass runs once with the engine's
per-version cache (engine.ops.conv.prepared_weights) and once without it (every pass
transforms the weight itself), alternating, and the per-layer transform costs are timed on
their own (kernels.prepare).  Prints a table; returns the figures as a dict.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _model(batch):
    import engine
    m = engine.Sequential([
        engine.layers.Conv2D(16, 3, padding="same", input_shape=(3, 32, 32)),
        engine.layers.Conv2D(16, 3, padding="same", name="wino3x3"),
        engine.layers.Conv2D(16, 9, padding="same", name="fft9x9"),
        engine.layers.Flatten(), engine.layers.Dense(10)])
    m.compile("sgd", "mse")
    return m


def _choices(batch):
    import kernels
    out = {}
    for name, w in (("wino3x3", (16, 16, 3, 3)), ("fft9x9", (16, 16, 9, 9))):
        out[name] = {p: kernels.select((batch, 16, 32, 32), w, padding="same",
                                       need_backward=True, pass_=p)[:2]
                     for p in ("fwd", "grad_input", "grad_weight")}
    return out


def _median_ms(fn, rounds):
    t = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1e3


def run(rounds=15, batch=16, seed=0):
    import kernels
    from engine.ops import conv as conv_op

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    t = rng.standard_normal((batch, 10)).astype(np.float32)
    xe = rng.standard_normal((8 * batch, 3, 32, 32)).astype(np.float32)
    te = rng.standard_normal((8 * batch, 10)).astype(np.float32)
    m = _model(batch)
    real = conv_op.prepared_weights
    modes = {"cached": real, "uncached": lambda w: None}
    steps = {k: [] for k in modes}
    evals = {k: [] for k in modes}
    for _ in range(2):                              # warm-up: compile, allocate
        m.train_on_batch(x, t)
        m.evaluate(xe, te, batch_size=batch, verbose=0)
    for _ in range(rounds):                         # interleaved A/B
        for k, fn in modes.items():
            conv_op.prepared_weights = fn
            try:
                t0 = time.perf_counter()
                m.train_on_batch(x, t)
                steps[k].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                m.evaluate(xe, te, batch_size=batch, verbose=0)
                evals[k].append(time.perf_counter() - t0)
            finally:
                conv_op.prepared_weights = real
    # the transforms themselves, per layer and pass (what the cache saves when it hits)
    transforms = {}
    for name, w_shape, strategy in (("wino3x3", (16, 16, 3, 3), "winograd"),
                                    ("fft9x9", (16, 16, 9, 9), "fft")):
        w = rng.standard_normal(w_shape).astype(np.float32)
        for p in ("fwd", "grad_input"):
            transforms[f"{name} {p}"] = _median_ms(
                lambda w=w, p=p, s=strategy: kernels.prepare(
                    w, (batch, 16, 32, 32), padding="same", strategy=s, pass_=p),
                rounds)
    med = {k: {"step_ms": statistics.median(steps[k]) * 1e3,
               "evaluate_ms": statistics.median(evals[k]) * 1e3} for k in modes}
    ratios = [u / c for u, c in zip(steps["uncached"], steps["cached"])]
    return {"batch": batch, "rounds": rounds, "threads": kernels.get_num_threads(),
            "choices": _choices(batch), "median": med,
            "step_ratio_median": statistics.median(ratios),
            "evaluate_ratio_median": statistics.median(
                [u / c for u, c in zip(evals["uncached"], evals["cached"])]),
            "transform_ms": transforms}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args(argv)
    r = run(args.rounds, args.batch)
    print(f"batch {r['batch']}, {r['rounds']} interleaved rounds, {r['threads']} threads")
    for name, ch in r["choices"].items():
        print(f"  {name}: " + ", ".join(f"{p} {s}/{b}" for p, (s, b) in ch.items()))
    for k, v in r["median"].items():
        print(f"  {k:9s} train step {v['step_ms']:8.2f} ms   evaluate (8 batches) "
              f"{v['evaluate_ms']:8.2f} ms")
    print(f"  uncached/cached per-round ratio, median: step {r['step_ratio_median']:.3f}, "
          f"evaluate {r['evaluate_ratio_median']:.3f}")
    for k, v in r["transform_ms"].items():
        print(f"  transform {k:22s} {v:7.3f} ms")
    return r


if __name__ == "__main__":
    main()
