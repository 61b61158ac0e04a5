"""Training: compile / fit / evaluate / predict / train_on_batch, History and callbacks.

:class:`TrainingMixin` is mixed into engine.Model (and so Sequential).  One training step is:
forward through the graph executor with the tape on, the loss, ``backward()``, then the
optimizer's in-place update.  With ``verbose=1`` each epoch shows Keras 3's progress line
(a rich bar on a terminal) with the time per step, the running loss and metrics, and ends with
the forward and backward (+ update) time per example, like the ConvNetJS demo's stats panel
(also in ``History.timing``).

    >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    ...                                                                  # doctest: +SKIP
    >>> history = model.fit(x, y, batch_size=32, epochs=5, validation_data=(xv, yv))
    ...                                                                  # doctest: +SKIP
    >>> history.history["val_accuracy"][-1]                               # doctest: +SKIP
    0.97

Reproducibility: ``engine.set_seed(s)`` before building the model fixes initial weights,
dropout masks and the shuffling order.
"""
from __future__ import annotations

import math
import numbers
import os
import time

import numpy as np

from . import constraints, regularizers
from . import distributed
from . import init as initializers
from . import losses as losses_mod
from . import metrics as metrics_mod
from . import optim
from .autograd import no_grad
from .data import batch_indices
from .tensor import Tensor

__all__ = ["TrainingMixin", "History", "Callback", "EarlyStopping", "ModelCheckpoint"]


# -- callbacks --------------------------------------------------------------------------

