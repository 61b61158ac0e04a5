"""convlab kernels: convolution, pooling and matmul on NumPy arrays and CUDA device arrays.

NumPy arrays in, NumPy arrays out; CUDA device arrays (numba's, or anything exporting
``__cuda_array_interface__``) in, numba device arrays out, on the registry's "cuda" column.
Nothing here knows about Tensors or layers.  Every public function validates its arguments
first (ValueError/TypeError naming the argument, the expected and the received value), then
dispatches to a strategy x backend pair (kernels.registry; strategies live in
kernels/strategies/, and kernels.register_strategy adds one from outside)::

    >>> import numpy as np, kernels
    >>> x = np.random.rand(2, 3, 32, 32).astype(np.float32)
    >>> w = np.random.rand(8, 3, 3, 3).astype(np.float32)
    >>> kernels.conv(x, w, padding=1).shape
    (2, 8, 32, 32)
    >>> kernels.select(x.shape, w.shape, padding=1)[:2]      # doctest: +SKIP
    ('im2col', 'cython')

Convolution is cross-correlation, as in every DL framework; :func:`convolve` is the classic
signal-processing convolution (flipped kernel) for filters such as Sobel or Gaussian.
"""
from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

from . import _arrays, backends, config, registry, runtime
from .params import (ConvParams, as_float_array, common_dtype, conv_params, pad5d,
                     pool_params, to5d)
from .prepared import Prepared, PreparedCache
from .registry import available, register_strategy, unregister_strategy
from .strategies._common import padded as _padded, unpad as _unpad, zeros as _zeros
from .runtime import get_num_threads, set_num_threads

__all__ = ["conv", "conv_grad_input", "conv_grad_weight", "convolve", "pool", "pool_grad",
           "global_pool", "matmul", "available", "select", "use", "set_num_threads",
           "get_num_threads", "ConvParams", "conv_params", "workspace_bytes", "conv_flops",
           "prepare", "Prepared", "PreparedCache", "register_strategy", "unregister_strategy"]



class _Forced(threading.local):
    """What :func:`use` forces, per thread: a block in one thread leaves the others alone."""
    strategy = None
    backend = None


_forced = _Forced()
_OPS = {"fwd": "conv", "grad_input": "conv_grad_input", "grad_weight": "conv_grad_weight"}
_PASS_OF = {v: k for k, v in _OPS.items()}


@contextlib.contextmanager
def use(strategy=None, backend=None):
    """Within the block, strategy="auto"/backend="auto" mean these (explicit requests win).

    The setting belongs to the calling thread; other threads keep their own.

    >>> with kernels.use(strategy="fft"):                 # doctest: +SKIP
    ...     y = kernels.conv(x, w)
    """
    old = (_forced.strategy, _forced.backend)
    if strategy is not None:
        _check_strategy_name(strategy, "use")
    if backend is not None:
        _check_backend_name(backend, "use")
    _forced.strategy, _forced.backend = strategy or old[0], backend or old[1]
    try:
        yield
    finally:
        _forced.strategy, _forced.backend = old


def select(x_shape, w_shape, *, stride=1, padding=0, dilation=1, groups=1, dtype="float32",
           need_backward=False, pass_="fwd", device="cpu"):
    """Choose (strategy, backend, reason) for a convolution of these shapes.

    Pure and public: CONVLAB_STRATEGY > autotune cache ("measured") > the strategies' rules
    from bench data (kernels.config.RULES) > direct.  The reason is one line, shown by
    model.summary() and the CLI.  ``pass_`` ("fwd", "grad_input" or "grad_weight") asks for
    the pass that strategy="auto" runs in conv / conv_grad_input / conv_grad_weight: each
    pass is chosen on its own.  ``device`` ("cpu" or "cuda") picks the backend columns chosen
    from: device arrays run on "cuda".

    >>> kernels.select((8, 16, 32, 32), (16, 16, 3, 3), padding=1)[0]   # doctest: +SKIP
    'winograd'
    """
    if pass_ not in _OPS:
        raise ValueError(f"select: pass_ must be 'fwd', 'grad_input' or 'grad_weight', "
                         f"received {pass_!r}")
    return registry.select(x_shape, w_shape, stride=stride, padding=padding,
                           dilation=dilation, groups=groups, dtype=dtype,
                           need_backward=need_backward, pass_=pass_, device=device)


# --------------------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------------------

def _check_strategy_name(strategy, op):
    if not isinstance(strategy, str):
        raise TypeError(f"{op}: strategy must be a string, received {strategy!r}")
    choices = ("auto",) + registry.strategies()
    if strategy not in choices:
        raise ValueError(f"{op}: unknown strategy {strategy!r}, expected one of {choices}")


