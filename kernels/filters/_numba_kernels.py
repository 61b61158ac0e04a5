"""Numba kernels of kernels.filters (``@njit(nogil=True, cache=True)``, run on threads by
kernels._numba.threads.run_jobs over blocks of independent output lines).

Linear filters run as 1-D passes over one axis of an array viewed as (outer, n, inner):
``inner == 1`` (the last axis) goes through a padded copy of each line, other axes add whole
contiguous rows of ``inner`` elements (vectorised across the row).  ``idx`` is the extended
line's source index (kernels.filters._params.extend_index; -1 means cval).  Sums follow
scipy.ndimage's order (centre first, then the pairs from the outside in), so float64 passes
reproduce scipy's results bit for bit and integer images truncate exactly as scipy's do.

Median kernels read a padded, flattened copy ``xp`` of the image: output line ``l`` starts at
``lbase[l]`` in ``xp`` and at ``l * width`` in the flat output, and window element ``e`` of
output element ``j`` is ``xp[lbase[l] + j + offs[e]]``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

SYM, ANTI, GENERAL = 1, -1, 0


@njit(nogil=True, cache=True)
def _block(b, nblocks, total):
    return b * total // nblocks, (b + 1) * total // nblocks


# --------------------------------------------------------------------------------------
# linear 1-D passes
# --------------------------------------------------------------------------------------

@njit(nogil=True, cache=True)
def corr_last(x, y, w, idx, cval, sym, nblocks, first, step):
    """y[r, j] = sum_k w[k] * ext(x[r])[j + k] over rows of a 2-D (rows, n) array."""
    rows, n = x.shape
    K = w.shape[0]
    c = K // 2
    m = idx.shape[0]
    buf = np.empty(m, dtype=x.dtype)
    for b in range(first, nblocks, step):
        r0, r1 = _block(b, nblocks, rows)
        for r in range(r0, r1):
            src = x[r]
            out = y[r]
            for j in range(c):
                s = idx[j]
                buf[j] = src[s] if s >= 0 else cval
            buf[c:c + n] = src
            for j in range(c + n, m):
                s = idx[j]
                buf[j] = src[s] if s >= 0 else cval
            if sym == SYM:
                wc = w[c]
                for j in range(n):
                    out[j] = buf[j + c] * wc
                k = c
                while k >= 2:                     # two pairs a sweep, scipy's order kept
                    wk = w[c - k]
                    wk1 = w[c - k + 1]
                    for j in range(n):
                        out[j] = ((out[j] + (buf[j + c - k] + buf[j + c + k]) * wk)
                                  + (buf[j + c - k + 1] + buf[j + c + k - 1]) * wk1)
                    k -= 2
                if k == 1:
                    wk = w[c - 1]
                    for j in range(n):
                        out[j] += (buf[j + c - 1] + buf[j + c + 1]) * wk
            elif sym == ANTI:
                wc = w[c]
                for j in range(n):
                    out[j] = buf[j + c] * wc
                for k in range(c, 0, -1):
                    wk = w[c - k]
                    for j in range(n):
                        out[j] += (buf[j + c - k] - buf[j + c + k]) * wk
            else:
                wl = w[K - 1]
                for j in range(n):
                    out[j] = buf[j + K - 1] * wl
                for k in range(K - 1):
                    wk = w[k]
                    for j in range(n):
                        out[j] += buf[j + k] * wk


@njit(nogil=True, cache=True)
def corr_mid(x, y, w, idx, cval, sym, nblocks, first, step):
    """y[o, i, :] = sum_k w[k] * x[o, idx[i + k], :] over a 3-D (outer, n, inner) array."""
    outer, n, inner = x.shape
    K = w.shape[0]
    c = K // 2
    cv = np.full(inner, cval, dtype=x.dtype)
    total = outer * n
    for b in range(first, nblocks, step):
        l0, l1 = _block(b, nblocks, total)
        for line in range(l0, l1):
            o = line // n
            i = line - o * n
            out = y[o, i]
            if sym == SYM or sym == ANTI:
                s = idx[i + c]
                a = x[o, s] if s >= 0 else cv
                wc = w[c]
                for t in range(inner):
                    out[t] = a[t] * wc
                k = c
                while k >= 2 and sym == SYM:       # two pairs a sweep: half the out traffic
                    s1 = idx[i + c - k]
                    s2 = idx[i + c + k]
                    s3 = idx[i + c - k + 1]
                    s4 = idx[i + c + k - 1]
                    a1 = x[o, s1] if s1 >= 0 else cv
                    a2 = x[o, s2] if s2 >= 0 else cv
                    b1 = x[o, s3] if s3 >= 0 else cv
                    b2 = x[o, s4] if s4 >= 0 else cv
                    wk = w[c - k]
                    wk1 = w[c - k + 1]
                    for t in range(inner):
                        out[t] = (out[t] + (a1[t] + a2[t]) * wk) + (b1[t] + b2[t]) * wk1
                    k -= 2
                while k >= 1:
                    s1 = idx[i + c - k]
                    s2 = idx[i + c + k]
                    a1 = x[o, s1] if s1 >= 0 else cv
                    a2 = x[o, s2] if s2 >= 0 else cv
                    wk = w[c - k]
                    if sym == SYM:
                        for t in range(inner):
                            out[t] += (a1[t] + a2[t]) * wk
                    else:
                        for t in range(inner):
                            out[t] += (a1[t] - a2[t]) * wk
                    k -= 1
            else:
                s = idx[i + K - 1]
                a = x[o, s] if s >= 0 else cv
                wl = w[K - 1]
                for t in range(inner):
                    out[t] = a[t] * wl
                for k in range(K - 1):
                    s = idx[i + k]
                    a = x[o, s] if s >= 0 else cv
                    wk = w[k]
                    for t in range(inner):
                        out[t] += a[t] * wk


@njit(nogil=True, cache=True)
def box_last(x, y, idx, cval, size, nblocks, first, step):
    """Running mean of ``size`` along rows of (rows, n), in float64 with scipy's arithmetic
    (``acc += new - old``; ``out = acc / size``)."""
    rows, n = x.shape
    m = idx.shape[0]
    buf = np.empty(m, dtype=np.float64)
    inv = float(size)
    for b in range(first, nblocks, step):
        r0, r1 = _block(b, nblocks, rows)
        for r in range(r0, r1):
            src = x[r]
            out = y[r]
            for j in range(m):
                s = idx[j]
                buf[j] = src[s] if s >= 0 else cval
            acc = 0.0
            for j in range(size):
                acc += buf[j]
            out[0] = acc / inv
            for j in range(1, n):
                acc += buf[j + size - 1] - buf[j - 1]
                out[j] = acc / inv


@njit(nogil=True, cache=True)
def box_mid(x, y, idx, cval, size, nblocks, first, step):
    """Running mean of ``size`` along axis 1 of (outer, n, inner), rows at a time; each job
    owns a band of ``inner`` columns of one ``o`` and runs down the axis."""
    outer, n, inner = x.shape
    band = 256
    nbands = (inner + band - 1) // band
    acc = np.empty(band, dtype=np.float64)
    inv = float(size)
    total = outer * nbands
    for b in range(first, nblocks, step):
        l0, l1 = _block(b, nblocks, total)
        for job in range(l0, l1):
            o = job // nbands
            t0 = (job - o * nbands) * band
            t1 = min(inner, t0 + band)
            nt = t1 - t0
            for t in range(nt):
                acc[t] = 0.0
            for k in range(size):
                s = idx[k]
                if s >= 0:
                    a = x[o, s]
                    for t in range(nt):
                        acc[t] += a[t0 + t]
                else:
                    for t in range(nt):
                        acc[t] += cval
            out = y[o, 0]
            for t in range(nt):
                out[t0 + t] = acc[t] / inv
            for i in range(1, n):
                s_new = idx[i + size - 1]
                s_old = idx[i - 1]
                out = y[o, i]
                if s_new >= 0 and s_old >= 0:
                    a_new = x[o, s_new]
                    a_old = x[o, s_old]
                    for t in range(nt):
                        acc[t] += a_new[t0 + t] - a_old[t0 + t]
                        out[t0 + t] = acc[t] / inv
                else:
                    for t in range(nt):
                        v_new = x[o, s_new, t0 + t] if s_new >= 0 else cval
                        v_old = x[o, s_old, t0 + t] if s_old >= 0 else cval
                        acc[t] += v_new - v_old
                        out[t0 + t] = acc[t] / inv


# --------------------------------------------------------------------------------------
# median
# --------------------------------------------------------------------------------------

@njit(nogil=True, cache=True, inline="always")
def _lo(a, b):
    return a if a < b else b          # not min(): this form vectorises (LLVM select)


@njit(nogil=True, cache=True, inline="always")
def _hi(a, b):
    return b if a < b else a


@njit(nogil=True, cache=True)
def median3x3(xp, y, lbase, width, roffs, nblocks, first, step):
    """Exact 3x3 median: sort every column triple once (shared by the three windows that
    contain it), then median = med3(max of the lows, med3 of the mids, min of the highs)."""
    lines = lbase.shape[0]
    lo = np.empty(width + 2, dtype=xp.dtype)
    mi = np.empty(width + 2, dtype=xp.dtype)
    hi = np.empty(width + 2, dtype=xp.dtype)
    r0o, r1o, r2o = roffs[0], roffs[1], roffs[2]
    for b in range(first, nblocks, step):
        l0, l1 = _block(b, nblocks, lines)
        for line in range(l0, l1):
            base = lbase[line]
            p0 = base + r0o
            p1 = base + r1o
            p2 = base + r2o
            for j in range(width + 2):
                a = xp[p0 + j]
                bb = xp[p1 + j]
                c = xp[p2 + j]
                t = _lo(a, bb)
                bb = _hi(a, bb)
                a = t
                t = _lo(bb, c)
                c = _hi(bb, c)
                bb = t
                t = _lo(a, bb)
                bb = _hi(a, bb)
                lo[j] = t
                mi[j] = bb
                hi[j] = c
            ob = line * width
            for j in range(width):
                mx = _hi(_hi(lo[j], lo[j + 1]), lo[j + 2])
                mn = _lo(_lo(hi[j], hi[j + 1]), hi[j + 2])
                p, q, r = mi[j], mi[j + 1], mi[j + 2]
                md = _hi(_lo(p, q), _lo(_hi(p, q), r))
                y[ob + j] = _hi(_lo(mx, md), _lo(_hi(mx, md), mn))


@njit(nogil=True, cache=True)
def median_network(xp, y, lbase, width, offs, ca, cb, ckind, out_wire, nblocks, first, step):
    """Median by a pruned sorting network, run across a chunk of pixels at a time: wire e of
    pixel t lives in buf[e, t]; comparator i orders wires (ca[i], cb[i]) (ckind 1: only its
    min is used later, 2: only its max)."""
    lines = lbase.shape[0]
    E = offs.shape[0]
    C = ca.shape[0]
    CH = 64
    buf = np.empty((E, CH), dtype=xp.dtype)
    for b in range(first, nblocks, step):
        l0, l1 = _block(b, nblocks, lines)
        for line in range(l0, l1):
            base = lbase[line]
            ob = line * width
            for j0 in range(0, width, CH):
                nt = min(CH, width - j0)
                for e in range(E):
                    src = base + j0 + offs[e]
                    row = buf[e]
                    for t in range(nt):
                        row[t] = xp[src + t]
                for i in range(C):
                    a = ca[i]
                    bw = cb[i]
                    k = ckind[i]
                    # `u if u < v else v` (not min/max) is what LLVM vectorises here
                    if k == 0:
                        for t in range(nt):
                            u = buf[a, t]
                            v = buf[bw, t]
                            buf[a, t] = u if u < v else v
                            buf[bw, t] = v if u < v else u
                    elif k == 1:
                        for t in range(nt):
                            u = buf[a, t]
                            v = buf[bw, t]
                            buf[a, t] = u if u < v else v
                    else:
                        for t in range(nt):
                            u = buf[a, t]
                            v = buf[bw, t]
                            buf[bw, t] = v if u < v else u
                res = buf[out_wire]
                for t in range(nt):
                    y[ob + j0 + t] = res[t]


@njit(nogil=True, cache=True)
def median_hist(xp, y, lbase, width, offs, rem, add, rank, nblocks, first, step):
    """uint8 median by a sliding 256-bin histogram along each line (Huang): moving one
    element right removes the ``rem`` offsets of the previous window and adds the ``add``
    offsets of the new one; the median moves by the few bins it has to, tracking the count
    of elements below it."""
    lines = lbase.shape[0]
    hist = np.zeros(256, dtype=np.int64)
    for b in range(first, nblocks, step):
        l0, l1 = _block(b, nblocks, lines)
        for line in range(l0, l1):
            base = lbase[line]
            ob = line * width
            hist[:] = 0
            for e in range(offs.shape[0]):
                hist[xp[base + offs[e]]] += 1
            m = 0
            lt = 0
            while lt + hist[m] <= rank:
                lt += hist[m]
                m += 1
            y[ob] = m
            for j in range(1, width):
                p = base + j
                for e in range(rem.shape[0]):
                    v = np.int64(xp[p - 1 + rem[e]])
                    hist[v] -= 1
                    if v < m:
                        lt -= 1
                for e in range(add.shape[0]):
                    v = np.int64(xp[p + add[e]])
                    hist[v] += 1
                    if v < m:
                        lt += 1
                while lt > rank:
                    m -= 1
                    lt -= hist[m]
                while lt + hist[m] <= rank:
                    lt += hist[m]
                    m += 1
                y[ob + j] = m


@njit(nogil=True, cache=True)
def median_select(xp, y, lbase, width, offs, rank, nblocks, first, step):
    """Median by selection (Wirth's quickselect) of each window's copy, as scipy does, run
    on threads."""
    lines = lbase.shape[0]
    E = offs.shape[0]
    a = np.empty(E, dtype=xp.dtype)
    for b in range(first, nblocks, step):
        l0, l1 = _block(b, nblocks, lines)
        for line in range(l0, l1):
            base = lbase[line]
            ob = line * width
            for j in range(width):
                p = base + j
                for e in range(E):
                    a[e] = xp[p + offs[e]]
                lo = 0
                hi = E - 1
                while lo < hi:
                    piv = a[rank]
                    i = lo
                    k = hi
                    while True:
                        while a[i] < piv:
                            i += 1
                        while piv < a[k]:
                            k -= 1
                        if i <= k:
                            t = a[i]
                            a[i] = a[k]
                            a[k] = t
                            i += 1
                            k -= 1
                        if i > k:
                            break
                    if k < rank:
                        lo = i
                    if rank < i:
                        hi = k
                y[ob + j] = a[rank]


@njit(nogil=True, cache=True)
def _sort_small(a, n):
    for i in range(1, n):
        v = a[i]
        k = i - 1
        while k >= 0 and a[k] > v:
            a[k + 1] = a[k]
            k -= 1
        a[k + 1] = v


@njit(nogil=True, cache=True)
def median_sorted(xp, y, lbase, width, coffs, kw, rank, nblocks, first, step):
    """Median of full box windows by a sorted window that slides along each line: every
    window column (the ``coffs`` offsets at one position of the last axis) is sorted once per
    line; a step drops the leaving column from the sorted window and merges the entering one
    in, in one linear pass whose branches mostly go one way (S and T alternate).  No NaNs:
    they break the equality that finds the leaving values."""
    lines = lbase.shape[0]
    kh = coffs.shape[0]
    E = kh * kw
    S = np.empty(E, dtype=xp.dtype)
    T = np.empty(E, dtype=xp.dtype)
    cols = np.empty((width + kw - 1, kh), dtype=xp.dtype)
    for b in range(first, nblocks, step):
        l0, l1 = _block(b, nblocks, lines)
        for line in range(l0, l1):
            base = lbase[line]
            ob = line * width
            for c in range(width + kw - 1):
                col = cols[c]
                for r in range(kh):
                    col[r] = xp[base + c + coffs[r]]
                _sort_small(col, kh)
            e = 0
            for c in range(kw):
                for r in range(kh):
                    S[e] = cols[c, r]
                    e += 1
            _sort_small(S, E)
            y[ob] = S[rank]
            for j in range(1, width):
                old = cols[j - 1]
                new = cols[j + kw - 1]
                src = S if j % 2 == 1 else T
                dst = T if j % 2 == 1 else S
                p = 0
                ib = 0
                q = 0
                for e in range(E):
                    v = src[e]
                    if p < kh and v == old[p]:
                        p += 1
                        continue
                    while ib < kh and new[ib] < v:
                        dst[q] = new[ib]
                        q += 1
                        ib += 1
                    dst[q] = v
                    q += 1
                while ib < kh:
                    dst[q] = new[ib]
                    q += 1
                    ib += 1
                y[ob + j] = dst[rank]
