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
two layouts chosen by :func:`kernels.plan.im2col_layout` (the planner both CPU backends share):

* per-image blocks (the GEMM of one image is big): image i's (C*taps, P) matrix is one
  contiguous block and each image gets its own GEMMs, which read from and write to y / gy
  in place (NCHW needs no transpose);
* wide (small GEMMs): the chunk's columns form one (C*taps, images*positions) matrix, so each
  group is one big GEMM; y (forward) or gy (gradients) then goes through a transposed copy
  (C_out rows, all groups at once).  Wide chunks may also cover part of one image's
  positions, when one image's columns exceed the budget.

The column buffer plus that transposed copy hold at most ``max_col_elems`` elements (at least
one output position).  A 1x1 kernel at stride 1 needs no columns: the input planes are the
column matrix.  The copies are Numba kernels over independent rows / planes, run on threads
(threads.run_jobs) when the chunk is big enough (a thread wake-up costs more than a small
copy); the GEMMs are ``np.dot`` called from Python between them (BLAS, threaded by BLAS
itself), never while copy threads run.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import plan
from .threads import run_jobs

@njit(cache=True)
def _build_unit(xp, n, u, kshape, strides, dils, oshape, p0, pc, buf, off, rstride):
    """The KW rows of unit u = (c, kd, kh) of image n's columns, for the pc output positions
    from p0: row r = u*KW + kw lands at buf[off + r*rstride:][:pc] and holds
    xp[n, c, od*sd + kd*dd, oh*sh + kh*dh, ow*sw + kw*dw] at position (od, oh, ow).
    Rows are ordered channel-major, so group g's rows are the contiguous slab
    g*Cg*taps ... (g+1)*Cg*taps."""
    kd_n, kh_n, kw_n = kshape
    sd, sh, sw = strides
    dd, dh, dw = dils
    oh_n, ow_n = oshape[1], oshape[2]
    h, w = xp.shape[3], xp.shape[4]
    c = u // (kd_n * kh_n)
    kd = (u // kh_n) % kd_n
    kh = u % kh_n
    plane = xp[n, c].reshape(xp.shape[2] * h * w)
    row0 = off + u * kw_n * rstride
    od = p0 // (oh_n * ow_n)
    oh = (p0 // ow_n) % oh_n
    ow = p0 % ow_n
    j = 0
    # one output-row segment at a time; the KW taps read the same input row, shifted
    while j < pc:
        seg = min(ow_n - ow, pc - j)
        base = ((od * sd + kd * dd) * h + oh * sh + kh * dh) * w + ow * sw
        for kw in range(kw_n):
            b = base + kw * dw
            # views indexed from 0 vectorise (a contiguous one for stride 1)
            if sw == 1:
                src = plane[b:b + seg]
            else:
                src = plane[b:b + (seg - 1) * sw + 1:sw]
            dst = buf[row0 + kw * rstride + j:row0 + kw * rstride + j + seg]
            for i in range(seg):
                dst[i] = src[i]
        j += seg
        ow = 0
        oh += 1
        if oh == oh_n:
            oh = 0
            od += 1


@njit(cache=True)
def _col2im_plane(buf, off, rstride, gxp, n, c, kshape, strides, dils, oshape, p0, pc, zero):
    """gxp[n, c] (+)= channel c's rows of the column chunk (row r at buf[off + r*rstride:],
    pc positions from p0), scattered back to the input positions they were read from; the
    transpose of _build_unit.  ``zero`` clears the plane first.  Different planes never
    overlap, so calls for distinct (n, c) may run in parallel."""
    kd_n, kh_n, kw_n = kshape
    sd, sh, sw = strides
    dd, dh, dw = dils
    oh_n, ow_n = oshape[1], oshape[2]
    h, w = gxp.shape[3], gxp.shape[4]
    plane = gxp[n, c].reshape(gxp.shape[2] * h * w)
    if zero:
        plane[:] = 0
    for kd in range(kd_n):
        for kh in range(kh_n):
            row0 = off + ((c * kd_n + kd) * kh_n + kh) * kw_n * rstride
            od = p0 // (oh_n * ow_n)
            oh = (p0 // ow_n) % oh_n
            ow = p0 % ow_n
            j = 0
            while j < pc:
                seg = min(ow_n - ow, pc - j)
                base = ((od * sd + kd * dd) * h + oh * sh + kh * dh) * w + ow * sw
                for kw in range(kw_n):
                    b = base + kw * dw
                    src = buf[row0 + kw * rstride + j:row0 + kw * rstride + j + seg]
                    if sw == 1:
                        # an array expression: vectorised better than the loop below
                        dst = plane[b:b + seg]
                        dst += src
                    else:
                        dst = plane[b:b + (seg - 1) * sw + 1:sw]
                        for i in range(seg):
                            dst[i] += src[i]
                j += seg
                ow = 0
                oh += 1
                if oh == oh_n:
                    oh = 0
                    od += 1


@njit(cache=True)
def _wide_row(a3, b2, t, m, p0, q, to_wide):
    """Task t = (o, i) of the transposed copy between a3 (images, C_out, P) and the wide
    matrix b2 (C_out, m*q): a3[i, o, p0:p0 + q] and b2[o, i*q:(i + 1)*q]."""
    o = t // m
    i = t - o * m
    arow = a3[i, o]
    brow = b2[o, i * q:(i + 1) * q]
    if to_wide:
        for j in range(q):
            brow[j] = arow[p0 + j]
    else:
        for j in range(q):
            arow[p0 + j] = brow[j]


# The kernels below each do jobs first, first + step, ... of one chunk's copies (see
# threads.run_jobs).  Column layout of a chunk of m images and q positions: row r of image i
# starts at i*istride + r*rstride (blocks: istride = rows*q, rstride = q; wide: istride = q,
# rstride = m*q).

@njit(nogil=True, cache=True)
def _build(xp, n0, m, kshape, strides, dils, oshape, p0, q, buf, istride, rstride, first,
           step):
    """Columns p0 .. p0 + q of images n0 .. n0 + m (every channel) into buf; job t is unit
    t % units of image n0 + t // units, units = C*KD*KH (c, kd, kh) row triples."""
    units = xp.shape[1] * kshape[0] * kshape[1]
    for t in range(first, m * units, step):
        i = t // units
        _build_unit(xp, n0 + i, t - i * units, kshape, strides, dils, oshape, p0, q, buf,
                    i * istride, rstride)


@njit(nogil=True, cache=True)
def _col2im(buf, istride, rstride, gxp, n0, m, kshape, strides, dils, oshape, p0, q, first,
            step):
    """Scatter-add a column chunk (images n0 .. n0 + m, positions p0 .. p0 + q) into gxp,
    clearing each plane first on the chunk at p0 = 0; job t is plane (n0 + t // C, t % C)."""
    c_in = gxp.shape[1]
    for t in range(first, m * c_in, step):
        i = t // c_in
        _col2im_plane(buf, i * istride, rstride, gxp, n0 + i, t - i * c_in, kshape, strides,
                      dils, oshape, p0, q, p0 == 0)


@njit(nogil=True, cache=True)
def _wide(a3, b2, p0, q, to_wide, first, step):
    """Copy between a3 (m images, C_out, P) positions p0 .. p0 + q and the wide b2
    (C_out, m*q), in the direction ``to_wide``; job t is row (t // m, t % m)."""
    m = a3.shape[0]
    for t in range(first, b2.shape[0] * m, step):
        _wide_row(a3, b2, t, m, p0, q, to_wide)


# The drivers loop over chunks of images (or of one image's positions) in Python: each chunk
# is one (threaded) copy kernel and then per-group GEMMs through np.dot, i.e. numpy's BLAS
# (never while copy threads run), writing into y / reading gy in place where the layout
# allows.  numpy's bundled OpenBLAS is a newer build than the scipy one that np.dot inside
# Numba would call, 10-25% faster on these skinny GEMMs (AVX2, one thread), and the
# Python-level loop costs microseconds per chunk.

def _shapes(w_shape, out_shape, groups):
    """(rows per group, rows, positions, C_out per group)."""
    rg = int(np.prod(w_shape[1:]))
    return rg, groups * rg, int(np.prod(out_shape[2:])), w_shape[0] // groups


def _chunks(n_batch, npos, nb, pc):
    """(first image, images, first position, positions) of every chunk."""
    for n0 in range(0, n_batch, nb):
        for p0 in range(0, npos, pc):
            yield n0, min(nb, n_batch - n0), p0, min(pc, npos - p0)


def _forward(xp, w, y, strides, dils, groups, nb, pc, block, direct, par):
    rg, rows, npos, cog = _shapes(w.shape, y.shape, groups)
    n_batch, c_out = y.shape[:2]
    kshape, oshape = w.shape[2:], y.shape[2:]
    units = xp.shape[1] * kshape[0] * kshape[1]        # _build's jobs
    w2 = w.reshape(c_out, rg)
    y3 = y.reshape(n_batch, c_out, npos)
    if direct:
        x3 = xp.reshape(n_batch, rows, npos)
        for n in range(n_batch):
            for g in range(groups):
                np.dot(w2[g * cog:(g + 1) * cog], x3[n, g * rg:(g + 1) * rg],
                       out=y3[n, g * cog:(g + 1) * cog])
        return
    buf = np.empty(nb * rows * pc, y.dtype)
    tmp = None if block else np.empty(c_out * nb * pc, y.dtype)
    for n0, m, p0, q in _chunks(n_batch, npos, nb, pc):
        istride, rstride = (rows * q, q) if block else (q, m * q)
        run_jobs(_build, m * units, xp, n0, m, kshape, strides, dils, oshape, p0, q, buf,
                 istride, rstride, parallel=par)
        if block:
            for i in range(m):
                cols = buf[i * rows * q:(i + 1) * rows * q].reshape(rows, q)
                for g in range(groups):
                    np.dot(w2[g * cog:(g + 1) * cog], cols[g * rg:(g + 1) * rg],
                           out=y3[n0 + i, g * cog:(g + 1) * cog])
            continue
        cols = buf[:rows * m * q].reshape(rows, m * q)
        yw = tmp[:c_out * m * q].reshape(c_out, m * q)
        for g in range(groups):
            np.dot(w2[g * cog:(g + 1) * cog], cols[g * rg:(g + 1) * rg],
                   out=yw[g * cog:(g + 1) * cog])
        run_jobs(_wide, c_out * m, y3[n0:n0 + m], yw, p0, q, False, parallel=par)


def _grad_input(gy, w, gxp, strides, dils, groups, nb, pc, block, direct, par):
    rg, rows, npos, cog = _shapes(w.shape, gy.shape, groups)
    n_batch, c_out = gy.shape[:2]
    kshape, oshape = w.shape[2:], gy.shape[2:]
    wt = w.reshape(c_out, rg).T                         # W^T, an F-ordered view
    gy3 = gy.reshape(n_batch, c_out, npos)
    if direct:
        gx3 = gxp.reshape(n_batch, rows, npos)
        for n in range(n_batch):
            for g in range(groups):
                np.dot(wt[:, g * cog:(g + 1) * cog], gy3[n, g * cog:(g + 1) * cog],
                       out=gx3[n, g * rg:(g + 1) * rg])
        return
    buf = np.empty(nb * rows * pc, gy.dtype)
    tmp = None if block else np.empty(c_out * nb * pc, gy.dtype)
    for n0, m, p0, q in _chunks(n_batch, npos, nb, pc):
        istride, rstride = (rows * q, q) if block else (q, m * q)
        if block:
            for i in range(m):
                cols = buf[i * rows * q:(i + 1) * rows * q].reshape(rows, q)
                for g in range(groups):
                    np.dot(wt[:, g * cog:(g + 1) * cog], gy3[n0 + i, g * cog:(g + 1) * cog],
                           out=cols[g * rg:(g + 1) * rg])
        else:
            cols = buf[:rows * m * q].reshape(rows, m * q)
            gw_ = tmp[:c_out * m * q].reshape(c_out, m * q)
            run_jobs(_wide, c_out * m, gy3[n0:n0 + m], gw_, p0, q, True, parallel=par)
            for g in range(groups):
                np.dot(wt[:, g * cog:(g + 1) * cog], gw_[g * cog:(g + 1) * cog],
                       out=cols[g * rg:(g + 1) * rg])
        run_jobs(_col2im, m * gxp.shape[1], buf, istride, rstride, gxp, n0, m, kshape, strides,
                 dils, oshape, p0, q, parallel=par)


def _grad_weight(gy, xp, gw, strides, dils, groups, nb, pc, block, direct, par):
    rg, rows, npos, cog = _shapes(gw.shape, gy.shape, groups)
    n_batch, c_out = gy.shape[:2]
    kshape, oshape = gw.shape[2:], gy.shape[2:]
    units = xp.shape[1] * kshape[0] * kshape[1]        # _build's jobs
    gw2 = gw.reshape(c_out, rg)
    gy3 = gy.reshape(n_batch, c_out, npos)
    part = np.empty((cog, rg), gy.dtype)

    def acc(g, a, b, first):
        """gw_g (+)= a @ b: the first product of each group lands in gw itself."""
        gwg = gw2[g * cog:(g + 1) * cog]
        if first:
            np.dot(a, b, out=gwg)
        else:
            np.dot(a, b, out=part)
            gwg += part

    if direct:
        x3 = xp.reshape(n_batch, rows, npos)
        for n in range(n_batch):
            for g in range(groups):
                acc(g, gy3[n, g * cog:(g + 1) * cog], x3[n, g * rg:(g + 1) * rg].T, n == 0)
        return
    buf = np.empty(nb * rows * pc, gy.dtype)
    tmp = None if block else np.empty(c_out * nb * pc, gy.dtype)
    for n0, m, p0, q in _chunks(n_batch, npos, nb, pc):
        first = n0 == 0 and p0 == 0
        istride, rstride = (rows * q, q) if block else (q, m * q)
        run_jobs(_build, m * units, xp, n0, m, kshape, strides, dils, oshape, p0, q, buf,
                 istride, rstride, parallel=par)
        if block:
            for i in range(m):
                cols = buf[i * rows * q:(i + 1) * rows * q].reshape(rows, q)
                for g in range(groups):
                    acc(g, gy3[n0 + i, g * cog:(g + 1) * cog], cols[g * rg:(g + 1) * rg].T,
                        first and i == 0)
            continue
        cols = buf[:rows * m * q].reshape(rows, m * q)
        gw_ = tmp[:c_out * m * q].reshape(c_out, m * q)
        run_jobs(_wide, c_out * m, gy3[n0:n0 + m], gw_, p0, q, True, parallel=par)
        for g in range(groups):
            acc(g, gw_[g * cog:(g + 1) * cog], cols[g * rg:(g + 1) * rg].T, first)


def _call(op, names, arrays, ints, max_col_elems, xi, wi, yi):
    """The planner's checks and chunks (kernels.plan.im2col_call) as the jitted drivers take
    them: (strides, dilations, groups, images per chunk, positions per chunk, block layout,
    1x1 without columns, parallel copies), or None after zeroing the output when an array
    is empty.  The wide layout's transposed copy holds all C_out rows."""
    r = plan.im2col_call(op, names, arrays, ints, max_col_elems, xi, wi, yi, True)
    if r is None:
        arrays[-1].fill(0)
        return None
    return (r["strides"], r["dilations"], r["groups"], r["nb"], r["pc"], r["block"],
            r["direct"], r["parallel"])


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
    r = _call("im2col_forward", ("xp", "w", "y"), (xp, w, y), (sd, sh, sw, dd, dh, dw, groups),
              max_col_elems, 0, 1, 2)
    if r is not None:
        _forward(xp, w, y, *r)


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
    r = _call("im2col_grad_input", ("gy", "w", "gxp"), (gy, w, gxp),
              (sd, sh, sw, dd, dh, dw, groups), max_col_elems, 2, 1, 0)
    if r is not None:
        _grad_input(gy, w, gxp, *r)


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
    r = _call("im2col_grad_weight", ("gy", "xp", "gw"), (gy, xp, gw),
              (sd, sh, sw, dd, dh, dw, groups), max_col_elems, 1, 2, 0)
    if r is not None:
        _grad_weight(gy, xp, gw, *r)
