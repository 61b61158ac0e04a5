"""Helpers shared by the strategies: the backend module, geometry, and the array plumbing that
works on host arrays and on CUDA device arrays alike (allocation, padding, cropping), so a
strategy that runs on the "cuda" column is written once, and padding for cuda happens here,
once, on the device."""
from collections import namedtuple

import numpy as np

from .. import backends, config
from .._arrays import is_device  # noqa: F401  (one definition, re-exported)
from ..params import pad5d
from ..runtime import get_num_threads


def backend(name):
    mod = backends.load(name)
    if mod is None:  # the public wrapper checked availability; this is a programming error
        raise RuntimeError(backends.error(name) or f"backend {name!r} not available")
    return mod


def ints(p):
    """(sd, sh, sw, dd, dh, dw, groups) of 3-D params, as the backend functions take them."""
    return tuple(p.stride) + tuple(p.dilation) + (p.groups,)


def out_shape(x_shape, w_shape, p):
    return (x_shape[0], w_shape[0]) + p.out_spatial(x_shape[2:], w_shape[2:])




def _cuda():
    return backend("cuda")


def empty(shape, dtype, like):
    """An uninitialised array of ``shape`` where ``like`` lives (host or device)."""
    if is_device(like):
        from numba import cuda
        return cuda.device_array(tuple(shape), dtype=np.dtype(dtype))
    return np.empty(tuple(shape), dtype=dtype)


def zeros(shape, dtype, like):
    """Zeros of ``shape`` where ``like`` lives."""
    if is_device(like):
        from ..cuda._device import fill
        a = empty(shape, dtype, like)
        fill(a, 0.0)
        return a
    return np.zeros(tuple(shape), dtype=dtype)


def contiguous(a):
    """``a`` C-contiguous: host arrays as np.ascontiguousarray; device arrays are C-contiguous
    already (the public functions check)."""
    return a if is_device(a) else np.ascontiguousarray(a)


def padded(x, p, value=0.0):
    """x (5-D) zero-padded (or ``value``-padded) by the 3-D params' padding, where x lives."""
    if not is_device(x):
        return pad5d(x, p, value)
    if not p.is_padded:
        return x
    xp = empty(tuple(x.shape[:2]) + p.padded_spatial(tuple(x.shape[2:])), x.dtype, x)
    _cuda().pad5d(x, p.padding, xp, value)
    return xp


def unpad(gxp, x_shape, p):
    """The gradient w.r.t. the unpadded input: the interior of the padded gradient."""
    if not p.is_padded:
        return gxp
    if is_device(gxp):
        gx = empty(tuple(x_shape), gxp.dtype, gxp)
        _cuda().crop5d(gxp, p.padding, gx)
        return gx
    crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(p.padding, x_shape[2:]))
    return np.ascontiguousarray(gxp[(slice(None), slice(None)) + crop])


Facts = namedtuple("Facts", "cin_g cout_g k kvol nd stride1 out_px kname dilated")


def facts(params, x_shape, w_shape):
    """What the strategies' rule hooks look at: channels a group, kernel (size, volume,
    effective dims: a 3-D kernel with a flat axis counts as 2-D), stride 1 or not, output
    positions an image, the kernel's name ("5x5"), and whether a dilation spreads its taps."""
    k = tuple(w_shape[2:])
    kvol = 1
    for kk in k:
        kvol *= kk
    out_px = 1
    for o in params.out_spatial(tuple(x_shape[2:]), k):
        out_px *= o
    return Facts(cin_g=w_shape[1], cout_g=w_shape[0] // params.groups, k=k, kvol=kvol,
                 nd=sum(1 for kk in k if kk > 1) if len(k) == 3 else len(k),
                 stride1=all(s == 1 for s in params.stride), out_px=out_px,
                 kname="x".join(map(str, k)),
                 dilated=any(d > 1 and kk > 1 for d, kk in zip(params.dilation, k)))


_blas = {}


def im2col_team(n_batch, device="cpu"):
    """Whether the Cython im2col will run this batch in its team layout (whole images per
    thread, single-threaded GEMMs; kernels/_cython/im2col.pyx): there, the column copy is
    cheap next to GEMMs that never wait on each other, and the rules that send 3-D and
    dilated layers elsewhere (measured before the layout existed) do not hold."""
    t = get_num_threads()
    if not (device == "cpu" and config.IM2COL_TEAM and t >= 2
            and (n_batch % t == 0 or n_batch >= config.IM2COL_TEAM_MIN_IMAGES * t)):
        return False
    cy = backends.load("cython")
    return cy is not None and callable(getattr(cy, "im2col_forward", None))


def stacked_matmul(a, b, out=None):
    """np.matmul of (S, A, B) @ (S, B, C) stacks (host arrays; ``b`` may be a transposed
    view), the S products split over kernels' thread count, each part on single-threaded
    BLAS.  OpenBLAS threading each of many small GEMMs wakes and parks its threads once a
    product, which oversubscribed the cores here (FFT's per-frequency products: 75x slower;
    Winograd's alpha^2 products at 256 channels on 14 px: slower than im2col)."""
    if _blas.get("threads") != get_num_threads():
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import ThreadpoolController
        _blas["ctl"] = ThreadpoolController()
        _blas["pool"] = ThreadPoolExecutor(get_num_threads())
        _blas["threads"] = get_num_threads()
    if out is None:
        out = np.empty(a.shape[:1] + a.shape[1:2] + b.shape[2:], dtype=np.result_type(a, b))
    parts = min(get_num_threads(), a.shape[0])
    step = -(-a.shape[0] // parts)
    with _blas["ctl"].limit(limits=1, user_api="blas"):
        if parts == 1:
            np.matmul(a, b, out=out)
        else:
            list(_blas["pool"].map(lambda i: np.matmul(a[i:i + step], b[i:i + step],
                                                       out=out[i:i + step]),
                                   range(0, a.shape[0], step)))
    return out
