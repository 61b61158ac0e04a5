"""The README's pictures: train a small CNN (with a Dropout layer) on the bundled 8x8 digits,
save it, and draw one picture of each ``convlab explain`` method.

    python -m bench.explain_gallery docs/explain

Writes DIR/<method>.png (needs matplotlib); the model and the digits are saved to a
temporary folder (--keep DIR2 keeps them there instead).
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

# (picture name, convlab explain arguments): the commands the README quotes.
PICTURES = [
    ("filters", ["--method", "filters", "--layer", "conv1"]),
    ("feature-maps", ["--method", "feature-maps", "--layer", "conv1", "--index", "3"]),
    ("top-patches", ["--method", "top-patches", "--layer", "conv2", "--channel", "5"]),
    ("deconv", ["--method", "deconv", "--layer", "conv2", "--channel", "5", "--rule",
                "guided", "--index", "3"]),
    ("occlusion", ["--method", "occlusion", "--window", "2", "--index", "3"]),
    ("saliency", ["--method", "saliency", "--samples", "20", "--index", "3"]),
    ("integrated-gradients", ["--method", "integrated-gradients", "--index", "3"]),
    ("grad-cam", ["--method", "grad-cam", "--layer", "conv1", "--index", "3"]),
    ("class-model", ["--method", "class-model", "--target", "2", "--steps", "200"]),
    ("mc-dropout", ["--method", "mc-dropout", "--samples", "100", "--index", "3"]),
]


def train_digits_cnn(seed=0, epochs=5):
    """The gallery's model (about 97% held out) and the held-out digits."""
    import engine
    from engine.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
    engine.set_seed(seed)
    (xtr, ytr), (xte, yte) = engine.data.load_digits()
    model = engine.Sequential([
        Conv2D(16, 3, padding="same", activation="relu", input_shape=(1, 8, 8), name="conv1"),
        MaxPooling2D(2, name="pool1"),
        Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
        Flatten(name="flatten"), Dense(64, activation="relu", name="dense1"),
        Dropout(0.3, name="dropout"), Dense(10, activation="softmax", name="classes")],
        name="digits_cnn")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(xtr, ytr, epochs=epochs, batch_size=32, verbose=0)
    return model, (xte, yte)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.explain_gallery")
    p.add_argument("out_dir")
    p.add_argument("--keep", metavar="DIR2", help="save the model and digits here")
    args = p.parse_args(argv)
    from .cli import main as convlab
    os.makedirs(args.out_dir, exist_ok=True)
    model, (xte, yte) = train_digits_cnn()
    print(f"held-out accuracy {model.evaluate(xte, yte)[1]:.4f}")
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or tmp
        os.makedirs(where, exist_ok=True)
        model_path = os.path.join(where, "digits_cnn.npz")
        data_path = os.path.join(where, "digits_test.npz")
        model.save(model_path)
        np.savez(data_path, x=xte, y=yte)
        status = 0
        for name, extra in PICTURES:
            out = os.path.join(args.out_dir, f"{name}.png")
            status |= convlab(["explain", model_path, data_path, "--out", out, *extra])
    return status


if __name__ == "__main__":
    raise SystemExit(main())
