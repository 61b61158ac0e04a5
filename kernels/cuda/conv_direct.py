"""Direct convolution on the GPU: the textbook sums, one thread (or block) per result.

All three kernels gather, so no two threads ever write the same cell and no atomics are
needed:

- forward: one thread per output element sums over its window and input channels;
- grad-input: one thread per (padded) input element sums over the output positions and
  output channels whose window covers it (the taps where (i - k*dilation) is a non-negative
  multiple of the stride);
- grad-weight: one block per weight element; its threads split the (image, output position)
  pairs, then add their partial sums in shared memory (a tree reduction).

Element-wise kernels loop grid-stride, so a launch capped at config.MAX_BLOCKS still covers
every element.  ``zero`` is a scalar of the arrays' dtype: it types the accumulators, so
float32 problems accumulate in float32.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from . import config
from .. import plan
from ._device import block_sum, blocks_for, device_io, launch, unravel5


@cuda.jit(cache=True)
def _forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups, zero):
    n_batch, c_out, od_n, oh_n, ow_n = y.shape
    cg, kd_n, kh_n, kw_n = w.shape[1], w.shape[2], w.shape[3], w.shape[4]
    cout_g = c_out // groups
    for idx in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        n, co, od, oh, ow = unravel5(idx, c_out, od_n, oh_n, ow_n)
        c0 = (co // cout_g) * cg
        acc = zero
        for ci in range(cg):
            for kd in range(kd_n):
                for kh in range(kh_n):
                    for kw in range(kw_n):
                        acc += (xp[n, c0 + ci, od * sd + kd * dd, oh * sh + kh * dh,
                                   ow * sw + kw * dw] * w[co, ci, kd, kh, kw])
        y[n, co, od, oh, ow] = acc


@cuda.jit(cache=True)
def _grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups, zero):
    od_n, oh_n, ow_n = gy.shape[2], gy.shape[3], gy.shape[4]
    c_out, cg, kd_n, kh_n, kw_n = w.shape
    c_n, d_n, h_n, w_n = gxp.shape[1], gxp.shape[2], gxp.shape[3], gxp.shape[4]
    cout_g = c_out // groups
    for idx in range(cuda.grid(1), gxp.size, cuda.gridsize(1)):
        n, c, d, h, x = unravel5(idx, c_n, d_n, h_n, w_n)
        g = c // cg
        ci = c - g * cg
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
                    for co in range(g * cout_g, (g + 1) * cout_g):
                        acc += gy[n, co, td // sd, th // sh, tw // sw] * w[co, ci, kd, kh, kw]
        gxp[n, c, d, h, x] = acc


_reducers = {}


def _grad_weight_kernel(dtype, nt):
    key = (np.dtype(dtype).name, nt)
    if key in _reducers:
        return _reducers[key]
    dt = np.dtype(dtype).type

    @cuda.jit
    def grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups, zero):
        part = cuda.shared.array(nt, dt)
        n_batch, c_out, od_n, oh_n, ow_n = gy.shape
        cg, kd_n, kh_n, kw_n = gw.shape[1], gw.shape[2], gw.shape[3], gw.shape[4]
        cout_g = c_out // groups
        tid = cuda.threadIdx.x
        for widx in range(cuda.blockIdx.x, gw.size, cuda.gridDim.x):
            co, ci, kd, kh, kw = unravel5(widx, cg, kd_n, kh_n, kw_n)
            c = (co // cout_g) * cg + ci
            acc = zero
            for q in range(tid, n_batch * od_n * oh_n * ow_n, nt):
                ow = q % ow_n
                s = q // ow_n
                oh = s % oh_n
                s //= oh_n
                od = s % od_n
                n = s // od_n
                acc += (gy[n, co, od, oh, ow]
                        * xp[n, c, od * sd + kd * dd, oh * sh + kh * dh, ow * sw + kw * dw])
            part[tid] = acc
            total = block_sum(part, tid, nt)
            if tid == 0:
                gw[co, ci, kd, kh, kw] = total
            cuda.syncthreads()  # part is reused by the block's next weight

    _reducers[key] = grad_weight
    return grad_weight


def check_conv(op, names, arrays, ints):
    """Validate a conv call through the planner (kernels.plan.conv_call): 5-D arrays of one
    float dtype, positive ints, and shapes that agree (names/arrays ordered as padded input,
    weight, output, whatever their roles).  Returns (dtype, the 7 ints)."""
    dt, s, d, groups, _, _ = plan.conv_call(op, names, arrays, ints, device=True)
    return dt, tuple(s) + tuple(d) + (groups,)


def direct_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups):
    """Direct convolution ``y = xp (*) w`` (cross-correlation), one thread per output.

    Parameters
    ----------
    xp : array (N, C, D, H, W), already padded; float32 or float64, C-contiguous, NumPy or
        CUDA device array.
    w : array (C_out, C // groups, KD, KH, KW), same dtype.
    y : array (N, C_out, OD, OH, OW), overwritten; ``OD = (D - dd*(KD-1) - 1) // sd + 1``.
    sd, sh, sw, dd, dh, dw, groups : int
        Strides, dilations and groups.

    Examples
    --------
    >>> xp = np.arange(4.0).reshape(1, 1, 1, 1, 4); w = np.ones((1, 1, 1, 1, 2))
    >>> y = np.empty((1, 1, 1, 1, 3)); direct_forward(xp, w, y, 1, 1, 1, 1, 1, 1, 1)
    >>> y.ravel().tolist()
    [1.0, 3.0, 5.0]
    """
    dtype, ints = check_conv("direct_forward", ("xp", "w", "y"), (xp, w, y),
                             (sd, sh, sw, dd, dh, dw, groups))
    with device_io((xp, w), (y,)) as (dxp, dw_, dy):
        launch(_forward, dy.size, dxp, dw_, dy, *ints, dtype.type(0))


def direct_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups):
    """Gradient of :func:`direct_forward` w.r.t. the padded input, written into ``gxp``.

    ``gy`` is (N, C_out, OD, OH, OW), ``w`` (C_out, C // groups, KD, KH, KW) and ``gxp``
    (N, C, D, H, W); one thread per element of ``gxp`` gathers from the outputs it feeds.

    Examples
    --------
    >>> gy = np.ones((1, 1, 1, 1, 3)); w = np.ones((1, 1, 1, 1, 2))
    >>> gxp = np.empty((1, 1, 1, 1, 4)); direct_grad_input(gy, w, gxp, 1, 1, 1, 1, 1, 1, 1)
    >>> gxp.ravel().tolist()
    [1.0, 2.0, 2.0, 1.0]
    """
    dtype, ints = check_conv("direct_grad_input", ("gxp", "w", "gy"), (gxp, w, gy),
                             (sd, sh, sw, dd, dh, dw, groups))
    with device_io((gy, w), (gxp,)) as (dgy, dw_, dgx):
        launch(_grad_input, dgx.size, dgy, dw_, dgx, *ints, dtype.type(0))


def direct_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups):
    """Gradient of :func:`direct_forward` w.r.t. the weight, written into ``gw``.

    ``gy`` is (N, C_out, OD, OH, OW), ``xp`` (N, C, D, H, W) padded, ``gw``
    (C_out, C // groups, KD, KH, KW); one block per weight element reduces over the batch
    and the output positions (config.REDUCE_THREADS threads).

    Examples
    --------
    >>> gy = np.ones((1, 1, 1, 1, 3)); xp = np.arange(4.0).reshape(1, 1, 1, 1, 4)
    >>> gw = np.empty((1, 1, 1, 1, 2)); direct_grad_weight(gy, xp, gw, 1, 1, 1, 1, 1, 1, 1)
    >>> gw.ravel().tolist()
    [3.0, 6.0]
    """
    dtype, ints = check_conv("direct_grad_weight", ("xp", "gw", "gy"), (xp, gw, gy),
                             (sd, sh, sw, dd, dh, dw, groups))
    with device_io((gy, xp), (gw,)) as (dgy, dxp, dgw):
        if dgw.size:
            nt = config.reduce_threads()
            kern = _grad_weight_kernel(dtype, nt)
            kern[blocks_for(dgw.size, 1), nt](dgy, dxp, dgw, *ints, dtype.type(0))