def _check_backend_name(backend, op):
    if not isinstance(backend, str):
        raise TypeError(f"{op}: backend must be a string, received {backend!r}")
    if backend not in ("auto",) + registry.BACKENDS + ("numpy",):
        raise ValueError(f"{op}: unknown backend {backend!r}, expected one of "
                         f"{('auto',) + registry.BACKENDS}")


def _dispatch(op, p, x_shape, w_shape, dtype, strategy, backend, device):
    """(strategy name, strategy, backend) for a validated request on ``device`` ("cpu" or
    "cuda"); raises before any kernel runs."""
    _check_strategy_name(strategy, op)
    _check_backend_name(backend, op)
    if strategy == "auto" and _forced.strategy:
        strategy = _forced.strategy
    if backend == "auto" and _forced.backend and strategy != "reference" and (
            registry.device_of_backend(_forced.backend) == device):
        backend = _forced.backend
    x5, w5, p3 = registry._lift(x_shape), registry._lift(w_shape), p.as3d()
    _check_padded(op, p, x_shape, w_shape)
    requested = backend
    pass_ = _PASS_OF[op]
    if strategy == "auto":
        strategy, chosen, _ = registry._select(p, tuple(x_shape), tuple(w_shape),
                                               np.dtype(dtype).name, pass_ != "fwd", pass_,
                                               device)
        if backend == "auto":
            backend = chosen
    mod = registry.strategy_module(strategy)
    if mod is None:
        raise ValueError(f"{op}: strategy {strategy!r} is not part of this build; available: "
                         f"{sorted({s for s, _ in available('conv')})}")
    reason = mod.supports(p3, x5, w5)
    if reason is not None:
        raise ValueError(f"{op}: strategy {strategy!r} cannot serve x {tuple(x_shape)}, "
                         f"w {tuple(w_shape)}, stride={p.stride}, dilation={p.dilation}, "
                         f"groups={p.groups}: {reason}")
    if mod.BACKENDS == ("numpy",):
        if backend not in ("auto", "numpy"):
            raise ValueError(f"{op}: strategy {strategy!r} has no backend choice, received "
                             f"backend={backend!r}")
        return strategy, mod, "numpy"
    cols = registry.DEVICE_BACKENDS[device]
    if backend == "auto":
        backend = registry._pick_backend(strategy, device)
        if backend is None:
            whys = "; ".join(f"{registry.usable(strategy, b)}" for b in mod.BACKENDS
                             if b in cols) or f"it runs on {mod.BACKENDS}"
            raise ValueError(f"{op}: strategy {strategy!r} cannot run on {device!r} arrays "
                             f"here: {whys}")
    elif backend not in cols:
        raise ValueError(f"{op}: backend {backend!r} cannot take {device!r} arrays; expected "
                         f"one of {('auto',) + cols}")
    if requested == "auto":     # a size one backend cannot index goes to another
        backend = registry.fit_backend(backend, mod, p3, x5, w5, device)
    why = registry.usable(strategy, backend)
    if why is not None:
        raise ValueError(f"{op}: strategy {strategy!r} on backend {backend!r}: {why}")
    limit = registry.backend_limit(backend, p3, x5, w5)
    if limit is not None:
        raise ValueError(f"{op}: {limit}")
    return strategy, mod, backend


def _on_device(backend, *arrays):
    """"cuda" when any array is a device array or the cuda backend is asked for."""
    if _arrays.any_device(*arrays):
        return "cuda"
    if backend == "cuda" or (backend == "auto" and _forced.backend == "cuda"):
        return "cuda"
    return "cpu"


def _payload(prepared, name, mod, be, pass_, w5, p3, x5, dtype, op):
    """The strategy's prepared weight for this call: from a :class:`Prepared` handle (when
    it was made for this strategy and backend) or a :class:`PreparedCache` (made on a miss)."""
    if prepared is None:
        return None
    key = _check_handle(prepared, pass_, x5, w5.shape, p3, dtype, op)
    if isinstance(prepared, Prepared):
        return prepared.payload if (prepared.strategy, prepared.backend) == (name, be) else None
    if not isinstance(prepared, PreparedCache):
        raise TypeError(f"{op}: prepared must be a kernels.Prepared (kernels.prepare) or a "
                        f"kernels.PreparedCache, received {type(prepared).__name__}")
    shared = getattr(mod, "PREPARE_SHARED", {}).get(pass_, pass_)
    ck = (name, be, shared) + key
    hit = prepared.lookup(ck)
    if hit is PreparedCache.MISS:
        hit = prepared.store(ck, mod.prepare(w5, p3, tuple(x5), be, shared))
    return hit


