"""The planner the CPU backends share: argument checks, geometry and plans, in pure Python.

Every function of the backend contract (kernels/backends.py) has a Python wrapper in each
backend (kernels/_numba, kernels/_cython) that checks its arguments, plans the work and then
runs compiled loops.  Everything before the loops lives here, once, so that comparing the
Numba and Cython backends compares their kernels and not two planners: the same checks raise
the same messages, the same tunables (kernels.config) give the same chunks and blocks.

The checks guard kernels that do no bounds checking against a wrong *internal* call (the
public API validates user input before dispatch): a mismatched shape, dtype or stride
raises ValueError/TypeError instead of reading or writing out of bounds, or compiling a
Numba signature for a strided array.  They cost a few microseconds a call.
"""
from __future__ import annotations

import numpy as np

from . import config

REAL = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX = (np.dtype(np.complex64), np.dtype(np.complex128))
# BLAS and the Cython kernels' loop bounds use C int for sizes and leading dimensions.
INT_MAX = 2**31 - 1

POOL_KIND_NAMES = {0: "max", 1: "avg", 2: "sum", 3: "l2"}


# ---- arrays and integers

def _device_view(a):
    """A numba view of a CUDA device array (numba's own, a kernels.cuda.xp.CudaArray's, or
    __cuda_array_interface__)."""
    inner = getattr(a, "numba_array", None)
    if inner is not None:
        return inner
    if hasattr(a, "copy_to_host"):
        return a
    from numba import cuda
    return cuda.as_cuda_array(a)


def check_arrays(op, names, arrays, ndim, kinds=REAL, out=None, device=False):
    """Every array an ndarray (or, with ``device``, also a CUDA device array) with ``ndim``
    dims, C-contiguous, all of one dtype in ``kinds``, with fewer than 2**31 elements; the
    host one named ``out`` (if given) writeable.  Returns the dtype."""
    dtype = None
    for name, a in zip(names, arrays):
        if not isinstance(a, np.ndarray):
            if not device or not (hasattr(a, "copy_to_host")
                                  or hasattr(a, "__cuda_array_interface__")):
                kind = "numpy or CUDA device array" if device else "numpy array"
                raise TypeError(f"{op}: {name} must be a {kind}, received "
                                f"{type(a).__name__}")
            a = _device_view(a)
        shape, adt = tuple(a.shape), np.dtype(a.dtype)
        if a.ndim != ndim:
            raise ValueError(f"{op}: {name} must have {ndim} dims, received shape {shape}")
        if adt not in kinds:
            raise TypeError(f"{op}: {name} must have dtype "
                            f"{' or '.join(str(k) for k in kinds)}, received {adt}")
        host = isinstance(a, np.ndarray)
        if not (a.flags.c_contiguous if host else a.is_c_contiguous()):
            raise ValueError(f"{op}: {name} must be C-contiguous, received strides "
                             f"{a.strides} for shape {shape}")
        if a.size > INT_MAX:
            raise ValueError(f"{op}: {name} of shape {shape} has more than 2**31 - 1 "
                             f"elements")
        if dtype is None:
            dtype = adt
        elif adt != dtype:
            raise TypeError(f"{op}: all arrays must share one dtype, received {name} of dtype "
                            f"{adt} with {names[0]} of dtype {dtype}")
        if host and name == out and not a.flags.writeable:
            raise ValueError(f"{op}: the output {name} must be writeable, received a "
                             f"read-only array")
    return dtype


def positive_ints(op, **values):
    """The keyword values as a tuple of Python ints, each checked to be an integer >= 1."""
    out = []
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{op}: {name} must be a positive int, received {v!r}")
        out.append(int(v))
    return tuple(out)


# ---- convolution geometry

