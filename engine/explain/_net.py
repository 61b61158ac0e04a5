"""What every method of engine.explain shares: a walker over a model's graph, targets and
scores, chunking under a memory budget, and the "input gradients only" switch.

The walker runs the model's own graph steps (the list the executor runs) and calls each
layer through ``layer.call(x, training=...)``, so a layer's internals (data format, weight
layout, the kernels it picks) stay its own business.  It can stop after a layer, keep the
outputs of chosen layers, cut the tape at a layer (a fresh leaf there, whose ``.grad`` is the
gradient with respect to that layer's output) and sample Dropout layers alone.
"""
from __future__ import annotations

import numbers
from contextlib import contextmanager

import numpy as np

from .. import device as _dev
from .. import functional as F
from ..autograd import enable_grad, no_grad
from ..layers.base import Layer, format_shape, is_int
from ..layers.core import Dropout, InputLayer
from ..tensor import Tensor

# Bytes of activations (and their gradients) one chunk of rows may hold.  Tests patch it.
# 64 MiB: on the course's MNIST net, integrated gradients ran faster with it than with 16 or
# 256 MiB (one thread, same run; chunks of ~1500 rows leave the caches).
MEMORY_BUDGET = 64 * 2 ** 20


def host(a):
    """A numpy array from a host or device array."""
    return _dev.host(a)


class Net:
    """A built single-input model seen as a list of steps over slots."""

    def __init__(self, model, where):
        self.where = where
        if getattr(model, "built", True) is False:
            raise ValueError(f"{where}: model {getattr(model, 'name', model)!r} is not "
                             f"built; give the first layer input_shape=..., or call "
                             f"build(input_shape) or predict once first")
        if not hasattr(model, "_steps") or not hasattr(model, "inputs"):
            raise TypeError(f"{where}: model must be an engine Model or Sequential, received "
                            f"{type(model).__name__}")
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(f"{where}: model {model.name!r} has {len(model.inputs)} inputs "
                             f"and {len(model.outputs)} outputs; engine.explain needs one "
                             f"of each")
        self.model = model
        self.steps = list(model._steps)
        self.in_slot = model._input_slots[0]
        self.out_slot = model._output_slots[0]
        self.nodes = list(model._nodes)           # slot -> SymbolicTensor
        self.input_shape = tuple(model.inputs[0].shape[1:])
        self.output_shape = tuple(model.outputs[0].shape[1:])

    # -- layers and slots ---------------------------------------------------------------
    def layers(self):
        return [layer for layer in self.model.layers if not isinstance(layer, InputLayer)]

    def find_layer(self, layer, argument="layer"):
        """A Layer from a Layer, its name, or its index in ``model.layers``."""
        layers = self.layers()
        if isinstance(layer, Layer):
            if layer in layers:
                return layer
        elif isinstance(layer, str):
            for cand in layers:
                if cand.name == layer:
                    return cand
        elif is_int(layer):
            if -len(layers) <= layer < len(layers):
                return layers[layer]
            raise ValueError(f"{self.where}: {argument} index {layer} is out of range for "
                             f"a model of {len(layers)} layers")
        else:
            raise TypeError(f"{self.where}: {argument} must be a layer name, index or Layer, "
                            f"received {type(layer).__name__}")
        raise ValueError(f"{self.where}: model {self.model.name!r} has no layer {layer!r}; "
                         f"layers: {', '.join(c.name for c in layers)}")

    def slot_of(self, layer):
        """The slot of ``layer``'s output (its last use when it is called more than once)."""
        slots = [out for lay, _, out in self.steps if lay is layer]
        return slots[-1]

    def shape_of(self, slot):
        return tuple(self.nodes[slot].shape[1:])

    def channels_last(self, slot=None):
        """Whether the tensor in ``slot`` (default: the input) is channels last, from the
        data_format of the nearest layer that declares one (before it, or for the input,
        after it); channels first when none does."""
        def declared(layer):
            fmt = layer.get_config().get("data_format")
            return None if fmt is None else fmt == "channels_last"
        if slot is None or slot == self.in_slot:
            for layer, _, _ in self.steps:
                fmt = declared(layer)
                if fmt is not None:
                    return fmt
            return False
        producers = {out: (layer, ins) for layer, ins, out in self.steps}
        todo = [slot]
        while todo:
            s = todo.pop(0)
            if s not in producers:
                continue
            layer, ins = producers[s]
            fmt = declared(layer)
            if fmt is not None:
                return fmt
            todo.extend(ins)
        return self.channels_last(None)

    def spatial_axes(self, ndim, channels_last):
        """The spatial axes of an (N, ...) array of ``ndim`` dims."""
        return tuple(range(1, ndim - 1)) if channels_last else tuple(range(2, ndim))

    # -- running ------------------------------------------------------------------------
    def run(self, x, keep=(), stop=None, cut=None, dropout_rng=None, start=None):
        """Run the steps on ``x`` (a Tensor or array of the model input).

        keep : slots whose Tensors are returned (the output slot always is)
        stop : stop after this slot is computed (then the output is not returned)
        cut : replace this slot's value by a fresh leaf that requires a gradient
        dropout_rng : numpy Generator: Dropout layers sample masks from it; every other
            layer runs in inference mode
        start : ``x`` is the value of this slot (of a chain): run the steps after it
        Returns {slot: Tensor}.
        """
        if not isinstance(x, Tensor):
            x = Tensor._result(np.ascontiguousarray(x, dtype=np.float32))
        if self.model.device != "cpu" and not _dev.is_cuda(x.data):
            x = Tensor._result(_dev.move(x.data, self.model.device))
        vals = {self.in_slot if start is None else start: x}
        want = set(keep) | ({self.out_slot} if stop is None else {stop})
        if cut == self.in_slot:
            vals[cut] = _leaf(x)
        steps = self.steps
        if start is not None and start != self.in_slot:
            steps = steps[[out for _, _, out in steps].index(start) + 1:]
        for layer, ins, out in steps:
            args = [vals[i] for i in ins]
            if dropout_rng is not None and isinstance(layer, Dropout):
                y = F.dropout(args[0], layer.rate, True, rng=dropout_rng)
            elif layer.multi_input:
                y = layer.call(args, training=False)
            else:
                y = layer.call(args[0], training=False)
            vals[out] = _leaf(y) if out == cut else y
            if out == stop:
                break
        return {s: vals[s] for s in want if s in vals}

    def run_output(self, x, **kw):
        return self.run(x, **kw)[self.out_slot]


