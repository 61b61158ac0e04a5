"""Sequential and functional models: building, the executor, summary, zoo."""
import os
import re

import numpy as np
import pytest

import engine
from engine.layers import (Add, BatchNormalization, Concatenate, Conv2D, Dense, Flatten, Input,
                           MaxPooling2D, ReLU)

RNG = np.random.default_rng(1)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def mnist_model():
    return engine.Sequential([
        Conv2D(20, 5, activation="relu", input_shape=(1, 28, 28)),
        Conv2D(40, 5, activation="relu"),
        Flatten(),
        Dense(100, activation="relu"),
        Dense(10, activation="softmax"),
    ])


def summary_text(model, **kwargs):
    lines = []
    model.summary(print_fn=lines.append, **kwargs)
    return "\n".join(lines)


def test_course_mnist_model_parameter_count_and_shapes():
    model = mnist_model()
    assert model.count_params() == 1_621_670
    shapes = [layer.output.shape for layer in model.layers]
    assert shapes == [(None, 20, 24, 24), (None, 40, 20, 20), (None, 16000), (None, 100),
                      (None, 10)]
    assert [w.shape for w in model.get_weights()] == [
        (20, 1, 5, 5), (20,), (40, 20, 5, 5), (40,), (16000, 100), (100,), (100, 10), (10,)]


def test_course_mnist_summary_table(capsys):
    model = mnist_model()
    model.summary()
    text = capsys.readouterr().out
    for col in ("Layer (type)", "Output Shape", "Param #"):
        assert col in text
    assert "Connected to" not in text              # Sequential: one path, no column
    assert "Receptive" not in text and "fwd" not in text    # convlab's extras on request
    assert max(len(line) for line in text.splitlines()) <= 80
    assert re.search(r"conv2d\S* \(Conv2D\)\s+│\s+\(None, 20, 24, 24\)\s+│\s+520 │", text)
    assert re.search(r"\(Conv2D\)\s+│\s+\(None, 40, 20, 20\)\s+│\s+20,040 │", text)
    assert re.search(r"\(Dense\)\s+│\s+\(None, 100\)\s+│\s+1,600,100 │", text)
    # Keras's totals with float32 sizes: 1,621,670 * 4 bytes = 6.19 MiB
    assert " Total params: 1,621,670 (6.19 MB)" in text
    assert " Trainable params: 1,621,670 (6.19 MB)" in text
    assert " Non-trainable params: 0 (0.00 B)" in text


def test_summary_strategies_shows_each_pass_and_the_device(capsys):
    model = mnist_model()
    model.summary(strategies=True)
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    for col in ("Device", "Rec. field", "fwd", "grad-input", "grad-weight"):
        assert col in text
    for layer, rf in zip(model.layers[:2], ("5x5", "9x9")):
        shape = layer.input_shape
        cells = []
        for pass_ in ("fwd", "grad_input", "grad_weight"):
            s, b, reason = layer.strategy_choice(shape, pass_=pass_)
            cells.append(f"{s}/{b}")
            assert reason in " ".join(text.split())
        assert re.search(rf"{layer.name}\s+cpu\s+{rf}\s+" + r"\s+".join(cells), text)
    assert re.search(r"\n\S*dense\S*\s+cpu\s+full input", text)


def residual_model(filters=4):
    x = Input((filters, 6, 6), name="x")
    y = Conv2D(filters, 3, padding="same", name="c1")(x)
    y = BatchNormalization(name="bn")(y)
    y = ReLU(name="r")(Add(name="add")([x, y]))
    out = Dense(3, activation="softmax", name="out")(Flatten(name="flat")(y))
    return engine.Model(x, out, name="resnet")


def test_functional_summary_has_connected_to_and_non_trainable():
    text = summary_text(residual_model())
    assert "Connected to" in text
    assert re.search(r"add \(Add\)\s+│\s+\(None, 4, 6, 6\)\s+│\s+0 │ x\[0\]\[0\]", text)
    assert re.search(r"│\s+│\s+│\s+│ bn\[0\]\[0\]", text)
    assert "x (InputLayer)" in text
    assert "Non-trainable params: 8 (32.00 B)" in text  # moving mean and variance of 4
    assert re.search(r"\nadd\s+cpu\s+3x3", summary_text(residual_model(), strategies=True))


def test_receptive_field_through_pooling_and_dilation():
    model = engine.Sequential([Conv2D(2, 3, input_shape=(1, 32, 32)), MaxPooling2D(2),
                               Conv2D(2, 3, dilation_rate=2)])
    text = summary_text(model, strategies=True)
    names = [layer.name for layer in model.layers]
    assert re.search(rf"\n{names[1]}\s+cpu\s+4x4", text)
    # 4 + (3 - 1) * 2 (dilation) * 2 (jump after pooling) = 12
    assert re.search(rf"\n{names[2]}\s+cpu\s+12x12", text)


def test_functional_model_runs_the_same_as_layer_by_layer():
    model = residual_model()
    x = rand(5, 4, 6, 6)
    layers = {layer.name: layer for layer in model.layers}
    y = layers["c1"](x)
    y = layers["bn"](y)
    y = layers["r"](layers["add"]([x, y]))
    expect = layers["out"](layers["flat"](y)).numpy()
    np.testing.assert_allclose(model.predict(x, batch_size=2), expect, rtol=1e-5, atol=1e-6)
    assert model.get_layer("bn") is layers["bn"]
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")


