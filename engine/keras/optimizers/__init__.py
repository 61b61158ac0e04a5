"""keras.optimizers on engine's optimizers, with Keras's arguments: Keras 3's names, and
Keras 1/2's ``lr=`` (warned) and ``decay=`` (warned, and applied as Keras 1/2 did:
lr / (1 + decay * iterations)), ``epsilon=None`` (the fuzz factor, 1e-7), learning-rate
schedules (:mod:`engine.keras.optimizers.schedules`), ``clipnorm`` / ``clipvalue`` /
``global_clipnorm``.  The update rules are engine's, which are Keras 3's.

    >>> from engine.keras import optimizers
    >>> opt = optimizers.RMSprop(lr=0.001, rho=0.9, epsilon=None, decay=0.0)  # doctest: +SKIP
    >>> optimizers.Adam(learning_rate=1e-3).epsilon
    1e-07
"""
from __future__ import annotations

import numbers

from ... import optim as _eo
from .. import _legacy, backend
from . import schedules

__all__ = ["SGD", "RMSprop", "Adam", "Adagrad", "Optimizer", "get", "schedules"]

Optimizer = _eo.Optimizer
_IGNORED_DEFAULTS = {"use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                     "loss_scale_factor": None, "gradient_accumulation_steps": None,
                     "jit_compile": True, "name": None, "mesh": None}


class _Front:
    """Keras's optimizer arguments on top of an engine optimizer (see the module doc)."""

    def _front_init(self, owner, kwargs, own):
        """Split Keras-only arguments off ``kwargs``; returns what the engine class takes."""
        if "lr" in kwargs and kwargs.get("learning_rate") == own.get("learning_rate"):
            kwargs.pop("learning_rate")  # the signature's default, not the caller's choice
        kwargs, _ = _legacy.translate(owner, "optimizer", kwargs)
        if "decay" in kwargs:
            _legacy.warn(owner, "decay", "a learning-rate schedule "
                         "(optimizers.schedules.InverseTimeDecay); applied here as "
                         "lr / (1 + decay * iterations)", "Keras 1/2", "Keras 3")
        decay = kwargs.pop("decay", 0.0)
        if not isinstance(decay, numbers.Real) or decay < 0:
            raise ValueError(f"{owner}: decay must be a number >= 0, received {decay!r}")
        self.decay = float(decay)
        # clipnorm / clipvalue / global_clipnorm pass through: engine's optimizers clip
        self.name = kwargs.pop("name", None) or owner
        for key, default in _IGNORED_DEFAULTS.items():
            if key in kwargs and key != "name":
                if kwargs.pop(key) != default:
                    raise TypeError(f"{owner}: {key} is not supported by convlab (only its "
                                    f"default, {default!r})")
        for key in kwargs:
            if key not in own and key not in ("clipnorm", "clipvalue", "global_clipnorm"):
                raise _legacy.unknown_argument(owner, key, set(own) | {
                    "decay", "clipnorm", "clipvalue", "global_clipnorm", "name"})
        if "epsilon" in kwargs and kwargs["epsilon"] is None:
            _legacy.warn(owner, "epsilon=None", f"epsilon={backend.epsilon()!r} (the fuzz "
                         f"factor None meant)", "Keras 2", "Keras 3")
            kwargs["epsilon"] = backend.epsilon()
        if kwargs.get("weight_decay", 0.0) is None:
            kwargs["weight_decay"] = 0.0
        if self.decay:  # Keras 1/2's decay is InverseTimeDecay with decay_steps 1
            lr = kwargs.get("learning_rate", own.get("learning_rate"))
            if isinstance(lr, schedules.LearningRateSchedule):
                raise TypeError(f"{owner}: decay= and a learning-rate schedule cannot be "
                                f"combined; fold the decay into the schedule")
            kwargs["learning_rate"] = schedules.InverseTimeDecay(lr, 1, self.decay)
        return kwargs


class SGD(_Front, _eo.SGD):
    """keras.optimizers.SGD(learning_rate=0.01, momentum=0.0, nesterov=False, ...)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 **kwargs):
        kw = self._front_init("SGD", dict(learning_rate=learning_rate, momentum=momentum,
                                          nesterov=nesterov, weight_decay=weight_decay,
                                          **kwargs),
                              dict(learning_rate=0.01, momentum=0.0, nesterov=False,
                                   weight_decay=None))
        super().__init__(**kw)


class RMSprop(_Front, _eo.RMSprop):
    """keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
    centered=False, ...): ``w -= lr * g / sqrt(v + epsilon)`` as Keras 3.  momentum and
    centered are not available (only their defaults)."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, weight_decay=None, **kwargs):
        if momentum or centered:
            raise ValueError(f"RMSprop: momentum={momentum!r} / centered={centered!r} are not "
                             f"implemented by convlab (only momentum=0.0, centered=False)")
        kw = self._front_init("RMSprop", dict(learning_rate=learning_rate, rho=rho,
                                              epsilon=epsilon, weight_decay=weight_decay,
                                              **kwargs),
                              dict(learning_rate=0.001, rho=0.9, epsilon=1e-7,
                                   weight_decay=None))
        super().__init__(**kw)


class Adam(_Front, _eo.Adam):
    """keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
    amsgrad=False, ...)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, **kwargs):
        kw = self._front_init("Adam", dict(learning_rate=learning_rate, beta_1=beta_1,
                                           beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad,
                                           weight_decay=weight_decay, **kwargs),
                              dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                                   epsilon=1e-7, amsgrad=False, weight_decay=None))
        super().__init__(**kw)


class Adagrad(_Front, _eo.Adagrad):
    """keras.optimizers.Adagrad(learning_rate=0.001, initial_accumulator_value=0.1,
    epsilon=1e-7, ...)."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, **kwargs):
        kw = self._front_init("Adagrad", dict(
            learning_rate=learning_rate, initial_accumulator_value=initial_accumulator_value,
            epsilon=epsilon, weight_decay=weight_decay, **kwargs),
            dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None))
        super().__init__(**kw)


_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adagrad": Adagrad}


def get(identifier):
    """An optimizer from a name ("adam", ...; Keras 3 defaults), a {"class_name", "config"}
    dict, or an optimizer object."""
    if isinstance(identifier, _eo.Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    if isinstance(identifier, dict):
        cls = _BY_NAME.get(str(identifier.get("class_name", "")).lower())
        if cls is not None:
            config = dict(identifier.get("config", {}))
            if isinstance(config.get("learning_rate"), dict):
                config["learning_rate"] = schedules.deserialize(config["learning_rate"])
            return cls(**config)
    raise ValueError(f"optimizer: unknown optimizer {identifier!r}; valid names: "
                     f"{', '.join(_BY_NAME)} (Adadelta, Adamax, Nadam, Ftrl are not in convlab)")
