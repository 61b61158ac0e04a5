# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: language_level=3
"""Winograd F(2x2,3x3) and F(4x4,3x3) tile transforms (Cython), for kernels/strategies/winograd.py.

The same kernels as kernels/_numba/winograd.py (see there and kernels/strategies/winograd.py for
the algorithm, the matrices and the layouts): ``input_transform`` writes V = B^T d B of a
chunk of tiles in GEMM order (alpha*alpha, C, tiles); ``output_transform`` writes y tiles =
A^T M A, cropped at the edges; ``output_transform_adjoint`` writes dM = A dY A^T.

Each job (one channel, a group of blocks of about config.WINOGRAD_BLOCK_TILES tiles) holds a
block in a scratch buffer as planes of one value per tile; both 1-D passes of the separable transform
are then loops over contiguous tiles that write one plane each (vectorised by the compiler),
and only the gather of the input patches and the scatter of the output tiles are strided.
OpenMP threads split the jobs, each owning its outputs and its scratch.
"""
from cython cimport floating
from cython.parallel cimport prange
from .threads cimport team
from libc.stdlib cimport malloc, free

import numpy as np

from .. import plan

# ---- 1-D transforms over planes: d[k * ds + t] = sum_i T[k, i] * s[i * ss + t], t < n.
# One loop per output plane: one store stream each, which the compiler vectorises.