def _leaf(t):
    leaf = Tensor._result(t.data)
    leaf.requires_grad = True
    return leaf


def logits(out):
    """The pre-softmax values when ``out`` came from a softmax over its last axis, else
    ``out``; as an (N, K) Tensor."""
    act = getattr(out, "_activation_of", None)
    if act is not None and act[0] == "softmax" and act[2] == out.ndim - 1:
        out = act[1]
    if out.ndim != 2:
        out = F.reshape(out, (out.shape[0], -1))
    return out


def ends_in_softmax(out):
    act = getattr(out, "_activation_of", None)
    return act is not None and act[0] == "softmax" and act[2] == out.ndim - 1


def check_x(net, x, where, argument="x"):
    """``x`` as a float32 (N, *input_shape) array; a single sample gains a batch dim."""
    if isinstance(x, Tensor):
        x = x.numpy()
    try:
        a = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where}: {argument} must be a numeric array, received "
                        f"{type(x).__name__}: {e}") from None
    if a.shape == net.input_shape:
        a = a[None]
    if a.shape[1:] != net.input_shape or a.shape[0] < 1:
        raise ValueError(f"{where}: {argument} must have shape "
                         f"{format_shape((None,) + net.input_shape)} (or one sample "
                         f"{format_shape(net.input_shape)}) for model {net.model.name!r}, "
                         f"received {format_shape(a.shape)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: {argument} contains NaN or infinite values")
    return np.ascontiguousarray(a)


