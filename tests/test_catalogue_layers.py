"""The wider layer catalogue: outputs against real Keras 3 on the same weights (Keras's
channels-last inputs and weight layouts converted here), closed forms, save/load."""
import numpy as np
import pytest

import engine
from engine import layers as L
from engine.autograd import gradcheck
from engine.tensor import Tensor
from tests._keras_ref import keras_or_none

keras = keras_or_none()
needs_keras = pytest.mark.skipif(keras is None, reason="keras 3 (torch backend) not installed")


def _cl(x):
    """channels first -> channels last."""
    return np.moveaxis(x, 1, -1)


def _keras_out(layer, x_cf, weights=None):
    x = _cl(x_cf)
    if not layer.built:
        layer.build(x.shape)
    if weights is not None:
        layer.set_weights(weights)
    return np.moveaxis(keras.ops.convert_to_numpy(layer(x)), -1, 1)


def _kernel_to_ours_transpose(k):
    """Keras Conv*Transpose kernel (*k, filters, C_in) -> ours (C_in, filters, *k)."""
    r = k.ndim - 2
    return np.transpose(k, (r + 1, r) + tuple(range(r)))


RNG = np.random.default_rng(7)


@needs_keras
@pytest.mark.parametrize("rank,k,s,pad,d", [
    (1, 3, 2, "same", 1), (1, 4, 3, "valid", 1), (2, 3, 2, "same", 1), (2, 3, 1, "valid", 2),
    (2, (2, 3), (2, 1), "valid", 1), (2, 5, 2, "same", 1), (3, 2, 2, "same", 1),
    (3, 3, 1, "valid", 1)])
def test_conv_transpose_matches_keras(rank, k, s, pad, d):
    x = RNG.normal(size=(2, 3) + (5, 4, 3)[:rank]).astype(np.float32)
    cls = {1: "Conv1DTranspose", 2: "Conv2DTranspose", 3: "Conv3DTranspose"}[rank]
    kl = getattr(keras.layers, cls)(4, k, strides=s, padding=pad, dilation_rate=d)
    kl.build(_cl(x).shape)
    kk, kb = [RNG.normal(size=w.shape).astype(np.float32) for w in kl.get_weights()]
    ref = _keras_out(kl, x, [kk, kb])
    ours = getattr(L, cls)(4, k, strides=s, padding=pad, dilation_rate=d)
    ours._build_if_needed((None,) + x.shape[1:])
    ours.set_weights([_kernel_to_ours_transpose(kk), kb])
    y = ours(x).numpy()
    assert y.shape == ref.shape == (None,) * 0 + (2, 4) + ours.compute_output_shape(
        (None,) + x.shape[1:])[2:]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


@needs_keras
@pytest.mark.parametrize("op", [None, 1])
def test_conv2d_transpose_output_padding_matches_keras(op):
    x = RNG.normal(size=(1, 2, 4, 4)).astype(np.float32)
    kl = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=op)
    kl.build(_cl(x).shape)
    kk, kb = [RNG.normal(size=w.shape).astype(np.float32) for w in kl.get_weights()]
    ref = _keras_out(kl, x, [kk, kb])
    ours = L.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=op)
    ours._build_if_needed((None, 2, 4, 4))
    ours.set_weights([_kernel_to_ours_transpose(kk), kb])
    np.testing.assert_allclose(ours(x).numpy(), ref, rtol=1e-4, atol=1e-4)


@needs_keras
@pytest.mark.parametrize("rank,mult,pad", [(1, 1, "valid"), (1, 2, "same"), (2, 1, "same"),
                                           (2, 3, "valid")])
