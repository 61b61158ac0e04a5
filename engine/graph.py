"""The layer-graph executor: functional DAG models; Sequential is a DAG with one path.

``Model(inputs, outputs)`` takes the SymbolicTensors of a graph built by calling layers on
``Input`` placeholders, sorts the graph once into a list of steps (layer, input slots, output
slot), and runs that list on every forward pass.  ``Sequential`` chains its layers onto an
``Input`` and hands the result to the same executor.

    >>> import engine
    >>> from engine.layers import Input, Conv2D, BatchNormalization, ReLU, Add
    >>> x = Input((16, 8, 8))
    >>> y = BatchNormalization()(Conv2D(16, 3, padding="same")(x))
    >>> block = engine.Model(x, ReLU()(Add()([x, y])))
    >>> block.output_shape
    (None, 16, 8, 8)
"""
from __future__ import annotations

import io as _io

import numpy as np

from kernels import runtime as _runtime

from . import device as _dev
from .layers import LAYERS
from .layers.base import Layer, SymbolicTensor, _unique_name, format_shape
from .layers.conv import BaseConv
from .layers.core import Input, InputLayer
from .tensor import Tensor
from .training import TrainingMixin

__all__ = ["Model", "Sequential"]


def _as_list(v):
    return list(v) if isinstance(v, (list, tuple)) else [v]


