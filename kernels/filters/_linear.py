"""Linear filters as 1-D passes, one filtered axis at a time, with three strategies:

- ``separable``: direct 1-D correlation per axis (Numba; vectorised across rows for every
  axis but the last, through a padded line buffer on the last);
- ``running``:   the box (uniform) filter as running sums, O(1) per element whatever the size,
  with scipy's own arithmetic in float64 (``acc += new - old``, ``acc / size``);
- ``fft``:       per-axis FFT correlation (scipy.fft, real transforms, convlab's thread count)
  of the mode-extended line, for long kernels (large Gaussian sigma).

Each pass writes the output dtype before the next one reads it, as scipy.ndimage does, so
integer images are truncated after every pass and float32 images rounded.
"""
from __future__ import annotations

import numpy as np

from . import _numba_kernels as nk
from ._params import c_cast, compute_dtype, extend_index

_DBL_EPS = np.finfo(np.float64).eps


def threads():
    """convlab's thread count, applied to Numba (loads the numba backend once, which applies
    kernels.set_num_threads to it)."""
    from .. import backends
    from ..runtime import get_num_threads
    backends.load("numba")
    return get_num_threads()


def run(kernel, lines, work, *args):
    """``kernel(*args, nblocks, first, step)`` over ``lines`` independent lines in contiguous
    blocks, on threads when the call moves enough elements to pay for a wake-up."""
    from .._numba.threads import run_jobs
    nthreads = threads()
    parallel = nthreads > 1 and work >= 1 << 16 and lines > 1
    nblocks = max(1, min(lines, 4 * nthreads)) if parallel else 1
    run_jobs(kernel, nblocks, *args, nblocks, parallel=parallel)


def symmetry(w):
    """scipy's test: 1 symmetric, -1 antisymmetric (odd lengths only), 0 general."""
    K = len(w)
    if K % 2 == 0:
        return nk.GENERAL
    c = K // 2
    if all(abs(w[c + i] - w[c - i]) <= _DBL_EPS for i in range(1, c + 1)):
        return nk.SYM
    if all(abs(w[c + i] + w[c - i]) <= _DBL_EPS for i in range(1, c + 1)):
        return nk.ANTI
    return nk.GENERAL


def gaussian_weights(sigma, radius):
    """scipy.ndimage's Gaussian correlation weights (order 0), same arithmetic."""
    sigma2 = sigma * sigma
    x = np.arange(-radius, radius + 1)
    phi_x = np.exp(-0.5 / sigma2 * x ** 2)
    phi_x = phi_x / phi_x.sum()
    return phi_x[::-1].copy()


def _view3(a, axis):
    shape = a.shape
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return a.reshape(outer, shape[axis], inner), outer, inner


def correlate_pass(cur, axis, w, mode, cval, out=None):
    """One 1-D correlation of the contiguous compute-dtype array ``cur`` along ``axis`` with
    float64 weights ``w`` (origin 0), direct."""
    w = np.asarray(w, dtype=np.float64)
    out = np.empty_like(cur) if out is None else out
    K = len(w)
    x3, outer, inner = _view3(cur, axis)
    n = x3.shape[1]
    idx = extend_index(n, K // 2, K - 1 - K // 2, mode)
    sym = symmetry(w)
    wc = w.astype(cur.dtype)
    if inner == 1:
        # float32 along rows: the plain tap loop vectorises, the folded pairs do not (one
        # 1024-px row, 9 taps: 10 us against 53 us, measured); float64 keeps scipy's order
        run(nk.corr_last, outer, cur.size * K, x3.reshape(outer, n), out.reshape(outer, n),
            wc, idx, cval, nk.GENERAL if cur.dtype == np.float32 else sym)
    else:
        run(nk.corr_mid, outer * n, cur.size * K, x3, out.reshape(x3.shape), wc, idx, cval,
            sym)
    return out


def box_pass(cur, axis, size, mode, cval, out=None):
    """One running-sum mean of ``size`` along ``axis`` (scipy's uniform_filter1d arithmetic)."""
    out = np.empty_like(cur) if out is None else out
    x3, outer, inner = _view3(cur, axis)
    n = x3.shape[1]
    idx = extend_index(n, size // 2, size - 1 - size // 2, mode)
    if inner == 1:
        run(nk.box_last, outer, cur.size * 4, x3.reshape(outer, n), out.reshape(outer, n),
            idx, cval, size)
    else:
        bands = (inner + 255) // 256
        run(nk.box_mid, outer * bands, cur.size * 4, x3, out.reshape(x3.shape), idx, cval,
            size)
    return out


def fft_pass(cur, axis, w, mode, cval):
    """One 1-D correlation along ``axis`` by real FFTs of the extended lines (scipy.fft)."""
    import scipy.fft as sfft
    w = np.asarray(w, dtype=np.float64)
    K = len(w)
    n = cur.shape[axis]
    before = K // 2
    idx = extend_index(n, before, K - 1 - before, mode)
    xp = np.take(cur, np.maximum(idx, 0), axis=axis)
    if mode == "constant":
        xm = np.moveaxis(xp, axis, -1)
        xm[..., idx < 0] = cval
    L = n + K - 1
    nfft = sfft.next_fast_len(L, real=True)
    workers = threads()
    X = sfft.rfft(xp, nfft, axis=axis, workers=workers)
    Wf = sfft.rfft(w[::-1].astype(cur.dtype), nfft)
    shape = [1] * cur.ndim
    shape[axis] = Wf.shape[0]
    X *= Wf.reshape(shape)
    y = sfft.irfft(X, nfft, axis=axis, workers=workers)
    sl = [slice(None)] * cur.ndim
    sl[axis] = slice(K - 1, K - 1 + n)
    return np.ascontiguousarray(y[tuple(sl)], dtype=cur.dtype)


def run_passes(x, passes, cval):
    """Apply ``passes`` (kind, axis, arg, mode) in order; returns an array of x's dtype.

    kind "corr" (arg: float64 weights), "box" (arg: size) or "fft" (arg: weights).  Each pass
    writes x's dtype (scipy's intermediate rounding / C-cast truncation)."""
    dtype = x.dtype
    cd = compute_dtype(dtype)
    cur = np.ascontiguousarray(x, dtype=cd)
    if not passes:
        return np.array(x, dtype=dtype, copy=True)
    exact = cd == dtype
    for kind, axis, arg, mode in passes:
        if kind == "corr":
            nxt = correlate_pass(cur, axis, arg, mode, cval)
        elif kind == "box":
            nxt = box_pass(cur, axis, arg, mode, cval)
        else:
            nxt = fft_pass(cur, axis, arg, mode, cval)
        if not exact:
            nxt = c_cast(nxt, dtype).astype(cd)
        cur = nxt
    return cur if exact else c_cast(cur, dtype)
