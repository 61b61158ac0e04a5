"""Direct convolution: forward, grad-input and grad-weight as plain loops.

Every kernel works on "wide" rows: an output plane is computed at the row pitch of its
source plane, so one tap is one long contiguous loop over a chunk of several output rows
(columns past the output width are computed and discarded).  Each job first copies its
input planes into a private source buffer that adds the zero padding (so no padded copy of
the whole input is made) and splits strides into phases:
``src[c, pd, ph, pw, i, j, k] = xpad[n, c, i*sd + pd, j*sh + ph, k*sw + pw]``, after which
tap (kd, kh, kw) reads phase ((kd*dd) % sd, ...) at offset ((kd*dd) // sd, ...) with unit
stride.  Unpadded unit-stride inputs are read in place.  Taps go four at a time into one
accumulator pass (``acc[j] += a[j]*w0 + b[j]*w1 + ...``), so each chunk is loaded and stored
once per four taps; the chunk (CHUNK elements) stays in L1 with the source rows it reads.
Loops run along j with no reduction in them, so LLVM vectorises them without fastmath (NaN
and Inf propagate as IEEE arithmetic says).

Threads run over blocks of the output that each job owns outright:

* forward: (image, group, block of output channels); the source copy serves the block;
* grad-input: (image, group, block of input channels), as a gather: the transposed
  convolution, i.e. the correlation of the zero-padded output gradient with the flipped
  kernel, one input phase at a time (a non-finite weight thus also reaches the input cells
  next to the border that no window of that tap covers, as 0 * inf); only the cells inside
  the padding are written;
* grad-weight: (output channel, block of images) into a private partial result per block,
  summed once after the loop; inside a block each tap keeps per-lane sums over the chunk
  (lanes past the output width are left out of the final sum), four images per pass.

Every public function takes ``pad=None`` (the contract's padded input) or three (lo, hi)
pairs, in which case the first array is the unpadded input (or its gradient) and the kernel
reads zeros outside it.

Threads: each kernel is one ``@njit(nogil=True, cache=True)`` function over the jobs
first, first + step, ..., run by threads.run_jobs; with ``parallel=True`` instead, Numba's
parfor pass re-optimised the inlined job bodies: the cold compile of the three float32
kernels took 28 s of CPU (10.5 s for the simpler kernels these replaced); this way, with the
geometry and tap tables computed in Python, 9.5 s.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit

from .. import config, plan
from .threads import run_jobs

def _blocks(outer, inner):
    """Blocks to split ``inner`` into so that outer * blocks gives every thread 4 jobs."""
    return plan.direct_blocks(outer, inner, numba.get_num_threads())


def _source(x_shape, xps, k_shape, o_shape, s, d, chunk):
    """The planner's source geometry as the jitted kernels take it: (inplace, dp, hp, wp,
    csz, rows, cols) and the tap offsets."""
    g, offs = plan.direct_source(x_shape, xps, k_shape, o_shape, s, d, chunk)
    return (g["inplace"], g["dp"], g["hp"], g["wp"], g["csz"], g["rows"], g["cols"]), offs


@njit(cache=True)
def _taps(acc, src, j0, offs, wts, t0, t1, jn):
    """acc[:jn] = sum over t0 <= t < t1 of src[j0 + offs[t] + j] * wts[t]."""
    r = t1 - t0 - 4 * ((t1 - t0 - 1) // 4)         # 1..4 taps in the first (assigning) pass
    a = src[j0 + offs[t0]:j0 + offs[t0] + jn]
    w0 = wts[t0]
    if r == 1:
        for j in range(jn):
            acc[j] = a[j] * w0
    else:
        b = src[j0 + offs[t0 + 1]:j0 + offs[t0 + 1] + jn]
        w1 = wts[t0 + 1]
        if r == 2:
            for j in range(jn):
                acc[j] = a[j] * w0 + b[j] * w1
        else:
            c = src[j0 + offs[t0 + 2]:j0 + offs[t0 + 2] + jn]
            w2 = wts[t0 + 2]
            if r == 3:
                for j in range(jn):
                    acc[j] = a[j] * w0 + b[j] * w1 + c[j] * w2
            else:
                d = src[j0 + offs[t0 + 3]:j0 + offs[t0 + 3] + jn]
                w3 = wts[t0 + 3]
                for j in range(jn):
                    acc[j] = a[j] * w0 + b[j] * w1 + c[j] * w2 + d[j] * w3
    for t in range(t0 + r, t1, 4):
        a = src[j0 + offs[t]:j0 + offs[t] + jn]
        b = src[j0 + offs[t + 1]:j0 + offs[t + 1] + jn]
        c = src[j0 + offs[t + 2]:j0 + offs[t + 2] + jn]
        d = src[j0 + offs[t + 3]:j0 + offs[t + 3] + jn]
        w0, w1, w2, w3 = wts[t], wts[t + 1], wts[t + 2], wts[t + 3]
        for j in range(jn):
            acc[j] += a[j] * w0 + b[j] * w1 + c[j] * w2 + d[j] * w3


@njit(cache=True)
def _split(xf, x0, xshape, cg, s, lo, dp, hp, wp, dst):
    """dst[ci, pd, ph, pw, i, j, k] = xpad[ci, i*sd + pd, j*sh + ph, k*sw + pw], where xpad
    is the (cg, *xshape) block at xf[x0:] padded by lo below, 0 outside it.  (Unsigned flat
    indices: no negative-index fix-up in the copy loops.)"""
    d_in, h_in, w_in = xshape
    sd, sh, sw = s
    for t in range(dst.shape[0]):
        dst[t] = 0
    t = 0
    for ci in range(cg):
        for pd in range(sd):
            for ph in range(sh):
                for pw in range(sw):
                    # columns k0 <= k < k1 fall inside x
                    k0 = min(wp, max(0, -(-(lo[2] - pw) // sw)))
                    k1 = min(wp, max(k0, -(-(w_in + lo[2] - pw) // sw)))
                    for i in range(dp):
                        for j in range(hp):
                            z, h = i * sd + pd - lo[0], j * sh + ph - lo[1]
                            if 0 <= z < d_in and 0 <= h < h_in:
                                r0 = (x0 + ((ci * d_in + z) * h_in + h) * w_in
                                      + k0 * sw + pw - lo[2])
                                o0 = t + k0
                                if sw == 1:
                                    for k in range(k1 - k0):
                                        dst[np.uint64(o0 + k)] = xf[np.uint64(r0 + k)]
                                elif sw == 2:       # a constant stride vectorises
                                    for k in range(k1 - k0):
                                        dst[np.uint64(o0 + k)] = xf[np.uint64(r0 + 2 * k)]
                                else:
                                    for k in range(k1 - k0):
                                        dst[np.uint64(o0 + k)] = xf[np.uint64(r0 + k * sw)]
                            t += wp


@njit(nogil=True, cache=True)
def _forward(x, wf, y, offs, s, lo, geo, groups, nblk, first, step):
    """Jobs first, first + step, ... of y = conv of x padded by lo below; job (n, g, b) is
    y[n, block b of group g's output channels]."""
    inplace, dp, hp, wp, csz, rows, cols = geo
    c_in, cg, cout_g = x.shape[1], x.shape[1] // groups, y.shape[1] // groups
    od_n, oh_n, ow_n = y.shape[2], y.shape[3], y.shape[4]
    xf = x.reshape(-1)
    xsz = x[0, 0].size
    taps = offs.shape[0]
    per_n = groups * nblk
    for job in range(first, y.shape[0] * per_n, step):
        n, g, b = job // per_n, (job % per_n) // nblk, job % nblk
        if inplace:
            src = xf[(n * c_in + g * cg) * csz:(n * c_in + g * cg + cg) * csz]
        else:
            src = np.empty(cg * csz, x.dtype)
            _split(xf, (n * c_in + g * cg) * xsz, x.shape[2:], cg, s, lo, dp, hp, wp, src)
        acc = np.empty((rows - 1) * wp + cols, y.dtype)
        for co in range(g * cout_g + b * cout_g // nblk, g * cout_g + (b + 1) * cout_g // nblk):
            wts = wf[co]
            for od in range(od_n):
                for oh0 in range(0, oh_n, rows):
                    nr = min(rows, oh_n - oh0)
                    for ow0 in range(0, ow_n, cols):
                        nc = min(cols, ow_n - ow0)
                        # np.int64(0): a literal 0 would compile _taps a second time
                        _taps(acc, src, (od * hp + oh0) * wp + ow0, offs, wts, np.int64(0),
                              taps, (nr - 1) * wp + nc)
                        for r in range(nr):     # views indexed from 0 vectorise
                            yr = y[n, co, od, oh0 + r, ow0:ow0 + nc]
                            ar = acc[r * wp:r * wp + nc]
                            for i in range(nc):
                                yr[i] = ar[i]


@njit(nogil=True, cache=True)
def _grad_input(gy, wf, gx, toff, tidx, pstart, s, lo, geo, groups, nblk, first, step):
    """Jobs first, first + step, ... of gx = the gradient w.r.t. x of _forward (the cells of
    the padded gradient from lo on); job (n, g, b) is gx[n, block b of group g's input
    channels].  geo: see direct_grad_input."""
    cg, cout_g, ktaps, qd, qh, qw, eh, ew, esz, rows, cols, d_in, h_in, w_in = geo
    sd, sh, sw = s
    od_n, oh_n, ow_n = gy.shape[2], gy.shape[3], gy.shape[4]
    gd, gh, gw_ = gx.shape[2], gx.shape[3], gx.shape[4]
    nph = sd * sh * sw
    per_n = groups * nblk
    for job in range(first, gx.shape[0] * per_n, step):
        n, g, b = job // per_n, (job % per_n) // nblk, job % nblk
        gyp = np.zeros(cout_g * esz, gy.dtype)
        for col in range(cout_g):
            for i in range(od_n):
                for j in range(oh_n):
                    o = col * esz + ((qd + i) * eh + qh + j) * ew + qw
                    gr = gy[n, g * cout_g + col, i, j]
                    gc = gyp[o:o + ow_n]
                    for k in range(ow_n):
                        gc[k] = gr[k]
        acc = np.empty((rows - 1) * ew + cols, gy.dtype)
        wts = np.empty(cout_g * ktaps, gy.dtype)
        for ci in range(b * cg // nblk, (b + 1) * cg // nblk):
            c = g * cg + ci
            for t in range(cout_g * ktaps):
                col = tidx[t] // ktaps
                wts[t] = wf[g * cout_g + col, ci, tidx[t] - col * ktaps]
            for p in range(nph):
                pd, ph, pw = p // (sh * sw), (p // sw) % sh, p % sw
                nd = (d_in - pd + sd - 1) // sd
                nh = (h_in - ph + sh - 1) // sh
                nw = (w_in - pw + sw - 1) // sw
                t0, t1 = pstart[p], pstart[p + 1]
                # padded cells u = i*s + p, written where u - lo falls inside gx
                k0 = max(0, -(-(lo[2] - pw) // sw))
                k1 = max(k0, -(-(gw_ + lo[2] - pw) // sw))
                for i in range(nd):
                    z = i * sd + pd - lo[0]
                    if z < 0 or z >= gd:
                        continue
                    for oh0 in range(0, nh, rows):
                        nr = min(rows, nh - oh0)
                        for ow0 in range(0, nw, cols):
                            nc = min(cols, nw - ow0)
                            c0, c1 = max(k0 - ow0, 0), min(k1 - ow0, nc)
                            if t1 > t0:
                                _taps(acc, gyp, (i * eh + oh0) * ew + ow0, toff, wts, t0, t1,
                                      (nr - 1) * ew + nc)
                            else:   # no tap reaches this phase
                                acc[:(nr - 1) * ew + nc] = 0
                            for r in range(nr):
                                h = (oh0 + r) * sh + ph - lo[1]
                                if h < 0 or h >= gh or c1 <= c0:
                                    continue
                                ar = acc[r * ew + c0:r * ew + c1]
                                gr = gx[n, c, z, h, (ow0 + c0) * sw + pw - lo[2]:]
                                if sw == 1:
                                    for k in range(c1 - c0):
                                        gr[k] = ar[k]
                                elif sw == 2:
                                    for k in range(c1 - c0):
                                        gr[2 * k] = ar[k]
                                else:
                                    for k in range(c1 - c0):
                                        gr[k * sw] = ar[k]


@njit(nogil=True, cache=True)
def _grad_weight(gy, x, part, offs, s, lo, geo, groups, first, step):
    """Jobs first, first + step, ... of part[b, co, t] = the gradient of tap t of w[co] from
    the images of block b (x padded by lo below); job (co, b)."""
    inplace, dp, hp, wp, csz, rows, cols = geo
    nblk, c_in = part.shape[0], x.shape[1]
    cg, cout_g = c_in // groups, gy.shape[1] // groups
    n_batch, od_n, oh_n, ow_n = gy.shape[0], gy.shape[2], gy.shape[3], gy.shape[4]
    xf = x.reshape(-1)
    xsz = x[0, 0].size
    taps = offs.shape[0]
    span = (rows - 1) * wp + cols
    for job in range(first, gy.shape[1] * nblk, step):
        co, b = job // nblk, job % nblk
        g = co // cout_g
        # acc[t, j]: per-lane sums; gyw[k]: gy of the k-th image of four at the source's row
        # pitch (0 past the output width); the four images' products go into one pass
        acc = np.zeros((taps, span), gy.dtype)
        gyw = np.zeros((4, span), gy.dtype)
        buf = np.empty(0 if inplace else 4 * cg * csz, x.dtype)
        src = xf if inplace else buf
        base = np.empty(4, np.int64)
        n1 = (b + 1) * n_batch // nblk
        for n0 in range(b * n_batch // nblk, n1, 4):
            m = min(4, n1 - n0)
            for k in range(m):
                if inplace:
                    base[k] = ((n0 + k) * c_in + g * cg) * csz
                else:
                    base[k] = k * cg * csz
                    _split(xf, ((n0 + k) * c_in + g * cg) * xsz, x.shape[2:], cg, s,
                           lo, dp, hp, wp, buf[base[k]:base[k] + cg * csz])
            for od in range(od_n):
                for oh0 in range(0, oh_n, rows):
                    nr = min(rows, oh_n - oh0)
                    for ow0 in range(0, ow_n, cols):
                        nc = min(cols, ow_n - ow0)
                        for k in range(m):
                            for r in range(nr):
                                gr = gy[n0 + k, co, od, oh0 + r, ow0:ow0 + nc]
                                gk = gyw[k, r * wp:r * wp + nc]
                                for i in range(nc):
                                    gk[i] = gr[i]
                        j0 = (od * hp + oh0) * wp + ow0
                        jn = (nr - 1) * wp + nc
                        for t in range(taps):
                            at = acc[t]
                            if m == 4:
                                o = j0 + offs[t]
                                a0 = src[base[0] + o:base[0] + o + jn]
                                a1 = src[base[1] + o:base[1] + o + jn]
                                a2 = src[base[2] + o:base[2] + o + jn]
                                a3 = src[base[3] + o:base[3] + o + jn]
                                g0, g1, g2, g3 = gyw[0], gyw[1], gyw[2], gyw[3]
                                for j in range(jn):
                                    at[j] += (g0[j] * a0[j] + g1[j] * a1[j] + g2[j] * a2[j]
                                              + g3[j] * a3[j])
                            else:
                                for k in range(m):
                                    o = base[k] + j0 + offs[t]
                                    a0 = src[o:o + jn]
                                    g0 = gyw[k]
                                    for j in range(jn):
                                        at[j] += g0[j] * a0[j]
        for t in range(taps):      # the lanes inside the output width
            total = 0.0
            for r in range(rows):
                ar = acc[t, r * wp:r * wp + cols]
                for i in range(cols):
                    total += ar[i]
            part[b, co, t] = total


def direct_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups, pad=None):
    """Direct convolution (cross-correlation) of a padded input, written into ``y``.

    Parameters
    ----------
    xp : ndarray (N, C, D, H, W), float32 or float64, C-contiguous, already padded (or the
        unpadded input when ``pad`` is given).
    w : ndarray (C_out, C // groups, KD, KH, KW), same dtype.
    y : ndarray (N, C_out, OD, OH, OW), same dtype, overwritten, where
        ``OD = (D - dd * (KD - 1) - 1) // sd + 1`` and likewise for H, W (D, H, W padded).
    sd, sh, sw, dd, dh, dw, groups : int
        Strides, dilations and groups.
    pad : None or ((lo, hi),) * 3
        Zero padding the kernel adds around ``xp`` itself.

    Examples
    --------
    >>> xp = np.ones((1, 1, 1, 1, 5), np.float32); w = np.ones((1, 1, 1, 1, 3), np.float32)
    >>> y = np.empty((1, 1, 1, 1, 3), np.float32)
    >>> direct_forward(xp, w, y, 1, 1, 1, 1, 1, 1, 1); y.ravel().tolist()
    [3.0, 3.0, 3.0]
    """
    _, s, d, groups, lo, xps = plan.conv_call("direct_forward", ("xp", "w", "y"), (xp, w, y),
                                              (sd, sh, sw, dd, dh, dw, groups), pad)
    geo, offs = _source(xp.shape, xps, w.shape, y.shape, s, d, config.DIRECT_CHUNK)
    nblk = _blocks(xp.shape[0] * groups, w.shape[0] // groups)
    run_jobs(_forward, xp.shape[0] * groups * nblk, xp, w.reshape(w.shape[0], -1), y, offs, s,
             lo, geo, groups, nblk)


def direct_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups, pad=None):
    """Gradient w.r.t. the padded input of :func:`direct_forward`, written into ``gxp``.

    ``gy`` is (N, C_out, OD, OH, OW), ``w`` (C_out, C // groups, KD, KH, KW) and ``gxp``
    (N, C, D, H, W), the padded input's shape (the unpadded one when ``pad`` is given); cells
    no window reaches get 0.

    Examples
    --------
    >>> gy = np.ones((1, 1, 1, 1, 3)); w = np.ones((1, 1, 1, 1, 3))
    >>> gxp = np.empty((1, 1, 1, 1, 5))
    >>> direct_grad_input(gy, w, gxp, 1, 1, 1, 1, 1, 1, 1); gxp.ravel().tolist()
    [1.0, 2.0, 3.0, 2.0, 1.0]
    """
    _, s, d, groups, lo, xps = plan.conv_call("direct_grad_input", ("gy", "w", "gxp"),
                                              (gy, w, gxp), (sd, sh, sw, dd, dh, dw, groups),
                                              pad, xi=2, wi=1, yi=0)
    cout_g, ktaps = w.shape[0] // groups, w[0, 0].size
    t = plan.direct_grad_input_taps(w.shape, s, d, xps, groups, ktaps)
    geo = ((w.shape[1], cout_g, ktaps) + t["q"] + (t["eh"], t["ew"], t["esz"], t["rows"],
                                                    t["cols"]) + tuple(xps))
    toff, tidx, pstart = t["toff"], t["tidx"], t["pstart"]
    nblk = _blocks(gxp.shape[0] * groups, w.shape[1])
    run_jobs(_grad_input, gxp.shape[0] * groups * nblk, gy,
             w.reshape(w.shape[0], w.shape[1], -1), gxp, toff, tidx, pstart, s, lo, geo, groups,
             nblk)


def direct_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups, pad=None):
    """Gradient w.r.t. the weight of :func:`direct_forward`, written into ``gw``.

    ``gy`` is (N, C_out, OD, OH, OW), ``xp`` the padded input (N, C, D, H, W) (the unpadded
    one when ``pad`` is given) and ``gw`` (C_out, C // groups, KD, KH, KW).

    Examples
    --------
    >>> gy = np.ones((1, 1, 1, 1, 3)); xp = np.arange(5.0).reshape(1, 1, 1, 1, 5)
    >>> gw = np.empty((1, 1, 1, 1, 3))
    >>> direct_grad_weight(gy, xp, gw, 1, 1, 1, 1, 1, 1, 1); gw.ravel().tolist()
    [3.0, 6.0, 9.0]
    """
    _, s, d, groups, lo, xps = plan.conv_call("direct_grad_weight", ("gy", "xp", "gw"),
                                              (gy, xp, gw), (sd, sh, sw, dd, dh, dw, groups),
                                              pad, xi=1, wi=2, yi=0)
    c_out, taps = gw.shape[0], gw[0].size
    geo, offs = _source(xp.shape, xps, gw.shape, gy.shape, s, d, plan.grad_weight_chunk(taps))
    nblk = _blocks(c_out, xp.shape[0])
    # one partial result per block of images, summed here (gw itself when there is one)
    part = gw.reshape(1, c_out, taps) if nblk == 1 else np.empty((nblk, c_out, taps), gw.dtype)
    run_jobs(_grad_weight, c_out * nblk, gy, xp, part, offs, s, lo, geo, groups)
    if nblk > 1:
        np.sum(part, axis=0, out=gw.reshape(c_out, taps))
