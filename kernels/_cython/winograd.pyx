# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: language_level=3
"""Winograd F(2x2,3x3) and F(4x4,3x3) tile transforms (Cython), for kernels/conv/winograd.py.

The same kernels as kernels/_numba/winograd.py (see there and kernels/conv/winograd.py for
the algorithm and the layouts): ``input_transform`` writes V = B^T d B of a chunk of tiles in
GEMM order (alpha*alpha, C, tiles); ``output_transform`` writes y tiles = A^T M A, cropped at
the edges; ``output_transform_adjoint`` writes dM = A dY A^T.  Each is separable: a pass
along H over whole rows (contiguous, vectorised along W) into a per-job scratch buffer, then
a pass along W per tile.  OpenMP threads split (channel, block of tile rows) jobs, each
owning its outputs; every job allocates its own scratch.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport calloc, free

import numpy as np


# ---- 1-D transforms: d (alpha or m values) -> o, with shared subexpressions

cdef inline void _bt2(const floating* d, floating* o) noexcept nogil:
    o[0] = d[0] - d[2]
    o[1] = d[1] + d[2]
    o[2] = d[2] - d[1]
    o[3] = d[1] - d[3]


cdef inline void _at2(const floating* d, floating* o) noexcept nogil:
    o[0] = d[0] + d[1] + d[2]
    o[1] = d[1] - d[2] - d[3]


cdef inline void _a2(const floating* d, floating* o) noexcept nogil:
    o[0] = d[0]
    o[1] = d[0] + d[1]
    o[2] = d[0] - d[1]
    o[3] = -d[1]


cdef inline void _bt4(const floating* d, floating* o) noexcept nogil:
    cdef floating p = d[4] - 4 * d[2], q = d[3] - 4 * d[1]
    cdef floating s = d[4] - d[2], t = 2 * (d[3] - d[1])
    o[0] = 4 * d[0] - 5 * d[2] + d[4]
    o[1] = p + q
    o[2] = p - q
    o[3] = s + t
    o[4] = s - t
    o[5] = 4 * d[1] - 5 * d[3] + d[5]


cdef inline void _at4(const floating* d, floating* o) noexcept nogil:
    cdef floating a = d[1] + d[2], b = d[1] - d[2], c = d[3] + d[4], e = d[3] - d[4]
    o[0] = d[0] + a + c
    o[1] = b + 2 * e
    o[2] = a + 4 * c
    o[3] = b + 8 * e + d[5]


cdef inline void _a4(const floating* d, floating* o) noexcept nogil:
    cdef floating s = d[0] + d[2], t = d[1] + d[3]
    cdef floating u = d[0] + 4 * d[2], v = 2 * d[1] + 8 * d[3]
    o[0] = d[0]
    o[1] = s + t
    o[2] = s - t
    o[3] = u + v
    o[4] = u - v
    o[5] = d[3]


cdef inline void _fwd(int m, const floating* d, floating* o) noexcept nogil:
    """B^T of F(m, 3)"""
    if m == 2:
        _bt2(d, o)
    else:
        _bt4(d, o)


cdef inline void _out(int m, const floating* d, floating* o) noexcept nogil:
    """A^T of F(m, 3)"""
    if m == 2:
        _at2(d, o)
    else:
        _at4(d, o)


cdef inline void _adj(int m, const floating* d, floating* o) noexcept nogil:
    """A of F(m, 3)"""
    if m == 2:
        _a2(d, o)
    else:
        _a4(d, o)


# ---- one job: channel c, tile rows [rl0, rl1) of the chunk

cdef inline int _input_job(const floating* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                    floating* v, Py_ssize_t cols, int m, Py_ssize_t c, Py_ssize_t rl0,
                    Py_ssize_t rl1, Py_ssize_t r0, Py_ssize_t pad_top, Py_ssize_t pad_left,
                    Py_ssize_t th, Py_ssize_t tw) noexcept nogil:
    cdef int alpha = m + 2
    cdef Py_ssize_t wext = tw * m + 2, plane = C * cols
    cdef Py_ssize_t lo = min(max(pad_left, 0), wext)
    cdef Py_ssize_t hi = max(min(pad_left + W, wext), lo)
    cdef Py_ssize_t rl, n, h0, h, col, w, a, j, k, e
    cdef floating d[6]
    cdef floating o[6]
    cdef const floating* rows[6]
    # zero columns outside [lo, hi) stay zero; W zeros stand in for rows outside x
    cdef floating* tmp = <floating*>calloc(alpha * wext + W, sizeof(floating))
    cdef floating* zero = tmp + alpha * wext
    if tmp == NULL:
        return -1
    for rl in range(rl0, rl1):
        n = (r0 + rl) // th
        h0 = (r0 + rl) % th * m - pad_top
        col = rl * tw
        for k in range(alpha):
            h = h0 + k
            rows[k] = x + ((n * C + c) * H + h) * W if 0 <= h < H else zero
        # along H, whole rows: tmp[a, wp] = (B^T column)[a]
        for w in range(lo, hi):
            for k in range(alpha):
                d[k] = rows[k][w - pad_left]
            _fwd(m, d, o)
            for a in range(alpha):
                tmp[a * wext + w] = o[a]
        # along W, one tile at a time, written in GEMM order
        for a in range(alpha):
            for j in range(tw):
                _fwd(m, tmp + a * wext + j * m, o)
                e = a * alpha
                for k in range(alpha):
                    v[(e + k) * plane + c * cols + col + j] = o[k]
    free(tmp)
    return 0


cdef inline int _output_job(const floating* mm, Py_ssize_t cols, floating* y, Py_ssize_t C,
                     Py_ssize_t OH, Py_ssize_t OW, int m, Py_ssize_t c, Py_ssize_t rl0,
                     Py_ssize_t rl1, Py_ssize_t r0, Py_ssize_t th, Py_ssize_t tw) noexcept nogil:
    cdef int alpha = m + 2
    cdef Py_ssize_t wt = tw * m, plane = C * cols
    cdef Py_ssize_t rl, n, h0, h, col, w, a, j, k, e
    cdef floating d[6]
    cdef floating o[6]
    cdef floating* rows[4]
    # OW sink cells receive the rows of edge tiles that fall past the output
    cdef floating* tmp = <floating*>calloc(alpha * wt + OW, sizeof(floating))
    cdef floating* sink = tmp + alpha * wt
    if tmp == NULL:
        return -1
    for rl in range(rl0, rl1):
        n = (r0 + rl) // th
        h0 = (r0 + rl) % th * m
        col = rl * tw
        # along W: tmp[a, j*m + q] = (A^T M[a, :])[q]
        for a in range(alpha):
            e = a * alpha
            for j in range(tw):
                for k in range(alpha):
                    d[k] = mm[(e + k) * plane + c * cols + col + j]
                _out(m, d, tmp + a * wt + j * m)
        # along H, whole output rows
        for k in range(m):
            h = h0 + k
            rows[k] = y + ((n * C + c) * OH + h) * OW if h < OH else sink
        for w in range(OW):
            for a in range(alpha):
                d[a] = tmp[a * wt + w]
            _out(m, d, o)
            for k in range(m):
                rows[k][w] = o[k]
    free(tmp)
    return 0


cdef inline int _adjoint_job(const floating* gy, Py_ssize_t C, Py_ssize_t OH, Py_ssize_t OW,
                      floating* dm, Py_ssize_t cols, int m, Py_ssize_t c, Py_ssize_t rl0,
                      Py_ssize_t rl1, Py_ssize_t r0, Py_ssize_t th,
                      Py_ssize_t tw) noexcept nogil:
    cdef int alpha = m + 2
    cdef Py_ssize_t wt = tw * m, plane = C * cols
    cdef Py_ssize_t rl, n, h0, h, col, w, a, j, k, e
    cdef floating d[6]
    cdef floating o[6]
    cdef const floating* rows[4]
    # columns past OW stay zero (the cropped part of the edge tiles); OW zeros stand in for
    # rows past the output
    cdef floating* tmp = <floating*>calloc(alpha * wt + OW, sizeof(floating))
    cdef floating* zero = tmp + alpha * wt
    if tmp == NULL:
        return -1
    for rl in range(rl0, rl1):
        n = (r0 + rl) // th
        h0 = (r0 + rl) % th * m
        col = rl * tw
        for k in range(m):
            h = h0 + k
            rows[k] = gy + ((n * C + c) * OH + h) * OW if h < OH else zero
        # along H: tmp[a, w] = (A gy[tile rows, w])[a]
        for w in range(OW):
            for k in range(m):
                d[k] = rows[k][w]
            _adj(m, d, o)
            for a in range(alpha):
                tmp[a * wt + w] = o[a]
        # along W, one tile at a time, written in GEMM order
        for a in range(alpha):
            e = a * alpha
            for j in range(tw):
                _adj(m, tmp + a * wt + j * m, o)
                for k in range(alpha):
                    dm[(e + k) * plane + c * cols + col + j] = o[k]
    free(tmp)
    return 0


# ---- parallel drivers: jobs are (channel, block of tile rows), >= 16 when possible; each
# job is called with a literal m, so the compiler specialises it (constant trip counts)

cdef inline Py_ssize_t _split(Py_ssize_t rows, Py_ssize_t channels) noexcept nogil:
    return max(1, min(rows, (16 + channels - 1) // channels))


cdef int _input_transform(const floating[:, :, :, ::1] x, floating[:, :, ::1] v, int m,
                          Py_ssize_t r0, Py_ssize_t pad_top, Py_ssize_t pad_left,
                          Py_ssize_t th, Py_ssize_t tw) noexcept nogil:
    cdef Py_ssize_t C = x.shape[1], cols = v.shape[2], rows = cols // tw
    cdef Py_ssize_t split = _split(rows, C), per = (rows + split - 1) // split
    cdef Py_ssize_t job, b
    cdef int err = 0
    for job in prange(C * split, schedule="static"):
        b = job % split
        if m == 2:
            err += _input_job(&x[0, 0, 0, 0], C, x.shape[2], x.shape[3], &v[0, 0, 0], cols,
                              2, job // split, b * per, min(rows, (b + 1) * per), r0,
                              pad_top, pad_left, th, tw)
        else:
            err += _input_job(&x[0, 0, 0, 0], C, x.shape[2], x.shape[3], &v[0, 0, 0], cols,
                              4, job // split, b * per, min(rows, (b + 1) * per), r0,
                              pad_top, pad_left, th, tw)
    return err


cdef int _output_transform(const floating[:, :, ::1] mm, floating[:, :, :, ::1] y, int m,
                           Py_ssize_t r0, Py_ssize_t th, Py_ssize_t tw) noexcept nogil:
    cdef Py_ssize_t C = y.shape[1], cols = mm.shape[2], rows = cols // tw
    cdef Py_ssize_t split = _split(rows, C), per = (rows + split - 1) // split
    cdef Py_ssize_t job, b
    cdef int err = 0
    for job in prange(C * split, schedule="static"):
        b = job % split
        if m == 2:
            err += _output_job(&mm[0, 0, 0], cols, &y[0, 0, 0, 0], C, y.shape[2], y.shape[3],
                               2, job // split, b * per, min(rows, (b + 1) * per), r0, th, tw)
        else:
            err += _output_job(&mm[0, 0, 0], cols, &y[0, 0, 0, 0], C, y.shape[2], y.shape[3],
                               4, job // split, b * per, min(rows, (b + 1) * per), r0, th, tw)
    return err


cdef int _output_adjoint(const floating[:, :, :, ::1] gy, floating[:, :, ::1] dm, int m,
                         Py_ssize_t r0, Py_ssize_t th, Py_ssize_t tw) noexcept nogil:
    cdef Py_ssize_t C = gy.shape[1], cols = dm.shape[2], rows = cols // tw
    cdef Py_ssize_t split = _split(rows, C), per = (rows + split - 1) // split
    cdef Py_ssize_t job, b
    cdef int err = 0
    for job in prange(C * split, schedule="static"):
        b = job % split
        if m == 2:
            err += _adjoint_job(&gy[0, 0, 0, 0], C, gy.shape[2], gy.shape[3], &dm[0, 0, 0],
                                cols, 2, job // split, b * per, min(rows, (b + 1) * per), r0,
                                th, tw)
        else:
            err += _adjoint_job(&gy[0, 0, 0, 0], C, gy.shape[2], gy.shape[3], &dm[0, 0, 0],
                                cols, 4, job // split, b * per, min(rows, (b + 1) * per), r0,
                                th, tw)
    return err


# ---- Python-level wrappers: validate, then dispatch on dtype

_REAL = (np.dtype(np.float32), np.dtype(np.float64))


def _check(op, m, image, image_name, gemm, gemm_name, r0, out_hw):
    """(th, tw) after checking arrays, m, shapes and the chunk's tile rows."""
    for name, a, nd in ((image_name, image, 4), (gemm_name, gemm, 3)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a numpy.ndarray, received "
                            f"{type(a).__name__}")
        if a.ndim != nd or a.dtype not in _REAL or not a.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be a C-contiguous {nd}-D float32 or float64 "
                             f"array, received shape {a.shape}, dtype {a.dtype}, "
                             f"C-contiguous {a.flags.c_contiguous}")
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

    x (N, C, H, W) unpadded; v (alpha*alpha, C, rows * tw) overwritten, alpha = m + 2;
    m 2 or 4; r0 the chunk's first tile row (image n * th + tile row i); pad_top, pad_left
    the offset of x inside the zero-padded input (negative crops); the tiles cover an
    out_h x out_w output (th = ceil(out_h / m), tw = ceil(out_w / m) per image).

    >>> v = np.empty((16, 1, 1)); input_transform(np.ones((1, 1, 4, 4)), v, 2, 0, 0, 0, 2, 2)
    >>> float(v[5, 0, 0])
    4.0
    """
    op = "cython winograd input_transform"
    th, tw = _check(op, m, x, "x", v, "v", r0, (out_h, out_w))
    cdef int err = 0
    if v.size == 0:
        return
    if x.dtype == np.float32:
        err = _input_transform[float](x, v, m, r0, pad_top, pad_left, th, tw)
    else:
        err = _input_transform[double](x, v, m, r0, pad_top, pad_left, th, tw)
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
    th, tw = _check(op, m, y, "y", mm, "mm", r0, y.shape[2:])
    cdef int err = 0
    if mm.size == 0:
        return
    if y.dtype == np.float32:
        err = _output_transform[float](mm, y, m, r0, th, tw)
    else:
        err = _output_transform[double](mm, y, m, r0, th, tw)
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
    th, tw = _check(op, m, gy, "gy", dm, "dm", r0, gy.shape[2:])
    cdef int err = 0
    if dm.size == 0:
        return
    if gy.dtype == np.float32:
        err = _output_adjoint[float](gy, dm, m, r0, th, tw)
    else:
        err = _output_adjoint[double](gy, dm, m, r0, th, tw)
    if err:
        raise MemoryError(f"{op}: could not allocate a scratch buffer")
