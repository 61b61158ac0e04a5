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
from ._common import backend as _be, contiguous, empty, ints, out_shape, padded, unpad

NAME = "im2col"
BACKENDS = ("numba", "cython", "cuda")
NEEDS = ("im2col_forward", "im2col_grad_input", "im2col_grad_weight")


def supports(params, x_shape, w_shape):
    return None


def prepare(w, params, x_shape, backend, pass_="fwd"):
    return None


def max_col_elems(itemsize):
    return max(1, config.WORKSPACE_BYTES // itemsize)


def forward(x, w, params, backend, prepared=None):
    y = empty(out_shape(x.shape, w.shape, params), x.dtype, x)
    _be(backend).im2col_forward(padded(x, params), contiguous(w), y, *ints(params),
                                max_col_elems(x.dtype.itemsize))
    return y


def grad_input(gy, w, x_shape, params, backend, prepared=None):
    gxp = empty(tuple(x_shape[:2]) + params.padded_spatial(x_shape[2:]), gy.dtype, gy)
    _be(backend).im2col_grad_input(contiguous(gy), contiguous(w), gxp, *ints(params),
                                   max_col_elems(gy.dtype.itemsize))
    return unpad(gxp, x_shape, params)


def grad_weight(gy, x, w_shape, params, backend, prepared=None):
    gw = empty(w_shape, gy.dtype, gy)
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
