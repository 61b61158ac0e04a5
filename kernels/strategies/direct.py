"""Direct convolution: the textbook loops, compiled (Numba, Cython or CUDA), no workspace.

Forward runs in parallel over (image, output channel) blocks; grad-input over (image, input
channel) blocks; grad-weight over output channels (and blocks of images, summed after) --
each thread owns its outputs.  The Numba and Cython kernels pad on the fly (``pad=``), so
no padded copy of the input is made; the CUDA kernels take the input padded on the device.
"""
from .. import config
from ._common import (backend as _be, contiguous, empty, facts, im2col_team, ints, out_shape,
                      padded, unpad)

NAME = "direct"
BACKENDS = ("numba", "cython", "cuda")
NEEDS = ("direct_forward", "direct_grad_input", "direct_grad_weight")
_PAD_IN_KERNEL = ("numba", "cython")   # backends whose direct kernels take pad=


def supports(params, x_shape, w_shape):
    return None


def prepare(w, params, x_shape, backend, pass_="fwd"):
    return None


def forward(x, w, params, backend, prepared=None):
    y = empty(out_shape(x.shape, w.shape, params), x.dtype, x)
    if backend in _PAD_IN_KERNEL:
        _be(backend).direct_forward(contiguous(x), contiguous(w), y, *ints(params),
                                    pad=params.padding)
    else:
        _be(backend).direct_forward(padded(x, params), contiguous(w), y, *ints(params))
    return y


def grad_input(gy, w, x_shape, params, backend, prepared=None):
    if backend in _PAD_IN_KERNEL:
        gx = empty(x_shape, gy.dtype, gy)
        _be(backend).direct_grad_input(contiguous(gy), contiguous(w), gx, *ints(params),
                                       pad=params.padding)
        return gx
    gxp = empty(tuple(x_shape[:2]) + params.padded_spatial(x_shape[2:]), gy.dtype, gy)
    _be(backend).direct_grad_input(contiguous(gy), contiguous(w), gxp, *ints(params))
    return unpad(gxp, x_shape, params)


def grad_weight(gy, x, w_shape, params, backend, prepared=None):
    gw = empty(w_shape, gy.dtype, gy)
    if backend in _PAD_IN_KERNEL:
        _be(backend).direct_grad_weight(contiguous(gy), contiguous(x), gw, *ints(params),
                                        pad=params.padding)
    else:
        _be(backend).direct_grad_weight(contiguous(gy), padded(x, params), gw, *ints(params))
    return gw


def workspace_bytes(params, x_shape, w_shape, itemsize):
    """Extra memory beyond input and output: at most the padded copy of x (the CUDA kernels
    take it; the Numba and Cython kernels copy a few planes per thread instead)."""
    if not params.is_padded:
        return 0
    n = x_shape[0] * x_shape[1]
    for s in params.padded_spatial(x_shape[2:]):
        n *= s
    return n * itemsize


def rule(params, x_shape, w_shape, pass_, device):
    """Direct wins depthwise / thin-group layers (priority 50: before every other rule), and
    (priority 20, after FFT) thin GEMMs, small 3-D kernels and dilated 2-D kernels at stride 1
    (config.RULES, from CPU bench data)."""
    r, f = config.RULES, facts(params, x_shape, w_shape)
    if (params.groups > 1 and f.cin_g <= r["thin_group_channels"]
            and f.cout_g <= r["thin_group_channels"]):
        return 50, "rule: depthwise / thin-group layer -> direct (GEMM too thin)"
    if pass_ == "grad_weight" or not f.stride1:
        return None
    team = im2col_team(x_shape[0], device)
    if f.nd == 3 and f.cin_g <= r["direct_3d_max_channels"] and not team:
        return 20, "rule: 3-D kernel with <= 32 channels -> direct"
    if f.dilated and f.nd == 2 and not team and (
            pass_ == "fwd" or f.cout_g <= r["direct_dilated_grad_input_max_channels"]):
        return 20, "rule: dilated 2-D kernel -> direct (no column copy of spread taps)"
    if f.out_px >= r["direct_min_out_pixels"]:
        if pass_ == "fwd" and (f.cin_g * f.kvol <= r["direct_fwd_max_reduction"]
                               or f.cout_g <= r["direct_fwd_max_out_channels"]):
            return 20, "rule: thin GEMM (few channels x small kernel) -> direct"
        if pass_ == "grad_input" and (f.cout_g * f.kvol <= r["direct_grad_input_max_reduction"]
                                      or f.kvol >= r["direct_grad_input_min_kvol"]):
            return 20, "rule: thin GEMM or long kernel -> direct"
    return None
