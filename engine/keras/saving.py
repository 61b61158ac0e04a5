"""Read Keras 3's ``.keras`` files (a zip of config.json and model.weights.h5) into engine.keras
models: Sequential and functional models made of the layers the front offers, weights in
Keras's layouts.  h5py reads the weights (``pip install h5py``); nothing is unpickled and no
code from the file runs.
"""
from __future__ import annotations

import io
import json
import re
import zipfile

__all__ = ["load_keras_file", "is_keras_file"]

# Keras-only settings that are fine when they hold Keras's default
_DEFAULTS = {"dtype": None, "registered_name": None, "synchronized": False, "renorm": False,
             "renorm_clipping": None, "renorm_momentum": 0.99, "quantization_config": None,
             "lora_rank": None, "lora_alpha": None, "activity_regularizer": None,
             "noise_shape": None, "input_dim": None, "optional": False, "sparse": False,
             "ragged": False}


def is_keras_file(path):
    try:
        with zipfile.ZipFile(path) as z:
            return "config.json" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _snake(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _dtype_ok(value):
    if value is None or value == "float32":
        return True
    return isinstance(value, dict) and value.get("config", {}).get("name") == "float32"


def _layer(entry, classes, where):
    name = entry.get("class_name")
    cls = classes.get(name)
    if cls is None or name == "InputLayer":
        raise ValueError(f"{where}: layer class {name!r} is not in convlab's Keras front")
    config = dict(entry.get("config", {}))
    valid = cls._valid_arguments() if hasattr(cls, "_valid_arguments") else set(config)
    kwargs = {}
    for key, value in config.items():
        if key == "dtype":
            if not _dtype_ok(value):
                raise ValueError(f"{where}: layer {config.get('name')!r} has dtype {value!r}; "
                                 f"convlab computes in float32")
            continue
        if key in valid and not (key in _DEFAULTS and value == _DEFAULTS[key]):
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        elif key not in valid and not (key in _DEFAULTS and value == _DEFAULTS[key]):
            raise ValueError(f"{where}: layer {config.get('name')!r} ({name}) sets {key}="
                             f"{value!r}, which convlab does not support")
    return cls(**kwargs)


def _history(arg):
    return arg["config"]["keras_history"][0]


def load_keras_file(path, sequential_cls, model_cls, classes):
    """The model stored in a Keras 3 ``.keras`` file at ``path``."""
    from ..layers import Input

    where = f"load_model({str(path)!r})"
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("config.json"))
        weights = z.read("model.weights.h5") if "model.weights.h5" in z.namelist() else None
    kind, cfg = meta.get("class_name"), meta.get("config", {})
    entries = cfg.get("layers", [])
    if kind == "Sequential":
        model = sequential_cls(name=cfg.get("name"))
        layers = []
        for entry in entries:
            if entry.get("class_name") == "InputLayer":
                shape = entry["config"].get("batch_shape") or entry["config"].get(
                    "batch_input_shape")
                model.add(Input(tuple(shape[1:]), name=entry["config"].get("name")))
                continue
            layer = _layer(entry, classes, where)
            model.add(layer)
            layers.append(layer)
        if not model.built and entries and entries[0].get("build_config"):
            model.build(tuple(entries[0]["build_config"]["input_shape"]))
    elif kind in ("Functional", "Model"):
        tensors, layers = {}, []
        for entry in entries:
            lname = entry.get("name") or entry["config"].get("name")
            if entry.get("class_name") == "InputLayer":
                shape = entry["config"]["batch_shape"]
                tensors[lname] = Input(tuple(shape[1:]), name=lname)
                layers.append(tensors[lname].layer)
                continue
            layer = _layer(entry, classes, where)
            nodes = entry.get("inbound_nodes", [])
            if len(nodes) != 1:
                raise ValueError(f"{where}: layer {lname!r} is called {len(nodes)} times; "
                                 f"convlab reads layers called once")
            arg = nodes[0]["args"][0]
            inputs = [tensors[_history(a)] for a in arg] if isinstance(arg, list) else \
                tensors[_history(arg)]
            tensors[lname] = layer(inputs)
            layers.append(layer)

        def ends(spec):
            if spec and isinstance(spec[0], str):
                spec = [spec]
            return [tensors[s[0]] for s in spec]
        model = model_cls(ends(cfg["input_layers"]), ends(cfg["output_layers"]),
                          name=cfg.get("name"))
    else:
        raise ValueError(f"{where}: model class {kind!r} is not supported (Sequential and "
                         f"functional models are)")
    if weights is not None:
        _load_weights(weights, layers, where)
    return model


def _load_weights(blob, layers, where):
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{where}: reading a .keras file's weights needs h5py "
                          f"(pip install h5py)") from None
    counts = {}
    with h5py.File(io.BytesIO(blob), "r") as f:
        for layer in layers:
            base = _snake(type(layer).__name__)
            n = counts.get(base, 0)
            counts[base] = n + 1
            key = f"layers/{base}" + (f"_{n}" if n else "")
            if not layer.weights:
                continue
            if key not in f or "vars" not in f[key]:
                raise ValueError(f"{where}: no weights stored for layer {layer.name!r} "
                                 f"(expected group {key!r})")
            group = f[key]["vars"]
            layer.set_weights([group[str(i)][()] for i in range(len(group))])
