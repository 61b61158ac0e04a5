"""kernels.matmul for every backend in kernels.available("matmul") against np.dot in float64,
on shapes that are not multiples of any tile size."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernels

BACKENDS = [b for _, b in kernels.available("matmul")]
SHAPES = [(1, 1, 1), (1, 7, 1), (3, 5, 7), (17, 1, 9), (64, 64, 64), (65, 33, 17),
          (127, 129, 3), (2, 300, 5), (33, 65, 129)]


def check_matmul(backend, a, b):
    """A length-k dot product in precision u errs by at most ~k*u*(|a| @ |b|) in any summation
    order (blocked, BLAS, FMA); 4x covers the output rounding."""
    got = kernels.matmul(a, b, backend=backend)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = np.dot(a64, b64)
    assert got.shape == want.shape
    assert got.dtype == np.result_type(a.dtype, b.dtype, np.float32)
    u = np.finfo(got.dtype).eps / 2
    tol = 4 * u * max(a.shape[1], 1) * (np.abs(a64) @ np.abs(b64))
    err = np.abs(got - want)
    assert np.all(err <= tol), f"{backend}: max|err| {err.max():.3g} at {np.argmax(err - tol)}"


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_numpy(backend, dtype, shape, rng):
    m, k, n = shape
    check_matmul(backend, rng.standard_normal((m, k)).astype(dtype),
                 rng.standard_normal((k, n)).astype(dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_noncontiguous_operands(backend, rng):
    a = rng.standard_normal((9, 13)).T                      # (13, 9), F-ordered
    b = rng.standard_normal((9, 22))[:, ::2]                  # (9, 11), strided
    check_matmul(backend, a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_and_integer_dtypes_promote_to_float64(backend, rng):
    a32 = rng.standard_normal((4, 5)).astype(np.float32)
    b64 = rng.standard_normal((5, 3))
    assert kernels.matmul(a32, b64, backend=backend).dtype == np.float64
    ai, bi = np.arange(12).reshape(3, 4), np.arange(8).reshape(4, 2)
    c = kernels.matmul(ai, bi, backend=backend)
    assert c.dtype == np.float64
    np.testing.assert_array_equal(c, ai @ bi)


@pytest.mark.parametrize("shape", [(0, 3, 4), (3, 0, 4), (3, 4, 0)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_dims(backend, shape):
    m, k, n = shape
    c = kernels.matmul(np.ones((m, k)), np.ones((k, n)), backend=backend)
    assert c.shape == (m, n)
    np.testing.assert_array_equal(c, np.zeros((m, n)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_propagates(backend):
    a, b = np.ones((5, 6)), np.ones((6, 7))
    a[2, 3] = np.nan
    c = kernels.matmul(a, b, backend=backend)
    assert np.isnan(c[2]).all() and not np.isnan(np.delete(c, 2, axis=0)).any()


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 70), k=st.integers(1, 70), n=st.integers(1, 70),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_random_shapes(backend, m, k, n, dtype, seed):
    rng = np.random.default_rng(seed)
    check_matmul(backend, rng.standard_normal((m, k)).astype(dtype),
                 rng.standard_normal((k, n)).astype(dtype))