def test_depthwise_matches_keras(rank, mult, pad):
    x = RNG.normal(size=(2, 3) + (6, 5)[:rank]).astype(np.float32)
    cls = ("DepthwiseConv1D", "DepthwiseConv2D")[rank - 1]
    kl = getattr(keras.layers, cls)(3, depth_multiplier=mult, padding=pad)
    kl.build(_cl(x).shape)
    kk, kb = [RNG.normal(size=w.shape).astype(np.float32) for w in kl.get_weights()]
    ref = _keras_out(kl, x, [kk, kb])
    ours = getattr(L, cls)(3, depth_multiplier=mult, padding=pad)
    ours._build_if_needed((None,) + x.shape[1:])
    # (*k, C, m) -> (C * m, 1, *k)
    w = np.moveaxis(kk, (rank, rank + 1), (0, 1)).reshape((3 * mult, 1) + kk.shape[:rank])
    ours.set_weights([w, kb])
    np.testing.assert_allclose(ours(x).numpy(), ref, rtol=1e-4, atol=1e-4)


@needs_keras
@pytest.mark.parametrize("rank", [1, 2])
def test_separable_matches_keras(rank):
    x = RNG.normal(size=(2, 3) + (6, 5)[:rank]).astype(np.float32)
    cls = ("SeparableConv1D", "SeparableConv2D")[rank - 1]
    kl = getattr(keras.layers, cls)(4, 3, depth_multiplier=2, padding="same")
    kl.build(_cl(x).shape)
    kd, kp, kb = [RNG.normal(size=w.shape).astype(np.float32) for w in kl.get_weights()]
    ref = _keras_out(kl, x, [kd, kp, kb])
    ours = getattr(L, cls)(4, 3, depth_multiplier=2, padding="same")
    ours._build_if_needed((None,) + x.shape[1:])
    wd = np.moveaxis(kd, (rank, rank + 1), (0, 1)).reshape((6, 1) + kd.shape[:rank])
    wp = np.moveaxis(kp, (rank, rank + 1), (1, 0))        # (*1, 6, 4) -> (4, 6, *1)
    ours.set_weights([wd, wp, kb])
    np.testing.assert_allclose(ours(x).numpy(), ref, rtol=1e-4, atol=1e-4)


@needs_keras
@pytest.mark.parametrize("name,args,rank", [
    ("UpSampling1D", (3,), 1), ("UpSampling2D", ((2, 3),), 2), ("UpSampling3D", (2,), 3),
    ("ZeroPadding1D", ((1, 2),), 1), ("ZeroPadding2D", (((1, 0), (2, 3)),), 2),
    ("ZeroPadding3D", (1,), 3), ("Cropping1D", ((1, 2),), 1),
    ("Cropping2D", (((1, 0), (0, 2)),), 2), ("Cropping3D", ((1, 0, 1),), 3)])
def test_reshaping_matches_keras(name, args, rank):
    x = RNG.normal(size=(2, 3) + (4, 5, 4)[:rank]).astype(np.float32)
    ref = _keras_out(getattr(keras.layers, name)(*args), x)
    ours = getattr(L, name)(*args)
    np.testing.assert_array_equal(ours(x).numpy(), ref)
    assert ours.compute_output_shape((None,) + x.shape[1:]) == (None,) + ref.shape[1:]


@needs_keras
def test_permute_repeat_vector_match_keras():
    x = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    k = keras.ops.convert_to_numpy(keras.layers.Permute((3, 1, 2))(x))
    np.testing.assert_array_equal(L.Permute((3, 1, 2))(x).numpy(), k)
    v = RNG.normal(size=(2, 5)).astype(np.float32)
    np.testing.assert_array_equal(L.RepeatVector(3)(v).numpy(),
                                  keras.ops.convert_to_numpy(keras.layers.RepeatVector(3)(v)))


@needs_keras
@pytest.mark.parametrize("name,kw", [
    ("LeakyReLU", dict(negative_slope=0.2)), ("ELU", dict(alpha=0.7)),
    ("ReLU", dict(max_value=1.0, negative_slope=0.1, threshold=0.5)),
    ("ReLU", dict(max_value=6.0)), ("Softmax", dict(axis=-1))])
