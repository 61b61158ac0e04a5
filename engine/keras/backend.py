"""keras.backend's settings that change what layers mean: the image data format, Keras 1's
image dim ordering, the fuzz factor and the float type.

``image_data_format()`` is "channels_last" unless ``set_image_data_format`` or the
``"image_data_format"`` entry of Keras's own ``keras.json`` (``$KERAS_HOME/keras.json``, else
``~/.keras/keras.json``) says otherwise, as in Keras.  ``image_dim_ordering()`` is the Keras 1
name: "th" (Theano, channels first, the default here, the order the course's Theano-era code
was written for) or "tf"; Keras 1 names (Convolution2D, ...) and layers given Keras 1
arguments follow it.

    >>> from engine.keras import backend as K
    >>> K.image_data_format(), K.image_dim_ordering()          # doctest: +SKIP
    ('channels_last', 'th')
"""
from __future__ import annotations

import json
import os

__all__ = ["image_data_format", "set_image_data_format", "image_dim_ordering",
           "set_image_dim_ordering", "epsilon", "set_epsilon", "floatx", "clear_session",
           "keras_home", "backend"]

_FORMATS = ("channels_first", "channels_last")
_ORDERINGS = {"th": "channels_first", "tf": "channels_last"}
_state = {"format": None, "ordering": "th", "epsilon": 1e-7}


def keras_home():
    """Keras's directory: ``$KERAS_HOME`` or ``~/.keras``."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def _config_format():
    path = os.path.join(keras_home(), "keras.json")
    try:
        with open(path) as f:
            value = json.load(f).get("image_data_format")
    except (OSError, ValueError, AttributeError):
        return None
    return value if value in _FORMATS else None


def image_data_format():
    """"channels_last" (Keras's default) or "channels_first"."""
    return _state["format"] or _config_format() or "channels_last"


def set_image_data_format(data_format):
    """Set the default data format of engine.keras's image layers.

    >>> set_image_data_format("channels_first"); image_data_format()
    'channels_first'
    >>> set_image_data_format("channels_last")
    """
    if data_format not in _FORMATS:
        raise ValueError(f"set_image_data_format: data_format must be 'channels_first' or "
                         f"'channels_last', received {data_format!r}")
    _state["format"] = data_format


def image_dim_ordering():
    """Keras 1's name: "th" (channels first, the default here) or "tf" (channels last)."""
    return _state["ordering"]


def set_image_dim_ordering(dim_ordering):
    """Set the ordering that Keras 1 names and arguments follow ("th" or "tf")."""
    if dim_ordering not in _ORDERINGS:
        raise ValueError(f"set_image_dim_ordering: dim_ordering must be 'th' or 'tf', "
                         f"received {dim_ordering!r}")
    _state["ordering"] = dim_ordering


def legacy_data_format():
    """The data format of Keras 1 layers: image_dim_ordering() as a data_format."""
    return _ORDERINGS[_state["ordering"]]


def epsilon():
    """The fuzz factor (1e-7), what Keras's epsilon=None meant."""
    return _state["epsilon"]


def set_epsilon(value):
    _state["epsilon"] = float(value)


def floatx():
    """"float32": the compute type."""
    return "float32"


def backend():
    """The name of the backend: "convlab"."""
    return "convlab"


def clear_session():
    """Reset the automatic layer names (conv2d, conv2d_1, ...), as Keras does."""
    from ..layers import base
    base._name_counts.clear()