class Callback:
    """Base class: override any of the hooks; ``self.model`` is set by fit."""

    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """What fit returns: ``history`` maps each logged name ("loss", "accuracy", "val_loss",
    ...) to its per-epoch list; ``epoch`` lists the epoch indices; ``timing`` holds the
    per-epoch forward and backward milliseconds per example and samples per second."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.timing = {"fwd_ms_per_example": [], "bwd_ms_per_example": [],
                       "samples_per_s": []}
        self.params = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _monitor_mode(owner, monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', received {mode!r}")
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    return mode


def _monitored(owner, monitor, logs):
    if monitor not in logs:
        raise ValueError(f"{owner}: monitored quantity {monitor!r} is not in the logs; "
                         f"available: {', '.join(logs)} (val_* needs validation_data)")
    return logs[monitor]


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs; optionally restore the best weights at the end.

    >>> EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    ...                                                                  # doctest: +ELLIPSIS
    <engine.training.EarlyStopping object at ...>
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 restore_best_weights=False):
        if not isinstance(patience, numbers.Integral) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, received "
                             f"{patience!r}")
        if not isinstance(min_delta, numbers.Real) or min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be a number >= 0, received "
                             f"{min_delta!r}")
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.patience = int(patience)
        self.mode = _monitor_mode("EarlyStopping", monitor, mode)
        self.restore_best_weights = restore_best_weights
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.best_weights = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored("EarlyStopping", self.monitor, logs or {})
        better = value < self.best - self.min_delta if self.mode == "min" else \
            value > self.best + self.min_delta
        if better:
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after each epoch (or only when ``monitor`` improves), atomically.

    ``filepath`` may hold format fields: ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"`` (epoch
    counts from 1).  A crash mid-save leaves the previous file whole (see engine.io).
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto",
                 verbose=0):
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.mode = _monitor_mode("ModelCheckpoint", monitor, mode)
        self.verbose = verbose
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = _monitored("ModelCheckpoint", self.monitor, logs)
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as e:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} names the field "
                             f"{{{e.args[0]}}}, which this fit does not log; available: "
                             f"{', '.join(['epoch'] + list(logs))} (val_* need validation "
                             f"data)") from None
        self.model.save(path)  # written by rank 0 alone in data-parallel training
        if distributed.quiet(self.verbose):
            print(f"Epoch {epoch + 1}: saved model to {path}")


# -- progress display -------------------------------------------------------------------

_BAR = 20        # bar cells, as Keras
_WIDTH = 80      # the finished epoch's text wraps at this many columns


def _value_text(v):
    return f"{v:.4f}" if v == 0 or abs(v) >= 1e-3 else f"{v:.4e}"


def _logs_text(logs):
    """' - accuracy: 0.9038 - loss: 0.3216 - val_...' in Keras 3's order (training values,
    then validation values, each alphabetical)."""
    keys = sorted(k for k in logs if not k.startswith("val_")) + \
        sorted(k for k in logs if k.startswith("val_"))
    return [f"{k}: {_value_text(logs[k])}" for k in keys]


def _step_time(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def epoch_text(steps, elapsed, logs, fwd_ms, bwd_ms, width=_WIDTH):
    """The finished epoch as Keras 3 writes it, wrapped at ``width`` columns on the " - "
    separators, with convlab's forward and backward milliseconds per example at the end::

        32/32 ━━━━━━━━━━━━━━━━━━━━ 2s 50ms/step - accuracy: 0.9000 - loss: 0.3000
            - fwd/bwd 0.112/0.297 ms per example

    >>> print(epoch_text(5, 0.25, {"loss": 0.5}, 0.1, 0.2))
    5/5 ━━━━━━━━━━━━━━━━━━━━ 0s 50ms/step - loss: 0.5000
        - fwd/bwd 0.100/0.200 ms per example
    """
    head = f"{steps}/{steps} {'━' * _BAR} {elapsed:.0f}s {_step_time(elapsed / max(steps, 1))}"
    parts = _logs_text(logs) + [f"fwd/bwd {fwd_ms:.3f}/{bwd_ms:.3f} ms per example"]
    lines, line = [], head
    for part in parts:
        piece = " - " + part
        if len(line) + len(piece) > width and line.strip():
            lines.append(line)
            line = "   "
        line += piece
    lines.append(line)
    return "\n".join(lines)


class _EpochProgress:
    """Keras 3's epoch display: "Epoch 3/20", then (verbose=1 on a terminal) a live bar
    (rich) with the step count, time per step and the running values, replaced at the end of
    the epoch by the finished line; verbose=2, or output redirected to a file or a log,
    prints only the finished line.  See :func:`epoch_text`."""

    def __init__(self, verbose, epoch, epochs, steps):
        self.verbose = verbose
        self.steps = steps
        self.progress = None
        self.start = time.perf_counter()
        if not verbose:
            return
        print(f"Epoch {epoch + 1}/{epochs}")
        if verbose == 1:
            from rich.console import Console
            console = Console()
            if console.is_terminal:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
                self.progress = Progress(MofNCompleteColumn(), BarColumn(bar_width=_BAR),
                                         TextColumn("{task.fields[stats]}"),
                                         console=console, transient=True)
                self.task = self.progress.add_task("", total=steps, stats="")
                self.progress.start()

    def update(self, logs, fwd_ms, bwd_ms):
        if self.progress is not None:
            done = self.progress.tasks[0].completed + 1
            elapsed = time.perf_counter() - self.start
            stats = " - ".join([f"{elapsed:.0f}s {_step_time(elapsed / done)}"] +
                               _logs_text(logs))
            self.progress.update(self.task, advance=1, stats=stats)

    def close(self, logs, fwd_ms, bwd_ms):
        if self.progress is not None:
            self.progress.stop()
        if self.verbose:
            print(epoch_text(self.steps, time.perf_counter() - self.start, logs, fwd_ms,
                             bwd_ms))


# -- the mixin --------------------------------------------------------------------------

def _sample_weights(where, loss, y, n, class_weight, sample_weight):
    """(N,) float32 weights from class_weight (by integer label, one-hot argmax, or the 0/1
    target of a single output) or sample_weight; None when neither is given."""
    if class_weight is None and sample_weight is None:
        return None
    if class_weight is not None and sample_weight is not None:
        raise ValueError(f"{where}: class_weight and sample_weight cannot be used together "
                         f"(as in Keras); fold the class weights into sample_weight")
    sw = np.ones(n, np.float32)
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float32)
        if w.shape != (n,):
            raise ValueError(f"{where}: sample_weight must have shape ({n},), received "
                             f"{w.shape}")
        sw *= w
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(f"{where}: class_weight must be a dict {{class: weight}}, "
                            f"received {type(class_weight).__name__}")
        if loss.sparse or y.ndim == 1:
            labels = y.reshape(n).astype(np.int64)
        elif y.shape[-1] == 1:
            labels = np.rint(y.reshape(n)).astype(np.int64)
        else:
            labels = y.reshape(n, -1).argmax(axis=1)
        table = np.ones(int(max(list(class_weight) + [int(labels.max(initial=0))])) + 1,
                        np.float32)
        for k, v in class_weight.items():
            table[int(k)] = float(v)
        sw *= table[labels]
    return sw


def _check_int(where, name, value, minimum):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, received {value!r}")
    return int(value)


def _check_data(where, xs, y):
    """Refuse no samples, and Inf or NaN in the inputs or the targets, naming the first."""
    if len(y) == 0:
        raise ValueError(f"{where}: x and y hold no samples (0 rows); there is nothing to "
                         f"{'train on' if where.startswith(('fit', 'train')) else 'evaluate'}")
    for name, a in [(f"x[{i}]" if len(xs) > 1 else "x", a) for i, a in enumerate(xs)] + \
            [("y", y)]:
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = np.argwhere(~np.isfinite(a))[0]
            raise ValueError(f"{where}: {name} holds non-finite values (Inf or NaN), first "
                             f"at index {tuple(int(i) for i in bad)} (value "
                             f"{a[tuple(bad)]}); training on them makes every weight NaN")


class NonFiniteLoss(ValueError):
    """A training step's loss is NaN or infinite (raised before the update)."""


