"""The Layer base class, symbolic tensors for the functional API, and shared helpers.

A layer follows the Keras contract: ``__init__`` validates and stores its configuration,
``build(input_shape)`` makes the weights, ``call(x, training)`` computes, and
``compute_output_shape`` / ``get_config`` describe it.  Shapes carry the batch dim as None:
``(None, C, H, W)``.

Calling a layer on a :class:`SymbolicTensor` (what ``Input`` returns) records a node of a
graph instead of computing -- that is how ``engine.Model(inputs, outputs)`` is written.
Calling it on a Tensor or ndarray computes at once.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import re
import threading

import numpy as np

from .. import constraints as _constraints
from .. import device as _dev
from .. import regularizers as _regularizers
from .. import functional as F
from ..ops import extra as _E
from ..tensor import Tensor

__all__ = ["Layer", "SymbolicTensor", "ACTIVATIONS", "get_activation", "format_shape",
           "DATA_FORMATS", "check_data_format", "to_channels_first", "to_channels_last"]

_name_counts = {}


def _unique_name(base):
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _snake(name):
    """MaxPooling2D -> max_pooling2d, Conv2D -> conv2d (Keras default names)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", name).lower()


def format_shape(shape):
    """'(None, 20, 24, 24)' style text of a shape."""
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def check_shape_arg(owner, name, shape):
    """A tuple of positive ints (a per-sample shape, batch excluded)."""
    if is_int(shape):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not shape or \
            not all(is_int(s) and s > 0 for s in shape):
        raise ValueError(f"{owner}: {name} must be a non-empty tuple of positive ints (batch "
                         f"dim excluded), received {shape!r}")
    return tuple(int(s) for s in shape)


# -- data formats ---------------------------------------------------------------------

DATA_FORMATS = ("channels_first", "channels_last")


def check_data_format(owner, value):
    """'channels_first' (N, C, *spatial) or 'channels_last' (N, *spatial, C)."""
    if isinstance(value, str) and value.lower() in DATA_FORMATS:
        return value.lower()
    raise ValueError(f"{owner}: data_format must be 'channels_first' or 'channels_last', "
                     f"received {value!r}")


def to_channels_first(x):
    """(N, *spatial, C) -> (N, C, *spatial), a differentiable transpose."""
    return F.transpose(x, (0, x.ndim - 1) + tuple(range(1, x.ndim - 1)))


def to_channels_last(x):
    """(N, C, *spatial) -> (N, *spatial, C), a differentiable transpose."""
    return F.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))


def looks_channels_last(shape):
    """True when a (batch, a, ..., z) shape reads as channels last: few values on the last
    axis (1, 3 or 4: grey, RGB, RGBA) and many on axis 1."""
    return len(shape) >= 3 and shape[-1] in (1, 2, 3, 4) and shape[1] is not None and \
        shape[1] > 4 * shape[-1] and shape[1] > 4


# -- activations ------------------------------------------------------------------------

def _linear(x):
    return x


ACTIVATIONS = {"linear": _linear, "relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh,
               "softmax": F.softmax, "log_softmax": F.log_softmax, "leaky_relu": F.leaky_relu,
               "elu": _E.elu, "selu": _E.selu, "softplus": _E.softplus,
               "softsign": _E.softsign, "gelu": _E.gelu, "swish": _E.swish, "silu": _E.silu,
               "hard_sigmoid": _E.hard_sigmoid, "exponential": _E.exponential,
               "relu6": lambda x: _E.relu_ext(x, max_value=6.0), "mish": _E.mish,
               "hard_silu": _E.hard_silu, "hard_swish": _E.hard_silu,
               "log_sigmoid": _E.log_sigmoid, "hard_tanh": lambda x: _E.clip(x, -1.0, 1.0),
               "tanh_shrink": _E.tanh_shrink}


def get_activation(identifier, owner, argument="activation"):
    """The activation function for a name (None = linear) or a callable Tensor -> Tensor."""
    if identifier is None:
        return _linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in ACTIVATIONS:
        return ACTIVATIONS[identifier]
    raise ValueError(f"{owner}: unknown {argument} {identifier!r}; valid names: "
                     f"{', '.join(ACTIVATIONS)} (or None, or a callable)")


