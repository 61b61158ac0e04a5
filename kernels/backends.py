"""The backend contract: what a compute backend ("numba", "cython", "cuda") provides.

Strategies (kernels/strategies/*.py), pooling and matmul are written once, in Python, against
this table of low-level functions; a backend module implements them with the same names and
signatures.  Each strategy declares the functions it calls (its ``NEEDS``): a backend that
lacks one (a module that did not build, a function not written for that device yet) loses
that strategy only, not the backend (:func:`lacks`).  The pure-Python checks and plans in
front of the CPU backends' loops are shared, in kernels/plan.py.

- ``kernels._numba``  : Numba ``@njit(cache=True)`` kernels (``parallel=True`` + ``prange``
  over independent outputs only);
- ``kernels._cython`` : Cython extension modules (typed memoryviews, fused float32/float64,
  ``nogil``, OpenMP ``prange``; GEMMs through ``scipy.linalg.cython_blas``);
- ``kernels.cuda``    : numba.cuda kernels (numpy or device arrays in; loaded only where a GPU
  or the CUDA simulator is present).

Conventions for every function below:

* Arrays are C-contiguous, 5-D (N, C, D, H, W) -- 1-D and 2-D problems are lifted to 3-D
  with singleton leading spatial dims by the caller -- and all float arrays of one call share
  one dtype, float32 or float64.  Complex arrays (FFT) are complex64 / complex128 matching.
* ``xp`` is the input *already padded* by the caller (zeros, or -inf for max pooling), so
  kernels never see padding.  ``gxp`` is the gradient w.r.t. that padded input.
* Output arrays are preallocated by the caller and are fully overwritten by the kernel
  (the kernel zeroes what it accumulates into).  Functions return None.
* Integers: ``sd, sh, sw`` strides, ``dd, dh, dw`` dilations, ``groups``.

Convolution is cross-correlation::

    y[n, co, od, oh, ow] = sum_{ci, kd, kh, kw} xp[n, g*Cg + ci, od*sd + kd*dd, oh*sh + kh*dh,
                                                   ow*sw + kw*dw] * w[co, ci, kd, kh, kw]
    with g = co // (C_out // groups), Cg = C // groups.

Direct convolution
    direct_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups)
    direct_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups)
    direct_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups)
    The CPU backends also take ``pad=((lo, hi),) * 3``: then xp / gxp are the *unpadded*
    input and its gradient and the kernel pads on the fly (no padded copy).

im2col + GEMM (BLAS for the product; the column buffer holds at most ``max_col_elems``
elements, chunking over output positions when one image's columns would exceed it)
    im2col_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups, max_col_elems)
    im2col_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups, max_col_elems)
    im2col_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups, max_col_elems)

FFT helpers (the transforms themselves are scipy.fft, called by kernels/strategies/fft.py).
X, W, GY ... are complex spectra flattened over frequency: X (N, C, F), W (C_out, Cg, F).
    fft_reduce_forward(X, W, Y, groups)      Y[n,co,f]  = sum_ci X[n,g*Cg+ci,f] * conj(W[co,ci,f])
    fft_reduce_grad_input(GY, W, GX, groups) GX[n,c,f]  = sum_{co in group of c} GY[n,co,f] * W[co,c-g*Cg,f]
    fft_reduce_grad_weight(GY, X, GW, groups) GW[co,ci,f] = sum_n GY[n,co,f] * conj(X[n,g*Cg+ci,f])
    strided_crop(src, dst, sd, sh, sw)       dst[a,b,i,j,k] = src[a,b,i*sd,j*sh,k*sw]  (real 5-D)

Pooling (kind codes: 0 max, 1 avg, 2 sum, 3 l2; avg divides by the full window volume)
    pool_forward(xp, y, kind, kd, kh, kw, sd, sh, sw)
    pool_backward(gy, xp, y, gxp, kind, kd, kh, kw, sd, sh, sw)
        max routes each window's gradient to the first maximal element in (kd, kh, kw)
        scan order; l2: y = sqrt(sum x^2), dy/dx = x / y (0 where y == 0).

Winograd tile transforms (CPU backends; 2-D images x (N, C, H, W), GEMM operands
(alpha^2, channels, tiles) for a chunk of tile rows starting at r0; m 2 or 4)
    winograd_input_transform(x, v, m, r0, pad_top, pad_left, out_h, out_w)
    winograd_output_transform(mm, y, m, r0)
    winograd_output_transform_adjoint(gy, dm, m, r0)

Matmul (2-D, C-contiguous; c = a @ b; a hand-written blocked kernel, to compare with BLAS)
    matmul(a, b, c)

Threads
    set_num_threads(n)
    get_num_threads() -> int
"""
from __future__ import annotations

import importlib

from . import runtime

FUNCTIONS = (
    "direct_forward", "direct_grad_input", "direct_grad_weight",
    "im2col_forward", "im2col_grad_input", "im2col_grad_weight",
    "fft_reduce_forward", "fft_reduce_grad_input", "fft_reduce_grad_weight", "strided_crop",
    "pool_forward", "pool_backward",
    "matmul",
    "set_num_threads", "get_num_threads",
)
# Functions of the contract only some backends provide (strategies that need them are
# offered on those backends only).
OPTIONAL = ("winograd_input_transform", "winograd_output_transform",
            "winograd_output_transform_adjoint")

POOL_KINDS = {"max": 0, "avg": 1, "sum": 2, "l2": 3}

_MODULES = {"numba": "kernels._numba", "cython": "kernels._cython", "cuda": "kernels.cuda"}
_loaded = {}
_errors = {}
_fn_errors = {}      # (backend, function) -> why the function is missing


def load(name):
    """The backend module ``name``, or None (with the reason in :func:`error`) when it cannot
    be imported here (e.g. the Cython extensions were not built).  Applies convlab's
    process-wide settings first (kernels.runtime.ensure: every kernel call comes through
    here)."""
    runtime.ensure()
    if name in _loaded:
        return _loaded[name]
    mod = None
    try:
        mod = importlib.import_module(_MODULES[name])
        if name == "cuda" and not mod.available():
            _errors[name] = ("backend 'cuda' needs a CUDA GPU, or NUMBA_ENABLE_CUDASIM=1 set "
                             "before numba.cuda is first imported (the simulator)")
            _loaded[name] = None
            return None
        if not (callable(getattr(mod, "set_num_threads", None))
                and callable(getattr(mod, "get_num_threads", None))):
            _errors[name] = f"backend {name!r} lacks set_num_threads / get_num_threads"
            mod = None
        else:
            for f, why in getattr(mod, "MISSING", {}).items():
                _fn_errors[(name, f)] = why
            runtime.apply(mod)
    except ImportError as e:
        _errors[name] = f"backend {name!r} could not be imported: {e}"
    _loaded[name] = mod
    return mod


def error(name, function=None):
    """Why backend ``name`` (or its ``function``) is not available, or None."""
    if function is not None and (name, function) in _fn_errors:
        return _fn_errors[(name, function)]
    return _errors.get(name)


def lacks(name, functions):
    """The ``functions`` that backend ``name`` does not provide (all of them when it does
    not load)."""
    mod = load(name)
    if mod is None:
        return list(functions)
    return [f for f in functions if not callable(getattr(mod, f, None))]


def names():
    return tuple(_MODULES)