def _check_handle(prepared, pass_, x5, w5_shape, p3, dtype, op):
    """The call's key; a :class:`Prepared` handle made for another pass, shapes, parameters
    or dtype raises ValueError."""
    if prepared is not None and not isinstance(prepared, (Prepared, PreparedCache)):
        raise TypeError(f"{op}: prepared must be a kernels.Prepared (kernels.prepare) or a "
                        f"kernels.PreparedCache, received {type(prepared).__name__}")
    key = (tuple(x5), tuple(w5_shape), p3, np.dtype(dtype).name)
    if isinstance(prepared, Prepared) and (prepared.pass_ != pass_ or prepared.key != key):
        raise ValueError(f"{op}: prepared was made for pass {prepared.pass_!r}, x "
                         f"{prepared.key[0]}, w {prepared.key[1]}, "
                         f"{prepared.key[3]}; this call is pass {pass_!r}, x {key[0]}, "
                         f"w {key[1]}, {key[3]} (same padding/stride/groups too)")
    return key


def _conv_call(op, x_shape, w, p, dtype, strategy, backend, device, prepared):
    """Dispatch and the prepared weight of one pass."""
    pass_ = _PASS_OF[op]
    if isinstance(prepared, Prepared):       # "auto" means the handle's own choice
        strategy = prepared.strategy if strategy == "auto" else strategy
        backend = prepared.backend if backend == "auto" else backend
    name, mod, be = _dispatch(op, p, x_shape, w.shape, dtype, strategy, backend, device)
    if be == "numpy" or prepared is None:
        return mod, be, None
    w5 = to5d(_operand(w, dtype))
    return mod, be, _payload(prepared, name, mod, be, pass_, w5, p.as3d(),
                             registry._lift(x_shape), dtype, op)


def _memory_bytes():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _check_memory(op, shape, dtype):
    """Refuse a host result larger than this machine's memory (a 1-element input with
    padding 2**30 asks for 2**31 outputs) before allocating it."""
    need = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    have = _memory_bytes()
    if have and need > have:
        raise ValueError(f"{op}: the result of shape {tuple(shape)} would take "
                         f"{need / 2**30:.3g} GiB, more than this machine's "
                         f"{have / 2**30:.3g} GiB of memory")


# A padded input beyond 64 times x plus 2**26 elements is refused: no layer pads like that,
# and what reaches here after _trim (padding below one dilated kernel) but still pads this
# much is a kernel dilated far beyond its input (dilation 2**30 on 1 sample asks for an
# 8 GiB padded copy to compute one output).
PAD_LIMIT_FACTOR = 64
PAD_LIMIT_EXTRA = 2**26


def _check_padded(op, p, x_shape, w_shape):
    x_elems = int(np.prod(x_shape, dtype=object))
    padded = int(x_shape[0]) * int(x_shape[1]) * int(np.prod(p.padded_spatial(x_shape[2:]),
                                                             dtype=object))
    if padded > PAD_LIMIT_FACTOR * x_elems + PAD_LIMIT_EXTRA:
        raise ValueError(f"{op}: padding={p.padding} with dilation={p.dilation} and w "
                         f"{tuple(w_shape)} makes a padded input of {padded} elements from x "
                         f"{tuple(x_shape)} ({x_elems} elements); refused: more than "
                         f"{PAD_LIMIT_FACTOR}x x plus 2**26 elements")


def _operand(a, dtype, contiguous=False):
    """A host ``a`` in ``dtype``, writeable (and C-contiguous when asked): read-only inputs
    (np.load(mmap_mode="r"), broadcast views) are copied once here, after validation and
    dispatch, because compiled kernels are specialised for writeable arrays (Numba types a
    read-only array apart and some kernels write through views of their inputs).  Device
    arrays pass through untouched (they are checked C-contiguous at the door)."""
    if _arrays.is_device(a):
        return a
    return np.require(a, dtype, ["C", "W"] if contiguous else ["W"])


