"""Learning-rate schedules, Keras's formulas: a schedule maps the optimizer's step count
(updates done so far, 0 for the first update) to a learning rate, and is accepted wherever a
learning rate is (``engine.optimizers.Adam(learning_rate=ExponentialDecay(...))``).

    >>> ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)(10)
    0.05
"""
from __future__ import annotations

import math
import numbers

__all__ = ["LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay",
           "PiecewiseConstantDecay", "PolynomialDecay", "CosineDecay", "CosineDecayRestarts",
           "get", "SCHEDULES"]


def _num(owner, name, v, lo=None, lo_open=False):
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
        raise TypeError(f"{owner}: {name} must be a finite number, received {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{owner}: {name} must be {'>' if lo_open else '>='} {lo}, "
                         f"received {v!r}")
    return float(v)


class LearningRateSchedule:
    """Base class: ``schedule(step) -> float`` and ``get_config()``."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """lr0 * decay_rate ** (step / decay_steps) (the exponent floored when ``staircase``).

    >>> ExponentialDecay(1.0, 2, 0.5, staircase=True)(3)
    0.5
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        o = "ExponentialDecay"
        self.initial_learning_rate = _num(o, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _num(o, "decay_steps", decay_steps, 0, lo_open=True)
        self.decay_rate = _num(o, "decay_rate", decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (
            math.floor(p) if self.staircase else p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class InverseTimeDecay(LearningRateSchedule):
    """lr0 / (1 + decay_rate * step / decay_steps) (the ratio floored when ``staircase``).

    >>> InverseTimeDecay(1.0, 1, 1.0)(3)
    0.25
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        o = "InverseTimeDecay"
        self.initial_learning_rate = _num(o, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _num(o, "decay_steps", decay_steps, 0, lo_open=True)
        self.decay_rate = _num(o, "decay_rate", decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        return self.initial_learning_rate / (1 + self.decay_rate * (
            math.floor(p) if self.staircase else p))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <=
    boundaries[i], values[-1] after the last boundary.

    >>> s = PiecewiseConstantDecay([2, 4], [1.0, 0.5, 0.1]); [s(i) for i in (2, 3, 5)]
    [1.0, 0.5, 0.1]
    """

    def __init__(self, boundaries, values):
        o = "PiecewiseConstantDecay"
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"{o}: values must have one more entry than boundaries, received "
                             f"{len(boundaries)} boundaries and {len(values)} values")
        if boundaries != sorted(boundaries):
            raise ValueError(f"{o}: boundaries must be increasing, received {boundaries}")
        self.boundaries = [_num(o, "boundaries", b) for b in boundaries]
        self.values = [_num(o, "values", v) for v in values]

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


class PolynomialDecay(LearningRateSchedule):
    """(lr0 - end) * (1 - step / decay_steps) ** power + end, step capped at decay_steps
    (or, with ``cycle``, decay_steps stretched to the next multiple above step).

    >>> PolynomialDecay(1.0, 4, end_learning_rate=0.0)(1)
    0.75
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001,
                 power=1.0, cycle=False):
        o = "PolynomialDecay"
        self.initial_learning_rate = _num(o, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _num(o, "decay_steps", decay_steps, 0, lo_open=True)
        self.end_learning_rate = _num(o, "end_learning_rate", end_learning_rate)
        self.power = _num(o, "power", power)
        self.cycle = bool(cycle)

    def __call__(self, step):
        steps = self.decay_steps
        if self.cycle:
            steps *= 1.0 if step == 0 else math.ceil(step / self.decay_steps)
        else:
            step = min(step, steps)
        return (self.initial_learning_rate - self.end_learning_rate) * \
            (1 - step / steps) ** self.power + self.end_learning_rate

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle}


class CosineDecay(LearningRateSchedule):
    """Optional linear warmup from lr0 to ``warmup_target`` over ``warmup_steps``, then cosine
    decay over ``decay_steps`` to ``alpha`` times the peak (Loshchilov & Hutter, Keras form).

    >>> CosineDecay(1.0, 10)(5)
    0.5
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        o = "CosineDecay"
        self.initial_learning_rate = _num(o, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _num(o, "decay_steps", decay_steps, 0, lo_open=True)
        self.alpha = _num(o, "alpha", alpha)
        self.warmup_target = None if warmup_target is None else \
            _num(o, "warmup_target", warmup_target)
        self.warmup_steps = _num(o, "warmup_steps", warmup_steps, 0)

    def _decay(self, step, peak):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return peak * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            return (self.warmup_target - self.initial_learning_rate) * \
                step / self.warmup_steps + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """SGDR: cosine decay over ``first_decay_steps``, restarted with periods growing by
    ``t_mul`` and peaks scaled by ``m_mul`` (Keras's form).

    >>> s = CosineDecayRestarts(1.0, 4); round(s(2), 6), round(s(4), 6)
    (0.5, 1.0)
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0):
        o = "CosineDecayRestarts"
        self.initial_learning_rate = _num(o, "initial_learning_rate", initial_learning_rate)
        self.first_decay_steps = _num(o, "first_decay_steps", first_decay_steps, 0,
                                      lo_open=True)
        self.t_mul = _num(o, "t_mul", t_mul, 0, lo_open=True)
        self.m_mul = _num(o, "m_mul", m_mul)
        self.alpha = _num(o, "alpha", alpha)

    def __call__(self, step):
        frac = step / self.first_decay_steps
        if self.t_mul == 1.0:
            i = math.floor(frac)
            frac -= i
        else:
            i = math.floor(math.log(1.0 - frac * (1.0 - self.t_mul)) / math.log(self.t_mul))
            done = (1.0 - self.t_mul ** i) / (1.0 - self.t_mul)
            frac = (frac - done) / self.t_mul ** i
        cosine = 0.5 * self.m_mul ** i * (1.0 + math.cos(math.pi * frac))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha}


SCHEDULES = {c.__name__: c for c in (ExponentialDecay, InverseTimeDecay,
                                     PiecewiseConstantDecay, PolynomialDecay, CosineDecay,
                                     CosineDecayRestarts)}


def get(identifier):
    """A schedule from a ``{"class_name": ..., "config": ...}`` dict (as optimizers'
    get_config write it) or a schedule (returned as is).

    >>> get({"class_name": "CosineDecay", "config": {"initial_learning_rate": 1.0,
    ...                                              "decay_steps": 4}})(4)
    0.0
    """
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, dict) and identifier.get("class_name") in SCHEDULES:
        return SCHEDULES[identifier["class_name"]](**identifier.get("config", {}))
    raise ValueError(f"schedule: unknown learning-rate schedule {identifier!r}; valid: "
                     f"{', '.join(SCHEDULES)}")
