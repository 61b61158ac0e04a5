"""kernels.filters against scipy.ndimage (the oracle), plus the notes' examples.

float32 results are compared with a tolerance (convlab sums in float32, scipy in float64 and
rounds); float64 and every integer dtype must match scipy exactly or to the last bits, and
the median must match exactly in every dtype and strategy.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ndi = pytest.importorskip("scipy.ndimage")

from kernels import filters as F  # noqa: E402
from kernels.filters._params import extend_index  # noqa: E402

MODES = ("reflect", "nearest", "mirror", "constant", "wrap")


def _image(shape, dtype, seed=0):
    gen = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "u":
        return gen.integers(0, 256, shape).astype(dtype)
    if np.dtype(dtype).kind == "i":
        return gen.integers(-300, 300, shape).astype(dtype)
    return gen.random(shape).astype(dtype)


def _check(got, ref, x):
    assert got.dtype == ref.dtype == x.dtype
    assert got.shape == ref.shape
    if x.dtype == np.float32:
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-6 * scale)
    elif x.dtype == np.float64:
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(got, ref)


# --------------------------------------------------------------------------------------
# boundary modes
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_extension_matches_scipy(mode, n):
    """Each extended element, read back through scipy's correlate1d with one-hot weights."""
    x = np.arange(1.0, n + 1)
    B = 2 * n + 3
    idx = extend_index(n, B, B, mode)
    for j in list(range(-B, 0)) + list(range(n, n + B)):
        w = np.zeros(2 * B + 1)
        out = 0 if j < 0 else n - 1          # output `out` reads extended element j
        w[j - out + B] = 1.0
        expect = ndi.correlate1d(x, w, mode=mode, cval=-7.0)[out]
        src = idx[j + B]
        assert (x[src] if src >= 0 else -7.0) == expect, (mode, n, j)


# --------------------------------------------------------------------------------------
# linear filters
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", "int16"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(13, 17), (5, 6, 7)])
def test_gaussian_matches_scipy(shape, mode, dtype):
    x = _image(shape, dtype)
    for sigma in (0.7, 1.5):
        _check(F.gaussian(x, sigma, mode=mode, cval=3.0),
               ndi.gaussian_filter(x, sigma, mode=mode, cval=3.0), x)


def test_gaussian_per_axis_radius_truncate_and_zero_sigma():
    x = _image((9, 30), "float64")
    _check(F.gaussian(x, (0.0, 2.0)), ndi.gaussian_filter(x, (0.0, 2.0)), x)
    _check(F.gaussian(x, (1.0, 3.0), mode=("wrap", "mirror")),
           ndi.gaussian_filter(x, (1.0, 3.0), mode=("wrap", "mirror")), x)
    _check(F.gaussian(x, 2.0, truncate=1.5), ndi.gaussian_filter(x, 2.0, truncate=1.5), x)
    _check(F.gaussian(x, 2.0, radius=(1, 20)), ndi.gaussian_filter(x, 2.0, radius=(1, 20)), x)
    u = _image((4, 40), "uint8")
    _check(F.gaussian(u, 9.0), ndi.gaussian_filter(u, 9.0), u)   # radius 36 > line length


@pytest.mark.parametrize("mode", MODES)
def test_gaussian_fft_strategy_matches_scipy(mode):
    x = _image((40, 50), "float32")
    got = F.gaussian(x, 6.0, mode=mode, cval=0.5, strategy="fft")
    np.testing.assert_allclose(got, ndi.gaussian_filter(x, 6.0, mode=mode, cval=0.5),
                               atol=2e-6)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(F.gaussian(x64, (3.0, 20.0), mode=mode, strategy="fft"),
                               ndi.gaussian_filter(x64, (3.0, 20.0), mode=mode), atol=1e-12)


