"""pytest-benchmark: the hand-written matmul kernels (numba, cython) against BLAS (np.dot).

    python -m pytest bench/test_bench_matmul.py --benchmark-only

Square sizes and the thin, tall GEMM shapes im2col produces.  The hand-written kernels exist
to be compared with BLAS, not to replace it; extra_info holds gflops, pct_peak (of the
measured GEMM peak) and max_rel_err against a float64 product.
"""
import numpy as np
import pytest

import kernels

# (m, k, n): square products, then im2col-like products (C_out x C_in*k*k @ C_in*k*k x H*W)
SHAPES = [(128, 128, 128), (512, 512, 512), (1024, 1024, 1024),
          (64, 576, 3136), (256, 2304, 196)]
BACKENDS = [b for _, b in kernels.available("matmul")]
TOLERANCE = 1e-4


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_matmul(shape, backend, run_benchmark, benchmark, gemm_peak):
    m, k, n = shape
    gen = np.random.default_rng(0)
    a = gen.standard_normal((m, k), dtype=np.float32)
    b = gen.standard_normal((k, n), dtype=np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    c = kernels.matmul(a, b, backend=backend)
    err = float(np.max(np.abs(c - ref)) / np.max(np.abs(ref)))
    assert err < TOLERANCE, f"matmul {shape} backend {backend}: error {err:.2e}"
    benchmark.group = f"matmul {m}x{k} @ {k}x{n}"
    benchmark.extra_info.update(backend=backend, max_rel_err=err, workspace_bytes=0,
                                threads=kernels.get_num_threads())
    run_benchmark(lambda: kernels.matmul(a, b, backend=backend), 2 * m * k * n, gemm_peak)
