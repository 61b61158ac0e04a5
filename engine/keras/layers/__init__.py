"""keras.layers on engine's layers: the same classes with Keras's argument names (Keras 1 and
2 spellings translated, one warning each), Keras's default data format, and Keras 3's weight
layouts in ``get_weights`` / ``set_weights``.

Each class here subclasses the engine layer of the same name (``isinstance(layer,
engine.layers.Conv2D)`` holds) and adds only the boundary: no second implementation.

Data format.  An image layer given ``data_format`` uses it.  Keras 1 names
(``Convolution2D``, ...) and layers given a Keras 1 argument (``border_mode``, ``nb_row``,
``dim_ordering``, ``init``, ...) follow ``backend.image_dim_ordering()`` ("th" by default).
Any other convolution or pooling layer placed right after such a Keras 1 layer (through
layers without a format: Activation, Dropout, BatchNormalization) takes its format -- so a
Keras 1 model's ``MaxPooling2D(pool_size=(2, 2))`` pools the channels-first maps its
Convolution2D makes, as it did in Keras 1; everywhere else it is
``backend.image_data_format()`` (channels_last by default), exactly as Keras 3 decides.
Flatten never inherits (Keras 3's rule: its own data_format, else image_data_format()).

    >>> from engine.keras.layers import Conv2D
    >>> layer = Conv2D(20, kernel_size=5, input_shape=(28, 28, 1))
    >>> layer.data_format
    'channels_last'
"""
from __future__ import annotations

import inspect

import numpy as np

from ... import layers as _el
from .. import _legacy, activations, backend, constraints, initializers, regularizers

__all__ = ["Layer", "InputLayer", "Input", "Conv1D", "Conv2D", "Conv3D", "Convolution1D",
           "Convolution2D", "Convolution3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
           "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "MaxPool1D",
           "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
           "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
           "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D",
           "GlobalMaxPool2D", "GlobalMaxPool3D", "Dense", "Flatten", "Reshape", "Dropout",
           "Activation", "ReLU", "BatchNormalization", "Add", "Concatenate", "add",
           "concatenate", "LAYERS"]

Layer = _el.Layer
_KERAS_EXTRAS = {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                 "kernel_constraint", "bias_constraint", "input_dim", "batch_input_shape",
                 "batch_size", "dtype", "input_length"}
_SKIP_IF_NONE = {"activity_regularizer", "batch_size", "dtype", "input_length"}


def _upstream_format(t):
    """The Keras 1 data format of the nearest image layer upstream of SymbolicTensor ``t``
    (None when that layer is not a Keras 1 one, or there is none)."""
    while t is not None:
        fmt = getattr(t.layer, "_front_format", None)
        if fmt is not None:
            return fmt or None     # False: an image layer of today's Keras stops the search
        if hasattr(t.layer, "data_format") and \
                not isinstance(t.layer, _el.BatchNormalization):
            return None            # an engine image layer
        t = t.inputs[0] if t.inputs else None
    return None


