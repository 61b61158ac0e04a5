"""keras.models on engine's graph executor: Sequential, Model, load_model, model_from_json,
with Keras's call signatures (Keras 1's ``Model(input=, output=)`` and ``fit(nb_epoch=)``
translated), regularizers added to the loss and constraints applied after each update, and
weights in Keras 3's layouts.

    >>> from engine.keras.models import Sequential
    >>> from engine.keras.layers import Dense
    >>> model = Sequential([Dense(3, input_shape=(4,))])
    >>> [w.shape for w in model.get_weights()]
    [(4, 3), (3,)]
"""
from __future__ import annotations

import json
import os

import numpy as np

from kernels._io import atomic_write

from .. import functional as F
from .. import graph as _graph
from .. import io as _io
from .. import losses as _elosses
from . import _legacy
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from .layers import LAYERS

__all__ = ["Sequential", "Model", "load_model", "model_from_json", "save_model"]

JSON_FORMAT = "convlab-keras"


class _RegularizedLoss(_elosses.Loss):
    """The compiled loss plus the layers' regularization terms (as Keras adds model.losses
    in training and evaluation)."""

    def __init__(self, base, model):
        self.base, self.model = base, model
        self.name, self.sparse = base.name, base.sparse

    def __call__(self, pred, target):
        total = self.base(pred, target)
        for layer in self.model._unique_layers:
            for w, reg in getattr(layer, "regularization_terms", lambda: [])():
                total = F.add(total, reg(w))
        return total

    def check_targets(self, pred_shape, y_shape, where="fit"):
        self.base.check_targets(pred_shape, y_shape, where)

    def get_config(self):
        return self.base.get_config()


class _Front:
    """Keras's model methods over engine's TrainingMixin."""

    _layer_classes = LAYERS

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True, **kwargs):
        """Keras's compile: optimizer (name or object), loss (name, function or Loss),
        metrics (names or functions)."""
        for key in kwargs:
            raise _legacy.unknown_argument("compile", key, {
                "optimizer", "loss", "metrics", "loss_weights", "weighted_metrics",
                "run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss"})
        if loss_weights is not None or weighted_metrics is not None:
            raise TypeError("compile: loss_weights / weighted_metrics are not supported by "
                            "convlab (single-output models)")
        if isinstance(metrics, (list, tuple)):
            metrics = [_metrics.get(m) for m in metrics]
        elif metrics is not None:
            metrics = [_metrics.get(metrics)]
        if loss is None:
            raise ValueError("compile: loss is required")
        super().compile(_optimizers.get(optimizer), _losses.get(loss), metrics)
        if any(getattr(layer, "_front_regularizers", None) for layer in self._layers_or_stack()):
            self.loss = _RegularizedLoss(self.loss, self)

    def _layers_or_stack(self):
        return self.__dict__.get("_unique_layers") or self.__dict__.get("_stack") or []

    def _step(self, xs, y, dp=None, where="train_on_batch", sw=None):
        out = super()._step(xs, y, dp, where, sw)
        for layer in self._unique_layers:
            if getattr(layer, "_front_constraints", None):
                layer.apply_constraints()
        return out

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, **kwargs):
        """Keras's fit (Keras 1's nb_epoch= translated); returns a History."""
        kwargs, _ = _legacy.translate("fit", "fit", kwargs)
        if "epochs" in kwargs:
            epochs = kwargs.pop("epochs")
        for key in kwargs:
            raise _legacy.unknown_argument("fit", key, {
                "x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split",
                "validation_data", "shuffle", "class_weight", "sample_weight",
                "initial_epoch", "steps_per_epoch", "validation_steps",
                "validation_batch_size", "validation_freq"})
        if validation_steps is not None:
            raise TypeError("fit: validation_steps is not supported by convlab")
        if isinstance(self.loss, _RegularizedLoss) and (class_weight is not None
                                                        or sample_weight is not None):
            raise TypeError("fit: class_weight / sample_weight with Keras-front regularizers "
                            "is not supported by convlab (give the regularizers to engine's "
                            "layers, engine.layers, which support both)")
        if validation_freq != 1:
            raise TypeError("fit: validation_freq other than 1 is not supported by convlab")
        return super().fit(x, y, batch_size=32 if batch_size is None else batch_size,
                           epochs=epochs, verbose=1 if verbose == "auto" else verbose,
                           callbacks=callbacks, validation_data=validation_data,
                           validation_split=validation_split, shuffle=shuffle,
                           initial_epoch=initial_epoch, class_weight=class_weight,
                           sample_weight=sample_weight, steps_per_epoch=steps_per_epoch)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, **kwargs):
        """Keras's evaluate: the loss, or [loss, metric, ...] (a dict with return_dict)."""
        for key in kwargs:
            raise _legacy.unknown_argument("evaluate", key, {
                "x", "y", "batch_size", "verbose", "sample_weight", "steps", "callbacks",
                "return_dict"})
        if sample_weight is not None or steps is not None:
            raise TypeError("evaluate: sample_weight / steps are not supported by convlab")
        values = super().evaluate(x, y, batch_size=32 if batch_size is None else batch_size)
        values = values if isinstance(values, list) else [values]
        names = ["loss"] + [name for name, _ in self.compiled_metrics]
        if verbose in ("auto", 1, 2):
            from ..training import _logs_text
            print(" - ".join(_logs_text(dict(zip(names, values)))))
        if return_dict:
            return dict(zip(names, values))
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Keras's predict: a numpy array."""
        return super().predict(x, batch_size=32 if batch_size is None else batch_size)

    # -- serialisation ---------------------------------------------------------------------
    def to_json(self, **kwargs):
        """The architecture as JSON text (convlab's config of the Keras front layers)."""
        return json.dumps({"format": JSON_FORMAT, "class_name": type(self).__name__,
                           "config": self.get_config()}, **kwargs)

    def save_weights(self, filepath, overwrite=True):
        """Every weight, in Keras 3 layouts and get_weights order, to one .npz file
        (atomic write; no pickle)."""
        filepath = os.fspath(filepath)
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"save_weights: {filepath!r} exists and overwrite=False")
        arrays = {f"w{i:05d}": w for i, w in enumerate(self.get_weights())}
        with atomic_write(filepath) as f:
            np.savez(f, **arrays)

    def load_weights(self, filepath):
        """Weights written by :meth:`save_weights`."""
        filepath = os.fspath(filepath)
        with np.load(filepath, allow_pickle=False) as f:
            keys = sorted(k for k in f.files if k.startswith("w"))
            self.set_weights([f[k] for k in keys])

    def save(self, filepath, overwrite=True):
        """Architecture + weights + compile settings in convlab's file (see engine.io)."""
        if not overwrite and os.path.exists(os.fspath(filepath)):
            raise FileExistsError(f"save: {filepath!r} exists and overwrite=False")
        _io.save_model(self, filepath)