def _check_loss(loss, where):
    """The loss as a float (its one copy to the host per step), checked to be finite."""
    value = float(loss.item())
    if not math.isfinite(value):
        raise NonFiniteLoss(f"{where}: the loss is {value}; stopped before the update, the weights "
                         f"keep their last finite values (the inputs are finite: the training "
                         f"diverged; lower the learning rate or normalise the data)")
    return value


class TrainingMixin:
    """compile / fit / evaluate / predict / train_on_batch for graph models.

    The host class provides ``_prepare_x(x, where) -> list of float32 arrays`` (validated
    against the model inputs), ``_forward(xs, training) -> list of Tensors``,
    ``trainable_weights``, ``output_shape``, ``get_weights``/``set_weights`` and ``save``.
    """

    optimizer = None
    loss = None
    compiled_metrics = ()
    stop_training = False

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose the optimizer (name or object), the loss (name, Loss or callable) and the
        metrics (names such as "accuracy", or callables ``fn(pred, target) -> float``)."""
        if loss is None:
            raise ValueError(f"compile: loss is required; valid names: "
                             f"{', '.join(losses_mod.LOSSES)}")
        self.optimizer = optim.get(optimizer)
        self.loss = losses_mod.get(loss)
        if metrics is None:
            metrics = []
        elif isinstance(metrics, str) or callable(metrics):
            metrics = [metrics]
        out_shape = self._output_shape_or_none()
        self.compiled_metrics = [metrics_mod.get(m, self.loss, out_shape) for m in metrics]
        self._metric_ids = list(metrics)
        self._loss_id = loss
        self._optimizer_id = optimizer

    def _require_compiled(self, where):
        if self.loss is None:
            raise ValueError(f"{where}: the model must be compiled first: "
                             f"model.compile(optimizer, loss, metrics)")

    def _output_shape_or_none(self):
        try:
            return self.output_shape
        except ValueError:
            return None

    def _prepare_y(self, y, n, where):
        if y is None:
            raise ValueError(f"{where}: y is required")
        y = np.asarray(y.numpy() if isinstance(y, Tensor) else y)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{where}: y must hold numbers (class labels or targets), "
                            f"received dtype {y.dtype} (shape {y.shape})")
        if len(y) != n:
            raise ValueError(f"{where}: x and y must have the same number of samples, "
                             f"received x with {n} and y with {len(y)} (y shape {y.shape})")
        if len(self.outputs) != 1:
            raise ValueError(f"{where}: training needs a single-output model, this one has "
                             f"{len(self.outputs)} outputs")
        if y.ndim == 1 and not self.loss.sparse and tuple(self.output_shape[1:]) == (1,):
            y = y.reshape(-1, 1)  # (N,) targets for a (None, 1) output, as Keras takes them
        self.loss.check_targets(self.output_shape, y.shape, where)
        if self.loss.sparse:
            if y.dtype.kind == "f" and y.size and not np.all(np.mod(y, 1) == 0):
                raise ValueError(f"{where}: loss {self.loss.name!r} needs integer class "
                                 f"labels, received non-integer values")
            y = y.reshape(len(y)).astype(np.int64, copy=False)
            classes = self.output_shape[-1]
            if y.size and (y.min() < 0 or y.max() >= classes):
                raise ValueError(f"{where}: labels must be in [0, {classes}) for a model with "
                                 f"{classes} outputs, received labels in "
                                 f"[{int(y.min())}, {int(y.max())}]")
            return y
        return y.astype(np.float32, copy=False)

    def _train_params(self):
        return [t for layer in self._unique_layers for t in layer.trainable_weights]

    def _loss_of(self, pred, y, sw=None):
        """The loss (Keras: weighted per-sample losses summed over the batch size), plus the
        layers' regularization penalties (``model.losses``)."""
        loss = self.loss(pred, y) if sw is None else \
            (self.loss.per_sample(pred, y) * sw).sum() * (1.0 / len(sw))
        extra = regularizers.penalty(self._unique_layers)
        return loss if extra is None else loss + extra

    @property
    def losses(self):
        """The regularization penalties of every layer's weights now (scalar Tensors)."""
        return [t for layer in self._unique_layers for t in layer.losses]

    def _step(self, xs, y, dp=None, where="train_on_batch", sw=None):
        """One forward/backward/update; returns (loss Tensor, prediction Tensor, fwd s,
        bwd s).  On a model on 'cuda' the batch is uploaded once (in ``_forward``) and
        only the loss comes back to the host here.  ``dp``: the data-parallel helper of
        engine.distributed, which averages the gradients over ranks before the update.
        ``sw``: per-sample weights (class_weight, sample_weight) or None.  A non-finite loss
        raises ValueError (naming ``where``) before the update, so the weights keep their
        last finite values."""
        t0 = time.perf_counter()
        pred = self._forward(xs, training=True)[0]
        loss = self._loss_of(pred, y, sw)
        loss._value = _check_loss(loss, where)  # the host copy callers read
        t1 = time.perf_counter()
        params = self._train_params()
        for p in params:
            p.grad = None
        if loss.requires_grad:
            loss.backward()
        if dp is not None:
            dp.average_gradients(len(y))
        self.optimizer.step(params)
        constraints.apply(self._unique_layers)
        return loss, pred, t1 - t0, time.perf_counter() - t1

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One update on one batch; returns the loss before the update (a float).

        >>> model.train_on_batch(x[:32], y[:32])                        # doctest: +SKIP
        2.3025
        """
        self._require_compiled("train_on_batch")
        xs = self._prepare_x(x, "train_on_batch")
        y = self._prepare_y(y, len(xs[0]), "train_on_batch")
        _check_data("train_on_batch", xs, y)
        sw = _sample_weights("train_on_batch", self.loss, y, len(y), class_weight,
                             sample_weight)
        loss, _, _, _ = self._step(xs, y, sw=sw)
        return loss._value

    def fit(self, x, y, batch_size=32, epochs=1, verbose=1, callbacks=None,
            validation_data=None, validation_split=0.0, shuffle=True, initial_epoch=0,
            class_weight=None, sample_weight=None, steps_per_epoch=None):
        """Train for ``epochs`` epochs of mini-batches; returns a :class:`History`.

        Parameters
        ----------
        x : array (N, *input_shape), or a list of arrays for several inputs
        y : targets, N rows (integer labels for sparse_categorical_crossentropy)
        batch_size, epochs : ints
        verbose : 0 silent, 1 progress bar per epoch, 2 one line per epoch
        callbacks : list of Callback (EarlyStopping, ModelCheckpoint, ...)
        validation_data : (x_val, y_val), evaluated after each epoch (val_* logs)
        validation_split : fraction of the data (taken from the end, before shuffling)
            held out for validation when no validation_data is given
        shuffle : reshuffle every epoch (engine generator: see engine.set_seed)
        initial_epoch : the epoch to start from (resuming)
        class_weight : {class index: weight}, multiplying each sample's loss by its class's
        sample_weight : (N,) weights of the samples' losses (not together with class_weight)
        steps_per_epoch : at most this many batches per epoch

        After ``engine.distributed.init()`` in a world of N > 1 processes, fit is data
        parallel (``batch_size`` is the global batch): see :mod:`engine.distributed`.
        """
        self._require_compiled("fit")
        batch_size = _check_int("fit", "batch_size", batch_size, 1)
        epochs = _check_int("fit", "epochs", epochs, 0)
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: verbose must be 0, 1 or 2, received {verbose!r}")
        xs = self._prepare_x(x, "fit")
        n = len(xs[0])
        y = self._prepare_y(y, n, "fit")
        _check_data("fit", xs, y)
        sw = _sample_weights("fit", self.loss, y, n, class_weight, sample_weight)
        if steps_per_epoch is not None:
            steps_per_epoch = _check_int("fit", "steps_per_epoch", steps_per_epoch, 1)
        xv = yv = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a tuple (x_val, y_val)")
            xv = self._prepare_x(validation_data[0], "fit (validation_data)")
            yv = self._prepare_y(validation_data[1], len(xv[0]), "fit (validation_data)")
            _check_data("fit (validation_data)", xv, yv)
        elif validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"fit: validation_split must be in (0, 1), received "
                                 f"{validation_split!r}")
            cut = n - int(n * validation_split)
            if cut in (0, n):
                raise ValueError(f"fit: validation_split={validation_split} leaves no "
                                 f"training or no validation samples out of {n}")
            xv, yv = [a[cut:] for a in xs], y[cut:]
            xs, y, n = [a[:cut] for a in xs], y[:cut], cut
            sw = None if sw is None else sw[:cut]
        dp = distributed.data_parallel(self, n)  # None in a world of one
        verbose = distributed.quiet(verbose)
        history = History()
        history.params = {"batch_size": batch_size, "epochs": epochs, "samples": n}
        cbs = [history] + list(callbacks or [])
        for cb in cbs:
            cb.set_model(self)
            cb.on_train_begin()
        self.stop_training = False
        initial_epoch = max(initial_epoch, getattr(self, "_resume_epoch", 0) or 0)
        self._resume_epoch = None          # set by BackupAndRestore.on_train_begin
        steps = -(-n // batch_size)
        if steps_per_epoch is not None:
            steps = min(steps, steps_per_epoch)
        for epoch in range(initial_epoch, epochs):
            for cb in cbs:
                cb.on_epoch_begin(epoch)
            bar = _EpochProgress(verbose, epoch, epochs, steps)
            metrics_mod.reset(self.compiled_metrics)
            sums = np.zeros(1 + len(self.compiled_metrics))
            seen, fwd, bwd = 0, 0.0, 0.0
            start = time.perf_counter()
            batches = batch_indices(n, batch_size, shuffle, initializers.rng()) if dp is None \
                else dp.batches(n, batch_size, shuffle)  # this rank's share of each batch
            for b, idx in enumerate(batches):
                if b == steps:
                    break
                yb = y[idx]
                try:
                    loss, pred, tf, tb = self._step([a[idx] for a in xs], yb, dp,
                                                    f"fit: epoch {epoch + 1}, batch {b + 1}",
                                                    None if sw is None else sw[idx])
                except NonFiniteLoss:
                    if not any(getattr(cb, "terminates_on_nan", False) for cb in cbs):
                        raise
                    # TerminateOnNaN asked for Keras's behaviour: stop, log the NaN, no error
                    # (the weights keep their last finite values: the check precedes the update)
                    print(f"Batch {b}: invalid loss, terminating training")
                    sums[0], seen = float("nan"), max(seen, 1)
                    self.stop_training = True
                    break
                m = len(yb)
                sums[0] += loss._value * m
                if self.compiled_metrics:
                    pred = pred.numpy()  # a host copy only when metrics need it
                for i, (_, fn) in enumerate(self.compiled_metrics, 1):
                    sums[i] = metrics_mod.accumulate(fn, pred, yb, sums[i], m, seen + m)
                seen, fwd, bwd = seen + m, fwd + tf, bwd + tb
                if bar.progress is not None or len(cbs) > 1:
                    logs = self._logs(sums / seen)
                    bar.update(logs, 1e3 * fwd / seen, 1e3 * bwd / seen)
                    for cb in cbs[1:]:
                        cb.on_batch_end(b, logs)
            elapsed = time.perf_counter() - start
            if dp is not None:
                sums, seen = dp.end_epoch(sums, seen)
            logs = self._logs(sums / max(seen, 1))
            if xv is not None:
                val = self._evaluate_arrays(xv, yv, batch_size)
                logs.update({"val_" + k: v for k, v in self._logs(val).items()})
            bar.close(logs, 1e3 * fwd / max(seen, 1), 1e3 * bwd / max(seen, 1))
            history.timing["fwd_ms_per_example"].append(1e3 * fwd / max(seen, 1))
            history.timing["bwd_ms_per_example"].append(1e3 * bwd / max(seen, 1))
            history.timing["samples_per_s"].append(seen / elapsed if elapsed > 0 else 0.0)
            logs = dict(logs)
            for cb in cbs[1:] + cbs[:1]:  # History last: it records what callbacks add
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in cbs:
            cb.on_train_end()
        return history

    def _logs(self, values):
        names = ["loss"] + [name for name, _ in self.compiled_metrics]
        return {k: float(v) for k, v in zip(names, values)}

    def _evaluate_arrays(self, xs, y, batch_size):
        sums = np.zeros(1 + len(self.compiled_metrics))
        n = len(y)
        lo, hi = distributed.shard_range(n, "evaluate")  # (0, n) in a world of one
        xs, y = [a[lo:hi] for a in xs], y[lo:hi]
        metrics_mod.reset(self.compiled_metrics)
        seen = 0
        with no_grad():
            for idx in batch_indices(hi - lo, batch_size):
                yb = y[idx]
                pred = self._forward([a[idx] for a in xs], training=False)[0]
                m = len(yb)
                seen += m
                sums[0] += float(self._loss_of(pred, yb).item()) * m
                if self.compiled_metrics:
                    pred = pred.numpy()
                for i, (_, fn) in enumerate(self.compiled_metrics, 1):
                    sums[i] = metrics_mod.accumulate(fn, pred, yb, sums[i], m, seen)
        return distributed.reduce_sums(sums) / max(n, 1)

    def evaluate(self, x, y, batch_size=32, verbose=0):
        """Loss (a float) on (x, y), or [loss, metric, ...] when metrics were compiled."""
        self._require_compiled("evaluate")
        batch_size = _check_int("evaluate", "batch_size", batch_size, 1)
        xs = self._prepare_x(x, "evaluate")
        y = self._prepare_y(y, len(xs[0]), "evaluate")
        _check_data("evaluate", xs, y)
        values = self._evaluate_arrays(xs, y, batch_size)
        if distributed.quiet(verbose):
            print(" - ".join(f"{k} {v:.4f}" for k, v in self._logs(values).items()))
        if not self.compiled_metrics:
            return float(values[0])
        return [float(v) for v in values]

    def predict(self, x, batch_size=32, verbose=0):
        """Outputs for x, computed in batches without the tape: a numpy array (a list of
        arrays for a model with several outputs)."""
        batch_size = _check_int("predict", "batch_size", batch_size, 1)
        xs = self._prepare_x(x, "predict")
        n = len(xs[0])
        lo, hi = distributed.shard_range(n, "predict")  # (0, n) in a world of one
        xs = [a[lo:hi] for a in xs]
        chunks = []
        with no_grad():
            for idx in batch_indices(hi - lo, batch_size):
                chunks.append([o.numpy() for o in self._forward([a[idx] for a in xs],
                                                               False)])
        outs = [np.concatenate([c[i] for c in chunks]) if chunks else
                np.zeros((0,) + tuple(self.outputs[i].shape[1:]), np.float32)
                for i in range(len(self.outputs))]
        outs = distributed.gather_rows(outs)  # every rank's rows, in order
        if distributed.quiet(verbose):
            print(f"predict: {n} samples")
        return outs[0] if len(outs) == 1 else outs