cdef inline void _bt2(const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                      Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t t
    for t in range(n):
        d[t] = s[t] - s[2 * ss + t]
    for t in range(n):
        d[ds + t] = s[ss + t] + s[2 * ss + t]
    for t in range(n):
        d[2 * ds + t] = s[2 * ss + t] - s[ss + t]
    for t in range(n):
        d[3 * ds + t] = s[ss + t] - s[3 * ss + t]


cdef inline void _at2(const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                      Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t t
    for t in range(n):
        d[t] = s[t] + s[ss + t] + s[2 * ss + t]
    for t in range(n):
        d[ds + t] = s[ss + t] - s[2 * ss + t] - s[3 * ss + t]


cdef inline void _a2(const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                     Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t t
    for t in range(n):
        d[t] = s[t]
    for t in range(n):
        d[ds + t] = s[t] + s[ss + t]
    for t in range(n):
        d[2 * ds + t] = s[t] - s[ss + t]
    for t in range(n):
        d[3 * ds + t] = -s[ss + t]


cdef inline void _bt4(const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                      Py_ssize_t n) noexcept nogil:
    cdef const floating* s1 = s + ss
    cdef const floating* s2 = s + 2 * ss
    cdef const floating* s3 = s + 3 * ss
    cdef const floating* s4 = s + 4 * ss
    cdef const floating* s5 = s + 5 * ss
    cdef Py_ssize_t t
    for t in range(n):
        d[t] = (s[t] + s4[t]) + (<floating>1.5 * (s1[t] - s3[t]) - <floating>2 * s2[t])
    for t in range(n):
        d[ds + t] = (s4[t] - s1[t]) - (<floating>2.5 * s2[t] + <floating>0.5 * s3[t])
    for t in range(n):
        d[2 * ds + t] = (s4[t] + s1[t]) + (<floating>0.5 * s2[t] - <floating>2.5 * s3[t])
    for t in range(n):
        d[3 * ds + t] = (s4[t] - s2[t]) + <floating>2 * (s1[t] - s3[t])
    for t in range(n):
        d[4 * ds + t] = (s4[t] - s2[t]) - <floating>0.5 * (s1[t] - s3[t])
    for t in range(n):
        d[5 * ds + t] = (s1[t] + s5[t]) + (<floating>1.5 * (s2[t] - s4[t])
                                           - <floating>2 * s3[t])


cdef inline void _at4(const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                      Py_ssize_t n) noexcept nogil:
    cdef const floating* s1 = s + ss
    cdef const floating* s2 = s + 2 * ss
    cdef const floating* s3 = s + 3 * ss
    cdef const floating* s4 = s + 4 * ss
    cdef const floating* s5 = s + 5 * ss
    cdef Py_ssize_t t
    for t in range(n):
        d[t] = s[t] + (s1[t] + s2[t]) + (s3[t] + s4[t])
    for t in range(n):
        d[ds + t] = (s1[t] - s2[t]) + (<floating>2 * s4[t] - <floating>0.5 * s3[t])
    for t in range(n):
        d[2 * ds + t] = (s1[t] + s2[t]) + (<floating>4 * s4[t] + <floating>0.25 * s3[t])
    for t in range(n):
        d[3 * ds + t] = ((s1[t] - s2[t]) + (<floating>8 * s4[t] - <floating>0.125 * s3[t])
                         + s5[t])


cdef inline void _a4(const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                     Py_ssize_t n) noexcept nogil:
    cdef const floating* s1 = s + ss
    cdef const floating* s2 = s + 2 * ss
    cdef const floating* s3 = s + 3 * ss
    cdef Py_ssize_t t
    for t in range(n):
        d[t] = s[t]
    for t in range(n):
        d[ds + t] = (s[t] + s2[t]) + (s1[t] + s3[t])
    for t in range(n):
        d[2 * ds + t] = (s[t] + s2[t]) - (s1[t] + s3[t])
    for t in range(n):
        d[3 * ds + t] = (s[t] + <floating>0.25 * s2[t]) - (<floating>0.5 * s1[t]
                                                          + <floating>0.125 * s3[t])
    for t in range(n):
        d[4 * ds + t] = ((s[t] + <floating>4 * s2[t])
                         + (<floating>2 * s1[t] + <floating>8 * s3[t]))
    for t in range(n):
        d[5 * ds + t] = s3[t]


cdef inline void _bt(int m, const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                     Py_ssize_t n) noexcept nogil:
    """B^T of F(m, 3): alpha planes -> alpha planes"""
    if m == 2:
        _bt2(s, ss, d, ds, n)
    else:
        _bt4(s, ss, d, ds, n)


cdef inline void _at(int m, const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                     Py_ssize_t n) noexcept nogil:
    """A^T of F(m, 3): alpha planes -> m planes"""
    if m == 2:
        _at2(s, ss, d, ds, n)
    else:
        _at4(s, ss, d, ds, n)


cdef inline void _a(int m, const floating* s, Py_ssize_t ss, floating* d, Py_ssize_t ds,
                    Py_ssize_t n) noexcept nogil:
    """A of F(m, 3): m planes -> alpha planes"""
    if m == 2:
        _a2(s, ss, d, ds, n)
    else:
        _a4(s, ss, d, ds, n)


cdef inline void _gather(const floating* row, Py_ssize_t width, Py_ssize_t off, floating* d,
                         Py_ssize_t nt, Py_ssize_t tw, int m, int alpha) noexcept nogil:
    """d[k * nt + j] = row[j * m + off + k] (zero outside the row), k < alpha, j < tw; called
    with literal m and alpha so the k loops unroll"""
    cdef Py_ssize_t j, w0
    cdef int k
    for j in range(tw):
        w0 = j * m + off
        if w0 >= 0 and w0 + alpha <= width:
            for k in range(alpha):
                d[k * nt + j] = row[w0 + k]
        else:
            for k in range(alpha):
                d[k * nt + j] = row[w0 + k] if 0 <= w0 + k < width else 0


cdef inline void _zero(floating* d, Py_ssize_t nt, Py_ssize_t tw, int alpha) noexcept nogil:
    cdef Py_ssize_t j
    cdef int k
    for k in range(alpha):
        for j in range(tw):
            d[k * nt + j] = 0


cdef inline void _scatter(const floating* o, Py_ssize_t nt, floating* row, Py_ssize_t width,
                          Py_ssize_t tw, int m) noexcept nogil:
    """row[j * m + p] = o[p * nt + j] for the columns inside the row; called with literal m"""
    cdef Py_ssize_t j, w0
    cdef int p
    for j in range(tw):
        w0 = j * m
        if w0 + m <= width:
            for p in range(m):
                row[w0 + p] = o[p * nt + j]
        else:
            for p in range(width - w0):
                row[w0 + p] = o[p * nt + j]


# ---- one job: channel c, blocks [k0, k1) of rpb tile rows each; returns -1 when out of
# memory.  The block's planes are [row][column][tile] with nt tiles per plane.

cdef inline int _input_job(const floating* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                           floating* v, Py_ssize_t cols, int m, Py_ssize_t c, Py_ssize_t k0,
                           Py_ssize_t k1, Py_ssize_t rpb, Py_ssize_t rows, Py_ssize_t r0,
                           Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t th,
                           Py_ssize_t tw) noexcept nogil:
    cdef int alpha = m + 2
    cdef Py_ssize_t plane = C * cols, nb = rpb * tw
    cdef Py_ssize_t blk, b0, b1, nt, rl, n, h0, h, t0, i, a
    cdef floating* dst
    cdef floating* d = <floating*>malloc(2 * alpha * alpha * nb * sizeof(floating))
    cdef floating* e
    if d == NULL:
        return -1
    e = d + alpha * alpha * nb
    for blk in range(k0, k1):
        b0 = blk * rpb
        b1 = min(rows, b0 + rpb)
        nt = (b1 - b0) * tw
        # gather the patches (the only strided pass), zeros outside the image
        for rl in range(b0, b1):
            n = (r0 + rl) // th
            h0 = (r0 + rl) % th * m - pad_top
            t0 = (rl - b0) * tw
            for i in range(alpha):
                h = h0 + i
                dst = d + i * alpha * nt + t0
                if h < 0 or h >= H:
                    _zero(dst, nt, tw, alpha)
                elif m == 2:
                    _gather(x + ((n * C + c) * H + h) * W, W, -pad_left, dst, nt, tw, 2, 4)
                else:
                    _gather(x + ((n * C + c) * H + h) * W, W, -pad_left, dst, nt, tw, 4, 6)
        # along H over (column, tile) planes, then along W straight into v
        _bt(m, d, alpha * nt, e, alpha * nt, alpha * nt)
        for a in range(alpha):
            _bt(m, e + a * alpha * nt, nt, v + (a * alpha * C + c) * cols + b0 * tw, plane, nt)
    free(d)
    return 0


cdef inline int _output_job(const floating* mm, Py_ssize_t cols, floating* y, Py_ssize_t C,
                            Py_ssize_t OH, Py_ssize_t OW, int m, Py_ssize_t c, Py_ssize_t k0,
                            Py_ssize_t k1, Py_ssize_t rpb, Py_ssize_t rows, Py_ssize_t r0,
                            Py_ssize_t th, Py_ssize_t tw) noexcept nogil:
    cdef int alpha = m + 2
    cdef Py_ssize_t plane = C * cols, nb = rpb * tw
    cdef Py_ssize_t blk, b0, b1, nt, rl, n, h0, t0, i, a
    cdef floating* row
    cdef floating* q = <floating*>malloc((alpha + m) * m * nb * sizeof(floating))
    cdef floating* o
    if q == NULL:
        return -1
    o = q + alpha * m * nb
    for blk in range(k0, k1):
        b0 = blk * rpb
        b1 = min(rows, b0 + rpb)
        nt = (b1 - b0) * tw
        # along W, from M, then along H over (column, tile) planes
        for a in range(alpha):
            _at(m, mm + (a * alpha * C + c) * cols + b0 * tw, plane, q + a * m * nt, nt, nt)
        _at(m, q, m * nt, o, m * nt, m * nt)
        # scatter the tiles, cropped at the high edges
        for rl in range(b0, b1):
            n = (r0 + rl) // th
            h0 = (r0 + rl) % th * m
            t0 = (rl - b0) * tw
            for i in range(min(m, OH - h0)):
                row = y + ((n * C + c) * OH + h0 + i) * OW
                if m == 2:
                    _scatter(o + i * m * nt + t0, nt, row, OW, tw, 2)
                else:
                    _scatter(o + i * m * nt + t0, nt, row, OW, tw, 4)
    free(q)
    return 0


cdef inline int _adjoint_job(const floating* gy, Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW,
                             floating* dm, Py_ssize_t cols, int m, Py_ssize_t c, Py_ssize_t k0,
                             Py_ssize_t k1, Py_ssize_t rpb, Py_ssize_t rows, Py_ssize_t r0,
                             Py_ssize_t th, Py_ssize_t tw) noexcept nogil:
    cdef int alpha = m + 2
    cdef Py_ssize_t plane = C * cols, nb = rpb * tw
    cdef Py_ssize_t blk, b0, b1, nt, rl, n, h0, t0, i, a
    cdef floating* dst
    cdef floating* g = <floating*>malloc((m + alpha) * m * nb * sizeof(floating))
    cdef floating* hh
    if g == NULL:
        return -1
    hh = g + m * m * nb
    for blk in range(k0, k1):
        b0 = blk * rpb
        b1 = min(rows, b0 + rpb)
        nt = (b1 - b0) * tw
        # gather the tiles of gy, zeros past its edges
        for rl in range(b0, b1):
            n = (r0 + rl) // th
            h0 = (r0 + rl) % th * m
            t0 = (rl - b0) * tw
            for i in range(m):
                dst = g + i * m * nt + t0
                if h0 + i >= OH:
                    _zero(dst, nt, tw, m)
                elif m == 2:
                    _gather(gy + ((n * C + c) * OH + h0 + i) * OW, OW, 0, dst, nt, tw, 2, 2)
                else:
                    _gather(gy + ((n * C + c) * OH + h0 + i) * OW, OW, 0, dst, nt, tw, 4, 4)
        # along H over (column, tile) planes, then along W straight into dm
        _a(m, g, m * nt, hh, m * nt, m * nt)
        for a in range(alpha):
            _a(m, hh + a * m * nt, nt, dm + (a * alpha * C + c) * cols + b0 * tw, plane, nt)
    free(g)
    return 0


# ---- parallel drivers: jobs are (channel, group of blocks), >= 16 when possible; each job
# is called with a literal m, so the compiler specialises it (constant trip counts)

cdef inline Py_ssize_t _split(Py_ssize_t blocks, Py_ssize_t channels) noexcept nogil:
    return max(1, min(blocks, (16 + channels - 1) // channels))


cdef int _input_transform(const floating[:, :, :, ::1] x, floating[:, :, ::1] v, int m,
                          Py_ssize_t r0, Py_ssize_t pad_top, Py_ssize_t pad_left,
                          Py_ssize_t th, Py_ssize_t tw, Py_ssize_t rpb) noexcept nogil:
    cdef Py_ssize_t C = x.shape[1], cols = v.shape[2], rows = cols // tw
    cdef Py_ssize_t blocks = (rows + rpb - 1) // rpb
    cdef Py_ssize_t split = _split(blocks, C), per = (blocks + split - 1) // split
    cdef Py_ssize_t job, b
    cdef int err = 0
    for job in prange(C * split, schedule="static", num_threads=team()):
        b = job % split
        if m == 2:
            err += _input_job(&x[0, 0, 0, 0], C, x.shape[2], x.shape[3], &v[0, 0, 0], cols,
                              2, job // split, b * per, min(blocks, (b + 1) * per), rpb, rows,
                              r0, pad_top, pad_left, th, tw)
        else:
            err += _input_job(&x[0, 0, 0, 0], C, x.shape[2], x.shape[3], &v[0, 0, 0], cols,
                              4, job // split, b * per, min(blocks, (b + 1) * per), rpb, rows,
                              r0, pad_top, pad_left, th, tw)
    return err


cdef int _output_transform(const floating[:, :, ::1] mm, floating[:, :, :, ::1] y, int m,
                           Py_ssize_t r0, Py_ssize_t th, Py_ssize_t tw,
                           Py_ssize_t rpb) noexcept nogil:
    cdef Py_ssize_t C = y.shape[1], cols = mm.shape[2], rows = cols // tw
    cdef Py_ssize_t blocks = (rows + rpb - 1) // rpb
    cdef Py_ssize_t split = _split(blocks, C), per = (blocks + split - 1) // split
    cdef Py_ssize_t job, b
    cdef int err = 0
    for job in prange(C * split, schedule="static", num_threads=team()):
        b = job % split
        if m == 2:
            err += _output_job(&mm[0, 0, 0], cols, &y[0, 0, 0, 0], C, y.shape[2], y.shape[3],
                               2, job // split, b * per, min(blocks, (b + 1) * per), rpb,
                               rows, r0, th, tw)
        else:
            err += _output_job(&mm[0, 0, 0], cols, &y[0, 0, 0, 0], C, y.shape[2], y.shape[3],
                               4, job // split, b * per, min(blocks, (b + 1) * per), rpb,
                               rows, r0, th, tw)
    return err


cdef int _output_adjoint(const floating[:, :, :, ::1] gy, floating[:, :, ::1] dm, int m,
                         Py_ssize_t r0, Py_ssize_t th, Py_ssize_t tw,
                         Py_ssize_t rpb) noexcept nogil:
    cdef Py_ssize_t C = gy.shape[1], cols = dm.shape[2], rows = cols // tw
    cdef Py_ssize_t blocks = (rows + rpb - 1) // rpb
    cdef Py_ssize_t split = _split(blocks, C), per = (blocks + split - 1) // split
    cdef Py_ssize_t job, b
    cdef int err = 0
    for job in prange(C * split, schedule="static", num_threads=team()):
        b = job % split
        if m == 2:
            err += _adjoint_job(&gy[0, 0, 0, 0], C, gy.shape[2], gy.shape[3], &dm[0, 0, 0],
                                cols, 2, job // split, b * per, min(blocks, (b + 1) * per),
                                rpb, rows, r0, th, tw)
        else:
            err += _adjoint_job(&gy[0, 0, 0, 0], C, gy.shape[2], gy.shape[3], &dm[0, 0, 0],
                                cols, 4, job // split, b * per, min(blocks, (b + 1) * per),
                                rpb, rows, r0, th, tw)
    return err


# ---- Python-level wrappers: validate, then dispatch on dtype

def input_transform(x, v, m, r0, pad_top, pad_left, out_h, out_w):
    """Gather and transform input tiles, ``v[:, c, tile] = B^T d B``, for a chunk of tiles.

    x (N, C, H, W) unpadded; v (alpha*alpha, C, rows * tw) overwritten, alpha = m + 2;
    m 2 or 4; r0 the chunk's first tile row (image n * th + tile row i); pad_top, pad_left
    the offset of x inside the zero-padded input (negative crops); the tiles cover an
    out_h x out_w output (th = ceil(out_h / m), tw = ceil(out_w / m) per image).

    >>> v = np.empty((16, 1, 1)); input_transform(np.ones((1, 1, 4, 4)), v, 2, 0, 0, 0, 2, 2)
    >>> float(v[5, 0, 0])
    4.0
    """
    op = "cython winograd input_transform"
    th, tw, rpb = plan.winograd_call(op, m, x, "x", v, "v", r0, (out_h, out_w))
    cdef int err = 0
    if v.size == 0:
        return
    if x.dtype == np.float32:
        err = _input_transform[float](x, v, m, r0, pad_top, pad_left, th, tw, rpb)
    else:
        err = _input_transform[double](x, v, m, r0, pad_top, pad_left, th, tw, rpb)
    if err:
        raise MemoryError(f"{op}: could not allocate a scratch buffer")


def output_transform(mm, y, m, r0):
    """Transform products back to output tiles, ``y[tile] = A^T M A``, cropped at the edges.

    mm (alpha*alpha, C_out, rows * tw): the products of the chunk of tile rows starting at
    r0; y (N, C_out, OH, OW): the chunk's tiles are overwritten; m 2 or 4.

    >>> mm = np.zeros((16, 1, 1)); mm[0] = 1.0; y = np.empty((1, 1, 2, 2))
    >>> output_transform(mm, y, 2, 0); y[0, 0].tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    """
    op = "cython winograd output_transform"
    th, tw, rpb = plan.winograd_call(op, m, y, "y", mm, "mm", r0, y.shape[2:])
    cdef int err = 0
    if mm.size == 0:
        return
    if y.dtype == np.float32:
        err = _output_transform[float](mm, y, m, r0, th, tw, rpb)
    else:
        err = _output_transform[double](mm, y, m, r0, th, tw, rpb)
    if err:
        raise MemoryError(f"{op}: could not allocate a scratch buffer")


def output_transform_adjoint(gy, dm, m, r0):
    """The adjoint of :func:`output_transform`: ``dm[:, c, tile] = A dY A^T`` for the tiles
    of gy (N, C_out, OH, OW) (zero past its edges); dm (alpha*alpha, C_out, rows * tw) is
    overwritten.

    >>> gy = np.zeros((1, 1, 2, 2)); gy[0, 0, 0, 0] = 1.0; dm = np.empty((16, 1, 1))
    >>> output_transform_adjoint(gy, dm, 2, 0); (dm[:, 0, 0].reshape(4, 4)[:, 0] + 0).tolist()
    [1.0, 1.0, 1.0, 0.0]
    """
    op = "cython winograd output_transform_adjoint"
    th, tw, rpb = plan.winograd_call(op, m, gy, "gy", dm, "dm", r0, gy.shape[2:])
    cdef int err = 0
    if dm.size == 0:
        return
    if gy.dtype == np.float32:
        err = _output_adjoint[float](gy, dm, m, r0, th, tw, rpb)
    else:
        err = _output_adjoint[double](gy, dm, m, r0, th, tw, rpb)
    if err:
        raise MemoryError(f"{op}: could not allocate a scratch buffer")
