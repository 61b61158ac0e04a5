"""Direct convolution: the textbook loops, compiled (Numba or Cython), no workspace.

Forward runs in parallel over (image, output channel) blocks; grad-input over (image, input
channel) blocks; grad-weight over output channels (and blocks of images, summed after) --
each thread owns its outputs.  The Numba and Cython kernels pad on the fly (``pad=``), so
no padded copy of the input is made; the CUDA kernels take the padded input.
"""
import numpy as np

from ._common import backend as _be, ints, out_shape, padded, unpad

NAME = "direct"
BACKENDS = ("numba", "cython", "cuda")
_PAD_IN_KERNEL = ("numba", "cython")   # backends whose direct kernels take pad=


def supports(params, x_shape, w_shape):
    return None


def prepare(w, params):
    return None


def forward(x, w, params, backend, prepared=None):
    y = np.empty(out_shape(x.shape, w.shape, params), dtype=x.dtype)
    if backend in _PAD_IN_KERNEL:
        _be(backend).direct_forward(np.ascontiguousarray(x), np.ascontiguousarray(w), y,
                                    *ints(params), pad=params.padding)
    else:
        _be(backend).direct_forward(padded(x, params), np.ascontiguousarray(w), y,
                                    *ints(params))
    return y


def grad_input(gy, w, x_shape, params, backend):
    if backend in _PAD_IN_KERNEL:
        gx = np.empty(tuple(x_shape), dtype=gy.dtype)
        _be(backend).direct_grad_input(np.ascontiguousarray(gy), np.ascontiguousarray(w), gx,
                                       *ints(params), pad=params.padding)
        return gx
    gxp = np.empty(tuple(x_shape[:2]) + params.padded_spatial(x_shape[2:]), dtype=gy.dtype)
    _be(backend).direct_grad_input(np.ascontiguousarray(gy), np.ascontiguousarray(w), gxp,
                                   *ints(params))
    return unpad(gxp, x_shape, params)


def grad_weight(gy, x, w_shape, params, backend):
    gw = np.empty(tuple(w_shape), dtype=gy.dtype)
    if backend in _PAD_IN_KERNEL:
        _be(backend).direct_grad_weight(np.ascontiguousarray(gy), np.ascontiguousarray(x), gw,
                                        *ints(params), pad=params.padding)
    else:
        _be(backend).direct_grad_weight(np.ascontiguousarray(gy), padded(x, params), gw,
                                        *ints(params))
    return gw


def workspace_bytes(params, x_shape, w_shape, itemsize):
    """Extra memory beyond input and output: at most the padded copy of x (the CUDA kernels
    make it; the Numba and Cython kernels copy a few planes per thread instead)."""
    if not params.is_padded:
        return 0
    n = x_shape[0] * x_shape[1]
    for s in params.padded_spatial(x_shape[2:]):
        n *= s
    return n * itemsize
