"""Training and inference speed of the course's MNIST CNN: convlab vs PyTorch CPU.

The model is ``engine.zoo.get_model("mnist")`` (Conv2D 20 5x5 relu, Conv2D 40 5x5 relu,
Flatten, Dense 100 relu, Dense 10 softmax; 1.6M parameters) and the same network in PyTorch,
started from the same weights.  Both train with Adam (learning rate 1e-3) on sparse labels,
batch 64, through their usual loops: ``model.fit(verbose=0)`` with the accuracy metric for
convlab; zero_grad / forward / cross_entropy / backward / step plus the batch accuracy for
PyTorch.  Inference is ``model.predict`` against ``softmax(net(x))`` under ``no_grad``.

Data is synthetic (uniform pixels, random labels): speed does not depend on the values.
The two frameworks are timed alternately in one process, ``repeat`` rounds after a warm-up
round, with the same thread count (``kernels.get_num_threads()`` unless ``threads`` is
given); the figures are medians over rounds, and each round's convlab/PyTorch ratio is kept
so a noisy machine shows as a range.  PyTorch is imported before convlab does any work, as in
a user's script: its OpenMP runtime is the one the Cython kernels then share.  Rates are also
given in GFLOP/s (the direct algorithm's multiply-adds x 2 per image: forward, and for training
forward + grad-weight + grad-input but the first layer's) and as a fraction of the measured
float32 GEMM peak.

``--import-order`` measures what the order of a script's imports costs: convlab's training
rate in fresh processes that (a) use convlab before importing PyTorch ("engine first") and
(b) ``import numpy, scipy, torch`` first and run a torch convolution between epochs ("torch
first"), interleaved, ``repeat`` processes each; the ratio b/a is the import-order penalty.

    python -m bench.train_speed                 # batch 64, 10 batches per round, 7 rounds
    python -m bench.train_speed --threads 1 --repeat 9
    python -m bench.train_speed --import-order --repeat 5

    >>> from bench.train_speed import measure_mnist
    >>> r = measure_mnist(batches=2, repeat=1)          # doctest: +SKIP
    >>> sorted(r["ratio"])                               # doctest: +SKIP
    ['infer', 'train']
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time

import numpy as np

import kernels

__all__ = ["measure_mnist", "measure_data_formats", "measure_import_order", "mnist_flops",
           "torch_mnist", "main"]


def torch_mnist(model):
    """The PyTorch twin of the convlab "mnist" model, holding copies of its weights.

    Dense kernels are (in, out) in convlab and (out, in) in PyTorch; convolution weights and
    the flatten order (channels first) are the same in both.
    """
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.Conv2d(20, 40, 5), nn.ReLU(),
                        nn.Flatten(), nn.Linear(40 * 20 * 20, 100), nn.ReLU(),
                        nn.Linear(100, 10))
    mods = [m for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]
    layers = [la for la in model.layers if la.weights]
    with torch.no_grad():
        for mod, layer in zip(mods, layers):
            kernel, bias = layer.get_weights()
            if isinstance(mod, nn.Linear):
                kernel = kernel.T
            mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            mod.bias.copy_(torch.from_numpy(bias))
    return net


def mnist_flops(model, train):
    """FLOPs per image of the model's convolutions and dense layers (multiply-adds x 2):
    forward, or for ``train`` forward + grad-weight + grad-input (none for the first layer,
    whose input needs no gradient)."""
    total, first = 0, True
    for layer in model.layers:
        if not layer.weights:
            continue
        kernel = layer.get_weights()[0]
        if kernel.ndim == 2:                                    # Dense (in, out)
            f = 2 * kernel.shape[0] * kernel.shape[1]
        else:                                                   # Conv (out, in/g, *k)
            f = 2 * int(np.prod(layer.output.shape[1:])) * int(np.prod(kernel.shape[1:]))
        total += f * (1 if not train else (2 if first else 3))
        first = False
    return total


def _median_rate(times, images):
    return images / statistics.median(times)


def measure_mnist(batch_size=64, batches=10, repeat=7, threads=None, seed=0):
    """Images per second of training and inference, convlab and PyTorch, in one process.

    Parameters
    ----------
    batch_size : int
        Images per batch (64 in the course).
    batches : int
        Batches per timed round (one epoch of ``batches * batch_size`` images).
    repeat : int
        Timed rounds per framework, alternating; one untimed warm-up round first (it
        compiles or loads the Numba kernels).
    threads : int, optional
        Thread count for both frameworks (default: ``kernels.get_num_threads()``).
    seed : int
        Seed of the weights and the synthetic data.

    Returns
    -------
    dict with "threads", "batch_size", "images" (per round), "convlab" and "torch" (each
    {"train": img/s, "infer": img/s}, medians), "ratio" ({"train", "infer"}: convlab / PyTorch
    of the medians) and "ratio_range" ({"train", "infer"}: (min, max) of per-round ratios).
    """
    if importlib.util.find_spec("torch") is None:
        raise RuntimeError("bench.train_speed compares with PyTorch, which is not installed "
                           "(pip install torch)")
    import torch

    import engine

    if threads is not None:
        kernels.set_num_threads(threads)
    threads = kernels.get_num_threads()
    torch.set_num_threads(threads)
    engine.set_seed(seed)
    torch.manual_seed(seed)
    n = batch_size * batches
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n)

    model = engine.zoo.get_model("mnist")
    model.compile(engine.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    net = torch_mnist(model)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def engine_train():
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)

    def engine_infer():
        model.predict(x, batch_size=batch_size)

    def torch_train():
        net.train()
        for idx in torch.randperm(n).split(batch_size):
            xb, yb = xt[idx], yt[idx]
            opt.zero_grad()
            out = net(xb)
            loss = torch.nn.functional.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            loss.item()
            float((out.argmax(1) == yb).float().mean())

    def torch_infer():
        net.eval()
        with torch.no_grad():
            torch.cat([torch.softmax(net(xb), 1) for xb in xt.split(batch_size)]).numpy()

    fns = {("convlab", "train"): engine_train, ("torch", "train"): torch_train,
           ("convlab", "infer"): engine_infer, ("torch", "infer"): torch_infer}
    times = {k: [] for k in fns}
    for r in range(repeat + 1):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if r:
                times[k].append(time.perf_counter() - t0)
    rates = {fw: {kind: _median_rate(times[fw, kind], n) for kind in ("train", "infer")}
             for fw in ("convlab", "torch")}
    ratio = {kind: rates["convlab"][kind] / rates["torch"][kind] for kind in ("train", "infer")}
    per_round = {kind: [t / e for e, t in zip(times["convlab", kind], times["torch", kind])]
                 for kind in ("train", "infer")}
    from bench.measure import gemm_peak
    flops = {"train": mnist_flops(model, True), "infer": mnist_flops(model, False)}
    gflops = {fw: {kind: rates[fw][kind] * flops[kind] / 1e9 for kind in flops}
              for fw in rates}
    return {"threads": threads, "batch_size": batch_size, "images": n,
            "convlab": rates["convlab"], "torch": rates["torch"], "ratio": ratio,
            "ratio_range": {k: (min(v), max(v)) for k, v in per_round.items()},
            "flops_per_image": flops, "gflops": gflops, "peak": gemm_peak()}


def measure_data_formats(batch_size=64, batches=10, repeat=7, threads=None, seed=0):
    """Training images per second of the course's MNIST CNN channels first (engine's layers,
    input (N, 1, 28, 28)) and channels last (engine.keras, input (N, 28, 28, 1), as the
    Keras code of the course), from the same weights, in one process.

    Each of ``repeat`` rounds trains ``batches`` batches per format (train_on_batch, Adam),
    the two formats alternating batch by batch in A B B A order, so that a machine whose
    load drifts weighs on both alike; one untimed warm-up round first.

    Returns dict with "channels_first" and "channels_last" (img/s, medians of the per-batch
    times), "ratio" (channels_last / channels_first speed: 1.0 = same, below 1 = channels
    last slower; the median of per-pair ratios) and "ratio_range" (its 10th-90th percentile).
    """
    import engine
    import engine.keras as ek

    if threads is not None:
        kernels.set_num_threads(threads)
    engine.set_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((batch_size, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch_size)
    first = engine.zoo.get_model("mnist")
    last = ek.models.Sequential([
        ek.layers.Conv2D(20, kernel_size=5, activation="relu", input_shape=(28, 28, 1),
                         data_format="channels_last"),
        ek.layers.Conv2D(40, kernel_size=5, activation="relu", data_format="channels_last"),
        ek.layers.Flatten(data_format="channels_last"), ek.layers.Dense(100, activation="relu"),
        ek.layers.Dense(10, activation="softmax")])
    for a, b in zip([la for la in last.layers if la.weights],
                    [la for la in first.layers if la.weights]):
        engine.layers.Layer.set_weights(a, b.get_weights())  # same numbers, engine layouts
    xs = {"channels_first": x, "channels_last": np.ascontiguousarray(x.transpose(0, 2, 3, 1))}
    models = {"channels_first": first, "channels_last": last}
    for m in models.values():
        m.compile(engine.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    times = {k: [] for k in models}
    order = ["channels_first", "channels_last"]
    for r in range(repeat + 1):
        for b in range(batches):
            for k in (order if b % 2 == 0 else order[::-1]):
                t0 = time.perf_counter()
                models[k].train_on_batch(xs[k], y)
                if r:
                    times[k].append(time.perf_counter() - t0)
    rates = {k: batch_size / statistics.median(v) for k, v in times.items()}
    pairs = sorted(f / c for f, c in zip(times["channels_first"], times["channels_last"]))
    q = lambda p: pairs[min(len(pairs) - 1, int(p * len(pairs)))]  # noqa: E731
    return {"threads": kernels.get_num_threads(), "batch_size": batch_size,
            "images": batch_size * batches, **rates, "ratio": statistics.median(pairs),
            "ratio_range": (q(0.1), q(0.9))}


_WORKER = """
import json, os, statistics, sys, time
order, threads, batches, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if order == "torch-first":
    import numpy, scipy, torch
    torch.set_num_threads(threads)
