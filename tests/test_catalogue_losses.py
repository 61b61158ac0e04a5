"""Losses by name and as objects: values against real Keras 3 and closed forms, gradients
by gradcheck, per-sample forms."""
import numpy as np
import pytest

from engine import functional as F
from engine import losses
from engine.autograd import gradcheck
from engine.tensor import Tensor
from tests._keras_ref import keras_or_none

keras = keras_or_none()
needs_keras = pytest.mark.skipif(keras is None, reason="keras 3 (torch backend) not installed")

R = np.random.default_rng(11)
REG_P = R.normal(size=(4, 3, 5)).astype(np.float32)
REG_Y = R.normal(size=(4, 3, 5)).astype(np.float32)
POS_P = R.uniform(0.05, 3, size=(4, 5)).astype(np.float32)
POS_Y = R.uniform(0.0, 3, size=(4, 5)).astype(np.float32)
PROB_P = F.softmax(Tensor(R.normal(size=(4, 5)).astype(np.float32))).numpy()
ONEHOT = np.eye(5, dtype=np.float32)[[0, 3, 2, 4]]
BIN_Y = (R.random((4, 5)) > 0.5).astype(np.float32)

CASES = [
    ("mean_absolute_error", REG_P, REG_Y, "MeanAbsoluteError", {}),
    ("mean_absolute_percentage_error", REG_P, REG_Y, "MeanAbsolutePercentageError", {}),
    ("mean_squared_logarithmic_error", POS_P, POS_Y, "MeanSquaredLogarithmicError", {}),
    ("huber", REG_P, REG_Y, "Huber", dict(delta=0.7)),
    ("log_cosh", REG_P, REG_Y, "LogCosh", {}),
    ("hinge", REG_P[:, 0], BIN_Y, "Hinge", {}),
    ("squared_hinge", REG_P[:, 0], BIN_Y * 2 - 1, "SquaredHinge", {}),
    ("categorical_hinge", REG_P[:, 0], ONEHOT, "CategoricalHinge", {}),
    ("kl_divergence", PROB_P, F.softmax(Tensor(REG_Y[:, 0])).numpy(), "KLDivergence", {}),
    ("poisson", POS_P, POS_Y, "Poisson", {}),
    ("cosine_similarity", REG_P, REG_Y, "CosineSimilarity", {}),
    ("mse", REG_P, REG_Y, "MeanSquaredError", {}),
    ("categorical_crossentropy", PROB_P, ONEHOT, "CategoricalCrossentropy",
     dict(label_smoothing=0.2)),
    ("categorical_crossentropy", REG_P[:, 0], ONEHOT, "CategoricalCrossentropy",
     dict(from_logits=True, label_smoothing=0.1)),
    ("binary_crossentropy", PROB_P, BIN_Y, "BinaryCrossentropy", dict(label_smoothing=0.3)),
    ("binary_crossentropy", REG_P[:, 0], BIN_Y, "BinaryCrossentropy",
     dict(from_logits=True, label_smoothing=0.1)),
    ("binary_focal_crossentropy", PROB_P, BIN_Y, "BinaryFocalCrossentropy", {}),
    ("binary_focal_crossentropy", REG_P[:, 0], BIN_Y, "BinaryFocalCrossentropy",
     dict(apply_class_balancing=True, alpha=0.4, gamma=1.5, from_logits=True,
          label_smoothing=0.1)),
    ("categorical_focal_crossentropy", PROB_P, ONEHOT, "CategoricalFocalCrossentropy", {}),
    ("categorical_focal_crossentropy", REG_P[:, 0], ONEHOT, "CategoricalFocalCrossentropy",
     dict(alpha=0.5, gamma=3.0, from_logits=True, label_smoothing=0.2)),
]


@needs_keras
@pytest.mark.parametrize("name,p,y,cls,kw", CASES, ids=[c[3] + str(c[4]) for c in CASES])
def test_loss_matches_keras(name, p, y, cls, kw):
    ref = float(keras.ops.convert_to_numpy(getattr(keras.losses, cls)(**kw)(y, p)))
    ours = losses.get({"class_name": cls, "config": kw}) if kw else losses.get(name)
    assert float(ours(Tensor(p), y).item()) == pytest.approx(ref, rel=2e-5, abs=1e-6)
    # per-sample form: its mean is the loss, each entry Keras's unreduced value
    per = ours.per_sample(Tensor(p), y).numpy()
    ref_per = keras.ops.convert_to_numpy(getattr(keras.losses, cls)(
        reduction=None, **kw)(y, p))
    ref_per = ref_per.reshape(len(p), -1).mean(axis=1)
    np.testing.assert_allclose(per, ref_per, rtol=2e-5, atol=1e-6)