def test_activation_layers_match_keras(name, kw):
    x = (RNG.normal(size=(3, 4, 5)) * 2).astype(np.float32)
    ref = keras.ops.convert_to_numpy(getattr(keras.layers, name)(**kw)(x))
    np.testing.assert_allclose(getattr(L, name)(**kw)(x).numpy(), ref, rtol=1e-5, atol=1e-6)


@needs_keras
@pytest.mark.parametrize("name", ["elu", "selu", "softplus", "softsign", "gelu", "swish",
                                  "silu", "hard_sigmoid", "exponential", "linear", "relu6",
                                  "mish", "hard_silu", "hard_swish", "log_sigmoid",
                                  "hard_tanh", "tanh_shrink"])
def test_activations_by_name_match_keras(name):
    x = np.linspace(-4, 4, 17, dtype=np.float32).reshape(1, 17)
    ref = keras.ops.convert_to_numpy(keras.activations.get(name)(x))
    ours = L.Activation(name)(x).numpy()
    np.testing.assert_allclose(ours, ref, rtol=2e-6, atol=2e-6)
    assert L.Dense(2, activation=name, input_shape=(17,))(x).shape == (1, 2)


@needs_keras
def test_prelu_matches_keras():
    x = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32)
    kl = keras.layers.PReLU(shared_axes=[1, 2])          # channels last: one alpha per channel
    kl.build(_cl(x).shape)
    alpha = RNG.uniform(0.1, 0.5, size=kl.get_weights()[0].shape).astype(np.float32)
    ref = _keras_out(kl, x, [alpha])
    ours = L.PReLU(shared_axes=(2, 3))
    ours._build_if_needed((None, 3, 4, 5))
    ours.set_weights([alpha.reshape(3, 1, 1)])
    np.testing.assert_allclose(ours(x).numpy(), ref, rtol=1e-6)


@needs_keras
@pytest.mark.parametrize("name", ["Subtract", "Multiply", "Average", "Maximum", "Minimum"])
def test_merge_layers_match_keras(name):
    a, b = RNG.normal(size=(2, 2, 3, 4)).astype(np.float32), \
        RNG.normal(size=(2, 2, 3, 4)).astype(np.float32)
    ref = keras.ops.convert_to_numpy(getattr(keras.layers, name)()([a, b]))
    np.testing.assert_allclose(getattr(L, name)()([a, b]).numpy(), ref, rtol=1e-6)


@needs_keras
@pytest.mark.parametrize("d", [1, 2])
def test_causal_conv1d_matches_keras(d):
    x = RNG.normal(size=(2, 3, 9)).astype(np.float32)
    kl = keras.layers.Conv1D(4, 3, padding="causal", dilation_rate=d)
    kl.build(_cl(x).shape)
    kk, kb = [RNG.normal(size=w.shape).astype(np.float32) for w in kl.get_weights()]
    ref = _keras_out(kl, x, [kk, kb])
    ours = L.Conv1D(4, 3, padding="causal", dilation_rate=d)
    ours._build_if_needed((None, 3, 9))
    ours.set_weights([np.transpose(kk, (2, 1, 0)), kb])
    np.testing.assert_allclose(ours(x).numpy(), ref, rtol=1e-4, atol=1e-4)


def test_causal_output_sees_no_future():
    layer = L.Conv1D(1, 3, padding="causal", dilation_rate=2, kernel_initializer="ones")
    x = np.zeros((1, 1, 10), np.float32)
    x[0, 0, 6] = 1.0
    y = layer(x).numpy()[0, 0]
    assert y.shape == (10,) and np.all(y[:6] == 0) and y[6] == 1.0