def test_model_call_gives_gradients_with_respect_to_inputs():
    model = residual_model()
    x = engine.Tensor(rand(2, 4, 6, 6), requires_grad=True)
    out = model(x)
    out[:, 0].sum().backward()
    assert x.grad is not None and x.grad.shape == (2, 4, 6, 6) and np.abs(x.grad).sum() > 0


def test_intermediate_outputs_through_layer_output():
    model = mnist_model()
    features = engine.Model(model.input, model.layers[0].output)
    x = rand(2, 1, 28, 28)
    np.testing.assert_allclose(features.predict(x), model.layers[0](x).numpy(), rtol=1e-5)


def test_multi_input_model():
    a, b = Input((3,), name="a"), Input((2,), name="b")
    model = engine.Model([a, b], Dense(1, name="d")(Concatenate(name="cat")([a, b])))
    xa, xb = rand(4, 3), rand(4, 2)
    kernel, bias = model.get_layer("d").get_weights()
    np.testing.assert_allclose(model.predict([xa, xb]),
                               np.concatenate([xa, xb], 1) @ kernel + bias, rtol=1e-5)
    with pytest.raises(ValueError, match="2 inputs"):
        model.predict(xa)


def test_sequential_build_paths():
    with_input = engine.Sequential([Input((3,)), Dense(2)])
    assert with_input.built and with_input.output_shape == (None, 2)
    added = engine.Sequential()
    added.add(Dense(4, input_shape=(3,)))
    added.add(Dense(2))
    assert added.output_shape == (None, 2) and added.count_params() == 16 + 10
    lazy = engine.Sequential([Dense(4), Dense(2)])
    assert not lazy.built
    with pytest.raises(ValueError, match="not built|needs a built model"):
        lazy.summary()
    assert lazy.predict(rand(5, 3)).shape == (5, 2)
    assert lazy.built and lazy.input_shape == (None, 3)
    explicit = engine.Sequential([Dense(2)])
    explicit.build((None, 7))
    assert explicit.layers[0].get_weights()[0].shape == (7, 2)
    first = explicit.layers[0]
    assert explicit.pop() is first and explicit.layers == []


def test_sequential_rejects_merge_layers_and_duplicates():
    model = engine.Sequential()
    with pytest.raises(TypeError, match="several inputs"):
        model.add(Add())
    d = Dense(2, name="same")
    model.add(d)
    with pytest.raises(ValueError, match="'same' is already in the model"):
        model.add(Dense(3, name="same"))
    with pytest.raises(TypeError, match="expects a Layer"):
        model.add("dense")


def test_model_input_shape_errors_name_input_and_layer():
    model = mnist_model()
    with pytest.raises(ValueError, match=r"expects shape \(None, 1, 28, 28\), received "
                                         r"\(2, 3, 28, 28\).*feeding layer 'conv2d"):
        model.predict(rand(2, 3, 28, 28))


def test_graph_errors():
    a, b = Input((3,)), Input((3,))
    with pytest.raises(ValueError, match="graph disconnected"):
        engine.Model(a, Add()([a, b]))
    x = Input((3,))
    y = Dense(2, name="twin")(x)
    with pytest.raises(ValueError, match="'twin' appear more than once"):
        engine.Model(x, Dense(2, name="twin")(y))
    with pytest.raises(TypeError, match="symbolic tensors"):
        engine.Model(x, rand(1, 3))


def test_shared_layer_is_counted_once():
    x = Input((4,))
    shared = Dense(4, name="shared")
    model = engine.Model(x, shared(shared(x)))
    assert model.count_params() == 20 and len(model.get_weights()) == 2
    k, b = shared.get_weights()
    xv = rand(3, 4)
    np.testing.assert_allclose(model.predict(xv), (xv @ k + b) @ k + b, rtol=1e-5)


def test_set_weights_on_model_checks_count():
    model = mnist_model()
    weights = model.get_weights()
    model.set_weights([w * 0 for w in weights])
    assert not any(w.any() for w in model.get_weights())
    with pytest.raises(ValueError, match="expects 8 arrays, received 7"):
        model.set_weights(weights[:-1])


@pytest.mark.parametrize("name", engine.zoo.MODEL_NAMES)
def test_zoo_models_build_and_run(name):
    model = engine.zoo.get_model(name, num_classes=4)
    shape = model.input_shape[1:]
    out = model.predict(rand(2, *shape))
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_zoo_errors():
    with pytest.raises(ValueError, match="unknown model 'vgg'.*mnist"):
        engine.zoo.get_model("vgg")
    with pytest.raises(ValueError, match="3 dims"):
        engine.zoo.get_model("mnist", (28, 28))


def test_summary_strategies_shows_the_cuda_device_under_the_simulator():
    """A model moved to "cuda" lists its layers on cuda and the cuda path's choice (run in a
    subprocess: the simulator is process-wide)."""
    import subprocess
    import sys
    code = ("import engine\nfrom engine.layers import Conv2D, Flatten, Dense\n"
            "m = engine.Sequential([Conv2D(4, 3, input_shape=(1, 8, 8)), Flatten(), "
            "Dense(2)]).to('cuda')\nm.summary(strategies=True)\n")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600, cwd=os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\nconv2d\S*\s+cuda\s+3x3\s+im2col/cuda\s+im2col/cuda\s+im2col/cuda",
                     proc.stdout)
    assert re.search(r"\ndense\S*\s+cuda\s+full input", proc.stdout)