class _Front:
    """The boundary mixed into each engine layer class (see the module docstring)."""

    family = "none"          # the _legacy table of renames
    image = False            # takes data_format
    keras1_name = False      # Convolution2D & co: Keras 1 names follow image_dim_ordering
    _front_format = None

    def __init__(self, *args, **kwargs):
        keras1 = kwargs.pop("_keras1", None)  # the Keras 1 name this layer was made by
        owner = keras1 or type(self).__name__
        if keras1:
            self.keras1_name = True
        args, kwargs, positional_legacy = self._positional(owner, args, kwargs)
        kwargs, legacy = _legacy.translate(owner, self.family, kwargs)
        legacy = legacy or positional_legacy or self.keras1_name
        self._check_arguments(owner, args, kwargs)
        kwargs = self._keras_arguments(owner, kwargs)
        self._format_deferred = False
        if self.image:
            fmt = kwargs.get("data_format")
            if fmt is not None:
                self._front_format = fmt if legacy else False
            elif legacy:
                self._front_format = kwargs["data_format"] = backend.legacy_data_format()
            else:
                kwargs["data_format"] = self._default_format()
                self._format_deferred = True
        super().__init__(*args, **kwargs)

    # -- arguments -----------------------------------------------------------------------
    def _default_format(self):
        return backend.image_data_format()

    def _positional(self, owner, args, kwargs):
        return args, kwargs, False

    @classmethod
    def _valid_arguments(cls):
        names = set()
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is _Front or klass is object:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                    names.add(p.name)
        names -= {"rank"}
        return names | _KERAS_EXTRAS | cls._extra_arguments()

    @classmethod
    def _extra_arguments(cls):
        return set()

    def _check_arguments(self, owner, args, kwargs):
        valid = self._valid_arguments()
        for key in kwargs:
            if key not in valid:
                raise _legacy.unknown_argument(owner, key, valid)

    def _keras_arguments(self, owner, kwargs):
        """Keras-only arguments: regularizers, constraints, initializer objects, input_dim,
        batch_input_shape; what engine's layer takes is returned."""
        self._front_regularizers, self._front_constraints = {}, {}
        for key in list(kwargs):
            if key in _SKIP_IF_NONE and kwargs[key] is None:
                kwargs.pop(key)
            elif key in ("dtype",) and kwargs[key] in ("float32", np.float32):
                kwargs.pop(key)
        for key in ("activity_regularizer", "batch_size", "input_length", "dtype"):
            if key in kwargs:
                raise TypeError(f"{owner}: {key}={kwargs[key]!r} is not supported by convlab "
                                f"(float32 compute, no activity regularizers)")
        if "input_dim" in kwargs:
            dim = kwargs.pop("input_dim")
            if dim is not None:
                kwargs.setdefault("input_shape", (dim,))
        if "batch_input_shape" in kwargs:
            shape = kwargs.pop("batch_input_shape")
            if shape is not None:
                kwargs.setdefault("input_shape", tuple(shape)[1:])
        for key in list(kwargs):
            if key.endswith("_regularizer"):
                reg = regularizers.get(kwargs.pop(key), f"{owner}: {key}")
                if reg is not None:
                    self._front_regularizers[key[:-len("_regularizer")]] = reg
            elif key.endswith("_constraint"):
                con = constraints.get(kwargs.pop(key), f"{owner}: {key}")
                if con is not None:
                    self._front_constraints[key[:-len("_constraint")]] = con
            elif key.endswith("_initializer"):
                kwargs[key] = initializers.get(kwargs[key], f"{owner}: {key}")
            elif key == "activation":
                kwargs[key] = activations.serialize(kwargs[key])
        return kwargs

    # -- data format, decided when the layer is first connected ------------------------------
    def __call__(self, inputs, training=False):
        if self._format_deferred and not self.built:
            first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            inherited = _upstream_format(first) if isinstance(first, _el.SymbolicTensor) \
                else None
            self._set_inherited_format(inherited)
            self._format_deferred = False
        return super().__call__(inputs, training)

    def _set_inherited_format(self, fmt):
        if fmt is not None:
            self.data_format = fmt
        self._front_format = fmt if fmt is not None else False

    def build(self, input_shape):
        """Make the weights for ``input_shape`` (batch dim included, None allowed); as in
        Keras, a layer built by hand is built (calling it does not build it again)."""
        if self.built:
            return
        if self._format_deferred:
            self._set_inherited_format(None)
            self._format_deferred = False
        input_shape = (None,) + tuple(input_shape)[1:]
        super().build(input_shape)
        self.input_shape = input_shape
        self.built = True

    # -- weights in Keras 3's layouts -------------------------------------------------------
    def _to_keras(self, name, a):
        return a

    def _from_keras(self, name, a):
        return a

    def get_weights(self):
        """The weights in Keras 3's layouts (conv kernels (*kernel, in, out))."""
        return [self._to_keras(name, a)
                for (name, _, _), a in zip(self._weights, super().get_weights())]

    def set_weights(self, weights):
        """Set the weights from arrays in Keras 3's layouts."""
        weights = list(weights)
        if len(weights) != len(self._weights):
            return super().set_weights(weights)  # engine's message names the weights
        native = []
        for (name, t, _), w in zip(self._weights, weights):
            a = np.asarray(w)
            want = self._to_keras(name, t.numpy()).shape
            if a.shape != want:
                raise ValueError(f"{self.describe()}: weight {name!r} must have shape {want} "
                                 f"(Keras layout), received {a.shape}")
            native.append(self._from_keras(name, a))
        super().set_weights(native)

    # -- regularizers and constraints (applied by engine.keras models) ----------------------
    def regularization_terms(self):
        """(weight Tensor, regularizer) pairs of this layer."""
        return [(getattr(self, name), reg) for name, reg in self._front_regularizers.items()
                if getattr(self, name, None) is not None]

    def apply_constraints(self):
        """Project the constrained weights (in Keras's layout) in place."""
        for name, con in self._front_constraints.items():
            t = getattr(self, name, None)
            if t is None:
                continue
            projected = self._from_keras(name, con(self._to_keras(name, t.numpy())))
            _set_one(self, t, np.asarray(projected, dtype=np.float32))

    def get_config(self):
        config = super().get_config()
        for key in ("kernel_initializer", "bias_initializer"):
            if key in config:
                config[key] = initializers.serialize(config[key])
        for name, reg in self._front_regularizers.items():
            config[name + "_regularizer"] = regularizers.serialize(reg)
        for name, con in self._front_constraints.items():
            config[name + "_constraint"] = constraints.serialize(con)
        return config

    # -- Keras 1: layer.W / layer.b as Theano shared variables ------------------------------
    @property
    def W(self):
        """Keras 1's kernel variable: ``W.get_value(borrow=True)`` gives (nb_filter, stack,
        rows, cols) for a channels-first ("th") conv layer, (rows, cols, stack, nb_filter)
        for a channels-last ("tf") one, (input_dim, output_dim) for Dense."""
        return _SharedVariable(self, "kernel")

    @property
    def b(self):
        """Keras 1's bias variable (get_value / set_value)."""
        return _SharedVariable(self, "bias")