def test_gaussian_batch_axes():
    x = _image((2, 3, 20, 21), "float32")
    got = F.gaussian(x, 1.5, axes=(-2, -1))
    _check(got, ndi.gaussian_filter(x, 1.5, axes=(-2, -1)), x)
    ref = np.stack([[ndi.gaussian_filter(x[n, c], 1.5) for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(got, ref, atol=2e-6)


@pytest.mark.parametrize("strategy", ["separable", "running"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8"])
@pytest.mark.parametrize("mode", MODES)
def test_uniform_matches_scipy(mode, dtype, strategy):
    x = _image((11, 7, 9), dtype)
    for size in (3, 4, (5, 1, 2)):
        got = F.uniform(x, size, mode=mode, cval=2.0, strategy=strategy)
        ref = ndi.uniform_filter(x, size, mode=mode, cval=2.0)
        if dtype == "uint8" and strategy == "separable":
            # direct taps round differently from scipy's running sum: off by one at most
            assert np.abs(got.astype(int) - ref).max() <= 1
        else:
            _check(got, ref, x)


def test_uniform_auto_is_exact_for_uint8_and_batches():
    x = _image((2, 30, 31), "uint8")
    _check(F.uniform(x, 7, axes=(1, 2)), ndi.uniform_filter(x, 7, axes=(1, 2)), x)
    assert F.select("uniform", x.shape, "uint8", size=3)[0] == "running"


@pytest.mark.parametrize("op", ["sobel", "prewitt"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", "int16"])
@pytest.mark.parametrize("mode", MODES)
def test_derivatives_match_scipy(op, mode, dtype):
    for shape in ((10, 12), (4, 5, 6)):
        x = _image(shape, dtype)
        for axis in range(len(shape)):
            got = getattr(F, op)(x, axis, mode=mode, cval=1.0)
            ref = getattr(ndi, op)(x, axis, mode=mode, cval=1.0)
            _check(got, ref, x)


def test_scharr_is_scipy_correlate1d_passes():
    x = _image((9, 10, 11), "float64")
    for axis in range(3):
        ref = ndi.correlate1d(x, [-1, 0, 1], axis, mode="mirror")
        for other in range(3):
            if other != axis:
                ref = ndi.correlate1d(ref, [3, 10, 3], other, mode="mirror")
        _check(F.scharr(x, axis, mode="mirror"), ref, x)


def test_sobel_axes_batch_and_mode_per_axis():
    x = _image((3, 16, 15), "float32")
    got = F.sobel(x, axis=-1, axes=(1, 2))
    ref = np.stack([ndi.sobel(x[n], axis=-1) for n in range(3)])
    np.testing.assert_allclose(got, ref, atol=1e-5)
    y = _image((8, 9), "float64")
    _check(F.sobel(y, 0, mode=("wrap", "constant")),
           ndi.sobel(y, 0, mode=("wrap", "constant")), y)


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8"])
@pytest.mark.parametrize("mode", MODES)
def test_laplace_matches_scipy(mode, dtype):
    for shape in ((10, 12), (4, 5, 6)):
        x = _image(shape, dtype)
        _check(F.laplace(x, mode=mode, cval=2.0), ndi.laplace(x, mode=mode, cval=2.0), x)
    x = _image((2, 9, 10), dtype)
    _check(F.laplace(x, axes=(1, 2)), ndi.laplace(x, axes=(1, 2)), x)


# --------------------------------------------------------------------------------------
# median
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["auto", "network", "sorted", "select"])
@pytest.mark.parametrize("dtype", ["float32", "uint8", "int16"])
@pytest.mark.parametrize("mode", MODES)
def test_median_matches_scipy_exactly(mode, dtype, strategy):
    x = _image((19, 23), dtype)
    for size in (3, 4, 5, (3, 7)):
        got = F.median(x, size, mode=mode, cval=5, strategy=strategy)
        np.testing.assert_array_equal(got, ndi.median_filter(x, size, mode=mode, cval=5))
        assert got.dtype == x.dtype


@pytest.mark.parametrize("mode", MODES)
def test_median_histogram_uint8(mode):
    x = _image((20, 25), "uint8")
    for size in (3, 9, (5, 2)):
        np.testing.assert_array_equal(F.median(x, size, mode=mode, strategy="histogram"),
                                      ndi.median_filter(x, size, mode=mode))
    fp = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0], [1, 0, 1]], bool)
    np.testing.assert_array_equal(F.median(x, footprint=fp, mode=mode, strategy="histogram"),
                                  ndi.median_filter(x, footprint=fp, mode=mode))


def test_median_large_windows_3d_footprints_and_batches():
    x = _image((6, 7, 8), "float32")
    for size in (3, (3, 3, 1), (1, 3, 3), 5):
        np.testing.assert_array_equal(F.median(x, size), ndi.median_filter(x, size))
    fp = np.zeros((3, 3, 3), bool)
    fp[1] = True
    fp[:, 1, 1] = True
    np.testing.assert_array_equal(F.median(x, footprint=fp, mode="wrap"),
                                  ndi.median_filter(x, footprint=fp, mode="wrap"))
    b = _image((2, 3, 30, 31), "float32")
    np.testing.assert_array_equal(F.median(b, 9, axes=(2, 3)),
                                  ndi.median_filter(b, 9, axes=(2, 3)))
    u = _image((30, 31), "uint8")
    np.testing.assert_array_equal(F.median(u, 9), ndi.median_filter(u, 9))
    np.testing.assert_array_equal(F.median(u, 11, mode="constant", cval=-3),
                                  ndi.median_filter(u, 11, mode="constant", cval=-3))


def test_median_nan_does_not_hang():
    x = _image((12, 12), "float32")
    x[3, 4] = np.nan
    for strategy in ("network", "sorted", "select"):
        assert F.median(x, 7, strategy=strategy).shape == x.shape


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), kh=st.integers(1, 6),
       kw=st.integers(1, 6), mode=st.sampled_from(MODES), seed=st.integers(0, 99))
def test_median_and_gaussian_property(h, w, kh, kw, mode, seed):
    x = _image((h, w), "float32", seed)
    np.testing.assert_array_equal(F.median(x, (kh, kw), mode=mode),
                                  ndi.median_filter(x, (kh, kw), mode=mode))
    u = _image((h, w), "uint8", seed)
    np.testing.assert_array_equal(F.gaussian(u, (kh / 3, kw / 2), mode=mode),
                                  ndi.gaussian_filter(u, (kh / 3, kw / 2), mode=mode))


# --------------------------------------------------------------------------------------
# the notes' examples
# --------------------------------------------------------------------------------------

def test_sobel_notes_example():
    """The notes' figures 1.4 / 3.2 / 4.0 / 2.0: a 9x9 image with a one-pixel bright bar.

    A filled square (2 px or more a side) gives 1.4 / 3.2 / 4.0 / 4.2 instead (outer corner,
    beside it, along an edge, inner corner); 2.0 is the end of a one-pixel line."""
    bar = np.zeros((9, 9), np.float32)
    bar[4, 2:7] = 1
    gx, gy = F.sobel(bar, axis=1), F.sobel(bar, axis=0)
    m = F.magnitude(gx, gy)
    assert m.dtype == np.float32
    m = m.astype(np.float64)
    np.testing.assert_allclose(m, np.hypot(ndi.sobel(bar, 1), ndi.sobel(bar, 0)), atol=1e-6)
    assert np.round([m[3, 1], m[3, 2], m[3, 4], m[4, 1]], 1).tolist() == [1.4, 3.2, 4.0, 2.0]
    assert set(np.round(m, 1).ravel().tolist()) == {0.0, 1.4, 3.2, 4.0, 2.0}
    square = np.zeros((9, 9), np.uint8)
    square[2:7, 2:7] = 1
    ms = F.gradient_magnitude(square)
    assert set(np.round(ms, 1).ravel().tolist()) == {0.0, 1.4, 3.2, 4.0, 4.2}
    assert ms.dtype == np.float64


def test_salt_and_pepper_restoration():
    """10% of the pixels hit, half salt (255) half pepper (0): a 3x3 median restores the
    image, exactly as scipy's."""
    gen = np.random.default_rng(1)
    yy, xx = np.mgrid[:128, :128]
    clean = (100 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0)).astype(np.uint8)
    noisy = clean.copy()
    hit = gen.random(clean.shape) < 0.10
    salt = gen.random(clean.shape) < 0.5
    noisy[hit & salt] = 255
    noisy[hit & ~salt] = 0
    restored = F.median(noisy, 3)
    np.testing.assert_array_equal(restored, ndi.median_filter(noisy, 3))
    bad_before = np.mean(np.abs(noisy.astype(int) - clean) > 20)
    bad_after = np.mean(np.abs(restored.astype(int) - clean) > 20)
    assert bad_before > 0.09 and bad_after < 0.005
    f = F.median(noisy.astype(np.float32) / 255, 5)
    assert np.mean(np.abs(f * 255 - clean) > 20) < 0.005