def _trim(p, x_shape, w_shape):
    """The part of a convolution that reads the input, when padding or stride make most of
    it read zeros only (padding of a whole dilated kernel or more, or one output with a
    stride > 1); None otherwise.

    Returns None, "zero" (no output reads the input) or (p_sub, x_index, y_index): the
    convolution of x[x_index] with ``p_sub`` gives y[y_index], every other output is 0.
    Padding 2**30 for a 3-element output thus costs no 2**30-element padded copy.
    """
    if not any(lo >= (d * (k - 1) + 1) or hi >= (d * (k - 1) + 1) or
               (s > 1 and o == 1)
               for (lo, hi), d, k, s, o in zip(p.padding, p.dilation, w_shape[2:], p.stride,
                                               p.out_spatial(x_shape[2:], w_shape[2:]))):
        return None
    pads, strides, xi, yi = [], [], [], []
    for n, k, s, d, (lo, hi), o in zip(x_shape[2:], w_shape[2:], p.stride, p.dilation,
                                       p.padding, p.out_spatial(x_shape[2:], w_shape[2:])):
        kk = d * (k - 1) + 1
        t0 = max(0, -(-(lo - kk + 1) // s))          # first output whose window reaches x
        t1 = min(o - 1, (lo + n - 1) // s)           # last output whose window starts in x
        if t0 > t1:
            return "zero"
        start, end = t0 * s - lo, t1 * s + kk - 1 - lo   # x coordinates the outputs read
        c0, e0 = max(start, 0), min(end, n - 1)
        pads.append((c0 - start, end - e0))
        strides.append(1 if t0 == t1 else s)
        xi.append(slice(c0, e0 + 1))
        yi.append(slice(t0, t1 + 1))
    sub = ConvParams(p.ndim, tuple(strides), tuple(pads), p.dilation, p.groups)
    full = (slice(None), slice(None))
    return sub, full + tuple(xi), full + tuple(yi)


def _pad_arg(p):
    return tuple(tuple(pair) for pair in p.padding)


def _trimmed(op, p, x_shape, w_shape, strategy, backend, dev_in, prepared, dtype):
    """_trim's answer for a call on host arrays (device arrays are never trimmed: they run
    whole, within _check_padded's bound); the names and a :class:`Prepared` handle are
    checked first, as the untrimmed call would check them."""
    if dev_in:
        return None
    trim = _trim(p, x_shape, w_shape)
    if trim is not None:
        _check_strategy_name(strategy, op)
        _check_backend_name(backend, op)
        _check_handle(prepared, _PASS_OF[op], registry._lift(x_shape),
                      registry._lift(w_shape), p.as3d(), dtype, op)
    return trim


def _shape_arg(shape, name, op, ndim=None):
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"{op}: {name} must be a tuple of ints, received {shape!r}")
    shape = tuple(int(s) for s in shape)
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{op}: {name} must have {ndim} entries, received {shape}")
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: {name} must not have negative sizes, received {shape}")
    return shape


def _run(mod, be, fn, args):
    """Run one pass of the strategy; a host-only strategy (the reference) given device
    arrays runs on host copies and its result goes back to the device."""
    if be != "numpy" or not _arrays.any_device(*args[:2]):
        return getattr(mod, fn)(*args)
    from numba import cuda
    out = getattr(mod, fn)(*[_arrays.to_host(a) for a in args])
    return cuda.to_device(np.ascontiguousarray(out))


def conv(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=1, strategy="auto",
         backend="auto", prepared=None):
    """N-d cross-correlation (1-3 spatial dims), as in every DL framework.

    Parameters
    ----------
    x : array (N, C, *spatial), NumPy or CUDA device array
    w : array (C_out, C / groups, *kernel)
    bias : array (C_out,) or None
    stride, dilation : int or tuple;  padding : int, tuple, (lo, hi) pairs, "valid", "same"
    groups : int (C for depthwise)
    strategy : "auto", "direct", "im2col", "fft", "winograd", "reference", or a registered
        strategy's name
    backend : "auto", "numba", "cython", "cuda" ("reference" has no backend choice)
    prepared : None, a :class:`Prepared` from :func:`prepare` (pass "fwd"), or a
        :class:`PreparedCache` the caller keeps while ``w`` stays the same: the weight's
        transform (FFT spectrum, Winograd's G g G^T) is then computed once and reused.

    Returns
    -------
    y : array (N, C_out, *out) with out = floor((in + lo + hi - dilation*(k-1) - 1)/stride) + 1,
        float32 if x and w are float32, else float64.  Device arrays in (or backend="cuda"
        with device arrays) give a numba device array out; NumPy in gives NumPy out.

    Examples
    --------
    >>> kernels.conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), padding="same")
    array([[[2., 3., 3., 3., 2.]]])
    """
    device = _on_device(backend, x, w, bias)
    dev_in = _arrays.any_device(x, w, bias)
    arrs, dtype = _arrays.inputs("conv", device == "cuda", x=x, w=w, bias=bias)
    x, w, bias = arrs["x"], arrs["w"], arrs["bias"]
    p = conv_params(_arrays.shape(x), _arrays.shape(w), stride, padding, dilation, groups,
                    op="conv")
    if bias is not None and _arrays.shape(bias) != (w.shape[0],):
        raise ValueError(f"conv: bias must have shape ({w.shape[0]},) to match w of shape "
                         f"{tuple(w.shape)}, received {tuple(bias.shape)}")
    out_shape = p.out_shape(tuple(x.shape), tuple(w.shape))
    if not dev_in:
        _check_memory("conv", out_shape, dtype)
    trim = _trimmed("conv", p, tuple(x.shape), tuple(w.shape), strategy, backend, dev_in,
                    prepared, dtype)
    if trim is not None:        # host arrays in, host array out
        y = np.zeros(out_shape, dtype=dtype)
        if trim != "zero":
            sub, xi, yi = trim
            y[yi] = conv(x[xi], w, stride=sub.stride, padding=_pad_arg(sub),
                         dilation=sub.dilation, groups=sub.groups, strategy=strategy,
                         backend=backend)
        if bias is not None:
            y += bias.astype(dtype, copy=False).reshape((-1,) + (1,) * p.ndim)
        return y
    mod, be, payload = _conv_call("conv", x.shape, w, p, dtype, strategy, backend, device,
                                  prepared)
    if x.size == 0 or w.size == 0:
        y = _zeros(out_shape, dtype, x)
    else:
        y5 = _run(mod, be, "forward", [to5d(_operand(x, dtype)), to5d(_operand(w, dtype)),
                                       p.as3d(), be, payload])
        y = y5.reshape(out_shape)
    if bias is not None:
        if _arrays.is_device(y):
            backends.load("cuda").add_channel_bias(to5d(y), bias)
        else:
            y += bias.astype(dtype, copy=False).reshape((-1,) + (1,) * p.ndim)
    if device == "cuda" and not dev_in:
        return y.copy_to_host()
    return y


def conv_grad_input(gy, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1,
                    strategy="auto", backend="auto", prepared=None):
    """Gradient of conv w.r.t. its input: gx of shape ``x_shape`` given gy = dL/dy.

    Device arrays in give a device array out; ``prepared`` as in :func:`conv` (pass
    "grad_input": Winograd transforms the flipped kernel, FFT reuses the forward spectrum).

    >>> kernels.conv_grad_input(np.ones((1, 1, 3)), np.ones((1, 1, 3)), (1, 1, 5))
    array([[[1., 2., 3., 2., 1.]]])
    """
    return _gradient("conv_grad_input", gy, w, "w", x_shape,
                     dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
                     strategy, backend, prepared)


def conv_grad_weight(gy, x, w_shape, *, stride=1, padding=0, dilation=1, groups=1,
                     strategy="auto", backend="auto"):
    """Gradient of conv w.r.t. its weight: gw of shape ``w_shape`` given gy = dL/dy.

    Device arrays in give a device array out.

    >>> kernels.conv_grad_weight(np.ones((1, 1, 3)), np.arange(5.0).reshape(1, 1, 5),
    ...                          (1, 1, 3))
    array([[[3., 6., 9.]]])
    """
    return _gradient("conv_grad_weight", gy, x, "x", w_shape,
                     dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
                     strategy, backend, None)


def _gradient(op, gy, a, a_name, shape, kw, strategy, backend, prepared):
    """conv_grad_input (``a`` the weight w, ``shape`` x's) and conv_grad_weight (``a`` the
    input x, ``shape`` w's): validate, dispatch, run; device arrays in, device array out."""
    device = _on_device(backend, gy, a)
    dev_in = _arrays.any_device(gy, a)
    arrs, dtype = _arrays.inputs(op, device == "cuda", **{"gy": gy, a_name: a})
    gy, a = arrs["gy"], arrs[a_name]
    grad_input = a_name == "w"
    shape = _shape_arg(shape, "x_shape" if grad_input else "w_shape", op)
    x_shape, w_shape = (shape, tuple(a.shape)) if grad_input else (tuple(a.shape), shape)
    p = conv_params(x_shape, w_shape, op=op, **kw)
    expect = p.out_shape(x_shape, w_shape)
    if tuple(gy.shape) != expect:
        raise ValueError(f"{op}: gy must have the output shape {expect} of x {x_shape} and "
                         f"w {w_shape}, received {tuple(gy.shape)}")
    if not dev_in:
        _check_memory(op, shape, dtype)
    trim = _trimmed(op, p, x_shape, w_shape, strategy, backend, dev_in, prepared, dtype)
    if trim is not None:        # host arrays in, host array out
        out = np.zeros(shape, dtype=dtype)
        if trim != "zero":
            sub, xi, yi = trim
            sub_kw = dict(stride=sub.stride, padding=_pad_arg(sub), dilation=sub.dilation,
                          groups=sub.groups, strategy=strategy, backend=backend)
            if grad_input:
                sub_shape = tuple(len(range(*sl.indices(n))) for sl, n in zip(xi, x_shape))
                out[xi] = conv_grad_input(gy[yi], a, sub_shape, **sub_kw)
            else:
                out = conv_grad_weight(gy[yi], a[xi], w_shape, **sub_kw)
        return out
    if grad_input:
        mod, be, payload = _conv_call(op, x_shape, a, p, dtype, strategy, backend, device,
                                      prepared)
        extra = [payload]
    else:
        _, mod, be = _dispatch(op, p, x_shape, w_shape, dtype, strategy, backend, device)
        extra = []
    if gy.size == 0 or a.size == 0 or 0 in shape:
        out = _zeros(shape, dtype, gy)
    else:
        gy5 = to5d(_operand(gy, dtype, contiguous=True))
        args = [gy5, to5d(_operand(a, dtype)), registry._lift(shape), p.as3d(), be]
        out = _run(mod, be, "grad_input" if grad_input else "grad_weight",
                   args + extra).reshape(shape)
    return out.copy_to_host() if device == "cuda" and not dev_in else out


def prepare(w, x_shape, *, stride=1, padding=0, dilation=1, groups=1, strategy="auto",
            backend="auto", pass_="fwd", dtype=None):
    """The weight's transform for one pass, to pass as ``prepared=`` while ``w`` stays the
    same (the caller's promise: nothing here can see an in-place edit of ``w``).

    The strategy and backend are chosen as the pass would choose them (strategy="auto" runs
    select()); the handle records them, with the shapes, parameters and dtype it was made
    for.  A call given the handle with strategy="auto" runs the handle's strategy and
    backend; a call that asks for another strategy runs without it; a call with other
    shapes, parameters or dtype raises ValueError.  Direct and im2col have nothing to
    prepare (``payload`` None).

    Parameters
    ----------
    w : array (C_out, C / groups, *kernel), NumPy or device array
    x_shape : tuple, the input shape of the calls it serves
    pass_ : "fwd" (for :func:`conv`) or "grad_input" (for :func:`conv_grad_input`)
    dtype : the calls' compute dtype (default: w's); float64 when x or w is float64

    Examples
    --------
    >>> w = np.random.rand(4, 4, 3, 3).astype(np.float32)
    >>> h = kernels.prepare(w, (2, 4, 16, 16), padding=1, strategy="winograd")
    >>> h.strategy, h.payload["U"].shape                    # doctest: +SKIP
    ('winograd', (36, 4, 4))
    >>> y = kernels.conv(np.ones((2, 4, 16, 16), np.float32), w, padding=1, prepared=h)
    """
    op = "prepare"
    if pass_ not in ("fwd", "grad_input"):
        raise ValueError(f"{op}: pass_ must be 'fwd' or 'grad_input' (the weight gradient "
                         f"transforms no weight), received {pass_!r}")
    device = _on_device(backend, w)
    arrs, wdt = _arrays.inputs(op, device == "cuda", w=w)
    w = arrs["w"]
    if dtype is None:
        dtype = wdt
    elif np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{op}: dtype must be float32 or float64, received {dtype!r}")
    x_shape = _shape_arg(x_shape, "x_shape", op)
    p = conv_params(x_shape, tuple(w.shape), stride, padding, dilation, groups, op=op)
    name, mod, be = _dispatch(_OPS[pass_], p, x_shape, tuple(w.shape), dtype, strategy,
                              backend, device)
    key = (registry._lift(x_shape), registry._lift(w.shape), p.as3d(), np.dtype(dtype).name)
    payload = None
    if be != "numpy" and w.size and 0 not in x_shape:
        shared = getattr(mod, "PREPARE_SHARED", {}).get(pass_, pass_)
        payload = mod.prepare(to5d(_operand(w, dtype)), p.as3d(), key[0], be, shared)
    return Prepared(name, be, pass_, key, payload)


def convolve(x, w, bias=None, **kwargs):
    """Classic (signal-processing) convolution: the kernel is flipped along every spatial
    dim before the cross-correlation of :func:`conv`.  Use it for filters written in the
    textbook convention (Sobel, Gaussian derivatives); CNN layers use :func:`conv`."""
    w = as_float_array(w, "w", "convolve")
    if w.ndim not in (3, 4, 5):
        raise ValueError(f"convolve: w must have 3, 4 or 5 dims (C_out, C_in/groups, *kernel), "
                         f"received shape {w.shape}")
    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)
    return conv(x, np.ascontiguousarray(w[flip]), bias, **kwargs)


def conv_flops(x_shape, w_shape, *, stride=1, padding=0, dilation=1, groups=1):
    """Multiply-adds x 2 of the direct algorithm (the usual GFLOP/s numerator)."""
    p = conv_params(x_shape, w_shape, stride, padding, dilation, groups, op="conv_flops")
    out = p.out_shape(x_shape, w_shape)
    n = 2 * int(np.prod(out, dtype=np.int64)) * int(np.prod(w_shape[1:], dtype=np.int64))
    return n


def workspace_bytes(strategy, x_shape, w_shape, *, stride=1, padding=0, dilation=1, groups=1,
                    dtype="float32"):
    """Extra memory a strategy needs beyond x, w and y (bytes)."""
    _check_strategy_name(strategy, "workspace_bytes")
    if strategy == "auto":
        raise ValueError("workspace_bytes: strategy must name a strategy, received 'auto'")
    p = conv_params(x_shape, w_shape, stride, padding, dilation, groups, op="workspace_bytes")
    mod = registry.strategy_module(strategy)
    if mod is None:
        return 0
    return int(mod.workspace_bytes(p.as3d(), registry._lift(x_shape), registry._lift(w_shape),
                                   np.dtype(dtype).itemsize))


# --------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------

_POOL_BACKENDS = ("numba", "cython", "cuda")


def _pool_setup(x, kind, size, stride, padding, backend, op, device):
    if not isinstance(kind, str) or kind not in backends.POOL_KINDS:
        raise ValueError(f"{op}: kind must be one of {tuple(backends.POOL_KINDS)}, received "
                         f"{kind!r}")
    _check_backend_name(backend, op)
    cols = registry.DEVICE_BACKENDS[device]
    if backend != "auto" and backend not in cols:
        raise ValueError(f"{op}: backend {backend!r} cannot take {device!r} arrays; expected "
                         f"one of {('auto',) + cols}")
    p = pool_params(tuple(x.shape), size, stride, padding, op=op)
    be = registry.resolve_backend(backend, cols, op)
    padded = x.shape[0] * x.shape[1] * int(np.prod(p.padded_spatial(tuple(x.shape[2:])),
                                                      dtype=object))
    if be == "cython" and padded > registry.CYTHON_MAX_ELEMENTS:
        if backend == "auto" and registry.backend_ok("numba"):
            be = "numba"
        else:
            raise ValueError(f"{op}: backend 'cython' indexes arrays with C ints: the padded "
                             f"x would have {padded} elements (x {tuple(x.shape)}), more "
                             f"than 2**31 - 1; use backend='numba'")
    return p, be


def _pool_forward5(x, kind, p, be):
    p3 = p.as3d()
    x5 = to5d(_operand(x, x.dtype))
    xp = _padded(x5, p3, -np.inf if kind == "max" else 0.0)
    k3 = (1,) * (3 - p.ndim) + p.size
    out = tuple(x.shape[:2]) + p3.out_spatial(tuple(x5.shape[2:]), k3)
    y = _empty_like_device(out, x.dtype, x)
    backends.load(be).pool_forward(xp, y, backends.POOL_KINDS[kind], *k3, *p3.stride)
    return xp, y, k3


def _empty_like_device(shape, dtype, like):
    from .strategies._common import empty
    return empty(shape, dtype, like)


def pool(x, kind, size, *, stride=None, padding=0, backend="auto"):
    """Pooling over 1-3 spatial dims.

    kind : "max", "avg" (divides by the full window, padding included), "sum",
           "l2" (sqrt of the sum of squares)
    size, stride (None = size), padding : int or tuple; padding also "valid"/"same"
    Returns (N, C, *out) with out = floor((in + lo + hi - size) / stride) + 1.  A device
    array in runs on the cuda backend and gives a device array out.

    >>> kernels.pool(np.arange(16.).reshape(1, 1, 4, 4), "max", 2)
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """
    op = "pool"
    device = _on_device(backend, x)
    dev_in = _arrays.any_device(x)
    arrs, _ = _arrays.inputs(op, device == "cuda", x=x)
    x = arrs["x"]
    p, be = _pool_setup(x, kind, size, stride, padding, backend, op, device)
    out_shape = tuple(x.shape[:2]) + p.out_spatial(tuple(x.shape[2:]), p.size)
    if not dev_in:
        _check_memory(op, out_shape, x.dtype)
    if x.size == 0:
        y = _zeros(out_shape, x.dtype, x)
    else:
        y = _pool_forward5(x, kind, p, be)[1].reshape(out_shape)
    return y.copy_to_host() if device == "cuda" and not dev_in else y


def pool_grad(gy, x, kind, size, *, stride=None, padding=0, backend="auto"):
    """Gradient of :func:`pool` w.r.t. x (max routes to the first maximal element).

    >>> kernels.pool_grad(np.ones((1, 1, 1, 2)), np.arange(4.).reshape(1, 1, 1, 4), "max", 2)
    array([[[[0., 1., 0., 1.]]]])
    """
    op = "pool_grad"
    device = _on_device(backend, gy, x)
    dev_in = _arrays.any_device(gy, x)
    arrs, _ = _arrays.inputs(op, device == "cuda", x=x)
    x = arrs["x"]
    p, be = _pool_setup(x, kind, size, stride, padding, backend, op, device)
    gy = (_arrays.as_device(gy, "gy", op) if device == "cuda"
          else as_float_array(gy, "gy", op))
    out_shape = tuple(x.shape[:2]) + p.out_spatial(tuple(x.shape[2:]), p.size)
    if tuple(gy.shape) != out_shape:
        raise ValueError(f"{op}: gy must have the pooled shape {out_shape} of x "
                         f"{tuple(x.shape)}, received {tuple(gy.shape)}")
    if device == "cuda" and gy.dtype != x.dtype:
        raise TypeError(f"{op}: device arrays must share one dtype, received gy {gy.dtype}, "
                        f"x {x.dtype}")
    if x.size == 0:
        gx = _zeros(tuple(x.shape), x.dtype, x)
    else:
        gy = _arrays.cast(gy, x.dtype)
        xp, y, k3 = _pool_forward5(x, kind, p, be)
        gxp = _empty_like_device(tuple(xp.shape), x.dtype, x)
        p3 = p.as3d()
        backends.load(be).pool_backward(to5d(_operand(gy, x.dtype, contiguous=True)), xp, y,
                                        gxp,
                                        backends.POOL_KINDS[kind], *k3, *p3.stride)
        gx = _unpad(gxp, tuple(to5d(x).shape), p3).reshape(tuple(x.shape))
    return gx.copy_to_host() if device == "cuda" and not dev_in else gx


def global_pool(x, kind, *, backend="auto"):
    """Pool over all spatial positions: (N, C, *spatial) -> (N, C).

    >>> kernels.global_pool(np.arange(8.).reshape(1, 2, 4), "avg")
    array([[1.5, 5.5]])
    """
    if not _arrays.is_device(x):
        x = as_float_array(x, "x", "global_pool")
    shape = tuple(x.shape)
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"global_pool: x must have 3, 4 or 5 dims (N, C, *spatial), "
                         f"received shape {shape}")
    if any(s == 0 for s in shape[2:]):
        raise ValueError(f"global_pool: spatial dims must be non-empty, received {shape}")
    return pool(x, kind, shape[2:], backend=backend).reshape(shape[:2])


