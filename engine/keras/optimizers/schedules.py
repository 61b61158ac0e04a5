"""keras.optimizers.schedules: learning rate as a function of the step count.

The schedules are engine's (:mod:`engine.schedules`, Keras 3's formulas); engine's optimizers
call them with the step count before each update.  ``serialize`` / ``deserialize`` are
Keras's names for the {"class_name", "config"} form.
"""
from __future__ import annotations

from ...schedules import (CosineDecay, CosineDecayRestarts,  # noqa: F401
                          ExponentialDecay, InverseTimeDecay, LearningRateSchedule,
                          PiecewiseConstantDecay, PolynomialDecay, get)

__all__ = ["LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay",
           "PiecewiseConstantDecay", "PolynomialDecay", "CosineDecay", "CosineDecayRestarts",
           "serialize", "deserialize"]


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config):
    return get(config)