# --------------------------------------------------------------------------------------
# selection and errors
# --------------------------------------------------------------------------------------

def test_select_is_pure_and_explains():
    assert F.select("median", (1024, 1024), "float32", size=3) == \
        F.select("median", (1024, 1024), "float32", size=3)
    assert F.select("median", (64, 64), "float32", size=5)[0] == "network"
    assert F.select("median", (64, 64), "float32", size=9)[0] == "sorted"
    assert F.select("median", (64, 64), "uint8", size=9)[0] == "histogram"
    fp = np.ones((7, 7), bool)
    fp[0, 0] = False
    assert F.select("median", (64, 64), "float32", footprint=fp)[0] == "select"
    s, why = F.select("gaussian", (1024, 1024), "float32", sigma=16)
    assert s == "fft" and "radius 64" in why
    assert F.select("gaussian", (1024, 1024), "float32", sigma=1)[0] == "separable"
    assert F.select("gaussian", (64, 64), "uint8", sigma=30)[0] == "separable"
    assert F.select("uniform", (64, 64), "float32", size=31)[0] == "running"
    assert F.select("uniform", (64, 64), "float32", size=7)[0] == "separable"


@pytest.mark.parametrize("call, exc, text", [
    (lambda x: F.gaussian(x, 1, mode="reflekt"), ValueError, "mode must be one of"),
    (lambda x: F.gaussian(x, -1), ValueError, "sigma must be finite and >= 0"),
    (lambda x: F.gaussian(x, (1, 2, 3)), ValueError, "sigma must be one value or 2"),
    (lambda x: F.gaussian(x, 1, axes=(0, 0)), ValueError, "axes must be distinct"),
    (lambda x: F.gaussian(x, 1, axes=(5,)), ValueError, "axis 5 is out of range"),
    (lambda x: F.gaussian(x, 1, strategy="winograd"), ValueError, "unknown strategy"),
    (lambda x: F.uniform(x, 0), ValueError, "size must be >= 1"),
    (lambda x: F.uniform(x, 2.5), TypeError, "size must be a positive int"),
    (lambda x: F.median(x, 3, strategy="histogram"), ValueError, "needs uint8"),
    (lambda x: F.median(x, 11, strategy="network"), ValueError, "up to 81"),
    (lambda x: F.median(x, footprint=np.ones(3)), ValueError, "footprint must have 2 dims"),
    (lambda x: F.median(x, 3, mode=("wrap", "wrap")), TypeError, "one string"),
    (lambda x: F.sobel(x, axis=2), ValueError, "axis 2 is out of range"),
    (lambda x: F.sobel(x, axis=0, axes=(1,)), ValueError, "must be one of the filtered"),
    (lambda x: F.gaussian(x.astype(np.complex64), 1), TypeError, "real dtype"),
    (lambda x: F.gaussian(x.astype(np.float16), 1), TypeError, "real dtype"),
    (lambda x: F.magnitude(x, x[:2]), ValueError, "share one shape"),
])
def test_bad_arguments(call, exc, text):
    x = np.zeros((6, 6), np.float32)
    with pytest.raises(exc, match=text):
        call(x)


