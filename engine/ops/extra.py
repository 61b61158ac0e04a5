"""More differentiable ops: the Keras activations, element-wise helpers of the losses, the
reshaping ops of UpSampling / RepeatVector, and transposed convolution.

Each op writes its math once against ``xp`` (:func:`engine.device.array_module`), with its
shape rule, forward and backward side by side.  The unary ops keep what their derivative needs
(the input, or the output where the derivative is written in terms of it).

    >>> import numpy as np
    >>> from engine.tensor import Tensor
    >>> elu(Tensor([-1.0, 2.0], dtype=np.float64)).numpy().round(4).tolist()
    [-0.6321, 2.0]
"""
from __future__ import annotations

import math
import numbers

import numpy as np

import kernels
from kernels.params import conv_params

from ..autograd import record, unbroadcast
from ..device import array_module, same_device
from ..tensor import Tensor, as_tensor
from .activation import expit
from .conv import prepared_weights
from .elementwise import _broadcast, _pair

__all__ = ["elu", "selu", "softplus", "softsign", "gelu", "swish", "silu", "hard_sigmoid",
           "exponential", "relu_ext", "mish", "hard_silu",
           "log_sigmoid", "tanh_shrink", "prelu", "abs", "log1p", "log_cosh", "clip",
           "maximum", "minimum", "square", "upsample", "repeat_vector", "conv_transpose",
           "transpose_output_shape", "SELU_ALPHA", "SELU_SCALE"]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _real(op, name, v):
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        raise TypeError(f"{op}: {name} must be a real number, received {v!r}")
    return float(v)


def _unary(op, x, fwd, grad):
    """y = fwd(xp, x); dy/dx = grad(xp, x, y) (element-wise)."""
    x = as_tensor(x)
    xp = array_module(x)
    y = fwd(xp, x.data)
    return record(Tensor._result(y), op, (x,), lambda g: (g * grad(xp, x.data, y),))


def _c(x, v):
    """A Python number in the dtype of array ``x`` (float32 stays float32)."""
    return x.dtype.type(v)


# -- activations ----------------------------------------------------------------------------

def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise.

    >>> elu(Tensor([0.0, 1.0])).numpy().tolist()
    [0.0, 1.0]
    """
    a = _real("elu", "alpha", alpha)
    return _unary("elu", x,
                  lambda xp, d: xp.where(d > 0, d, _c(d, a) * (xp.exp(xp.minimum(d, 0)) - 1)),
                  lambda xp, d, y: xp.where(d > 0, _c(d, 1), y + _c(d, a)))


def selu(x):
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al.

    >>> round(float(selu(Tensor([1.0])).numpy()[0]), 6)
    1.050701
    """
    a, s = SELU_ALPHA, SELU_SCALE
    return _unary("selu", x,
                  lambda xp, d: _c(d, s) * xp.where(d > 0, d,
                                                    _c(d, a) * (xp.exp(xp.minimum(d, 0)) - 1)),
                  lambda xp, d, y: xp.where(d > 0, _c(d, s), y + _c(d, s * a)))


def softplus(x):
    """log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|)) (no overflow).

    >>> round(float(softplus(Tensor([0.0])).numpy()[0]), 6)
    0.693147
    """
    return _unary("softplus", x,
                  lambda xp, d: xp.maximum(d, 0) + xp.log1p(xp.exp(-xp.abs(d))),
                  lambda xp, d, y: expit(d))


def softsign(x):
    """x / (1 + |x|).

    >>> softsign(Tensor([1.0])).numpy().tolist()
    [0.5]
    """
    return _unary("softsign", x, lambda xp, d: d / (1 + xp.abs(d)),
                  lambda xp, d, y: 1 / (1 + xp.abs(d)) ** 2)


def _erf(xp, z):
    # scipy.special.erf on the CPU; on a device namespace without erf, the namespace's own
    erf = getattr(xp, "erf", None)
    if erf is None:
        from scipy.special import erf
    return erf(z)