def test_noise_layers_statistics_and_inference_identity():
    engine.set_seed(0)
    x = np.ones((40, 40, 20, 20), np.float32)
    for layer in (L.GaussianNoise(0.5), L.GaussianDropout(0.3), L.SpatialDropout2D(0.25)):
        np.testing.assert_array_equal(layer(x).numpy(), x)       # inference: identity
        y = layer(x, training=True).numpy()
        assert abs(y.mean() - 1.0) < 0.05                        # unbiased
    y = L.GaussianNoise(0.5)(x, training=True).numpy()
    assert abs(y.std() - 0.5) < 0.01
    y = L.GaussianDropout(0.3)(x, training=True).numpy()
    assert abs(y.std() - np.sqrt(0.3 / 0.7)) < 0.01
    y = L.SpatialDropout2D(0.25, seed=1)(x, training=True).numpy()
    per_map = y.reshape(40, 40, -1)
    assert np.all(per_map.min(axis=2) == per_map.max(axis=2))   # whole maps kept or dropped
    assert set(np.unique(per_map).tolist()) <= {0.0, np.float32(1 / 0.75)}


def test_lambda_layer_records_on_tape_and_refuses_to_save(tmp_path):
    x = Tensor(np.array([[1.0, -2.0]]), requires_grad=True)
    layer = L.Lambda(lambda t: t * t + 1.0)
    y = layer(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [[2.0, -4.0]])
    inp = L.Input((2,))
    model = engine.Model(inp, L.Dense(1)(L.Lambda(lambda t: t * 2.0)(inp)))
    assert model.output_shape == (None, 1)
    with pytest.raises(TypeError, match="Lambda"):
        model.save(str(tmp_path / "m.npz"))


def _with_weights(layer, ws, a):
    saved = [(n, t, tr) for n, t, tr in layer._weights]
    layer._weights = [(n, w, tr) for (n, _, tr), w in zip(saved, ws)]
    for (n, _, _), w in zip(saved, ws):
        setattr(layer, n, w)
    try:
        return layer.call(a)
    finally:
        layer._weights = saved
        for n, t, _ in saved:
            setattr(layer, n, t)


def test_layer_gradchecks():
    r = np.random.default_rng(8)
    for layer, shape in [(L.Conv2DTranspose(2, 3, strides=2, padding="same"), (1, 2, 3, 3)),
                         (L.SeparableConv2D(2, 3, depth_multiplier=2), (1, 2, 5, 5)),
                         (L.DepthwiseConv1D(3), (2, 2, 6)), (L.PReLU(), (2, 3)),
                         (L.UpSampling2D(2), (1, 2, 2, 2)), (L.Cropping2D(1), (1, 1, 4, 4))]:
        layer._build_if_needed((None,) + shape[1:])
        for _, t, _ in layer._weights:
            t.data = r.normal(size=t.shape)
        x = Tensor(r.normal(size=shape), requires_grad=True)
        weights = layer.weights
        # gradcheck perturbs copies: route them into the layer, then compare the tape
        assert gradcheck(lambda a, *ws: _with_weights(layer, ws, a), [x] + weights), \
            type(layer).__name__


def test_save_load_roundtrip_of_new_layers(tmp_path):
    engine.set_seed(3)
    inp = L.Input((2, 8, 8))
    y = L.SeparableConv2D(4, 3, padding="same")(inp)
    y = L.PReLU(shared_axes=(2, 3))(y)
    y = L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="gelu")(y)
    y = L.Cropping2D(((1, 1), (2, 2)))(y)
    y = L.ZeroPadding2D(1)(y)
    y = L.DepthwiseConv2D(3, depth_multiplier=2)(y)
    y = L.UpSampling2D(2)(y)
    z = L.Multiply()([y, L.ReLU(max_value=2.0)(y)])
    z = L.SpatialDropout2D(0.2)(z)
    out = L.Softmax(axis=1)(L.Permute((1, 3, 2))(z))
    model = engine.Model(inp, out)
    x = np.random.default_rng(0).normal(size=(2, 2, 8, 8)).astype(np.float32)
    path = str(tmp_path / "m.npz")
    model.save(path)
    again = engine.load_model(path)
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-6)
    assert [type(a).__name__ for a in again.layers] == [type(a).__name__ for a in model.layers]


