"""im2col + GEMM: unfold input windows into a column matrix, multiply with BLAS.

Per image and group the columns form a (C_in/groups * k_volume, out_positions) matrix, so the
convolution is one GEMM, W_g (C_out/groups, C_in/groups*k_volume) @ cols.  The backends build
the columns of several images at once (Numba or Cython kernels, planned once for both by
kernels/plan.py) and multiply with BLAS: one GEMM per image when it is big, else one GEMM
over the whole chunk of images; 1x1 stride-1 layers need no columns.  The buffers are kept
under the workspace budget (kernels.config.WORKSPACE_BYTES) by chunking images, then output
positions.  On the "cuda" column the columns and a tiled GEMM run on the device.
"""
from .. import config
import numpy as np

from ..runtime import get_num_threads
from ._common import (backend as _be, contiguous, empty, ints, is_device, out_shape, padded,
                      stacked_matmul, unpad)

NAME = "im2col"
BACKENDS = ("numba", "cython", "cuda")
NEEDS = ("im2col_forward", "im2col_grad_input", "im2col_grad_weight")


def supports(params, x_shape, w_shape):
    return None


def prepare(w, params, x_shape, backend, pass_="fwd"):
    return None


def max_col_elems(itemsize):
    return max(1, config.WORKSPACE_BYTES // itemsize)


_UNIT = (1, 1, 1, 1, 1, 1)     # stride and dilation 1 (ints() of a stride-1 1x1 layer)


def _pointwise_layer(w, arr):
    """Whether the layer is 1x1 (any stride) on host arrays: no columns are needed.  A strided
    one gathers its input once (x[..., ::s], copied to a contiguous array) -- the general
    im2col copied the same elements through the column builder, and its gradients scattered
    them back one by one."""
    return all(k == 1 for k in w.shape[2:]) and not is_device(arr)


def _subsample(params, out_sp):
    """The index of the sampled input positions: x[_subsample(...)] (N, C, *out_sp)."""
    return (slice(None), slice(None)) + tuple(slice(0, s * (o - 1) + 1, s)
                                              for s, o in zip(params.stride, out_sp))


def _pointwise(a, w, out, groups, backend, transpose):
    """out[n] = W @ a[n] (or W^T @ a[n] with ``transpose``: the gradient w.r.t. the input)
    for every image of a (N, C, *sp), W = w as (C_out, C).  With groups 1 and at least as
    many images as threads, the images' GEMMs are split over threads on single-threaded BLAS
    (one multi-threaded BLAS call an image woke and parked its threads each time); else the
    backend's stride-1 1x1 path."""
    n = a.shape[0]
    if groups == 1 and n >= get_num_threads() > 1:
        w2 = w.reshape(w.shape[0], -1)
        m = w2.T if transpose else w2
        stacked_matmul(np.broadcast_to(m, (n,) + m.shape), a.reshape(n, a.shape[1], -1),
                       out=out.reshape(n, out.shape[1], -1))
    elif transpose:
        _be(backend).im2col_grad_input(a, contiguous(w), out, *_UNIT, groups,
                                       max_col_elems(a.dtype.itemsize))
    else:
        _be(backend).im2col_forward(a, contiguous(w), out, *_UNIT, groups,
                                    max_col_elems(a.dtype.itemsize))


def forward(x, w, params, backend, prepared=None):
    if _pointwise_layer(w, x):
        ys = out_shape(x.shape, w.shape, params)
        xs = np.ascontiguousarray(padded(x, params)[_subsample(params, ys[2:])])
        y = np.empty(ys, dtype=x.dtype)
        _pointwise(xs, w, y, params.groups, backend, transpose=False)
        return y
    y = empty(out_shape(x.shape, w.shape, params), x.dtype, x)
    _be(backend).im2col_forward(padded(x, params), contiguous(w), y, *ints(params),
                                max_col_elems(x.dtype.itemsize))
    return y


def grad_input(gy, w, x_shape, params, backend, prepared=None):
    if _pointwise_layer(w, gy):
        gxs = np.empty(tuple(x_shape[:2]) + tuple(gy.shape[2:]), dtype=gy.dtype)
        _pointwise(contiguous(gy), w, gxs, params.groups, backend, transpose=True)
        padded_sp = params.padded_spatial(x_shape[2:])
        if tuple(gy.shape[2:]) == tuple(padded_sp) and not params.is_padded:
            return gxs
        gxp = np.zeros(tuple(x_shape[:2]) + padded_sp, gy.dtype)
        gxp[_subsample(params, gy.shape[2:])] = gxs
        return unpad(gxp, x_shape, params)
    gxp = empty(tuple(x_shape[:2]) + params.padded_spatial(x_shape[2:]), gy.dtype, gy)
    _be(backend).im2col_grad_input(contiguous(gy), contiguous(w), gxp, *ints(params),
                                   max_col_elems(gy.dtype.itemsize))
    return unpad(gxp, x_shape, params)


def grad_weight(gy, x, w_shape, params, backend, prepared=None):
    gw = empty(w_shape, gy.dtype, gy)
    if _pointwise_layer(gw, x) and any(st > 1 for st in params.stride):
        xs = np.ascontiguousarray(padded(x, params)[_subsample(params, gy.shape[2:])])
        _be(backend).im2col_grad_weight(contiguous(gy), xs, gw, *_UNIT, params.groups,
                                        max_col_elems(gy.dtype.itemsize))
        return gw
    _be(backend).im2col_grad_weight(contiguous(gy), padded(x, params), gw, *ints(params),
                                    max_col_elems(gy.dtype.itemsize))
    return gw


def workspace_bytes(params, x_shape, w_shape, itemsize):
    """Bytes of the column buffer and, for small GEMMs, the transposed copy of the output or
    gradient chunk (together bounded by the budget, but at least one output position's worth)
    plus the padded copy of x.  An upper bound over both backends."""
    rows = w_shape[1] * params.groups
    for k in w_shape[2:]:
        rows *= k
    per_pos = rows + w_shape[0]
    cols = x_shape[0]
    for o in params.out_spatial(x_shape[2:], w_shape[2:]):
        cols *= o
    col = min(per_pos * cols, max(per_pos, max_col_elems(itemsize))) * itemsize
    pad = 0
    if params.is_padded:
        pad = x_shape[0] * x_shape[1] * itemsize
        for s in params.padded_spatial(x_shape[2:]):
            pad *= s
    return col + pad


def rule(params, x_shape, w_shape, pass_, device):
    """The dense default (priority 10, the lowest): whatever no other rule took."""
    return 10, "rule: dense layer -> im2col+GEMM (BLAS)"
