"""im2col + GEMM: unfold input windows into a column matrix, multiply with BLAS.

For image n the column matrix has one row per (c, kd, kh, kw) channel tap and one column per
output position p = (od, oh, ow)::

    cols[(c, kd, kh, kw), p] = xp[n, c, od*sd + kd*dd, oh*sh + kh*dh, ow*sw + kw*dw]

Group g's rows form the contiguous slab ``cols_g`` of its Cg channels, so that
``y[n, group g channels, p] = W_g @ cols_g`` with ``W_g`` the group's weights viewed as
(C_out/groups, Cg*KD*KH*KW).  The gradients are the two other products of the same matrices:
``cols_g = W_g^T @ gy_block`` scattered back (col2im) for grad-input, and
``gw_g += gy_block @ cols_g^T`` for grad-weight.

The columns of several images are built at once (one parallel launch per chunk), in one of
two layouts chosen by :func:`_plan`:

* per-image blocks (the GEMM of one image is big): image i's (C*taps, P) matrix is one
  contiguous block and each image gets its own GEMMs, which read from and write to y / gy
  in place (NCHW needs no transpose);
* wide (small GEMMs): the chunk's columns form one (C*taps, images*positions) matrix, so each
  group is one big GEMM; y (forward) or gy (gradients) then goes through a small transposed
  copy (C_out/groups rows).  Wide chunks may also cover part of one image's positions, when
  one image's columns exceed the budget.

The column buffer plus that transposed copy hold at most ``max_col_elems`` elements (at least
one output position).  A 1x1 kernel at stride 1 needs no columns: the input planes are the
column matrix.  Copies run ``prange`` over independent rows / planes when the chunk is big
enough (a thread wake-up costs more than a small copy); the GEMMs (``np.dot``, i.e. BLAS,
threaded by BLAS itself) run between those parallel loops, never inside them.
"""
from __future__ import annotations

import numpy as np
# np.dot inside Numba calls the BLAS behind scipy.linalg.cython_blas; load it with the backend
# so that thread limits (threadpoolctl) set from now on see it, not only after a first GEMM.
import scipy.linalg.cython_blas  # noqa: F401
from numba import njit, prange

from ._checks import check_arrays, check_conv_shapes, conv_ints, positive_ints

# Multiply-adds of one image's GEMM from which images get GEMMs of their own (block layout).
BLOCK_MIN_MACS = 1 << 22
# Column elements of a chunk of per-image blocks: about what stays in the last-level cache.
BLOCK_CHUNK_ELEMS = 1 << 21
# Elements a chunk must copy before its copies are split over threads.
PARALLEL_MIN_ELEMS = 1 << 15


