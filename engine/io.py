"""Save and load models: architecture as JSON plus weights, in one .npz file, no pickle.

File layout (a zip archive readable by ``numpy.load(path, allow_pickle=False)``)::

    __config__.npy   uint8 bytes of UTF-8 JSON: {"format": "convlab-model", "version": 1,
                     "class_name": "Sequential" | "Model", "config": {...},
                     "weights": [{"layer", "name", "shape", "dtype"}, ...],
                     "training_config": {...} (when compiled with named loss/optimizer)}
    w00000.npy ...   one float array per weight, in model.get_weights() order

Saving writes a temporary file in the target directory, fsyncs it and renames it over the
target with ``os.replace``, so a crash mid-save leaves the previous file whole.  Loading
checks every member's CRC, refuses object (pickled) arrays, creates only engine layer classes
from the JSON, and checks every weight's shape: a missing, truncated, corrupted or
pickle-bearing file raises :class:`ModelFileError` (or FileNotFoundError) and never executes
anything.

    >>> model.save("digits.npz")                                        # doctest: +SKIP
    >>> same = engine.load_model("digits.npz")                            # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib

import numpy as np

from kernels._io import atomic_write

from . import losses as losses_mod
from . import optim

__all__ = ["save_model", "load_model", "ModelFileError", "FORMAT", "VERSION"]

FORMAT = "convlab-model"
VERSION = 1
_CONFIG_KEY = "__config__"


class ModelFileError(ValueError):
    """A model file that cannot be loaded: not a convlab file, truncated, corrupted,
    holding pickled objects, or describing an invalid model."""


def _weight_key(i):
    return f"w{i:05d}"


def _json_default(owner):
    def default(value):
        if isinstance(value, (np.integer, np.floating)):
            return value.item()
        raise TypeError(f"save: {owner} has a setting that cannot be saved as JSON: "
                        f"{value!r} (custom callables cannot be saved; use a named "
                        f"activation/initializer)")
    return default


def _training_config(model):
    """Named optimizer/loss/metrics, or None when any of them is a custom object."""
    if model.loss is None:
        return None
    opt, loss, metrics = model.optimizer, model.loss, model._metric_ids
    if type(opt) not in optim.OPTIMIZERS.values() or \
            type(loss) not in losses_mod.LOSSES.values() or \
            not all(isinstance(m, str) for m in metrics):
        return None
    return {"optimizer": {"class_name": type(opt).__name__, "config": opt.get_config()},
            "loss": {"class_name": type(loss).__name__, "config": loss.get_config()},
            "metrics": list(metrics)}


def save_model(model, path):
    """Write ``model`` (architecture, weights, compile settings) to ``path`` atomically.

    The optimizer's state (moments) is not saved; a loaded model restarts it.
    """
    path = os.fspath(path)
    layers = model._unique_layers
    for layer in layers:  # name the layer whose config is not JSON-friendly
        json.dumps(layer.get_config(), default=_json_default(layer.describe()))
    weights = [{"layer": layer.name, "name": name, "shape": list(t.data.shape),
                "dtype": t.data.dtype.name}
               for layer in layers for name, t, _ in layer._weights]
    meta = {"format": FORMAT, "version": VERSION, "class_name": type(model).__name__,
            "config": model.get_config(), "weights": weights,
            "training_config": _training_config(model)}
    text = json.dumps(meta, default=_json_default(f"model {model.name!r}"))
    arrays = {_CONFIG_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    for i, w in enumerate(model.weights):
        arrays[_weight_key(i)] = w.numpy()  # a host copy for weights on 'cuda'
    with atomic_write(path) as f:
        _write_arrays(f, arrays)


def _write_arrays(f, arrays):
    np.savez(f, **arrays)


def _fail(path, what):
    raise ModelFileError(f"load_model: {path!r} {what}") from None


def _read_members(path):
    """{name: array} of a verified archive, without ever unpickling."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        _fail(path, "is empty")
    if head[:1] == b"\x80" or head[:1] in (b"(", b"]", b"}"):
        _fail(path, "looks like a Python pickle; convlab model files never contain pickles "
                    "and pickles are never loaded")
    if head != b"PK\x03\x04":
        _fail(path, "is not a convlab model file (expected an .npz zip archive written by "
                    "model.save)")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()  # reads every member and checks its CRC
            if bad is not None:
                _fail(path, f"is corrupted: member {bad!r} fails its CRC check")
        with np.load(path, allow_pickle=False) as npz:
            members = {}
            for key in npz.files:
                try:
                    members[key] = npz[key]
                except ValueError as e:
                    if "pickle" in str(e):
                        _fail(path, f"member {key!r} holds pickled Python objects; refusing "
                                    f"to load it (convlab model files never contain pickles)")
                    raise
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError) as e:
        _fail(path, f"is truncated or corrupted ({type(e).__name__}: {e})")
    return members


def load_model(path, compile=True, classes=None):
    """Rebuild a model saved by ``model.save(path)``.

    Parameters
    ----------
    path : str or path-like
    compile : bool   re-compile with the saved optimizer/loss/metrics when they were named
    classes : dict, optional
        {"Sequential": cls, "Model": cls} to rebuild with (engine.keras passes its own, whose
        layer registry holds the Keras front's layers); engine's by default

    Raises
    ------
    FileNotFoundError   no such file
    ModelFileError      anything wrong with the file (a ValueError subclass)
    """
    from .graph import Model, Sequential

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file: {path!r}")
    if os.path.isdir(path):
        _fail(path, "is a directory, not a model file")
    members = _read_members(path)
    if _CONFIG_KEY not in members:
        _fail(path, f"is not a convlab model file (no {_CONFIG_KEY} member)")
    raw = members.pop(_CONFIG_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        _fail(path, f"has a malformed {_CONFIG_KEY} member")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(path, f"has an unreadable architecture description ({e})")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        _fail(path, "is not a convlab model file (format marker missing)")
    if meta.get("version") != VERSION:
        _fail(path, f"has format version {meta.get('version')!r}; this convlab reads "
                    f"version {VERSION}")
    classes = classes or {"Sequential": Sequential, "Model": Model}
    cls = classes.get(meta.get("class_name"))
    if cls is None:
        _fail(path, f"names an unknown model class {meta.get('class_name')!r}")
    try:
        model = cls.from_config(meta["config"])
    except (TypeError, ValueError, KeyError, IndexError) as e:
        _fail(path, f"describes an invalid model: {e}")
    weights = model.weights
    expected = {_weight_key(i) for i in range(len(weights))}
    if set(members) != expected:
        missing = sorted(expected - set(members))
        extra = sorted(set(members) - expected)
        _fail(path, f"does not match its architecture: {len(weights)} weights expected; "
                    f"missing {missing[:5]}, unexpected {extra[:5]}")
    arrays = []
    for i, w in enumerate(weights):
        a = members[_weight_key(i)]
        if a.shape != w.data.shape or a.dtype.kind != "f":
            _fail(path, f"weight {i} has shape {a.shape} and dtype {a.dtype}, the "
                        f"architecture needs {w.data.shape} float")
        arrays.append(a)
    from .layers.base import Layer
    i = 0
    for layer in model._unique_layers:  # engine's own layouts, whatever the layer's front
        k = len(layer.weights)
        Layer.set_weights(layer, arrays[i:i + k])
        i += k
    tc = meta.get("training_config")
    if compile and tc:
        try:
            model.compile(optim.get(tc["optimizer"]), losses_mod.get(tc["loss"]),
                          tc.get("metrics") or None)
        except (TypeError, ValueError, KeyError) as e:
            _fail(path, f"has invalid training settings: {e}")
    return model
