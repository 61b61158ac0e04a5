"""kernels.params: one normalisation of stride / padding / dilation / groups, the output-size
rule, pooling parameters, dtype promotion and the 5-D helpers; conv_flops and
workspace_bytes."""
import dataclasses
import itertools
import json

import numpy as np
import pytest

import kernels
from kernels.params import (ConvParams, as_float_array, common_dtype, conv_out_size,
                            conv_params, pad5d, pool_params, to5d)


def test_ints_expand_to_every_dim():
    p = conv_params((2, 3, 9, 8), (4, 3, 3, 3), stride=2, padding=1, dilation=3)
    assert p == ConvParams(2, (2, 2), ((1, 1), (1, 1)), (3, 3), 1)


def test_tuples_pairs_lists_and_numpy_ints():
    p = conv_params((1, 4, 9, 9, 9), (4, 2, 3, 3, 3), stride=[1, np.int64(2), 3],
                    padding=(1, (0, 2), [3, 1]), dilation=(1, 2, 1), groups=np.int32(2))
    assert p.stride == (1, 2, 3) and p.dilation == (1, 2, 1) and p.groups == 2
    assert p.padding == ((1, 1), (0, 2), (3, 1))
    assert all(type(v) is int for v in p.stride + p.dilation + sum(p.padding, ()))


@pytest.mark.parametrize("mode", ["valid", "VALID"])
def test_valid_is_no_padding(mode):
    assert conv_params((1, 1, 7), (1, 1, 3), padding=mode).padding == ((0, 0),)


@pytest.mark.parametrize("k,d,want", [(3, 1, (1, 1)), (4, 1, (1, 2)), (1, 1, (0, 0)),
                                      (3, 2, (2, 2)), (2, 3, (1, 2)), (6, 1, (2, 3))])
def test_same_splits_the_odd_extra_to_the_high_side(k, d, want):
    p = conv_params((1, 1, 9), (1, 1, k), padding="same", dilation=d)
    assert p.padding == (want,)
    assert conv_params((1, 1, 9), (1, 1, k), padding="SAME", dilation=d) == p


def test_same_keeps_the_size_at_stride_1():
    for n, k, d in itertools.product(range(1, 8), range(1, 6), range(1, 4)):
        p = conv_params((1, 1, n), (1, 1, k), padding="same", dilation=d)
        assert p.out_shape((1, 1, n), (1, 1, k)) == (1, 1, n)


def test_output_size_rule_counts_window_positions():
    """floor((n + lo + hi - d(k-1) - 1)/s) + 1 is the number of start positions t*s whose
    dilated window fits in the padded input."""
    for n, k, s, d, lo, hi in itertools.product(range(1, 8), range(1, 4), range(1, 4),
                                                range(1, 3), range(3), range(3)):
        fits = [t for t in range(0, n + lo + hi) if t % s == 0 and t + d * (k - 1) < n + lo + hi]
        if fits:
            assert conv_out_size(n, k, s, d, lo, hi) == len(fits)


def test_out_shape_and_padded_spatial():
    p = conv_params((2, 3, 10, 11), (5, 3, 3, 2), stride=(2, 1), padding=(1, (0, 3)),
                    dilation=(1, 2))
    assert p.out_shape((2, 3, 10, 11), (5, 3, 3, 2)) == (2, 5, 5, 12)
    assert p.padded_spatial((10, 11)) == (12, 14)
    assert p.is_padded and not conv_params((1, 1, 5), (1, 1, 3)).is_padded
    y = kernels.conv(np.ones((2, 3, 10, 11)), np.ones((5, 3, 3, 2)), stride=(2, 1),
                     padding=(1, (0, 3)), dilation=(1, 2), strategy="reference")
    assert y.shape == (2, 5, 5, 12)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_as3d_adds_leading_singleton_dims(ndim):
    x, w = (1, 2) + (7, 8, 9)[:ndim], (2, 2) + (3, 2, 1)[:ndim]
    p = conv_params(x, w, stride=2, padding=((1, 2),) * ndim, dilation=1)
    q = p.as3d()
    extra = 3 - ndim
    assert q.ndim == 3 and q.groups == p.groups
    assert q.stride == (1,) * extra + p.stride and q.dilation == (1,) * extra + p.dilation
    assert q.padding == ((0, 0),) * extra + p.padding
    assert q.out_spatial(to5d(np.empty(x)).shape[2:], to5d(np.empty(w)).shape[2:]) == \
        (1,) * extra + p.out_spatial(x[2:], w[2:])