def test_empty_and_dtype_preserved():
    e = np.zeros((0, 5), np.float32)
    assert F.gaussian(e, 1).shape == (0, 5) and F.median(e, 3).shape == (0, 5)
    b = np.eye(6, dtype=bool)
    np.testing.assert_array_equal(F.gaussian(b, 1), ndi.gaussian_filter(b, 1))


# --------------------------------------------------------------------------------------
# bench and CLI
# --------------------------------------------------------------------------------------

def test_filter_bench_rows_have_the_compare_keys():
    from bench.filter_bench import FilterCase, crossover, measure
    cases = [FilterCase("g", "gaussian", 2.0, shape=(24, 24)),
             FilterCase("m", "median", 3, shape=(20, 21), dtype="uint8")]
    rows = measure(cases, repeat=1, warmup=1, baselines=("scipy",))
    for r in rows:
        assert {"shape", "strategy", "backend", "pass", "median_ms", "gflops", "max_rel_err",
                "workspace_bytes"} <= set(r)
        assert r["median_ms"] > 0
    med = [r for r in rows if r["op"] == "median"]
    assert all(r["max_rel_err"] == 0.0 for r in med)
    assert {r["strategy"] for r in rows if r["op"] == "gaussian"} >= {"auto", "separable",
                                                                      "fft", "scipy.ndimage"}
    assert set(crossover(rows)) == {(2.0, 24)}