import numpy as np
import engine, kernels
kernels.set_num_threads(threads)
rng = np.random.default_rng(0)
n = 64 * batches
x = rng.random((n, 1, 28, 28), dtype=np.float32)
y = rng.integers(0, 10, n)
engine.set_seed(0)
model = engine.zoo.get_model("mnist")
model.compile(engine.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
model.fit(x[:64], y[:64], batch_size=64, epochs=1, verbose=0)     # compile / load kernels
if order != "torch-first":
    import torch
    torch.set_num_threads(threads)
conv = torch.nn.Conv2d(3, 8, 3)
times = []
for epoch in range(epochs):
    with torch.no_grad():
        conv(torch.randn(4, 3, 32, 32))                            # torch used between epochs
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    times.append(time.perf_counter() - t0)
print(json.dumps({"rate": n / statistics.median(times)}))
"""


def measure_import_order(repeat=5, threads=None, batches=10, epochs=5):
    """convlab's MNIST training images/s in fresh processes that use convlab before importing
    PyTorch ("engine-first") and that import numpy, scipy and torch first and use torch
    between epochs ("torch-first"); ``repeat`` processes of each, interleaved.

    Returns {"engine-first": [img/s per process], "torch-first": [...], "ratio": median
    torch-first / median engine-first, "threads"}.
    """
    import subprocess
    import sys

    threads = threads or kernels.get_num_threads()
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT")}
    rates = {"engine-first": [], "torch-first": []}
    for r in range(repeat):
        for order in (("engine-first", "torch-first") if r % 2 == 0
                      else ("torch-first", "engine-first")):
            proc = subprocess.run([sys.executable, "-c", _WORKER, order, str(threads),
                                   str(batches), str(epochs)], env=env, capture_output=True,
                                  text=True, check=True)
            rates[order].append(json.loads(proc.stdout.strip().splitlines()[-1])["rate"])
    ratio = statistics.median(rates["torch-first"]) / statistics.median(rates["engine-first"])
    return {**rates, "ratio": ratio, "threads": threads}


def main(argv=None):
    """``python -m bench.train_speed``: print the comparison."""
    ap = argparse.ArgumentParser(prog="python -m bench.train_speed",
                                 description="MNIST CNN training/inference images/s, convlab "
                                             "vs PyTorch CPU, same process")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=10, help="batches per timed round")
    ap.add_argument("--repeat", type=int, default=7, help="timed rounds (median)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--data-formats", action="store_true",
                    help="compare channels_last (engine.keras) with channels_first training "
                         "instead of PyTorch")
    ap.add_argument("--import-order", action="store_true",
                    help="convlab's training rate in processes that import torch first vs "
                         "processes that use convlab first (the import-order penalty)")
    args = ap.parse_args(argv)
    if args.import_order:
        r = measure_import_order(args.repeat, args.threads, args.batches)
        print(f"MNIST CNN training, convlab, batch 64, {r['threads']} threads, "
              f"{args.batches * 64} images per epoch, median epoch of 5, one process each")
        for order in ("engine-first", "torch-first"):
            print(f"  {order:13s} " + " ".join(f"{v:6.0f}" for v in r[order]) + " img/s")
        print(f"  torch-first / engine-first (medians): {r['ratio']:.2f}")
        return 0
    if args.data_formats:
        r = measure_data_formats(args.batch_size, args.batches, args.repeat, args.threads)
        lo, hi = r["ratio_range"]
        print(f"MNIST CNN training steps, batch {r['batch_size']}, {r['threads']} threads, "
              f"{args.batches} steps per format per round, {args.repeat} rounds, ABBA")
        print(f"  channels_first {r['channels_first']:8.1f} img/s   channels_last "
              f"{r['channels_last']:8.1f} img/s   speed ratio last/first {r['ratio']:.3f} "
              f"(per-pair 10-90%: {lo:.3f}-{hi:.3f})")
        return 0
    r = measure_mnist(args.batch_size, args.batches, args.repeat, args.threads)
    print(f"MNIST CNN, batch {r['batch_size']}, {r['threads']} threads, {r['images']} images "
          f"per round, medians of {args.repeat} rounds")
    peak = r["peak"]
    for kind in ("train", "infer"):
        lo, hi = r["ratio_range"][kind]
        g = r["gflops"]
        print(f"  {kind:5s}  convlab {r['convlab'][kind]:8.0f} img/s "
              f"({g['convlab'][kind]:5.1f} GFLOP/s, {g['convlab'][kind] / peak:4.0%} of peak)"
              f"   torch {r['torch'][kind]:8.0f} img/s ({g['torch'][kind]:5.1f} GFLOP/s, "
              f"{g['torch'][kind] / peak:4.0%})   ratio {r['ratio'][kind]:.2f}x "
              f"(rounds {lo:.2f}-{hi:.2f})")
    print(f"  GEMM peak (float32 np.dot, {r['threads']} threads): {peak:.1f} GFLOP/s; "
          f"{r['flops_per_image']['train'] / 1e6:.1f} MFLOP per training image, "
          f"{r['flops_per_image']['infer'] / 1e6:.1f} per inference")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
