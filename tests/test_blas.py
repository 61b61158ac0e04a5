"""kernels._blas: the Cython im2col GEMMs on numpy's OpenBLAS (ILP64 entry points) and on the
SciPy fallback give the same results (the process-wide settings: tests/test_runtime.py)."""
import os

import numpy as np
import pytest

import kernels
from kernels import _blas, backends

cython = pytest.mark.skipif(("im2col", "cython") not in kernels.available("conv"),
                            reason="the Cython backend is not built")


def test_gemm_pointers_are_addresses_or_none():
    ptrs = _blas.gemm_pointers()
    assert ptrs is None or (ptrs[0] > 0 and ptrs[1] > 0 and os.path.exists(ptrs[2]))
    assert isinstance(_blas.describe(), str)


@cython
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_and_scipy_blas_agree(dtype):
    backends.load("cython")
    from kernels._cython import im2col
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 11, 9)).astype(dtype)
    w = rng.standard_normal((8, 3, 3, 3)).astype(dtype)
    kw = dict(padding=1, groups=2, strategy="im2col", backend="cython")
    ptrs = _blas.gemm_pointers()
    try:
        im2col.use_blas(0, 0)
        assert im2col.blas_in_use() == "scipy"
        ref = kernels.conv(x, w, **kw)
        gref = kernels.conv_grad_weight(ref, x, w.shape, **kw)
        if ptrs is None:
            pytest.skip("numpy's BLAS entry points were not found here")
        im2col.use_blas(ptrs[0], ptrs[1])
        assert im2col.blas_in_use() == "numpy"
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(kernels.conv(x, w, **kw), ref, rtol=tol, atol=tol)
        np.testing.assert_allclose(kernels.conv_grad_weight(ref, x, w.shape, **kw), gref,
                                   rtol=tol, atol=tol * 10)
    finally:
        im2col.use_blas(*(ptrs[:2] if ptrs else (0, 0)))


@cython
def test_use_blas_needs_both_addresses_or_neither():
    backends.load("cython")
    from kernels._cython import im2col
    with pytest.raises(ValueError, match="both GEMM addresses"):
        im2col.use_blas(1, 0)