def test_bad_arguments_name_the_layer():
    with pytest.raises(ValueError, match="Conv2DTranspose: padding"):
        L.Conv2DTranspose(2, 3, padding="causal")
    with pytest.raises(ValueError, match="Cropping2D"):
        L.Cropping2D(3)(np.ones((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="Permute: dims"):
        L.Permute((1, 1))
    with pytest.raises(ValueError, match="ZeroPadding2D: padding"):
        L.ZeroPadding2D((1, 2, 3))


@needs_keras
@pytest.mark.parametrize("axis", [-1, (2, 3)])   # (keras-torch fails on non-trailing axes)
def test_layer_normalization_matches_keras(axis):
    x = RNG.normal(size=(2, 3, 4, 5)).astype(np.float32) * 3 + 1
    kl = keras.layers.LayerNormalization(axis=axis)
    kl.build(x.shape)
    w = [RNG.normal(size=v.shape).astype(np.float32) for v in kl.get_weights()]
    kl.set_weights(w)
    ref = keras.ops.convert_to_numpy(kl(x))
    ours = L.LayerNormalization(axis=axis)
    ours._build_if_needed((None,) + x.shape[1:])
    ours.set_weights([a.reshape(t.shape) for a, t in zip(w, ours.weights)])
    np.testing.assert_allclose(ours(x).numpy(), ref, rtol=1e-4, atol=1e-5)


@needs_keras
def test_group_unit_normalization_rescaling_match_keras():
    x = RNG.normal(size=(2, 6, 4, 5)).astype(np.float32) * 2 + 0.5
    kl = keras.layers.GroupNormalization(groups=3)
    kl.build(_cl(x).shape)
    g, b = [RNG.normal(size=v.shape).astype(np.float32) for v in kl.get_weights()]
    ref = _keras_out(kl, x, [g, b])
    ours = L.GroupNormalization(groups=3)
    ours._build_if_needed((None, 6, 4, 5))
    ours.set_weights([g.reshape(6, 1, 1), b.reshape(6, 1, 1)])
    np.testing.assert_allclose(ours(x).numpy(), ref, rtol=1e-4, atol=1e-5)
    ref = _keras_out(keras.layers.UnitNormalization(axis=-1), x)
    np.testing.assert_allclose(L.UnitNormalization(axis=1)(x).numpy(), ref, rtol=1e-5,
                               atol=1e-7)
    ref = keras.ops.convert_to_numpy(keras.layers.Rescaling(1 / 255, offset=-1.0)(x))
    np.testing.assert_allclose(L.Rescaling(1 / 255, offset=-1.0)(x).numpy(), ref, rtol=1e-6)


@needs_keras
def test_embedding_matches_keras_and_trains():
    idx = np.array([[1, 4, 4], [0, 2, 3]])
    kl = keras.layers.Embedding(5, 3)
    kl.build(idx.shape)
    table = RNG.normal(size=(5, 3)).astype(np.float32)
    kl.set_weights([table])
    ours = L.Embedding(5, 3)
    ours._build_if_needed((None, 3))
    ours.set_weights([table])
    np.testing.assert_array_equal(ours(idx).numpy(), keras.ops.convert_to_numpy(kl(idx)))
    y = ours(idx)
    y.sum().backward()
    np.testing.assert_array_equal(ours.embeddings.grad[:, 0], [1, 1, 1, 1, 2])  # counts
    with pytest.raises(ValueError, match="indices must be integers"):
        ours(np.array([[5, 0, 0]]))


def test_normalization_gradchecks():
    r = np.random.default_rng(9)
    for layer, shape in [(L.LayerNormalization(), (2, 5)),
                         (L.GroupNormalization(groups=2), (2, 4, 3)),
                         (L.UnitNormalization(axis=1), (2, 3, 2))]:
        layer._build_if_needed((None,) + shape[1:])
        for _, t, _ in layer._weights:
            t.data = r.normal(size=t.shape)
        x = Tensor(r.normal(size=shape), requires_grad=True)
        assert gradcheck(lambda a, *ws: _with_weights(layer, ws, a), [x] + layer.weights,
                         atol=1e-4), type(layer).__name__
