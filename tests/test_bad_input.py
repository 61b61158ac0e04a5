"""Bad input: one test per case, each asserting the exception type and the words of its message
(the argument's name and the received shape or value); then the inputs that are unusual but
legal: integers, non-contiguous views, empty batches, NaN, float32."""
import numpy as np
import pytest

import kernels
from conftest import conv_pairs, pair_id
from kernels import registry

X = np.zeros((2, 3, 8, 8))
W = np.zeros((4, 3, 3, 3))


def raises(exc, fn, *words, **kwargs):
    """Call fn(**kwargs), expect ``exc`` whose message contains every one of ``words``."""
    with pytest.raises(exc) as info:
        fn(**kwargs) if kwargs else fn()
    msg = str(info.value)
    missing = [w for w in words if w not in msg]
    assert not missing, f"message {msg!r} lacks {missing}"
    return msg


# --------------------------------------------------------------------------------------
# shapes and channels
# --------------------------------------------------------------------------------------

def test_channel_mismatch():
    raises(ValueError, lambda: kernels.conv(X, np.zeros((4, 2, 3, 3))),
           "conv", "channel mismatch", "(4, 2, 3, 3)", "(2, 3, 8, 8)", "3 channels")


def test_groups_not_dividing_input_channels():
    raises(ValueError, lambda: kernels.conv(X, np.zeros((4, 1, 3, 3)), groups=2),
           "groups=2", "input channels", "(2, 3, 8, 8)")


def test_groups_not_dividing_output_channels():
    raises(ValueError, lambda: kernels.conv(np.zeros((1, 4, 5, 5)), np.zeros((3, 2, 3, 3)),
                                            groups=2),
           "groups=2", "output channels", "(3, 2, 3, 3)")


def test_groups_zero():
    raises(ValueError, lambda: kernels.conv(X, W, groups=0), "groups", ">= 1", "0")


def test_groups_not_int():
    raises(TypeError, lambda: kernels.conv(X, W, groups=1.5), "groups", "1.5")


def test_kernel_larger_than_padded_input():
    msg = raises(ValueError, lambda: kernels.conv(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 5, 5))),
                 "output would be empty", "(1, 1, 4, 4)", "(1, 1, 5, 5)")
    for param in ("stride=", "padding=", "dilation=", "groups="):   # every parameter quoted
        assert param in msg


def test_dilated_kernel_larger_than_input():
    raises(ValueError, lambda: kernels.conv(np.zeros((1, 1, 6)), np.zeros((1, 1, 3)),
                                            dilation=3),
           "output would be empty", "dilation=(3,)", "padded size 6", "dilated kernel size 7")


def test_zero_kernel_size():
    raises(ValueError, lambda: kernels.conv(X, np.zeros((4, 3, 0, 3))),
           "kernel sizes", "(4, 3, 0, 3)")


@pytest.mark.parametrize("bad", [0, -1, (1, 0)])
def test_stride_not_positive(bad):
    raises(ValueError, lambda: kernels.conv(X, W, stride=bad), "stride", ">= 1",
           repr((bad, bad) if isinstance(bad, int) else bad))


@pytest.mark.parametrize("bad", [0, -2, (0, 1)])
def test_dilation_not_positive(bad):
    raises(ValueError, lambda: kernels.conv(X, W, dilation=bad), "dilation", ">= 1",
           repr((bad, bad) if isinstance(bad, int) else bad))


def test_stride_not_int():
    raises(TypeError, lambda: kernels.conv(X, W, stride=1.5), "stride", "1.5")


@pytest.mark.parametrize("bad,shown", [(-1, "(-1, -1)"), (((0, -1), 1), "(0, -1)")])
def test_negative_padding(bad, shown):
    raises(ValueError, lambda: kernels.conv(X, W, padding=bad), "padding", ">= 0", shown)


def test_unknown_padding_mode():
    raises(ValueError, lambda: kernels.conv(X, W, padding="full"), "padding", "'full'")


