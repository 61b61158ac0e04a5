"""The oracle: a naive float64 convolution, one kernel tap at a time.

For every tap (kd, kh, kw) the strided input window it touches is multiplied with that tap's
(C_out, C_in) weight slice and summed over input channels.  Nothing is clever here on purpose:
every other strategy is tested against this.
"""
import numpy as np

from ..params import pad5d

NAME = "reference"
BACKENDS = ("numpy",)
NEEDS = ()


def supports(params, x_shape, w_shape):
    return None


def prepare(w, params, x_shape, backend="numpy", pass_="fwd"):
    return None


def workspace_bytes(params, x_shape, w_shape, itemsize):
    """The float64 copies of x and w (8 bytes an element) and the float64 output."""
    n = 1
    for s in params.padded_spatial(x_shape[2:]):
        n *= s
    out = 1
    for s in params.out_spatial(x_shape[2:], w_shape[2:]):
        out *= s
    w = 1
    for s in w_shape:
        w *= s
    return 8 * (x_shape[0] * x_shape[1] * n + w + x_shape[0] * w_shape[0] * out)


def _taps(w_shape):
    _, _, kd, kh, kw = w_shape
    for a in range(kd):
        for b in range(kh):
            for c in range(kw):
                yield a, b, c


def _window(p, tap, out_sp):
    """Slices of the padded input read by kernel tap ``tap`` for every output position."""
    return tuple(slice(k * d, k * d + (o - 1) * s + 1, s)
                 for k, d, s, o in zip(tap, p.dilation, p.stride, out_sp))


def forward(x, w, params, backend="numpy", prepared=None):
    p = params
    xp = pad5d(x.astype(np.float64), p)
    w64 = w.astype(np.float64)
    n, c = x.shape[:2]
    co, cg = w.shape[:2]
    g, cog = p.groups, co // p.groups
    out_sp = p.out_spatial(x.shape[2:], w.shape[2:])
    y = np.zeros((n, co) + out_sp)
    for gi in range(g):
        xs = xp[:, gi * cg:(gi + 1) * cg]
        ys = y[:, gi * cog:(gi + 1) * cog]
        for tap in _taps(w.shape):
            patch = xs[(slice(None), slice(None)) + _window(p, tap, out_sp)]
            ys += np.einsum("ncdhw,oc->nodhw", patch, w64[gi * cog:(gi + 1) * cog, :, *tap])
    return y.astype(x.dtype, copy=False)


def grad_input(gy, w, x_shape, params, backend="numpy", prepared=None):
    p = params
    gy64, w64 = gy.astype(np.float64), w.astype(np.float64)
    n, c = x_shape[:2]
    co, cg = w.shape[:2]
    g, cog = p.groups, co // p.groups
    out_sp = gy.shape[2:]
    gxp = np.zeros((n, c) + p.padded_spatial(x_shape[2:]))
    for gi in range(g):
        gxs = gxp[:, gi * cg:(gi + 1) * cg]
        gys = gy64[:, gi * cog:(gi + 1) * cog]
        for tap in _taps(w.shape):
            idx = (slice(None), slice(None)) + _window(p, tap, out_sp)
            gxs[idx] += np.einsum("nodhw,oc->ncdhw", gys, w64[gi * cog:(gi + 1) * cog, :, *tap])
    crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(p.padding, x_shape[2:]))
    return np.ascontiguousarray(gxp[(slice(None), slice(None)) + crop]).astype(gy.dtype,
                                                                             copy=False)


def grad_weight(gy, x, w_shape, params, backend="numpy", prepared=None):
    p = params
    xp = pad5d(x.astype(np.float64), p)
    gy64 = gy.astype(np.float64)
    co, cg = w_shape[:2]
    g, cog = p.groups, co // p.groups
    out_sp = gy.shape[2:]
    gw = np.zeros(w_shape)
    for gi in range(g):
        xs = xp[:, gi * cg:(gi + 1) * cg]
        gys = gy64[:, gi * cog:(gi + 1) * cog]
        for tap in _taps(w_shape):
            patch = xs[(slice(None), slice(None)) + _window(p, tap, out_sp)]
            gw[gi * cog:(gi + 1) * cog, :, *tap] = np.einsum("nodhw,ncdhw->oc", gys, patch)
    return gw.astype(gy.dtype, copy=False)