class Model(TrainingMixin):
    """A functional model: the graph from ``inputs`` to ``outputs``.

    Parameters
    ----------
    inputs : SymbolicTensor or list of them (from :func:`engine.layers.Input`)
    outputs : SymbolicTensor or list of them
    name : str, optional
    """

    _layer_classes = LAYERS   # what from_config may create (the Keras front has its own)

    def __init__(self, inputs, outputs, name=None):
        self.name = name or _unique_name("model")
        self._init_graph(_as_list(inputs), _as_list(outputs))

    # -- graph construction -------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        for where, ts in (("inputs", inputs), ("outputs", outputs)):
            if not ts or not all(isinstance(t, SymbolicTensor) for t in ts):
                raise TypeError(f"Model {self.name!r}: {where} must be symbolic tensors (from "
                                f"engine.Input and layer calls), received {ts!r}")
        for t in inputs:
            if not isinstance(t.layer, InputLayer):
                raise ValueError(f"Model {self.name!r}: every input must come from "
                                 f"engine.Input, received the output of {t.layer.name!r}")
        slot = {id(t): i for i, t in enumerate(inputs)}
        order, seen, stack = [], set(slot), [(t, False) for t in reversed(outputs)]
        while stack:  # iterative post-order DFS: inputs of a tensor before the tensor
            t, expanded = stack.pop()
            if expanded:
                slot[id(t)] = len(inputs) + len(order)
                order.append(t)
                continue
            if id(t) in seen:
                continue
            seen.add(id(t))
            if isinstance(t.layer, InputLayer):
                raise ValueError(f"Model {self.name!r}: graph disconnected: an output depends "
                                 f"on input {t.layer.name!r} {format_shape(t.shape)}, which is "
                                 f"not among the model inputs")
            stack.append((t, True))
            stack.extend((p, False) for p in reversed(t.inputs) if id(p) not in seen)
        self.inputs, self.outputs = list(inputs), list(outputs)
        self._input_slots = list(range(len(inputs)))
        self._output_slots = [slot[id(t)] for t in outputs]
        self._nslots = len(inputs) + len(order)
        self._steps = [(t.layer, tuple(slot[id(p)] for p in t.inputs), slot[id(t)])
                       for t in order]
        self._nodes = list(inputs) + order
        layers = []
        for t in self._nodes:
            if t.layer not in layers:
                layers.append(t.layer)
        names = [layer.name for layer in layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"Model {self.name!r}: layer names must be unique, "
                             f"{', '.join(map(repr, dup))} appear more than once")
        self._unique_layers = layers
        if self._device != "cpu":
            for layer in layers:
                layer.to(self._device)

    # -- device -------------------------------------------------------------------------
    _device = "cpu"

    @property
    def device(self):
        """"cpu" or "cuda": where the weights live and where batches are computed."""
        return self._device

    def to(self, device):
        """Move the model to ``device`` ("cpu" or "cuda") in place and return it.

        The weights move now (or when a Sequential is built); fit / evaluate / predict then
        upload each batch once and bring back only the loss (and the predictions, or the
        outputs metrics need).  Optimizer state follows the weights.  save() works from
        either device.

        Examples
        --------
        >>> from engine.layers import Dense
        >>> model = Sequential([Dense(2, input_shape=(3,))])
        >>> model.to("cpu").device
        'cpu'
        """
        device = _dev.check_device(f"{type(self).__name__} {self.name!r}", device, "device")
        self._device = device
        for layer in self.__dict__.get("_unique_layers", ()):
            layer.to(device)
        return self

    # -- description --------------------------------------------------------------------
    @property
    def layers(self):
        """The layers in execution order (Input layers included, as in Keras)."""
        return list(self._unique_layers)

    def get_layer(self, name):
        for layer in self._unique_layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self.name}: no layer named {name!r}; layers: "
                         f"{', '.join(layer.name for layer in self._unique_layers)}")

    @property
    def input(self):
        return self.inputs[0] if len(self.inputs) == 1 else self.inputs

    @property
    def output(self):
        return self.outputs[0] if len(self.outputs) == 1 else self.outputs

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def weights(self):
        return [t for layer in self._unique_layers for t in layer.weights]

    @property
    def trainable_weights(self):
        return self._train_params()

    @property
    def non_trainable_weights(self):
        return [t for layer in self._unique_layers for t in layer.non_trainable_weights]

    def count_params(self):
        """Total number of weights (trainable and not)."""
        return int(sum(layer.count_params() for layer in self._unique_layers))

    def get_weights(self):
        """Copies of all weights, layer by layer, as numpy arrays."""
        return [w for layer in self._unique_layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Set all weights from a list in :meth:`get_weights` order."""
        weights = list(weights)
        need = sum(len(layer.weights) for layer in self._unique_layers)
        if len(weights) != need:
            raise ValueError(f"{self.name}: set_weights expects {need} arrays, received "
                             f"{len(weights)}")
        i = 0
        for layer in self._unique_layers:
            k = len(layer.weights)
            layer.set_weights(weights[i:i + k])
            i += k

    # -- execution ----------------------------------------------------------------------
    def _input_list(self, x, where):
        if len(self.inputs) == 1:
            return [x]
        if not isinstance(x, (list, tuple)) or len(x) != len(self.inputs):
            raise ValueError(f"{where}: model {self.name!r} has {len(self.inputs)} inputs and "
                             f"needs a list of {len(self.inputs)} arrays, received "
                             f"{type(x).__name__}")
        return list(x)

    def _check_array(self, a, t, where):
        """``a`` as a float32 array checked against the Input ``t``."""
        try:
            a = np.asarray(a, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{where}: x must be a numeric array, received "
                            f"{type(a).__name__}: {e}") from None
        self._check_shape(a.shape, t, where)
        return a

    def _check_shape(self, shape, t, where):
        if shape[1:] != t.shape[1:]:
            raise ValueError(f"{where}: model {self.name!r} input {t.layer.name!r} expects "
                             f"shape {format_shape(t.shape)}, received "
                             f"{format_shape(shape)}{self._consumer_text(t)}")

    def _prepare_x(self, x, where):
        """The model inputs as float32 arrays, checked against the Input shapes."""
        out = [self._check_array(a.numpy() if isinstance(a, Tensor) else a, t, where)
               for a, t in zip(self._input_list(x, where), self.inputs)]
        if len({len(a) for a in out}) > 1:
            raise ValueError(f"{where}: all inputs must have the same number of samples, "
                             f"received {[len(a) for a in out]}")
        return out

    def _consumer_text(self, t):
        users = [layer.name for layer, ins, _ in self._steps
                 if self._input_slots[self.inputs.index(t)] in ins]
        return f" (feeding layer {', '.join(map(repr, users))})" if users else ""

    def _forward(self, xs, training):
        """Run the steps on a list of arrays/Tensors; returns the output Tensors.  Arrays
        are uploaded once to the model's device.  fit / evaluate / predict come through here,
        so convlab's process-wide settings (kernels.runtime) are applied before any work."""
        _runtime.ensure()
        vals = [None] * self._nslots
        for s, x in zip(self._input_slots, xs):
            if not isinstance(x, Tensor):
                x = Tensor._result(_dev.move(x, self._device))
            vals[s] = x
        for layer, ins, out in self._steps:
            if layer.multi_input:
                vals[out] = layer.call([vals[i] for i in ins], training=training)
            else:
                vals[out] = layer.call(vals[ins[0]], training=training)
        return [vals[s] for s in self._output_slots]

    def __call__(self, x, training=False):
        """Run the model eagerly on arrays or Tensors; returns Tensor(s).  The tape records
        when grad mode is on, so an input Tensor with requires_grad=True gets its gradient."""
        xs = self._input_list(x, "call")
        if any(isinstance(a, SymbolicTensor) for a in xs):
            raise TypeError(f"{self.name}: calling a model on symbolic tensors (nesting models) "
                            f"is not supported; build one graph with the layers instead")
        tensors = []
        for a, t in zip(xs, self.inputs):
            if isinstance(a, Tensor):
                self._check_shape(a.shape, t, "call")
                tensors.append(a)
            else:
                tensors.append(self._check_array(a, t, "call"))
        outs = self._forward(tensors, training)
        return outs[0] if len(outs) == 1 else outs

    # -- summary ------------------------------------------------------------------------
    def _connected(self):
        return True

    def summary(self, print_fn=None, batch_size=32, strategies=False, line_length=80):
        """Print the layer table as Keras 3 does, within ``line_length`` columns: Layer
        (type), Output Shape, Param # (and Connected to for a DAG), then the totals with their
        float32 sizes.  ``strategies=True`` adds convlab's table: per layer the device, the
        receptive field and the convolution strategy kernels.select picks for each pass (fwd,
        grad-input, grad-weight) at ``batch_size``, with the reasons.  ``print_fn`` receives
        each line instead of print.

        >>> from engine.layers import Dense
        >>> Sequential([Dense(2, input_shape=(3,), name="d")], name="m").summary()
        Model: "m"
        ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┓
        ┃ Layer (type)                      ┃ Output Shape              ┃      Param # ┃
        ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━┩
        │ d (Dense)                         │ (None, 2)                 │            8 │
        └───────────────────────────────────┴───────────────────────────┴──────────────┘
         Total params: 8 (32.00 B)
         Trainable params: 8 (32.00 B)
         Non-trainable params: 0 (0.00 B)
        """
        from rich import box
        from rich.console import Console
        from rich.table import Table

        dag = self._connected()
        width = int(line_length)
        table = Table(box=box.HEAVY_HEAD, show_lines=True, expand=True)  # as Keras 3
        names = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if dag else [])
        ratios = [0.45, 0.35, 0.20] if not dag else [0.30, 0.26, 0.16, 0.28]
        for col, ratio in zip(names, ratios):
            table.add_column(col, justify="right" if col == "Param #" else "left",
                             overflow="fold", ratio=ratio)
        extras = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                       padding=(0, 1, 0, 0)) if strategies else None
        if strategies:
            # whole layer names (tests and users search for them); the strategy cells fold
            longest = max([len(layer.name) for layer in self._unique_layers] + [5])
            extras.add_column("Layer", no_wrap=True, min_width=min(longest, 32))
            for col in ("Device", "Rec. field", "fwd", "grad-input", "grad-weight"):
                extras.add_column(col, overflow="fold",
                                  no_wrap=col in ("Device", "Rec. field"))
        fields, notes, counted = {}, [], set()
        for t in self._nodes:
            layer = t.layer
            if isinstance(layer, InputLayer):
                spatial = len(t.shape) - 2
                fields[id(t)] = ((1,) * spatial, (1,) * spatial) if spatial > 0 else None
            elif layer.multi_input:
                fields[id(t)] = layer.receptive_field_merge([fields[id(p)] for p in t.inputs])
            else:
                f = fields[id(t.inputs[0])]
                fields[id(t)] = None if f is None else layer.receptive_field(*f)
            if isinstance(layer, InputLayer) and not dag:
                continue
            params = "0" if layer in counted else f"{layer.count_params():,}"
            counted.add(layer)
            row = [f"{layer.name} ({type(layer).__name__})", format_shape(t.shape), params]
            if dag:
                row.append("\n".join(f"{p.layer.name}[0][0]" for p in t.inputs) or "-")
            table.add_row(*row)
            if strategies:
                extras.add_row(*self._strategy_row(t, fields[id(t)], batch_size, notes))
        total = self.count_params()
        trainable = int(sum(w.data.size for w in self.trainable_weights))
        buf = _io.StringIO()
        console = Console(file=buf, width=width, color_system=None, highlight=False,
                          emoji=False)
        console.print(f'Model: "{self.name}"', markup=False)
        console.print(table)
        for label, n in (("Total", total), ("Trainable", trainable),
                         ("Non-trainable", total - trainable)):
            console.print(f" {label} params: {n:,} ({_readable_size(4 * n)})", markup=False)
        if strategies:
            console.print(f"convlab: device, receptive field and the convolution strategy per "
                          f"pass (kernels.select, batch {batch_size})", markup=False)
            console.print(extras)
            for line in notes:
                console.print(line, markup=False)
        text = [line.rstrip() for line in buf.getvalue().splitlines()]
        for line in text:
            (print_fn or print)(line)

    def _strategy_row(self, t, rf, batch_size, notes):
        """[layer, device, receptive field, fwd, grad-input, grad-weight] for summary's
        convlab table; appends the reasons of a convolution's choices to ``notes``."""
        layer = t.layer
        device = layer.device if layer.weights else self._device
        rf_text = "x".join(map(str, rf[0])) if rf else "full input"
        if isinstance(layer, InputLayer):
            rf_text = "-"
        cells = ["", "", ""]
        if isinstance(layer, BaseConv):
            seen = {}
            for i, pass_ in enumerate(("fwd", "grad_input", "grad_weight")):
                s, backend, reason = layer.strategy_choice(t.inputs[0].shape, batch_size,
                                                           pass_=pass_, device=device)
                cells[i] = f"{s}/{backend}" if backend else s
                seen.setdefault(reason, []).append(pass_.replace("_", "-"))
            for reason, passes in seen.items():
                notes.append(f"  {layer.name} {', '.join(passes)}: {reason}")
        return [layer.name, device, rf_text] + cells

    # -- serialisation ------------------------------------------------------------------
    def get_config(self):
        """The architecture as a JSON-friendly dict (layers, graph edges, names)."""
        index = {layer: i for i, layer in enumerate(self._unique_layers)}
        return {"name": self.name,
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self._unique_layers],
                "inputs": [index[t.layer] for t in self.inputs],
                "nodes": [[index[layer], list(ins)] for layer, ins, _ in self._steps],
                "outputs": list(self._output_slots)}

    @classmethod
    def from_config(cls, config):
        """Rebuild from :meth:`get_config` output; only engine layer classes are created."""
        layers = [_layer_from_config(c, cls._layer_classes) for c in config["layers"]]
        tensors = []
        for i in config["inputs"]:
            if not isinstance(layers[i], InputLayer):
                raise ValueError(f"model config: input {i} is not an InputLayer")
            tensors.append(layers[i].output)
        for layer_index, ins in config["nodes"]:
            args = [tensors[j] for j in ins]
            layer = layers[layer_index]
            tensors.append(layer(args if layer.multi_input else args[0]))
        return cls([tensors[i] for i in
                    (range(len(config["inputs"])))],
                   [tensors[j] for j in config["outputs"]], name=config["name"])

    def save(self, path):
        """Save architecture + weights to one .npz file, atomically (see engine.io).  In
        data-parallel training (engine.distributed) only rank 0 writes."""
        from . import distributed
        if not distributed.is_main():
            return
        from .io import save_model
        save_model(self, path)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