class Sequential(_Front, _graph.Sequential):
    """keras.models.Sequential(layers=None, name=None)."""

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(layers, name)


class Model(_Front, _graph.Model):
    """keras.Model(inputs, outputs, name=None); Keras 1's Model(input=, output=)."""

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        kwargs, _ = _legacy.translate("Model", "model", kwargs)
        inputs = kwargs.pop("inputs", inputs)
        outputs = kwargs.pop("outputs", outputs)
        for key in kwargs:
            raise _legacy.unknown_argument("Model", key, {"inputs", "outputs", "name"})
        if inputs is None or outputs is None:
            raise TypeError("Model: inputs and outputs are required (subclassed models are "
                            "not supported by convlab)")
        super().__init__(inputs, outputs, name=name)


def load_model(filepath, compile=True, custom_objects=None, safe_mode=True):
    """A model saved by ``model.save`` (convlab's file, engine.io), or a Keras 3 ``.keras``
    file (Sequential or functional, layers the front offers; weights read with h5py), rebuilt
    with the Keras front's layers.  A .keras file's optimizer is not restored."""
    if custom_objects:
        raise TypeError("load_model: custom_objects are not supported by convlab")
    from . import saving
    if saving.is_keras_file(filepath):
        return saving.load_keras_file(filepath, Sequential, Model, LAYERS)
    return _io.load_model(filepath, compile=compile,
                          classes={"Sequential": Sequential, "Model": Model})


def save_model(model, filepath, overwrite=True):
    model.save(filepath, overwrite=overwrite)


def model_from_json(json_string, custom_objects=None):
    """A model (fresh weights) from :meth:`to_json` text."""
    meta = json.loads(json_string)
    if not isinstance(meta, dict) or meta.get("format") != JSON_FORMAT:
        raise ValueError("model_from_json: not the JSON of an engine.keras model "
                         "(model.to_json())")
    cls = {"Sequential": Sequential, "Model": Model}.get(meta.get("class_name"))
    if cls is None:
        raise ValueError(f"model_from_json: unknown model class {meta.get('class_name')!r}")
    return cls.from_config(meta["config"])