def gelu(x, approximate=False):
    """x * Phi(x) (exact, with erf) or its tanh approximation (``approximate=True``), as Keras.

    >>> round(float(gelu(Tensor([1.0])).numpy()[0]), 6)
    0.841345
    """
    if not isinstance(approximate, bool):
        raise TypeError(f"gelu: approximate must be a bool, received {approximate!r}")
    if approximate:
        k = math.sqrt(2 / math.pi)

        def fwd(xp, d):
            return 0.5 * d * (1 + xp.tanh(_c(d, k) * (d + _c(d, 0.044715) * d ** 3)))

        def grad(xp, d, y):
            t = xp.tanh(_c(d, k) * (d + _c(d, 0.044715) * d ** 3))
            return 0.5 * (1 + t) + 0.5 * d * (1 - t * t) * _c(d, k) * (
                1 + _c(d, 3 * 0.044715) * d * d)
        return _unary("gelu", x, fwd, grad)
    r2 = math.sqrt(2.0)
    c = 1 / math.sqrt(2 * math.pi)
    return _unary("gelu", x,
                  lambda xp, d: 0.5 * d * (1 + _erf(xp, d / _c(d, r2))),
                  lambda xp, d, y: 0.5 * (1 + _erf(xp, d / _c(d, r2))) +
                  d * _c(d, c) * xp.exp(-0.5 * d * d))


def swish(x):
    """x * sigmoid(x) (also called silu).

    >>> round(float(swish(Tensor([1.0])).numpy()[0]), 6)
    0.731059
    """
    def grad(xp, d, y):
        s = expit(d)
        return s * (1 + d * (1 - s))
    return _unary("swish", x, lambda xp, d: d * expit(d), grad)


silu = swish


def hard_sigmoid(x):
    """relu6(x + 3) / 6 (Keras 3's definition: 0 below -3, 1 above 3, x/6 + 1/2 between).

    >>> hard_sigmoid(Tensor([-4.0, 0.0, 4.0])).numpy().tolist()
    [0.0, 0.5, 1.0]
    """
    return _unary("hard_sigmoid", x, lambda xp, d: xp.clip(d / 6 + 0.5, 0, 1),
                  lambda xp, d, y: ((d > -3) & (d < 3)) * _c(d, 1 / 6))


def exponential(x):
    """exp(x).

    >>> exponential(Tensor([0.0])).numpy().tolist()
    [1.0]
    """
    return _unary("exponential", x, lambda xp, d: xp.exp(d), lambda xp, d, y: y)


def relu_ext(x, max_value=None, negative_slope=0.0, threshold=0.0):
    """Keras's ReLU: x for threshold <= x < max_value, max_value above it,
    negative_slope * (x - threshold) below the threshold.

    >>> relu_ext(Tensor([-1.0, 0.5, 9.0]), max_value=6.0, negative_slope=0.5).numpy().tolist()
    [-0.5, 0.5, 6.0]
    """
    ns = _real("relu", "negative_slope", negative_slope)
    th = _real("relu", "threshold", threshold)
    mv = None if max_value is None else _real("relu", "max_value", max_value)
    if ns < 0 or (mv is not None and mv < 0):
        raise ValueError(f"relu: negative_slope and max_value must be >= 0, received "
                         f"negative_slope={negative_slope!r}, max_value={max_value!r}")

    def fwd(xp, d):
        y = xp.where(d >= _c(d, th), d, _c(d, ns) * (d - _c(d, th))) + _c(d, 0)  # no -0.0
        return y if mv is None else xp.minimum(y, _c(d, mv))

    def grad(xp, d, y):
        g = xp.where(d >= _c(d, th), _c(d, 1), _c(d, ns))
        return g if mv is None else g * (d < _c(d, mv))
    return _unary("relu", x, fwd, grad)


def prelu(x, alpha):
    """x for x > 0, alpha * x otherwise; ``alpha`` a Tensor broadcast against x (learned).

    >>> prelu(Tensor([[-2.0, 3.0]]), Tensor([0.5, 0.5])).numpy().tolist()
    [[-1.0, 3.0]]
    """
    x, alpha = _pair(x, alpha, "prelu")
    xp = array_module(x, alpha)
    pos = x.data > 0
    y = _broadcast("prelu", lambda a, b: xp.where(pos, a, a * b), x, alpha)

    def backward(g):
        gx = xp.where(pos, g, g * alpha.data) if x.requires_grad else None
        ga = unbroadcast(xp.where(pos, 0, g * x.data), alpha.shape) \
            if alpha.requires_grad else None
        return gx, ga
    return record(Tensor._result(y), "prelu", (x, alpha), backward)


