"""engine.explain beside captum (PyTorch) on the course's MNIST net, with the same weights, in
the same run: integrated gradients (50 steps, 16 MNIST-sized images) and occlusion (4x4
window, stride 2), on uniform noise images and on MNIST-like digits (the bundled 8x8 digits
resized to 20x20 in a 28x28 frame, blank around, as MNIST).  Results are checked against
captum's before anything is timed.

    python -m pytest bench/test_bench_explain.py --benchmark-only
    python -m bench.test_bench_explain [--rounds 5] [--threads 1]   interleaved A/B medians

Torch runs with the same thread count as convlab (CONVLAB_NUM_THREADS).  Skipped without
captum (pip install captum).

Measured 2026-12-03 on the development machine (2 cores shared with six other jobs, load
average about 10; CONVLAB_NUM_THREADS=1, torch 2.13 CPU, captum 0.9.0; 3 interleaved
rounds, medians; results equal to captum's within 3.2e-6 of the largest attribution):

    workload                          convlab   captum   captum/convlab (median of rounds)
    ig-50steps-16img                   4.51 s   5.46 s   1.21x
    occlusion-4x4-stride2-16img        3.38 s   8.19 s   2.42x
    occlusion-4x4-stride2-16digits     2.53 s   7.96 s   3.14x

At 2 threads under that load convlab's kernels lost most of their speed to spinning
OpenMP/BLAS threads (one IG run: 36 s against captum's 2.9 s), so the figures above use one.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pytest

N_IMAGES, STEPS, WINDOW, STRIDE = 16, 50, 4, 2


def setup(seed=0):
    """(engine model, torch twin, x, targets): the course's MNIST net with random weights
    shared by both frameworks."""
    import torch

    import engine
    import kernels
    torch.set_num_threads(kernels.get_num_threads())
    engine.set_seed(seed)
    model = engine.zoo.get_model("mnist", (1, 28, 28), 10)
    w = model.get_weights()
    nn = torch.nn
    c1, c2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 40, 5)
    fc1, fc2 = nn.Linear(w[4].shape[0], 100), nn.Linear(100, 10)
    with torch.no_grad():
        for mod, k, b in ((c1, w[0], w[1]), (c2, w[2], w[3]), (fc1, w[4].T, w[5]),
                          (fc2, w[6].T, w[7])):
            mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(k)))
            mod.bias.copy_(torch.from_numpy(b))
    # The engine model ends in a softmax and explains the pre-softmax score: so does the twin.
    twin = nn.Sequential(c1, nn.ReLU(), c2, nn.ReLU(), nn.Flatten(), fc1, nn.ReLU(), fc2)
    x = np.random.default_rng(seed).random((N_IMAGES, 1, 28, 28)).astype(np.float32)
    return model, twin.eval(), x, np.arange(N_IMAGES) % 10


def mnist_like(n=N_IMAGES):
    """n bundled 8x8 digits resized to 20x20 (linear) and centred in 28x28, as MNIST."""
    from scipy import ndimage

    import engine
    (x, _), _ = engine.data.load_digits()
    out = np.zeros((n, 1, 28, 28), np.float32)
    for i in range(n):
        out[i, 0, 4:24, 4:24] = np.clip(ndimage.zoom(x[i, 0], 2.5, order=1), 0, 1)
    return out


def workloads(model, twin, x, t):
    """{name: (convlab fn, captum fn)}, each returning a numpy array."""
    import torch
    from captum.attr import IntegratedGradients, Occlusion

    from engine import explain
    xt, tl = torch.from_numpy(x), t.tolist()
    ig, occ = IntegratedGradients(twin), Occlusion(twin)
    digits = mnist_like(len(x))
    dt = torch.from_numpy(digits)
    return {
        f"ig-{STEPS}steps-{N_IMAGES}img": (
            lambda: explain.integrated_gradients(model, x, t, steps=STEPS),
            lambda: ig.attribute(xt, target=tl, n_steps=STEPS).numpy()),
        f"occlusion-{WINDOW}x{WINDOW}-stride{STRIDE}-{N_IMAGES}img": (
            lambda: explain.occlusion(model, x, t, window=WINDOW, stride=STRIDE),
            lambda: occ.attribute(xt, sliding_window_shapes=(1, WINDOW, WINDOW),
                                  strides=(1, STRIDE, STRIDE), target=tl).numpy()[:, 0]),
        f"occlusion-{WINDOW}x{WINDOW}-stride{STRIDE}-{N_IMAGES}digits": (
            lambda: explain.occlusion(model, digits, t, window=WINDOW, stride=STRIDE),
            lambda: occ.attribute(dt, sliding_window_shapes=(1, WINDOW, WINDOW),
                                  strides=(1, STRIDE, STRIDE), target=tl).numpy()[:, 0]),
    }


def check_agree(ours, theirs, name):
    scale = float(np.abs(theirs).max())
    err = float(np.abs(ours - theirs).max()) / scale
    assert err < 1e-3, f"{name}: convlab and captum differ by {err:.2e} (relative to max)"
    return err


_state = {}


def _shared():
    if not _state:
        model, twin, x, t = setup()
        _state["fns"] = workloads(model, twin, x, t)
        _state["checked"] = {}
    return _state


NAMES = [f"ig-{STEPS}steps-{N_IMAGES}img",
         f"occlusion-{WINDOW}x{WINDOW}-stride{STRIDE}-{N_IMAGES}img",
         f"occlusion-{WINDOW}x{WINDOW}-stride{STRIDE}-{N_IMAGES}digits"]


@pytest.mark.parametrize("impl", ["convlab", "captum"])
@pytest.mark.parametrize("name", NAMES)
def test_explain_vs_captum(name, impl, run_benchmark, benchmark):
    pytest.importorskip("torch")
    pytest.importorskip("captum.attr")
    state = _shared()
    ours_fn, theirs_fn = state["fns"][name]
    if name not in state["checked"]:
        state["checked"][name] = check_agree(ours_fn(), theirs_fn(), name)
    benchmark.group = f"explain {name}"
    benchmark.extra_info["max_rel_diff_vs_captum"] = state["checked"][name]
    run_benchmark(ours_fn if impl == "convlab" else theirs_fn)


def main(argv=None):
    """Interleaved A/B: each round times convlab then captum on the same inputs; prints the
    medians and the median of the per-round ratios (captum / convlab: > 1 = convlab
    faster)."""
    p = argparse.ArgumentParser(prog="python -m bench.test_bench_explain")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, help="threads for both (default: convlab's)")
    p.add_argument("--only", help="run the workloads whose name contains this text")
    args = p.parse_args(argv)
    import kernels
    if args.threads:
        kernels.set_num_threads(args.threads)
    state = _shared()
    print(f"threads {kernels.get_num_threads()}, {args.rounds} interleaved rounds")
    for name, (ours_fn, theirs_fn) in state["fns"].items():
        if args.only and args.only not in name:
            continue
        err = check_agree(ours_fn(), theirs_fn(), name)
        ours, theirs = [], []
        for _ in range(args.rounds):
            for fn, acc in ((ours_fn, ours), (theirs_fn, theirs)):
                t0 = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - t0)
        ratio = np.median(np.array(theirs) / np.array(ours))
        print(f"{name:34s} convlab {np.median(ours):7.3f} s  captum {np.median(theirs):7.3f} s"
              f"  captum/convlab {ratio:5.2f}x  (max rel diff {err:.1e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
