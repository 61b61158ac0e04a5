"""Save / load: round trips, atomic writes, and every kind of bad file."""
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import engine
from engine import io as model_io
from engine.io import ModelFileError
from engine.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D

RNG = np.random.default_rng(3)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def cnn():
    model = engine.Sequential([
        Conv2D(4, 3, padding="same", activation="relu", input_shape=(1, 8, 8)),
        MaxPooling2D(2), Flatten(), Dropout(0.2), Dense(5, activation="softmax")])
    model.compile(engine.optimizers.Adam(0.005, amsgrad=True),
                  "sparse_categorical_crossentropy", ["accuracy"])
    return model


@pytest.fixture
def saved(tmp_path):
    model = cnn()
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path


def test_sequential_round_trip_identical_predictions(saved):
    model, path = saved
    x = rand(6, 1, 8, 8)
    loaded = engine.load_model(path)
    assert type(loaded) is engine.Sequential and loaded.name == model.name
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    # compile settings come back; training continues
    assert isinstance(loaded.optimizer, engine.optimizers.Adam) and loaded.optimizer.amsgrad
    assert loaded.loss.name == "sparse_categorical_crossentropy"
    assert len(loaded.evaluate(x, np.arange(6) % 5)) == 2
    assert engine.load_model(path, compile=False).loss is None


def test_functional_round_trip_with_batchnorm(tmp_path):
    engine.set_seed(0)
    model = engine.zoo.get_model("small_resnet", (1, 8, 8), 3)
    model.compile("adam", "sparse_categorical_crossentropy")
    x = rand(8, 1, 8, 8)
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)        # moves the BN statistics
    model.save(tmp_path / "res.npz")
    loaded = engine.load_model(tmp_path / "res.npz")
    assert type(loaded) is engine.Model
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.get_config() == model.get_config()


def test_uncompiled_and_custom_loss_models_save(tmp_path):
    model = engine.Sequential([Dense(2, input_shape=(3,))])
    model.save(tmp_path / "a.npz")
    assert engine.load_model(tmp_path / "a.npz").loss is None
    model.compile("sgd", lambda pred, target: ((pred - target) ** 2).mean())
    model.save(tmp_path / "b.npz")          # custom loss: weights and architecture only
    assert engine.load_model(tmp_path / "b.npz").loss is None


def test_custom_activation_cannot_be_saved(tmp_path):
    model = engine.Sequential([Dense(2, activation=lambda t: t * 2, input_shape=(3,),
                                     name="custom")])
    with pytest.raises(TypeError, match="Dense layer 'custom'.*cannot be saved"):
        model.save(tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_save_is_atomic(saved, monkeypatch):
    model, path = saved
    before = path.read_bytes()
    model.layers[-1].set_weights([w + 1 for w in model.layers[-1].get_weights()])

    def crash(f, arrays):
        f.write(b"PK\x03\x04 half written")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(model_io, "_write_arrays", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before                    # old file whole
    assert os.listdir(path.parent) == ["model.npz"]       # no temp file left behind
    engine.load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file.*nothere.npz"):
        engine.load_model(tmp_path / "nothere.npz")
    with pytest.raises(ModelFileError, match="is a directory"):
        engine.load_model(tmp_path)


def test_empty_and_truncated_files(saved):
    _, path = saved
    data = path.read_bytes()
    for size in (0, 2, 100, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        with pytest.raises(ModelFileError, match="empty|truncated|not a convlab"):
            engine.load_model(path)


def test_corrupted_bytes_are_detected(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("w00000.npy")
    # flip one byte inside the first weight's data (after its local header and npy header)
    pos = info.header_offset + 30 + len(info.filename) + 128 + 5
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="corrupted"):
        engine.load_model(path)


class _Exploit:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_file_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(ModelFileError, match="pickle"):
        engine.load_model(path)
    assert not marker.exists()


def test_npz_with_pickled_member_is_refused(saved):
    _, path = saved
    marker = path.parent / "pwned"
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["w00000"] = np.array([_Exploit(str(marker))], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="'w00000' holds pickled Python objects"):
        engine.load_model(path)
    assert not marker.exists()


def _rewrite_config(path, edit):
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(arrays["__config__"].tobytes())
    edit(meta)
    arrays["__config__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("edit,pattern", [
    (lambda m: m.update(format="other"), "format marker"),
    (lambda m: m.update(version=99), "version 99"),
    (lambda m: m.update(class_name="os.system"), "unknown model class 'os.system'"),
    (lambda m: m["config"]["layers"][0].update(class_name="Lambda"),
     "unknown layer class 'Lambda'"),
    (lambda m: m["config"]["layers"][0]["config"].update(filters=-3), "filters"),
    (lambda m: m["config"]["layers"][0]["config"].update(__import__="os"), "invalid model"),
    (lambda m: m["config"]["layers"][0]["config"].update(filters=8), "weight 0 has shape"),
    (lambda m: m["config"]["layers"].pop(), "does not match its architecture"),
    (lambda m: m["training_config"].update(loss={"class_name": "Evil"}), "training"),
])
def test_invalid_architecture_is_refused(saved, edit, pattern):
    _, path = saved
    _rewrite_config(path, edit)
    with pytest.raises(ModelFileError, match=pattern):
        engine.load_model(path)


def test_other_numpy_files_are_refused(tmp_path):
    npy = tmp_path / "plain.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ModelFileError, match="not a convlab model file"):
        engine.load_model(npy)
    npz = tmp_path / "other.npz"
    np.savez(npz, a=np.zeros(3))
    with pytest.raises(ModelFileError, match="no __config__ member"):
        engine.load_model(npz)
    bad_json = tmp_path / "json.npz"
    np.savez(bad_json, __config__=np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(ModelFileError, match="unreadable architecture"):
        engine.load_model(bad_json)


def test_file_holds_json_and_plain_arrays_only(saved):
    _, path = saved
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(npz["__config__"].tobytes())
        assert meta["format"] == "convlab-model" and meta["class_name"] == "Sequential"
        assert all(npz[k].dtype == np.float32 for k in npz.files if k != "__config__")