def mish(x):
    """x * tanh(softplus(x)) (composed: its gradient comes from the tape).

    >>> round(float(mish(Tensor([1.0])).numpy()[0]), 4)
    0.8651
    """
    from .activation import tanh
    from .elementwise import mul
    x = as_tensor(x)
    return mul(x, tanh(softplus(x)))


def hard_silu(x):
    """x * hard_sigmoid(x) (also called hard_swish).

    >>> hard_silu(Tensor([3.0, -3.0])).numpy().tolist()
    [3.0, -0.0]
    """
    from .elementwise import mul
    x = as_tensor(x)
    return mul(x, hard_sigmoid(x))


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|.

    >>> round(float(log_sigmoid(Tensor([0.0])).numpy()[0]), 6)
    -0.693147
    """
    from .elementwise import neg
    return neg(softplus(neg(as_tensor(x))))


def tanh_shrink(x):
    """x - tanh(x).

    >>> tanh_shrink(Tensor([0.0])).numpy().tolist()
    [0.0]
    """
    from .activation import tanh
    from .elementwise import sub
    x = as_tensor(x)
    return sub(x, tanh(x))


# -- element-wise helpers (losses) -----------------------------------------------------------

def abs(x):  # noqa: A001 - numpy's name
    """|x| (gradient sign(x), 0 at 0).

    >>> abs(Tensor([-2.0, 3.0])).numpy().tolist()
    [2.0, 3.0]
    """
    return _unary("abs", x, lambda xp, d: xp.abs(d), lambda xp, d, y: xp.sign(d))


def square(x):
    """x ** 2.

    >>> square(Tensor([3.0])).numpy().tolist()
    [9.0]
    """
    return _unary("square", x, lambda xp, d: d * d, lambda xp, d, y: 2 * d)


def log1p(x):
    """log(1 + x), accurate near 0.

    >>> log1p(Tensor([0.0])).numpy().tolist()
    [0.0]
    """
    return _unary("log1p", x, lambda xp, d: xp.log1p(d), lambda xp, d, y: 1 / (1 + d))


def log_cosh(x):
    """log(cosh(x)) = x + softplus(-2x) - log 2, without overflow; gradient tanh(x).

    >>> round(float(log_cosh(Tensor([1.0])).numpy()[0]), 6)
    0.433781
    """
    def fwd(xp, d):
        z = -2 * d
        return d + xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z))) - _c(d, math.log(2.0))
    return _unary("log_cosh", x, fwd, lambda xp, d, y: xp.tanh(d))


def clip(x, lo, hi):
    """x limited to [lo, hi]; the gradient passes where lo <= x <= hi (as Keras's clip).

    >>> clip(Tensor([-1.0, 0.5, 2.0]), 0.0, 1.0).numpy().tolist()
    [0.0, 0.5, 1.0]
    """
    lo, hi = _real("clip", "lo", lo), _real("clip", "hi", hi)
    return _unary("clip", x, lambda xp, d: xp.clip(d, _c(d, lo), _c(d, hi)),
                  lambda xp, d, y: (d >= _c(d, lo)) & (d <= _c(d, hi)))


def _operand(t):
    """A Tensor's data, or the Python number of a 0-d constant (a number met a Tensor): it
    then combines with arrays of either device."""
    d = t.data
    return d.item() if isinstance(d, np.ndarray) and d.ndim == 0 and not t.requires_grad \
        else d


def _select(op, a, b, pick_a):
    a, b = _pair(a, b, op)
    xp = array_module(a, b)
    pa, pb = _operand(a), _operand(b)
    try:
        y = xp.where(pick_a(pa, pb), pa, pb)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast "
                         f"together") from None

    def backward(g):
        take = pick_a(pa, pb)
        return (unbroadcast(xp.where(take, g, 0), a.shape) if a.requires_grad else None,
                unbroadcast(xp.where(take, 0, g), b.shape) if b.requires_grad else None)
    return record(Tensor._result(y), op, (a, b), backward)


def maximum(a, b):
    """Element-wise max with broadcasting (ties send the gradient to ``a``).

    >>> maximum(Tensor([1.0, 5.0]), Tensor([3.0, 2.0])).numpy().tolist()
    [3.0, 5.0]
    """
    return _select("maximum", a, b, lambda p, q: p >= q)


def minimum(a, b):
    """Element-wise min with broadcasting (ties send the gradient to ``a``).

    >>> minimum(Tensor([1.0, 5.0]), Tensor([3.0, 2.0])).numpy().tolist()
    [1.0, 2.0]
    """
    return _select("minimum", a, b, lambda p, q: p <= q)


# -- reshaping -------------------------------------------------------------------------------

def upsample(x, size):
    """Nearest-neighbour upsampling of the spatial dims of (N, C, *spatial): each value
    repeated ``size[i]`` times along spatial dim i; the gradient sums each block.

    >>> upsample(Tensor(np.arange(2.0).reshape(1, 1, 2)), (2,)).numpy().tolist()
    [[[0.0, 0.0, 1.0, 1.0]]]
    """
    x = as_tensor(x)
    nd = x.ndim - 2
    if nd < 1 or len(size) != nd or not all(isinstance(s, (int, np.integer)) and s >= 1
                                            for s in size):
        raise ValueError(f"upsample: size must be {max(nd, 1)} ints >= 1 for x of shape "
                         f"{x.shape}, received {size!r}")
    xp = array_module(x)
    # (N, C, d0, 1, d1, 1, ...) broadcast to (N, C, d0, s0, d1, s1, ...), then merged
    split = x.shape[:2] + tuple(v for d in x.shape[2:] for v in (d, 1))
    wide = x.shape[:2] + tuple(v for d, s in zip(x.shape[2:], size) for v in (d, int(s)))
    y = xp.ascontiguousarray(xp.broadcast_to(x.data.reshape(split), wide)).reshape(
        x.shape[:2] + tuple(d * int(s) for d, s in zip(x.shape[2:], size)))

    def backward(g):
        # (N, C, d0, s0, d1, s1, ...) then sum the repeat axes
        shape = x.shape[:2] + tuple(v for d, s in zip(x.shape[2:], size) for v in (d, s))
        return (g.reshape(shape).sum(axis=tuple(3 + 2 * i for i in range(nd))),)
    return record(Tensor._result(y), "upsample", (x,), backward)


def repeat_vector(x, n):
    """(N, F) -> (N, n, F): each row repeated n times.

    >>> repeat_vector(Tensor(np.ones((2, 3))), 4).shape
    (2, 4, 3)
    """
    x = as_tensor(x)
    if x.ndim != 2:
        raise ValueError(f"repeat_vector: x must have 2 dims (N, F), received shape {x.shape}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"repeat_vector: n must be an int >= 1, received {n!r}")
    xp = array_module(x)
    y = xp.ascontiguousarray(xp.broadcast_to(x.data.reshape(x.shape[0], 1, x.shape[1]),
                                             (x.shape[0], int(n), x.shape[1])))
    return record(Tensor._result(y), "repeat_vector", (x,), lambda g: (g.sum(axis=1),))


# -- transposed convolution ------------------------------------------------------------------

def transpose_output_shape(in_spatial, kernel, stride, dilation, padding, output_padding=None):
    """(out spatial, explicit (lo, hi) padding of the underlying convolution) of a transposed
    convolution, Keras's rule: "valid" -> in * s + max(k_eff - s, 0); "same" -> in * s;
    with ``output_padding`` op: (in - 1) * s + k_eff - 2 * pad + op, pad = k_eff // 2 for
    "same" and 0 for "valid" (k_eff = dilation * (k - 1) + 1).  The convolution's padding is
    TF's: total = max((in - 1) * s + k_eff - out, 0), lo = total // 2, the rest at the end.

    >>> transpose_output_shape((4,), (3,), (2,), (1,), "same")
    ((8,), ((0, 1),))
    """
    out, pads = [], []
    for i, n in enumerate(in_spatial):
        k, s, d = kernel[i], stride[i], dilation[i]
        ke = d * (k - 1) + 1
        if output_padding is not None:
            o = (n - 1) * s + ke - 2 * (ke // 2 if padding == "same" else 0) + output_padding[i]
        elif padding == "same":
            o = n * s
        else:
            o = n * s + max(ke - s, 0)
        # TF's rule for the convolution over o that gives n: the odd unit at the end
        total = max((n - 1) * s + ke - o, 0)
        out.append(o)
        pads.append((total // 2, total - total // 2))
    return tuple(out), tuple(pads)


def conv_transpose(x, w, b=None, stride=1, padding="valid", dilation=1, groups=1,
                   output_padding=None, strategy="auto"):
    """Transposed convolution ("deconvolution"): the grad-input pass of the convolution whose
    weight is ``w``, so every strategy of ``kernels.conv_grad_input`` serves it.

    Parameters
    ----------
    x : Tensor (N, C_in, *spatial), 1-3 spatial dims
    w : Tensor (C_in, C_out / groups, *kernel) -- the weight of the convolution that maps
        (N, C_out, *out) back to x's shape (PyTorch's ConvTranspose layout)
    b : Tensor (C_out,), optional
    stride, dilation : int or tuple; padding : "valid" or "same" (Keras's output-size rule,
        see :func:`transpose_output_shape`); output_padding : None or ints

    Its gradients are a convolution (w.r.t. x) and a grad-weight (w.r.t. w).

    >>> conv_transpose(Tensor(np.ones((1, 2, 4, 4))), Tensor(np.ones((2, 3, 3, 3))),
    ...                stride=2, padding="same").shape
    (1, 3, 8, 8)
    """
    x = as_tensor(x)
    w = as_tensor(w, like=x)
    op = "conv_transpose"
    nd = x.ndim - 2
    if nd not in (1, 2, 3) or w.ndim != x.ndim:
        raise ValueError(f"{op}: x must be (N, C, *spatial) with 1-3 spatial dims and w "
                         f"(C_in, C_out/groups, *kernel) of the same rank, received x "
                         f"{x.shape} and w {w.shape}")
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"{op}: w's first dim must equal x's channels {x.shape[1]}, "
                         f"received w of shape {w.shape}")
    if padding not in ("valid", "same"):
        raise ValueError(f"{op}: padding must be 'valid' or 'same', received {padding!r}")
    tup = lambda v: (int(v),) * nd if isinstance(v, (int, np.integer)) else tuple(v)  # noqa
    stride, dilation = tup(stride), tup(dilation)
    if output_padding is not None:
        output_padding = tup(output_padding)
        if any(o < 0 or o >= s for o, s in zip(output_padding, stride)):
            raise ValueError(f"{op}: output_padding must be in [0, stride) per dim, received "
                             f"{output_padding} with strides {stride}")
    out_sp, pads = transpose_output_shape(x.shape[2:], w.shape[2:], stride, dilation, padding,
                                          output_padding)
    y_shape = (x.shape[0], w.shape[1] * groups) + out_sp
    params = conv_params(y_shape, w.shape, stride, pads, dilation, groups, op=op)
    if params.out_spatial(out_sp, w.shape[2:]) != tuple(x.shape[2:]):
        raise ValueError(f"{op}: no convolution maps output {y_shape} back to input "
                         f"{x.shape} with kernel {w.shape[2:]}, strides {stride}, "
                         f"padding {padding!r}")
    if b is not None:
        b = as_tensor(b, like=x)
        if b.shape != (y_shape[1],):
            raise ValueError(f"{op}: b must have shape ({y_shape[1]},), received {b.shape}")
    same_device(op, x, w, b)
    xp = array_module(x, w, b)
    args = dict(stride=stride, padding=pads, dilation=dilation, groups=groups,
                strategy=strategy)
    y = xp.asarray(kernels.conv_grad_input(x.data, w.data, y_shape,
                                           prepared=prepared_weights(w), **args))
    if b is not None:
        y = y + b.data.reshape((1, -1) + (1,) * nd)

    def backward(g):
        gx = xp.asarray(kernels.conv(g, w.data, None, prepared=prepared_weights(w), **args)) \
            if x.requires_grad else None
        gw = xp.asarray(kernels.conv_grad_weight(x.data, g, w.shape, **args)) \
            if w.requires_grad else None
        gb = g.sum(axis=(0,) + tuple(range(2, g.ndim))) \
            if b is not None and b.requires_grad else None
        return gx, gw, gb
    return record(Tensor._result(y), op, (x, w, b), backward)
