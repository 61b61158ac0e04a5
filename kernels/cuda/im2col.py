"""im2col + GEMM on the GPU: a column kernel, a col2im gather and the tiled GEMM.

The column buffer of a chunk holds ``cols[n, r, p]`` for ``nb`` images, every row
r = (c, kd, kh, kw) of the unfolded input and ``pc`` output positions starting at ``p0``
(the flattened (od, oh, ow) index), so group g's rows are the contiguous block
[g*K, (g+1)*K) with K = C/groups * KD*KH*KW.  Then, with one batched GEMM per chunk
(batch = image x group, strides only, no copies)::

    forward      y[n, g]  (Cout_g x pc)  = W_g (Cout_g x K)  @ cols[n, g] (K x pc)
    grad-input   gcols[n, g] (K x pc)    = W_g^T (K x Cout_g) @ gy[n, g] (Cout_g x pc)
    grad-weight  gW_g (Cout_g x K)      += sum_n gy[n, g] (Cout_g x pc) @ cols[n, g]^T

grad-input folds the column gradient back with a gather (one thread per input element,
adding the column entries it was copied to), and grad-weight reduces over images inside the
GEMM's k loop (k = (image, position)), so no step needs atomics.  A chunk covers as many
whole images as fit in ``max_col_elems`` elements, or part of one image's positions when a
single image does not fit.
"""
from __future__ import annotations

from numba import cuda

from .. import plan
from ._device import blocks_for, device_io, flat, threads, unravel5
from .conv_direct import check_conv
from .gemm import Operand, gemm


@cuda.jit(cache=True)
def _im2col(xp, cols, n0, nb, p0, pc, oh_n, ow_n, kd_n, kh_n, kw_n, sd, sh, sw, dd, dh, dw):
    rows = xp.shape[1] * kd_n * kh_n * kw_n
    for idx in range(cuda.grid(1), nb * rows * pc, cuda.gridsize(1)):
        p = idx % pc
        t = idx // pc
        row = t % rows
        n = n0 + t // rows
        q = p0 + p
        ow = q % ow_n
        q //= ow_n
        oh = q % oh_n
        od = q // oh_n
        kw = row % kw_n
        t = row // kw_n
        kh = t % kh_n
        t //= kh_n
        kd = t % kd_n
        c = t // kd_n
        cols[idx] = xp[n, c, od * sd + kd * dd, oh * sh + kh * dh, ow * sw + kw * dw]