def _plan(n_batch, rows, rows_g, cout_g, positions, budget):
    """(images per chunk, positions per chunk, block layout) for a column buffer of ``rows``
    (all groups) by (images * positions) and, in the wide layout, a transposed copy of
    ``cout_g`` rows, together within ``budget`` elements (at least one position)."""
    if rows_g * cout_g * positions >= BLOCK_MIN_MACS and rows * positions <= budget:
        nb = min(n_batch, budget // (rows * positions),
                 max(1, BLOCK_CHUNK_ELEMS // (rows * positions)))
        return max(1, nb), positions, True
    per_pos = rows + cout_g
    if per_pos * positions <= budget:
        return max(1, min(n_batch, budget // (per_pos * positions))), positions, False
    return 1, max(1, min(positions, budget // per_pos)), False


@njit(cache=True)
def _build_row(xp, n, r, kshape, strides, dils, oshape, p0, dst):
    """dst[j] = image n's input seen by row r = (c, kd, kh, kw) at output position p0 + j,
    for j < len(dst); copied one output-row segment at a time."""
    kd_n, kh_n, kw_n = kshape
    sd, sh, sw = strides
    dd, dh, dw = dils
    oh_n, ow_n = oshape[1], oshape[2]
    pc = dst.shape[0]
    taps = kd_n * kh_n * kw_n
    c = r // taps
    t = r - c * taps
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
def _col2im_plane(buf, off, rstride, gxp, n, c, kshape, strides, dils, oshape, p0, pc, zero):
    """gxp[n, c] (+)= channel c's rows of the column chunk, row r at buf[off + r*rstride:]
    for pc positions from p0, scattered back to the input positions they were read from.
    ``zero`` clears the plane first.  Different planes never overlap, so calls for distinct
    (n, c) may run in parallel."""
    kd_n, kh_n, kw_n = kshape
    sd, sh, sw = strides
    dd, dh, dw = dils
    oh_n, ow_n = oshape[1], oshape[2]
    taps = kd_n * kh_n * kw_n
    plane = gxp[n, c]
    if zero:
        for a in range(plane.shape[0]):
            for b in range(plane.shape[1]):
                prow = plane[a, b]
                for i in range(prow.shape[0]):
                    prow[i] = 0
    for t in range(taps):
        src = buf[off + (c * taps + t) * rstride:]
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
            gxrow = plane[od * sd + kd * dd, oh * sh + kh * dh]
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


@njit(cache=True)
def _wide_row(a3, b2, t, m, cout_g, ch0, p0, q, to_wide):
    """One row of the transposed copy between a3 (N, C_out, P) and the wide matrix b2
    (cout_g, m*q): task t = (i, o) pairs a3[n0 + i, ch0 + o, p0:p0 + q] with
    b2[o, i*q:(i + 1)*q] (ch0 = g*cout_g; a3 already offset to image n0)."""
    i = t // cout_g
    o = t - i * cout_g
    arow = a3[i, ch0 + o]
    brow = b2[o, i * q:(i + 1) * q]
    if to_wide:
        for j in range(q):
            brow[j] = arow[p0 + j]
    else:
        for j in range(q):
            arow[p0 + j] = brow[j]


# The drivers below loop over chunks of images (or of one image's positions); inside, one
# prange builds (or scatters) the columns and the GEMMs run serially through BLAS.  Copies are
# explicit range loops: ParallelAccelerator would turn slice assignments into parallel regions
# of their own.  (The prange loops sit in the drivers themselves, not in a parallel callee: a
# cached serial function calling a parallel one can crash when loaded from the cache, numba
# issue #8578.)  Column layout of a chunk of m images and q positions: row r of image i starts
# at i*istride + r*rstride (blocks: istride = rows*q, rstride = q; wide: istride = q,
# rstride = m*q).

@njit(parallel=True, cache=True)
def _forward(xp, w, y, strides, dils, groups, nb, pc, block, direct, par):
    n_batch, c_out = y.shape[0], y.shape[1]
    oshape = (y.shape[2], y.shape[3], y.shape[4])
    kshape = (w.shape[2], w.shape[3], w.shape[4])
    rg = w.shape[1] * kshape[0] * kshape[1] * kshape[2]      # rows per group
    rows = groups * rg
    npos = oshape[0] * oshape[1] * oshape[2]
    cout_g = c_out // groups
    w2 = w.reshape(c_out, rg)
    y3 = y.reshape(n_batch, c_out, npos)
    if direct:
        x3 = xp.reshape(n_batch, rows, npos)
        for n in range(n_batch):
            for g in range(groups):
                np.dot(w2[g * cout_g:(g + 1) * cout_g], x3[n, g * rg:(g + 1) * rg],
                       y3[n, g * cout_g:(g + 1) * cout_g])
        return
    buf = np.empty(nb * rows * pc, y.dtype)
    tmp = np.empty(0 if block else cout_g * nb * pc, y.dtype)
    for n0 in range(0, n_batch, nb):
        m = min(nb, n_batch - n0)
        for p0 in range(0, npos, pc):
            q = min(pc, npos - p0)
            istride = rows * q if block else q
            rstride = q if block else m * q
            if par:
                for t in prange(m * rows):
                    i = t // rows
                    o = i * istride + (t - i * rows) * rstride
                    _build_row(xp, n0 + i, t - i * rows, kshape, strides, dils, oshape, p0,
                               buf[o:o + q])
            else:
                for t in range(m * rows):
                    i = t // rows
                    o = i * istride + (t - i * rows) * rstride
                    _build_row(xp, n0 + i, t - i * rows, kshape, strides, dils, oshape, p0,
                               buf[o:o + q])
            if block:
                for i in range(m):
                    cols = buf[i * rows * q:(i + 1) * rows * q].reshape(rows, q)
                    for g in range(groups):
                        np.dot(w2[g * cout_g:(g + 1) * cout_g], cols[g * rg:(g + 1) * rg],
                               y3[n0 + i, g * cout_g:(g + 1) * cout_g])
                continue
            cols = buf[:rows * m * q].reshape(rows, m * q)
            yw = tmp[:cout_g * m * q].reshape(cout_g, m * q)
            ys = y3[n0:n0 + m]
            for g in range(groups):
                np.dot(w2[g * cout_g:(g + 1) * cout_g], cols[g * rg:(g + 1) * rg], yw)
                if par:
                    for t in prange(m * cout_g):
                        _wide_row(ys, yw, t, m, cout_g, g * cout_g, p0, q, False)
                else:
                    for t in range(m * cout_g):
                        _wide_row(ys, yw, t, m, cout_g, g * cout_g, p0, q, False)


@njit(parallel=True, cache=True)
def _grad_input(gy, w, gxp, strides, dils, groups, nb, pc, block, direct, par):
    n_batch, c_out = gy.shape[0], gy.shape[1]
    c_in = gxp.shape[1]
    oshape = (gy.shape[2], gy.shape[3], gy.shape[4])
    kshape = (w.shape[2], w.shape[3], w.shape[4])
    rg = w.shape[1] * kshape[0] * kshape[1] * kshape[2]
    rows = groups * rg
    npos = oshape[0] * oshape[1] * oshape[2]
    cout_g = c_out // groups
    w2 = w.reshape(c_out, rg)
    gy3 = gy.reshape(n_batch, c_out, npos)
    if direct:
        gx3 = gxp.reshape(n_batch, rows, npos)
        for n in range(n_batch):
            for g in range(groups):
                np.dot(w2[g * cout_g:(g + 1) * cout_g].T, gy3[n, g * cout_g:(g + 1) * cout_g],
                       gx3[n, g * rg:(g + 1) * rg])
        return
    buf = np.empty(nb * rows * pc, gy.dtype)
    tmp = np.empty(0 if block else cout_g * nb * pc, gy.dtype)
    for n0 in range(0, n_batch, nb):
        m = min(nb, n_batch - n0)
        for p0 in range(0, npos, pc):
            q = min(pc, npos - p0)
            istride = rows * q if block else q
            rstride = q if block else m * q
            if block:
                for i in range(m):
                    cols = buf[i * rows * q:(i + 1) * rows * q].reshape(rows, q)
                    for g in range(groups):
                        np.dot(w2[g * cout_g:(g + 1) * cout_g].T,
                               gy3[n0 + i, g * cout_g:(g + 1) * cout_g],
                               cols[g * rg:(g + 1) * rg])
            else:
                cols = buf[:rows * m * q].reshape(rows, m * q)
                gw_ = tmp[:cout_g * m * q].reshape(cout_g, m * q)
                gs = gy3[n0:n0 + m]
                for g in range(groups):
                    if par:
                        for t in prange(m * cout_g):
                            _wide_row(gs, gw_, t, m, cout_g, g * cout_g, p0, q, True)
                    else:
                        for t in range(m * cout_g):
                            _wide_row(gs, gw_, t, m, cout_g, g * cout_g, p0, q, True)
                    np.dot(w2[g * cout_g:(g + 1) * cout_g].T, gw_, cols[g * rg:(g + 1) * rg])
            if par:
                for t in prange(m * c_in):
                    i = t // c_in
                    _col2im_plane(buf, i * istride, rstride, gxp, n0 + i, t - i * c_in, kshape,
                                  strides, dils, oshape, p0, q, p0 == 0)
            else:
                for t in range(m * c_in):
                    i = t // c_in
                    _col2im_plane(buf, i * istride, rstride, gxp, n0 + i, t - i * c_in, kshape,
                                  strides, dils, oshape, p0, q, p0 == 0)


@njit(parallel=True, cache=True)
def _grad_weight(gy, xp, gw, strides, dils, groups, nb, pc, block, direct, par):
    n_batch, c_out = gy.shape[0], gy.shape[1]
    oshape = (gy.shape[2], gy.shape[3], gy.shape[4])
    kshape = (gw.shape[2], gw.shape[3], gw.shape[4])
    rg = gw.shape[1] * kshape[0] * kshape[1] * kshape[2]
    rows = groups * rg
    npos = oshape[0] * oshape[1] * oshape[2]
    cout_g = c_out // groups
    gw2 = gw.reshape(c_out, rg)
    gy3 = gy.reshape(n_batch, c_out, npos)
    part = np.empty((cout_g, rg), gy.dtype)
    # the first product of each group lands in gw itself; later ones are added
    first = True
    if direct:
        x3 = xp.reshape(n_batch, rows, npos)
        for n in range(n_batch):
            for g in range(groups):
                gwg = gw2[g * cout_g:(g + 1) * cout_g]
                np.dot(gy3[n, g * cout_g:(g + 1) * cout_g], x3[n, g * rg:(g + 1) * rg].T,
                       gwg if first else part)
                if not first:
                    _add_into(gwg, part)
            first = False
        return
    buf = np.empty(nb * rows * pc, gy.dtype)
    tmp = np.empty(0 if block else cout_g * nb * pc, gy.dtype)
    for n0 in range(0, n_batch, nb):
        m = min(nb, n_batch - n0)
        for p0 in range(0, npos, pc):
            q = min(pc, npos - p0)
            istride = rows * q if block else q
            rstride = q if block else m * q
            if par:
                for t in prange(m * rows):
                    i = t // rows
                    o = i * istride + (t - i * rows) * rstride
                    _build_row(xp, n0 + i, t - i * rows, kshape, strides, dils, oshape, p0,
                               buf[o:o + q])
            else:
                for t in range(m * rows):
                    i = t // rows
                    o = i * istride + (t - i * rows) * rstride
                    _build_row(xp, n0 + i, t - i * rows, kshape, strides, dils, oshape, p0,
                               buf[o:o + q])
            if block:
                for i in range(m):
                    cols = buf[i * rows * q:(i + 1) * rows * q].reshape(rows, q)
                    for g in range(groups):
                        gwg = gw2[g * cout_g:(g + 1) * cout_g]
                        np.dot(gy3[n0 + i, g * cout_g:(g + 1) * cout_g],
                               cols[g * rg:(g + 1) * rg].T, gwg if first else part)
                        if not first:
                            _add_into(gwg, part)
                    first = False
                continue
            cols = buf[:rows * m * q].reshape(rows, m * q)
            gw_ = tmp[:cout_g * m * q].reshape(cout_g, m * q)
            gs = gy3[n0:n0 + m]
            for g in range(groups):
                if par:
                    for t in prange(m * cout_g):
                        _wide_row(gs, gw_, t, m, cout_g, g * cout_g, p0, q, True)
                else:
                    for t in range(m * cout_g):
                        _wide_row(gs, gw_, t, m, cout_g, g * cout_g, p0, q, True)
                gwg = gw2[g * cout_g:(g + 1) * cout_g]
                np.dot(gw_, cols[g * rg:(g + 1) * rg].T, gwg if first else part)
                if not first:
                    _add_into(gwg, part)
            first = False


@njit(cache=True)
def _add_into(a, b):
    """a += b for two 2-D arrays of one shape."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[i, j] += b[i, j]


def _prepare_empty(op, max_col_elems, arrays, out):
    """Check the budget; when some array is empty, zero ``out`` and return True."""
    positive_ints(op, max_col_elems=max_col_elems)
    if any(a.size == 0 for a in arrays):
        out.fill(0)
        return True
    return False


def _prepare(op, ints, max_col_elems, w_shape, out_shape):
    """(strides, dilations, groups, images per chunk, positions per chunk, block layout,
    1x1 without columns, parallel copies) as the jitted drivers take them."""
    (budget,) = positive_ints(op, max_col_elems=max_col_elems)
    strides, groups = tuple(ints[:3]), ints[6]
    rows_g = int(np.prod(w_shape[1:]))              # Cg * KD * KH * KW
    cout_g = w_shape[0] // groups
    positions = int(np.prod(out_shape[2:]))
    direct = tuple(w_shape[2:]) == (1, 1, 1) and strides == (1, 1, 1)
    nb, pc, block = _plan(out_shape[0], groups * rows_g, rows_g, cout_g, positions, budget)
    par = nb * groups * rows_g * pc >= PARALLEL_MIN_ELEMS
    return strides, tuple(ints[3:6]), groups, nb, pc, block, direct, par


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
    if _prepare_empty(op, max_col_elems, (xp, w, y), y):
        return
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
    if _prepare_empty(op, max_col_elems, (gy, w, gxp), gxp):
        return
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
    if _prepare_empty(op, max_col_elems, (gy, xp, gw), gw):
        return
    _grad_weight(gy, xp, gw, *_prepare(op, ints, max_col_elems, gw.shape, gy.shape))
