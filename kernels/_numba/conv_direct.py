"""Direct convolution: forward, grad-input and grad-weight as plain loops.

Each kernel runs ``prange`` over blocks of the output that it owns outright, so no two
threads ever write the same cell:

* forward: one (n, co) output plane per iteration; each output row is accumulated in a local
  row buffer, the innermost loop running along the contiguous output width (over a
  contiguous input view at stride 1, a strided one otherwise);
* grad-input: one (n, c) plane of the padded input gradient per iteration, scattered from
  the output channels of c's group (the transpose of the forward gather);
* grad-weight: one (co, ci) kernel slice per iteration, reduced over the batch and all
  output positions through a local (taps x width) buffer.

Loops without reductions in the innermost position let LLVM vectorise them without
fastmath (NaN and Inf propagate exactly as IEEE arithmetic says).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._checks import check_arrays, check_conv_shapes, conv_ints


@njit(parallel=True, cache=True)
def _forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups):
    n_batch, c_out, od_n, oh_n, ow_n = y.shape
    cg, kd_n, kh_n, kw_n = w.shape[1], w.shape[2], w.shape[3], w.shape[4]
    cout_g = c_out // groups
    span = (ow_n - 1) * sw + 1          # input width one kernel column sweeps
    for job in prange(n_batch * c_out):
        n = job // c_out
        co = job - n * c_out
        c0 = (co // cout_g) * cg
        acc = np.empty(ow_n, y.dtype)
        for od in range(od_n):
            for oh in range(oh_n):
                acc[:] = 0
                for ci in range(cg):
                    for kd in range(kd_n):
                        for kh in range(kh_n):
                            xrow = xp[n, c0 + ci, od * sd + kd * dd, oh * sh + kh * dh]
                            for kw in range(kw_n):
                                wv = w[co, ci, kd, kh, kw]
                                # views indexed from 0 vectorise (contiguous one for stride 1)
                                if sw == 1:
                                    xc = xrow[kw * dw:kw * dw + ow_n]
                                    for ow in range(ow_n):
                                        acc[ow] += xc[ow] * wv
                                else:
                                    xs = xrow[kw * dw:kw * dw + span:sw]
                                    for ow in range(ow_n):
                                        acc[ow] += xs[ow] * wv
                y[n, co, od, oh, :] = acc


@njit(parallel=True, cache=True)
def _grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups):
    n_batch, c_out, od_n, oh_n, ow_n = gy.shape
    c_in = gxp.shape[1]
    cg, kd_n, kh_n, kw_n = w.shape[1], w.shape[2], w.shape[3], w.shape[4]
    cout_g = c_out // groups
    span = (ow_n - 1) * sw + 1
    for job in prange(n_batch * c_in):
        n = job // c_in
        c = job - n * c_in
        g = c // cg
        ci = c - g * cg
        gxp[n, c] = 0
        for co in range(g * cout_g, (g + 1) * cout_g):
            for od in range(od_n):
                for oh in range(oh_n):
                    gyrow = gy[n, co, od, oh]
                    for kd in range(kd_n):
                        for kh in range(kh_n):
                            gxrow = gxp[n, c, od * sd + kd * dd, oh * sh + kh * dh]
                            for kw in range(kw_n):
                                wv = w[co, ci, kd, kh, kw]
                                if sw == 1:
                                    gc = gxrow[kw * dw:kw * dw + ow_n]
                                    for ow in range(ow_n):
                                        gc[ow] += gyrow[ow] * wv
                                else:
                                    gs = gxrow[kw * dw:kw * dw + span:sw]
                                    for ow in range(ow_n):
                                        gs[ow] += gyrow[ow] * wv


@njit(parallel=True, cache=True)
def _grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups):
    n_batch, c_out, od_n, oh_n, ow_n = gy.shape
    cg, kd_n, kh_n, kw_n = gw.shape[1], gw.shape[2], gw.shape[3], gw.shape[4]
    cout_g = c_out // groups
    taps = kd_n * kh_n * kw_n
    span = (ow_n - 1) * sw + 1
    for job in prange(c_out * cg):
        co = job // cg
        ci = job - co * cg
        c = (co // cout_g) * cg + ci
        # acc[tap, ow]: partial sums along the output width, reduced once at the end
        acc = np.zeros((taps, ow_n), gw.dtype)
        for n in range(n_batch):
            for od in range(od_n):
                for oh in range(oh_n):
                    gyrow = gy[n, co, od, oh]
                    t = 0
                    for kd in range(kd_n):
                        for kh in range(kh_n):
                            xrow = xp[n, c, od * sd + kd * dd, oh * sh + kh * dh]
                            for kw in range(kw_n):
                                at = acc[t]
                                if sw == 1:
                                    xc = xrow[kw * dw:kw * dw + ow_n]
                                    for ow in range(ow_n):
                                        at[ow] += gyrow[ow] * xc[ow]
                                else:
                                    xs = xrow[kw * dw:kw * dw + span:sw]
                                    for ow in range(ow_n):
                                        at[ow] += gyrow[ow] * xs[ow]
                                t += 1
        t = 0
        for kd in range(kd_n):
            for kh in range(kh_n):
                for kw in range(kw_n):
                    s = 0.0
                    for ow in range(ow_n):
                        s += acc[t, ow]
                    gw[co, ci, kd, kh, kw] = s
                    t += 1


def direct_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups):
    """Direct convolution (cross-correlation) of a padded input, written into ``y``.

    Parameters
    ----------
    xp : ndarray (N, C, D, H, W), float32 or float64, C-contiguous, already padded.
    w : ndarray (C_out, C // groups, KD, KH, KW), same dtype.
    y : ndarray (N, C_out, OD, OH, OW), same dtype, overwritten, where
        ``OD = (D - dd * (KD - 1) - 1) // sd + 1`` and likewise for H, W.
    sd, sh, sw, dd, dh, dw, groups : int
        Strides, dilations and groups.

    Examples
    --------
    >>> xp = np.ones((1, 1, 1, 1, 5), np.float32); w = np.ones((1, 1, 1, 1, 3), np.float32)
    >>> y = np.empty((1, 1, 1, 1, 3), np.float32)
    >>> direct_forward(xp, w, y, 1, 1, 1, 1, 1, 1, 1); y.ravel().tolist()
    [3.0, 3.0, 3.0]
    """
    op = "direct_forward"
    ints = conv_ints(op, sd, sh, sw, dd, dh, dw, groups)
    check_arrays(op, ("xp", "w", "y"), (xp, w, y), 5)
    check_conv_shapes(op, xp.shape, w.shape, y.shape, ints[:3], ints[3:6], ints[6])
    _forward(xp, w, y, *ints)


def direct_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups):
    """Gradient w.r.t. the padded input of :func:`direct_forward`, written into ``gxp``.

    ``gy`` is (N, C_out, OD, OH, OW), ``w`` (C_out, C // groups, KD, KH, KW) and ``gxp``
    (N, C, D, H, W), the padded input's shape; cells no window reaches get 0.

    Examples
    --------
    >>> gy = np.ones((1, 1, 1, 1, 3)); w = np.ones((1, 1, 1, 1, 3))
    >>> gxp = np.empty((1, 1, 1, 1, 5))
    >>> direct_grad_input(gy, w, gxp, 1, 1, 1, 1, 1, 1, 1); gxp.ravel().tolist()
    [1.0, 2.0, 3.0, 2.0, 1.0]
    """
    op = "direct_grad_input"
    ints = conv_ints(op, sd, sh, sw, dd, dh, dw, groups)
    check_arrays(op, ("gy", "w", "gxp"), (gy, w, gxp), 5)
    check_conv_shapes(op, gxp.shape, w.shape, gy.shape, ints[:3], ints[3:6], ints[6],
                      ("gxp", "w", "gy"))
    _grad_input(gy, w, gxp, *ints)


def direct_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups):
    """Gradient w.r.t. the weight of :func:`direct_forward`, written into ``gw``.

    ``gy`` is (N, C_out, OD, OH, OW), ``xp`` the padded input (N, C, D, H, W) and ``gw``
    (C_out, C // groups, KD, KH, KW).

    Examples
    --------
    >>> gy = np.ones((1, 1, 1, 1, 3)); xp = np.arange(5.0).reshape(1, 1, 1, 1, 5)
    >>> gw = np.empty((1, 1, 1, 1, 3))
    >>> direct_grad_weight(gy, xp, gw, 1, 1, 1, 1, 1, 1, 1); gw.ravel().tolist()
    [3.0, 6.0, 9.0]
    """
    op = "direct_grad_weight"
    ints = conv_ints(op, sd, sh, sw, dd, dh, dw, groups)
    check_arrays(op, ("gy", "xp", "gw"), (gy, xp, gw), 5)
    check_conv_shapes(op, xp.shape, gw.shape, gy.shape, ints[:3], ints[3:6], ints[6],
                      ("xp", "gw", "gy"))
    _grad_weight(gy, xp, gw, *ints)
