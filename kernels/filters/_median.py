"""Median filter strategies (every one exact; they differ in speed only):

- ``network``:   a sorting network pruned to the median output, run across a chunk of pixels
  at a time (vectorised); the 3x3 window uses its classic shortcut (sort column triples once,
  median = med3(max of lows, med3 of mids, min of highs)).  For small windows (<= 25).
- ``histogram``: uint8 only; a 256-bin histogram slides along each line (Huang), adding and
  removing one window edge per step.  For larger uint8 windows; any footprint.
- ``sorted``:    full boxes: a sorted copy of the window slides along each line, dropping
  the leaving column and merging the entering one (both sorted once per line).  For larger
  float windows (no NaNs: an image with NaNs goes to ``select``).
- ``select``:    a copy of each window and a quickselect, as scipy does, on threads.

The filtered axes are moved last and padded once under the boundary mode; windows are then
offsets into the padded, flattened array (see kernels.filters._numba_kernels).
"""
from __future__ import annotations

import functools

import numpy as np

from . import _numba_kernels as nk
from ._linear import run
from ._params import c_cast, extend_index

STRATEGIES = ("network", "histogram", "sorted", "select")
NETWORK_MAX = 81          # largest window the network strategy serves
_KERNEL_DTYPES = ("float32", "float64", "uint8")


