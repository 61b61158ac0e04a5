"""Named convolution shape suites and the shape-spec parser.

A :class:`Case` is one convolution problem: x (N, C, *spatial), w (C_out, C/groups, *kernel)
and its stride / padding / dilation / groups, under a name a person can read
("resnet3x3-64c-56px").  The CLI and the pytest-benchmark files use the same suites::

    >>> from bench.suites import get_suite, parse_spec
    >>> [c.name for c in get_suite("quick")][:2]
    ['lenet5x5-1c-28px', 'resnet3x3-32c-28px']
    >>> parse_spec("8,128,28,28:128,3,3:stride=1,padding=1").w_shape
    (128, 128, 3, 3)

A shape spec is ``X:W[:OPTIONS]``: X is N,C,spatial... (1-3 spatial dims); W is
C_out,kernel... (C_in/groups is derived from X and groups) or the full
C_out,C_in/groups,kernel...; OPTIONS are ``key=value`` items separated by ``,`` or ``:``
with keys stride, padding, dilation, groups.  A value is an int, a comma tuple with one
entry per spatial dim (``stride=1,2``), and for padding also ``same`` or ``valid``.
"""
from __future__ import annotations

from dataclasses import dataclass

import kernels

__all__ = ["Case", "parse_spec", "get_suite", "SUITE_NAMES", "SWEEP_SUITES", "suite_names",
           "sweep_axes", "model_cases"]

_OPTIONS = ("stride", "padding", "dilation", "groups")


@dataclass(frozen=True)
class Case:
    """One convolution problem of a suite.

    Attributes
    ----------
    name : str
        Readable name, e.g. ``"resnet3x3-64c-56px"``.
    x_shape : tuple
        (N, C, *spatial), 1 to 3 spatial dims.
    w_shape : tuple
        (C_out, C / groups, *kernel).
    stride, padding, dilation, groups :
        As accepted by :func:`kernels.conv` (ints, tuples, "same", "valid").
    """
    name: str
    x_shape: tuple
    w_shape: tuple
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1

    def conv_kwargs(self):
        """stride/padding/dilation/groups as keyword arguments of :func:`kernels.conv`."""
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": self.groups}

    def params(self):
        """The validated :class:`kernels.ConvParams` (raises ValueError when invalid)."""
        return kernels.conv_params(self.x_shape, self.w_shape, op=f"case {self.name!r}",
                                   **self.conv_kwargs())

    @property
    def ndim(self):
        return len(self.x_shape) - 2

    @property
    def out_shape(self):
        return self.params().out_shape(self.x_shape, self.w_shape)

    @property
    def flops(self):
        """2 x multiply-adds of the direct algorithm (also used for both gradients)."""
        return kernels.conv_flops(self.x_shape, self.w_shape, **self.conv_kwargs())

    def spec(self):
        """The canonical shape spec, which :func:`parse_spec` turns back into this case."""
        def fmt(v):
            return ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
        parts = [fmt(self.x_shape), fmt((self.w_shape[0],) + tuple(self.w_shape[2:]))]
        opts = [f"{k}={fmt(getattr(self, k))}" for k in _OPTIONS
                if getattr(self, k) != Case.__dataclass_fields__[k].default]
        return ":".join(parts + opts)


# --------------------------------------------------------------------------------------
# the spec parser
# --------------------------------------------------------------------------------------

def _ints(text, what, spec):
    try:
        vals = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise ValueError(f"bad shape spec {spec!r}: {what} must be comma-separated ints, "
                         f"received {text!r}") from None
    if any(v < 1 for v in vals):
        raise ValueError(f"bad shape spec {spec!r}: {what} sizes must be >= 1, received "
                         f"{text!r}")
    return vals


def _option_items(parts, spec):
    """[(key, [value tokens])] from the OPTIONS parts; a token without '=' continues a tuple."""
    items = []
    if not parts:
        return items
    for tok in ",".join(parts).split(","):
        tok = tok.strip()
        if not tok:
            raise ValueError(f"bad shape spec {spec!r}: empty option")
        if "=" in tok:
            key, val = (s.strip() for s in tok.split("=", 1))
            if key not in _OPTIONS:
                raise ValueError(f"bad shape spec {spec!r}: unknown option {key!r}, expected "
                                 f"one of {', '.join(_OPTIONS)}")
            if any(k == key for k, _ in items):
                raise ValueError(f"bad shape spec {spec!r}: option {key!r} given twice")
            items.append((key, [val]))
        elif items:
            items[-1][1].append(tok)
        else:
            raise ValueError(f"bad shape spec {spec!r}: expected key=value, received {tok!r}")
    return items


