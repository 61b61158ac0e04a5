# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: language_level=3
"""Direct convolution: forward, grad-input and grad-weight as plain loops.

Arrays are C-contiguous 5-D (N, C, D, H, W) of one dtype (float32 or float64), see
kernels/backends.py; with ``pad=`` the input (or its gradient) is the unpadded one and the
kernels read zeros outside it, so no padded copy of the whole input is made.

Every kernel works on "wide" rows: an output plane is computed at the row pitch of its
source plane, so one tap is one long contiguous loop over a chunk of several output rows
(columns past the output width are computed and discarded).  Each job first copies its
input planes into a thread-private source buffer that adds the zero padding and splits
strides into phases, ``src[c, pd, ph, pw, i, j, k] = xpad[n, c, i*sd + pd, j*sh + ph,
k*sw + pw]``, after which tap (kd, kh, kw) reads phase ((kd*dd) % sd, ...) at offset
((kd*dd) // sd, ...) with unit stride; unpadded unit-stride inputs are read in place.  Taps
go four at a time into one accumulator pass (``acc[j] += a[j]*w0 + b[j]*w1 + ...``), so a
chunk (config.DIRECT_CHUNK elements, in L1 with the rows it reads) is loaded and stored once
per four taps.  The innermost loops have no reduction, so gcc vectorises them without -ffast-math.

OpenMP threads split independent outputs only:

* forward: (image, group, block of output channels); the source copy serves the block;
* grad-input: (image, group, block of input channels), as a gather: the transposed
  convolution, i.e. the correlation of the zero-padded output gradient with the flipped
  kernel, one input phase at a time (a non-finite weight thus also reaches the input cells
  next to the border that no window of that tap covers, as 0 * inf); only the cells inside
  the padding are written;
* grad-weight: (output channel, block of images) into a private partial result per block,
  summed after the loop; inside a block each tap keeps per-lane sums over the chunk (lanes
  past the output width are left out of the final sum), four images per pass.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from .threads cimport team
from libc.string cimport memcpy, memset

import numpy as np

from .. import config, plan


cdef struct Geo:
    Py_ssize_t c_in, c_out, cg, cout_g
    Py_ssize_t xd, xh, xw                  # spatial shape of x (or gx), unpadded
    Py_ssize_t pd_, ph_, pw_               # padded spatial shape
    Py_ssize_t lo[3]
    Py_ssize_t s[3]
    Py_ssize_t od, oh, ow                  # output spatial shape
    Py_ssize_t dp, hp, wp, psz, csz        # source (phase) plane extents, plane and channel size
    Py_ssize_t rows, cols                  # chunk: rows x cols of the output
    bint inplace                           # read x itself (unit stride, no padding)
    Py_ssize_t q[3]                        # grad-input: gy's offset in the padded gyp,
    Py_ssize_t eh, ew, esz                 # gyp's row and plane pitches


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """ceil(a / b) for b > 0 and any a (C division truncates towards zero)."""
    if a <= 0:
        return -((-a) // b)
    return (a + b - 1) // b


cdef inline Py_ssize_t _min(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b


cdef inline Py_ssize_t _max(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a > b else b


# ---- innermost loops

cdef void _taps(floating* acc, const floating* src, const Py_ssize_t* offs,
                const floating* wts, Py_ssize_t nt, Py_ssize_t jn) noexcept nogil:
    """acc[j] = sum over t < nt of src[offs[t] + j] * wts[t], for j < jn."""
    cdef Py_ssize_t r = nt - 4 * ((nt - 1) // 4), t, j
    cdef const floating* a = src + offs[0]
    cdef const floating* b
    cdef const floating* c
    cdef const floating* d
    cdef floating w0 = wts[0], w1, w2, w3
    if r == 1:
        for j in range(jn):
            acc[j] = a[j] * w0
    elif r == 2:
        b, w1 = src + offs[1], wts[1]
        for j in range(jn):
            acc[j] = a[j] * w0 + b[j] * w1
    elif r == 3:
        b, c, w1, w2 = src + offs[1], src + offs[2], wts[1], wts[2]
        for j in range(jn):
            acc[j] = a[j] * w0 + b[j] * w1 + c[j] * w2
    else:
        b, c, d = src + offs[1], src + offs[2], src + offs[3]
        w1, w2, w3 = wts[1], wts[2], wts[3]
        for j in range(jn):
            acc[j] = a[j] * w0 + b[j] * w1 + c[j] * w2 + d[j] * w3
    t = r
    while t < nt:
        a, b, c, d = src + offs[t], src + offs[t + 1], src + offs[t + 2], src + offs[t + 3]
        w0, w1, w2, w3 = wts[t], wts[t + 1], wts[t + 2], wts[t + 3]
        for j in range(jn):
            acc[j] += a[j] * w0 + b[j] * w1 + c[j] * w2 + d[j] * w3
        t += 4


cdef void _split(const floating* x, Py_ssize_t cg, const Geo* G, floating* dst) noexcept nogil:
    """dst[ci, pd, ph, pw, i, j, k] = xpad[ci, i*sd + pd, j*sh + ph, k*sw + pw], where xpad
    is the (cg, xd, xh, xw) block at x padded by lo below, 0 outside it."""
    cdef Py_ssize_t sd = G.s[0], sh = G.s[1], sw = G.s[2]
    cdef Py_ssize_t ci, pd, ph, pw, i, j, k, k0, k1, z, h, t = 0
    cdef const floating* row
    cdef floating* out
    memset(dst, 0, cg * G.csz * sizeof(floating))
    for ci in range(cg):
        for pd in range(sd):
            for ph in range(sh):
                for pw in range(sw):
                    # columns k0 <= k < k1 fall inside x
                    k0 = _min(G.wp, _max(0, _ceil_div(G.lo[2] - pw, sw)))
                    k1 = _min(G.wp, _max(k0, _ceil_div(G.xw + G.lo[2] - pw, sw)))
                    for i in range(G.dp):
                        for j in range(G.hp):
                            z = i * sd + pd - G.lo[0]
                            h = j * sh + ph - G.lo[1]
                            if 0 <= z < G.xd and 0 <= h < G.xh and k1 > k0:
                                row = (x + ((ci * G.xd + z) * G.xh + h) * G.xw
                                       + k0 * sw + pw - G.lo[2])
                                out = dst + t + k0
                                if sw == 1:
                                    memcpy(out, row, (k1 - k0) * sizeof(floating))
                                elif sw == 2:       # a constant stride vectorises
                                    for k in range(k1 - k0):
                                        out[k] = row[2 * k]
                                else:
                                    for k in range(k1 - k0):
                                        out[k] = row[k * sw]
                            t += G.wp


# ---- one job each

cdef void _forward_job(const floating* x, const floating* wf, floating* y,
                       const Py_ssize_t* offs, Py_ssize_t taps, const Geo* G, Py_ssize_t n,
                       Py_ssize_t g, Py_ssize_t co0, Py_ssize_t co1, floating* buf,
                       floating* acc) noexcept nogil:
    """y[n, co0:co1] from the input planes of group g."""
    cdef Py_ssize_t xsz = G.xd * G.xh * G.xw, co, od, oh0, ow0, nr, nc, r
    cdef const floating* src = x + (n * G.c_in + g * G.cg) * xsz
    cdef floating* yrow
    if not G.inplace:
        _split(src, G.cg, G, buf)
        src = buf
    for co in range(co0, co1):
        for od in range(G.od):
            oh0 = 0
            while oh0 < G.oh:
                nr = _min(G.rows, G.oh - oh0)
                ow0 = 0
                while ow0 < G.ow:
                    nc = _min(G.cols, G.ow - ow0)
                    _taps(acc, src + (od * G.hp + oh0) * G.wp + ow0, offs, wf + co * taps,
                          taps, (nr - 1) * G.wp + nc)
                    yrow = y + (((n * G.c_out + co) * G.od + od) * G.oh + oh0) * G.ow + ow0
                    for r in range(nr):
                        memcpy(yrow + r * G.ow, acc + r * G.wp, nc * sizeof(floating))
                    ow0 += nc
                oh0 += nr


cdef void _grad_input_job(const floating* gy, const floating* wf, floating* gx,
                          const Py_ssize_t* toff, const Py_ssize_t* tidx,
                          const Py_ssize_t* pstart, Py_ssize_t ktaps, const Geo* G,
                          Py_ssize_t n, Py_ssize_t g, Py_ssize_t ci0, Py_ssize_t ci1,
                          floating* gyp, floating* acc, floating* wts) noexcept nogil:
    """gx[n, g*cg + ci0 : g*cg + ci1] gathered from the zero-padded gy[n, group g] (gyp).

    Geometry: the padded input (extents pd_, ph_, pw_) is split into phases of extents
    x* = ceil(padded / s); gyp has extents e* = q* + x* with gy placed at offset q* =
    (k - 1) * dilation // s, so that every tap of a phase reads gyp at a fixed offset, and
    the chunk of a phase is (rows, cols)."""
    cdef Py_ssize_t sd = G.s[0], sh = G.s[1], sw = G.s[2]
    cdef Py_ssize_t nph = sd * sh * sw, ntap = pstart[nph]
    cdef Py_ssize_t eh = G.eh, ew = G.ew, esz = G.esz
    cdef Py_ssize_t osz = G.od * G.oh * G.ow, xsz = G.xd * G.xh * G.xw
    cdef Py_ssize_t col, i, j, ci, c, t, p, pd, ph, pw, nd, nh, nw, t0, t1, k0, k1
    cdef Py_ssize_t z, h, oh0, ow0, nr, nc, c0, c1, r, k, jn
    cdef const floating* gsrc
    cdef const floating* arow
    cdef floating* grow
    memset(gyp, 0, G.cout_g * esz * sizeof(floating))
    for col in range(G.cout_g):
        gsrc = gy + (n * G.c_out + g * G.cout_g + col) * osz
        for i in range(G.od):
            for j in range(G.oh):
                memcpy(gyp + col * esz + ((G.q[0] + i) * eh + G.q[1] + j) * ew + G.q[2],
                       gsrc + (i * G.oh + j) * G.ow, G.ow * sizeof(floating))
    for ci in range(ci0, ci1):
        c = g * G.cg + ci
        for t in range(ntap):
            wts[t] = wf[(g * G.cout_g * G.cg + ci) * ktaps + tidx[t]]
        for p in range(nph):
            pd, ph, pw = p // (sh * sw), (p // sw) % sh, p % sw
            nd = (G.pd_ - pd + sd - 1) // sd
            nh = (G.ph_ - ph + sh - 1) // sh
            nw = (G.pw_ - pw + sw - 1) // sw
            t0, t1 = pstart[p], pstart[p + 1]
            # padded cells u = i*s + p, written where u - lo falls inside gx
            k0 = _max(0, _ceil_div(G.lo[2] - pw, sw))
            k1 = _max(k0, _ceil_div(G.xw + G.lo[2] - pw, sw))
            for i in range(nd):
                z = i * sd + pd - G.lo[0]
                if z < 0 or z >= G.xd:
                    continue
                oh0 = 0
                while oh0 < nh:
                    nr = _min(G.rows, nh - oh0)
                    ow0 = 0
                    while ow0 < nw:
                        nc = _min(G.cols, nw - ow0)
                        c0, c1 = _max(k0 - ow0, 0), _min(k1 - ow0, nc)
                        jn = (nr - 1) * ew + nc
                        if t1 > t0:
                            _taps(acc, gyp + (i * eh + oh0) * ew + ow0, toff + t0, wts + t0,
                                  t1 - t0, jn)
                        else:   # no tap reaches this phase
                            memset(acc, 0, jn * sizeof(floating))
                        for r in range(nr):
                            h = (oh0 + r) * sh + ph - G.lo[1]
                            if h < 0 or h >= G.xh or c1 <= c0:
                                continue
                            arow = acc + r * ew + c0
                            grow = (gx + (n * G.c_in + c) * xsz + (z * G.xh + h) * G.xw
                                    + (ow0 + c0) * sw + pw - G.lo[2])
                            if sw == 1:
                                memcpy(grow, arow, (c1 - c0) * sizeof(floating))
                            elif sw == 2:
                                for k in range(c1 - c0):
                                    grow[2 * k] = arow[k]
                            else:
                                for k in range(c1 - c0):
                                    grow[k * sw] = arow[k]
                        ow0 += nc
                    oh0 += nr


cdef void _grad_weight_job(const floating* gy, const floating* x, floating* part,
                           const Py_ssize_t* offs, Py_ssize_t taps, const Geo* G,
                           Py_ssize_t co, Py_ssize_t n0, Py_ssize_t n1, floating* acc,
                           floating* gyw, floating* buf) noexcept nogil:
    """part[t] = gradient of tap t of w[co] from images n0..n1-1.  acc[t, j]: per-lane sums
    over a chunk of ``span`` lanes; gyw[k]: gy of the k-th image of four at the source's row
    pitch (0 past the output width)."""
    cdef Py_ssize_t span = (G.rows - 1) * G.wp + G.cols
    cdef Py_ssize_t xsz = G.xd * G.xh * G.xw, osz = G.od * G.oh * G.ow
    cdef Py_ssize_t g = co // G.cout_g, n, m, k, od, oh0, ow0, nr, nc, r, j0, jn, t, j, o
    cdef const floating* src[4]
    cdef const floating* a0
    cdef const floating* a1
    cdef const floating* a2
    cdef const floating* a3
    cdef const floating* g0
    cdef const floating* g1
    cdef const floating* g2
    cdef const floating* g3
    cdef floating* at
    cdef double total
    memset(acc, 0, taps * span * sizeof(floating))
    memset(gyw, 0, 4 * span * sizeof(floating))
    n = n0
    while n < n1:
        m = _min(4, n1 - n)
        for k in range(m):
            src[k] = x + ((n + k) * G.c_in + g * G.cg) * xsz
            if not G.inplace:
                _split(src[k], G.cg, G, buf + k * G.cg * G.csz)
                src[k] = buf + k * G.cg * G.csz
        for od in range(G.od):
            oh0 = 0
            while oh0 < G.oh:
                nr = _min(G.rows, G.oh - oh0)
                ow0 = 0
                while ow0 < G.ow:
                    nc = _min(G.cols, G.ow - ow0)
                    for k in range(m):
                        for r in range(nr):
                            memcpy(gyw + k * span + r * G.wp,
                                   gy + ((n + k) * G.c_out + co) * osz
                                   + (od * G.oh + oh0 + r) * G.ow + ow0, nc * sizeof(floating))
                    j0 = (od * G.hp + oh0) * G.wp + ow0
                    jn = (nr - 1) * G.wp + nc
                    for t in range(taps):
                        at = acc + t * span
                        o = j0 + offs[t]
                        if m == 4:
                            g0, g1, g2, g3 = gyw, gyw + span, gyw + 2 * span, gyw + 3 * span
                            a0, a1, a2, a3 = src[0] + o, src[1] + o, src[2] + o, src[3] + o
                            for j in range(jn):
                                at[j] += (g0[j] * a0[j] + g1[j] * a1[j] + g2[j] * a2[j]
                                          + g3[j] * a3[j])
                        else:
                            for k in range(m):
                                a0, g0 = src[k] + o, gyw + k * span
                                for j in range(jn):
                                    at[j] += g0[j] * a0[j]
                    ow0 += nc
                oh0 += nr
        n += m
    for t in range(taps):      # the lanes inside the output width
        total = 0.0
        for r in range(G.rows):
            for j in range(G.cols):
                total += acc[t * span + r * G.wp + j]
        part[t] = <floating>total


# ---- parallel drivers (called with the GIL, which they release around the prange)

cdef void _forward(const floating[::1] x, const floating[::1] wf, floating[::1] y,
                   const Py_ssize_t[::1] offs, const Geo* G, Py_ssize_t n_batch,
                   Py_ssize_t groups, Py_ssize_t nblk, floating[:, ::1] buf,
                   floating[:, ::1] acc, int nthreads) noexcept:
    cdef Py_ssize_t per_n = groups * nblk, job, n, g, b, tid
    for job in prange(n_batch * per_n, schedule="dynamic", num_threads=nthreads, nogil=True):
        tid = threadid()
        n = job // per_n
        g = (job - n * per_n) // nblk
        b = job - n * per_n - g * nblk
        _forward_job(&x[0], &wf[0], &y[0], &offs[0], offs.shape[0], G, n, g,
                     g * G.cout_g + b * G.cout_g // nblk, g * G.cout_g + (b + 1) * G.cout_g // nblk,
                     &buf[tid, 0], &acc[tid, 0])


cdef void _grad_input(const floating[::1] gy, const floating[::1] wf, floating[::1] gx,
                      const Py_ssize_t[::1] toff, const Py_ssize_t[::1] tidx,
                      const Py_ssize_t[::1] pstart, Py_ssize_t ktaps, const Geo* G,
                      Py_ssize_t n_batch, Py_ssize_t groups, Py_ssize_t nblk,
                      floating[:, ::1] gyp, floating[:, ::1] acc, floating[:, ::1] wts,
                      int nthreads) noexcept:
    cdef Py_ssize_t per_n = groups * nblk, job, n, g, b, tid
    for job in prange(n_batch * per_n, schedule="dynamic", num_threads=nthreads, nogil=True):
        tid = threadid()
        n = job // per_n
        g = (job - n * per_n) // nblk
        b = job - n * per_n - g * nblk
        _grad_input_job(&gy[0], &wf[0], &gx[0], &toff[0], &tidx[0], &pstart[0], ktaps, G, n, g,
                        b * G.cg // nblk, (b + 1) * G.cg // nblk,
                        &gyp[tid, 0], &acc[tid, 0], &wts[tid, 0])


cdef void _grad_weight(const floating[::1] gy, const floating[::1] x, floating[:, ::1] part,
                       const Py_ssize_t[::1] offs, const Geo* G, Py_ssize_t n_batch,
                       Py_ssize_t nblk, floating[:, ::1] acc, floating[:, ::1] gyw,
                       floating[:, ::1] buf, int nthreads) noexcept:
    cdef Py_ssize_t job, co, b, tid
    for job in prange(G.c_out * nblk, schedule="dynamic", num_threads=nthreads, nogil=True):
        tid = threadid()
        co = job // nblk
        b = job - co * nblk
        _grad_weight_job(&gy[0], &x[0], &part[b, co * offs.shape[0]], &offs[0], offs.shape[0],
                         G, co, b * n_batch // nblk, (b + 1) * n_batch // nblk,
                         &acc[tid, 0], &gyw[tid, 0], &buf[tid, 0])


# ---- Python-level helpers and wrappers: validate, lay out the taps, dispatch on dtype

cdef Geo _geometry(x_shape, xps, lo, w_shape, o_shape, s, d, groups, Py_ssize_t chunk,
                  offsets):
    """The source geometry shared by forward and grad-weight (kernels.plan.direct_source; see
    the module docstring); the tap offsets go into the list ``offsets``."""
    cdef Geo G
    geo, offs = plan.direct_source(x_shape, xps, w_shape, o_shape, s, d, chunk)
    offsets.append(offs.astype(np.intp, copy=False))
    G.c_in, G.c_out, G.cg = x_shape[1], w_shape[0], w_shape[1]
    G.cout_g = G.c_out // groups
    G.xd, G.xh, G.xw = x_shape[2:]
    G.pd_, G.ph_, G.pw_ = xps
    G.lo[0], G.lo[1], G.lo[2] = lo
    G.s[0], G.s[1], G.s[2] = s
    G.od, G.oh, G.ow = o_shape[2:]
    G.inplace = geo["inplace"]
    G.dp, G.hp, G.wp = geo["dp"], geo["hp"], geo["wp"]
    G.psz, G.csz = geo["psz"], geo["csz"]
    G.rows, G.cols = geo["rows"], geo["cols"]
    return G


def direct_forward(xp, w, y, sd, sh, sw, dd, dh, dw, groups, pad=None):
    """y = cross-correlation of the padded input xp (N, C, D, H, W) with
    w (C_out, C/groups, KD, KH, KW); y (N, C_out, OD, OH, OW) is overwritten.  With
    ``pad`` (three (lo, hi) pairs) xp is the unpadded input and the kernel pads it."""
    dt, s, d, groups, lo, xps = plan.conv_call("cython direct_forward", ("xp", "w", "y"),
                                               (xp, w, y), (sd, sh, sw, dd, dh, dw, groups),
                                               pad)
    cdef int nthreads = team()
    offsets = []
    cdef Geo G = _geometry(xp.shape, xps, lo, w.shape, y.shape, s, d, groups,
                           config.DIRECT_CHUNK, offsets)
    offs = offsets[0]
    nblk = plan.direct_blocks(xp.shape[0] * groups, G.cout_g, nthreads)
    buf = np.empty((nthreads, 1 if G.inplace else G.cg * G.csz), dt)
    acc = np.empty((nthreads, (G.rows - 1) * G.wp + G.cols), dt)
    if dt == np.float32:
        _forward[float](xp.reshape(-1), w.reshape(-1), y.reshape(-1), offs, &G, xp.shape[0],
                        groups, nblk, buf, acc, nthreads)
    else:
        _forward[double](xp.reshape(-1), w.reshape(-1), y.reshape(-1), offs, &G, xp.shape[0],
                         groups, nblk, buf, acc, nthreads)


def direct_grad_input(gy, w, gxp, sd, sh, sw, dd, dh, dw, groups, pad=None):
    """gxp (N, C, D, H, W) = gradient of the convolution w.r.t. its padded input, from
    gy (N, C_out, OD, OH, OW) and w (C_out, C/groups, KD, KH, KW); gxp is overwritten.  With
    ``pad`` gxp is the gradient w.r.t. the unpadded input."""
    dt, s, d, groups, lo, xps = plan.conv_call("cython direct_grad_input", ("gy", "w", "gxp"),
                                               (gy, w, gxp), (sd, sh, sw, dd, dh, dw, groups),
                                               pad, xi=2, wi=1, yi=0)
    cdef int nthreads = team()
    cdef Geo G
    G.c_in, G.c_out, G.cg = gxp.shape[1], w.shape[0], w.shape[1]
    G.cout_g = G.c_out // groups
    G.xd, G.xh, G.xw = gxp.shape[2:]
    G.pd_, G.ph_, G.pw_ = xps
    G.lo[0], G.lo[1], G.lo[2] = lo
    G.s[0], G.s[1], G.s[2] = s
    G.od, G.oh, G.ow = gy.shape[2:]
    # the padded input's stride phases and the zero-padded gy they read (_grad_input_job):
    # the tap table of kernels.plan, with weight columns of the (co, ci) rows of a group
    cog, ktaps = G.cout_g, w[0, 0].size
    t = plan.direct_grad_input_taps(w.shape, s, d, xps, groups, G.cg * ktaps)
    G.q[0], G.q[1], G.q[2] = t["q"]
    G.eh, G.ew, G.esz = t["eh"], t["ew"], t["esz"]
    G.rows, G.cols = t["rows"], t["cols"]
    esz, ew = t["esz"], t["ew"]
    toff = t["toff"].astype(np.intp, copy=False)
    tidx = t["tidx"].astype(np.intp, copy=False)
    pstart = t["pstart"].astype(np.intp, copy=False)
    nblk = plan.direct_blocks(gxp.shape[0] * groups, G.cg, nthreads)
    gyp = np.empty((nthreads, cog * esz), dt)
    acc = np.empty((nthreads, (G.rows - 1) * ew + G.cols), dt)
    wts = np.empty((nthreads, cog * ktaps), dt)
    if dt == np.float32:
        _grad_input[float](gy.reshape(-1), w.reshape(-1), gxp.reshape(-1), toff, tidx, pstart,
                           ktaps, &G, gxp.shape[0], groups, nblk, gyp, acc, wts, nthreads)
    else:
        _grad_input[double](gy.reshape(-1), w.reshape(-1), gxp.reshape(-1), toff, tidx, pstart,
                            ktaps, &G, gxp.shape[0], groups, nblk, gyp, acc, wts, nthreads)


def direct_grad_weight(gy, xp, gw, sd, sh, sw, dd, dh, dw, groups, pad=None):
    """gw (C_out, C/groups, KD, KH, KW) = gradient of the convolution w.r.t. its weight, from
    gy (N, C_out, OD, OH, OW) and the padded input xp (N, C, D, H, W); gw is overwritten.
    With ``pad`` xp is the unpadded input and the kernel pads it."""
    dt, s, d, groups, lo, xps = plan.conv_call("cython direct_grad_weight", ("gy", "xp", "gw"),
                                               (gy, xp, gw), (sd, sh, sw, dd, dh, dw, groups),
                                               pad, xi=1, wi=2, yi=0)
    cdef int nthreads = team()
    taps = gw[0].size
    offsets = []
    cdef Geo G = _geometry(xp.shape, xps, lo, gw.shape, gy.shape, s, d, groups,
                           plan.grad_weight_chunk(taps), offsets)
    offs = offsets[0]
    nblk = plan.direct_blocks(G.c_out, xp.shape[0], nthreads)
    # one partial result per block of images, summed here (gw itself when there is one)
    part = gw.reshape(1, -1) if nblk == 1 else np.empty((nblk, gw.size), dt)
    span = (G.rows - 1) * G.wp + G.cols
    acc = np.empty((nthreads, taps * span), dt)
    gyw = np.empty((nthreads, 4 * span), dt)
    buf = np.empty((nthreads, 1 if G.inplace else 4 * G.cg * G.csz), dt)
    if dt == np.float32:
        _grad_weight[float](gy.reshape(-1), xp.reshape(-1), part, offs, &G, xp.shape[0], nblk,
                            acc, gyw, buf, nthreads)
    else:
        _grad_weight[double](gy.reshape(-1), xp.reshape(-1), part, offs, &G, xp.shape[0], nblk,
                             acc, gyw, buf, nthreads)
    if nblk > 1:
        np.sum(part, axis=0, out=gw.reshape(-1))
