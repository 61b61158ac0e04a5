"""Winograd F(2x2,3x3) and F(4x4,3x3) tile transforms (Numba), for kernels/strategies/winograd.py.

A tile of the output is ``m x m`` (m = 2 or 4); it reads an ``alpha x alpha`` input tile,
alpha = m + 2.  With the matrices B^T, G, A^T of kernels/strategies/winograd.py (Toom-Cook points
0, +-1 for F(2,3) as in Lavin & Gray (2015); 0, +-1, -1/2, 2 for F(4,3), about half the
float32 error of Lavin & Gray's 0, +-1, +-2)::

    V = B^T d B    (input transform, per input tile and channel)
    M[e] = U[e] @ V[e]   for each of the alpha*alpha elements e  (BLAS, done by the caller)
    Y = A^T M A    (output transform, cropped at the high edges)

Arrays here are 4-D (N, C, H, W) (the caller drops the singleton depth of the 5-D form) and
GEMM-ordered (alpha*alpha, channels, tiles).  Tiles are numbered in rows: a *tile row* r is
(image n, tile row i) with r = n * th + i, and tile (r, j) is column (r - r0) * tw + j of a
chunk of tile rows starting at r0.

Every kernel works on blocks of about ``BLOCK_TILES`` tiles of one channel, held in a per-job
scratch buffer as planes of one value per tile (``[row][column][tile]``), so that both 1-D
passes of a separable transform are loops over a contiguous run of tiles (vectorised,
8 floats a step with AVX2) that write one output plane each.  Only the gather of the input
patches (and the scatter of output tiles) touches the image with a stride.  Threads run over
(channel, group of blocks) jobs, each owning its output columns; one kernel serves the three
transforms (compile time).

The 1-D transforms below are B^T, A^T and A written out (float32 constants keep float32
arithmetic in float32); kernels/strategies/winograd.py holds the same matrices as arrays and the
tests check one against the other.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .. import plan
from .threads import run_jobs



# ---- 1-D transforms over planes: out[k][t] = sum_i T[k, i] * inp[i][t] for t < n.  The
# planes are slices of 1-D buffers: plane i of ``s`` starts at so + i * ss, plane k of ``d``
# at do + k * ds.  Each output plane is one call of _comb2/4/6 (one per plane count), whose
# loops are the only vectorised loops to compile; zero coefficients cost a multiply-add, not
# a compile.  No helper here is passed a literal int (a constant such as 0 or 4): Numba
# compiles a function again for each literal argument value (Literal[int](0) is not int64),
# which tripled the cold compile of this module; hence ``zero = np.int64(0)`` below.  The
# float32 constants keep float32 arithmetic in float32.

_f = np.float32


@njit
def _comb2(s, so, ss, d, do, n, c0, c1):
    """d[do + t] = c0 * s[so + t] + c1 * s[so + ss + t] for t < n."""
    o = d[do:do + n]
    s0, s1 = s[so:so + n], s[so + ss:so + ss + n]
    for t in range(n):
        o[t] = c0 * s0[t] + c1 * s1[t]


@njit
def _comb4(s, so, ss, d, do, n, c0, c1, c2, c3):
    """d[do + t] = sum_{i < 4} c_i * s[so + i * ss + t] for t < n."""
    o = d[do:do + n]
    s0, s1 = s[so:so + n], s[so + ss:so + ss + n]
    s2, s3 = s[so + 2 * ss:so + 2 * ss + n], s[so + 3 * ss:so + 3 * ss + n]
    for t in range(n):
        o[t] = (c0 * s0[t] + c1 * s1[t]) + (c2 * s2[t] + c3 * s3[t])


@njit
def _comb6(s, so, ss, d, do, n, c0, c1, c2, c3, c4, c5):
    """d[do + t] = sum_{i < 6} c_i * s[so + i * ss + t] for t < n."""
    o = d[do:do + n]
    s0, s1 = s[so:so + n], s[so + ss:so + ss + n]
    s2, s3 = s[so + 2 * ss:so + 2 * ss + n], s[so + 3 * ss:so + 3 * ss + n]
    s4, s5 = s[so + 4 * ss:so + 4 * ss + n], s[so + 5 * ss:so + 5 * ss + n]
    for t in range(n):
        o[t] = (c0 * s0[t] + c1 * s1[t]) + (c2 * s2[t] + c3 * s3[t]) + (c4 * s4[t] + c5 * s5[t])


@njit
def _bt(m, s, so, ss, d, do, ds, n):
    """B^T of F(m, 3): alpha planes -> alpha planes."""
    z = _f(0)
    if m == 2:
        _comb4(s, so, ss, d, do, n, _f(1), z, _f(-1), z)
        _comb4(s, so, ss, d, do + ds, n, z, _f(1), _f(1), z)
        _comb4(s, so, ss, d, do + 2 * ds, n, z, _f(-1), _f(1), z)
        _comb4(s, so, ss, d, do + 3 * ds, n, z, _f(1), z, _f(-1))
    else:
        _comb6(s, so, ss, d, do, n, _f(1), _f(1.5), _f(-2), _f(-1.5), _f(1), z)
        _comb6(s, so, ss, d, do + ds, n, z, _f(-1), _f(-2.5), _f(-0.5), _f(1), z)
        _comb6(s, so, ss, d, do + 2 * ds, n, z, _f(1), _f(0.5), _f(-2.5), _f(1), z)
        _comb6(s, so, ss, d, do + 3 * ds, n, z, _f(2), _f(-1), _f(-2), _f(1), z)
        _comb6(s, so, ss, d, do + 4 * ds, n, z, _f(-0.5), _f(-1), _f(0.5), _f(1), z)
        _comb6(s, so, ss, d, do + 5 * ds, n, z, _f(1), _f(1.5), _f(-2), _f(-1.5), _f(1))


@njit
def _at(m, s, so, ss, d, do, ds, n):
    """A^T of F(m, 3): alpha planes -> m planes."""
    z = _f(0)
    if m == 2:
        _comb4(s, so, ss, d, do, n, _f(1), _f(1), _f(1), z)
        _comb4(s, so, ss, d, do + ds, n, z, _f(1), _f(-1), _f(-1))
    else:
        _comb6(s, so, ss, d, do, n, _f(1), _f(1), _f(1), _f(1), _f(1), z)
        _comb6(s, so, ss, d, do + ds, n, z, _f(1), _f(-1), _f(-0.5), _f(2), z)
        _comb6(s, so, ss, d, do + 2 * ds, n, z, _f(1), _f(1), _f(0.25), _f(4), z)
        _comb6(s, so, ss, d, do + 3 * ds, n, z, _f(1), _f(-1), _f(-0.125), _f(8), _f(1))


@njit
def _a(m, s, so, ss, d, do, ds, n):
    """A of F(m, 3): m planes -> alpha planes."""
    z = _f(0)
    if m == 2:
        _comb2(s, so, ss, d, do, n, _f(1), z)
        _comb2(s, so, ss, d, do + ds, n, _f(1), _f(1))
        _comb2(s, so, ss, d, do + 2 * ds, n, _f(1), _f(-1))
        _comb2(s, so, ss, d, do + 3 * ds, n, z, _f(-1))
    else:
        _comb4(s, so, ss, d, do, n, _f(1), z, z, z)
        _comb4(s, so, ss, d, do + ds, n, _f(1), _f(1), _f(1), _f(1))
        _comb4(s, so, ss, d, do + 2 * ds, n, _f(1), _f(-1), _f(1), _f(-1))
        _comb4(s, so, ss, d, do + 3 * ds, n, _f(1), _f(-0.5), _f(0.25), _f(-0.125))
        _comb4(s, so, ss, d, do + 4 * ds, n, _f(1), _f(2), _f(4), _f(8))
        _comb4(s, so, ss, d, do + 5 * ds, n, z, z, z, _f(1))


@njit
def _gather(row, w_n, off, d, base, nt, tw, m, alpha):
    """d[base + k * nt + j] = row[j * m + off + k] (zero outside the row), k < alpha, j < tw."""
    for j in range(tw):
        w0 = j * m + off
        if w0 >= 0 and w0 + alpha <= w_n:
            for k in range(alpha):
                d[base + k * nt + j] = row[w0 + k]
        else:
            for k in range(alpha):
                d[base + k * nt + j] = row[w0 + k] if 0 <= w0 + k < w_n else 0


@njit
def _zero(d, base, nt, tw, alpha):
    for k in range(alpha):
        for j in range(tw):
            d[base + k * nt + j] = 0


@njit
def _scatter(o, base, nt, row, o_w, tw, m):
    """row[j * m + p] = o[base + p * nt + j] for the columns inside the row."""
    for j in range(tw):
        w0 = j * m
        if w0 + m <= o_w:
            for p in range(m):
                row[w0 + p] = o[base + p * nt + j]
        else:
            for p in range(o_w - w0):
                row[w0 + p] = o[base + p * nt + j]


# ---- one job: channel c, blocks [k0, k1) of rpb tile rows each.  The block's planes are
# [row][column][tile] with nt tiles per plane.  Plain functions called by the one kernel
# below.


@njit
def _input_job(x, vf, m, c, k0, k1, rpb, rows, r0, pad_top, pad_left, th, tw, cols):
    alpha, zero = m + 2, np.int64(0)
    c_n, h_n, w_n = x.shape[1], x.shape[2], x.shape[3]
    plane = c_n * cols                         # distance between v[e] and v[e + 1]
    d = np.empty(alpha * alpha * rpb * tw, x.dtype)
    e = np.empty(alpha * alpha * rpb * tw, x.dtype)
    for blk in range(k0, k1):
        b0 = blk * rpb
        b1 = min(rows, b0 + rpb)
        nt = (b1 - b0) * tw
        # gather the patches (the only strided pass), zeros outside the image:
        # d[i][k][t] = padded input at row i, column k of tile t
        for rl in range(b0, b1):
            n = (r0 + rl) // th
            h0 = (r0 + rl) % th * m - pad_top
            t0 = (rl - b0) * tw
            for i in range(alpha):
                h = h0 + i
                base = i * alpha * nt + t0
                if h < 0 or h >= h_n:
                    _zero(d, base, nt, tw, alpha)
                else:
                    _gather(x[n, c, h], w_n, -pad_left, d, base, nt, tw, m, alpha)
        # along H over (column, tile) planes: e[a][k][t] = (B^T d[:, k, t])[a]
        _bt(m, d, zero, alpha * nt, e, zero, alpha * nt, alpha * nt)
        # along W, straight into v: v[a * alpha + b, c, tile] = (B^T e[a, :, t])[b]
        for a in range(alpha):
            _bt(m, e, a * alpha * nt, nt, vf, (a * alpha * c_n + c) * cols + b0 * tw, plane, nt)


@njit
def _output_job(mf, y, m, c, k0, k1, rpb, rows, r0, th, tw, cols):
    alpha, zero = m + 2, np.int64(0)
    c_n, o_h, o_w = y.shape[1], y.shape[2], y.shape[3]
    plane = c_n * cols
    q = np.empty(alpha * m * rpb * tw, y.dtype)
    o = np.empty(m * m * rpb * tw, y.dtype)
    for blk in range(k0, k1):
        b0 = blk * rpb
        b1 = min(rows, b0 + rpb)
        nt = (b1 - b0) * tw
        # along W: q[a][p][t] = (A^T M[a, :, t])[p]
        for a in range(alpha):
            _at(m, mf, (a * alpha * c_n + c) * cols + b0 * tw, plane, q, a * m * nt, nt, nt)
        # along H over (column, tile) planes: o[i][p][t] = (A^T q[:, p, t])[i]
        _at(m, q, zero, m * nt, o, zero, m * nt, m * nt)
        # scatter the tiles, cropped at the high edges
        for rl in range(b0, b1):
            n = (r0 + rl) // th
            h0 = (r0 + rl) % th * m
            t0 = (rl - b0) * tw
            for i in range(min(m, o_h - h0)):
                _scatter(o, i * m * nt + t0, nt, y[n, c, h0 + i], o_w, tw, m)


@njit
def _adjoint_job(gy, df, m, c, k0, k1, rpb, rows, r0, th, tw, cols):
    alpha, zero = m + 2, np.int64(0)
    c_n, o_h, o_w = gy.shape[1], gy.shape[2], gy.shape[3]
    plane = c_n * cols
    g = np.empty(m * m * rpb * tw, gy.dtype)
    h = np.empty(alpha * m * rpb * tw, gy.dtype)
    for blk in range(k0, k1):
        b0 = blk * rpb
        b1 = min(rows, b0 + rpb)
        nt = (b1 - b0) * tw
        # gather the tiles of gy, zeros past its edges: g[i][p][t]
        for rl in range(b0, b1):
            n = (r0 + rl) // th
            h0 = (r0 + rl) % th * m
            t0 = (rl - b0) * tw
            for i in range(m):
                base = i * m * nt + t0
                if h0 + i >= o_h:
                    _zero(g, base, nt, tw, m)
                else:
                    _gather(gy[n, c, h0 + i], o_w, zero, g, base, nt, tw, m, m)
        # along H over (column, tile) planes: h[a][p][t] = (A g[:, p, t])[a]
        _a(m, g, zero, m * nt, h, zero, m * nt, m * nt)
        # along W, straight into dm: dm[a * alpha + b, c, tile] = (A h[a, :, t])[b]
        for a in range(alpha):
            _a(m, h, a * m * nt, nt, df, (a * alpha * c_n + c) * cols + b0 * tw, plane, nt)


# ---- the kernel, one for the three transforms (one function to compile): jobs are
# (channel, group of ``per`` blocks), run on threads (threads.run_jobs)

_INPUT, _OUTPUT, _ADJOINT = 0, 1, 2


@njit(nogil=True, cache=True)
def _run(kind, image, gemm, m, r0, pad_top, pad_left, th, tw, rpb, split, first, step):
    c_n, cols = image.shape[1], gemm.shape[2]
    rows = cols // tw
    blocks = (rows + rpb - 1) // rpb
    per = (blocks + split - 1) // split
    flat = gemm.reshape(gemm.size)
    for job in range(first, c_n * split, step):
        c, k0 = job // split, job % split * per
        k1 = min(blocks, k0 + per)
        if kind == _INPUT:
            _input_job(image, flat, m, c, k0, k1, rpb, rows, r0, pad_top, pad_left, th, tw,
                       cols)
        elif kind == _OUTPUT:
            _output_job(flat, image, m, c, k0, k1, rpb, rows, r0, th, tw, cols)
        else:
            _adjoint_job(image, flat, m, c, k0, k1, rpb, rows, r0, th, tw, cols)


def _launch(kind, image, gemm, m, r0, pad_top, pad_left, th, tw, rpb):
    """Run the kernel on blocks of ``rpb`` tile rows (config.WINOGRAD_BLOCK_TILES tiles),
    split into >= 16 jobs when possible."""
    blocks = -(-(gemm.shape[2] // tw) // rpb)
    channels = image.shape[1]
    split = max(1, min(blocks, -(-16 // channels)))
    run_jobs(_run, channels * split, kind, image, gemm, m, r0, pad_top, pad_left, th, tw, rpb,
             split)


# ---- public wrappers: check, then call the kernel


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
    th, tw, rpb = plan.winograd_call(op, m, x, "x", v, "v", r0, (out_h, out_w))
    if v.size:
        _launch(_INPUT, x, v, m, r0, int(pad_top), int(pad_left), th, tw, rpb)


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
    th, tw, rpb = plan.winograd_call(op, m, y, "y", mm, "mm", r0, y.shape[2:])
    if mm.size:
        _launch(_OUTPUT, y, mm, m, r0, 0, 0, th, tw, rpb)


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
    th, tw, rpb = plan.winograd_call(op, m, gy, "gy", dm, "dm", r0, gy.shape[2:])
    if dm.size:
        _launch(_ADJOINT, gy, dm, m, r0, 0, 0, th, tw, rpb)
