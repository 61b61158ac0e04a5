"""Winograd F(2x2,3x3) and F(4x4,3x3) tile transforms (Numba), for kernels/conv/winograd.py.

A tile of the output is ``m x m`` (m = 2 or 4); it reads an ``alpha x alpha`` input tile,
alpha = m + 2.  With the matrices of Lavin & Gray (2015) (B^T, G, A^T; points 0, +-1 for
F(2,3) and 0, +-1, +-2 for F(4,3))::

    V = B^T d B    (input transform, per input tile and channel)
    M[e] = U[e] @ V[e]   for each of the alpha*alpha elements e  (BLAS, done by the caller)
    Y = A^T M A    (output transform, cropped at the high edges)

Arrays here are 4-D (N, C, H, W) (the caller drops the singleton depth of the 5-D form) and
GEMM-ordered (alpha*alpha, channels, tiles).  Tiles are numbered in rows: a *tile row* r is
(image n, tile row i) with r = n * th + i, and tile (r, j) is column (r - r0) * tw + j of a
chunk of tile rows starting at r0.  Every transform is separable: a pass along H over whole
rows (contiguous, vectorised along W) into a small per-job scratch, then a pass along W per
tile.  prange runs over (channel, block of tile rows) jobs, each owning its output columns.

The 1-D transforms below are B^T, A^T and A written out with common subexpressions shared;
kernels/conv/winograd.py holds the same matrices as arrays and the tests check one against
the other.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._checks import check_arrays


@njit(inline="always")
def _bt2(d0, d1, d2, d3):
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(inline="always")
def _at2(m0, m1, m2, m3):
    return m0 + m1 + m2, m1 - m2 - m3


@njit(inline="always")
def _a2(y0, y1):
    return y0, y0 + y1, y0 - y1, -y1


@njit(inline="always")
def _bt4(d0, d1, d2, d3, d4, d5):
    p = d4 - 4 * d2
    q = d3 - 4 * d1
    s = d4 - d2
    t = 2 * (d3 - d1)
    return 4 * d0 - 5 * d2 + d4, p + q, p - q, s + t, s - t, 4 * d1 - 5 * d3 + d5


@njit(inline="always")
def _at4(m0, m1, m2, m3, m4, m5):
    a = m1 + m2
    b = m1 - m2
    c = m3 + m4
    d = m3 - m4
    return m0 + a + c, b + 2 * d, a + 4 * c, b + 8 * d + m5


@njit(inline="always")
def _a4(y0, y1, y2, y3):
    s = y0 + y2
    t = y1 + y3
    u = y0 + 4 * y2
    v = 2 * y1 + 8 * y3
    return y0, s + t, s - t, u + v, u - v, y3


@njit(inline="always")
def _row(a, n, c, h, spare):
    """Row h of plane (n, c) of ``a``, or ``spare`` (zeros to read, a sink to write) when h is
    outside the plane."""
    if 0 <= h < a.shape[2]:
        return a[n, c, h]
    return spare


@njit(inline="always")
def _jobs(rows, channels):
    """Split each channel's tile rows into blocks so there are >= 16 jobs when possible."""
    return max(1, min(rows, (16 + channels - 1) // channels))


@njit(cache=True, parallel=True)
def _input_transform(x, v, m, r0, pad_top, pad_left, th, tw):
    alpha = m + 2
    c_n, h_n, w_n = x.shape[1], x.shape[2], x.shape[3]
    rows = v.shape[2] // tw
    wext = tw * m + 2
    zero = np.zeros(w_n, x.dtype)
    # the padded input's columns [lo, hi) map onto x's columns; the rest are zeros
    lo = min(max(pad_left, 0), wext)
    hi = max(min(pad_left + w_n, wext), lo)
    split = _jobs(rows, c_n)
    per = (rows + split - 1) // split
    for job in prange(c_n * split):
        c = job // split
        tmp = np.zeros((alpha, wext), x.dtype)
        for rl in range(job % split * per, min(rows, (job % split + 1) * per)):
            n = (r0 + rl) // th
            h0 = (r0 + rl) % th * m - pad_top
            col = rl * tw
            if m == 2:
                x0 = _row(x, n, c, h0, zero)
                x1 = _row(x, n, c, h0 + 1, zero)
                x2 = _row(x, n, c, h0 + 2, zero)
                x3 = _row(x, n, c, h0 + 3, zero)
                for wp in range(lo, hi):
                    w = wp - pad_left
                    t0, t1, t2, t3 = _bt2(x0[w], x1[w], x2[w], x3[w])
                    tmp[0, wp] = t0
                    tmp[1, wp] = t1
                    tmp[2, wp] = t2
                    tmp[3, wp] = t3
                for a in range(alpha):
                    for j in range(tw):
                        b = j * m
                        u0, u1, u2, u3 = _bt2(tmp[a, b], tmp[a, b + 1], tmp[a, b + 2],
                                              tmp[a, b + 3])
                        e = a * alpha
                        v[e, c, col + j] = u0
                        v[e + 1, c, col + j] = u1
                        v[e + 2, c, col + j] = u2
                        v[e + 3, c, col + j] = u3
            else:
                x0 = _row(x, n, c, h0, zero)
                x1 = _row(x, n, c, h0 + 1, zero)
                x2 = _row(x, n, c, h0 + 2, zero)
                x3 = _row(x, n, c, h0 + 3, zero)
                x4 = _row(x, n, c, h0 + 4, zero)
                x5 = _row(x, n, c, h0 + 5, zero)
                for wp in range(lo, hi):
                    w = wp - pad_left
                    t0, t1, t2, t3, t4, t5 = _bt4(x0[w], x1[w], x2[w], x3[w], x4[w], x5[w])
                    tmp[0, wp] = t0
                    tmp[1, wp] = t1
                    tmp[2, wp] = t2
                    tmp[3, wp] = t3
                    tmp[4, wp] = t4
                    tmp[5, wp] = t5
                for a in range(alpha):
                    for j in range(tw):
                        b = j * m
                        u0, u1, u2, u3, u4, u5 = _bt4(tmp[a, b], tmp[a, b + 1], tmp[a, b + 2],
                                                      tmp[a, b + 3], tmp[a, b + 4],
                                                      tmp[a, b + 5])
                        e = a * alpha
                        v[e, c, col + j] = u0
                        v[e + 1, c, col + j] = u1
                        v[e + 2, c, col + j] = u2
                        v[e + 3, c, col + j] = u3
                        v[e + 4, c, col + j] = u4
                        v[e + 5, c, col + j] = u5


@njit(cache=True, parallel=True)
def _output_transform(mm, y, m, r0, th, tw):
    alpha = m + 2
    c_n, o_w = y.shape[1], y.shape[3]
    rows = mm.shape[2] // tw
    split = _jobs(rows, c_n)
    per = (rows + split - 1) // split
    for job in prange(c_n * split):
        c = job // split
        tmp = np.empty((alpha, tw * m), y.dtype)
        sink = np.empty(o_w, y.dtype)  # receives the rows of the edge tiles past the output
        for rl in range(job % split * per, min(rows, (job % split + 1) * per)):
            n = (r0 + rl) // th
            h0 = (r0 + rl) % th * m
            col = rl * tw
            if m == 2:
                # along W: tmp[a, j*m + q] = (A^T M[a, :])[q]
                for a in range(alpha):
                    e = a * alpha
                    for j in range(tw):
                        q0, q1 = _at2(mm[e, c, col + j], mm[e + 1, c, col + j],
                                      mm[e + 2, c, col + j], mm[e + 3, c, col + j])
                        tmp[a, j * m] = q0
                        tmp[a, j * m + 1] = q1
                # along H, whole output rows
                y0 = _row(y, n, c, h0, sink)
                y1 = _row(y, n, c, h0 + 1, sink)
                for w in range(o_w):
                    p0, p1 = _at2(tmp[0, w], tmp[1, w], tmp[2, w], tmp[3, w])
                    y0[w] = p0
                    y1[w] = p1
            else:
                for a in range(alpha):
                    e = a * alpha
                    for j in range(tw):
                        q0, q1, q2, q3 = _at4(mm[e, c, col + j], mm[e + 1, c, col + j],
                                              mm[e + 2, c, col + j], mm[e + 3, c, col + j],
                                              mm[e + 4, c, col + j], mm[e + 5, c, col + j])
                        b = j * m
                        tmp[a, b] = q0
                        tmp[a, b + 1] = q1
                        tmp[a, b + 2] = q2
                        tmp[a, b + 3] = q3
                y0 = _row(y, n, c, h0, sink)
                y1 = _row(y, n, c, h0 + 1, sink)
                y2 = _row(y, n, c, h0 + 2, sink)
                y3 = _row(y, n, c, h0 + 3, sink)
                for w in range(o_w):
                    p0, p1, p2, p3 = _at4(tmp[0, w], tmp[1, w], tmp[2, w], tmp[3, w],
                                          tmp[4, w], tmp[5, w])
                    y0[w] = p0
                    y1[w] = p1
                    y2[w] = p2
                    y3[w] = p3


@njit(cache=True, parallel=True)
def _output_adjoint(gy, dm, m, r0, th, tw):
    alpha = m + 2
    c_n, o_w = gy.shape[1], gy.shape[3]
    rows = dm.shape[2] // tw
    zero = np.zeros(o_w, gy.dtype)
    split = _jobs(rows, c_n)
    per = (rows + split - 1) // split
    for job in prange(c_n * split):
        c = job // split
        # columns past the output's width stay zero: the cropped part of the edge tiles
        tmp = np.zeros((alpha, tw * m), gy.dtype)
        for rl in range(job % split * per, min(rows, (job % split + 1) * per)):
            n = (r0 + rl) // th
            h0 = (r0 + rl) % th * m
            col = rl * tw
            if m == 2:
                # along H: tmp[a, w] = (A gy[rows of the tile, w])[a]
                g0 = _row(gy, n, c, h0, zero)
                g1 = _row(gy, n, c, h0 + 1, zero)
                for w in range(o_w):
                    t0, t1, t2, t3 = _a2(g0[w], g1[w])
                    tmp[0, w] = t0
                    tmp[1, w] = t1
                    tmp[2, w] = t2
                    tmp[3, w] = t3
                for a in range(alpha):
                    e = a * alpha
                    for j in range(tw):
                        b = j * m
                        u0, u1, u2, u3 = _a2(tmp[a, b], tmp[a, b + 1])
                        dm[e, c, col + j] = u0
                        dm[e + 1, c, col + j] = u1
                        dm[e + 2, c, col + j] = u2
                        dm[e + 3, c, col + j] = u3
            else:
                g0 = _row(gy, n, c, h0, zero)
                g1 = _row(gy, n, c, h0 + 1, zero)
                g2 = _row(gy, n, c, h0 + 2, zero)
                g3 = _row(gy, n, c, h0 + 3, zero)
                for w in range(o_w):
                    t0, t1, t2, t3, t4, t5 = _a4(g0[w], g1[w], g2[w], g3[w])
                    tmp[0, w] = t0
                    tmp[1, w] = t1
                    tmp[2, w] = t2
                    tmp[3, w] = t3
                    tmp[4, w] = t4
                    tmp[5, w] = t5
                for a in range(alpha):
                    e = a * alpha
                    for j in range(tw):
                        b = j * m
                        u0, u1, u2, u3, u4, u5 = _a4(tmp[a, b], tmp[a, b + 1], tmp[a, b + 2],
                                                     tmp[a, b + 3])
                        dm[e, c, col + j] = u0
                        dm[e + 1, c, col + j] = u1
                        dm[e + 2, c, col + j] = u2
                        dm[e + 3, c, col + j] = u3
                        dm[e + 4, c, col + j] = u4
                        dm[e + 5, c, col + j] = u5


# ---- public wrappers: check, then call the kernel


def _check(op, m, image, image_name, gemm, gemm_name, r0, out_hw):
    """(th, tw) after checking dtypes, contiguity, m, shapes and the chunk's tile rows."""
    check_arrays(op, (image_name,), (image,), 4)
    check_arrays(op, (gemm_name,), (gemm,), 3)
    if gemm.dtype != image.dtype:
        raise TypeError(f"{op}: {image_name} and {gemm_name} must share one dtype, received "
                        f"{image.dtype} and {gemm.dtype}")
    if m not in (2, 4):
        raise ValueError(f"{op}: m (output tile size) must be 2 or 4, received {m!r}")
    th, tw = -(-out_hw[0] // m), -(-out_hw[1] // m)
    alpha2 = (m + 2) ** 2
    channels = image.shape[1]
    if gemm.shape[0] != alpha2 or gemm.shape[1] != channels or tw == 0 or gemm.shape[2] % tw:
        raise ValueError(f"{op}: {gemm_name} must have shape ({alpha2}, {channels}, "
                         f"rows * {tw}), received {gemm.shape}")
    rows = gemm.shape[2] // tw
    if r0 < 0 or r0 + rows > image.shape[0] * th:
        raise ValueError(f"{op}: tile rows {r0}..{r0 + rows} out of range: "
                         f"{image_name} {image.shape} has {image.shape[0] * th} tile rows")
    return th, tw


def input_transform(x, v, m, r0, pad_top, pad_left, out_h, out_w):
    """Gather and transform input tiles, ``v[:, c, tile] = B^T d B``, for a chunk of tiles.

    Parameters
    ----------
    x : ndarray (N, C, H, W), float32 or float64, C-contiguous, *unpadded*.
    v : ndarray (alpha*alpha, C, rows * tw), same dtype, overwritten; alpha = m + 2.
    m : int
        Output tile size, 2 or 4.
    r0 : int
        First tile row of the chunk (tile row r = image n * th + tile row i).
    pad_top, pad_left : int
        Offset of x inside the zero-padded input (negative values crop x).
    out_h, out_w : int
        Output size the tiles cover: th = ceil(out_h / m) by tw = ceil(out_w / m) tiles
        per image; tile (i, j) reads padded rows i*m .. i*m + alpha - 1 (columns alike).

    Examples
    --------
    >>> x = np.ones((1, 1, 4, 4)); v = np.empty((16, 1, 1))
    >>> input_transform(x, v, 2, 0, 0, 0, 2, 2); float(v[5, 0, 0])
    4.0
    """
    op = "winograd input_transform"
    th, tw = _check(op, m, x, "x", v, "v", r0, (out_h, out_w))
    if v.size:
        _input_transform(x, v, m, r0, int(pad_top), int(pad_left), th, tw)


def output_transform(mm, y, m, r0):
    """Transform products back to output tiles, ``y[tile] = A^T M A``, cropped at the edges.

    Parameters
    ----------
    mm : ndarray (alpha*alpha, C_out, rows * tw), float32 or float64, C-contiguous: the
        products M of a chunk of tile rows starting at tile row ``r0``.
    y : ndarray (N, C_out, OH, OW), same dtype; the chunk's tiles are overwritten.
    m : int
        Output tile size, 2 or 4 (th = ceil(OH / m), tw = ceil(OW / m)).
    r0 : int
        First tile row of the chunk.

    Examples
    --------
    >>> mm = np.zeros((16, 1, 1)); mm[0] = 1.0; y = np.empty((1, 1, 2, 2))
    >>> output_transform(mm, y, 2, 0); y[0, 0].tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    """
    op = "winograd output_transform"
    th, tw = _check(op, m, y, "y", mm, "mm", r0, y.shape[2:])
    if mm.size:
        _output_transform(mm, y, m, r0, th, tw)


def output_transform_adjoint(gy, dm, m, r0):
    """The adjoint of :func:`output_transform`: ``dm[:, c, tile] = A dY A^T`` for the tiles
    of ``gy`` (zero past its edges); the chain rule's step from dL/dy to dL/dM.

    Parameters
    ----------
    gy : ndarray (N, C_out, OH, OW), float32 or float64, C-contiguous.
    dm : ndarray (alpha*alpha, C_out, rows * tw), same dtype, overwritten.
    m : int
        Output tile size, 2 or 4.
    r0 : int
        First tile row of the chunk.

    Examples
    --------
    >>> gy = np.zeros((1, 1, 2, 2)); gy[0, 0, 0, 0] = 1.0; dm = np.empty((16, 1, 1))
    >>> output_transform_adjoint(gy, dm, 2, 0); (dm[:, 0, 0].reshape(4, 4)[:, 0] + 0).tolist()
    [1.0, 1.0, 1.0, 0.0]
    """
    op = "winograd output_transform_adjoint"
    th, tw = _check(op, m, gy, "gy", dm, "dm", r0, gy.shape[2:])
    if dm.size:
        _output_adjoint(gy, dm, m, r0, th, tw)
