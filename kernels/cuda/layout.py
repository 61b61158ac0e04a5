"""Padding and cropping of 5-D arrays on the device, so padded inputs and the gradients of
padded inputs never visit the host (the device twin of ``kernels.params.pad5d`` and of the
strategies' ``unpad``)."""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._device import check_arrays, device_io, flat, launch, unravel5


@cuda.jit(cache=True)
def _pad(x, xp, lo_d, lo_h, lo_w, value):
    c_n, d_n, h_n, w_n = xp.shape[1], xp.shape[2], xp.shape[3], xp.shape[4]
    for idx in range(cuda.grid(1), xp.size, cuda.gridsize(1)):
        n, c, d, h, w = unravel5(idx, c_n, d_n, h_n, w_n)
        sd, sh, sw = d - lo_d, h - lo_h, w - lo_w
        if (0 <= sd < x.shape[2] and 0 <= sh < x.shape[3] and 0 <= sw < x.shape[4]):
            xp[n, c, d, h, w] = x[n, c, sd, sh, sw]
        else:
            xp[n, c, d, h, w] = value


@cuda.jit(cache=True)
def _crop(xp, x, lo_d, lo_h, lo_w):
    c_n, d_n, h_n, w_n = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    for idx in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, d, h, w = unravel5(idx, c_n, d_n, h_n, w_n)
        x[n, c, d, h, w] = xp[n, c, d + lo_d, h + lo_h, w + lo_w]


def _pairs(op, padding):
    if (len(padding) != 3 or any(len(p) != 2 for p in padding)
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 0
                   for p in padding for v in p)):
        raise ValueError(f"{op}: padding must be three (lo, hi) pairs of ints >= 0, received "
                         f"{padding!r}")
    return tuple(tuple(p) for p in padding)


def _checked_pads(op, padding, x, xp, names):
    """The (lo, hi) pairs, after checking that ``xp`` is ``x`` padded by them."""
    pads = _pairs(op, padding)
    check_arrays(op, names, (x, xp) if names[0] == "x" else (xp, x), 5)
    expect = tuple(x.shape[:2]) + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads))
    if tuple(xp.shape) != expect:
        raise ValueError(f"{op}: xp must have shape {expect} for x {tuple(x.shape)} and "
                         f"padding {pads}, received {tuple(xp.shape)}")
    return pads


def pad5d(x, padding, xp, value=0.0):
    """Write ``x`` padded by ``padding`` into ``xp`` (host or device arrays).

    Parameters
    ----------
    x : array (N, C, D, H, W), float32 or float64, C-contiguous.
    padding : three (lo, hi) pairs, e.g. ``ConvParams.as3d().padding``.
    xp : array (N, C, D + lo + hi, ...), same dtype, overwritten.
    value : float
        The fill (0 for convolution, -inf for max pooling).

    Examples
    --------
    >>> x = np.ones((1, 1, 1, 1, 2)); xp = np.empty((1, 1, 1, 1, 4))
    >>> pad5d(x, ((0, 0), (0, 0), (1, 1)), xp); xp.ravel().tolist()
    [0.0, 1.0, 1.0, 0.0]
    """
    pads = _checked_pads("pad5d", padding, x, xp, ("x", "xp"))
    with device_io((x,), (xp,)) as (dx, dxp):
        launch(_pad, dxp.size, dx, dxp, pads[0][0], pads[1][0], pads[2][0], float(value))


def crop5d(xp, padding, x):
    """Write the interior of ``xp`` (padded by ``padding``) into ``x``: the gradient w.r.t.
    an unpadded input from the gradient w.r.t. its padded copy.

    Examples
    --------
    >>> xp = np.arange(4.0).reshape(1, 1, 1, 1, 4); x = np.empty((1, 1, 1, 1, 2))
    >>> crop5d(xp, ((0, 0), (0, 0), (1, 1)), x); x.ravel().tolist()
    [1.0, 2.0]
    """
    pads = _checked_pads("crop5d", padding, x, xp, ("xp", "x"))
    with device_io((xp,), (x,)) as (dxp, dx):
        launch(_crop, dx.size, dxp, dx, pads[0][0], pads[1][0], pads[2][0])


@cuda.jit(cache=True)
def _add_channel_bias(y, b, c_n, plane):
    for idx in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        y[idx] += b[(idx // plane) % c_n]


def add_channel_bias(y, b):
    """``y[:, c] += b[c]`` for y (N, C, D, H, W) and b (C,) (host or device arrays).

    Examples
    --------
    >>> y = np.zeros((1, 2, 1, 1, 2)); add_channel_bias(y, np.array([1.0, 2.0]))
    >>> y.ravel().tolist()
    [1.0, 1.0, 2.0, 2.0]
    """
    op = "add_channel_bias"
    check_arrays(op, ("y",), (y,), 5)
    check_arrays(op, ("b",), (b,), 1)
    if tuple(b.shape) != (y.shape[1],) or np.dtype(b.dtype) != np.dtype(y.dtype):
        raise ValueError(f"{op}: b must have shape ({y.shape[1]},) and y's dtype {y.dtype}, "
                         f"received {tuple(b.shape)} {b.dtype}")
    with device_io((b,), (y,)) as (db, dy):
        if isinstance(y, np.ndarray):
            dy.copy_to_device(y)
        launch(_add_channel_bias, dy.size, flat(dy), db, y.shape[1],
               y.shape[2] * y.shape[3] * y.shape[4])