def check_targets(target, n, n_classes, where, predict=None):
    """One int class index per input (None: the predicted class, from ``predict()``)."""
    if target is None:
        if predict is None:
            raise ValueError(f"{where}: target is required")
        return predict()
    if is_int(target):
        t = np.full(n, int(target), dtype=np.int64)
    else:
        t = np.asarray(target)
        if t.dtype.kind not in "iu" or t.shape != (n,):
            raise ValueError(f"{where}: target must be a class index or one int per input "
                             f"(shape ({n},)), received {target!r:.80}")
        t = t.astype(np.int64)
    bad = (t < 0) | (t >= n_classes)
    if bad.any():
        raise ValueError(f"{where}: target must be in [0, {n_classes}) for a model with "
                         f"{n_classes} outputs, received {int(t[bad][0])}")
    return t


def check_batch_size(batch_size, where):
    if batch_size is None:
        return None
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"{where}: batch_size must be a positive int or None, received "
                         f"{batch_size!r}")
    return int(batch_size)


def check_int(value, where, name, minimum):
    if not is_int(value) or value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, received {value!r}")
    return int(value)


def check_float(value, where, name, minimum=None, positive=False):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
            not np.isfinite(value) or (positive and value <= 0) or \
            (minimum is not None and value < minimum):
        need = "a number > 0" if positive else (f"a number >= {minimum}" if minimum is not None
                                                else "a finite number")
        raise ValueError(f"{where}: {name} must be {need}, received {value!r}")
    return float(value)


def check_seed(seed, where):
    if seed is not None and (not is_int(seed) or seed < 0):
        raise ValueError(f"{where}: seed must be a non-negative int or None, received {seed!r}")
    return np.random.default_rng(seed)


def rows_per_chunk(net, batch_size, backward, upto=None):
    """Rows per forward (and backward) pass: ``batch_size`` when given, else as many as the
    activations of one row fit in MEMORY_BUDGET (with their gradients when ``backward``)."""
    if batch_size is not None:
        return batch_size
    floats = 0
    for s, node in enumerate(net.nodes):
        floats += int(np.prod(node.shape[1:]))
        if s == upto:
            break
    per_row = 4 * floats * (3 if backward else 1) + 1
    return max(1, int(MEMORY_BUDGET // per_row))


def chunks(total, size):
    for start in range(0, total, size):
        yield start, min(total, start + size)


@contextmanager
def frozen_weights(model):
    """Weights need no gradient during the block (input gradients only), then as before."""
    weights = list(model.weights)
    before = [w.requires_grad for w in weights]
    grads = [w.grad for w in weights]
    try:
        for w in weights:
            w.requires_grad = False
        yield
    finally:
        for w, rg, g in zip(weights, before, grads):
            w.requires_grad = rg
            w.grad = g


def predicted(net, x, rows):
    """The argmax class of the (pre-softmax) output for every row of x."""
    out = []
    with no_grad():
        for a, b in chunks(len(x), rows):
            out.append(host(logits(net.run_output(x[a:b])).data).argmax(axis=1))
    return np.concatenate(out)


def scores(net, x, target, rows):
    """The score of ``target[i]`` for each row ``x[i]`` (forward only, chunked)."""
    out = np.empty(len(x), dtype=np.float64)
    with no_grad():
        for a, b in chunks(len(x), rows):
            z = host(logits(net.run_output(x[a:b])).data)
            out[a:b] = z[np.arange(b - a), target[a:b]]
    return out


def input_gradients(net, x, target, rows):
    """d score[target[i]] / d x[i] for every row (chunked; weights get no gradient).
    Returns (gradients as float32 like x, scores float64)."""
    grads = np.empty_like(x)
    vals = np.empty(len(x), dtype=np.float64)
    with frozen_weights(net.model), enable_grad():
        for a, b in chunks(len(x), rows):
            xt = Tensor(x[a:b], requires_grad=True)
            z = logits(net.run_output(xt))
            vals[a:b] = host(z.data)[np.arange(b - a), target[a:b]]
            select_sum(z, target[a:b]).backward()
            grads[a:b] = host(xt.grad)
    return grads, vals


def select_sum(z, target):
    """sum_i z[i, target[i]] as a scalar Tensor (the one-hot mask lives on z's device)."""
    mask = np.zeros(z.shape, dtype=np.float32)
    mask[np.arange(z.shape[0]), target] = 1.0
    if _dev.is_cuda(z.data):
        mask = _dev.move(mask, "cuda")
    return (z * Tensor._result(mask)).sum()


def n_outputs(net):
    return int(np.prod(net.output_shape))
