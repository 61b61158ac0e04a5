"""im2col + GEMM: unfold input windows into a column matrix, multiply with BLAS.

Per image and group the columns form a (C_in/groups * k_volume, out_positions) matrix, so the
convolution is one GEMM, W_g (C_out/groups, C_in/groups*k_volume) @ cols.  The backends build
the columns of several images at once (Numba or Cython kernels) and multiply with BLAS: one
GEMM per image when it is big, else one GEMM over the whole chunk of images; 1x1 stride-1
layers need no columns.  The buffers are kept under the workspace budget
(kernels.config.WORKSPACE_BYTES) by chunking images, then output positions.
"""
import numpy as np

from .. import config
from ._common import backend as _be, ints, out_shape, padded, unpad

NAME = "im2col"
BACKENDS = ("numba", "cython", "cuda")


def supports(params, x_shape, w_shape):
    return None


def prepare(w, params):
    return None


def max_col_elems(itemsize):
    return max(1, config.WORKSPACE_BYTES // itemsize)


def forward(x, w, params, backend, prepared=None):
    y = np.empty(out_shape(x.shape, w.shape, params), dtype=x.dtype)
    _be(backend).im2col_forward(padded(x, params), np.ascontiguousarray(w), y, *ints(params),
                                max_col_elems(x.itemsize))
    return y


def grad_input(gy, w, x_shape, params, backend):
    gxp = np.empty(tuple(x_shape[:2]) + params.padded_spatial(x_shape[2:]), dtype=gy.dtype)
    _be(backend).im2col_grad_input(np.ascontiguousarray(gy), np.ascontiguousarray(w), gxp,
                                   *ints(params), max_col_elems(gy.itemsize))
    return unpad(gxp, x_shape, params)


def grad_weight(gy, x, w_shape, params, backend):
    gw = np.empty(tuple(w_shape), dtype=gy.dtype)
    _be(backend).im2col_grad_weight(np.ascontiguousarray(gy), padded(x, params), gw,
                                    *ints(params), max_col_elems(gy.itemsize))
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