def pads(op, pad, shape):
    """(lo, padded spatial shape) of ``pad`` (None or three (lo, hi) pairs of ints >= 0) for
    an input of 5-D ``shape``."""
    if pad is None:
        return (0, 0, 0), tuple(shape[2:])
    try:
        pairs = [(int(lo), int(hi)) for lo, hi in pad]
    except (TypeError, ValueError):
        pairs = []
    if len(pairs) != 3 or any(v < 0 for pr in pairs for v in pr):
        raise ValueError(f"{op}: pad must be three (lo, hi) pairs of ints >= 0, received "
                         f"{pad!r}")
    return (tuple(lo for lo, _ in pairs),
            tuple(n + lo + hi for n, (lo, hi) in zip(shape[2:], pairs)))


def check_conv_shapes(op, x_shape, w_shape, y_shape, strides, dilations, groups,
                      names=("xp", "w", "y")):
    """Padded input ``x_shape``, weight ``w_shape`` and output ``y_shape`` (all 5-D) agree
    with the strides, dilations and groups (output size rule without padding)."""
    n, c = x_shape[:2]
    c_out, cg = w_shape[:2]
    if c % groups or c_out % groups or cg * groups != c:
        raise ValueError(f"{op}: groups={groups} does not fit {names[0]} of shape "
                         f"{tuple(x_shape)} and {names[1]} of shape {tuple(w_shape)}")
    expect = [n, c_out]
    for size, k, s, d in zip(x_shape[2:], w_shape[2:], strides, dilations):
        expect.append((size - d * (k - 1) - 1) // s + 1 if size >= d * (k - 1) + 1 else 0)
    if tuple(y_shape) != tuple(expect):
        raise ValueError(f"{op}: {names[2]} must have shape {tuple(expect)} for {names[0]} "
                         f"{tuple(x_shape)}, {names[1]} {tuple(w_shape)}, strides "
                         f"{tuple(strides)}, dilations {tuple(dilations)}, received "
                         f"{tuple(y_shape)}")


def conv_call(op, names, arrays, ints, pad=None, xi=0, wi=1, yi=2, device=False):
    """Check one convolution call of the contract: ``names``/``arrays`` in call order, the
    written one last; ``ints`` (sd, sh, sw, dd, dh, dw, groups); ``xi``, ``wi``, ``yi`` the
    positions of the input-, weight- and output-shaped arrays.  Returns (dtype, strides,
    dilations, groups, lo, padded spatial shape)."""
    ints = positive_ints(op, sd=ints[0], sh=ints[1], sw=ints[2], dd=ints[3], dh=ints[4],
                         dw=ints[5], groups=ints[6])
    dt = check_arrays(op, names, arrays, 5, out=None if device else names[-1], device=device)
    lo, xps = pads(op, pad, tuple(arrays[xi].shape))
    check_conv_shapes(op, tuple(arrays[xi].shape[:2]) + xps, tuple(arrays[wi].shape),
                      tuple(arrays[yi].shape),
                      ints[:3], ints[3:6], ints[6], (names[xi], names[wi], names[yi]))
    return dt, ints[:3], ints[3:6], ints[6], lo, xps


# ---- direct convolution

def direct_blocks(outer, inner, nthreads):
    """Blocks to split ``inner`` into so that outer * blocks gives every thread 4 jobs."""
    return max(1, min(inner, -(-4 * nthreads // max(outer, 1))))


def chunking(nh, nw, pitch, chunk):
    """(rows, cols) of one chunk: whole rows while they fit, else part of one row."""
    rows = min(max(1, chunk // pitch), nh)
    return (rows, nw) if rows > 1 else (1, min(nw, chunk))


def grad_weight_chunk(taps):
    """Accumulator lanes of the direct weight gradient for ``taps`` taps a filter."""
    return max(16, min(config.DIRECT_CHUNK, config.DIRECT_GW_LANES // taps))


def direct_source(x_shape, xps, k_shape, o_shape, s, d, chunk):
    """Geometry of the (phase-split) source of direct forward / grad-weight: a dict of
    inplace, dp, hp, wp, psz, csz, rows, cols, and the offset (int64) of every tap
    (ci, kd, kh, kw) in it, in w's order.  The source is the padded input itself at unit
    stride, else one phase per stride offset, each of extent output + largest tap offset."""
    s, xps = tuple(s), tuple(xps)
    unit = s == (1, 1, 1)
    if unit:
        dp, hp, wp = xps
    else:
        dp, hp, wp = (o + (k - 1) * dl // st for o, k, dl, st in zip(o_shape[2:], k_shape[2:],
                                                                       d, s))
    psz = dp * hp * wp
    csz = s[0] * s[1] * s[2] * psz
    ci, kd, kh, kw = np.meshgrid(np.arange(k_shape[1]), np.arange(k_shape[2]),
                                 np.arange(k_shape[3]), np.arange(k_shape[4]), indexing="ij")
    a, b, c = kd * d[0], kh * d[1], kw * d[2]
    phase = ((a % s[0]) * s[1] + b % s[1]) * s[2] + c % s[2]
    offs = ci * csz + phase * psz + ((a // s[0]) * hp + b // s[1]) * wp + c // s[2]
    rows, cols = chunking(o_shape[3], o_shape[4], wp, chunk)
    geo = {"inplace": unit and xps == tuple(x_shape[2:]), "dp": dp, "hp": hp, "wp": wp,
           "psz": psz, "csz": csz, "rows": rows, "cols": cols}
    return geo, np.ascontiguousarray(offs.ravel(), np.int64)


def direct_grad_input_taps(w_shape, s, d, xps, groups, col_stride):
    """The tap table of direct grad-input.  The padded input splits into stride phases of
    extents xe; gy sits at offset q in a zero-padded gyp of extents e = q + xe, so every tap
    of a phase reads gyp at a fixed offset.  Returns a dict of q, eh, ew, esz, rows, cols
    (the chunk over a phase) and the taps phase by phase (CSR): tap t reads gyp at toff[t]
    with weight column tidx[t] = col * col_stride + tap; pstart[p] starts phase p."""
    q = [(k - 1) * dl // st for k, dl, st in zip(w_shape[2:], d, s)]
    xe = [-(-n // st) for n, st in zip(xps, s)]
    eh, ew = q[1] + xe[1], q[2] + xe[2]
    esz = (q[0] + xe[0]) * eh * ew
    cout_g = w_shape[0] // groups
    col, kd, kh, kw = np.meshgrid(np.arange(cout_g), np.arange(w_shape[2]),
                                  np.arange(w_shape[3]), np.arange(w_shape[4]), indexing="ij")
    a, b, c = kd * d[0], kh * d[1], kw * d[2]
    phase = (((a % s[0]) * s[1] + b % s[1]) * s[2] + c % s[2]).ravel()
    order = np.argsort(phase, kind="stable")
    toff = (col * esz + ((q[0] - a // s[0]) * eh + q[1] - b // s[1]) * ew + q[2] - c // s[2])
    tidx = col * col_stride + (kd * w_shape[3] + kh) * w_shape[4] + kw
    pstart = np.searchsorted(phase[order], np.arange(s[0] * s[1] * s[2] + 1))
    rows, cols = chunking(xe[1], xe[2], ew, config.DIRECT_CHUNK)
    return {"q": tuple(q), "eh": eh, "ew": ew, "esz": esz, "rows": rows, "cols": cols,
            "toff": np.ascontiguousarray(toff.ravel()[order], np.int64),
            "tidx": np.ascontiguousarray(tidx.ravel()[order], np.int64),
            "pstart": pstart.astype(np.int64)}


# ---- im2col

def im2col_layout(n_batch, rows, rows_g, cout_g, tmp_rows, positions, budget):
    """(images per chunk, positions per chunk, block layout) for a column buffer of ``rows``
    (all groups) by (images * positions) and, in the wide layout, a transposed copy of
    ``tmp_rows`` rows, together within ``budget`` elements (at least one position).  Images
    whose GEMM (``cout_g`` rows) reaches config.IM2COL_BLOCK_MIN_MACS multiply-adds get
    GEMMs of their own."""
    if (rows_g * cout_g * positions >= config.IM2COL_BLOCK_MIN_MACS
            and rows * positions <= budget):
        nb = min(n_batch, budget // (rows * positions),
                 max(1, config.IM2COL_BLOCK_CHUNK_ELEMS // (rows * positions)))
        return max(1, nb), positions, True
    per_pos = rows + tmp_rows
    if per_pos * positions <= budget:
        return max(1, min(n_batch, budget // (per_pos * positions))), positions, False
    return 1, max(1, min(positions, budget // per_pos)), False


def im2col_call(op, names, arrays, ints, max_col_elems, xi, wi, yi, tmp_rows_all_groups):
    """Check one im2col call and plan it.  Returns None when an array is empty (the caller
    zeroes its output), else a dict: dtype, strides, dilations, groups, nb (images a chunk),
    pc (positions a chunk), block (layout), direct (1x1 stride 1: the input planes are the
    columns), parallel (the chunk's copies are worth threads), rows_g (Cg * taps), cog.
    ``tmp_rows_all_groups``: the backend's transposed copy holds every group's C_out rows
    (else one group's)."""
    dt, s, d, groups, _, _ = conv_call(op, names, arrays, ints, None, xi, wi, yi)
    (budget,) = positive_ints(op, max_col_elems=max_col_elems)
    if any(a.size == 0 for a in arrays):
        return None
    w_shape, out_shape = arrays[wi].shape, arrays[yi].shape
    rows_g = int(np.prod(w_shape[1:]))              # Cg * KD * KH * KW
    positions = int(np.prod(out_shape[2:]))
    cog = w_shape[0] // groups
    nb, pc, block = im2col_layout(out_shape[0], groups * rows_g, rows_g, cog,
                                  w_shape[0] if tmp_rows_all_groups else cog, positions,
                                  budget)
    return {"dtype": dt, "strides": s, "dilations": d, "groups": groups, "nb": nb, "pc": pc,
            "block": block,
            "direct": tuple(w_shape[2:]) == (1, 1, 1) and s == (1, 1, 1),
            "parallel": nb * groups * rows_g * pc >= config.IM2COL_PARALLEL_MIN_ELEMS,
            "rows_g": rows_g, "cog": cog}


# ---- FFT helpers

def fft_block(nf, rows, itemsize):
    """Frequencies per block: the ``rows`` spectrum rows one job reads (each ``itemsize``
    bytes per frequency) within ~128 KiB of cache; a multiple of 64, at least 256."""
    fb = (2**17 // max(1, rows * itemsize)) // 64 * 64
    return max(1, min(nf, max(256, fb)))


def fft_reduce_call(op, kind, a, b, out, groups, device=False):
    """Check one fft_reduce_* call (``kind`` "forward", "grad_input" or "grad_weight"; the
    arrays in the contract's order, ``out`` written) and return (dtype, groups, block of
    frequencies)."""
    names = {"forward": ("X", "W", "Y"), "grad_input": ("GY", "W", "GX"),
             "grad_weight": ("GY", "X", "GW")}[kind]
    (groups,) = positive_ints(op, groups=groups)
    dt = check_arrays(op, names, (a, b, out), 3, COMPLEX, out=names[2], device=device)
    a_shape, b_shape, out_shape = tuple(a.shape), tuple(b.shape), tuple(out.shape)
    if kind == "forward":
        n, c, nf = a_shape
        c_out, cg = b_shape[:2]
        ok = b_shape[2] == nf and out_shape == (n, c_out, nf) and cg * groups == c
        rows, expect = 2 * cg, "X (N, C, F), W (C_out, C/{g}, F), Y (N, C_out, F)"
    elif kind == "grad_input":
        n, c_out, nf = a_shape
        cg = b_shape[1]
        ok = b_shape == (c_out, cg, nf) and out_shape == (n, cg * groups, nf)
        rows, expect = 2 * (c_out // groups), "GY (N, C_out, F), W (C_out, C/{g}, F), GX (N, C, F)"
    else:
        n, c_out, nf = a_shape
        c = b_shape[1]
        ok = b_shape == (n, c, nf) and not c % groups and out_shape == (c_out, c // groups, nf)
        rows, expect = 2 * n, "GY (N, C_out, F), X (N, C, F), GW (C_out, C/{g}, F)"
    if not ok or c_out % groups:
        shapes = ", ".join(f"{k} {v}" for k, v in zip(names, (a_shape, b_shape, out_shape)))
        raise ValueError(f"{op}: inconsistent spectra for groups={groups}: expected "
                         f"{expect.format(g=groups)}, received {shapes}")
    return dt, groups, fft_block(nf, rows, dt.itemsize)


def strided_crop_call(op, src, dst, sd, sh, sw, device=False):
    """Check one strided_crop call; returns (dtype, (sd, sh, sw))."""
    s = positive_ints(op, sd=sd, sh=sh, sw=sw)
    dt = check_arrays(op, ("src", "dst"), (src, dst), 5, out="dst", device=device)
    src_shape, dst_shape = tuple(src.shape), tuple(dst.shape)
    fits = all(o == 0 or (o - 1) * st < i for o, st, i in zip(dst_shape[2:], s, src_shape[2:]))
    if src_shape[:2] != dst_shape[:2] or not fits:
        raise ValueError(f"{op}: dst {dst_shape} with strides {s} reaches outside src "
                         f"{src_shape}")
    return dt, s


# ---- pooling

def pool_call(op, names, arrays, kind, kd, kh, kw, sd, sh, sw, device=False):
    """Check one pool call (names[0] the padded input, names[1] the pooled output, the
    written array last) and return (dtype, kind, window, strides)."""
    if isinstance(kind, bool) or not isinstance(kind, (int, np.integer)) \
            or kind not in POOL_KIND_NAMES:
        raise ValueError(f"{op}: kind must be 0 (max), 1 (avg), 2 (sum) or 3 (l2), received "
                         f"{kind!r}")
    k = positive_ints(op, kd=kd, kh=kh, kw=kw)
    s = positive_ints(op, sd=sd, sh=sh, sw=sw)
    dt = check_arrays(op, names, arrays, 5, out=names[-1], device=device)
    x_shape, y_shape = tuple(arrays[0].shape), tuple(arrays[1].shape)
    expect = x_shape[:2] + tuple((i - kk) // ss + 1 if i >= kk else 0
                                 for i, kk, ss in zip(x_shape[2:], k, s))
    if y_shape != expect:
        raise ValueError(f"{op}: {names[1]} must have shape {expect} for {names[0]} {x_shape}, "
                         f"size {k}, stride {s}, received {y_shape}")
    for name, a in zip(names[2:], arrays[2:]):
        want = y_shape if name in ("y", "gy") else x_shape
        if tuple(a.shape) != want:
            raise ValueError(f"{op}: {name} must have shape {want}, received "
                             f"{tuple(a.shape)}")
    return dt, int(kind), k, s


# ---- Winograd tile transforms

def winograd_call(op, m, image, image_name, gemm, gemm_name, r0, out_hw):
    """(th, tw, tile rows a block) after checking dtypes, contiguity, m, shapes and the
    chunk's tile rows (r0 the first)."""
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
    return th, tw, max(1, config.WINOGRAD_BLOCK_TILES // tw)


# ---- matmul

def matmul_call(op, a, b, c):
    """Check one matmul call (c = a @ b, 2-D, C-contiguous, one dtype); returns the dtype."""
    dt = check_arrays(op, ("a", "b", "c"), (a, b, c), 2, out="c")
    if a.shape[1] != b.shape[0] or c.shape != (a.shape[0], b.shape[1]):
        raise ValueError(f"{op}: expected a (M, K), b (K, N), c (M, N), received a {a.shape}, "
                         f"b {b.shape}, c {c.shape}")
    return dt
