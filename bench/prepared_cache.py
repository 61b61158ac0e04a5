"""Time saved by keeping prepared weights (FFT spectra, Winograd filter transforms) per weight
version: same process, interleaved A/B, medians.

    python -m bench.prepared_cache [--rounds 15] [--batch 16]

Two layers whose auto choice is Winograd (3x3, 16 -> 16 channels, 32x32) and FFT (9x9, 16 ->
16) for every pass.  Per layer, at the kernels level: forward + grad-input (the passes that
take a prepared weight) with a fresh kernels.PreparedCache (one weight version: one training
step) against none, 8 forward batches (an evaluate) with one cache against none, and the
transforms alone (kernels.prepare).  Then a model with both layers: train_on_batch with the
engine's per-version cache (engine.ops.conv.prepared_weights) against none.  ABBA order per
round; prints medians and the median per-round ratios (uncached / cached).
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


def _ab(fns, rounds):
    """Median seconds of each callable in ``fns`` (dict), run in ABBA order per round, and the
    median of the per-round ratios second / first."""
    names = list(fns)
    times = {k: [] for k in names}
    for r in range(rounds):
        for k in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    ratio = statistics.median(b / a for a, b in zip(times[names[0]], times[names[1]]))
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}, ratio


LAYERS = (("wino3x3", (16, 16, 3, 3)), ("fft9x9", (16, 16, 9, 9)))


def run(rounds=15, batch=16, seed=0):
    import kernels
    from engine.ops import conv as conv_op

    rng = np.random.default_rng(seed)
    out = {"batch": batch, "rounds": rounds, "threads": kernels.get_num_threads(),
           "choices": _choices(batch), "layers": {}}
    # kernel level, per layer: the passes that use a prepared weight (forward and
    # grad-input) with a fresh cache (one weight version = one training step) against none;
    # and 8 forward batches (an evaluate) with one cache against none
    for name, w_shape in LAYERS:
        x = rng.standard_normal((batch, 16, 32, 32)).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        gy = rng.standard_normal((batch, 16, 32, 32)).astype(np.float32)

        def step(cache, x=x, w=w, gy=gy):
            kernels.conv(x, w, padding="same", prepared=cache)
            kernels.conv_grad_input(gy, w, x.shape, padding="same", prepared=cache)

        def evaluate(cache, x=x, w=w):
            for _ in range(8):
                kernels.conv(x, w, padding="same", prepared=cache)
        for fn in (step, evaluate):
            fn(None)
            fn(kernels.PreparedCache())
        st, st_ratio = _ab({"cached": lambda: step(kernels.PreparedCache()),
                            "uncached": lambda: step(None)}, rounds)
        ev, ev_ratio = _ab({"cached": lambda: evaluate(kernels.PreparedCache()),
                            "uncached": lambda: evaluate(None)}, rounds)
        tr = {p: _ab({"prepare": lambda p=p: kernels.prepare(
            w, x.shape, padding="same", pass_=p), "none": lambda: None}, rounds)[0]["prepare"]
            for p in ("fwd", "grad_input")}
        out["layers"][name] = {"step_ms": st, "step_ratio": st_ratio, "evaluate_ms": ev,
                               "evaluate_ratio": ev_ratio, "transform_ms": tr}
    # the engine: train_on_batch and evaluate with the per-version cache and without it
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    t = rng.standard_normal((batch, 10)).astype(np.float32)
    m = _model(batch)
    real = conv_op.prepared_weights

    def with_cache(fn, on):
        conv_op.prepared_weights = real if on else (lambda w: None)
        try:
            fn()
        finally:
            conv_op.prepared_weights = real
    for _ in range(2):
        m.train_on_batch(x, t)
    out["train_step_ms"], out["train_step_ratio"] = _ab(
        {"cached": lambda: with_cache(lambda: m.train_on_batch(x, t), True),
         "uncached": lambda: with_cache(lambda: m.train_on_batch(x, t), False)}, rounds)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args(argv)
    r = run(args.rounds, args.batch)
    print(f"batch {r['batch']}, {r['rounds']} ABBA rounds, {r['threads']} threads; medians")
    for name, ch in r["choices"].items():
        print(f"  {name}: " + ", ".join(f"{p} {s}/{b}" for p, (s, b) in ch.items()))
    for name, v in r["layers"].items():
        print(f"  {name}: fwd + grad-input {v['step_ms']['cached']:.2f} ms cached, "
              f"{v['step_ms']['uncached']:.2f} uncached (ratio {v['step_ratio']:.3f}); "
              f"8 forward batches {v['evaluate_ms']['cached']:.2f} / "
              f"{v['evaluate_ms']['uncached']:.2f} ms (ratio {v['evaluate_ratio']:.3f}); "
              f"prepare fwd {v['transform_ms']['fwd']:.3f} ms, grad-input "
              f"{v['transform_ms']['grad_input']:.3f} ms")
    ts = r["train_step_ms"]
    print(f"  model train_on_batch: {ts['cached']:.2f} ms cached, {ts['uncached']:.2f} ms "
          f"uncached (ratio {r['train_step_ratio']:.3f})")
    return r


if __name__ == "__main__":
    main()