def test_cli_filter_npy(tmp_path, capsys):
    from bench.cli import main
    gen = np.random.default_rng(0)
    img = gen.integers(0, 256, (30, 40)).astype(np.uint8)
    src = tmp_path / "in.npy"
    np.save(src, img)
    out = tmp_path / "out.npy"
    assert main(["filter", str(src), "--median", "3", "--out", str(out)]) == 0
    np.testing.assert_array_equal(np.load(out), ndi.median_filter(img, 3))
    assert "median size=3" in capsys.readouterr().out
    assert main(["filter", str(src), "--gaussian", "1.5", "--mode", "wrap", "--out",
                 str(out)]) == 0
    np.testing.assert_array_equal(np.load(out), ndi.gaussian_filter(img, 1.5, mode="wrap"))
    assert main(["filter", str(src), "--sobel", "--out", str(out)]) == 0
    edges = np.load(out)
    m = np.hypot(ndi.sobel(img.astype(float), 0), ndi.sobel(img.astype(float), 1))
    np.testing.assert_array_equal(edges, np.clip(m * (255 / m.max()) + 0.5, 0, 255)
                                  .astype(np.uint8))
    rgb = np.stack([img, img[::-1], img[:, ::-1]], axis=-1)
    np.save(src, rgb)
    assert main(["filter", str(src), "--uniform", "3", "--out", str(out)]) == 0
    np.testing.assert_array_equal(np.load(out), ndi.uniform_filter(rgb, 3, axes=(0, 1)))


def test_cli_filter_errors(tmp_path, capsys):
    from bench.cli import main
    src = tmp_path / "in.npy"
    np.save(src, np.zeros((8, 8), np.uint8))
    assert main(["filter", str(tmp_path / "missing.npy"), "--sobel", "--out",
                 str(tmp_path / "o.npy")]) == 2
    assert main(["filter", str(src), "--median", "3", "--strategy", "fft", "--out",
                 str(tmp_path / "o.npy")]) == 2
    assert "unknown strategy" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["filter", str(src), "--out", str(tmp_path / "o.npy")])
    assert e.value.code == 2
