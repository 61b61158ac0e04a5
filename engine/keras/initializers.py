"""keras.initializers: Keras 3's classes and names, plus Keras 1's names ("uniform",
"normal", "zero", "one").  Each is a callable ``init(shape, fan_in=None, fan_out=None)``
engine's layers accept; the fans are those of the weight (engine computes them for its own
layouts, so the draw has Keras's variance whatever the layout).

    >>> from engine.keras import initializers
    >>> initializers.RandomUniform(-0.05, 0.05, seed=1)((2, 3)).shape
    (2, 3)
"""
from __future__ import annotations

import math

import numpy as np

from .. import init as _engine_init

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal",
           "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeNormal",
           "HeUniform", "LecunNormal", "LecunUniform", "Orthogonal", "get", "serialize",
           "deserialize"]


class Initializer:
    """Base class: ``__call__(shape, fan_in=None, fan_out=None)`` -> ndarray."""

    def __init__(self, seed=None):
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _gen(self):
        return self._rng if self._rng is not None else _engine_init.rng()

    def get_config(self):
        return {"seed": self.seed} if self.seed is not None else {}

    def __call__(self, shape, fan_in=None, fan_out=None, dtype=None):
        raise NotImplementedError


class Zeros(Initializer):
    def __call__(self, shape, fan_in=None, fan_out=None, dtype=None):
        return np.zeros(shape)


class Ones(Initializer):
    def __call__(self, shape, fan_in=None, fan_out=None, dtype=None):
        return np.ones(shape)


class Constant(Initializer):
    def __init__(self, value=0.0):
        super().__init__()
        self.value = float(value)

    def get_config(self):
        return {"value": self.value}

    def __call__(self, shape, fan_in=None, fan_out=None, dtype=None):
        return np.full(shape, self.value)


class RandomUniform(Initializer):
    """Uniform in [minval, maxval) (Keras 3 default [-0.05, 0.05])."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}

    def __call__(self, shape, fan_in=None, fan_out=None, dtype=None):
        return self._gen().uniform(self.minval, self.maxval, size=shape)


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}

    def __call__(self, shape, fan_in=None, fan_out=None, dtype=None):
        return self._gen().normal(self.mean, self.stddev, size=shape)


class TruncatedNormal(RandomNormal):
    """Normal(mean, stddev) redrawn beyond two standard deviations."""

    def __call__(self, shape, fan_in=None, fan_out=None, dtype=None):
        return self.mean + _engine_init._truncated_normal(shape, self.stddev, self._gen())


def _fans(shape, fan_in, fan_out):
    if fan_in is None or fan_out is None:
        return _engine_init.fans(shape)
    return fan_in, fan_out


class VarianceScaling(Initializer):
    """Keras's VarianceScaling: scale / fan (fan_in, fan_out or their mean), truncated
    normal (rescaled to the target variance), untruncated normal or uniform."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be 'fan_in', 'fan_out' or "
                             f"'fan_avg', received {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform", "normal"):
            raise ValueError(f"VarianceScaling: distribution must be 'truncated_normal', "
                             f"'untruncated_normal' or 'uniform', received {distribution!r}")
        self.scale, self.mode = float(scale), mode
        self.distribution = "truncated_normal" if distribution == "normal" else distribution

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}

    def __call__(self, shape, fan_in=None, fan_out=None, dtype=None):
        fi, fo = _fans(shape, fan_in, fan_out)
        fan = {"fan_in": fi, "fan_out": fo, "fan_avg": (fi + fo) / 2}[self.mode]
        var = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * var)
            return self._gen().uniform(-limit, limit, size=shape)
        if self.distribution == "untruncated_normal":
            return self._gen().normal(0.0, math.sqrt(var), size=shape)
        return _engine_init._scaled_normal(shape, var, self._gen())


def _scaling(name, scale, mode, distribution):
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        return Initializer.get_config(self)
    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config,
                                           "__module__": __name__,
                                           "__doc__": f"VarianceScaling({scale}, {mode!r}, "
                                                      f"{distribution!r})."})


GlorotUniform = _scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeNormal = _scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
HeUniform = _scaling("HeUniform", 2.0, "fan_in", "uniform")
LecunNormal = _scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")
LecunUniform = _scaling("LecunUniform", 1.0, "fan_in", "uniform")


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix over the flattened leading dims, times ``gain``."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def get_config(self):
        return {"gain": self.gain, **super().get_config()}

    def __call__(self, shape, fan_in=None, fan_out=None, dtype=None):
        rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        cols = shape[-1]
        a = self._gen().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q[:rows, :cols].reshape(shape)


_CLASSES = {c.__name__: c for c in (Zeros, Ones, Constant, RandomUniform, RandomNormal,
                                    TruncatedNormal, VarianceScaling, GlorotUniform,
                                    GlorotNormal, HeNormal, HeUniform, LecunNormal,
                                    LecunUniform, Orthogonal)}
_NAMES = {"zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones, "constant": Constant,
          "uniform": RandomUniform, "random_uniform": RandomUniform,
          "normal": RandomNormal, "random_normal": RandomNormal,
          "truncated_normal": TruncatedNormal, "glorot_uniform": GlorotUniform,
          "glorot_normal": GlorotNormal, "he_normal": HeNormal, "he_uniform": HeUniform,
          "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
          "orthogonal": Orthogonal, "variance_scaling": VarianceScaling}
# lower-case aliases of the classes, as keras.initializers has them
zeros, ones, constant = Zeros, Ones, Constant
random_uniform, random_normal, truncated_normal = RandomUniform, RandomNormal, TruncatedNormal
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_normal, he_uniform, lecun_normal, lecun_uniform = HeNormal, HeUniform, LecunNormal, \
    LecunUniform
orthogonal = Orthogonal


def get(identifier, owner="initializer"):
    """An engine-ready initializer from a name, a class, an instance, a {"class_name",
    "config"} dict or a callable; engine's own names pass through as strings."""
    if identifier is None or isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"{owner}: unknown initializer class "
                             f"{identifier.get('class_name')!r}; valid: "
                             f"{', '.join(sorted(_CLASSES))}")
        import inspect
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        config = {k: v for k, v in identifier.get("config", {}).items()
                  if k in accepted or v is not None}   # Keras's extra None settings
        return cls(**config)
    if isinstance(identifier, str):
        if identifier in _engine_init.INITIALIZERS:
            return identifier
        if identifier.lower() in _NAMES:
            return _NAMES[identifier.lower()]()
        raise ValueError(f"{owner}: unknown initializer {identifier!r}; valid names: "
                         f"{', '.join(sorted(_NAMES))}")
    if callable(identifier):
        return identifier
    raise TypeError(f"{owner}: an initializer must be a name, an Initializer or a callable, "
                    f"received {identifier!r}")


def serialize(init):
    """JSON-friendly form: engine names stay strings; Initializers become dicts."""
    if isinstance(init, Initializer):
        return {"class_name": type(init).__name__, "config": init.get_config()}
    return init


deserialize = get
