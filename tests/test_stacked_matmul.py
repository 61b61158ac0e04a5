"""kernels.strategies._common.stacked_matmul: stacks of GEMMs split over threads, each on
single-threaded BLAS, against np.matmul in float64 (the oracle)."""
import numpy as np
import pytest

import kernels
from kernels.strategies._common import stacked_matmul


@pytest.fixture(params=[1, 2])
def threads(request):
    before = kernels.get_num_threads()
    kernels.set_num_threads(request.param)
    yield request.param
    kernels.set_num_threads(before)


@pytest.mark.parametrize("s", [1, 2, 5, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
def test_matches_matmul(s, dtype, threads):
    rng = np.random.default_rng(s)
    a = rng.standard_normal((s, 4, 6)).astype(dtype)
    b = rng.standard_normal((s, 6, 3)).astype(dtype)
    got = stacked_matmul(a, b)
    assert got.shape == (s, 4, 3) and got.dtype == np.result_type(a, b)
    want = np.matmul(a.astype(np.complex128), b.astype(np.complex128))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_out_broadcast_and_transposed_operands(threads):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    x = rng.standard_normal((6, 5, 11)).astype(np.float32)
    out = np.full((6, 3, 11), np.nan, dtype=np.float32)
    # W^T @ x[n] for every n, W^T a transposed view broadcast over the stack
    res = stacked_matmul(np.broadcast_to(w.T, (6, 3, 5)), x, out=out)
    assert res is out
    np.testing.assert_allclose(out, np.einsum("co,nop->ncp", w.T, x), rtol=1e-5, atol=1e-5)
    # a transposed view as the right operand
    y = rng.standard_normal((6, 11, 4)).astype(np.float32)
    np.testing.assert_allclose(stacked_matmul(x, y.transpose(0, 2, 1).transpose(0, 2, 1)),
                               x @ y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stacked_matmul(x, x.transpose(0, 2, 1)),
                               np.einsum("nap,nbp->nab", x, x), rtol=1e-5, atol=1e-4)
