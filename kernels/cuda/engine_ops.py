"""Element-wise, reduction, softmax/cross-entropy and optimizer kernels for an autograd engine
whose tensors live on the GPU (``engine`` with ``device="cuda"``).

Every wrapper takes C-contiguous device arrays (NumPy arrays are accepted too and copied, as
in the rest of the backend), checks them before any launch, and writes into a preallocated
``out``; ``out`` may alias an input of the same shape (each thread reads its own cells before
writing them).  Element-wise kernels loop grid-stride over flat indices, so any size and any
grid work; reductions give each block one output and add its threads' partial sums in shared
memory (a tree of config.REDUCE_THREADS threads).

Broadcast operands of :func:`binary` are the two cases a CNN needs: a bias along the channel
axis (axis 1 of (N, C, *spatial)) or along the last axis (Dense): ``b[(i // inner) % nb]``.

    >>> a = np.arange(6.0).reshape(2, 3); out = np.empty_like(a)
    >>> binary(a, np.ones(3), out, "add", axis=1); out.tolist()
    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
from numba import cuda

from . import config
from ._device import block_sum, blocks_for, check_arrays, device_io, flat, threads

__all__ = ["binary", "affine", "scale_by", "activation", "activation_grad",
           "channel_sum", "softmax", "softmax_grad", "softmax_cross_entropy", "sgd_step", "adagrad_step",
           "rmsprop_step", "adam_step", "ACTIVATIONS"]

BINARY = {"add": 0, "sub": 1, "mul": 2}
ACTIVATIONS = {"relu": 0, "leaky_relu": 1, "sigmoid": 2, "tanh": 3}


@cuda.jit(cache=True)
def _binary(a, b, out, opcode, inner, nb):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        bv = b[(i // inner) % nb]
        if opcode == 0:
            out[i] = a[i] + bv
        elif opcode == 1:
            out[i] = a[i] - bv
        else:
            out[i] = a[i] * bv


@cuda.jit(cache=True)
def _affine(a, out, alpha, beta):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = alpha * a[i] + beta


@cuda.jit(cache=True)
def _scale_by(a, s, out, factor):
    # s is a one-element device array (an upstream scalar gradient): no host round trip
    k = s[0] * factor
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = a[i] * k


@cuda.jit(cache=True)
def _act_forward(x, y, kind, alpha):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        v = x[i]
        if kind == 0:
            y[i] = v if not v < 0 else v - v  # NaN passes through, as np.maximum
        elif kind == 1:
            y[i] = v if v > 0 else v * alpha
        elif kind == 2:
            if v >= 0:
                y[i] = 1 / (1 + math.exp(-v))
            else:  # exp(v) cannot overflow here
                e = math.exp(v)
                y[i] = e / (1 + e)
        else:
            y[i] = math.tanh(v)


@cuda.jit(cache=True)
def _act_backward(g, s, gx, kind, alpha):
    # s is the saved output y (relu, sigmoid, tanh) or the input x (leaky_relu)
    for i in range(cuda.grid(1), gx.size, cuda.gridsize(1)):
        v = s[i]
        if kind == 0:
            gx[i] = g[i] * (1 if v > 0 else 0)
        elif kind == 1:
            gx[i] = g[i] if v > 0 else g[i] * alpha
        elif kind == 2:
            gx[i] = g[i] * v * (1 - v)
        else:
            gx[i] = g[i] * (1 - v * v)


_reducers = {}


def _channel_sum_kernel(dtype, nt):
    """out[c] = scale * sum over (o, i) of a[o, c, i] (squared when ``square``); one block
    per channel, threads split the (o, i) pairs, then a shared-memory tree."""
    key = (np.dtype(dtype).name, nt)
    if key in _reducers:
        return _reducers[key]
    dt = np.dtype(dtype).type

    @cuda.jit
    def channel_sum(a, out, outer, nc, inner, scale, square, zero):
        part = cuda.shared.array(nt, dt)
        tid = cuda.threadIdx.x
        for c in range(cuda.blockIdx.x, nc, cuda.gridDim.x):
            acc = zero
            for q in range(tid, outer * inner, nt):
                o = q // inner
                v = a[(o * nc + c) * inner + q - o * inner]
                acc += v * v if square else v
            part[tid] = acc
            total = block_sum(part, tid, nt)
            if tid == 0:
                out[c] = total * scale
            cuda.syncthreads()  # part is reused for the block's next channel

    _reducers[key] = channel_sum
    return channel_sum


@cuda.jit(cache=True)
def _softmax_rows(z, y, m, k):
    for r in range(cuda.grid(1), m, cuda.gridsize(1)):
        base = r * k
        mx = z[base]
        for j in range(1, k):
            if z[base + j] > mx:
                mx = z[base + j]
        s = z[base] * 0
        for j in range(k):
            e = math.exp(z[base + j] - mx)
            y[base + j] = e
            s += e
        for j in range(k):
            y[base + j] /= s


@cuda.jit(cache=True)
def _softmax_grad_rows(g, y, gx, m, k):
    for r in range(cuda.grid(1), m, cuda.gridsize(1)):
        base = r * k
        dot = g[base] * 0
        for j in range(k):
            dot += g[base + j] * y[base + j]
        for j in range(k):
            gx[base + j] = y[base + j] * (g[base + j] - dot)


@cuda.jit(cache=True)
def _xent_rows(z, t, labels, sparse, loss, grad, m, k):
    # loss[r] = sum_j t_j * (lse - z_j); grad = softmax * sum(t) - t (labels: t one-hot)
    for r in range(cuda.grid(1), m, cuda.gridsize(1)):
        base = r * k
        mx = z[base]
        for j in range(1, k):
            if z[base + j] > mx:
                mx = z[base + j]
        s = z[base] * 0
        for j in range(k):
            s += math.exp(z[base + j] - mx)
        lse = mx + math.log(s)
        if sparse:
            lab = labels[r]
            loss[r] = lse - z[base + lab]
            for j in range(k):
                grad[base + j] = math.exp(z[base + j] - lse) - (1 if j == lab else 0)
        else:
            tsum = s * 0
            acc = s * 0
            for j in range(k):
                tj = t[base + j]
                tsum += tj
                acc += tj * (lse - z[base + j])
            loss[r] = acc
            for j in range(k):
                grad[base + j] = math.exp(z[base + j] - lse) * tsum - t[base + j]


@cuda.jit(cache=True)
def _sgd(w, g, v, lr, momentum, nesterov, decay):
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        wi = w[i] - w[i] * decay
        step = g[i] * lr
        if momentum == 0:
            w[i] = wi - step
        else:
            vi = v[i] * momentum - step
            v[i] = vi
            w[i] = wi - step + vi * momentum if nesterov else wi + vi


@cuda.jit(cache=True)
def _adagrad(w, g, a, lr, eps, decay):
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        wi = w[i] - w[i] * decay
        ai = a[i] + g[i] * g[i]
        a[i] = ai
        w[i] = wi - lr * (g[i] / math.sqrt(ai + eps))


@cuda.jit(cache=True)
def _rmsprop(w, g, v, lr, rho, eps, decay):
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        wi = w[i] - w[i] * decay
        vi = v[i] * rho + g[i] * g[i] * (1 - rho)
        v[i] = vi
        w[i] = wi - lr * (g[i] / math.sqrt(vi + eps))


@cuda.jit(cache=True)
def _adam(w, g, m, v, v_hat, lr_t, b1, b2, eps, decay, amsgrad):
    for i in range(cuda.grid(1), w.size, cuda.gridsize(1)):
        wi = w[i] - w[i] * decay
        mi = m[i] * b1 + g[i] * (1 - b1)
        vi = v[i] * b2 + g[i] * g[i] * (1 - b2)
        m[i] = mi
        v[i] = vi
        if amsgrad:
            if vi < v_hat[i]:
                vi = v_hat[i]
            v_hat[i] = vi
        w[i] = wi - lr_t * (mi / (math.sqrt(vi) + eps))


def _launch(kernel, n, *args):
    if n:
        t = threads()
        kernel[blocks_for(n, t), t](*args)


def _same_shapes(op, names, arrays):
    shape = tuple(arrays[0].shape)
    for name, a in zip(names[1:], arrays[1:]):
        if tuple(a.shape) != shape:
            raise ValueError(f"{op}: {name} must have the shape {shape} of {names[0]}, "
                             f"received {tuple(a.shape)}")


def _check(op, names, arrays, same=True):
    """Arrays of any rank, C-contiguous, sharing one float dtype; equal shapes when ``same``.
    Returns the dtype."""
    dtype = None
    for name, a in zip(names, arrays):
        dtype_a = check_arrays(op, (name,), (a,), len(a.shape))
        if dtype is None:
            dtype = dtype_a
        elif dtype_a != dtype:
            raise TypeError(f"{op}: all arrays must share one dtype, received {name} of dtype "
                            f"{dtype_a} with {names[0]} of dtype {dtype}")
    if same:
        _same_shapes(op, names, arrays)
    return dtype


@contextlib.contextmanager
def _inplace(*arrays):
    """Device versions of arrays updated in place: host arrays are uploaded, and copied back
    on exit."""
    dev = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in arrays]
    yield dev
    for host, d in zip(arrays, dev):
        if isinstance(host, np.ndarray):
            d.copy_to_host(host)


def binary(a, b, out, op, axis=None):
    """``out = a (op) b`` with op "add", "sub" or "mul".

    Parameters
    ----------
    a, out : arrays of one shape (out may be a).
    b : array of a's shape (``axis=None``) or 1-D of length ``a.shape[axis]``, broadcast
        along that axis.
    axis : None or int
    """
    if op not in BINARY:
        raise ValueError(f"binary: op must be one of {', '.join(BINARY)}, received {op!r}")
    _check("binary", ("a", "out"), (a, out))
    _check("binary", ("a", "b"), (a, b), same=False)
    shape = tuple(a.shape)
    if axis is None:
        _same_shapes("binary", ("a", "b"), (a, b))
        inner, nb = 1, max(a.size, 1)
    else:
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"binary: axis {axis} is out of range for a of shape {shape}")
        axis %= len(shape)
        if tuple(b.shape) != (shape[axis],):
            raise ValueError(f"binary: b must have shape ({shape[axis]},) to broadcast along "
                             f"axis {axis} of a {shape}, received {tuple(b.shape)}")
        inner, nb = math.prod(shape[axis + 1:]), shape[axis]
    with device_io((a, b), (out,)) as (da, db, dout):
        _launch(_binary, dout.size, flat(da), flat(db), flat(dout), BINARY[op], inner, nb)


def affine(a, out, alpha, beta=0.0):
    """``out = alpha * a + beta`` (scale, negation, scalar offsets)."""
    _check("affine", ("a", "out"), (a, out))
    with device_io((a,), (out,)) as (da, dout):
        _launch(_affine, dout.size, flat(da), flat(dout), float(alpha), float(beta))


def scale_by(a, s, out, factor=1.0):
    """``out = a * s[0] * factor`` where ``s`` is a one-element array on the device."""
    _check("scale_by", ("a", "out"), (a, out))
    _check("scale_by", ("a", "s"), (a, s), same=False)
    if s.size != 1:
        raise ValueError(f"scale_by: s must have one element, received shape "
                         f"{tuple(s.shape)}")
    with device_io((a, s), (out,)) as (da, ds, dout):
        _launch(_scale_by, dout.size, flat(da), flat(ds), flat(dout), float(factor))


def _kind(op, kind):
    if kind not in ACTIVATIONS:
        raise ValueError(f"{op}: kind must be one of {', '.join(ACTIVATIONS)}, received "
                         f"{kind!r}")
    return ACTIVATIONS[kind]


def activation(x, y, kind, alpha=0.0):
    """``y = f(x)`` for kind "relu", "leaky_relu" (slope ``alpha``), "sigmoid", "tanh"."""
    code = _kind("activation", kind)
    _check("activation", ("x", "y"), (x, y))
    with device_io((x,), (y,)) as (dx, dy):
        _launch(_act_forward, dy.size, flat(dx), flat(dy), code, float(alpha))


def activation_grad(g, s, gx, kind, alpha=0.0):
    """``gx = g * f'(.)`` from the saved output ``s = y`` (relu, sigmoid, tanh) or the saved
    input ``s = x`` (leaky_relu)."""
    code = _kind("activation_grad", kind)
    _check("activation_grad", ("g", "s", "gx"), (g, s, gx))
    with device_io((g, s), (gx,)) as (dg, ds, dgx):
        _launch(_act_backward, dgx.size, flat(dg), flat(ds), flat(dgx), code, float(alpha))


def channel_sum(a, out, axis=None, scale=1.0, square=False):
    """Sum ``a`` (squared when ``square``) over every axis but ``axis``, times ``scale``.

    ``axis=None`` sums everything into the one element of ``out``; otherwise ``out`` has
    shape ``(a.shape[axis],)`` (the bias gradient: axis 1 of a conv output, the last axis of
    a Dense output).

    Examples
    --------
    >>> out = np.empty(3); channel_sum(np.ones((2, 3, 4)), out, axis=1); out.tolist()
    [8.0, 8.0, 8.0]
    """
    op = "channel_sum"
    dtype = _check(op, ("a", "out"), (a, out), same=False)
    shape = tuple(a.shape)
    if axis is None:
        outer, nc, inner = 1, 1, a.size
        if out.size != 1:
            raise ValueError(f"{op}: out must have one element for axis=None, received shape "
                             f"{tuple(out.shape)}")
    else:
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"{op}: axis {axis} is out of range for a of shape {shape}")
        axis %= len(shape)
        outer, nc, inner = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])
        if tuple(out.shape) != (nc,):
            raise ValueError(f"{op}: out must have shape ({nc},) for axis {axis} of a "
                             f"{shape}, received {tuple(out.shape)}")
    with device_io((a,), (out,)) as (da, dout):
        if nc:
            nt = config.reduce_threads()
            kern = _channel_sum_kernel(dtype, nt)
            kern[blocks_for(nc, 1), nt](flat(da), flat(dout), outer, nc, inner, float(scale),
                                        bool(square), dtype.type(0))


def _rows(op, z):
    shape = tuple(z.shape)
    if len(shape) < 1 or shape[-1] < 1:
        raise ValueError(f"{op}: z must have a non-empty last (class) axis, received shape "
                         f"{shape}")
    k = shape[-1]
    return z.size // k, k


def softmax(z, y):
    """Softmax over the last axis: ``y = exp(z - max) / sum``, one thread per row."""
    _check("softmax", ("z", "y"), (z, y))
    m, k = _rows("softmax", z)
    with device_io((z,), (y,)) as (dz, dy):
        _launch(_softmax_rows, m, flat(dz), flat(dy), m, k)


def softmax_grad(g, y, gx):
    """Gradient of :func:`softmax` from its output: ``gx = y * (g - sum(g * y))`` per row."""
    _check("softmax_grad", ("g", "y", "gx"), (g, y, gx))
    m, k = _rows("softmax_grad", y)
    with device_io((g, y), (gx,)) as (dg, dy, dgx):
        _launch(_softmax_grad_rows, m, flat(dg), flat(dy), flat(dgx), m, k)


def softmax_cross_entropy(z, target, loss_rows, grad):
    """Cross-entropy of softmax(z) per row, and its gradient w.r.t. the logits per row.

    Parameters
    ----------
    z : array (..., K) of logits.
    target : array of z's shape (probabilities, one-hot) or integer labels (int64) of shape
        z.shape[:-1] (in [0, K), checked by the caller).
    loss_rows : array (M,), M = z.size // K, overwritten with ``logsumexp(z) - sum t z``.
    grad : array of z's shape, overwritten with ``softmax(z) * sum(t) - t``.
    """
    op = "softmax_cross_entropy"
    _check(op, ("z", "grad"), (z, grad))
    m, k = _rows(op, z)
    _check(op, ("z", "loss_rows"), (z, loss_rows), same=False)
    if loss_rows.size != m:
        raise ValueError(f"{op}: loss_rows must have {m} elements, received shape "
                         f"{tuple(loss_rows.shape)}")
    sparse = np.dtype(target.dtype).kind in "iu"
    if sparse:
        if np.dtype(target.dtype) != np.int64 or target.size != m:
            raise TypeError(f"{op}: labels must be int64 with {m} elements, received "
                            f"{target.dtype} of shape {tuple(target.shape)}")
        labels, t = target, z
    else:
        _check(op, ("z", "target"), (z, target))
        labels, t = None, target
    with device_io((z, t) + ((labels,) if sparse else ()), (loss_rows, grad)) as dev:
        dz, dt = dev[0], dev[1]
        dlab = dev[2] if sparse else cuda.device_array(1, np.int64)
        dloss, dgrad = dev[-2], dev[-1]
        _launch(_xent_rows, m, flat(dz), flat(dt), flat(dlab), sparse, flat(dloss),
                flat(dgrad), m, k)


def sgd_step(w, g, v, lr, momentum, nesterov, decay):
    """In place: ``w -= decay * w``; then ``w -= lr * g`` or, with momentum,
    ``v = momentum * v - lr * g`` and ``w += v`` (Nesterov: ``w += momentum * v - lr * g``).
    ``v`` is ignored (any array of w's shape) when momentum is 0."""
    _check("sgd_step", ("w", "g", "v"), (w, g, v))
    with _inplace(w, g, v) as (dw, dg, dv):
        _launch(_sgd, dw.size, flat(dw), flat(dg), flat(dv), float(lr), float(momentum),
                bool(nesterov), float(decay))


def adagrad_step(w, g, a, lr, eps, decay):
    """In place: ``a += g**2``; ``w -= lr * g / sqrt(a + eps)`` (after the decay)."""
    _check("adagrad_step", ("w", "g", "a"), (w, g, a))
    with _inplace(w, g, a) as (dw, dg, da):
        _launch(_adagrad, dw.size, flat(dw), flat(dg), flat(da), float(lr), float(eps),
                float(decay))


def rmsprop_step(w, g, v, lr, rho, eps, decay):
    """In place: ``v = rho * v + (1 - rho) * g**2``; ``w -= lr * g / (sqrt(v) + eps)``."""
    _check("rmsprop_step", ("w", "g", "v"), (w, g, v))
    with _inplace(w, g, v) as (dw, dg, dv):
        _launch(_rmsprop, dw.size, flat(dw), flat(dg), flat(dv), float(lr), float(rho),
                float(eps), float(decay))


def adam_step(w, g, m, v, v_hat, lr_t, b1, b2, eps, decay, amsgrad):
    """In place: Adam moments ``m``, ``v`` (and ``v_hat`` with AMSGrad; any array of w's
    shape otherwise), then ``w -= lr_t * m / (sqrt(v) + eps)`` with the bias-corrected
    ``lr_t`` computed by the caller."""
    _check("adam_step", ("w", "g", "m", "v", "v_hat"), (w, g, m, v, v_hat))
    with _inplace(w, g, m, v, v_hat) as (dw, dg, dm, dv, dvh):
        _launch(_adam, dw.size, flat(dw), flat(dg), flat(dm), flat(dv), flat(dvh),
                float(lr_t), float(b1), float(b2), float(eps), float(decay), bool(amsgrad))