@pytest.mark.parametrize("arg", ["stride", "dilation", "padding"])
def test_tuple_of_wrong_length(arg):
    raises(ValueError, lambda: kernels.conv(X, W, **{arg: (1, 1, 1)}),
           arg, "2", "(1, 1, 1)", "length 3")


def test_padding_pair_of_wrong_length():
    raises(ValueError, lambda: kernels.conv(X, W, padding=((1, 2, 3), 1)),
           "padding", "(lo, hi)", "(1, 2, 3)")


@pytest.mark.parametrize("shape", [(2, 3), (1, 1, 2, 2, 2, 2)])
def test_x_of_wrong_ndim(shape):
    raises(ValueError, lambda: kernels.conv(np.zeros(shape), W), "x", "3, 4 or 5 dims",
           str(shape))


def test_w_ndim_not_matching_x():
    raises(ValueError, lambda: kernels.conv(X, np.zeros((4, 3, 3))), "w", "4 dims",
           "(4, 3, 3)", "(2, 3, 8, 8)")


# --------------------------------------------------------------------------------------
# strategies and backends
# --------------------------------------------------------------------------------------

def test_unknown_strategy():
    raises(ValueError, lambda: kernels.conv(X, W, strategy="magic"), "strategy", "'magic'",
           "direct")


def test_strategy_not_a_string():
    raises(TypeError, lambda: kernels.conv(X, W, strategy=3), "strategy", "3")


def test_unknown_backend():
    raises(ValueError, lambda: kernels.conv(X, W, strategy="direct", backend="gpu9000"),
           "backend", "'gpu9000'")


def test_reference_has_no_backend_choice():
    if not registry.backend_ok("numba"):
        pytest.skip("numba backend not available")
    raises(ValueError, lambda: kernels.conv(X, W, strategy="reference", backend="numba"),
           "reference", "backend", "'numba'")


def test_unavailable_backend():
    if registry.backend_ok("cuda"):
        pytest.skip("cuda is available here")
    raises(ValueError, lambda: kernels.conv(X, W, strategy="direct", backend="cuda"),
           "backend", "'cuda'")


def test_winograd_cannot_serve_a_5x5_kernel():
    if registry.strategy_module("winograd") is None:
        pytest.skip("winograd is not part of this build")
    raises(ValueError, lambda: kernels.conv(X, np.zeros((4, 3, 5, 5)), strategy="winograd"),
           "winograd", "cannot serve", "(2, 3, 8, 8)", "(4, 3, 5, 5)", "3x3")


def test_strategy_that_cannot_serve_says_why(monkeypatch):
    mod = registry.strategy_module("reference")
    monkeypatch.setattr(mod, "supports", lambda p, x, w: "needs an even number of cats")
    raises(ValueError, lambda: kernels.conv(X, W, strategy="reference"),
           "'reference'", "cannot serve", "(2, 3, 8, 8)", "(4, 3, 3, 3)",
           "needs an even number of cats")


# --------------------------------------------------------------------------------------
# dtypes and extra arrays
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("arg", ["x", "w"])
def test_complex_array(arg):
    args = {"x": X, "w": W}
    args[arg] = args[arg].astype(np.complex128)
    raises(TypeError, lambda: kernels.conv(args["x"], args["w"]), arg, "complex128")


@pytest.mark.parametrize("bad,shown", [(np.array([[["a"]]]), "<U1"),
                                       (np.empty((1, 1, 3), dtype=object), "object")])
def test_non_numeric_array(bad, shown):
    raises(TypeError, lambda: kernels.conv(bad, np.zeros((1, 1, 1))), "x", "numeric", shown)


def test_ragged_list():
    raises(TypeError, lambda: kernels.conv([[[1.0, 2.0], [3.0]]], np.zeros((1, 1, 1))), "x")


def test_bias_of_wrong_shape():
    raises(ValueError, lambda: kernels.conv(X, W, np.zeros(3)), "bias", "(4,)", "(3,)")


