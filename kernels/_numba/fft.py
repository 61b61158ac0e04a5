"""Per-frequency channel reductions for FFT convolution, and the strided crop.

The transforms themselves are scipy.fft (kernels/strategies/fft.py); between them, convolution is
a small matrix product per frequency over the channels of one group.  Spectra are flattened
over frequency: X (N, C, F), W (C_out, Cg, F), Y / GY (N, C_out, F), complex64 or complex128.
Each kernel runs over (row, frequency block) jobs on threads (threads.run_jobs), each job
writing only its own block of one output row, with its innermost loop along the block's
frequencies.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import plan
from .threads import run_jobs


@njit(cache=True)
def _cmul_acc(y, x, w, f0, f1, sign):
    """y[f] += x[f] * w[f] (sign 1) or x[f] * conj(w[f]) (sign -1) for f in [f0, f1), on
    float views (re, im interleaved): plain float arithmetic vectorises, complex does not.
    Callers pass the sign as np.int64, not a literal: each literal value would compile this
    function again."""
    s = y.dtype.type(sign)
    for f in range(f0, f1):
        xr = x[2 * f]
        xi = x[2 * f + 1]
        wr = w[2 * f]
        wi = s * w[2 * f + 1]
        y[2 * f] += xr * wr - xi * wi
        y[2 * f + 1] += xr * wi + xi * wr


# Each reduction runs over jobs (row, frequency block): a row's sum over channels reads the
# block of every channel's spectrum, and blocks of ``fb`` frequencies (``_block``) keep
# those reads in cache across consecutive jobs (rows of one image share their inputs).


@njit(nogil=True, cache=True)
def _reduce_forward(X, W, Y, groups, fb, first, step):
    n_batch, c_out, nf = Y.shape[0], Y.shape[1], Y.shape[2] // 2
    cg = W.shape[1]
    cout_g = c_out // groups
    nblk = (nf + fb - 1) // fb
    for job in range(first, n_batch * nblk * c_out, step):
        n = job // (nblk * c_out)
        rest = job - n * (nblk * c_out)
        blk = rest // c_out
        co = rest - blk * c_out
        f0 = blk * fb
        f1 = min(nf, f0 + fb)
        c0 = (co // cout_g) * cg
        y = Y[n, co]
        y[2 * f0:2 * f1] = 0
        for ci in range(cg):
            _cmul_acc(y, X[n, c0 + ci], W[co, ci], f0, f1, np.int64(-1))


@njit(nogil=True, cache=True)
def _reduce_grad_input(GY, W, GX, groups, fb, first, step):
    n_batch, c_out, nf = GY.shape[0], GY.shape[1], GY.shape[2] // 2
    c_in = GX.shape[1]
    cg = W.shape[1]
    cout_g = c_out // groups
    nblk = (nf + fb - 1) // fb
    for job in range(first, n_batch * nblk * c_in, step):
        n = job // (nblk * c_in)
        rest = job - n * (nblk * c_in)
        blk = rest // c_in
        c = rest - blk * c_in
        f0 = blk * fb
        f1 = min(nf, f0 + fb)
        g = c // cg
        ci = c - g * cg
        gx = GX[n, c]
        gx[2 * f0:2 * f1] = 0
        for co in range(g * cout_g, (g + 1) * cout_g):
            _cmul_acc(gx, GY[n, co], W[co, ci], f0, f1, np.int64(1))


@njit(nogil=True, cache=True)
def _reduce_grad_weight(GY, X, GW, groups, fb, first, step):
    n_batch, c_out, nf = GY.shape[0], GY.shape[1], GY.shape[2] // 2
    cg = GW.shape[1]
    cout_g = c_out // groups
    nblk = (nf + fb - 1) // fb
    for job in range(first, nblk * c_out * cg, step):
        blk = job // (c_out * cg)
        rest = job - blk * (c_out * cg)
        co = rest // cg
        ci = rest - co * cg
        f0 = blk * fb
        f1 = min(nf, f0 + fb)
        c = (co // cout_g) * cg + ci
        gw = GW[co, ci]
        gw[2 * f0:2 * f1] = 0
        for n in range(n_batch):
            _cmul_acc(gw, GY[n, co], X[n, c], f0, f1, np.int64(-1))


def _floats(a):
    """The float view (..., 2F) of a complex (..., F) array (re, im interleaved)."""
    return a.view(a.real.dtype)


@njit(nogil=True, cache=True)
def _strided_crop(src, dst, sd, sh, sw, first, step):
    a_n, b_n, i_n, j_n, k_n = dst.shape
    for job in range(first, a_n * b_n, step):
        a = job // b_n
        b = job - a * b_n
        for i in range(i_n):
            for j in range(j_n):
                srow = src[a, b, i * sd, j * sh]
                drow = dst[a, b, i, j]
                for k in range(k_n):
                    drow[k] = srow[k * sw]


def fft_reduce_forward(X, W, Y, groups):
    """``Y[n, co, f] = sum_ci X[n, g*Cg + ci, f] * conj(W[co, ci, f])`` (g = co's group).

    Parameters
    ----------
    X : ndarray (N, C, F), complex64 or complex128, C-contiguous.
    W : ndarray (C_out, C // groups, F), same dtype.
    Y : ndarray (N, C_out, F), same dtype, overwritten.
    groups : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.full((1, 2, 3), 1 + 1j); W = np.full((1, 2, 3), 1j)
    >>> Y = np.empty((1, 1, 3), complex)
    >>> fft_reduce_forward(X, W, Y, 1); Y[0, 0, 0]
    np.complex128(2-2j)
    """
    _, groups, fb = plan.fft_reduce_call("fft_reduce_forward", "forward", X, W, Y, groups)
    n, nf = X.shape[0], X.shape[2]
    c_out = W.shape[0]
    run_jobs(_reduce_forward, n * -(-nf // fb) * c_out, _floats(X), _floats(W), _floats(Y),
             groups, fb)


def fft_reduce_grad_input(GY, W, GX, groups):
    """``GX[n, c, f] = sum_{co in c's group} GY[n, co, f] * W[co, c - g*Cg, f]``.

    ``GY`` is (N, C_out, F), ``W`` (C_out, C // groups, F), ``GX`` (N, C, F), complex.

    Examples
    --------
    >>> import numpy as np
    >>> GY = np.ones((1, 1, 2), complex); W = np.full((1, 2, 2), 2j)
    >>> GX = np.empty((1, 2, 2), complex)
    >>> fft_reduce_grad_input(GY, W, GX, 1); GX[0, 1, 0]
    np.complex128(2j)
    """
    _, groups, fb = plan.fft_reduce_call("fft_reduce_grad_input", "grad_input", GY, W, GX,
                                         groups)
    n, nf = GY.shape[0], GY.shape[2]
    cg = W.shape[1]
    run_jobs(_reduce_grad_input, n * -(-nf // fb) * cg * groups, _floats(GY), _floats(W),
             _floats(GX), groups, fb)


def fft_reduce_grad_weight(GY, X, GW, groups):
    """``GW[co, ci, f] = sum_n GY[n, co, f] * conj(X[n, g*Cg + ci, f])``.

    ``GY`` is (N, C_out, F), ``X`` (N, C, F), ``GW`` (C_out, C // groups, F), complex.

    Examples
    --------
    >>> import numpy as np
    >>> GY = np.ones((2, 1, 1), complex); X = np.full((2, 1, 1), 1j)
    >>> GW = np.empty((1, 1, 1), complex)
    >>> fft_reduce_grad_weight(GY, X, GW, 1); GW[0, 0, 0]
    np.complex128(-2j)
    """
    _, groups, fb = plan.fft_reduce_call("fft_reduce_grad_weight", "grad_weight", GY, X, GW,
                                         groups)
    c_out, nf = GY.shape[1], GY.shape[2]
    c = X.shape[1]
    run_jobs(_reduce_grad_weight, -(-nf // fb) * c_out * (c // groups), _floats(GY), _floats(X),
             _floats(GW), groups, fb)


def strided_crop(src, dst, sd, sh, sw):
    """``dst[a, b, i, j, k] = src[a, b, i*sd, j*sh, k*sw]`` for real 5-D arrays.

    Examples
    --------
    >>> import numpy as np
    >>> src = np.arange(5.0).reshape(1, 1, 1, 1, 5); dst = np.empty((1, 1, 1, 1, 3))
    >>> strided_crop(src, dst, 1, 1, 2); dst.ravel().tolist()
    [0.0, 2.0, 4.0]
    """
    _, (sd, sh, sw) = plan.strided_crop_call("strided_crop", src, dst, sd, sh, sw)
    run_jobs(_strided_crop, dst.shape[0] * dst.shape[1], src, dst, sd, sh, sw)
