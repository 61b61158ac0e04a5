"""Tensors on the GPU: where a Tensor's data lives, moving it, and the CUDA branch of the ops.

A Tensor is on "cpu" (``.data`` is a NumPy array) or on "cuda" (``.data`` is a C-contiguous
numba device array).  The ops in :mod:`engine.ops` keep their NumPy code as it is and hand
CUDA tensors to the functions here, which run :mod:`kernels.cuda` kernels on device arrays:
activations and gradients stay on the GPU from layer to layer, and nothing is copied to the
host except what the caller asks for (``.numpy()``, ``.item()``, a model's predictions).

Rules every op follows:

- all Tensor operands on one device, else ValueError naming the op and both devices;
- an op without a CUDA branch raises NotImplementedError naming the op (never a silent
  round trip through the host);
- Python numbers mix with CUDA tensors (``x * 0.5``); NumPy arrays do not (move them).

numba.cuda is imported only when a CUDA tensor is made: CPU-only use never pays for it::

    x = engine.Tensor(np.ones((2, 3), np.float32), device="cuda")
    (engine.functional.relu(x) * 2.0).numpy()      # a (2, 3) float32 array of 2.0
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .autograd import record
from .tensor import Tensor

__all__ = ["array_module", "DEVICES", "cuda_available", "check_device", "is_cuda", "device_of", "move", "host",
           "any_cuda", "same_device", "same_device_arrays", "cpu_only", "empty", "full",
           "copy", "add_arrays"]

DEVICES = ("cpu", "cuda")

_kc = None


def _kernels():
    """kernels.cuda, imported on first use."""
    global _kc
    if _kc is None:
        import kernels.cuda as kc
        _kc = kc
    return _kc


def array_module(*arrays):
    """The array namespace of ``arrays`` (Tensors, arrays, numbers; None skipped): numpy on
    the CPU, :mod:`kernels.cuda.xp` (numpy's names over device arrays) when any is on cuda.
    Ops write their math once against it, as Chainer's ``get_array_module``::

        xp = array_module(x.data)
        y = xp.maximum(x.data, 0)
    """
    for a in arrays:
        if isinstance(a, Tensor):
            a = a.data
        if a is not None and not isinstance(a, (np.ndarray, np.generic, numbers.Number)) \
                and hasattr(a, "__cuda_array_interface__"):
            return _kernels().xp
    return np


def cuda_available():
    """True when CUDA kernels can run (a GPU, or the simulator).  Never raises."""
    try:
        return _kernels().available()
    except ImportError:
        return False


def check_device(owner, device, argument="device"):
    """``device`` checked to be "cpu" or "cuda", and "cuda" only where CUDA can run."""
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"{owner}: {argument} must be 'cpu' or 'cuda', received {device!r}")
    if device == "cuda" and not cuda_available():
        raise ValueError(f"{owner}: {argument}='cuda' but CUDA is not available here (no GPU "
                         f"found; NUMBA_ENABLE_CUDASIM=1 selects numba's CUDA simulator)")
    return device


def is_cuda(a):
    """True for a numba device array (the data of a CUDA tensor)."""
    return not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host")


def device_of(a):
    return "cuda" if is_cuda(a) else "cpu"


def move(a, device):
    """The array ``a`` on ``device`` (``a`` itself when it is already there)."""
    if device == "cuda":
        if is_cuda(a):
            return a
        from numba import cuda
        return cuda.to_device(np.ascontiguousarray(a))
    return a.copy_to_host() if is_cuda(a) else a


def host(a):
    """A NumPy array with the values of ``a`` (a copy for a device array)."""
    return a.copy_to_host() if is_cuda(a) else a


def any_cuda(*tensors):
    """True when any of the Tensors is on cuda (other values are skipped)."""
    for t in tensors:
        if isinstance(t, Tensor) and not isinstance(t.data, np.ndarray):
            return True
    return False


def same_device(op, *tensors):
    """The device shared by the Tensors (None skipped); ValueError naming ``op`` if mixed."""
    dev = None
    for t in tensors:
        if t is None:
            continue
        d = device_of(t.data)
        if dev is None:
            dev = d
        elif d != dev:
            raise ValueError(f"{op}: all tensors must be on one device, received tensors on "
                             f"'{dev}' and '{d}' (move them with .to(device))")
    return dev


def same_device_arrays(op, *arrays):
    """ValueError naming ``op`` when the arrays are not all NumPy or all device arrays."""
    devs = {device_of(a) for a in arrays}
    if len(devs) > 1:
        raise ValueError(f"{op}: arrays on 'cpu' and 'cuda' cannot be combined")


def cpu_only(op, *tensors):
    """Raise NotImplementedError for an op that has no CUDA branch, given a CUDA tensor."""
    if any_cuda(*tensors):
        raise NotImplementedError(f"{op}: not implemented for tensors on 'cuda' (move them "
                                  f"to the host with .cpu() to use it)")


# -- device arrays ---------------------------------------------------------------------------

def empty(shape, dtype):
    from numba import cuda
    return cuda.device_array(tuple(shape), dtype=dtype)


def full(shape, dtype, value):
    out = empty(shape, dtype)
    from kernels.cuda._device import fill
    fill(out, value)
    return out


def copy(a):
    """A device copy of the device array ``a``."""
    out = empty(a.shape, a.dtype)
    if a.size:
        out.copy_to_device(a)
    return out


def add_arrays(a, b):
    """``a + b`` for two device arrays of one shape (gradient accumulation)."""
    out = empty(a.shape, a.dtype)
    _kernels().engine_ops.binary(a, b, out, "add")
    return out


def _ops():
    return _kernels().engine_ops


def _scalar(a):
    """A 0-d view of a one-element device array (a loss)."""
    return a.reshape(())


def _one(a):
    """A 1-element view of a 0-d (or one-element) device array, for kernels."""
    return a.reshape(1)


def _result(data, op, inputs, backward):
    return record(Tensor._result(data), op, inputs, backward)


# -- element-wise ----------------------------------------------------------------------------

def _bcast_axis(op, big, small):
    """None when the shapes are equal, else the axis of ``big`` along which the 1-D values of
    ``small`` broadcast: the last axis for (K,), axis 1 for (C, 1, ..., 1)."""
    if big == small:
        return None
    if len(big) >= 2 and len(small) == 1 and small[0] == big[-1]:
        return len(big) - 1
    if len(big) >= 3 and len(small) == len(big) - 1 and small[0] == big[1] \
            and all(s == 1 for s in small[1:]):
        return 1
    raise NotImplementedError(f"{op}: on 'cuda', operands must have equal shapes or one must "
                              f"broadcast along the last axis (K,) or the channel axis "
                              f"(C, 1, ...); received shapes {big} and {small}")


def binary(op, a, b):
    """add / sub / mul of two Tensors or a Tensor and a Python number, on cuda."""
    ops = _ops()
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        x, c, swapped = (b, a, True) if not isinstance(a, Tensor) else (a, b, False)
        if not isinstance(c, numbers.Real) or isinstance(c, bool):
            raise ValueError(f"{op}: a tensor on 'cuda' combines with another cuda tensor or a "
                             f"Python number, received {type(c).__name__} (move arrays with "
                             f"Tensor(array, device='cuda'))")
        c = float(c)
        alpha, beta = {"add": (1.0, c), "mul": (c, 0.0),
                       "sub": (-1.0, c) if swapped else (1.0, -c)}[op]
        y = empty(x.shape, x.dtype)
        ops.affine(x.data, y, alpha, beta)

        def backward_scalar(g):
            if alpha == 1.0:
                return (g,)
            gx = empty(g.shape, g.dtype)
            ops.affine(g, gx, alpha)
            return (gx,)
        return _result(y, op, (x,), backward_scalar)
    same_device(op, a, b)
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: operands on 'cuda' must share one dtype, received {a.dtype} "
                        f"and {b.dtype}")
    swap = a.size < b.size
    big, small = (b, a) if swap else (a, b)
    if swap and op == "sub":
        raise NotImplementedError(f"{op}: on 'cuda' the broadcast operand must be the second, "
                                  f"received shapes {a.shape} and {b.shape}")
    axis = _bcast_axis(op, big.shape, small.shape)
    sv = small.data if axis is None else small.data.reshape(small.size)
    y = empty(big.shape, big.dtype)
    ops.binary(big.data, sv, y, op, axis)

    def reduce_to(g, t):
        """``g`` (big's shape) summed down to ``t``'s shape."""
        if axis is None:
            return g
        out = empty((t.size,), g.dtype)
        ops.channel_sum(g, out, axis)
        return out.reshape(t.shape)

    def backward(g):
        g_big = g_small = None
        if op == "mul":
            if big.requires_grad:
                g_big = empty(g.shape, g.dtype)
                ops.binary(g, sv, g_big, "mul", axis)
            if small.requires_grad:
                prod = empty(g.shape, g.dtype)
                ops.binary(g, big.data, prod, "mul")
                g_small = reduce_to(prod, small)
        else:
            g_big = g if big.requires_grad else None
            if small.requires_grad:
                g_small = reduce_to(g, small)
                if op == "sub":
                    neg = empty(g_small.shape, g.dtype)
                    ops.affine(g_small, neg, -1.0)
                    g_small = neg
        return (g_small, g_big) if swap else (g_big, g_small)
    return _result(y, op, (a, b), backward)


def neg(x):
    return binary("mul", x, -1.0)


# -- activations -----------------------------------------------------------------------------

def activation(x, kind, alpha=0.0):
    """relu / leaky_relu / sigmoid / tanh on cuda; backward from the saved output (or the
    input, for leaky_relu)."""
    ops = _ops()
    y = empty(x.shape, x.dtype)
    ops.activation(x.data, y, kind, alpha)
    saved = x.data if kind == "leaky_relu" else y

    def backward(g):
        gx = empty(g.shape, g.dtype)
        ops.activation_grad(g, saved, gx, kind, alpha)
        return (gx,)
    out = _result(y, kind, (x,), backward)
    if kind == "sigmoid":
        out._activation_of = ("sigmoid", x, None)
    return out


def softmax(x, axis):
    """Softmax over the last axis on cuda (marks the output for the fused cross-entropy)."""
    if axis != x.ndim - 1:
        raise NotImplementedError(f"softmax: on 'cuda' only the last axis is supported, "
                                  f"received axis {axis} for x of shape {x.shape}")
    ops = _ops()
    y = empty(x.shape, x.dtype)
    ops.softmax(x.data, y)

    def backward(g):
        gx = empty(g.shape, g.dtype)
        ops.softmax_grad(g, y, gx)
        return (gx,)
    out = _result(y, "softmax", (x,), backward)
    out._activation_of = ("softmax", x, axis)
    return out


def dropout(x, scale):
    """Multiply by the host-made mask ``scale`` (uploaded once; the same generator draws it
    as on the CPU, so a seeded run drops the same units on either device)."""
    mask = move(np.ascontiguousarray(scale), "cuda")
    ops = _ops()
    y = empty(x.shape, x.dtype)
    ops.binary(x.data, mask, y, "mul")

    def backward(g):
        gx = empty(g.shape, g.dtype)
        ops.binary(g, mask, gx, "mul")
        return (gx,)
    return _result(y, "dropout", (x,), backward)


# -- shapes ----------------------------------------------------------------------------------

def resolve_shape(op, old_shape, size, shape):
    """``shape`` with a -1 entry resolved; ValueError when the sizes differ."""
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        raise ValueError(f"{op}: cannot reshape x of shape {old_shape} (size {size}) into "
                         f"shape {shape}")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or size % known:
            raise ValueError(f"{op}: cannot reshape x of shape {old_shape} (size {size}) "
                             f"into shape {shape}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size:
        raise ValueError(f"{op}: cannot reshape x of shape {old_shape} (size {size}) into "
                         f"shape {shape}")
    return shape


def reshape(x, shape):
    """A view with a new shape (device arrays are C-contiguous, so no copy)."""
    shape = resolve_shape("reshape", x.shape, x.size, shape)
    return _result(x.data.reshape(shape), "reshape", (x,),
                   lambda g: (g.reshape(x.shape),))


# -- products --------------------------------------------------------------------------------

def linear(x, w, b):
    """``x @ w + b`` on cuda, x (..., in), w (in, out): the tiled GEMM of kernels.cuda, with
    transposes as strides in the backward (``gx = g @ w^T``, ``gw = x^T @ g``)."""
    same_device("linear", x, w, b)
    ops = _ops()
    n_in, n_out = w.shape
    x2 = x.data.reshape(x.size // n_in, n_in)
    y = empty((x2.shape[0], n_out), x.dtype)
    _kernels().matmul(x2, w.data, y)
    if b is not None:
        ops.binary(y, b.data, y, "add", 1)
    out_shape = x.shape[:-1] + (n_out,)

    def backward(g):
        g2 = g.reshape(x2.shape[0], n_out)
        gx = gw = gb = None
        if x.requires_grad:
            gx = empty(x2.shape, g.dtype)
            _kernels().matmul(g2, w.data, gx, trans_b=True)
            gx = gx.reshape(x.shape)
        if w.requires_grad:
            gw = empty(w.shape, g.dtype)
            _kernels().matmul(x2, g2, gw, trans_a=True)
        if b is not None and b.requires_grad:
            gb = empty(b.shape, g.dtype)
            ops.channel_sum(g2, gb, 1)
        return gx, gw, gb
    return _result(y.reshape(out_shape), "linear", (x, w, b), backward)


def matmul(a, b):
    """2-D ``a @ b`` on cuda (other ranks raise NotImplementedError)."""
    same_device("matmul", a, b)
    if a.ndim != 2 or b.ndim != 2:
        raise NotImplementedError(f"matmul: on 'cuda' both operands must be 2-D, received "
                                  f"shapes {a.shape} and {b.shape}")
    ops = _ops()
    y = empty((a.shape[0], b.shape[1]), a.dtype)
    _kernels().matmul(a.data, b.data, y)

    def backward(g):
        ga = gb = None
        if a.requires_grad:
            ga = empty(a.shape, g.dtype)
            _kernels().matmul(g, b.data, ga, trans_b=True)
        if b.requires_grad:
            gb = empty(b.shape, g.dtype)
            _kernels().matmul(a.data, g, gb, trans_a=True)
        return ga, gb
    return _result(y, "matmul", (a, b), backward)


# -- convolution and pooling -----------------------------------------------------------------

def _to5d_shape(shape):
    return tuple(shape[:2]) + (1,) * (5 - len(shape)) + tuple(shape[2:])


def _padded(x5, p3, value):
    """(padded device array, whether it is a copy)."""
    if not p3.is_padded:
        return x5, False
    kc = _kernels()
    shape = tuple(x5.shape)
    xp = empty(shape[:2] + p3.padded_spatial(shape[2:]), x5.dtype)
    kc.pad5d(x5, p3.padding, xp, value)
    return xp, True


def _unpadded_grad(gxp, padded, p3, x_shape5, x_shape):
    if not padded:
        return gxp.reshape(x_shape)
    gx5 = empty(x_shape5, gxp.dtype)
    _kernels().crop5d(gxp, p3.padding, gx5)
    return gx5.reshape(x_shape)


CONV_STRATEGIES = ("auto", "im2col", "direct")


def conv(x, w, b, params, strategy, op):
    """Convolution on cuda: kernels.cuda im2col + tiled GEMM ("auto", "im2col") or direct,
    padding and cropping on the device."""
    same_device(op, x, w, b)
    if strategy not in CONV_STRATEGIES:
        raise ValueError(f"{op}: strategy {strategy!r} is not available for tensors on 'cuda'; "
                         f"valid: {', '.join(map(repr, CONV_STRATEGIES))}")
    if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
        raise TypeError(f"{op}: x, w and b on 'cuda' must share one dtype, received "
                        f"{x.dtype}, {w.dtype}" + ("" if b is None else f", {b.dtype}"))
    kc = _kernels()
    ops = _ops()
    from kernels.conv.im2col import max_col_elems
    p3 = params.as3d()
    x5s, w5s = _to5d_shape(x.shape), _to5d_shape(w.shape)
    x5, w5 = x.data.reshape(x5s), w.data.reshape(w5s)
    xp, padded = _padded(x5, p3, 0.0)
    out_shape = params.out_shape(x.shape, w.shape)
    y5 = empty(_to5d_shape(out_shape), x.dtype)
    ints = p3.stride + p3.dilation + (params.groups,)
    budget = (max_col_elems(x.dtype.itemsize),)
    direct = strategy == "direct"
    if direct:
        kc.direct_forward(xp, w5, y5, *ints)
    else:
        kc.im2col_forward(xp, w5, y5, *ints, *budget)
    if b is not None:
        ops.binary(y5, b.data, y5, "add", 1)

    def backward(g):
        g5 = g.reshape(y5.shape)
        gx = gw = gb = None
        if x.requires_grad:
            gxp = empty(xp.shape, g.dtype)
            if direct:
                kc.direct_grad_input(g5, w5, gxp, *ints)
            else:
                kc.im2col_grad_input(g5, w5, gxp, *ints, *budget)
            gx = _unpadded_grad(gxp, padded, p3, x5s, x.shape)
        if w.requires_grad:
            gw5 = empty(w5s, g.dtype)
            if direct:
                kc.direct_grad_weight(g5, xp, gw5, *ints)
            else:
                kc.im2col_grad_weight(g5, xp, gw5, *ints, *budget)
            gw = gw5.reshape(w.shape)
        if b is not None and b.requires_grad:
            gb = empty(b.shape, g.dtype)
            ops.channel_sum(g5, gb, 1)
        return gx, gw, gb
    return _result(y5.reshape(out_shape), op, (x, w, b), backward)


def pool(x, kind, params, op):
    """Pooling on cuda (kernels.cuda pool kernels; max pads with -inf, the rest with 0)."""
    from kernels.backends import POOL_KINDS
    kc = _kernels()
    code = POOL_KINDS[kind]
    p3 = params.as3d()
    k3 = (1,) * (3 - params.ndim) + tuple(params.size)
    x5s = _to5d_shape(x.shape)
    xp, padded = _padded(x.data.reshape(x5s), p3, -np.inf if kind == "max" else 0.0)
    y5 = empty(x5s[:2] + p3.out_spatial(x5s[2:], k3), x.dtype)
    kc.pool_forward(xp, y5, code, *k3, *p3.stride)
    out_shape = x.shape[:2] + params.out_spatial(x.shape[2:], params.size)

    def backward(g):
        gxp = empty(xp.shape, g.dtype)
        kc.pool_backward(g.reshape(y5.shape), xp, y5, gxp, code, *k3, *p3.stride)
        return (_unpadded_grad(gxp, padded, p3, x5s, x.shape),)
    return _result(y5.reshape(out_shape), op, (x,), backward)


# -- losses ----------------------------------------------------------------------------------

def _scalar_loss(op, z, rows, grad, m):
    """The mean of the per-row losses as a 0-d device array, and the recorded Tensor whose
    backward scales the saved logits gradient by the upstream scalar (on the device)."""
    ops = _ops()
    loss = empty((1,), z.dtype)
    ops.channel_sum(rows, loss, None, scale=1.0 / m)

    def backward(g):
        gz = empty(grad.shape, grad.dtype)
        ops.scale_by(grad, _one(g), gz, 1.0 / m)
        return (gz,)
    return _result(_scalar(loss), op, (z,), backward)


def cross_entropy_from_logits(op, z, target):
    """Softmax cross-entropy of logits ``z`` (..., K), mean over the rows, on cuda.

    ``target``: int64 labels of shape z.shape[:-1] (checked by the caller) or an array of
    z's shape (one-hot / probabilities), host or device."""
    k = z.shape[-1]
    m = z.size // k
    tgt = move(target, "cuda")
    rows = empty((m,), z.dtype)
    grad = empty(z.shape, z.dtype)
    _ops().softmax_cross_entropy(z.data, tgt, rows, grad)
    return _scalar_loss(op, z, rows, grad, m)


def mse(pred, target):
    """Mean squared error on cuda; the target may be a constant (host or device array) or a
    cuda Tensor that requires a gradient."""
    ops = _ops()
    t_data = target.data if isinstance(target, Tensor) else move(target, "cuda")
    diff = empty(pred.shape, pred.dtype)
    ops.binary(pred.data, t_data, diff, "sub")
    loss = empty((1,), pred.dtype)
    n = pred.size
    ops.channel_sum(diff, loss, None, scale=1.0 / n, square=True)
    tgt = target if isinstance(target, Tensor) else None

    def backward(g):
        gp = empty(diff.shape, diff.dtype)
        ops.scale_by(diff, _one(g), gp, 2.0 / n)
        gt = None
        if tgt is not None and tgt.requires_grad:
            gt = empty(diff.shape, diff.dtype)
            ops.affine(gp, gt, -1.0)
        return (gp if pred.requires_grad else None, gt)
    return _result(_scalar(loss), "mse_loss", (pred, tgt), backward)