def _option_value(key, tokens, ndim, spec):
    if key == "padding" and len(tokens) == 1 and tokens[0].lower() in ("same", "valid"):
        return tokens[0].lower()
    try:
        vals = tuple(int(t) for t in tokens)
    except ValueError:
        also = ", 'same' or 'valid'" if key == "padding" else ""
        raise ValueError(f"bad shape spec {spec!r}: {key} must be an int or {ndim} "
                         f"comma-separated ints{also}, received {','.join(tokens)!r}") from None
    if key == "groups":
        if len(vals) != 1:
            raise ValueError(f"bad shape spec {spec!r}: groups must be one int, received "
                             f"{','.join(tokens)!r}")
        return vals[0]
    if len(vals) not in (1, ndim):
        raise ValueError(f"bad shape spec {spec!r}: {key} must have 1 or {ndim} entries for "
                         f"{ndim}-D input, received {','.join(tokens)!r}")
    return vals[0] if len(vals) == 1 else vals


def parse_spec(spec, name=None):
    """Parse a shape spec such as ``"8,128,28,28:128,3,3:stride=1,padding=1"``.

    Parameters
    ----------
    spec : str
        ``X:W[:OPTIONS]`` as described in the module docstring.
    name : str, optional
        The case name; defaults to the spec itself.

    Returns
    -------
    Case

    Raises
    ------
    ValueError
        With a one-line reason, for any malformed or inconsistent spec.

    Examples
    --------
    >>> c = parse_spec("1,4,100:8,9:padding=same,dilation=2")
    >>> c.w_shape, c.padding, c.dilation
    ((8, 4, 9), 'same', 2)
    """
    if not isinstance(spec, str):
        raise ValueError(f"bad shape spec {spec!r}: expected a string like "
                         f"'8,128,28,28:128,3,3:stride=1,padding=1'")
    text = "".join(spec.split())
    parts = text.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"bad shape spec {spec!r}: expected X:W[:options], e.g. "
                         f"'8,128,28,28:128,3,3:stride=1,padding=1'")
    x_shape = _ints(parts[0], "X (N,C,spatial...)", spec)
    if len(x_shape) not in (3, 4, 5):
        raise ValueError(f"bad shape spec {spec!r}: X must be N,C plus 1-3 spatial sizes, "
                         f"received {len(x_shape)} entries")
    ndim = len(x_shape) - 2
    w_given = _ints(parts[1], "W (C_out,kernel...)", spec)
    opts = {k: _option_value(k, v, ndim, spec) for k, v in _option_items(parts[2:], spec)}
    groups = opts.get("groups", 1)
    if groups < 1 or x_shape[1] % groups:
        raise ValueError(f"bad shape spec {spec!r}: groups={groups} must divide the "
                         f"{x_shape[1]} input channels")
    if len(w_given) == ndim + 1:
        w_shape = (w_given[0], x_shape[1] // groups) + w_given[1:]
    elif len(w_given) == ndim + 2:
        w_shape = w_given
    else:
        raise ValueError(f"bad shape spec {spec!r}: W must be C_out plus {ndim} kernel sizes "
                         f"(or C_out,C_in/groups plus {ndim} kernel sizes), received "
                         f"{len(w_given)} entries")
    case = Case(name or text, x_shape, w_shape, **opts)
    try:
        case.params()
    except (ValueError, TypeError) as e:
        raise ValueError(f"bad shape spec {spec!r}: {e}") from None
    return case


# --------------------------------------------------------------------------------------
# suites
# --------------------------------------------------------------------------------------

def _c(name, x, w, **kw):
    return Case(name, tuple(x), tuple(w), **kw)


_QUICK = (
    _c("lenet5x5-1c-28px", (16, 1, 28, 28), (20, 1, 5, 5)),
    _c("resnet3x3-32c-28px", (4, 32, 28, 28), (32, 32, 3, 3), padding=1),
    _c("strided3x3-s2-32c-28px", (4, 32, 28, 28), (64, 32, 3, 3), stride=2, padding=1),
    _c("depthwise3x3-64c-28px", (4, 64, 28, 28), (64, 1, 3, 3), padding=1, groups=64),
    _c("blur15x15-1c-128px", (1, 1, 128, 128), (1, 1, 15, 15), padding="same"),
    _c("spectrum1d-k33-8c-2048", (4, 8, 2048), (16, 8, 33), padding="same"),
)

_3X3 = (
    _c("resnet3x3-64c-56px", (4, 64, 56, 56), (64, 64, 3, 3), padding=1),
    _c("resnet3x3-128c-28px", (8, 128, 28, 28), (128, 128, 3, 3), padding=1),
    _c("resnet3x3-256c-14px", (8, 256, 14, 14), (256, 256, 3, 3), padding=1),
    _c("resnet3x3-512c-7px", (8, 512, 7, 7), (512, 512, 3, 3), padding=1),
    _c("vgg3x3-3c-224px", (1, 3, 224, 224), (64, 3, 3, 3), padding=1),
    _c("vgg3x3-64c-112px", (1, 64, 112, 112), (128, 64, 3, 3), padding=1),
    _c("cifar3x3-16c-32px", (32, 16, 32, 32), (16, 16, 3, 3), padding=1),
)

_LARGE = (
    _c("stem7x7-s2-3c-224px", (1, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3),
    _c("large7x7-32c-56px", (2, 32, 56, 56), (32, 32, 7, 7), padding=3),
    _c("large9x9-16c-64px", (2, 16, 64, 64), (16, 16, 9, 9), padding=4),
    _c("large11x11-8c-128px", (1, 8, 128, 128), (8, 8, 11, 11), padding=5),
    _c("gauss15x15-1c-256px", (1, 1, 256, 256), (1, 1, 15, 15), padding="same"),
    _c("blur21x21-1c-256px", (1, 1, 256, 256), (1, 1, 21, 21), padding="same"),
    _c("blur31x31-1c-512px", (1, 1, 512, 512), (1, 1, 31, 31), padding="same"),
    _c("filterbank31x31-1c-128px", (4, 1, 128, 128), (16, 1, 31, 31), padding="same"),
)

_1D = (
    _c("spectrum-k9-1c-4096", (16, 1, 4096), (16, 1, 9), padding="same"),
    _c("spectrum-k65-16c-8192", (4, 16, 8192), (16, 16, 65), padding="same"),
    _c("spectrum-k255-1c-16384", (4, 1, 16384), (8, 1, 255), padding="same"),
    _c("audio-k31-32c-2048", (8, 32, 2048), (32, 32, 31), padding="same"),
    _c("tcn-k3-d8-64c-1024", (8, 64, 1024), (64, 64, 3), padding="same", dilation=8),
    _c("signal1d-k5-16c-128", (32, 16, 128), (32, 16, 5)),
)

_3D = (
    _c("volume3x3x3-16c-32vox", (2, 16, 32, 32, 32), (16, 16, 3, 3, 3), padding=1),
    _c("volume5x5x5-8c-32vox", (1, 8, 32, 32, 32), (8, 8, 5, 5, 5), padding=2),
    _c("video3x3x3-32c-8x56px", (1, 32, 8, 56, 56), (32, 32, 3, 3, 3), padding=1),
    _c("ct3x3x3-1c-64vox", (1, 1, 64, 64, 64), (8, 1, 3, 3, 3), padding=1),
    _c("volume3x3x3-s2-16c-32vox", (2, 16, 32, 32, 32), (32, 16, 3, 3, 3), stride=2,
       padding=1),
)

_STRIDED = (
    _c("downsample3x3-s2-64c-56px", (4, 64, 56, 56), (128, 64, 3, 3), stride=2, padding=1),
    _c("projection1x1-s2-64c-56px", (4, 64, 56, 56), (128, 64, 1, 1), stride=2),
    _c("stem7x7-s2-3c-224px", (1, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3),
    _c("dcgan4x4-s2-64c-32px", (8, 64, 32, 32), (128, 64, 4, 4), stride=2, padding=1),
    _c("alexnet11x11-s4-3c-224px", (1, 3, 224, 224), (64, 3, 11, 11), stride=4, padding=2),
    _c("strided1d-k5-s2-32c-2048", (8, 32, 2048), (64, 32, 5), stride=2, padding=2),
)

_DEPTHWISE = (
    _c("mobilenet-dw3x3-32c-112px", (1, 32, 112, 112), (32, 1, 3, 3), padding=1, groups=32),
    _c("mobilenet-dw3x3-256c-14px", (8, 256, 14, 14), (256, 1, 3, 3), padding=1, groups=256),
    _c("effnet-dw5x5-120c-28px", (4, 120, 28, 28), (120, 1, 5, 5), padding=2, groups=120),
    _c("dw3x3-s2-64c-56px", (4, 64, 56, 56), (64, 1, 3, 3), stride=2, padding=1, groups=64),
    _c("resnext3x3-g32-128c-28px", (4, 128, 28, 28), (128, 4, 3, 3), padding=1, groups=32),
    _c("dw1d-k15-64c-1024", (8, 64, 1024), (64, 1, 15), padding="same", groups=64),
)

# The course's LeNet-like net on MNIST (batch 32) and the small nets on 8x8 digits.
_MNIST = (
    _c("mnist-conv1-5x5-1c-28px", (32, 1, 28, 28), (20, 1, 5, 5)),
    _c("mnist-conv2-5x5-20c-24px", (32, 20, 24, 24), (40, 20, 5, 5)),
    _c("mnist-pooled-5x5-20c-12px", (32, 20, 12, 12), (50, 20, 5, 5)),
    _c("digits-conv1-3x3-1c-8px", (32, 1, 8, 8), (16, 1, 3, 3), padding=1),
    _c("digits-conv2-3x3-16c-8px", (32, 16, 8, 8), (32, 16, 3, 3), padding=1),
)

_DEFAULT = (
    _3X3[0], _3X3[1], _3X3[2], _3X3[4],
    _LARGE[0], _LARGE[2], _LARGE[4], _LARGE[6],
    _1D[1], _1D[4],
    _3D[0],
    _STRIDED[0], _STRIDED[1],
    _DEPTHWISE[1], _DEPTHWISE[4],
    _MNIST[1],
)

# The kinds of layer issue 11 names, where auto was furthest behind PyTorch CPU: 5x5 with
# 64-192 channels, dilated 3x3, 3-D 3x3x3 16 -> 32, strided 1x1 projections, depthwise,
# AlexNet / VGG / U-Net-like layers and 1-D spectra.  Sized so one pass takes 1-40 ms here.
_KINDS = (
    _c("alexnet-conv2-5x5-64c-27px", (4, 64, 27, 27), (192, 64, 5, 5), padding=2),
    _c("inception5x5-96c-28px", (4, 96, 28, 28), (128, 96, 5, 5), padding=2),
    _c("dilated3x3-d2-64c-56px", (4, 64, 56, 56), (64, 64, 3, 3), padding=2, dilation=2),
    _c("dilated3x3-d4-128c-28px", (4, 128, 28, 28), (128, 128, 3, 3), padding=4,
       dilation=4),
    _c("dilated3x3-d2-16c-64px", (8, 16, 64, 64), (16, 16, 3, 3), padding=2, dilation=2),
    _c("volume3x3x3-16to32c-32vox", (2, 16, 32, 32, 32), (32, 16, 3, 3, 3), padding=1),
    _c("unet3d3x3x3-32to64c-16vox", (2, 32, 16, 16, 16), (64, 32, 3, 3, 3), padding=1),
    _c("projection1x1-s2-256c-28px", (4, 256, 28, 28), (512, 256, 1, 1), stride=2),
    _c("projection1x1-s2-128c-56px", (4, 128, 56, 56), (256, 128, 1, 1), stride=2),
    _c("pointwise1x1-128c-28px", (4, 128, 28, 28), (256, 128, 1, 1)),
    _c("mobilenet-dw3x3-s2-128c-56px", (4, 128, 56, 56), (128, 1, 3, 3), stride=2, padding=1,
       groups=128),
    _c("convnext-dw7x7-96c-56px", (2, 96, 56, 56), (96, 1, 7, 7), padding=3, groups=96),
    _c("alexnet11x11-s4-3c-224px", (1, 3, 224, 224), (64, 3, 11, 11), stride=4, padding=2),
    _c("alexnet-conv3-3x3-192c-13px", (8, 192, 13, 13), (384, 192, 3, 3), padding=1),
    _c("vgg3x3-128c-56px", (1, 128, 56, 56), (256, 128, 3, 3), padding=1),
    _c("unet3x3-1c-128px", (2, 1, 128, 128), (64, 1, 3, 3), padding=1),
    _c("unet3x3-64c-128px", (1, 64, 128, 128), (64, 64, 3, 3), padding=1),
    _c("unet3x3-256c-32px", (1, 256, 32, 32), (256, 256, 3, 3), padding=1),
    _c("spectrum-k127-1c-16384", (4, 1, 16384), (16, 1, 127), padding="same"),
    _c("spectrum-k31-16c-4096", (8, 16, 4096), (32, 16, 31), padding="same"),
    _c("wavenet-k2-d16-64c-4096", (4, 64, 4096), (64, 64, 2), dilation=16),
)

# Crossover sweep: square kernels x square images, 8 -> 8 channels, "same" padding.
_SWEEP_KERNELS = (3, 5, 7, 11, 15, 21)
_SWEEP_SIZES = (16, 32, 64, 128)
_SWEEP = tuple(
    _c(f"sweep-k{k}-{s}px", (2, 8, s, s), (8, 8, k, k), padding="same")
    for s in _SWEEP_SIZES for k in _SWEEP_KERNELS)

_SUITES = {
    "quick": _QUICK,
    "default": _DEFAULT,
    "3x3": _3X3,
    "large-kernels": _LARGE,
    "1d": _1D,
    "3d": _3D,
    "strided": _STRIDED,
    "depthwise": _DEPTHWISE,
    "mnist": _MNIST,
    "kinds": _KINDS,
    "sweep": _SWEEP,
}
SUITE_NAMES = tuple(_SUITES)
SWEEP_SUITES = ("sweep",)


def suite_names():
    """The names of the built-in suites, in a stable order."""
    return SUITE_NAMES


def get_suite(name):
    """The cases of suite ``name`` (a tuple of :class:`Case`).

    Raises ValueError naming the valid suites for an unknown name.
    """
    if name not in _SUITES:
        raise ValueError(f"unknown suite {name!r}; valid suites: {', '.join(SUITE_NAMES)}")
    return _SUITES[name]


def sweep_axes(cases):
    """(kernel sizes, image sizes) when ``cases`` form a square 2-D sweep grid, else None.

    A sweep grid has one case per (kernel, image) pair, all with square 2-D kernels and
    images; the crossover map of :mod:`bench.report` is drawn over it.
    """
    pairs = set()
    for c in cases:
        if c.ndim != 2 or c.x_shape[2] != c.x_shape[3] or c.w_shape[2] != c.w_shape[3]:
            return None
        pairs.add((c.w_shape[2], c.x_shape[2]))
    ks = sorted({k for k, _ in pairs})
    ss = sorted({s for _, s in pairs})
    if len(ks) < 2 or len(ss) < 2 or len(pairs) != len(ks) * len(ss) or \
            len(pairs) != len(cases):
        return None
    return ks, ss


def model_cases(model, batch_size=32, input_shape=None):
    """The distinct convolutions of a zoo model's conv layers, as cases (needs engine).

    Parameters
    ----------
    model : str
        A name of ``engine.zoo.MODEL_NAMES`` ("mnist", "small_cnn", ...).
    batch_size : int
        N of every case.
    input_shape : tuple, optional
        Per-sample input shape (default: the model's usual input).

    Returns
    -------
    list of Case named ``"<model>-<layer>"``, one per distinct shape and parameters.
    """
    import engine.zoo
    from engine.layers.conv import BaseConv
    net = engine.zoo.get_model(model, input_shape)
    cases, seen = [], set()
    for layer in net.layers:
        if not isinstance(layer, BaseConv):
            continue
        x_shape = (batch_size,) + tuple(layer.input_shape[1:])
        case = Case(f"{model}-{layer.name}", x_shape, layer.kernel_shape(x_shape[1]),
                    stride=layer.strides, padding=layer.padding, dilation=layer.dilation_rate,
                    groups=layer.groups)
        key = (case.x_shape, case.w_shape, repr(case.params()))
        if key not in seen:
            seen.add(key)
            cases.append(case)
    return cases
