"""convlab kernels: convolution, pooling and matmul on numpy arrays.

NumPy arrays in, NumPy arrays out; nothing here knows about Tensors or layers.  Every public
function validates its arguments first (ValueError/TypeError naming the argument, the
expected and the received value), then dispatches to a strategy x backend pair::

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

# OpenMP threads that spin after a parallel region steal the cores BLAS is about to use
# (measured: im2col 2-3x slower with the default policy).  Must be set before libgomp loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Likewise OpenBLAS: by default its idle threads busy-wait 2**28 cycles (~0.1 s) after every
# call, so the parallel copy kernel that follows a GEMM (im2col's next chunk, Winograd's
# output transform) runs on half the machine.  4 is OpenBLAS's minimum (sleep at once).
# Measured on 2 cores (x 4x64x56x56, 1x1/s2 im2col, alternating backends): 1.0-1.9 ms ->
# 0.8-1.0 ms.  Read when the library loads: numpy's OpenBLAS is only covered when kernels
# (or engine) is imported before numpy; SciPy's is loaded lazily, after this line.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


def _keep_freed_memory():
    """Let glibc keep freed buffers of up to 32 MiB for reuse instead of unmapping them.

    By default glibc serves blocks above 128 KiB with fresh mmap()s and trims the heap top
    above 128 KiB, so until some large block happens to be freed (which raises both limits),
    every kernel call page-faults its output and workspace anew: conv1 of the MNIST net
    (batch 64, im2col) took 7.6 ms and 2,300 page faults a call, 1.4 ms and none once the
    limits were up.  This sets the limits glibc would reach on its own after a 32 MiB free.
    Skipped off glibc, when MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ are set, or
    with CONVLAB_MALLOC=default.
    """
    import platform
    if (os.environ.get("CONVLAB_MALLOC") == "default" or platform.libc_ver()[0] != "glibc"
            or "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ):
        return
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3       # <malloc.h>
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 64 << 20)
    except (OSError, AttributeError):
        pass


_keep_freed_memory()

import numpy as np

# The strategies live in the subpackage kernels/conv/, while the public function is
# kernels.conv().  Importing the subpackage first, before ``def conv`` below, leaves the
# attribute bound to the function: later imports of kernels.conv.<strategy> find the package
# in sys.modules and do not rebind kernels.conv.
from . import conv as _strategies  # noqa: F401  (must precede def conv)
from . import backends, config, registry
from .params import (ConvParams, as_float_array, common_dtype, conv_params, pad5d,
                     pool_params, to5d)
from .registry import available
from .threads import get_num_threads, set_num_threads

__all__ = ["conv", "conv_grad_input", "conv_grad_weight", "convolve", "pool", "pool_grad",
           "global_pool", "matmul", "available", "select", "use", "set_num_threads",
           "get_num_threads", "ConvParams", "conv_params", "workspace_bytes", "conv_flops"]

_STRATEGY_CHOICES = ("auto",) + registry.STRATEGIES


class _Forced(threading.local):
    """What :func:`use` forces, per thread: a block in one thread leaves the others alone."""
    strategy = None
    backend = None


_forced = _Forced()


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
           need_backward=False, pass_="fwd"):
    """Choose (strategy, backend, reason) for a convolution of these shapes.

    Pure and public: CONVLAB_STRATEGY > autotune cache ("measured") > rules from bench data
    (kernels.registry.RULES) > direct.  The reason is one line, shown by model.summary() and
    the CLI.  ``pass_`` ("fwd", "grad_input" or "grad_weight") asks for the pass that
    strategy="auto" runs in conv / conv_grad_input / conv_grad_weight: each pass is chosen
    on its own.
    """
    if pass_ not in ("fwd", "grad_input", "grad_weight"):
        raise ValueError(f"select: pass_ must be 'fwd', 'grad_input' or 'grad_weight', "
                         f"received {pass_!r}")
    return registry.select(x_shape, w_shape, stride=stride, padding=padding,
                           dilation=dilation, groups=groups, dtype=dtype,
                           need_backward=need_backward, pass_=pass_)


# --------------------------------------------------------------------------------------
# convolution
# --------------------------------------------------------------------------------------

def _check_strategy_name(strategy, op):
    if not isinstance(strategy, str):
        raise TypeError(f"{op}: strategy must be a string, received {strategy!r}")
    if strategy not in _STRATEGY_CHOICES:
        raise ValueError(f"{op}: unknown strategy {strategy!r}, expected one of "
                         f"{_STRATEGY_CHOICES}")


def _check_backend_name(backend, op):
    if not isinstance(backend, str):
        raise TypeError(f"{op}: backend must be a string, received {backend!r}")
    if backend not in ("auto",) + registry.BACKENDS + ("numpy",):
        raise ValueError(f"{op}: unknown backend {backend!r}, expected one of "
                         f"{('auto',) + registry.BACKENDS}")


def _dispatch(op, p, x_shape, w_shape, dtype, strategy, backend, need_backward):
    """(module, backend) for a validated request; raises before any kernel runs."""
    _check_strategy_name(strategy, op)
    _check_backend_name(backend, op)
    if strategy == "auto" and _forced.strategy:
        strategy = _forced.strategy
    if backend == "auto" and _forced.backend and strategy != "reference":
        backend = _forced.backend
    x5, w5, p3 = registry._lift(x_shape), registry._lift(w_shape), p.as3d()
    _check_padded(op, p, x_shape, w_shape)
    requested = backend
    if strategy == "auto":
        pass_ = {"conv": "fwd", "conv_grad_input": "grad_input",
                 "conv_grad_weight": "grad_weight"}[op]
        strategy, chosen, _ = registry._select(p, tuple(x_shape), tuple(w_shape),
                                               np.dtype(dtype).name, need_backward, pass_)
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
    if strategy == "reference":
        if backend not in ("auto", "numpy"):
            raise ValueError(f"{op}: strategy 'reference' has no backend choice, received "
                             f"backend={backend!r}")
        return mod, "numpy"
    be = registry.resolve_backend(backend, mod.BACKENDS, op)
    if requested == "auto":
        be = registry.fit_backend(be, mod, p3, x5, w5)
    limit = registry.backend_limit(be, p3, x5, w5)
    if limit is not None:
        raise ValueError(f"{op}: {limit}")
    return mod, be


def _memory_bytes():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _check_memory(op, shape, dtype):
    """Refuse a result larger than this machine's memory (a 1-element input with padding
    2**30 asks for 2**31 outputs) before allocating it."""
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
    """``a`` in ``dtype``, writeable (and C-contiguous when asked): read-only inputs
    (np.load(mmap_mode="r"), broadcast views) are copied once here, after validation and
    dispatch, because compiled kernels are specialised for writeable arrays (Numba types a
    read-only array apart and some kernels write through views of their inputs)."""
    return np.require(a, dtype, ["C", "W"] if contiguous else ["W"])


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


def conv(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=1, strategy="auto",
         backend="auto"):
    """N-d cross-correlation (1-3 spatial dims), as in every DL framework.

    Parameters
    ----------
    x : array (N, C, *spatial)
    w : array (C_out, C / groups, *kernel)
    bias : array (C_out,) or None
    stride, dilation : int or tuple;  padding : int, tuple, (lo, hi) pairs, "valid", "same"
    groups : int (C for depthwise)
    strategy : "auto", "direct", "im2col", "fft", "winograd", "reference"
    backend : "auto", "numba", "cython" ("reference" has no backend choice)

    Returns
    -------
    y : array (N, C_out, *out) with out = floor((in + lo + hi - dilation*(k-1) - 1)/stride) + 1,
        float32 if x and w are float32, else float64.

    Examples
    --------
    >>> kernels.conv(np.ones((1, 1, 5)), np.ones((1, 1, 3)), padding="same")
    array([[[2., 3., 3., 3., 2.]]])
    """
    x = as_float_array(x, "x", "conv")
    w = as_float_array(w, "w", "conv")
    if bias is not None:
        bias = as_float_array(bias, "bias", "conv")
    p = conv_params(x.shape, w.shape, stride, padding, dilation, groups, op="conv")
    if bias is not None and bias.shape != (w.shape[0],):
        raise ValueError(f"conv: bias must have shape ({w.shape[0]},) to match w of shape "
                         f"{w.shape}, received {bias.shape}")
    dtype = common_dtype(x, w)
    _check_memory("conv", p.out_shape(x.shape, w.shape), dtype)
    trim = _trim(p, x.shape, w.shape)
    if trim is not None:
        y = np.zeros(p.out_shape(x.shape, w.shape), dtype=dtype)
        if trim != "zero":
            sub, xi, yi = trim
            y[yi] = conv(x[xi], w, stride=sub.stride, padding=_pad_arg(sub),
                         dilation=sub.dilation, groups=sub.groups, strategy=strategy,
                         backend=backend)
        if bias is not None:
            y += bias.astype(dtype, copy=False).reshape((-1,) + (1,) * p.ndim)
        return y
    mod, be = _dispatch("conv", p, x.shape, w.shape, dtype, strategy, backend, False)
    out_shape = p.out_shape(x.shape, w.shape)
    if x.size == 0 or w.size == 0:
        y = np.zeros(out_shape, dtype=dtype)
    else:
        y5 = mod.forward(to5d(_operand(x, dtype)), to5d(_operand(w, dtype)),
                         p.as3d(), be)
        y = y5.reshape(out_shape)
    if bias is not None:
        y += bias.astype(dtype, copy=False).reshape((-1,) + (1,) * p.ndim)
    return y


def conv_grad_input(gy, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1,
                    strategy="auto", backend="auto"):
    """Gradient of conv w.r.t. its input: gx of shape ``x_shape`` given gy = dL/dy."""
    op = "conv_grad_input"
    gy = as_float_array(gy, "gy", op)
    w = as_float_array(w, "w", op)
    x_shape = _shape_arg(x_shape, "x_shape", op)
    p = conv_params(x_shape, w.shape, stride, padding, dilation, groups, op=op)
    expect = p.out_shape(x_shape, w.shape)
    if gy.shape != expect:
        raise ValueError(f"{op}: gy must have the output shape {expect} of x {x_shape} and "
                         f"w {w.shape}, received {gy.shape}")
    dtype = common_dtype(gy, w)
    _check_memory(op, x_shape, dtype)
    trim = _trim(p, x_shape, w.shape)
    if trim is not None:
        gx = np.zeros(x_shape, dtype=dtype)
        if trim != "zero":
            sub, xi, yi = trim
            sub_shape = tuple(len(range(*sl.indices(n))) for sl, n in zip(xi, x_shape))
            gx[xi] = conv_grad_input(gy[yi], w, sub_shape, stride=sub.stride,
                                     padding=_pad_arg(sub), dilation=sub.dilation,
                                     groups=sub.groups, strategy=strategy, backend=backend)
        return gx
    mod, be = _dispatch(op, p, x_shape, w.shape, dtype, strategy, backend, True)
    if gy.size == 0 or w.size == 0 or 0 in x_shape:
        return np.zeros(x_shape, dtype=dtype)
    gx = mod.grad_input(to5d(_operand(gy, dtype, contiguous=True)),
                        to5d(_operand(w, dtype)), registry._lift(x_shape), p.as3d(), be)
    return gx.reshape(x_shape)


def conv_grad_weight(gy, x, w_shape, *, stride=1, padding=0, dilation=1, groups=1,
                     strategy="auto", backend="auto"):
    """Gradient of conv w.r.t. its weight: gw of shape ``w_shape`` given gy = dL/dy."""
    op = "conv_grad_weight"
    gy = as_float_array(gy, "gy", op)
    x = as_float_array(x, "x", op)
    w_shape = _shape_arg(w_shape, "w_shape", op)
    p = conv_params(x.shape, w_shape, stride, padding, dilation, groups, op=op)
    expect = p.out_shape(x.shape, w_shape)
    if gy.shape != expect:
        raise ValueError(f"{op}: gy must have the output shape {expect} of x {x.shape} and "
                         f"w {w_shape}, received {gy.shape}")
    dtype = common_dtype(gy, x)
    trim = _trim(p, x.shape, w_shape)
    if trim is not None:
        if trim == "zero":
            return np.zeros(w_shape, dtype=dtype)
        sub, xi, yi = trim
        return conv_grad_weight(gy[yi], x[xi], w_shape, stride=sub.stride,
                                padding=_pad_arg(sub), dilation=sub.dilation,
                                groups=sub.groups, strategy=strategy, backend=backend)
    mod, be = _dispatch(op, p, x.shape, w_shape, dtype, strategy, backend, True)
    if gy.size == 0 or x.size == 0 or 0 in w_shape:
        return np.zeros(w_shape, dtype=dtype)
    gw = mod.grad_weight(to5d(_operand(gy, dtype, contiguous=True)),
                         to5d(_operand(x, dtype)), registry._lift(w_shape), p.as3d(),
                         be)
    return gw.reshape(w_shape)


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
    if mod is None or not hasattr(mod, "workspace_bytes"):
        return 0
    return int(mod.workspace_bytes(p.as3d(), registry._lift(x_shape), registry._lift(w_shape),
                                   np.dtype(dtype).itemsize))


# --------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------

_POOL_BACKENDS = ("numba", "cython", "cuda")


def _pool_setup(x, kind, size, stride, padding, backend, op):
    x = as_float_array(x, "x", op)
    if not isinstance(kind, str) or kind not in backends.POOL_KINDS:
        raise ValueError(f"{op}: kind must be one of {tuple(backends.POOL_KINDS)}, received "
                         f"{kind!r}")
    p = pool_params(x.shape, size, stride, padding, op=op)
    _check_backend_name(backend, op)
    be = registry.resolve_backend(backend, _POOL_BACKENDS, op)
    padded = x.shape[0] * x.shape[1] * int(np.prod(p.padded_spatial(x.shape[2:]),
                                                      dtype=object))
    if be == "cython" and padded > registry.CYTHON_MAX_ELEMENTS:
        if backend == "auto" and registry.backend_ok("numba"):
            be = "numba"
        else:
            raise ValueError(f"{op}: backend 'cython' indexes arrays with C ints: the padded "
                             f"x would have {padded} elements (x {x.shape}), more than "
                             f"2**31 - 1; use backend='numba'")
    return x, p, be


def _pool_forward5(x, kind, p, be):
    p3 = p.as3d()
    fill = -np.inf if kind == "max" else 0.0
    xp = pad5d(to5d(_operand(x, x.dtype)), p3, fill)
    k3 = (1,) * (3 - p.ndim) + p.size
    out = (x.shape[0], x.shape[1]) + p3.out_spatial(to5d(x).shape[2:], k3)
    y = np.empty(out, dtype=x.dtype)
    backends.load(be).pool_forward(xp, y, backends.POOL_KINDS[kind], *k3, *p3.stride)
    return xp, y, k3


def pool(x, kind, size, *, stride=None, padding=0, backend="auto"):
    """Pooling over 1-3 spatial dims.

    kind : "max", "avg" (divides by the full window, padding included), "sum",
           "l2" (sqrt of the sum of squares)
    size, stride (None = size), padding : int or tuple; padding also "valid"/"same"
    Returns (N, C, *out) with out = floor((in + lo + hi - size) / stride) + 1.

    >>> kernels.pool(np.arange(16.).reshape(1, 1, 4, 4), "max", 2)
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """
    x, p, be = _pool_setup(x, kind, size, stride, padding, backend, "pool")
    out_shape = x.shape[:2] + p.out_spatial(x.shape[2:], p.size)
    _check_memory("pool", out_shape, x.dtype)
    if x.size == 0:
        return np.zeros(out_shape, dtype=x.dtype)
    _, y, _ = _pool_forward5(x, kind, p, be)
    return y.reshape(out_shape)


def pool_grad(gy, x, kind, size, *, stride=None, padding=0, backend="auto"):
    """Gradient of :func:`pool` w.r.t. x (max routes to the first maximal element)."""
    op = "pool_grad"
    x, p, be = _pool_setup(x, kind, size, stride, padding, backend, op)
    gy = as_float_array(gy, "gy", op)
    out_shape = x.shape[:2] + p.out_spatial(x.shape[2:], p.size)
    if gy.shape != out_shape:
        raise ValueError(f"{op}: gy must have the pooled shape {out_shape} of x {x.shape}, "
                         f"received {gy.shape}")
    if x.size == 0:
        return np.zeros(x.shape, dtype=x.dtype)
    gy = gy.astype(x.dtype, copy=False)
    xp, y, k3 = _pool_forward5(x, kind, p, be)
    gxp = np.empty(xp.shape, dtype=x.dtype)
    p3 = p.as3d()
    backends.load(be).pool_backward(to5d(_operand(gy, gy.dtype, contiguous=True)), xp, y, gxp,
                                    backends.POOL_KINDS[kind], *k3, *p3.stride)
    crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(p3.padding, to5d(x).shape[2:]))
    return np.ascontiguousarray(gxp[(slice(None), slice(None)) + crop]).reshape(x.shape)


def global_pool(x, kind, *, backend="auto"):
    """Pool over all spatial positions: (N, C, *spatial) -> (N, C)."""
    x = as_float_array(x, "x", "global_pool")
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"global_pool: x must have 3, 4 or 5 dims (N, C, *spatial), "
                         f"received shape {x.shape}")
    if any(s == 0 for s in x.shape[2:]):
        raise ValueError(f"global_pool: spatial dims must be non-empty, received {x.shape}")
    return pool(x, kind, x.shape[2:], backend=backend).reshape(x.shape[:2])


# --------------------------------------------------------------------------------------
# matmul
# --------------------------------------------------------------------------------------

def matmul(a, b, *, backend="auto"):
    """c = a @ b for 2-D arrays.  backend "blas" (numpy), "numba", "cython" or "cuda"
    (hand-written blocked/tiled kernels, there to be compared with BLAS); "auto" is BLAS."""
    op = "matmul"
    a = as_float_array(a, "a", op)
    b = as_float_array(b, "b", op)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"{op}: a and b must be 2-D, received a {a.shape} and b {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"{op}: inner dims must match: a {a.shape} @ b {b.shape} needs "
                         f"a.shape[1] == b.shape[0]")
    if not isinstance(backend, str):
        raise TypeError(f"{op}: backend must be a string, received {backend!r}")
    if backend not in ("auto", "blas", "numba", "cython", "cuda"):
        raise ValueError(f"{op}: unknown backend {backend!r}, expected one of "
                         f"('auto', 'blas', 'numba', 'cython', 'cuda')")
    dtype = common_dtype(a, b)
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