@functools.lru_cache(maxsize=None)
def median_network(n):
    """Batcher's odd-even merge sort on n wires (wires >= n dropped: they would hold +inf),
    pruned backwards to the comparators the median wire n // 2 depends on.

    Returns (a, b, kind) int64 arrays: comparator i orders wires a[i] < b[i]; kind 0 keeps
    both outputs, 1 only the min (wire a), 2 only the max (wire b).

    >>> a, b, kind = median_network(9); len(a) < 25
    True
    """
    p = 1
    while p < n:
        p *= 2
    comps = []
    step = 1
    while step < p:                             # Batcher, iterative form (Knuth 5.3.4)
        k = step
        while k >= 1:
            for j in range(k % step, p - k, 2 * k):
                for i in range(min(k, p - j - k)):
                    if (i + j) // (2 * step) == (i + j + k) // (2 * step):
                        comps.append((i + j, i + j + k))
            k //= 2
        step *= 2
    comps = [(a, b) for a, b in comps if b < n]
    live = {n // 2}
    kept = []
    for a, b in reversed(comps):
        la, lb = a in live, b in live
        if la or lb:
            kept.append((a, b, 0 if la and lb else (1 if la else 2)))
            live.add(a)
            live.add(b)
    kept.reverse()
    arr = np.array(kept, dtype=np.int64).reshape(-1, 3)
    return arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()


def _fp_offsets(fp, pstrides):
    """Flat offsets (C order) of the footprint's true elements in the padded array."""
    coords = np.argwhere(fp)
    return (coords * np.asarray(pstrides, dtype=np.int64)).sum(axis=1).astype(np.int64)


def _edges(fp, pstrides):
    """Offsets removed when the window moves one step along the last axis (relative to the
    old position) and added (relative to the new one)."""
    left = fp.copy()
    left[..., 1:] &= ~fp[..., :-1]                 # no true element to its left
    right = fp.copy()
    right[..., :-1] &= ~fp[..., 1:]                # no true element to its right
    return _fp_offsets(left, pstrides), _fp_offsets(right, pstrides)


def supports(strategy, fp, dtype):
    """None when ``strategy`` can serve this footprint and dtype, else the reason."""
    count = int(fp.sum())
    if strategy == "network" and count > NETWORK_MAX:
        return (f"the network strategy serves windows of up to {NETWORK_MAX} elements, this "
                f"footprint has {count}")
    if strategy == "histogram" and np.dtype(dtype) != np.uint8:
        return f"the histogram strategy needs uint8 images, received {np.dtype(dtype)}"
    if strategy == "sorted" and not fp.all():
        return "the sorted strategy needs a full box window (size=, or an all-true footprint)"
    return None


def kernel_dtype(dtype):
    """The dtype the kernels run in: the image's (float32, float64, uint8), else float64
    (exact for integers below 2**53)."""
    dtype = np.dtype(dtype)
    return dtype if dtype.name in _KERNEL_DTYPES else np.dtype(np.float64)


def _pad(xb, pads, mode, cval):
    """(B, *spatial) -> contiguous (B, *padded): one copy of the interior, then the border
    slabs of each axis in turn, over the full extent of the axes already padded (so corners
    come out as scipy's per-axis extension gives them)."""
    spatial = xb.shape[1:]
    xp = np.empty((xb.shape[0],) + tuple(n + b + a for n, (b, a) in zip(spatial, pads)),
                  dtype=xb.dtype)
    inner = [slice(b, b + n) for n, (b, _) in zip(spatial, pads)]
    xp[(slice(None),) + tuple(inner)] = xb
    for d, (n, (b, a)) in enumerate(zip(spatial, pads)):
        if b == a == 0:
            continue
        idx = extend_index(n, b, a, mode)
        sel = [slice(None)] + [slice(None) if e < d else inner[e] for e in range(len(pads))]
        for part, pos in ((slice(0, b), idx[:b]), (slice(b + n, b + n + a), idx[b + n:])):
            if pos.size == 0:
                continue
            dst = list(sel)
            dst[d + 1] = part
            if mode == "constant":
                xp[tuple(dst)] = cval
            else:
                src = list(sel)
                src[d + 1] = pos + b
                xp[tuple(dst)] = xp[tuple(src)]
    return xp


def median(x, fp, axes, mode, cval, strategy):
    """Median of ``x`` over footprint ``fp`` (bool, one dim per entry of ``axes``).  As in
    scipy, cval is first written to x's dtype (C cast: -3 becomes 253 in uint8)."""
    dtype = x.dtype
    kd = kernel_dtype(dtype)
    cval = float(c_cast(np.array([cval], dtype=np.float64), dtype)[0])
    if strategy == "histogram" and kd != np.uint8:
        raise ValueError(f"median: strategy 'histogram' needs uint8 images and a cval they "
                         f"can hold, received {dtype} and cval={cval}")
    nf = len(axes)
    xm = np.moveaxis(x, list(axes), list(range(x.ndim - nf, x.ndim)))
    batch_shape = xm.shape[:x.ndim - nf]
    spatial = xm.shape[x.ndim - nf:]
    B = int(np.prod(batch_shape, dtype=np.int64))
    xb = xm.reshape((B,) + spatial).astype(kd, copy=False)
    xp = _pad(xb, [(k // 2, k - 1 - k // 2) for k in fp.shape], mode, cval)
    pshape = xp.shape[1:]
    pstrides = [int(np.prod(pshape[d + 1:], dtype=np.int64)) for d in range(nf)]
    plane = int(np.prod(pshape, dtype=np.int64))
    width = spatial[-1]
    lead = spatial[:-1]
    # base offset of every output line: batch, then the leading filtered coordinates
    grids = np.indices(lead, dtype=np.int64).reshape(len(lead), -1) if lead else \
        np.zeros((0, 1), dtype=np.int64)
    lb = (grids * np.asarray(pstrides[:-1], dtype=np.int64)[:, None]).sum(axis=0)
    lbase = (np.arange(B, dtype=np.int64)[:, None] * plane + lb[None, :]).ravel()
    y = np.empty(B * int(np.prod(spatial, dtype=np.int64)), dtype=kd)
    flat = xp.ravel()
    lines = lbase.shape[0]
    count = int(fp.sum())
    rank = count // 2
    work = y.size * count
    if y.size:
        if strategy == "network" and count == 9 and fp.shape[-2:] == (3, 3) and fp.all():
            roffs = np.array([0, pstrides[-2], 2 * pstrides[-2]], dtype=np.int64)
            run(nk.median3x3, lines, work, flat, y, lbase, width, roffs)
        elif strategy == "network":
            offs = _fp_offsets(fp, pstrides)
            a, b, kind = median_network(count)
            run(nk.median_network, lines, work, flat, y, lbase, width, offs, a, b, kind,
                rank)
        elif strategy == "histogram":
            offs = _fp_offsets(fp, pstrides)
            rem, add = _edges(fp, pstrides)
            run(nk.median_hist, lines, y.size * (rem.size + add.size), flat, y, lbase, width,
                offs, rem, add, rank)
        elif strategy == "sorted" and not (kd.kind == "f" and np.isnan(flat).any()):
            coffs = _fp_offsets(fp[..., :1], pstrides)
            run(nk.median_sorted, lines, work, flat, y, lbase, width, coffs, fp.shape[-1],
                rank)
        else:
            offs = _fp_offsets(fp, pstrides)
            run(nk.median_select, lines, work, flat, y, lbase, width, offs, rank)
    y = y.reshape(batch_shape + spatial)
    y = np.moveaxis(y, list(range(x.ndim - nf, x.ndim)), list(axes))
    if kd != dtype:
        return c_cast(y.astype(np.float64), dtype)
    return np.ascontiguousarray(y)