def test_grad_input_gy_of_wrong_shape():
    raises(ValueError, lambda: kernels.conv_grad_input(np.zeros((2, 4, 5, 5)), W, X.shape),
           "conv_grad_input", "gy", "(2, 4, 6, 6)", "(2, 4, 5, 5)")


def test_grad_weight_gy_of_wrong_shape():
    raises(ValueError, lambda: kernels.conv_grad_weight(np.zeros((2, 5, 6, 6)), X, W.shape),
           "conv_grad_weight", "gy", "(2, 4, 6, 6)", "(2, 5, 6, 6)")


def test_grad_input_x_shape_not_ints():
    raises(TypeError, lambda: kernels.conv_grad_input(np.zeros((2, 4, 6, 6)), W, (2, 3, 8.0, 8)),
           "x_shape", "8.0")


def test_grad_weight_w_shape_of_wrong_length():
    raises(ValueError, lambda: kernels.conv_grad_weight(np.zeros((2, 4, 6, 6)), X, (4, 3, 3)),
           "conv_grad_weight", "w", "(4, 3, 3)")


def test_convolve_w_of_wrong_ndim():
    raises(ValueError, lambda: kernels.convolve(np.zeros((1, 1, 5)), np.ones(3)), "w", "(3,)")


def test_workspace_bytes_unknown_strategy():
    raises(ValueError, lambda: kernels.workspace_bytes("magic", (1, 1, 5), (1, 1, 3)),
           "strategy", "'magic'")


# --------------------------------------------------------------------------------------
# pooling and matmul
# --------------------------------------------------------------------------------------

def test_pool_unknown_kind():
    raises(ValueError, lambda: kernels.pool(X, "median", 2), "kind", "'median'", "max")


def test_pool_padding_not_smaller_than_size():
    raises(ValueError, lambda: kernels.pool(X, "max", 2, padding=2), "padding", "size",
           "(2, 2)")


def test_pool_window_larger_than_input():
    raises(ValueError, lambda: kernels.pool(np.zeros((1, 1, 3, 3)), "avg", 4),
           "output would be empty", "(1, 1, 3, 3)")


def test_pool_size_of_wrong_length():
    raises(ValueError, lambda: kernels.pool(X, "max", (2, 2, 2)), "size", "(2, 2, 2)")


def test_pool_unknown_backend():
    raises(ValueError, lambda: kernels.pool(X, "max", 2, backend="fpga"), "backend", "'fpga'")


def test_pool_grad_gy_of_wrong_shape():
    raises(ValueError, lambda: kernels.pool_grad(np.zeros((2, 3, 3, 3)), X, "max", 2),
           "pool_grad", "gy", "(2, 3, 4, 4)", "(2, 3, 3, 3)")


def test_global_pool_wrong_ndim():
    raises(ValueError, lambda: kernels.global_pool(np.zeros((2, 3)), "avg"), "x", "(2, 3)")


def test_matmul_not_2d():
    raises(ValueError, lambda: kernels.matmul(np.zeros(3), np.zeros((3, 2))), "2-D", "(3,)")


def test_matmul_inner_dims():
    raises(ValueError, lambda: kernels.matmul(np.zeros((2, 3)), np.zeros((4, 2))),
           "inner", "(2, 3)", "(4, 2)")


def test_matmul_unknown_backend():
    raises(ValueError, lambda: kernels.matmul(np.zeros((2, 3)), np.zeros((3, 2)),
                                              backend="abacus"), "backend", "'abacus'")


# --------------------------------------------------------------------------------------
# unusual but legal input
# --------------------------------------------------------------------------------------

ALL = [("reference", "auto")] + conv_pairs()


@pytest.mark.parametrize("pair", ALL, ids=pair_id)
def test_int_inputs_promote_to_float64(pair):
    strategy, backend = pair
    x = np.arange(2 * 3 * 5 * 5).reshape(2, 3, 5, 5) % 7
    w = np.arange(4 * 3 * 3 * 3).reshape(4, 3, 3, 3) % 5 - 2
    y = kernels.conv(x, w, padding=1, strategy=strategy, backend=backend)
    assert y.dtype == np.float64
    want = kernels.conv(x.astype(float), w.astype(float), padding=1, strategy="reference")
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-9)