@cuda.jit(cache=True)
def _col2im(gcols, gxp, n0, nb, p0, pc, od_n, oh_n, ow_n, kd_n, kh_n, kw_n,
            sd, sh, sw, dd, dh, dw, accumulate, zero):
    c_n, d_n, h_n, w_n = gxp.shape[1], gxp.shape[2], gxp.shape[3], gxp.shape[4]
    rows = c_n * kd_n * kh_n * kw_n
    for idx in range(cuda.grid(1), nb * c_n * d_n * h_n * w_n, cuda.gridsize(1)):
        nl, c, d, h, x = unravel5(idx, c_n, d_n, h_n, w_n)
        acc = zero
        for kd in range(kd_n):
            td = d - kd * dd
            if td < 0 or td % sd != 0 or td // sd >= od_n:
                continue
            for kh in range(kh_n):
                th = h - kh * dh
                if th < 0 or th % sh != 0 or th // sh >= oh_n:
                    continue
                for kw in range(kw_n):
                    tw = x - kw * dw
                    if tw < 0 or tw % sw != 0 or tw // sw >= ow_n:
                        continue
                    q = ((td // sd) * oh_n + th // sh) * ow_n + tw // sw - p0
                    if 0 <= q < pc:
                        row = ((c * kd_n + kd) * kh_n + kh) * kw_n + kw
                        acc += gcols[(nl * rows + row) * pc + q]
        if accumulate:
            gxp[n0 + nl, c, d, h, x] += acc
        else:
            gxp[n0 + nl, c, d, h, x] = acc


def _chunks(n_batch, rows, positions, max_col_elems):
    """(n0, nb, p0, pc) chunks of the column buffer, each at most max(rows, max_col_elems)
    elements: whole images when one fits, else runs of positions of one image."""
    per_image = rows * positions
    if per_image <= max_col_elems:
        nb = max(1, max_col_elems // per_image)
        return [(n0, min(nb, n_batch - n0), 0, positions) for n0 in range(0, n_batch, nb)]
    pc = max(1, max_col_elems // rows)
    return [(n0, 1, p0, min(pc, positions - p0))
            for n0 in range(n_batch) for p0 in range(0, positions, pc)]


def _geometry(x_shape, w_shape, y_shape):
    """(rows, K, positions, C_out): rows = C*KD*KH*KW of the columns, K = rows per group."""
    c_out, cg = w_shape[:2]
    kvol = w_shape[2] * w_shape[3] * w_shape[4]
    positions = y_shape[2] * y_shape[3] * y_shape[4]
    return x_shape[1] * kvol, cg * kvol, positions, c_out


def _call(op, names, arrays, ints, max_col_elems):
    """The planner's checks (names/arrays in the roles padded input, weight, output) and the
    geometry: (dtype, ints, groups, x/w/y shapes, rows, k, positions, c_out, c_out / groups)."""
    plan.positive_ints(op, max_col_elems=max_col_elems)
    dtype, ints = check_conv(op, names, arrays, ints)
    x_shape, w_shape, y_shape = (tuple(a.shape) for a in arrays)
    rows, k, positions, c_out = _geometry(x_shape, w_shape, y_shape)
    return (dtype, ints, ints[6], x_shape, w_shape, y_shape, rows, k, positions, c_out,
            c_out // ints[6])


def _workspace(out, y_shape, rows, positions, max_col_elems, dtype):
    """(chunks, the column buffer of the largest chunk) on the device; no chunks when the
    output ``out`` is empty."""
    if out.size == 0:
        return [], None
    chunks = _chunks(y_shape[0], rows, positions, max_col_elems)
    return chunks, cuda.device_array(max(nb * pc for _, nb, _, pc in chunks) * rows,
                                     dtype=dtype)


def _launch_cols(dxp, ws, n0, nb, p0, pc, y_shape, w_shape, ints):
    t = threads()
    sd, sh, sw, dd, dh, dw, _ = ints
    rows = dxp.shape[1] * w_shape[2] * w_shape[3] * w_shape[4]
    _im2col[blocks_for(nb * rows * pc, t), t](dxp, ws, n0, nb, p0, pc, y_shape[3],
                                               y_shape[4], *w_shape[2:], sd, sh, sw,
                                               dd, dh, dw)


def im2col_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """Convolution as column buffer + tiled GEMM; arguments as in
    :func:`kernels.cuda.direct_forward`, plus the column-buffer budget ``max_col_elems``.

    Examples
    --------
    >>> xp = np.arange(4.0).reshape(1, 1, 1, 1, 4); w = np.ones((1, 1, 1, 1, 2))
    >>> y = np.empty((1, 1, 1, 1, 3)); im2col_forward(xp, w, y, 1, 1, 1, 1, 1, 1, 1, 1 << 20)
    >>> y.ravel().tolist()
    [1.0, 3.0, 5.0]
    """
    dtype, ints, groups, _, w_shape, y_shape, rows, k, positions, c_out, cout_g = _call(
        "im2col_forward", ("xp", "w", "y"), (xp, w, y), (sd, sh, sw, dd, dh, dw, groups),
        max_col_elems)
    with device_io((xp, w), (y,)) as (dxp, dw_, dy):
        chunks, ws = _workspace(dy, y_shape, rows, positions, max_col_elems, dtype)
        for n0, nb, p0, pc in chunks:
            _launch_cols(dxp, ws, n0, nb, p0, pc, y_shape, w_shape, ints)
            gemm(Operand(flat(dw_), s2=cout_g * k, rows=k),
                 Operand(ws, s1=rows * pc, s2=k * pc, rows=pc),
                 Operand(flat(dy), off=n0 * c_out * positions + p0, s1=c_out * positions,
                         s2=cout_g * positions, rows=positions),
                 cout_g, pc, k, nb1=nb, nb2=groups)


def im2col_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """Gradient w.r.t. the padded input: column gradient by GEMM, then a col2im gather.
    Arguments as in :func:`kernels.cuda.direct_grad_input`, plus ``max_col_elems``.

    Examples
    --------
    >>> gy = np.ones((1, 1, 1, 1, 3)); w = np.ones((1, 1, 1, 1, 2))
    >>> gxp = np.empty((1, 1, 1, 1, 4))
    >>> im2col_grad_input(gy, w, gxp, 1, 1, 1, 1, 1, 1, 1, 1 << 20); gxp.ravel().tolist()
    [1.0, 2.0, 2.0, 1.0]
    """
    dtype, ints, groups, x_shape, w_shape, y_shape, rows, k, positions, c_out, cout_g = _call(
        "im2col_grad_input", ("gxp", "w", "gy"), (gxp, w, gy),
        (sd, sh, sw, dd, dh, dw, groups), max_col_elems)
    with device_io((gy, w), (gxp,)) as (dgy, dw_, dgx):
        chunks, ws = _workspace(dgx, y_shape, rows, positions, max_col_elems, dtype)
        t = threads()
        sd, sh, sw, dd, dh, dw, _ = ints
        for n0, nb, p0, pc in chunks:
            gemm(Operand(flat(dw_), s2=cout_g * k, rows=1, cols=k),
                 Operand(flat(dgy), off=n0 * c_out * positions + p0, s1=c_out * positions,
                         s2=cout_g * positions, rows=positions),
                 Operand(ws, s1=rows * pc, s2=k * pc, rows=pc),
                 k, pc, cout_g, nb1=nb, nb2=groups)
            total = nb * x_shape[1] * x_shape[2] * x_shape[3] * x_shape[4]
            _col2im[blocks_for(total, t), t](ws, dgx, n0, nb, p0, pc, *y_shape[2:],
                                             *w_shape[2:], sd, sh, sw, dd, dh, dw, p0 > 0,
                                             dtype.type(0))


def im2col_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups, max_col_elems):
    """Gradient w.r.t. the weight: one GEMM per chunk whose k runs over (image, position).
    Arguments as in :func:`kernels.cuda.direct_grad_weight`, plus ``max_col_elems``.

    Examples
    --------
    >>> gy = np.ones((1, 1, 1, 1, 3)); xp = np.arange(4.0).reshape(1, 1, 1, 1, 4)
    >>> gw = np.empty((1, 1, 1, 1, 2))
    >>> im2col_grad_weight(gy, xp, gw, 1, 1, 1, 1, 1, 1, 1, 1 << 20); gw.ravel().tolist()
    [3.0, 6.0]
    """
    dtype, ints, groups, _, w_shape, y_shape, rows, k, positions, c_out, cout_g = _call(
        "im2col_grad_weight", ("xp", "gw", "gy"), (xp, gw, gy),
        (sd, sh, sw, dd, dh, dw, groups), max_col_elems)
    with device_io((gy, xp), (gw,)) as (dgy, dxp, dgw):
        chunks, ws = _workspace(dgw, y_shape, rows, positions, max_col_elems, dtype)
        for i, (n0, nb, p0, pc) in enumerate(chunks):
            _launch_cols(dxp, ws, n0, nb, p0, pc, y_shape, w_shape, ints)
            # k = (image, position): k1 = image (stride of one image), k2 = position
            gemm(Operand(flat(dgy), off=n0 * c_out * positions + p0, s2=cout_g * positions,
                         rows=positions, k_outer=c_out * positions),
                 Operand(ws, s2=k * pc, rows=1, cols=pc, k_outer=rows * pc),
                 Operand(flat(dgw), s2=cout_g * k, rows=k),
                 cout_g, k, nb * pc, nb2=groups, kdiv=pc, accumulate=i > 0)
