"""im2col + GEMM: unfold one image's windows into a column matrix, multiply with BLAS.

For image n the column matrix has one row per (c, kd, kh, kw) channel tap and one column per
output position p = (od, oh, ow)::

    cols[(c, kd, kh, kw), p] = xp[n, c, od*sd + kd*dd, oh*sh + kh*dh, ow*sw + kw*dw]

Group g's rows form the contiguous slab ``cols_g`` of its Cg channels, so that
``y[n, group g channels, p] = W_g @ cols_g`` with ``W_g`` the group's weights viewed as
(C_out/groups, Cg*KD*KH*KW).  The gradients are the two other products of the same matrices:
``cols_g = W_g^T @ gy_block`` scattered back (col2im) for grad-input, and
``gw_g += gy_block @ cols_g^T`` for grad-weight.

The column buffer (all groups, C*KD*KH*KW rows) holds at most ``max_col_elems`` elements: one
image's full column matrix when it fits, else a chunk of consecutive output positions (at
least one).  Building all groups at once keeps one parallel launch per image and chunk, even
for depthwise convolutions.  The column build and col2im run ``prange`` over independent rows
/ channels; the GEMMs (``np.dot``, i.e. BLAS, threaded by BLAS itself) run between those
parallel loops, never inside them.
"""
from __future__ import annotations

import numpy as np
# np.dot inside Numba calls the BLAS behind scipy.linalg.cython_blas; load it with the backend
# so that thread limits (threadpoolctl) set from now on see it, not only after a first GEMM.
import scipy.linalg.cython_blas  # noqa: F401
from numba import njit, prange

from ._checks import check_arrays, check_conv_shapes, conv_ints, positive_ints


