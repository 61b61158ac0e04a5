"""Callbacks for ``fit``: the ones of engine.training (Callback, History, EarlyStopping,
ModelCheckpoint) and LearningRateScheduler, ReduceLROnPlateau, CSVLogger, TerminateOnNaN,
LambdaCallback, BackupAndRestore, with Keras's behaviour.

The learning-rate callbacks write ``logs["learning_rate"]``, which History then records
(``history.history["learning_rate"]``), as in Keras.  Files are written by rank 0 alone in
data-parallel training (:func:`engine.distributed.is_main`).

    >>> sched = LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    >>> # model.fit(x, y, epochs=3, callbacks=[sched]).history["learning_rate"]
"""
from __future__ import annotations

import csv
import math
import numbers
import os

import numpy as np

from . import distributed
from .training import (Callback, EarlyStopping, History, ModelCheckpoint, _monitor_mode,
                       _monitored)

__all__ = ["Callback", "History", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler",
           "ReduceLROnPlateau", "CSVLogger", "TerminateOnNaN", "LambdaCallback",
           "BackupAndRestore"]


def _optimizer(owner, model):
    opt = getattr(model, "optimizer", None)
    if opt is None:
        raise ValueError(f"{owner}: the model must be compiled with an optimizer first")
    if getattr(opt, "schedule", None) is not None:
        raise ValueError(f"{owner}: the optimizer's learning rate is a schedule "
                         f"({opt.schedule!r}); a callback cannot also set it")
    return opt


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (or
    ``schedule(epoch)`` for a one-argument function); epoch counts from 0."""

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable, received "
                            f"{schedule!r}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = _optimizer("LearningRateScheduler", self.model)
        try:
            lr = self.schedule(epoch, float(opt.learning_rate))
        except TypeError:
            lr = self.schedule(epoch)
        if not isinstance(lr, numbers.Real) or not math.isfinite(lr):
            raise ValueError(f"LearningRateScheduler: the schedule must return a finite "
                             f"number, returned {lr!r} at epoch {epoch}")
        opt.learning_rate = float(lr)
        if distributed.quiet(self.verbose):
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` (not below ``min_lr``) once ``monitor`` has
    not improved by ``min_delta`` for ``patience`` epochs; then wait ``cooldown`` epochs."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        if not isinstance(factor, numbers.Real) or not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), received "
                             f"{factor!r}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.min_delta = verbose, float(min_delta)
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self.mode = _monitor_mode("ReduceLROnPlateau", monitor, mode)

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = _optimizer("ReduceLROnPlateau", self.model)
        logs["learning_rate"] = float(opt.learning_rate)
        current = _monitored("ReduceLROnPlateau", self.monitor, logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        better = current < self.best - self.min_delta if self.mode == "min" else \
            current > self.best + self.min_delta
        if better:
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and opt.learning_rate > self.min_lr:
                opt.learning_rate = max(opt.learning_rate * self.factor, self.min_lr)
                if distributed.quiet(self.verbose):
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                          f"{opt.learning_rate}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """One CSV row per epoch: ``epoch`` (from 0) then the logs, columns sorted by name."""

    def __init__(self, filename, separator=",", append=False):
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys = None

    def on_train_begin(self, logs=None):
        self.keys = None
        resume = self.append and os.path.exists(self.filename) and \
            os.path.getsize(self.filename) > 0
        self._mode, self._header = ("a", False) if resume else ("w", True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if not distributed.is_main():
            return
        with open(self.filename, self._mode, newline="") as f:
            w = csv.writer(f, delimiter=self.sep)
            if self._header:
                w.writerow(["epoch"] + self.keys)
                self._header = False
            w.writerow([epoch] + [logs.get(k, "NA") for k in self.keys])
        self._mode = "a"


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite (without it, fit raises
    ValueError naming the batch; either way the weights keep their last finite values)."""

    terminates_on_nan = True  # fit stops quietly instead of raising

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions: on_epoch_begin(epoch, logs), on_epoch_end(epoch, logs),
    on_batch_end(batch, logs), on_train_begin(logs), on_train_end(logs)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_batch_end=None,
                 on_train_begin=None, on_train_end=None):
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_batch_end", on_batch_end), ("on_train_begin", on_train_begin),
                         ("on_train_end", on_train_end)):
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {name} must be callable, received "
                                    f"{fn!r}")
                setattr(self, name, fn)


class BackupAndRestore(Callback):
    """Save the weights, the optimizer's step count and the epoch to ``backup_dir`` after
    every epoch; a later ``fit`` of the same model starts from the epoch after the last
    backup with those weights.  The backup is deleted when training ends normally
    (``delete_checkpoint``).  Optimizer moments are not saved: they restart from zero."""

    def __init__(self, backup_dir, delete_checkpoint=True):
        self.backup_dir = os.fspath(backup_dir)
        self.delete_checkpoint = delete_checkpoint
        self.path = os.path.join(self.backup_dir, "backup.npz")

    def on_train_begin(self, logs=None):
        if os.path.exists(self.path):
            with np.load(self.path) as f:
                n = int(f["count"])
                self.model.set_weights([f[f"w{i}"] for i in range(n)])
                self.model.optimizer.iterations = int(f["iterations"])
                self.model._resume_epoch = int(f["epoch"]) + 1

    def on_epoch_end(self, epoch, logs=None):
        if not distributed.is_main():
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        weights = self.model.get_weights()
        tmp = self.path + ".tmp.npz"
        np.savez(tmp, count=len(weights), epoch=epoch,
                 iterations=self.model.optimizer.iterations,
                 **{f"w{i}": w for i, w in enumerate(weights)})
        os.replace(tmp, self.path)          # atomic: a crash leaves the previous backup

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and distributed.is_main() and os.path.exists(self.path):
            os.remove(self.path)
