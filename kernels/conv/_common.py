"""Helpers shared by the strategies that call a compute backend."""
import numpy as np

from .. import backends
from ..params import pad5d


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


def unpad(gxp, x_shape, p):
    """The gradient w.r.t. the unpadded input: the interior of the padded gradient."""
    if not p.is_padded:
        return gxp
    crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(p.padding, x_shape[2:]))
    return np.ascontiguousarray(gxp[(slice(None), slice(None)) + crop])


def padded(x, p):
    return pad5d(x, p)
