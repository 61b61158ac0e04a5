"""Real Keras 3 (torch backend) for the catalogue tests, or None when it is not installed."""
import os


def keras_or_none():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except Exception:   # not installed, or no usable backend
        return None
    if keras.backend.backend() != "torch":
        return None
    return keras