def _readable_size(nbytes):
    """Keras's memory size text: 6.19 MB (powers of 1024, two decimals)."""
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _layer_from_config(entry, classes=LAYERS):
    name = entry.get("class_name") if isinstance(entry, dict) else None
    if name not in classes:
        raise ValueError(f"model config: unknown layer class {name!r}; known: "
                         f"{', '.join(sorted(classes))}")
    config = entry.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"model config: layer {name} has no config dict")
    return classes[name].from_config(config)


class Sequential(Model):
    """A linear stack of layers -- a graph with one path, run by the Model executor.

    The model builds as soon as the input shape is known: the first layer's ``input_shape``,
    an ``engine.Input(shape)`` given first, :meth:`build`, or the first data seen by fit /
    predict / train_on_batch.

    >>> from engine.layers import Conv2D, Flatten, Dense
    >>> model = Sequential([Conv2D(20, 5, activation="relu", input_shape=(1, 28, 28)),
    ...                     Conv2D(40, 5, activation="relu"), Flatten(),
    ...                     Dense(100, activation="relu"), Dense(10, activation="softmax")])
    >>> model.count_params()
    1621670
    """

    def __init__(self, layers=None, name=None):
        self.name = name or _unique_name("sequential")
        self._stack = []
        self._input = None
        self.built = False
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or, first, an ``engine.Input``)."""
        if isinstance(layer, InputLayer):
            layer = layer.output
        if isinstance(layer, SymbolicTensor):
            if self._stack or self._input is not None or not isinstance(layer.layer,
                                                                        InputLayer):
                raise ValueError(f"Sequential {self.name!r}: an Input can only be the first "
                                 f"entry")
            self._input = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential {self.name!r}: add expects a Layer, received "
                            f"{type(layer).__name__}")
        if layer.multi_input:
            raise TypeError(f"Sequential {self.name!r}: {layer.describe()} takes several "
                            f"inputs; use the functional engine.Model for merges")
        if any(layer is l or layer.name == l.name for l in self._stack):
            raise ValueError(f"Sequential {self.name!r}: a layer named {layer.name!r} is "
                             f"already in the model")
        # A failed add leaves the model (and a layer it built) as they were.
        old_input, was_built = self._input, layer.built
        if self._input is None and not self._stack and layer.input_shape_arg is not None:
            self._input = Input(layer.input_shape_arg)
        self._stack.append(layer)
        if self._input is not None:
            try:
                out = layer(self.outputs[0] if self.built else self._chain())
                self._init_graph([self._input], [out])
            except Exception:
                self._stack.pop()
                self._input = old_input
                if not was_built:
                    layer.unbuild()
                if self.built:
                    self._init_graph([self._input], [self._stack[-1].output])
                raise
            self.built = True

    def _chain(self):
        t = self._input
        for layer in self._stack[:-1]:
            t = layer(t)
        return t

    def pop(self):
        """Remove the last layer."""
        if not self._stack:
            raise ValueError(f"Sequential {self.name!r}: no layers to pop")
        layer = self._stack.pop()
        if self.built:
            if self._stack:
                self._init_graph([self._input], [self.outputs[0].inputs[0]])
            else:
                self.built = False
        return layer

    def build(self, input_shape):
        """Build for a per-sample ``input_shape`` (a leading None batch dim is dropped)."""
        shape = tuple(input_shape)
        if shape and shape[0] is None:
            shape = shape[1:]
        if self.built:
            if shape != tuple(self.inputs[0].shape[1:]):
                raise ValueError(f"Sequential {self.name!r}: already built for input shape "
                                 f"{format_shape(self.inputs[0].shape)}, received "
                                 f"{format_shape((None,) + shape)}")
            return
        if not self._stack:
            raise ValueError(f"Sequential {self.name!r}: add layers before building")
        self._input = Input(shape)
        t = self._input
        for layer in self._stack:
            t = layer(t)
        self._init_graph([self._input], [t])
        self.built = True

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"Sequential {self.name!r}: {what} needs a built model; give the "
                             f"first layer input_shape=..., start with engine.Input(shape), "
                             f"call build(input_shape), or fit/predict on data first")

    def _prepare_x(self, x, where):
        if not self.built:
            a = np.asarray(x.numpy() if isinstance(x, Tensor) else x)
            if a.ndim < 2:
                raise ValueError(f"{where}: x must have a batch dim and at least one feature "
                                 f"dim, received shape {a.shape}")
            self.build(a.shape[1:])
        return super()._prepare_x(x, where)

    def __call__(self, x, training=False):
        if not self.built:
            self._prepare_x(x.numpy() if isinstance(x, Tensor) else x, "call")
        return super().__call__(x, training)

    def _connected(self):
        return False

    @property
    def layers(self):
        """The layers in order (the Input is not listed, as in Keras)."""
        return list(self._stack)

    def __getattr__(self, name):
        # Graph attributes exist only once built; say so instead of an AttributeError.
        if name in ("inputs", "outputs", "_steps", "_unique_layers", "_nodes", "_input_slots",
                    "_output_slots", "_nslots"):
            self._require_built(f"'{name}'")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_config(self):
        self._require_built("get_config")
        return {"name": self.name, "input_shape": list(self.inputs[0].shape[1:]),
                "input_name": self._input.layer.name,
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self._stack]}

    @classmethod
    def from_config(cls, config):
        model = cls(name=config["name"])
        model.add(Input(tuple(config["input_shape"]), name=config.get("input_name")))
        for entry in config["layers"]:
            model.add(_layer_from_config(entry, cls._layer_classes))
        return model

    def summary(self, print_fn=None, batch_size=32, strategies=False, line_length=80):
        self._require_built("summary")
        super().summary(print_fn, batch_size, strategies, line_length)

    def count_params(self):
        if not self.built:
            return int(sum(layer.count_params() for layer in self._stack))
        return super().count_params()