class _SharedVariable:
    """The part of a Theano shared variable Keras 1 code uses: get_value / set_value."""

    def __init__(self, layer, name):
        if getattr(layer, name, None) is None:
            raise AttributeError(f"{layer.describe()} has no {name} (is it built?)")
        self.layer, self.name = layer, name

    def _theano(self, a):
        fmt = getattr(self.layer, "data_format", "channels_first")
        if self.name == "kernel" and fmt == "channels_last":
            return self.layer._to_keras("kernel", a)
        return a

    def get_value(self, borrow=False):
        return self._theano(getattr(self.layer, self.name).numpy())

    def set_value(self, value):
        t = getattr(self.layer, self.name)
        a = np.asarray(value)
        fmt = getattr(self.layer, "data_format", "channels_first")
        if self.name == "kernel" and fmt == "channels_last":
            a = self.layer._from_keras("kernel", a)
        if a.shape != t.data.shape:
            raise ValueError(f"{self.layer.describe()}: {self.name}.set_value expects shape "
                             f"{self._theano(t.numpy()).shape}, received {np.shape(value)}")
        _set_one(self.layer, t, a)

    @property
    def shape(self):
        return self.get_value().shape


# -- convolution ------------------------------------------------------------------------------

class _FrontConv(_Front):
    family = "conv"
    image = True

    def _positional(self, owner, args, kwargs):
        """Keras 1's Convolution2D(nb_filter, nb_row, nb_col) (and 1-D / 3-D forms)."""
        rank = self.rank_of
        legacy = False
        if "nb_row" in kwargs or "nb_col" in kwargs or "kernel_dim1" in kwargs:
            keys = {1: (), 2: ("nb_row", "nb_col"),
                    3: ("kernel_dim1", "kernel_dim2", "kernel_dim3")}[rank]
            dims = [kwargs.pop(k) for k in keys if k in kwargs]
            if len(dims) != rank:
                raise TypeError(f"{owner}: give all of {', '.join(keys)} or kernel_size=")
            kwargs["kernel_size"] = tuple(dims)
            legacy = True
            _legacy.warn(owner, "/".join(keys), f"kernel_size={tuple(dims)}")
        elif len(args) == rank + 1 and rank > 1:
            dims = tuple(args[1:])
            args = (args[0], dims)
            legacy = True
            _legacy.warn(owner, "positional " + {2: "nb_row, nb_col",
                                                 3: "kernel_dim1, kernel_dim2, kernel_dim3"}
                         [rank], f"kernel_size={dims}")
        if len(args) > 2:
            raise TypeError(f"{owner}: takes filters and kernel_size as positional "
                            f"arguments, received {len(args)} ({args!r})")
        return args, kwargs, legacy

    def _to_keras(self, name, a):
        if name == "kernel":  # (out, in, *k) -> (*k, in, out)
            return a.transpose(tuple(range(2, a.ndim)) + (1, 0))
        return a

    def _from_keras(self, name, a):
        if name == "kernel":  # (*k, in, out) -> (out, in, *k)
            nd = a.ndim
            return np.ascontiguousarray(a.transpose((nd - 1, nd - 2) + tuple(range(nd - 2))))
        return a


_KERNEL_LAYOUT = {1: "(k, in, out)", 2: "(kh, kw, in, out)", 3: "(kd, kh, kw, in, out)"}


