"""kernels' public functions on CUDA device arrays: "cuda" as a backend column of the registry.

Device arrays in give numba device arrays out; select(device="cuda") chooses among the cuda
column with a reason; padding happens once, on the device, in the strategies' shared helper;
the bench measures the column on device-resident inputs.  Every result is compared with the
float64 reference strategy on the host.  Without a GPU this file reruns under the CUDA
simulator (tests/cudasim.py), so the shapes are tiny.
"""
import numpy as np
import pytest

import kernels
from cudasim import MODE, in_process, run_file_under_simulator, small_tunables

if MODE != "subprocess":
    from numba import cuda

TOL = {np.float32: 1e-4, np.float64: 1e-10}


@pytest.fixture(autouse=True)
def _small_tunables(monkeypatch):
    yield from small_tunables(monkeypatch, max_blocks=8)


def test_suite_in_simulator_subprocess():
    run_file_under_simulator(__file__, timeout=900)


def close(got, want, dtype, what):
    assert hasattr(got, "copy_to_host"), f"{what}: expected a device array, got {type(got)}"
    host = got.copy_to_host()
    assert host.shape == want.shape and host.dtype == dtype, what
    scale = max(np.abs(want).max(initial=0.0), 1e-30)
    assert np.abs(host - want).max(initial=0.0) <= TOL[dtype] * scale, what


# (x, w, keyword arguments): 1-D, 2-D with asymmetric padding and stride, grouped dilated
CASES = [
    ((2, 2, 7), (3, 2, 3), dict(padding=1)),
    ((1, 2, 5, 6), (2, 2, 2, 3), dict(stride=(2, 1), padding=((1, 0), (2, 1)))),
    ((1, 4, 5, 5), (4, 2, 2, 2), dict(groups=2, dilation=2, padding="same")),
]


@in_process
def test_cuda_is_a_column_of_the_registry():
    pairs = kernels.available("conv")
    assert ("direct", "cuda") in pairs and ("im2col", "cuda") in pairs
    assert ("fft", "cuda") not in pairs and ("winograd", "cuda") not in pairs
    s, b, reason = kernels.select((2, 3, 8, 8), (4, 3, 3, 3), padding=1, device="cuda")
    assert b == "cuda" and s in ("direct", "im2col") and reason.endswith("(on cuda)")
    s, b, _ = kernels.select((2, 1, 8, 8), (4, 1, 3, 3), groups=1, device="cpu")
    assert b in ("numba", "cython")
    with pytest.raises(ValueError, match="device must be one of"):
        kernels.select((2, 3, 8, 8), (4, 3, 3, 3), device="gpu")


@in_process
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("strategy", ["auto", "direct", "im2col"])
@pytest.mark.parametrize("case", CASES, ids=["1d", "2d-asym", "grouped"])
def test_conv_passes_on_device_arrays(case, strategy, dtype):
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    y = kernels.conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                     strategy="reference", **kw)
    gy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db, dgy = (cuda.to_device(a) for a in (x, w, b, gy))
    close(kernels.conv(dx, dw, db, strategy=strategy, **kw), y, dtype, "forward")
    gx = kernels.conv_grad_input(gy.astype(np.float64), w.astype(np.float64), x_shape,
                                 strategy="reference", **kw)
    close(kernels.conv_grad_input(dgy, dw, x_shape, strategy=strategy, **kw), gx, dtype,
          "grad_input")
    gw = kernels.conv_grad_weight(gy.astype(np.float64), x.astype(np.float64), w_shape,
                                  strategy="reference", **kw)
    close(kernels.conv_grad_weight(dgy, dx, w_shape, strategy=strategy, **kw), gw, dtype,
          "grad_weight")


@in_process
def test_host_arrays_on_the_cuda_backend_come_back_as_numpy():
    x = np.arange(10.0).reshape(1, 1, 10)
    w = np.array([[[1.0, -1.0]]])
    y = kernels.conv(x, w, backend="cuda", strategy="direct", padding=1)
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, kernels.conv(x, w, strategy="reference", padding=1))
    # the reference serves device arrays through a host round trip: device array out
    out = kernels.conv(cuda.to_device(x), cuda.to_device(w), strategy="reference")
    np.testing.assert_allclose(out.copy_to_host(), kernels.conv(x, w, strategy="reference"))


@in_process
def test_device_errors_are_raised_before_any_kernel():
    dx = cuda.to_device(np.ones((1, 2, 6, 6), np.float32))
    dw = cuda.to_device(np.ones((2, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="strategy 'fft' cannot run on 'cuda' arrays"):
        kernels.conv(dx, dw, strategy="fft")
    with pytest.raises(ValueError, match="backend 'numba' cannot take 'cuda' arrays"):
        kernels.conv(dx, dw, backend="numba")
    with pytest.raises(TypeError, match="device arrays must share one dtype"):
        kernels.conv(dx, cuda.to_device(np.ones((2, 2, 3, 3))))
    with pytest.raises(ValueError, match="w must have shape|channels|groups"):
        kernels.conv(dx, cuda.to_device(np.ones((2, 3, 3, 3), np.float32)))


@in_process
@pytest.mark.parametrize("kind", ["max", "avg", "l2"])
def test_pool_and_matmul_on_device_arrays(kind):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 5, 6))
    kw = dict(stride=(2, 1), padding=((1, 0), (0, 1)))
    y = kernels.pool(x, kind, (2, 3), backend="numba", **kw)
    dy = kernels.pool(cuda.to_device(x), kind, (2, 3), **kw)
    close(dy, y, np.float64, "pool")
    gy = rng.standard_normal(y.shape)
    close(kernels.pool_grad(cuda.to_device(gy), cuda.to_device(x), kind, (2, 3), **kw),
          kernels.pool_grad(gy, x, kind, (2, 3), backend="numba", **kw), np.float64,
          "pool_grad")
    close(kernels.global_pool(cuda.to_device(x), kind), kernels.global_pool(x, kind),
          np.float64, "global_pool")
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    close(kernels.matmul(cuda.to_device(a), cuda.to_device(b)), a @ b, np.float64, "matmul")
    with pytest.raises(ValueError, match="cannot take 'cuda' arrays"):
        kernels.pool(cuda.to_device(x), kind, 2, backend="cython")


@in_process
def test_bench_measures_and_autotune_records_the_cuda_column(tmp_path, monkeypatch):
    from bench import measure, suites
    from kernels import registry
    monkeypatch.setenv("CONVLAB_CACHE_DIR", str(tmp_path))
    registry.reload_cache()
    case = suites.parse_spec("1,2,6,6:3,2,3,3:padding=1")
    rows, skipped = measure.measure_cases([case], ("fwd",), [("direct", "cuda")], (),
                                          repeat=1, warmup=0, errors=True, peak=0.0,
                                          auto=False)
    assert not skipped and rows[0]["backend"] == "cuda" and rows[0]["max_rel_err"] < 1e-5
    registry.record_tuned(case.x_shape, case.w_shape, case.params(), "float32", "fwd",
                          "direct", "cuda", 1.0)
    s, b, reason = kernels.select(case.x_shape, case.w_shape, device="cuda",
                                  **case.conv_kwargs())
    assert (s, b) == ("direct", "cuda") and reason.startswith("measured")
    assert kernels.select(case.x_shape, case.w_shape, **case.conv_kwargs())[1] != "cuda"
    registry.clear_cache()
