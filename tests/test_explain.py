"""engine.explain against closed forms (linear models), brute force (occlusion, patches,
projections by hand), finite differences (the input gradients), captum when installed, and
the `convlab explain` command through subprocess."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
from engine import explain
from engine.explain import _net
from engine.layers import (BatchNormalization, Conv1D, Conv2D, Dense, Dropout, Flatten,
                           GlobalAveragePooling2D, Input)

ROOT = Path(__file__).resolve().parents[1]


def linear_model(w, b, softmax=False):
    m = engine.Sequential([Dense(w.shape[1], activation="softmax" if softmax else None,
                                 input_shape=(w.shape[0],))])
    m.set_weights([w.astype(np.float32), b.astype(np.float32)])
    return m


@pytest.fixture(scope="module")
def digits():
    (xtr, ytr), (xte, yte) = engine.data.load_digits()
    return xtr, ytr, xte, yte


@pytest.fixture(scope="module")
def trained(digits):
    """small_cnn trained on the 8x8 digits (about 97% held out)."""
    xtr, ytr, xte, yte = digits
    engine.set_seed(0)
    m = engine.zoo.get_model("small_cnn", (1, 8, 8), 10)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(xtr, ytr, epochs=3, batch_size=32, verbose=0)
    assert m.evaluate(xte, yte)[1] > 0.9
    return m


def logits_twin(model):
    """The same network without its final softmax (for brute-force oracles)."""
    twin = engine.Sequential([
        Conv2D(16, 3, padding="same", activation="relu", input_shape=(1, 8, 8)),
        engine.layers.MaxPooling2D(2),
        Conv2D(32, 3, padding="same", activation="relu"), Flatten(),
        Dense(64, activation="relu"), Dense(10)])
    twin.set_weights(model.get_weights())
    return twin


# -- linear models: closed forms ------------------------------------------------------------

@pytest.mark.parametrize("softmax", [False, True])
def test_linear_saliency_and_ig_exact(softmax):
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(6, 4)), rng.normal(size=4)
    m = linear_model(w, b, softmax)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    t = np.array([0, 1, 2, 3, 1])
    np.testing.assert_allclose(explain.saliency(m, x, t), np.abs(w.T[t]), rtol=1e-6)
    base = rng.normal(size=(6,)).astype(np.float32)
    for method in ("riemann_left", "riemann_right", "riemann_middle", "gausslegendre"):
        attr, delta = explain.integrated_gradients(m, x, t, baseline=base, steps=7,
                                                   method=method, return_delta=True)
        np.testing.assert_allclose(attr, (x - base) * w.T[t], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(delta, 0.0, atol=1e-4)
    # captum's trapezoid: steps of 1/n with halved ends, weights summing to 1 - 1/n.
    attr = explain.integrated_gradients(m, x, t, baseline=base, steps=7,
                                        method="riemann_trapezoid")
    np.testing.assert_allclose(attr, (x - base) * w.T[t] * (6 / 7), rtol=1e-4, atol=1e-5)


def test_score_is_pre_softmax():
    w, b = np.array([[1.0, -1.0, 0.5]]), np.array([0.0, 0.2, 0.0])
    s, t = explain.score(linear_model(w, b, softmax=True), np.array([[3.0]]))
    assert t.tolist() == [0] and s[0] == pytest.approx(3.0)


# -- integrated gradients on a trained CNN --------------------------------------------------

def test_ig_completeness_within_5_percent(trained, digits):
    x = digits[2][:8]
    for method in ("gausslegendre", "riemann_middle"):
        attr, delta = explain.integrated_gradients(trained, x, 3, steps=50, method=method,
                                                   return_delta=True)
        s_x, _ = explain.score(trained, x, 3)
        s_b, _ = explain.score(trained, np.zeros_like(x), 3)
        gap = s_x - s_b
        np.testing.assert_allclose(attr.reshape(8, -1).sum(1) - gap, delta, atol=1e-4)
        assert np.all(np.abs(delta) <= 0.05 * np.abs(gap)), (delta, gap)


def test_results_do_not_depend_on_batch_size(trained, digits, monkeypatch):
    x = digits[2][:3]
    t = [1, 4, 7]
    ig = [explain.integrated_gradients(trained, x, t, steps=10, batch_size=bs)
          for bs in (1, 7, None)]
    occ = [explain.occlusion(trained, x, t, window=3, stride=2, batch_size=bs)
           for bs in (1, 5, None)]
    sal = [explain.saliency(trained, x, t, smooth_samples=4, seed=3, batch_size=bs)
           for bs in (1, 5, None)]
    cam = [explain.grad_cam(trained, x, t, batch_size=bs) for bs in (1, 2)]
    for runs in (ig, occ, sal, cam):
        for r in runs[1:]:
            np.testing.assert_allclose(r, runs[0], rtol=1e-4, atol=1e-5)
    # a tiny memory budget forces one row per chunk: same result
    monkeypatch.setattr(_net, "MEMORY_BUDGET", 1)
    np.testing.assert_allclose(explain.integrated_gradients(trained, x, t, steps=10), ig[0],
                               rtol=1e-4, atol=1e-5)


# -- occlusion --------------------------------------------------------------------------

def brute_occlusion(predict, x, t, window, stride, baseline):
    n, _, h, w = x.shape
    total, cover = np.zeros((n, h, w)), np.zeros((h, w))
    full = predict(x)[np.arange(n), t]
    i = 0
    while True:
        j = 0
        while True:
            occ = x.copy()
            occ[:, :, i:i + window, j:j + window] = baseline
            drop = full - predict(occ)[np.arange(n), t]
            total[:, i:i + window, j:j + window] += drop[:, None, None]
            cover[i:i + window, j:j + window] += 1
            if j + window >= w:
                break
            j += stride
        if i + window >= h:
            break
        i += stride
    return total / cover


@pytest.fixture(params=["crops", "plain"])
def occlusion_path(request, monkeypatch):
    """Run occlusion through the crop path (forced, even where it would not pay) or the
    plain path; the crop path must actually run."""
    from engine.explain import _incremental
    calls = []
    if request.param == "crops":
        monkeypatch.setattr(_incremental, "MIN_GROUP_ROWS", 1)
        monkeypatch.setattr(_incremental, "MAX_WORK_FRACTION", 10.0)
        real = _incremental.occlusion_drops

        def spy(*a, **k):
            out = real(*a, **k)
            calls.append(out is not None)
            return out
        monkeypatch.setattr(_incremental, "occlusion_drops", spy)
    else:
        monkeypatch.setattr(_incremental, "plan", lambda net: None)
    yield request.param
    if request.param == "crops":
        assert calls and all(calls)


@pytest.mark.parametrize("window,stride,baseline", [(3, 2, 0.25), (2, 1, 0.25), (4, 3, 0.25),
                                                     (2, 1, 0.0)])
def test_occlusion_equals_brute_force(trained, digits, window, stride, baseline,
                                      occlusion_path):
    """baseline 0: the digits' blank borders give windows that change nothing (skipped)."""
    x = digits[2][:4]
    t = np.array([0, 5, 9, 2])
    twin = logits_twin(trained)
    want = brute_occlusion(lambda a: twin.predict(a, verbose=0), x, t, window, stride,
                           baseline)
    got = explain.occlusion(trained, x, t, window=window, stride=stride, baseline=baseline)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,window,stride", [((1, 14, 14), 4, 2), ((1, 13, 11), 3, 4),
                                                  ((1, 12, 12), (2, 5), (3, 1))])
