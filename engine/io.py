"""Save and load models: architecture as JSON plus weights, in one .npz file, no pickle.

File layout (a zip archive readable by ``numpy.load(path, allow_pickle=False)``)::

    __config__.npy   uint8 bytes of UTF-8 JSON: {"format": "convlab-model", "version": 1,
                     "class_name": "Sequential" | "Model", "config": {...},
                     "weights": [{"layer", "name", "shape", "dtype"}, ...],
                     "training_config": {...} (when compiled with named loss/optimizer)}
    w00000.npy ...   one float array per weight, in model.get_weights() order

Saving writes a temporary file in the target directory, fsyncs it and renames it over the
target with ``os.replace``, so a crash mid-save leaves the previous file whole (and the next
save removes the temporary a killed writer left).  Loading reads only the members' .npy
headers first and checks them against the zip's declared sizes (and deflate's 1032:1 bound),
reads the architecture, builds it within the weights the file holds, checks every weight's
shape, and only then reads the weights (each member's CRC is checked as it is read): it
refuses object (pickled) arrays, creates only engine layer classes from the JSON, and a
missing, truncated, corrupted, oversized or pickle-bearing file raises :class:`ModelFileError`
(or FileNotFoundError) without executing anything or reading more than the file declares.

    >>> model.save("digits.npz")                                        # doctest: +SKIP
    >>> same = engine.load_model("digits.npz")                            # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import struct
import warnings
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
    if os.path.splitext(path)[1].lower() in (".h5", ".hdf5", ".keras"):
        warnings.warn(f"save: {path!r} gets convlab's format (an .npz zip archive that "
                      f"engine.load_model reads), not HDF5 or Keras's format despite its "
                      f"name; name it .npz to say so", UserWarning, stacklevel=3)
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


# Deflate expands at most 1032:1: a member declaring more is damaged before a byte of it is
# inflated.  The architecture JSON is small; more than this is not a model file.
_DEFLATE_MAX_RATIO = 1032
_CONFIG_MAX_BYTES = 64 << 20
_BAD_ZIP = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError,
            NotImplementedError, RuntimeError, OverflowError, struct.error)


class _Member:
    """One .npy member of the archive, its header read and checked against the zip's
    declared size: ``shape``, ``dtype``, ``fortran``, ``info`` (the ZipInfo)."""

    def __init__(self, zf, info, path):
        self.info, self.name = info, info.filename
        key = self.name[:-4] if self.name.endswith(".npy") else self.name
        self.key = key
        if info.compress_type == zipfile.ZIP_DEFLATED and \
                info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
            _fail(path, f"is corrupted: member {self.name!r} declares {info.file_size} bytes "
                        f"from {info.compress_size} compressed (deflate cannot expand more "
                        f"than {_DEFLATE_MAX_RATIO}:1)")
        with zf.open(info) as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
                offset = f.tell()
            except ValueError as e:
                _fail(path, f"member {self.name!r} is not a valid .npy array ({e})")
        if dtype.hasobject:
            _fail(path, f"member {key!r} holds pickled Python objects; refusing to load it "
                        f"(convlab model files never contain pickles)")
        count = 1
        for d in shape:
            count *= d
        need = offset + count * dtype.itemsize
        if need != info.file_size:
            _fail(path, f"is corrupted: member {key!r} has a header for shape {shape} of "
                        f"{dtype} ({need} bytes) but the archive declares {info.file_size} "
                        f"bytes")
        self.shape, self.dtype, self.fortran, self.count = tuple(shape), dtype, fortran, count

    def read(self, zf, path):
        """The array, read and CRC-checked (no more bytes than its header promises)."""
        with zf.open(self.info) as f:
            a = np.lib.format.read_array(f, allow_pickle=False)
            if f.read(1):
                _fail(path, f"is corrupted: member {self.key!r} is longer than its header")
        return a


def _open_archive(path):
    """(ZipFile, {key: _Member}) of a convlab model file, headers checked, no data read."""
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
    zf = None
    try:
        zf = zipfile.ZipFile(path)
        members = {}
        for info in zf.infolist():
            m = _Member(zf, info, path)
            if m.key in members:
                _fail(path, f"is corrupted: member {m.key!r} appears twice")
            members[m.key] = m
        return zf, members
    except ModelFileError:
        if zf is not None:
            zf.close()
        raise
    except _BAD_ZIP as e:
        if zf is not None:
            zf.close()
        _fail(path, f"is truncated or corrupted ({type(e).__name__}: {e})")


def _read(member, zf, path):
    try:
        return member.read(zf, path)
    except ModelFileError:
        raise
    except _BAD_ZIP as e:
        _fail(path, f"is truncated or corrupted ({type(e).__name__}: {e})")


def _load(zf, members, path, classes=None):
    """The model of an opened archive: the architecture is read and built first, within the
    weights the file holds (headers only), then the weights are read and checked."""
    from .graph import Model, Sequential
    from .layers.base import weight_budget

    config_member = members.pop(_CONFIG_KEY, None)
    if config_member is None:
        _fail(path, f"is not a convlab model file (no {_CONFIG_KEY} member)")
    if (config_member.dtype != np.uint8 or len(config_member.shape) != 1
            or config_member.count > _CONFIG_MAX_BYTES):
        _fail(path, f"has a malformed {_CONFIG_KEY} member")
    raw = _read(config_member, zf, path)
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(path, f"has an unreadable architecture description ({e})")
    except RecursionError:
        _fail(path, "has an architecture description nested too deeply to read")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        _fail(path, "is not a convlab model file (format marker missing)")
    if meta.get("version") != VERSION:
        _fail(path, f"has format version {meta.get('version')!r}; this convlab reads "
                    f"version {VERSION}")
    classes = classes or {"Sequential": Sequential, "Model": Model}
    cls = classes.get(meta.get("class_name"))
    if cls is None:
        _fail(path, f"names an unknown model class {meta.get('class_name')!r}")
    # Building allocates the architecture's weights: allow what the file holds (twice, plus
    # 4 MiB, so that a near miss still gets the precise per-weight message below).
    held = sum(m.count for m in members.values() if m.dtype.kind == "f")
    try:
        with weight_budget(2 * held + 2**20, f"what the file holds ({held} weight elements) "
                                             f"by far; the file does not match its "
                                             f"architecture"):
            model = cls.from_config(meta["config"])
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        _fail(path, f"describes an invalid model: {e}")
    except RecursionError:
        _fail(path, "describes a model nested too deeply to build")
    weights = model.weights
    expected = {_weight_key(i) for i in range(len(weights))}
    if set(members) != expected:
        missing = sorted(expected - set(members))
        extra = sorted(set(members) - expected)
        _fail(path, f"does not match its architecture: {len(weights)} weights expected; "
                    f"missing {missing[:5]}, unexpected {extra[:5]}")
    for i, w in enumerate(weights):
        m = members[_weight_key(i)]
        if m.shape != w.data.shape or m.dtype.kind != "f":
            _fail(path, f"weight {i} has shape {m.shape} and dtype {m.dtype}, the "
                        f"architecture needs {w.data.shape} float")
    arrays = [_read(members[_weight_key(i)], zf, path) for i in range(len(weights))]
    from .layers.base import Layer
    i = 0
    for layer in model._unique_layers:  # engine's own layouts, whatever the layer's front
        k = len(layer.weights)
        Layer.set_weights(layer, arrays[i:i + k])
        i += k
    return model, meta.get("training_config")


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
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file: {path!r}")
    if os.path.isdir(path):
        _fail(path, "is a directory, not a model file")
    zf, members = _open_archive(path)
    with zf:
        model, tc = _load(zf, members, path, classes)
    if compile and tc:
        try:
            model.compile(optim.get(tc["optimizer"]), losses_mod.get(tc["loss"]),
                          tc.get("metrics") or None)
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as e:
            _fail(path, f"has invalid training settings: {e}")
    return model