@needs_keras
def test_sample_weighted_loss_matches_keras():
    w = np.array([0.5, 2.0, 0.0, 1.0], np.float32)
    ref = float(keras.ops.convert_to_numpy(
        keras.losses.Huber()(REG_Y[:, 0], REG_P[:, 0], sample_weight=w)))
    per = losses.Huber().per_sample(Tensor(REG_P[:, 0]), REG_Y[:, 0])
    assert float((per * w).sum().item()) / 4 == pytest.approx(ref, rel=2e-5)


GRAD_CASES = [c for c in CASES if c[0] not in ("mse",)]


@pytest.mark.parametrize("name,p,y,cls,kw", GRAD_CASES, ids=[c[3] for c in GRAD_CASES])
def test_loss_gradcheck(name, p, y, cls, kw):
    loss = losses.get({"class_name": cls, "config": kw}) if kw else losses.get(name)
    x = Tensor(p.astype(np.float64), requires_grad=True)
    if cls in ("KLDivergence", "CategoricalCrossentropy", "CategoricalFocalCrossentropy") \
            and not kw.get("from_logits"):
        x = Tensor(np.log(p.astype(np.float64)), requires_grad=True)   # softmax inputs
        assert gradcheck(lambda t: loss(F.softmax(t), y), [x])
    elif cls in ("BinaryCrossentropy", "BinaryFocalCrossentropy") and \
            not kw.get("from_logits"):
        x = Tensor(np.log(p / (1 - p)).astype(np.float64), requires_grad=True)
        assert gradcheck(lambda t: loss(F.sigmoid(t), y), [x])
    else:
        assert gradcheck(lambda t: loss(t, y), [x], atol=1e-4)


def test_closed_forms():
    p = Tensor(np.array([[0.5, 3.0]]))
    y = np.zeros((1, 2))
    assert losses.get("mae")(p, y).item() == pytest.approx(1.75)
    assert losses.Huber(1.0)(p, y).item() == pytest.approx((0.125 + 2.5) / 2)
    assert losses.get("hinge")(Tensor([[0.3]]), [[1.0]]).item() == pytest.approx(0.7)
    assert losses.get("poisson")(Tensor([[2.0]]), [[1.0]]).item() == \
        pytest.approx(2 - np.log(2 + 1e-7))
    assert losses.get("cosine_similarity")(Tensor([[1.0, 1.0]]), [[0.0, 3.0]]).item() == \
        pytest.approx(-np.sqrt(0.5))
    smooth = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.5)
    # targets become [0.75, 0.25]; logits equal -> log 2
    assert smooth(Tensor([[0.0, 0.0]]), [[1.0, 0.0]]).item() == pytest.approx(np.log(2))


def test_unknown_loss_lists_names():
    with pytest.raises(ValueError, match="huber"):
        losses.get("hubber")


@needs_keras
@pytest.mark.parametrize("cls,kw", [("Dice", {}), ("Dice", dict(axis=(1, 2))),
                                    ("Tversky", dict(alpha=0.3, beta=0.7)),
                                    ("Tversky", dict(alpha=0.3, beta=0.7, axis=(1, 2)))])
def test_overlap_losses_match_keras(cls, kw):
    p = R.uniform(0, 1, size=(3, 4, 5)).astype(np.float32)
    y = (R.random((3, 4, 5)) > 0.5).astype(np.float32)
    ref = float(keras.ops.convert_to_numpy(getattr(keras.losses, cls)(**kw)(y, p)))
    ours = losses.get({"class_name": cls, "config": kw})
    assert ours(Tensor(p), y).item() == pytest.approx(ref, rel=1e-5)
    x = Tensor(p.astype(np.float64), requires_grad=True)
    assert gradcheck(lambda t: ours(t, y), [x])
