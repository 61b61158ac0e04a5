"""Layers: shapes, values against numpy/kernels references, configs, initializers, bad input."""
import numpy as np
import pytest

import engine
import kernels
from engine import init as initializers
from engine.layers import (LAYERS, Activation, Add, AveragePooling1D, AveragePooling2D,
                           BatchNormalization, Concatenate, Conv1D, Conv2D, Conv3D, Dense,
                           Dropout, Flatten, GlobalAveragePooling1D, GlobalAveragePooling2D,
                           GlobalAveragePooling3D, GlobalMaxPooling2D, Input, L2Pooling2D,
                           MaxPooling1D, MaxPooling2D, MaxPooling3D, ReLU, Reshape,
                           SumPooling2D)

RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# -- convolution ------------------------------------------------------------------------

@pytest.mark.parametrize("layer_cls,x_shape,kwargs,out_shape", [
    (Conv1D, (2, 3, 16), dict(filters=4, kernel_size=5), (2, 4, 12)),
    (Conv1D, (2, 3, 16), dict(filters=4, kernel_size=5, padding="same"), (2, 4, 16)),
    (Conv1D, (2, 4, 16), dict(filters=6, kernel_size=3, strides=2, groups=2), (2, 6, 7)),
    (Conv2D, (2, 1, 28, 28), dict(filters=20, kernel_size=5), (2, 20, 24, 24)),
    (Conv2D, (2, 3, 9, 9), dict(filters=5, kernel_size=3, strides=2, padding="same"),
     (2, 5, 5, 5)),
    (Conv2D, (1, 2, 10, 9), dict(filters=3, kernel_size=(3, 2), dilation_rate=2, padding=1),
     (1, 3, 8, 9)),
    (Conv2D, (1, 2, 6, 6), dict(filters=2, kernel_size=3, padding=((1, 0), (0, 2))),
     (1, 2, 5, 6)),
    (Conv3D, (1, 2, 5, 6, 7), dict(filters=4, kernel_size=3), (1, 4, 3, 4, 5)),
])
def test_conv_layer_matches_reference_kernel(layer_cls, x_shape, kwargs, out_shape):
    layer = layer_cls(**kwargs, activation="relu")
    x = rand(*x_shape)
    y = layer(x)
    assert y.shape == out_shape
    assert layer.compute_output_shape((None,) + x_shape[1:]) == (None,) + out_shape[1:]
    kernel, bias = layer.get_weights()
    assert kernel.shape == (kwargs["filters"], x_shape[1] // kwargs.get("groups", 1)) + \
        layer.kernel_size
    expect = kernels.conv(x.astype(np.float64), kernel.astype(np.float64), bias,
                          stride=layer.strides, padding=layer.padding,
                          dilation=layer.dilation_rate, groups=layer.groups,
                          strategy="reference")
    np.testing.assert_allclose(y.numpy(), np.maximum(expect, 0), rtol=1e-4, atol=1e-4)


def test_conv_strategy_is_passed_through():
    layer = Conv2D(3, 3, strategy="reference", kernel_initializer="ones")
    y = layer(np.ones((1, 1, 4, 4), np.float32))
    assert np.all(y.numpy() == 9.0)
    assert layer.strategy_choice((None, 1, 4, 4))[0] == "reference"
    s, _, reason = Conv2D(3, 3).strategy_choice((None, 1, 4, 4))
    assert s in kernels.registry.STRATEGIES and reason


def test_conv_gradients_reach_kernel_bias_and_input():
    layer = Conv2D(2, 3, padding="same")
    x = engine.Tensor(rand(2, 3, 5, 5), requires_grad=True)
    layer(x).sum().backward()
    assert layer.kernel.grad.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(layer.bias.grad, [50.0, 50.0])
    assert x.grad.shape == x.shape


def test_conv_without_bias_and_initializers():
    engine.set_seed(3)
    layer = Conv2D(8, 3, use_bias=False, kernel_initializer="zeros")
    layer(np.ones((1, 2, 4, 4), np.float32))
    assert len(layer.get_weights()) == 1 and layer.count_params() == 8 * 2 * 9
    assert not layer.get_weights()[0].any()


# -- pooling ----------------------------------------------------------------------------

def test_max_and_average_pooling_2d_values():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(MaxPooling2D(2)(x).numpy()[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(AveragePooling2D(2)(x).numpy()[0, 0], [[2.5, 4.5],
                                                                        [10.5, 12.5]])
    np.testing.assert_array_equal(SumPooling2D(2)(x).numpy()[0, 0], [[10, 18], [42, 50]])
    expect = np.sqrt((x.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3) ** 2).sum(axis=(2, 3)))
    np.testing.assert_allclose(L2Pooling2D(2)(x).numpy()[0, 0], expect, rtol=1e-6)


@pytest.mark.parametrize("layer,x_shape,out_shape", [
    (MaxPooling1D(3, strides=2), (2, 3, 11), (2, 3, 5)),
    (AveragePooling1D(2, padding="same"), (1, 2, 7), (1, 2, 4)),
    (MaxPooling2D((2, 3)), (1, 2, 6, 9), (1, 2, 3, 3)),
    (MaxPooling2D(3, strides=2, padding="same"), (1, 1, 7, 7), (1, 1, 4, 4)),
    (MaxPooling3D(2), (1, 2, 4, 6, 8), (1, 2, 2, 3, 4)),
    (GlobalAveragePooling1D(), (2, 5, 9), (2, 5)),
    (GlobalAveragePooling2D(), (2, 5, 3, 3), (2, 5)),
    (GlobalAveragePooling3D(), (2, 5, 2, 3, 3), (2, 5)),
    (GlobalMaxPooling2D(), (2, 5, 3, 3), (2, 5)),
])
def test_pooling_shapes(layer, x_shape, out_shape):
    x = rand(*x_shape)
    assert layer(x).shape == out_shape
    assert layer.compute_output_shape((None,) + x_shape[1:]) == (None,) + out_shape[1:]


def test_global_pooling_values():
    x = rand(2, 3, 4, 4)
    np.testing.assert_allclose(GlobalAveragePooling2D()(x).numpy(), x.mean(axis=(2, 3)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(GlobalMaxPooling2D()(x).numpy(), x.max(axis=(2, 3)))


# -- core layers ------------------------------------------------------------------------

def test_dense_kernel_layout_is_in_out():
    layer = Dense(3, activation="sigmoid")
    x = rand(4, 5)
    y = layer(x).numpy()
    kernel, bias = layer.get_weights()
    assert kernel.shape == (5, 3) and bias.shape == (3,)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-(x @ kernel + bias))), rtol=1e-5)


def test_flatten_reshape_activation_relu():
    x = rand(2, 3, 4)
    assert Flatten()(x).shape == (2, 12)
    assert Reshape((4, -1))(x).shape == (2, 4, 3)
    np.testing.assert_array_equal(Activation("relu")(x).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(ReLU(negative_slope=0.1)(x).numpy(),
                               np.where(x > 0, x, 0.1 * x), rtol=1e-6)
    np.testing.assert_allclose(Activation("softmax")(x).numpy().sum(axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"Reshape layer 'r'.*\(1, 2, 3\).*\(4, 4\)"):
        Reshape((4, 4), name="r")(rand(1, 2, 3))


def test_dropout_training_and_inference():
    x = np.ones((200, 50), np.float32)
    layer = Dropout(0.25, seed=1)
    np.testing.assert_array_equal(layer(x).numpy(), x)          # inference: identity
    y = layer(x, training=True).numpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02


def test_batch_normalization_training_and_inference():
    bn = BatchNormalization(momentum=0.9)
    x = rand(16, 3, 4, 4) * 2 + 5
    y = bn(x, training=True).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-2)
    gamma, beta, mean, var = bn.get_weights()
    np.testing.assert_allclose(mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-4)
    assert bn.count_params() == 12 and len(bn.trainable_weights) == 2
    assert len(bn.non_trainable_weights) == 2
    bn.set_weights([gamma, beta, np.full(3, 5.0), np.full(3, 4.0)])
    np.testing.assert_allclose(bn(x).numpy(), (x - 5) / np.sqrt(4 + 1e-3), rtol=1e-4,
                               atol=1e-5)


def test_add_and_concatenate():
    a, b = rand(2, 3, 4), rand(2, 3, 4)
    np.testing.assert_allclose(Add()([a, b]).numpy(), a + b)
    assert Concatenate(axis=1)([a, b]).shape == (2, 6, 4)
    assert Concatenate()([a, rand(2, 3, 2)]).shape == (2, 3, 6)
    with pytest.raises(ValueError, match=r"Add layer 'plus'.*same shape.*\(None, 3, 4\).*"
                                         r"\(None, 3, 5\)"):
        Add(name="plus")([Input((3, 4)), Input((3, 5))])
    with pytest.raises(ValueError, match="except on axis 1"):
        Concatenate(axis=1)([Input((3, 4)), Input((3, 5))])
    with pytest.raises(ValueError, match="at least 2 inputs"):
        Add()([Input((3,))])


def test_symbolic_calls_give_output_shapes():
    x = Input((1, 28, 28))
    y = Conv2D(20, 5)(x)
    assert y.shape == (None, 20, 24, 24)
    assert Flatten()(MaxPooling2D(2)(y)).shape == (None, 20 * 12 * 12)


# -- weights and configs ----------------------------------------------------------------

def test_set_weights_checks_count_and_shapes():
    layer = Dense(2, name="d")
    layer(rand(1, 3))
    with pytest.raises(ValueError, match=r"Dense layer 'd'.*2 arrays.*kernel, bias.*1"):
        layer.set_weights([np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"'kernel' must have shape \(3, 2\).*\(2, 3\)"):
        layer.set_weights([np.zeros((2, 3)), np.zeros(2)])


def test_trainable_flag_freezes_weights():
    layer = Dense(2)
    layer(rand(1, 3))
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 2
    assert not layer.kernel.requires_grad
    layer.trainable = True
    assert layer.kernel.requires_grad


@pytest.mark.parametrize("name", sorted(set(LAYERS) - {"InputLayer", "Add", "Concatenate"}))
def test_get_config_round_trip(name):
    cls = LAYERS[name]
    args = {"Conv1D": dict(filters=3, kernel_size=2), "Conv2D": dict(filters=3, kernel_size=2,
                                                                     padding=((1, 0), 2)),
            "Conv3D": dict(filters=3, kernel_size=2), "Dense": dict(units=3),
            "Reshape": dict(target_shape=(2, -1)), "Dropout": dict(rate=0.5),
            "Activation": dict(activation="tanh"),
            "Conv1DTranspose": dict(filters=3, kernel_size=2),
            "Conv2DTranspose": dict(filters=3, kernel_size=2, output_padding=1, strides=2),
            "Conv3DTranspose": dict(filters=3, kernel_size=2),
            "SeparableConv1D": dict(filters=3, kernel_size=2),
            "SeparableConv2D": dict(filters=3, kernel_size=2, depth_multiplier=2),
            "DepthwiseConv1D": dict(kernel_size=3), "DepthwiseConv2D": dict(kernel_size=3),
            "Permute": dict(dims=(2, 1)), "RepeatVector": dict(n=3),
            "GaussianNoise": dict(stddev=0.1), "GaussianDropout": dict(rate=0.2),
            "SpatialDropout1D": dict(rate=0.2), "SpatialDropout2D": dict(rate=0.2),
            "SpatialDropout3D": dict(rate=0.2), "Rescaling": dict(scale=0.5),
            "Embedding": dict(input_dim=5, output_dim=2)}.get(name, {})
    layer = cls(**args)
    clone = cls.from_config(layer.get_config())
    assert type(clone) is cls and clone.get_config() == layer.get_config()


def test_default_names_are_unique_and_keras_like():
    a, b = MaxPooling2D(), MaxPooling2D()
    assert a.name.startswith("max_pooling2d") and a.name != b.name
    assert Conv2D(1, 1).name.startswith("conv2d")
    assert BatchNormalization().name.startswith("batch_normalization")


# -- initializers -----------------------------------------------------------------------

@pytest.mark.parametrize("name,std", [("he_normal", np.sqrt(2 / 100)),
                                      ("he_uniform", np.sqrt(2 / 100)),
                                      ("glorot_normal", np.sqrt(2 / 300)),
                                      ("glorot_uniform", np.sqrt(2 / 300)),
                                      ("lecun_normal", np.sqrt(1 / 100))])
def test_initializer_statistics(name, std):
    engine.set_seed(0)
    w = initializers.get(name)((100, 200), 100, 200)
    assert abs(w.std() / std - 1) < 0.03 and abs(w.mean()) < 0.01 * std * 10
    if "normal" in name:
        assert np.abs(w).max() <= 2 * std / 0.8796256610342398 + 1e-12


def test_initializers_zeros_ones_fans_and_seed():
    assert not initializers.get("zeros")((2, 2), 2, 2).any()
    assert initializers.get("ones")((3,), 3, 3).sum() == 3
    assert initializers.fans((20, 1, 5, 5), "conv") == (25, 500)
    assert initializers.fans((784, 100)) == (784, 100)
    engine.set_seed(5)
    a = Dense(4)
    a(np.zeros((1, 3), np.float32))
    engine.set_seed(5)
    b = Dense(4)
    b(np.zeros((1, 3), np.float32))
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])


# -- bad input --------------------------------------------------------------------------

def test_wrong_input_shape_names_layer_expected_and_received():
    layer = Conv2D(4, 3, name="c1")
    layer(rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"Conv2D layer 'c1'.*expected input of shape "
                                         r"\(None, 3, \*, \*\).*received shape "
                                         r"\(2, 1, 8, 8\)"):
        layer(rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"Conv2D layer 'c1'.*4 dims.*received shape "
                                         r"\(2, 3, 8\)"):
        layer(rand(2, 3, 8))
    dense = Dense(5, name="fc")
    dense(Input((100,)))
    with pytest.raises(ValueError, match=r"Dense layer 'fc'.*\(None, \.\.\., 100\).*"
                                         r"\(None, 50\)"):
        dense(Input((50,)))
    with pytest.raises(ValueError, match=r"Conv2D layer 'small'.*output would be empty"):
        Conv2D(1, 5, name="small")(Input((1, 3, 3)))


@pytest.mark.parametrize("make,pattern", [
    (lambda: Conv2D(0, 3), "filters"),
    (lambda: Conv2D(-2, 3), "filters"),
    (lambda: Conv1D(2.5, 3), "filters"),
    (lambda: Conv2D(4, (3, 3, 3)), "kernel_size"),
    (lambda: Conv2D(4, 0), "kernel_size"),
    (lambda: Conv2D(4, 3, strides=0), "strides"),
    (lambda: Conv2D(4, 3, padding="full"), "padding"),
    (lambda: Conv2D(4, 3, padding=-1), "padding"),
    (lambda: Conv2D(4, 3, groups=3), "groups"),
    (lambda: Conv2D(4, 3, activation="swishy"), "activation.*relu"),
    (lambda: Conv2D(4, 3, kernel_initializer="magic"), "kernel_initializer.*he_normal"),
    (lambda: Conv2D(4, 3, strategy="fastest"), "strategy"),
    (lambda: Dense(0), "units"),
    (lambda: Dense(3, activation="nope"), "activation"),
    (lambda: Dense(3, bias_initializer="nope"), "bias_initializer"),
    (lambda: Dropout(1.0), "rate"),
    (lambda: Dropout(-0.1), "rate"),
    (lambda: Activation("nope"), "activation"),
    (lambda: MaxPooling2D(0), "pool_size"),
    (lambda: Reshape((2, -1, -1)), "target_shape"),
    (lambda: BatchNormalization(momentum=1.5), "momentum"),
    (lambda: Concatenate(axis=0), "axis"),
    (lambda: Dense(3, input_shape=(0,)), "input_shape"),
    (lambda: Input((1, -28)), "shape"),
])
def test_invalid_arguments_fail_in_init_naming_the_argument(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_groups_must_divide_input_channels():
    with pytest.raises(ValueError, match=r"groups=2 must divide the input channels.*"
                                         r"\(None, 3, 8, 8\)"):
        Conv2D(4, 3, groups=2)(Input((3, 8, 8)))


def test_merge_layer_needs_a_list():
    with pytest.raises(TypeError, match="list of tensors"):
        Add()(rand(2, 3))
    with pytest.raises(TypeError, match="single tensor"):
        Dense(2)([rand(2, 3)])