@njit(cache=True)
def _build_row(xp, n, r, kshape, strides, dils, oshape, p0, cols):
    """cols[r, j] = image n's input seen by row r = (c, kd, kh, kw) at output position p0 + j.

    Rows are ordered channel-major, so group g's rows are the contiguous slab
    g*Cg*taps ... (g+1)*Cg*taps."""
    kd_n, kh_n, kw_n = kshape
    sd, sh, sw = strides
    dd, dh, dw = dils
    oh_n, ow_n = oshape[1], oshape[2]
    pc = cols.shape[1]
    taps = kd_n * kh_n * kw_n
    c = r // taps
    t = r - c * taps
    kd = t // (kh_n * kw_n)
    kh = (t // kw_n) % kh_n
    kw = t % kw_n
    dst = cols[r]
    j = 0
    # walk the chunk one output row (od, oh) segment at a time
    while j < pc:
        p = p0 + j
        od = p // (oh_n * ow_n)
        oh = (p // ow_n) % oh_n
        ow0 = p % ow_n
        seg = min(ow_n - ow0, pc - j)
        xrow = xp[n, c, od * sd + kd * dd, oh * sh + kh * dh]
        base = ow0 * sw + kw * dw
        # views indexed from 0 vectorise (a contiguous one for stride 1)
        if sw == 1:
            xc = xrow[base:base + seg]
            for i in range(seg):
                dst[j + i] = xc[i]
        else:
            xs = xrow[base:base + (seg - 1) * sw + 1:sw]
            for i in range(seg):
                dst[j + i] = xs[i]
        j += seg


@njit(cache=True)
def _col2im_channel(cols, gxp, n, c, kshape, strides, dils, oshape, p0):
    """gxp[n, c] += channel c's rows of cols, scattered back to the input positions they were
    read from (the rows of one channel overlap in gxp; those of different channels never do).
    """
    kd_n, kh_n, kw_n = kshape
    sd, sh, sw = strides
    dd, dh, dw = dils
    oh_n, ow_n = oshape[1], oshape[2]
    pc = cols.shape[1]
    taps = kd_n * kh_n * kw_n
    for t in range(taps):
        src = cols[c * taps + t]
        kd = t // (kh_n * kw_n)
        kh = (t // kw_n) % kh_n
        kw = t % kw_n
        j = 0
        while j < pc:
            p = p0 + j
            od = p // (oh_n * ow_n)
            oh = (p // ow_n) % oh_n
            ow0 = p % ow_n
            seg = min(ow_n - ow0, pc - j)
            gxrow = gxp[n, c, od * sd + kd * dd, oh * sh + kh * dh]
            base = ow0 * sw + kw * dw
            if sw == 1:
                gc = gxrow[base:base + seg]
                for i in range(seg):
                    gc[i] += src[j + i]
            else:
                gs = gxrow[base:base + (seg - 1) * sw + 1:sw]
                for i in range(seg):
                    gs[i] += src[j + i]
            j += seg


def _chunk(rows, positions, max_col_elems):
    """Output positions per column chunk: all when they fit the budget, else as many as fit
    (at least one)."""
    if rows * positions <= max_col_elems:
        return max(1, positions)
    return max(1, min(positions, max_col_elems // rows))


# The drivers below loop over images and chunks; inside, one prange builds (or scatters) the
# columns and then the per-group GEMMs run serially through BLAS.  Copies are explicit range
# loops: ParallelAccelerator would turn slice assignments into parallel regions of their own.
# (The prange loops sit in the drivers themselves, not in a parallel callee: a cached serial
# function calling a parallel one can crash when loaded from the cache, numba issue #8578.)

@njit(parallel=True, cache=True)
def _forward(xp, w, y, strides, dils, groups, chunk):
    n_batch, c_out = y.shape[0], y.shape[1]
    oshape = (y.shape[2], y.shape[3], y.shape[4])
    kshape = (w.shape[2], w.shape[3], w.shape[4])
    rg = w.shape[1] * kshape[0] * kshape[1] * kshape[2]      # rows per group
    npos = oshape[0] * oshape[1] * oshape[2]
    cout_g = c_out // groups
    w2 = w.reshape(c_out, rg)
    y3 = y.reshape(n_batch, c_out, npos)
    buf = np.empty(groups * rg * chunk, y.dtype)
    out = np.empty(cout_g * chunk, y.dtype)
    for n in range(n_batch):
        for p0 in range(0, npos, chunk):
            pc = min(chunk, npos - p0)
            cols = buf[:groups * rg * pc].reshape(groups * rg, pc)
            for r in prange(groups * rg):
                _build_row(xp, n, r, kshape, strides, dils, oshape, p0, cols)
            yb = out[:cout_g * pc].reshape(cout_g, pc)
            for g in range(groups):
                np.dot(w2[g * cout_g:(g + 1) * cout_g], cols[g * rg:(g + 1) * rg], yb)
                for o in range(cout_g):
                    yrow = y3[n, g * cout_g + o]
                    for j in range(pc):
                        yrow[p0 + j] = yb[o, j]


@njit(parallel=True, cache=True)
def _grad_input(gy, w, gxp, strides, dils, groups, chunk):
    n_batch, c_out = gy.shape[0], gy.shape[1]
    c_in = gxp.shape[1]
    oshape = (gy.shape[2], gy.shape[3], gy.shape[4])
    kshape = (w.shape[2], w.shape[3], w.shape[4])
    rg = w.shape[1] * kshape[0] * kshape[1] * kshape[2]
    npos = oshape[0] * oshape[1] * oshape[2]
    cout_g = c_out // groups
    # W_g^T for every group, contiguous: wt[g] is (rows per group, cout_g)
    wt = np.empty((groups, rg, cout_g), w.dtype)
    w2 = w.reshape(c_out, rg)
    for g in range(groups):
        for o in range(cout_g):
            for r in range(rg):
                wt[g, r, o] = w2[g * cout_g + o, r]
    gy3 = gy.reshape(n_batch, c_out, npos)
    buf = np.empty(groups * rg * chunk, gy.dtype)
    gyb_buf = np.empty(cout_g * chunk, gy.dtype)
    gxp[:] = 0
    for n in range(n_batch):
        for p0 in range(0, npos, chunk):
            pc = min(chunk, npos - p0)
            cols = buf[:groups * rg * pc].reshape(groups * rg, pc)
            gyb = gyb_buf[:cout_g * pc].reshape(cout_g, pc)
            for g in range(groups):
                for o in range(cout_g):
                    gyrow = gy3[n, g * cout_g + o]
                    for j in range(pc):
                        gyb[o, j] = gyrow[p0 + j]
                np.dot(wt[g], gyb, cols[g * rg:(g + 1) * rg])
            for c in prange(c_in):
                _col2im_channel(cols, gxp, n, c, kshape, strides, dils, oshape, p0)


@njit(parallel=True, cache=True)
def _grad_weight(gy, xp, gw, strides, dils, groups, chunk):
    n_batch, c_out = gy.shape[0], gy.shape[1]
    oshape = (gy.shape[2], gy.shape[3], gy.shape[4])
    kshape = (gw.shape[2], gw.shape[3], gw.shape[4])
    rg = gw.shape[1] * kshape[0] * kshape[1] * kshape[2]
    npos = oshape[0] * oshape[1] * oshape[2]
    cout_g = c_out // groups
    gw2 = gw.reshape(c_out, rg)
    gy3 = gy.reshape(n_batch, c_out, npos)
    buf = np.empty(groups * rg * chunk, gy.dtype)
    gyb_buf = np.empty(cout_g * chunk, gy.dtype)
    part = np.empty((cout_g, rg), gy.dtype)
    gw[:] = 0
    for n in range(n_batch):
        for p0 in range(0, npos, chunk):
            pc = min(chunk, npos - p0)
            cols = buf[:groups * rg * pc].reshape(groups * rg, pc)
            for r in prange(groups * rg):
                _build_row(xp, n, r, kshape, strides, dils, oshape, p0, cols)
            gyb = gyb_buf[:cout_g * pc].reshape(cout_g, pc)
            for g in range(groups):
                for o in range(cout_g):
                    gyrow = gy3[n, g * cout_g + o]
                    for j in range(pc):
                        gyb[o, j] = gyrow[p0 + j]
                np.dot(gyb, cols[g * rg:(g + 1) * rg].T, part)
                for o in range(cout_g):
                    for r in range(rg):
                        gw2[g * cout_g + o, r] += part[o, r]


def _prepare(op, ints, max_col_elems, w_shape, out_shape):
    """(strides, dilations, groups, chunk) as the jitted drivers take them."""
    (budget,) = positive_ints(op, max_col_elems=max_col_elems)
    groups = ints[6]
    rows = groups * int(np.prod(w_shape[1:]))       # all groups' rows: C * KD * KH * KW
    chunk = _chunk(rows, int(np.prod(out_shape[2:])), budget)
    return tuple(ints[:3]), tuple(ints[3:6]), ints[6], chunk


def im2col_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """Convolution of a padded input through im2col + BLAS GEMM, written into ``y``.

    Parameters
    ----------
    xp : ndarray (N, C, D, H, W), float32 or float64, C-contiguous, already padded.
    w : ndarray (C_out, C // groups, KD, KH, KW), same dtype.
    y : ndarray (N, C_out, OD, OH, OW), same dtype, overwritten.
    sd, sh, sw, dd, dh, dw, groups : int
        Strides, dilations and groups.
    max_col_elems : int
        Budget of the column buffer in elements; above it output positions are chunked.

    Examples
    --------
    >>> xp = np.ones((1, 1, 1, 1, 5)); w = np.ones((1, 1, 1, 1, 3))
    >>> y = np.empty((1, 1, 1, 1, 3))
    >>> im2col_forward(xp, w, y, 1, 1, 1, 1, 1, 1, 1, 4); y.ravel().tolist()
    [3.0, 3.0, 3.0]
    """
    op = "im2col_forward"
    ints = conv_ints(op, sd, sh, sw, dd, dh, dw, groups)
    check_arrays(op, ("xp", "w", "y"), (xp, w, y), 5)
    check_conv_shapes(op, xp.shape, w.shape, y.shape, ints[:3], ints[3:6], ints[6])
    _forward(xp, w, y, *_prepare(op, ints, max_col_elems, w.shape, y.shape))


def im2col_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """Gradient w.r.t. the padded input through GEMM + col2im, written into ``gxp``.

    ``gy`` is (N, C_out, OD, OH, OW), ``w`` (C_out, C // groups, KD, KH, KW) and ``gxp``
    (N, C, D, H, W), the padded input's shape.

    Examples
    --------
    >>> gy = np.ones((1, 1, 1, 1, 3)); w = np.ones((1, 1, 1, 1, 3))
    >>> gxp = np.empty((1, 1, 1, 1, 5))
    >>> im2col_grad_input(gy, w, gxp, 1, 1, 1, 1, 1, 1, 1, 4); gxp.ravel().tolist()
    [1.0, 2.0, 3.0, 2.0, 1.0]
    """
    op = "im2col_grad_input"
    ints = conv_ints(op, sd, sh, sw, dd, dh, dw, groups)
    check_arrays(op, ("gy", "w", "gxp"), (gy, w, gxp), 5)
    check_conv_shapes(op, gxp.shape, w.shape, gy.shape, ints[:3], ints[3:6], ints[6],
                      ("gxp", "w", "gy"))
    _grad_input(gy, w, gxp, *_prepare(op, ints, max_col_elems, w.shape, gy.shape))


def im2col_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """Gradient w.r.t. the weight through im2col + GEMM, written into ``gw``.

    ``gy`` is (N, C_out, OD, OH, OW), ``xp`` the padded input (N, C, D, H, W) and ``gw``
    (C_out, C // groups, KD, KH, KW).

    Examples
    --------
    >>> gy = np.ones((1, 1, 1, 1, 3)); xp = np.arange(5.0).reshape(1, 1, 1, 1, 5)
    >>> gw = np.empty((1, 1, 1, 1, 3))
    >>> im2col_grad_weight(gy, xp, gw, 1, 1, 1, 1, 1, 1, 1, 4); gw.ravel().tolist()
    [3.0, 6.0, 9.0]
    """
    op = "im2col_grad_weight"
    ints = conv_ints(op, sd, sh, sw, dd, dh, dw, groups)
    check_arrays(op, ("gy", "xp", "gw"), (gy, xp, gw), 5)
    check_conv_shapes(op, xp.shape, gw.shape, gy.shape, ints[:3], ints[3:6], ints[6],
                      ("xp", "gw", "gy"))
    _grad_weight(gy, xp, gw, *_prepare(op, ints, max_col_elems, gw.shape, gy.shape))