def _conv(rank, base):
    doc = (f"keras.layers.{base.__name__} on engine.layers.{base.__name__}: kernel "
           f"{_KERNEL_LAYOUT[rank]} in get_weights.  See the module docstring.")
    return type(base.__name__, (_FrontConv, base),
                {"rank_of": rank, "__module__": __name__, "__doc__": doc})


Conv1D = _conv(1, _el.Conv1D)
Conv2D = _conv(2, _el.Conv2D)
Conv3D = _conv(3, _el.Conv3D)


def _keras1_alias(cls, name):
    def make(*args, **kwargs):
        return cls(*args, _keras1=name, **kwargs)
    make.__name__ = make.__qualname__ = name
    make.__doc__ = (f"Keras 1's {name}: a {cls.__name__} whose data format follows "
                    f"backend.image_dim_ordering() ('th' by default).")
    return make


Convolution1D = _keras1_alias(Conv1D, "Convolution1D")
Convolution2D = _keras1_alias(Conv2D, "Convolution2D")
Convolution3D = _keras1_alias(Conv3D, "Convolution3D")


# -- pooling -------------------------------------------------------------------------------

class _FrontPool(_Front):
    family = "pool"
    image = True


class _FrontAvgPool(_FrontPool):
    """Keras averages over the input values under each window ('same' padding excluded)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("count_include_pad", False)
        super().__init__(*args, **kwargs)


class _FrontGlobalPool(_Front):
    family = "global_pool"
    image = True


def _wrap(base, mixin, doc=None, **attrs):
    return type(base.__name__, (mixin, base),
                {"__module__": __name__, "__doc__": doc or
                 f"keras.layers.{base.__name__} on engine.layers.{base.__name__}.", **attrs})


MaxPooling1D = _wrap(_el.MaxPooling1D, _FrontPool)
MaxPooling2D = _wrap(_el.MaxPooling2D, _FrontPool)
MaxPooling3D = _wrap(_el.MaxPooling3D, _FrontPool)
AveragePooling1D = _wrap(_el.AveragePooling1D, _FrontAvgPool)
AveragePooling2D = _wrap(_el.AveragePooling2D, _FrontAvgPool)
AveragePooling3D = _wrap(_el.AveragePooling3D, _FrontAvgPool)
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalAveragePooling1D = _wrap(_el.GlobalAveragePooling1D, _FrontGlobalPool)
GlobalAveragePooling2D = _wrap(_el.GlobalAveragePooling2D, _FrontGlobalPool)
GlobalAveragePooling3D = _wrap(_el.GlobalAveragePooling3D, _FrontGlobalPool)
GlobalMaxPooling1D = _wrap(_el.GlobalMaxPooling1D, _FrontGlobalPool)
GlobalMaxPooling2D = _wrap(_el.GlobalMaxPooling2D, _FrontGlobalPool)
GlobalMaxPooling3D = _wrap(_el.GlobalMaxPooling3D, _FrontGlobalPool)
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (
    GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D)
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (
    GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D)


# -- core -------------------------------------------------------------------------------

class Dense(_Front, _el.Dense):
    """keras.layers.Dense on engine.layers.Dense (kernel (in, units) in both)."""

    family = "dense"


class Dropout(_Front, _el.Dropout):
    """keras.layers.Dropout(rate, noise_shape=None, seed=None) (Keras 1: p=)."""

    family = "dropout"

    @classmethod
    def _extra_arguments(cls):
        return {"noise_shape"}

    def _keras_arguments(self, owner, kwargs):
        if kwargs.pop("noise_shape", None) is not None:
            raise TypeError(f"{owner}: noise_shape is not supported by convlab")
        return super()._keras_arguments(owner, kwargs)


class Activation(_Front, _el.Activation):
    """keras.layers.Activation(activation)."""


class ReLU(_Front, _el.ReLU):
    """keras.layers.ReLU(negative_slope=0.0)."""


class Reshape(_Front, _el.Reshape):
    """keras.layers.Reshape(target_shape): the values of each sample in their stored order."""


class Flatten(_Front, _el.Flatten):
    """keras.layers.Flatten(data_format=None): data_format, else
    backend.image_data_format().  As in Keras 3, a channels_first Flatten flattens (N, C,
    *spatial) in (*spatial, C) order -- the order of a channels_last model, so the Dense
    kernel that follows is the same in both formats; a channels_last one keeps the stored
    order (which is also what Keras 1 did after "th" layers)."""

    family = "flatten"
    image = True

    def _set_inherited_format(self, fmt):
        self._front_format = None   # never inherits, and lets the search pass through


class BatchNormalization(_Front, _el.BatchNormalization):
    """keras.layers.BatchNormalization(axis=-1, momentum=0.99, epsilon=0.001, center=True,
    scale=True, beta_initializer, gamma_initializer, moving_*_initializer, *_regularizer,
    *_constraint).  Keras's default axis is -1 whatever the data format (on channels-first
    maps it normalises the last spatial axis, as Keras does)."""

    family = "batchnorm"
    _INITS = {"beta_initializer": ("beta", "zeros"), "gamma_initializer": ("gamma", "ones"),
              "moving_mean_initializer": ("moving_mean", "zeros"),
              "moving_variance_initializer": ("moving_variance", "ones")}

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 **kwargs):
        super().__init__(axis=axis, momentum=momentum, epsilon=epsilon, center=center,
                         scale=scale, **kwargs)

    @classmethod
    def _extra_arguments(cls):
        return set(cls._INITS) | {"beta_regularizer", "gamma_regularizer", "beta_constraint",
                                  "gamma_constraint"}

    def _keras_arguments(self, owner, kwargs):
        self._inits = {}
        for key, (_, default) in self._INITS.items():
            value = kwargs.pop(key, None)
            if value is not None and value != default:
                self._inits[key] = initializers.get(value, f"{owner}: {key}")
        axis = kwargs.get("axis")
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise ValueError(f"{owner}: convlab normalises one axis, received "
                                 f"axis={axis!r}")
            kwargs["axis"] = axis[0]
        return super()._keras_arguments(owner, kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        for key, init in self._inits.items():
            t = getattr(self, self._INITS[key][0], None)
            if t is not None:
                value = init(t.data.shape, t.data.size, t.data.size)
                _set_one(self, t, np.asarray(value, dtype=np.float32))

    def get_config(self):
        config = super().get_config()
        for key, init in self._inits.items():
            config[key] = initializers.serialize(init)
        return config


def _set_one(layer, tensor, array):
    """Overwrite one weight of ``layer`` (native layout) from a host array, either device."""
    _el.Layer.set_weights(layer, [array if w is tensor else w.numpy() for w in layer.weights])


class Add(_Front, _el.Add):
    """keras.layers.Add()."""


class Concatenate(_Front, _el.Concatenate):
    """keras.layers.Concatenate(axis=-1)."""


def add(inputs, **kwargs):
    """keras.layers.add([a, b, ...])."""
    return Add(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """keras.layers.concatenate([a, b, ...], axis=-1)."""
    return Concatenate(axis=axis, **kwargs)(inputs)


InputLayer = _el.InputLayer


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None, tensor=None,
          **kwargs):
    """keras.Input(shape) (or batch_shape=(None, ...)): a symbolic input for functional
    models.

    >>> Input((28, 28, 1)).shape
    (None, 28, 28, 1)
    """
    if kwargs:
        raise _legacy.unknown_argument("Input", next(iter(kwargs)),
                                       {"shape", "batch_size", "name", "dtype", "batch_shape"})
    if shape is None and batch_shape is not None:
        shape = tuple(batch_shape)[1:]
    if shape is None:
        raise ValueError("Input: shape (or batch_shape) is required")
    if tensor is not None:
        raise TypeError("Input: tensor= is not supported by convlab")
    if dtype not in (None, "float32", np.float32):
        raise TypeError(f"Input: convlab computes in float32, received dtype={dtype!r}")
    return _el.Input(tuple(shape), name=name)


LAYERS = {cls.__name__: cls for cls in (
    Conv1D, Conv2D, Conv3D, MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D,
    AveragePooling2D, AveragePooling3D, GlobalAveragePooling1D, GlobalAveragePooling2D,
    GlobalAveragePooling3D, GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, Dense,
    Flatten, Reshape, Dropout, Activation, ReLU, BatchNormalization, Add, Concatenate)}
LAYERS["InputLayer"] = InputLayer
# engine layers without a Keras counterpart load as engine's own
for _name, _cls in _el.LAYERS.items():
    LAYERS.setdefault(_name, _cls)


def __getattr__(name):
    """A Keras layer convlab does not have: say so, with what there is."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"engine.keras.layers has no {name!r}: convlab's Keras front offers "
                         f"{', '.join(sorted(n for n in __all__ if n[0].isupper()))}")