# --------------------------------------------------------------------------------------
# matmul
# --------------------------------------------------------------------------------------

def matmul(a, b, *, backend="auto"):
    """c = a @ b for 2-D arrays.  backend "blas" (numpy), "numba", "cython" or "cuda"
    (hand-written blocked/tiled kernels, there to be compared with BLAS); "auto" is BLAS on
    the CPU and the cuda kernel for device arrays (which give a device array out).

    >>> kernels.matmul(np.eye(2), np.arange(4.).reshape(2, 2))
    array([[0., 1.],
           [2., 3.]])
    """
    op = "matmul"
    if not isinstance(backend, str):
        raise TypeError(f"{op}: backend must be a string, received {backend!r}")
    if backend not in ("auto", "blas", "numba", "cython", "cuda"):
        raise ValueError(f"{op}: unknown backend {backend!r}, expected one of "
                         f"('auto', 'blas', 'numba', 'cython', 'cuda')")
    device = _on_device(backend, a, b)
    dev_in = _arrays.any_device(a, b)
    arrs, dtype = _arrays.inputs(op, device == "cuda", a=a, b=b)
    a, b = arrs["a"], arrs["b"]
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise ValueError(f"{op}: a and b must be 2-D, received a {tuple(a.shape)} and b "
                         f"{tuple(b.shape)}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"{op}: inner dims must match: a {tuple(a.shape)} @ b "
                         f"{tuple(b.shape)} needs a.shape[1] == b.shape[0]")
    if device == "cuda":
        if backend not in ("auto", "cuda"):
            raise ValueError(f"{op}: backend {backend!r} cannot take device arrays; expected "
                             f"'auto' or 'cuda'")
        be = registry.resolve_backend("cuda", _POOL_BACKENDS, op)
        c = (_zeros if a.shape[1] == 0 else _empty_like_device)(
            (a.shape[0], b.shape[1]), dtype, a)
        if c.size and a.shape[1]:
            backends.load(be).matmul(a, b, c)
        return c if dev_in else c.copy_to_host()
    a = _operand(a, dtype, contiguous=True)
    b = _operand(b, dtype, contiguous=True)
    if backend in ("auto", "blas"):
        return a @ b
    be = registry.resolve_backend(backend, _POOL_BACKENDS, op)
    c = np.empty((a.shape[0], b.shape[1]), dtype=dtype)
    if c.size:
        if a.shape[1] == 0:
            c[...] = 0
        else:
            backends.load(be).matmul(a, b, c)
    return c
