"""pytest-benchmark: pooling forward and gradient per backend, 1-D to 3-D.

    python -m pytest bench/test_bench_pool.py --benchmark-only

Forward results are checked against a numpy reference (sliding windows, float64) before
they are timed; extra_info holds max_rel_err and the bytes moved per call.
"""
import numpy as np
import pytest

import kernels
from kernels.params import pool_params

# (name, x shape, size, stride, padding)
CASES = [
    ("max2x2-64c-56px", (8, 64, 56, 56), 2, None, 0),
    ("max3x3-s2-64c-112px", (4, 64, 112, 112), 3, 2, 1),
    ("avg2x2-128c-28px", (8, 128, 28, 28), 2, None, 0),
    ("max4-32c-4096", (8, 32, 4096), 4, None, 0),
    ("max2x2x2-16c-32vox", (2, 16, 32, 32, 32), 2, None, 0),
]
KINDS = ("max", "avg")
BACKENDS = [b for _, b in kernels.available("pool")]
TOLERANCE = 1e-5


def _reference(x, kind, size, stride, padding):
    """Pooling in float64 with numpy's sliding windows (avg divides by the full window)."""
    p = pool_params(x.shape, size, stride, padding)
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0)) + tuple(p.padding),
                constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, p.size, axis=tuple(range(2, x.ndim)))
    win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in p.stride)]
    axes = tuple(range(x.ndim, 2 * x.ndim - 2))
    return win.max(axis=axes) if kind == "max" else win.mean(axis=axes)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pass_", ("fwd", "grad"))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_pool(case, kind, pass_, backend, run_benchmark, benchmark):
    name, shape, size, stride, padding = case
    gen = np.random.default_rng(0)
    x = gen.standard_normal(shape, dtype=np.float32)
    kw = {"stride": stride, "padding": padding, "backend": backend}
    y = kernels.pool(x, kind, size, **kw)
    ref = _reference(x, kind, size, stride, padding)
    err = float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))
    assert err < TOLERANCE, f"pool {kind} {name} backend {backend}: error {err:.2e}"
    if pass_ == "fwd":
        fn = lambda: kernels.pool(x, kind, size, **kw)  # noqa: E731
        moved = x.nbytes + y.nbytes
    else:
        gy = gen.standard_normal(y.shape, dtype=np.float32)
        fn = lambda: kernels.pool_grad(gy, x, kind, size, **kw)  # noqa: E731
        moved = 2 * x.nbytes + 2 * y.nbytes
    benchmark.group = f"pool {kind} {name} {pass_}"
    benchmark.extra_info.update(backend=backend, max_rel_err=err, bytes_moved=moved,
                                threads=kernels.get_num_threads())
    median = run_benchmark(fn)
    if median:
        benchmark.extra_info["gbytes_per_s"] = round(moved / median / 1e9, 3)
