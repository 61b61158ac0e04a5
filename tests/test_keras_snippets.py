"""The course's Keras 1 / 2 code, run as written with ``keras`` replaced by
``engine.keras`` in the imports, checked against hand-computed values (parameter counts,
shapes, summary totals).  The cross-checks against real Keras 3 are in
test_keras_vs_keras3.py."""
import re
import textwrap
import warnings

import numpy as np
import pytest

from engine.keras import LegacyWarning
from tests.keras_helpers import front_state, keras_home  # noqa: F401


def run_snippet(code, **names):
    scope = dict(names)
    exec(textwrap.dedent(code), scope)
    return scope


MNIST_CASE_STUDY = """
from engine.keras.datasets import mnist
from engine.keras.models import Sequential
from engine.keras.layers import Conv2D, Flatten, Dense
from engine.keras.utils import to_categorical

(X_train, y_train), (X_test, y_test) = mnist.load_data()
X_train = X_train.reshape(60000, 28, 28, 1).astype('float32') / 255
X_test = X_test.reshape(10000, 28, 28, 1).astype('float32') / 255
y_train = to_categorical(y_train)
y_test = to_categorical(y_test)

model = Sequential()
model.add(Conv2D(20, kernel_size=5, activation='relu', input_shape=(28, 28, 1)))
model.add(Conv2D(40, kernel_size=5, activation='relu'))
model.add(Flatten())
model.add(Dense(100, activation='relu'))
model.add(Dense(10, activation='softmax'))
model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
"""