def test_bool_and_float16_promote():
    xb = np.ones((1, 1, 4), dtype=bool)
    assert kernels.conv(xb, np.ones((1, 1, 2))).dtype == np.float64
    x16, w16 = np.ones((1, 1, 4), np.float16), np.ones((1, 1, 2), np.float16)
    assert kernels.conv(x16, w16).dtype == np.float32


@pytest.mark.parametrize("pair", ALL, ids=pair_id)
def test_noncontiguous_input_works(pair, rng):
    strategy, backend = pair
    base = rng.standard_normal((2, 6, 9, 16))
    x = base[:, ::2, :, ::2]                                     # (2, 3, 9, 8), strided
    w = rng.standard_normal((3, 4, 3, 3)).transpose(1, 0, 2, 3)  # (4, 3, 3, 3), permuted
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    y = kernels.conv(x, w, padding=1, strategy=strategy, backend=backend)
    want = kernels.conv(x.copy(), w.copy(), padding=1, strategy="reference")
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pair", ALL, ids=pair_id)
def test_empty_batch(pair):
    strategy, backend = pair
    x, w = np.zeros((0, 3, 8, 8)), np.zeros((4, 3, 3, 3))
    kw = dict(padding=1, strategy=strategy, backend=backend)
    assert kernels.conv(x, w, **kw).shape == (0, 4, 8, 8)
    assert kernels.conv_grad_input(np.zeros((0, 4, 8, 8)), w, x.shape, **kw).shape == x.shape
    gw = kernels.conv_grad_weight(np.zeros((0, 4, 8, 8)), x, w.shape, **kw)
    assert gw.shape == w.shape and not gw.any()


def test_empty_batch_pool():
    x = np.zeros((0, 2, 6, 6), np.float32)
    y = kernels.pool(x, "max", 2)
    assert y.shape == (0, 2, 3, 3) and y.dtype == np.float32
    assert kernels.pool_grad(y, x, "max", 2).shape == x.shape


@pytest.mark.parametrize("pair", ALL, ids=pair_id)
def test_nan_propagates(pair):
    """A NaN poisons every output whose window reads it.  Transform strategies mix positions
    (FFT the whole input, Winograd a tile: 0 * NaN is NaN), so there it may spread further."""
    strategy, backend = pair
    x, w = np.ones((1, 2, 7, 7)), np.ones((3, 2, 3, 3))
    x[0, 1, 3, 3] = np.nan
    y = kernels.conv(x, w, strategy=strategy, backend=backend)
    assert np.isnan(y[:, :, 1:4, 1:4]).all()
    if strategy not in ("fft", "winograd"):
        nan = np.isnan(y)
        nan[:, :, 1:4, 1:4] = False
        assert not nan.any()


@pytest.mark.parametrize("pair", ALL, ids=pair_id)
def test_float32_in_float32_out(pair, rng):
    strategy, backend = pair
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    kw = dict(padding=1, strategy=strategy, backend=backend)
    assert kernels.conv(x, w, **kw).dtype == np.float32
    assert kernels.conv(x, w, np.zeros(3, np.float32), **kw).dtype == np.float32
    assert kernels.conv_grad_input(gy, w, x.shape, **kw).dtype == np.float32
    assert kernels.conv_grad_weight(gy, x, w.shape, **kw).dtype == np.float32
    assert kernels.conv(x, w.astype(np.float64), **kw).dtype == np.float64


def test_float32_pool_and_matmul():
    x = np.ones((1, 2, 4, 4), np.float32)
    assert kernels.pool(x, "avg", 2).dtype == np.float32
    assert kernels.global_pool(x, "l2").dtype == np.float32
    a = np.ones((3, 4), np.float32)
    assert kernels.matmul(a, a.T).dtype == np.float32
