"""Direct convolution: the textbook loops, compiled (Numba or Cython), no workspace.

Forward runs in parallel over (image, output channel) pairs; grad-input over (image, input
channel) planes; grad-weight over output channels -- each thread owns its outputs.
"""
import numpy as np

from ._common import backend as _be, ints, out_shape, padded, unpad

NAME = "direct"
BACKENDS = ("numba", "cython", "cuda")


def supports(params, x_shape, w_shape):
    return None


def prepare(w, params):
    return None


def forward(x, w, params, backend, prepared=None):
    y = np.empty(out_shape(x.shape, w.shape, params), dtype=x.dtype)
    _be(backend).direct_forward(padded(x, params), np.ascontiguousarray(w), y, *ints(params))
    return y


def grad_input(gy, w, x_shape, params, backend):
    gxp = np.empty(tuple(x_shape[:2]) + params.padded_spatial(x_shape[2:]), dtype=gy.dtype)
    _be(backend).direct_grad_input(np.ascontiguousarray(gy), np.ascontiguousarray(w), gxp,
                                   *ints(params))
    return unpad(gxp, x_shape, params)


def grad_weight(gy, x, w_shape, params, backend):
    gw = np.empty(tuple(w_shape), dtype=gy.dtype)
    _be(backend).direct_grad_weight(np.ascontiguousarray(gy), padded(x, params), gw,
                                    *ints(params))
    return gw


def workspace_bytes(params, x_shape, w_shape, itemsize):
    """Extra memory beyond input and output: the padded copy of x, if any."""
    if not params.is_padded:
        return 0
    n = x_shape[0] * x_shape[1]
    for s in params.padded_spatial(x_shape[2:]):
        n *= s
    return n * itemsize