def test_mnist_case_study_runs_as_written(keras_home, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error", LegacyWarning)   # Keras 2 code: no legacy warning
        s = run_snippet(MNIST_CASE_STUDY)
    model = s["model"]
    assert s["X_train"].shape == (60000, 28, 28, 1) and s["y_train"].shape == (60000, 10)
    # hand-computed: 20*25+20, 40*20*25+40, 16000*100+100, 100*10+10
    assert [layer.count_params() for layer in model.layers] == [520, 20040, 0, 1600100, 1010]
    assert model.count_params() == 1621670
    assert [layer.output.shape for layer in model.layers] == [
        (None, 24, 24, 20), (None, 20, 20, 40), (None, 16000), (None, 100), (None, 10)]
    model.summary()
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    assert 'Model: "sequential"' in text
    assert " Total params: 1,621,670 (6.19 MB)" in text
    assert re.search(r"conv2d \(Conv2D\)\s+│ \(None, 24, 24, 20\)\s+│\s+520 │", text)
    # the fit line of the notes, on a slice of the data (20 epochs of 60,000 images would
    # take many minutes on a shared CPU): same call, same arguments otherwise
    hist = model.fit(s["X_train"][:64], s["y_train"][:64],
                     validation_data=(s["X_test"][:32], s["y_test"][:32]), epochs=2)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and max(len(line) for line in out.splitlines()) <= 80
    assert re.search(r"2/2 ━{20} \d+s \d+(s|ms|us)/step - accuracy: \d\.\d{4} - "
                     r"loss: \d\.\d{4}(e-\d\d)?\n    - val_accuracy: \d\.\d{4} - val_loss: ", out)
    assert re.search(r"fwd/bwd \d+\.\d{3}/\d+\.\d{3} ms per example", out)
    assert sorted(hist.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(hist.timing["fwd_ms_per_example"]) == 2


BINARY_150 = """
from engine.keras import models, layers

model = models.Sequential()
model.add(layers.Conv2D(32, (3, 3), activation='relu', input_shape=(150, 150, 1)))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation='relu'))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(128, (3, 3), activation='relu'))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(128, (3, 3), activation='relu'))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Flatten())
model.add(layers.Dense(512, activation='relu'))
model.add(layers.Dense(1, activation='sigmoid'))
model.compile(loss='binary_crossentropy', optimizer='rmsprop', metrics=['acc'])
"""


def test_binary_150x150_snippet_counts_and_1d_targets():
    model = run_snippet(BINARY_150)["model"]
    # 150 -> 148 -> 74 -> 72 -> 36 -> 34 -> 17 -> 15 -> 7 (valid 3x3, pool 2 floors)
    expect = [320, 0, 18496, 0, 73856, 0, 147584, 0, 0, 7 * 7 * 128 * 512 + 512, 513]
    assert [layer.count_params() for layer in model.layers] == expect
    assert model.count_params() == sum(expect) == 3452545   # 3,453,121 with RGB input
    assert model.layers[7].output.shape == (None, 7, 7, 128)
    x = np.random.default_rng(0).random((4, 150, 150, 1), dtype=np.float32)
    y = np.array([0, 1, 1, 0])                           # (N,) targets, as Keras takes them
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert model.evaluate(x, y, verbose=0)[1] in (0.0, 0.25, 0.5, 0.75, 1.0)


KERAS1 = """
import numpy as np
import engine.keras as keras
from engine.keras.models import Sequential
from engine.keras.layers import Convolution2D, Activation, Dropout, MaxPooling2D, Flatten, Dense
from engine.keras.constraints import maxnorm

img_channels, img_rows, img_cols = 1, 20, 20
depth, conv_size, act, layer_n = 8, 3, 'relu', 3
model = Sequential()
model.add(Convolution2D(32, 6, 6, border_mode='same',
                        input_shape=(img_channels, img_rows, img_cols)))
model.add(Activation('relu'))
model.add(Dropout(0.5))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Convolution2D(4, 5, 5, activation="relu"))
model.add(Convolution2D(depth, conv_size, conv_size, activation=act, border_mode='same',
                        name="conv%i" % layer_n, init='he_normal', W_constraint=maxnorm(3)))
model.add(Flatten())
model.add(Dense(1, init='uniform', activation='sigmoid'))
model.compile(loss='binary_crossentropy', metrics=['accuracy'],
              optimizer=keras.optimizers.RMSprop(lr=0.001, rho=0.9, epsilon=None, decay=0.0))
model.summary()
model.fit(X, Y, nb_epoch=2, batch_size=16, verbose=0)
layer_dict = dict([(layer.name, layer) for layer in model.layers])
W = layer_dict["conv3"].W.get_value(borrow=True)
W = np.squeeze(W)
"""


def test_keras1_theano_order_snippet(capsys):
    gen = np.random.default_rng(1)
    X = gen.random((64, 1, 20, 20), dtype=np.float32)
    Y = (X.mean(axis=(1, 2, 3)) > 0.5).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = run_snippet(KERAS1, X=X, Y=Y)
    legacy = [str(w.message) for w in caught if issubclass(w.category, LegacyWarning)]
    # one warning per Keras 1 spelling used, each naming the new spelling
    for old, new in (("border_mode", "padding="), ("init", "kernel_initializer="),
                     ("W_constraint", "kernel_constraint="), ("lr", "learning_rate="),
                     ("nb_epoch", "epochs="), ("decay", "InverseTimeDecay"),
                     ("epsilon=None", "epsilon=1e-07")):
        assert any(f"'{old}'" in m and new in m for m in legacy), (old, legacy)
    assert sum("'border_mode'" in m for m in legacy) == 2
    assert sum("nb_row, nb_col" in m for m in legacy) == 3
    assert any(m.startswith("Convolution2D: ") for m in legacy)
    model = s["model"]
    # "th": channels first throughout, the pooling follows its Convolution2D
    assert [layer.output.shape for layer in model.layers] == [
        (None, 32, 20, 20), (None, 32, 20, 20), (None, 32, 20, 20), (None, 32, 10, 10),
        (None, 4, 6, 6), (None, 8, 6, 6), (None, 288), (None, 1)]
    assert [layer.count_params() for layer in model.layers] == [
        32 * 36 + 32, 0, 0, 0, 4 * 32 * 25 + 4, 8 * 4 * 9 + 8, 0, 289]
    assert s["W"].shape == (8, 4, 3, 3)                 # (nb_filter, stack, rows, cols)
    conv3 = model.get_layer("conv3")
    np.testing.assert_array_equal(s["W"], conv3.kernel.numpy())
    # maxnorm(3) held after training (Keras 3 layout, axis 0)
    k = conv3.get_weights()[0]
    assert np.sqrt((k ** 2).sum(axis=0)).max() <= 3.0 + 1e-5
    text = capsys.readouterr().out
    assert " Total params: 4,973 (19.43 KB)" in text


def test_keras1_dim_ordering_tf_and_set_value():
    from engine.keras import backend
    from engine.keras.layers import Convolution2D, Dense
    backend.set_image_dim_ordering("tf")
    with pytest.warns(LegacyWarning):
        layer = Convolution2D(6, 3, 3, input_shape=(10, 10, 2))
    assert layer.data_format == "channels_last"
    with pytest.warns(LegacyWarning, match="'dim_ordering'.*data_format="):
        th = Convolution2D(6, 3, 3, dim_ordering="th")
    assert th.data_format == "channels_first"
    from engine.keras.models import Sequential
    model = Sequential([layer, Dense(2)])
    assert layer.W.get_value().shape == (3, 3, 2, 6)     # tf layout (rows, cols, stack, n)
    new = np.arange(3 * 3 * 2 * 6, dtype=np.float32).reshape(3, 3, 2, 6)
    layer.W.set_value(new)
    np.testing.assert_array_equal(layer.get_weights()[0], new)
    np.testing.assert_array_equal(layer.kernel.numpy(), new.transpose(3, 2, 0, 1))
    with pytest.raises(ValueError, match=r"expects shape \(3, 3, 2, 6\)"):
        layer.W.set_value(np.zeros((6, 2, 3, 3)))
    layer.b.set_value(np.ones(6))
    np.testing.assert_array_equal(layer.b.get_value(), 1.0)
    assert model.output_shape == (None, 8, 8, 2)


def test_keras1_dense_and_dropout_spellings():
    from engine.keras.layers import Dense, Dropout
    with pytest.warns(LegacyWarning) as rec:
        d = Dense(output_dim=4, input_dim=3, W_regularizer="l2", bias=False)
        drop = Dropout(p=0.25)
    assert d.units == 4 and d.use_bias is False and d.input_shape_arg == (3,)
    assert drop.rate == 0.25
    assert len(rec) == 4