# -- symbolic tensors -------------------------------------------------------------------

class SymbolicTensor:
    """A placeholder for a layer output in a graph under construction.

    Attributes: ``shape`` (batch dim None), ``layer`` (the layer that produced it) and
    ``inputs`` (the SymbolicTensors it was computed from; empty for an Input).
    """

    __slots__ = ("shape", "layer", "inputs")

    def __init__(self, shape, layer, inputs):
        self.shape = tuple(shape)
        self.layer = layer
        self.inputs = tuple(inputs)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<SymbolicTensor shape={format_shape(self.shape)} from {self.layer.name!r}>"


# -- the base class ---------------------------------------------------------------------

class Layer:
    """Base class of every layer.

    Parameters
    ----------
    name : str, optional     unique default derived from the class name ("conv2d", "conv2d_1")
    input_shape : tuple, optional
        Per-sample input shape (batch excluded); lets a Sequential model build at once.
    trainable : bool         False freezes the layer's weights

    Subclasses set ``ndim`` (expected input rank incl. batch, None = any), implement
    ``build``, ``call``, ``compute_output_shape``, and extend ``get_config``.
    """

    ndim = None
    multi_input = False

    def __init__(self, name=None, input_shape=None, trainable=True, kernel_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, bias_constraint=None):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string, "
                             f"received {name!r}")
        if not isinstance(trainable, bool):
            raise TypeError(f"{type(self).__name__}: trainable must be a bool, received "
                            f"{trainable!r}")
        self.name = name or _unique_name(_snake(type(self).__name__))
        self.input_shape_arg = None if input_shape is None else \
            check_shape_arg(self.describe(), "input_shape", input_shape)
        self._trainable = trainable
        self._weights = []            # (name, Tensor, trainable)
        self.built = False
        self.input_shape = None       # what build() saw (batch None)
        self._fixed_axes = {}         # axis -> size the built weights need
        self.output = None            # last SymbolicTensor this layer produced
        # penalties and constraints on the weights named "kernel" / "bias" (Keras arguments)
        owner = type(self).__name__
        self._weight_rules = {
            "kernel": (_regularizers.get(kernel_regularizer, owner),
                       _constraints.get(kernel_constraint, owner)),
            "bias": (_regularizers.get(bias_regularizer, owner),
                     _constraints.get(bias_constraint, owner))}
        self._regularizers = []       # (weight Tensor, regularizer)
        self._constraints = []        # (weight Tensor, constraint)

    # -- description --------------------------------------------------------------------
    def describe(self):
        return f"{type(self).__name__} layer {self.name!r}"

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"

    def _add_weight_rules(self, weight, regularizer, constraint):
        """Penalty and constraint for another weight name (Keras's depthwise_regularizer,
        alpha_constraint, ...); call in __init__, before build."""
        owner = type(self).__name__
        self._weight_rules[weight] = (_regularizers.get(regularizer, owner),
                                      _constraints.get(constraint, owner))

    def get_config(self):
        """The constructor arguments, as a JSON-friendly dict."""
        config = {"name": self.name, "trainable": self._trainable}
        for weight, (reg, con) in getattr(self, "_weight_rules", {}).items():
            key = weight[:-len("_kernel")] if weight.endswith("_kernel") else weight
            if reg is not None:
                config[f"{key}_regularizer"] = _regularizers.serialize(reg)
            if con is not None:
                config[f"{key}_constraint"] = _regularizers.serialize(con)
        return config

    @property
    def losses(self):
        """The regularization penalties of this layer's weights now (scalar Tensors)."""
        return [reg(t) for t, reg in self._regularizers if t.requires_grad]

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # -- weights ------------------------------------------------------------------------
    def add_weight(self, name, shape, initializer, fan_in=None, fan_out=None, trainable=True):
        """Create a float32 weight Tensor (``requires_grad`` when trainable)."""
        _charge_weight(self, name, shape)
        data = np.asarray(initializer(tuple(shape), fan_in, fan_out), dtype=np.float32)
        if data.shape != tuple(shape):
            raise ValueError(f"{self.describe()}: initializer for {name} returned shape "
                             f"{data.shape}, expected {tuple(shape)}")
        t = Tensor(np.ascontiguousarray(data), requires_grad=trainable and self._trainable)
        self._weights.append((name, t, trainable))
        reg, con = self._weight_rules.get(name, (None, None))
        if reg is not None:
            self._regularizers.append((t, reg))
        if con is not None:
            self._constraints.append((t, con))
        return t

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for _, t, tr in self._weights:
            t.requires_grad = tr and self._trainable
            if not t.requires_grad:
                t.grad = None

    @property
    def weights(self):
        return [t for _, t, _ in self._weights]

    @property
    def trainable_weights(self):
        return [t for _, t, tr in self._weights if tr and self._trainable]

    @property
    def non_trainable_weights(self):
        return [t for _, t, tr in self._weights if not (tr and self._trainable)]

    def count_params(self):
        return int(sum(t.data.size for _, t, _ in self._weights))

    def get_weights(self):
        """Copies of the weights as numpy arrays (Dense: [kernel (in, out), bias]), from
        either device."""
        return [np.array(_dev.host(t.data)) for _, t, _ in self._weights]

    @property
    def device(self):
        """"cpu" or "cuda": where the weights live ("cpu" for a layer without weights)."""
        return self._weights[0][1].device if self._weights else "cpu"

    def to(self, device):
        """Move the weights to ``device`` ("cpu" or "cuda") in place: the weight Tensors
        stay the same objects (optimizer state follows them); gradients are dropped.
        Returns the layer.

        Examples
        --------
        >>> from engine.layers import Dense
        >>> Dense(2, input_shape=(3,)).to("cpu").device
        'cpu'
        """
        device = _dev.check_device(self.describe(), device)
        for _, t, _ in self._weights:
            t.data = _dev.move(t.data, device)
            t.grad = None
        return self

    def set_weights(self, weights):
        """Overwrite the weights in place from a list of arrays of the same shapes."""
        weights = list(weights)
        if len(weights) != len(self._weights):
            names = [n for n, _, _ in self._weights]
            raise ValueError(f"{self.describe()}: set_weights expects {len(self._weights)} "
                             f"arrays ({', '.join(names) or 'no weights'}), received "
                             f"{len(weights)}")
        arrays = []
        for (name, t, _), w in zip(self._weights, weights):
            a = np.asarray(w)
            if a.shape != t.data.shape:
                raise ValueError(f"{self.describe()}: weight {name!r} must have shape "
                                 f"{t.data.shape}, received {a.shape}")
            if a.dtype.kind not in "fiu":
                raise TypeError(f"{self.describe()}: weight {name!r} must be numeric, "
                                f"received dtype {a.dtype}")
            arrays.append(a)
        for (_, t, _), a in zip(self._weights, arrays):
            t._version = getattr(t, "_version", 0) + 1   # drops the weight's prepared transforms
            # in place, on the weight's device: optimizer state and views stay attached
            t.data[...] = _dev.array_module(t.data).asarray(a.astype(t.data.dtype, copy=False))

    # -- shapes -------------------------------------------------------------------------
    def build(self, input_shape):
        """Create the weights for ``input_shape`` (batch dim None)."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def receptive_field(self, rf, jump):
        """(rf, jump) of this layer's output given its input's, per spatial dim; None when
        each output sees the whole input.  Default: pointwise (unchanged)."""
        return rf, jump

    def _expected_text(self, ndim):
        dims = ["None"] + ["*"] * (ndim - 1)
        for axis, size in self._fixed_axes.items():
            dims[axis] = str(size)
        return "(" + ", ".join(dims) + ")"

    def check_input_shape(self, shape):
        """Raise ValueError naming this layer, the expected and the received shape."""
        shape = tuple(shape)
        if self.ndim is not None and len(shape) != self.ndim:
            raise ValueError(f"{self.describe()}: expected input of shape "
                             f"{self._expected_text(self.ndim)} ({self.ndim} dims"
                             f"{self._dims_hint()}), received shape {format_shape(shape)}")
        for axis, size in self._fixed_axes.items():
            if len(shape) <= abs(axis) - (axis < 0) or shape[axis] != size:
                raise ValueError(f"{self.describe()}: expected input of shape "
                                 f"{self._expected_text(len(shape))} (axis {axis} of size "
                                 f"{size}, as built), received shape {format_shape(shape)}")

    def _dims_hint(self):
        return ""

    def unbuild(self):
        """Forget the weights and the input shape (a model whose ``add`` of this layer failed
        calls it, so the layer can be added elsewhere)."""
        for name, t, _ in self._weights:
            if getattr(self, name, None) is t:
                setattr(self, name, None)
        self._weights = []
        self._fixed_axes = {}
        self.built = False
        self.input_shape = None
        self.output = None

    def _build_if_needed(self, input_shape):
        if not self.built:
            self.check_input_shape(input_shape)
            try:
                self.build(input_shape)
            except Exception:
                self.unbuild()
                raise
            self.input_shape = input_shape
            self.built = True

    # -- calling --------------------------------------------------------------------------
    def __call__(self, inputs, training=False):
        """Symbolic (graph building) on SymbolicTensors, eager on Tensors or arrays."""
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if self.multi_input != isinstance(inputs, (list, tuple)):
            what = "a list of tensors" if self.multi_input else "a single tensor"
            raise TypeError(f"{self.describe()}: expects {what}, received "
                            f"{type(inputs).__name__}")
        symbolic = [isinstance(t, SymbolicTensor) for t in items]
        if any(symbolic):
            if not all(symbolic):
                raise TypeError(f"{self.describe()}: cannot mix symbolic tensors (from Input) "
                                f"with concrete Tensors/arrays in one call")
            shapes = [t.shape for t in items]
            shape_in = shapes if self.multi_input else shapes[0]
            self._build_if_needed(shape_in)
            self._check_all(shape_in)
            out = SymbolicTensor(self.compute_output_shape(shape_in), self, items)
            self.output = out
            return out
        tensors = [t if isinstance(t, Tensor) else Tensor(np.asarray(t, dtype=np.float32))
                   for t in items]
        shapes = [(None,) + t.shape[1:] for t in tensors]
        shape_in = shapes if self.multi_input else shapes[0]
        self._build_if_needed(shape_in)
        try:
            self._check_all(shape_in)
        except ValueError:
            real = [t.shape for t in tensors]
            self._check_all(real if self.multi_input else real[0])
            raise
        return self.call(tensors if self.multi_input else tensors[0], training=training)

    def _check_all(self, shape_in):
        if self.multi_input:
            for s in shape_in:
                self.check_input_shape(s)
        else:
            self.check_input_shape(shape_in)

    def call(self, x, training=False):
        raise NotImplementedError


_budget = threading.local()


@contextlib.contextmanager
def weight_budget(elements, what):
    """Within the block (this thread), :meth:`Layer.add_weight` refuses, with ValueError and
    before allocating, weights beyond ``elements`` elements in all: load_model builds a
    file's architecture within what the file holds, so a few bytes of JSON describing a huge
    layer cost no memory.  ``what`` names the limit in the message."""
    old = getattr(_budget, "left", None), getattr(_budget, "what", None)
    _budget.left, _budget.what = elements, what
    try:
        yield
    finally:
        _budget.left, _budget.what = old


def _charge_weight(layer, name, shape):
    left = getattr(_budget, "left", None)
    if left is None:
        return
    n = math.prod(int(s) for s in shape)
    if n > left:
        raise ValueError(f"{layer.describe()}: weight {name} of shape {tuple(shape)} "
                         f"({n} elements) exceeds {_budget.what} ({left} elements left)")
    _budget.left = left - n