def test_params_are_frozen_hashable_and_json_keyed():
    p = conv_params((1, 2, 6, 6), (2, 1, 3, 3), stride=2, padding=((0, 1), 1), groups=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.stride = (1, 1)
    assert hash(p) == hash(conv_params((1, 2, 6, 6), (2, 1, 3, 3), stride=(2, 2),
                                       padding=((0, 1), (1, 1)), groups=2))
    assert json.loads(json.dumps(p.key())) == {"stride": [2, 2], "padding": [[0, 1], [1, 1]],
                                               "dilation": [1, 1], "groups": 2}


def test_bool_is_not_an_int():
    with pytest.raises(TypeError, match="stride"):
        conv_params((1, 1, 5), (1, 1, 3), stride=True)


def test_op_name_appears_in_errors():
    with pytest.raises(ValueError, match="^my_layer: "):
        conv_params((1, 1, 5), (1, 1, 3), stride=0, op="my_layer")


# --------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------

def test_pool_stride_defaults_to_size():
    p = pool_params((1, 1, 9, 8), (3, 2))
    assert p.size == (3, 2) and p.stride == (3, 2) and p.padding == ((0, 0), (0, 0))
    assert p.dilation == (1, 1) and p.groups == 1


def test_pool_same_gives_ceil_of_in_over_stride():
    for n, k, s in itertools.product(range(1, 10), range(1, 5), range(1, 4)):
        p = pool_params((1, 1, n), k, s, "same")
        assert p.out_spatial((n,), p.size) == (-(-n // s),), (n, k, s, p.padding)
        (lo, hi), = p.padding
        assert 0 <= hi - lo <= 1


def test_pool_padding_pairs():
    p = pool_params((1, 1, 9, 9, 9), 3, (1, 2, 3), (0, (1, 2), 1))
    assert p.padding == ((0, 0), (1, 2), (1, 1)) and p.stride == (1, 2, 3)


# --------------------------------------------------------------------------------------
# dtypes and 5-D helpers
# --------------------------------------------------------------------------------------

def test_float_arrays_pass_through_without_copy():
    for dt in (np.float32, np.float64):
        a = np.ones(3, dt)
        assert as_float_array(a, "x", "conv") is a


@pytest.mark.parametrize("dt,want", [(np.int8, np.float64), (np.int64, np.float64),
                                     (np.uint16, np.float64), (bool, np.float64),
                                     (np.float16, np.float32), (np.longdouble, np.float64)])
def test_promotion(dt, want):
    assert as_float_array(np.ones(3, dt), "x", "conv").dtype == want


def test_lists_become_float64_arrays():
    a = as_float_array([[1, 2], [3, 4]], "x", "conv")
    assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (2, 2)


def test_common_dtype():
    f32, f64 = np.ones(1, np.float32), np.ones(1)
    assert common_dtype(f32, f32) == np.float32
    assert common_dtype(f32, f64) == np.float64
    assert common_dtype(f32, None) == np.float32


@pytest.mark.parametrize("shape,want", [((2, 3, 4), (2, 3, 1, 1, 4)),
                                        ((2, 3, 4, 5), (2, 3, 1, 4, 5)),
                                        ((2, 3, 4, 5, 6), (2, 3, 4, 5, 6))])
def test_to5d_is_a_view(shape, want):
    a = np.arange(np.prod(shape), dtype=float).reshape(shape)
    b = to5d(a)
    assert b.shape == want and np.shares_memory(a, b)


def test_pad5d_pads_with_the_fill_value():
    p = conv_params((1, 1, 2, 3), (1, 1, 1, 1), padding=((1, 0), (0, 2))).as3d()
    out = pad5d(to5d(np.ones((1, 1, 2, 3))), p, value=-np.inf)
    assert out.shape == (1, 1, 1, 3, 5) and out.flags.c_contiguous
    want = np.full((3, 5), -np.inf)
    want[1:, :3] = 1
    np.testing.assert_array_equal(out[0, 0, 0], want)


def test_pad5d_without_padding_returns_contiguous_data():
    p = conv_params((1, 1, 4), (1, 1, 1)).as3d()
    a = to5d(np.ones((1, 1, 8))[..., ::2])
    out = pad5d(a, p)
    assert out.flags.c_contiguous and np.array_equal(out, a)


def test_pad5d_output_is_c_contiguous_for_any_layout():
    x = np.ones((3, 1, 1, 4, 2)).T                      # (2, 4, 1, 1, 3), F-contiguous
    p = conv_params((2, 4, 3), (1, 4, 1), padding=1).as3d()
    assert pad5d(x, p).flags.c_contiguous


# --------------------------------------------------------------------------------------
# cost model helpers
# --------------------------------------------------------------------------------------

def test_conv_flops_counts_two_per_multiply_add():
    assert kernels.conv_flops((8, 128, 28, 28), (128, 128, 3, 3), padding=1) == \
        2 * 8 * 128 * 28 * 28 * 128 * 9
    assert kernels.conv_flops((1, 8, 10), (8, 1, 3), groups=8) == 2 * 8 * 8 * 3


def test_workspace_bytes():
    x, w = (2, 3, 10, 10), (4, 3, 3, 3)
    assert kernels.workspace_bytes("direct", x, w) == 0
    assert kernels.workspace_bytes("direct", x, w, padding=1, dtype="float64") == \
        2 * 3 * 12 * 12 * 8
    for strategy in ("im2col", "fft"):
        if kernels.registry.strategy_module(strategy) is None:
            continue
        b32 = kernels.workspace_bytes(strategy, x, w, padding=1)
        b64 = kernels.workspace_bytes(strategy, x, w, padding=1, dtype="float64")
        assert isinstance(b32, int) and 0 < b32 < b64


@pytest.mark.parametrize("n,k,s,d,want", [
    (8, 3, 2, 1, (0, 1)),        # out 4: total (4-1)*2 + 3 - 8 = 1, the odd unit at the end
    (7, 3, 2, 1, (1, 1)),        # out 4: total 2
    (6, 1, 2, 1, (0, 0)),        # out 3: total max(4 + 1 - 6, 0) = 0
    (9, 5, 3, 1, (1, 1)),        # out 3: total (3-1)*3 + 5 - 9 = 2
    (10, 3, 2, 2, (1, 2)),       # out 5: total 8 + 5 - 10 = 3
])
def test_same_pads_as_tensorflow_at_strides_above_1(n, k, s, d, want):
    from kernels.params import same_padding
    p = conv_params((1, 1, n), (1, 1, k), stride=s, padding="same", dilation=d)
    assert p.padding == (want,) and p.padding == same_padding((n,), (k,), (s,), (d,))
    assert p.out_spatial((n,), (k,)) == (-(-n // s),)


def test_same_stride_2_values_conv_and_pool_alike():
    import kernels
    x = np.arange(8.0).reshape(1, 1, 8)
    np.testing.assert_array_equal(
        kernels.conv(x, np.array([[[1.0, 0.0, 0.0]]]), stride=2, padding="same").ravel(),
        [0, 2, 4, 6])
    np.testing.assert_array_equal(
        kernels.pool(x, "max", 3, stride=2, padding="same").ravel(), [2, 4, 6, 7])