def test_occlusion_crops_valid_convs_brute_force(shape, window, stride, occlusion_path):
    """The course's MNIST net (valid 5x5 convolutions) and odd sizes."""
    engine.set_seed(20)
    m = engine.zoo.get_model("mnist", shape, 4)
    twin = engine.Sequential([Conv2D(20, 5, activation="relu", input_shape=shape),
                              Conv2D(40, 5, activation="relu"), Flatten(),
                              Dense(100, activation="relu"), Dense(4)])
    twin.set_weights(m.get_weights())
    x = np.random.default_rng(21).random((3,) + shape).astype(np.float32)
    t = np.array([0, 3, 1])
    got = explain.occlusion(m, x, t, window=window, stride=stride)
    win = window if isinstance(window, tuple) else (window, window)
    st = stride if isinstance(stride, tuple) else (stride, stride)
    want = np.zeros((3,) + shape[1:])
    cover = np.zeros(shape[1:])
    full = twin.predict(x)[np.arange(3), t]
    for i in range(0, -(-(shape[1] - win[0]) // st[0]) * st[0] + 1, st[0]):
        for j in range(0, -(-(shape[2] - win[1]) // st[1]) * st[1] + 1, st[1]):
            occ = x.copy()
            occ[:, :, i:i + win[0], j:j + win[1]] = 0.0
            want[:, i:i + win[0], j:j + win[1]] += \
                (full - twin.predict(occ)[np.arange(3), t])[:, None, None]
            cover[i:i + win[0], j:j + win[1]] += 1
    if stride == 4:
        assert (cover == 0).any()      # uncovered positions: 0 (captum: NaN)
    np.testing.assert_allclose(got, np.divide(want, cover, out=np.zeros_like(want),
                                              where=cover > 0), rtol=1e-4, atol=1e-5)


def test_occlusion_crops_mixed_prefix(occlusion_path):
    """same-padded conv, BatchNormalization, ReLU, a strided valid conv, pooling, then a
    stride-2 'same' conv where the crops stop: equal to brute force either way."""
    engine.set_seed(22)
    layers = [Conv2D(4, 3, padding="same", input_shape=(2, 15, 15)), BatchNormalization(),
              engine.layers.ReLU(), Conv2D(6, 3, strides=2), engine.layers.MaxPooling2D(2),
              Conv2D(5, 2, strides=2, padding="same", activation="relu"), Flatten(),
              Dense(3)]
    m = engine.Sequential(layers)
    m.layers[1].set_weights([np.full(4, 1.5), np.full(4, 0.1), np.full(4, 0.2),
                             np.full(4, 2.0)])
    x = np.random.default_rng(23).random((2, 2, 15, 15)).astype(np.float32)
    t = np.array([2, 0])
    got = explain.occlusion(m, x, t, window=3, stride=2, baseline=0.5)
    want = brute_occlusion(lambda a: m.predict(a), x, t, 3, 2, 0.5)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_occlusion_doctest_geometry():
    w = np.arange(1.0, 5.0).reshape(4, 1)
    m = engine.Sequential([Flatten(input_shape=(1, 2, 2)), Dense(1, use_bias=False)])
    m.set_weights([w.astype(np.float32)])
    got = explain.occlusion(m, np.ones((1, 1, 2, 2)), 0, window=(1, 2), stride=1)
    np.testing.assert_allclose(got[0], [[3.0, 3.0], [7.0, 7.0]])


# -- input gradients --------------------------------------------------------------------

def smooth_cnn(seed=0):
    engine.set_seed(seed)
    m = engine.Sequential([Conv2D(3, 3, activation="tanh", input_shape=(2, 6, 6)),
                           engine.layers.AveragePooling2D(2), Flatten(),
                           Dense(4, activation="softmax")])
    return m


def test_input_gradients_gradcheck():
    """The tape's input gradient of the score, as the explain walker records it, against
    float64 central differences (engine.gradcheck)."""
    m = smooth_cnn()
    net = _net.Net(m, "test")
    x = np.random.default_rng(2).normal(size=(2, 2, 6, 6))
    t = np.array([1, 3])

    def f(xt):
        return _net.select_sum(_net.logits(net.run_output(xt)), t)
    with _net.frozen_weights(m):
        assert engine.gradcheck(f, [engine.Tensor(x, requires_grad=True)], eps=1e-4,
                                atol=1e-3, rtol=1e-2)


def test_saliency_equals_finite_differences():
    m = smooth_cnn(1)
    x = np.random.default_rng(3).normal(size=(1, 2, 6, 6)).astype(np.float32)
    sal = explain.saliency(m, x, 2)
    eps = 1e-2
    num = np.zeros(x.size)
    for k in range(x.size):
        xp, xm = x.copy().ravel(), x.copy().ravel()
        xp[k] += eps
        xm[k] -= eps
        sp = explain.score(m, xp.reshape(x.shape), 2)[0][0]
        sm = explain.score(m, xm.reshape(x.shape), 2)[0][0]
        num[k] = (sp - sm) / (2 * eps)
    np.testing.assert_allclose(sal.ravel(), np.abs(num), rtol=2e-2, atol=2e-3)


def test_no_weight_gradients(trained, digits, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a weight gradient was computed")
    import engine.ops.conv as conv_ops
    monkeypatch.setattr(conv_ops.kernels, "conv_grad_weight", boom)
    x = digits[2][:2]
    weights = trained.trainable_weights
    before = [None if w.grad is None else w.grad.copy() for w in weights]
    explain.saliency(trained, x, 1)
    explain.integrated_gradients(trained, x, 1, steps=4)
    explain.grad_cam(trained, x, 1)
    explain.deconv(trained, 2, x, 0)
    explain.class_model(trained, 1, steps=2)
    for w, g in zip(weights, before):   # untouched: flags restored, gradients as they were
        assert w.requires_grad
        assert (w.grad is None and g is None) or np.array_equal(w.grad, g)


# -- Grad-CAM ---------------------------------------------------------------------------

def test_grad_cam_equals_cam_for_gap_networks():
    """conv -> global average pooling -> dense: Grad-CAM weights are W[:, t] / HW, so the
    map is Zhou et al.'s CAM, up to the [0, 1] scaling."""
    engine.set_seed(4)
    x_in = Input((1, 8, 8))
    feat = Conv2D(6, 3, padding="same", activation="relu", name="feat")(x_in)
    out = Dense(3, activation="softmax", name="head")(GlobalAveragePooling2D()(feat))
    m = engine.Model(x_in, out)
    x = np.random.default_rng(5).random((3, 1, 8, 8)).astype(np.float32)
    t = np.array([0, 1, 2])
    a = explain.feature_maps(m, x, layers="feat")["feat"]
    w = m.get_layer("head").get_weights()[0]
    cam = np.maximum(np.einsum("nchw,cn->nhw", a, w[:, t]), 0)
    cam /= cam.reshape(3, -1).max(1)[:, None, None]
    np.testing.assert_allclose(explain.grad_cam(m, x, t, layer="feat"), cam, rtol=1e-4,
                               atol=1e-5)
    g = explain.grad_cam(m, x, t)   # default: the last spatial layer, here "feat"
    np.testing.assert_allclose(g, cam, rtol=1e-4, atol=1e-5)


def test_grad_cam_upsamples_to_input(trained, digits):
    cam = explain.grad_cam(trained, digits[2][:2], 3, layer=0)
    assert cam.shape == (2, 8, 8) and cam.min() >= 0 and cam.max() == pytest.approx(1.0)
    small = explain.grad_cam(trained, digits[2][:2], 3)   # conv2d_1 at 4x4, resized
    assert small.shape == (2, 8, 8)


# -- filters, maps, features, patches, projections --------------------------------------

def test_filters_feature_maps_features(trained, digits):
    x = digits[2][:5]
    w = explain.filters(trained, 0)
    assert w.shape == (16, 1, 3, 3)
    np.testing.assert_array_equal(w, trained.layers[0].get_weights()[0])
    with pytest.raises(ValueError, match="no convolution kernel"):
        explain.filters(trained, -1)
    maps = explain.feature_maps(trained, x)
    assert list(maps) == [layer.name for layer in trained.layers]
    np.testing.assert_allclose(maps[trained.layers[-1].name], trained.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    ref = engine.functional.relu(engine.functional.conv2d(
        x, trained.layers[0].get_weights()[0], trained.layers[0].get_weights()[1],
        padding=1)).numpy()
    np.testing.assert_allclose(maps[trained.layers[0].name], ref, rtol=1e-5, atol=1e-6)
    f = explain.features(trained, x, -2)
    np.testing.assert_allclose(f, maps[trained.layers[-2].name], rtol=1e-6)
    assert f.shape == (5, 64)


def test_mosaic():
    tiles = np.stack([np.full((2, 3), v) for v in range(5)]) + np.arange(3)
    m = explain.mosaic(tiles, ncols=2, pad=1)
    assert m.shape == (3 * 2 + 2, 2 * 3 + 1)
    np.testing.assert_allclose(m[0, :3], [0, 0.5, 1])
    assert m[:, 3].max() == 0 and m.min() >= 0 and m.max() <= 1
    g = explain.mosaic(tiles, normalize="all", pad=0)
    assert g.max() == 1 and g.min() == 0 and g.shape == (2 * 2, 3 * 3)
    assert explain.mosaic(np.zeros((2, 3, 4, 4))).shape == (2 * 4 + 1, 3 * 4 + 2)
    with pytest.raises(ValueError, match="normalize"):
        explain.mosaic(tiles, normalize="x")


def test_top_patches_brute_force():
    """A valid 5x5 conv (the MNIST net's first layer): each patch is the 5x5 input window
    under the unit, and the unit's value is relu(<patch, W[c]> + b[c])."""
    engine.set_seed(6)
    m = engine.zoo.get_model("mnist", (1, 12, 12), 3)
    x = np.random.default_rng(7).random((6, 1, 12, 12)).astype(np.float32)
    c = 4
    r = explain.top_patches(m, 0, x, c, k=4)
    w, b = m.layers[0].get_weights()
    act = explain.feature_maps(m, x, layers=0)[m.layers[0].name][:, c]
    best = act.reshape(6, -1).max(1)
    np.testing.assert_array_equal(r.indices, np.argsort(-best, kind="stable")[:4])
    for j, i in enumerate(r.indices):
        p, q = r.positions[j]
        np.testing.assert_array_equal(r.boxes[j], [[p, p + 5], [q, q + 5]])
        np.testing.assert_array_equal(r.patches[j], x[i, :, p:p + 5, q:q + 5])
        assert r.values[j] == pytest.approx(max((r.patches[j] * w[c]).sum() + b[c], 0),
                                            rel=1e-5)


def test_top_patches_same_padding_and_pooling(trained, digits):
    x = digits[2][:10]
    r = explain.top_patches(trained, 2, x, 1, k=3)   # conv2d_1: rf 8x8? (3 + 2*2) x jump 2
    assert r.patches.shape == (3, 1, 8, 8)
    for j, i in enumerate(r.indices):
        (y0, y1), (x0, x1) = r.boxes[j]
        full = np.zeros((1, 24, 24), np.float32)
        full[:, 8:16, 8:16] = x[i]
        np.testing.assert_array_equal(r.patches[j], full[:, y0 + 8:y1 + 8, x0 + 8:x1 + 8])


def test_deconv_by_hand():
    """Two 1x1 convolutions over a 1-D signal (a Dense per position): the projection is
    W1 . rule(s * W2[c]) at the unit's position, with the rule applied to the ReLU."""
    engine.set_seed(8)
    m = engine.Sequential([Conv1D(5, 1, activation="relu", input_shape=(3, 7)),
                           Conv1D(4, 1, name="top")])
    x = np.random.default_rng(9).normal(size=(2, 3, 7)).astype(np.float32)
    w1, b1 = m.layers[0].get_weights()
    w2, b2 = m.layers[1].get_weights()
    h = np.maximum(np.einsum("oi,nil->nol", w1[:, :, 0], x) + b1[:, None], 0)
    top = np.einsum("oi,nil->nol", w2[:, :, 0], h) + b2[:, None]
    c = 2
    for rule in ("deconvnet", "guided"):
        got = explain.deconv(m, "top", x, c, rule=rule)
        for n in range(2):
            p = top[n, c].argmax()
            g1 = top[n, c, p] * w2[c, :, 0]
            g1 = np.maximum(g1, 0) if rule == "deconvnet" else g1 * (h[n, :, p] > 0) * (g1 > 0)
            want = np.zeros((3, 7))
            want[:, p] = w1[:, :, 0].T @ g1
            np.testing.assert_allclose(got[n], want, rtol=1e-4, atol=1e-5)


# -- class model and MC dropout ---------------------------------------------------------

def test_class_model_raises_target_above_rest(trained):
    for target in (0, 3, 8):
        img = explain.class_model(trained, target, steps=150, seed=0)
        assert img.shape == (1, 8, 8)
        z = _net.logits(trained(img[None])).numpy()[0]
        assert z.argmax() == target and z[target] > np.delete(z, target).max(), z
    a = explain.class_model(trained, 5, steps=10, seed=1)
    np.testing.assert_array_equal(a, explain.class_model(trained, 5, steps=10, seed=1))


def test_mc_dropout_samples_dropout_only():
    """BatchNormalization stays in inference mode: with a linear head after the dropout,
    the mean over many masks converges to predict() (batch statistics would not)."""
    engine.set_seed(10)
    m = engine.Sequential([Dense(16, input_shape=(5,)), BatchNormalization(),
                           Dropout(0.5), Dense(3)])
    x = np.random.default_rng(11).normal(size=(4, 5)).astype(np.float32)
    m.compile("sgd", "mse")
    m.fit(x * 3 + 1, np.ones((4, 3)), epochs=3, verbose=0)   # moving statistics move
    r = explain.mc_dropout(m, x, samples=4000, seed=0)
    pred = m.predict(x, verbose=0)
    assert r.samples.shape == (4000, 4, 3) and r.entropy is None
    assert np.all(r.std > 0)
    np.testing.assert_allclose(r.mean, pred, atol=4 * r.std.max() / np.sqrt(4000))
    again = explain.mc_dropout(m, x, samples=4000, seed=0)
    np.testing.assert_array_equal(r.samples, again.samples)
    assert not np.array_equal(r.samples, explain.mc_dropout(m, x, samples=4000,
                                                            seed=1).samples)


def test_mc_dropout_entropy_and_mutual_information():
    engine.set_seed(12)
    m = engine.Sequential([Dense(8, activation="relu", input_shape=(4,)), Dropout(0.5),
                           Dense(3, activation="softmax")])
    x = np.random.default_rng(13).normal(size=(3, 4))
    r = explain.mc_dropout(m, x, samples=30, seed=2)
    p = r.samples.astype(np.float64)
    h = -(r.mean * np.log(r.mean)).sum(-1)
    np.testing.assert_allclose(r.entropy, h, rtol=1e-5)
    np.testing.assert_allclose(r.mutual_information, h + (p * np.log(p)).sum(-1).mean(0),
                               rtol=1e-4, atol=1e-6)
    assert np.all(r.mutual_information >= -1e-6)
    with pytest.raises(ValueError, match="no Dropout"):
        explain.mc_dropout(engine.zoo.get_model("small_cnn", (1, 8, 8), 3),
                           np.zeros((1, 1, 8, 8)))


# -- bad input --------------------------------------------------------------------------

def test_errors_name_function_and_argument(trained):
    x = np.zeros((2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"integrated_gradients: x must have shape "
                                         r"\(None, 1, 8, 8\).*received \(2, 8, 8\)"):
        explain.integrated_gradients(trained, np.zeros((2, 8, 8)), 0)
    with pytest.raises(ValueError, match=r"saliency: target must be in \[0, 10\)"):
        explain.saliency(trained, x, 10)
    with pytest.raises(ValueError, match="one int per input"):
        explain.saliency(trained, x, [1, 2, 3])
    with pytest.raises(ValueError, match="method must be one of"):
        explain.integrated_gradients(trained, x, 0, method="simpson")
    with pytest.raises(ValueError, match="occlusion: window"):
        explain.occlusion(trained, x, 0, window=9)
    with pytest.raises(ValueError, match="batch_size"):
        explain.occlusion(trained, x, 0, batch_size=0)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        explain.grad_cam(trained, x, 0, layer="nope")
    with pytest.raises(ValueError, match="has no spatial dims"):
        explain.grad_cam(trained, x, 0, layer=-2)
    with pytest.raises(ValueError, match="rule"):
        explain.deconv(trained, 0, x, 0, rule="lrp")
    with pytest.raises(ValueError, match=r"channel must be in \[0, 16\)"):
        explain.top_patches(trained, 0, x, 16)
    with pytest.raises(ValueError, match="not built"):
        explain.saliency(engine.Sequential([Dense(2)]), np.zeros((1, 3)), 0)


# -- captum -----------------------------------------------------------------------------

def torch_twin(model):
    """The course's MNIST net in PyTorch with the engine model's weights (logits out)."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    w = model.get_weights()
    c1, c2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 40, 5)
    fc1, fc2 = nn.Linear(w[4].shape[0], 100), nn.Linear(100, w[6].shape[1])
    with torch.no_grad():
        for mod, k, b in ((c1, w[0], w[1]), (c2, w[2], w[3])):
            mod.weight.copy_(torch.from_numpy(k))
            mod.bias.copy_(torch.from_numpy(b))
        for mod, k, b in ((fc1, w[4], w[5]), (fc2, w[6], w[7])):
            mod.weight.copy_(torch.from_numpy(k.T.copy()))
            mod.bias.copy_(torch.from_numpy(b))
    return nn.Sequential(c1, nn.ReLU(), c2, nn.ReLU(), nn.Flatten(), fc1, nn.ReLU(),
                         fc2).eval()


@pytest.mark.parametrize("method", explain.IG_METHODS)
def test_ig_equals_captum(method):
    captum_attr = pytest.importorskip("captum.attr")
    torch = pytest.importorskip("torch")
    engine.set_seed(14)
    m = engine.zoo.get_model("mnist", (1, 16, 16), 10)
    net = torch_twin(m)
    x = np.random.default_rng(15).random((2, 1, 16, 16)).astype(np.float32)
    t = [3, 7]
    ours, delta = explain.integrated_gradients(m, x, t, steps=12, method=method,
                                               return_delta=True)
    ig = captum_attr.IntegratedGradients(net)
    theirs, tdelta = ig.attribute(torch.from_numpy(x), target=t, n_steps=12, method=method,
                                  return_convergence_delta=True)
    scale = np.abs(theirs.numpy()).max()
    np.testing.assert_allclose(ours, theirs.numpy(), atol=2e-4 * scale)
    np.testing.assert_allclose(delta, tdelta.numpy(), atol=2e-3 * max(1.0, scale))


def test_occlusion_equals_captum():
    captum_attr = pytest.importorskip("captum.attr")
    torch = pytest.importorskip("torch")
    engine.set_seed(16)
    m = engine.zoo.get_model("mnist", (1, 13, 13), 10)
    net = torch_twin(m)
    x = np.random.default_rng(17).random((2, 1, 13, 13)).astype(np.float32)
    ours = explain.occlusion(m, x, [2, 5], window=4, stride=3, baseline=0.1)
    theirs = captum_attr.Occlusion(net).attribute(
        torch.from_numpy(x), sliding_window_shapes=(1, 4, 4), strides=(1, 3, 3),
        baselines=0.1, target=[2, 5]).numpy()[:, 0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())


# -- the command ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(trained, digits, tmp_path_factory):
    d = tmp_path_factory.mktemp("explain")
    trained.save(d / "model.npz")
    np.savez(d / "digits.npz", x=digits[2][:12])
    engine.set_seed(18)
    drop = engine.Sequential([Flatten(input_shape=(1, 8, 8)), Dense(16, activation="relu"),
                              Dropout(0.3), Dense(10, activation="softmax")])
    drop.save(d / "drop.npz")
    return d


def explain_cli(*args):
    env = dict(os.environ, COLUMNS="160")
    return subprocess.run([sys.executable, "-m", "bench", "explain", *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("method,extra", [
    ("filters", []), ("feature-maps", ["--layer", "1"]),
    ("top-patches", ["--layer", "<name of layer 2>", "--channel", "2"]),  # a layer by name
    ("deconv", ["--layer", "2", "--rule", "guided"]),
    ("occlusion", ["--window", "2", "--stride", "2"]), ("saliency", ["--samples", "3"]),
    ("integrated-gradients", ["--steps", "8", "--target", "4"]), ("grad-cam", []),
    ("class-model", ["--target", "2", "--steps", "20"])])
def test_cli_writes_png(saved, trained, method, extra):
    pytest.importorskip("matplotlib")
    # layer names count up per process (conv2d_1 alone, conv2d_17 after other tests)
    extra = [trained.layers[2].name if a == "<name of layer 2>" else a for a in extra]
    out = saved / f"{method}.png"
    proc = explain_cli(saved / "model.npz", saved / "digits.npz", "--method", method,
                       "--out", out, *extra)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_mc_dropout_and_image_input(saved):
    matplotlib = pytest.importorskip("matplotlib")
    img = saved / "digit.png"
    matplotlib.image.imsave(img, np.load(saved / "digits.npz")["x"][0, 0], cmap="gray")
    out = saved / "mc.png"
    proc = explain_cli(saved / "drop.npz", img, "--method", "mc-dropout", "--samples", "20",
                       "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_cli_bad_arguments(saved):
    proc = explain_cli(saved / "model.npz", saved / "digits.npz", "--method", "grad-cam",
                       "--layer", "nope", "--out", saved / "x.png")
    assert proc.returncode == 2 and "no layer 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = explain_cli(saved / "missing.npz", saved / "digits.npz", "--method", "filters",
                       "--out", saved / "x.png")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    np.save(saved / "wrong.npy", np.zeros((3, 5)))
    proc = explain_cli(saved / "model.npz", saved / "wrong.npy", "--method", "saliency",
                       "--out", saved / "x.png")
    assert proc.returncode == 2 and "(1, 8, 8)" in proc.stderr


def test_cli_without_matplotlib_says_how_to_install(saved, monkeypatch, capsys):
    from bench import cli
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = cli.main(["explain", str(saved / "model.npz"), str(saved / "digits.npz"),
                     "--method", "saliency", "--out", str(saved / "x.png")])
    assert code == 1
    assert "pip install matplotlib" in capsys.readouterr().err


