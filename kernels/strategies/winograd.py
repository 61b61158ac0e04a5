"""Winograd convolution F(m x m, 3 x 3), m = 2 or 4: fewer multiplies for 3x3 stride-1 layers.

One output tile of m x m needs an alpha x alpha input tile d (alpha = m + 2) and is

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A        ((.) the element-wise product)

so the 9 * m^2 multiplies of a tile become alpha^2 (16 for m = 2, 36 for m = 4: 2.25x and 4x
fewer).  Summed over input channels, the element-wise product turns into alpha^2 independent
GEMMs, one per transform element e::

    U[e] (C_out, C_in)   = (G g G^T)[e]     the filter transform (prepare(), cached)
    V[e] (C_in, tiles)   = (B^T d B)[e]     the input transform  (backend kernel)
    M[e] (C_out, tiles)  = U[e] @ V[e]      BLAS, np.matmul over the alpha^2 (x groups) stack
    y tiles              = A^T M A          the output transform (backend kernel), cropped

The matrices are Toom-Cook's for interpolation points 0, 1, -1 (and infinity) for F(2,3),
those of Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2015), and
0, 1, -1, -1/2, 2 (and infinity) for F(4,3), a mixed set as in Barabasz et al., "Error
analysis and improving the accuracy of Winograd convolution" (2020).  In float32 F(4x4,3x3)
loses about one more decimal digit than F(2x2,3x3); measured against a float64 reference,
this set gives it 4-6x the direct kernel's forward error where Lavin & Gray's 0, +-1, +-2
gives 10-16x (and 0, +-1, +-1/2 10-16x as well).

Gradients, both exact (the transforms are linear):
  grad-input:  stride and dilation are 1, so gx is the full correlation of gy with the kernel
               flipped in space and transposed in channels: the same Winograd forward run on
               gy with padding (2 - lo, 2 - hi) per dim (negative padding crops).
  grad-weight: chain rule through the transforms: dM = A dY A^T per tile (the adjoint of the
               output transform), dU[e] = dM[e] @ V[e]^T (BLAS), dg = G^T dU G.

Tiles are processed in chunks of tile rows (image, tile row) so the V and M buffers stay
within config.WINOGRAD_CHUNK_BYTES.  The output tile size is ``tile=`` on every function,
defaulting to config.WINOGRAD_TILE (WINOGRAD_GRAD_WEIGHT_TILE for the weight gradient; tests
and bench patch kernels.config).
"""
import numpy as np

from .. import config
from ._common import backend as _be, facts, stacked_matmul

NAME = "winograd"
BACKENDS = ("numba", "cython")
NEEDS = ("winograd_input_transform", "winograd_output_transform",
         "winograd_output_transform_adjoint")
# The tile sizes and the chunk budget are tunables, read at every call: kernels.config
# WINOGRAD_TILE, WINOGRAD_GRAD_WEIGHT_TILE (2: F(4x4,3x3) gives the weight gradient 8-11x
# the direct kernel's float32 error, F(2x2,3x3) 3-4x) and WINOGRAD_CHUNK_BYTES.

# (B^T, G, A^T) per output tile size m.
_MATRICES = {
    2: (np.array([[1, 0, -1, 0],
                  [0, 1, 1, 0],
                  [0, -1, 1, 0],
                  [0, 1, 0, -1]], dtype=np.float64),
        np.array([[1, 0, 0],
                  [1 / 2, 1 / 2, 1 / 2],
                  [1 / 2, -1 / 2, 1 / 2],
                  [0, 0, 1]]),
        np.array([[1, 1, 1, 0],
                  [0, 1, -1, -1]], dtype=np.float64)),
    4: (np.array([[1, 3 / 2, -2, -3 / 2, 1, 0],
                  [0, -1, -5 / 2, -1 / 2, 1, 0],
                  [0, 1, 1 / 2, -5 / 2, 1, 0],
                  [0, 2, -1, -2, 1, 0],
                  [0, -1 / 2, -1, 1 / 2, 1, 0],
                  [0, 1, 3 / 2, -2, -3 / 2, 1]]),
        np.array([[1, 0, 0],
                  [-1 / 3, -1 / 3, -1 / 3],
                  [1 / 3, -1 / 3, 1 / 3],
                  [-16 / 15, 8 / 15, -4 / 15],
                  [1 / 15, 2 / 15, 4 / 15],
                  [0, 0, 1]]),
        np.array([[1, 1, 1, 1, 1, 0],
                  [0, 1, -1, -1 / 2, 2, 0],
                  [0, 1, 1, 1 / 4, 4, 0],
                  [0, 1, -1, -1 / 8, 8, 1]])),
}


def transform_matrices(m):
    """(B^T, G, A^T) of F(m x m, 3 x 3) as float64 arrays of shapes (alpha, alpha), (alpha, 3),
    (m, alpha), alpha = m + 2.

    >>> bt, g, at = transform_matrices(2)
    >>> d, k = np.arange(4.0), np.array([1.0, 2.0, 3.0])
    >>> (at @ ((g @ k) * (bt @ d))).tolist()           # == np.correlate(d, k, "valid")
    [8.0, 14.0]
    """
    return tuple(a.copy() for a in _MATRICES[_tile(m)])


def _tile(tile):
    m = config.WINOGRAD_TILE if tile is None else tile
    if isinstance(m, bool) or m not in (2, 4):
        raise ValueError(f"winograd: tile (output tile size m of F(m x m, 3 x 3)) must be 2 "
                         f"or 4, received {m!r}")
    return int(m)


def supports(params, x_shape, w_shape):
    """None when Winograd can serve the (5-D, canonical) configuration, else the reason."""
    k, st, dil = tuple(w_shape[2:]), tuple(params.stride), tuple(params.dilation)
    planar = (x_shape[2] == 1 and k[0] == 1 and params.padding[0] == (0, 0)
              and st[0] == 1 and dil[0] == 1)
    if planar and k[1:] == (3, 3) and st[1:] == (1, 1) and dil[1:] == (1, 1):
        return None
    need = "winograd needs a 3x3 kernel, stride 1 and dilation 1 on 2-D input"
    if planar:
        seen_1d = (" (1-D input is seen as 2-D of height 1 and is not served)"
                   if x_shape[3] == 1 and k[1] == 1 else "")
        return f"{need}; received kernel {k[1:]}, stride {st[1:]}, dilation {dil[1:]}{seen_1d}"
    return (f"{need}; received 3-D input of depth {x_shape[2]} with kernel {k}, stride {st}, "
            f"dilation {dil}, depth padding {params.padding[0]}")


def _filter_transform(w, m):
    """U = G g G^T as (alpha^2, C_out, C_in / groups), computed in float64, in w's dtype: one
    GEMM, kron(G, G) (alpha^2, 9) @ g (9, C_out * C_in / groups)."""
    _, g, _ = _MATRICES[m]
    k = w.reshape(-1, 9).astype(np.float64)
    return (np.kron(g, g) @ k.T).reshape((m + 2) ** 2, *w.shape[:2]).astype(w.dtype)


def _flipped(w, groups):
    """w' (C, C_out / groups, 3, 3): w flipped in space, channels transposed within each
    group -- the kernel whose forward correlation is the gradient w.r.t. the input."""
    c_out, cg = w.shape[:2]
    return np.ascontiguousarray(
        w.reshape(groups, c_out // groups, cg, 3, 3)[:, :, :, ::-1, ::-1]
        .transpose(0, 2, 1, 3, 4).reshape(groups * cg, c_out // groups, 3, 3))


def prepare(w, params, x_shape=None, backend=None, pass_="fwd", tile=None):
    """The filter transform G g G^T of ``w`` (C_out, C_in / groups, 1, 3, 3) for tile size
    ``tile`` and one pass: ``pass_="fwd"`` transforms w for :func:`forward`, "grad_input" the
    flipped, transposed w for :func:`grad_input`; "grad_weight" needs none (None).  Reusable
    while the weights stay the same (the caller's promise)."""
    if pass_ == "grad_weight":
        return None
    m = _tile(tile)
    k = w if pass_ == "fwd" else _flipped(w, params.groups)
    return {"m": m, "shape": w.shape, "dtype": w.dtype, "pass": pass_,
            "U": _filter_transform(k, m)}


def _matching(prepared, m, w, dtype, pass_):
    return (prepared is not None and prepared["m"] == m and prepared["shape"] == w.shape
            and prepared["dtype"] == dtype and prepared.get("pass", "fwd") == pass_)


def _tile_rows(m, out_hw):
    return -(-out_hw[0] // m), -(-out_hw[1] // m)


def _chunk_rows(m, tw, channels, itemsize, total):
    """Tile rows per chunk: as many as fit config.WINOGRAD_CHUNK_BYTES (V and M), at least
    one."""
    per_row = (m + 2) ** 2 * channels * tw * itemsize
    return max(1, min(total, config.WINOGRAD_CHUNK_BYTES // max(per_row, 1)))


def _chunks(n, m, out_hw, channels, itemsize):
    """(tw, rows per chunk, [(r0, rows), ...] covering the n * th tile rows of the batch)."""
    th, tw = _tile_rows(m, out_hw)
    total = n * th
    rc = _chunk_rows(m, tw, channels, itemsize, total)
    return tw, rc, [(r0, min(rc, total - r0)) for r0 in range(0, total, rc)]


def _conv(x4, u, groups, m, pads, out_hw, backend):
    """Correlate x4 (N, C, H, W), zero-padded by ``pads`` = (top, left) (negative crops) with
    the transformed filter u (alpha^2, C_out, C / groups); returns (N, C_out, *out_hw)."""
    be = _be(backend)
    a2, c_out, cg = u.shape
    n, c = x4.shape[:2]
    y = np.empty((n, c_out) + tuple(out_hw), dtype=x4.dtype)
    tw, rc, chunks = _chunks(n, m, out_hw, c + c_out, x4.itemsize)
    vbuf = np.empty(a2 * c * rc * tw, dtype=x4.dtype)
    mbuf = np.empty(a2 * c_out * rc * tw, dtype=x4.dtype)
    ug = u.reshape(a2 * groups, c_out // groups, cg)
    for r0, rows in chunks:
        cols = rows * tw
        v = vbuf[:a2 * c * cols].reshape(a2, c, cols)
        mm = mbuf[:a2 * c_out * cols].reshape(a2, c_out, cols)
        be.winograd_input_transform(x4, v, m, r0, pads[0], pads[1], *out_hw)
        # alpha^2 x groups GEMMs (C_out/groups, Cg) @ (Cg, cols), split over threads
        stacked_matmul(ug, v.reshape(a2 * groups, cg, cols),
                       out=mm.reshape(a2 * groups, c_out // groups, cols))
        be.winograd_output_transform(mm, y, m, r0)
    return y


def _planar(a):
    """(N, C, 1, H, W) -> (N, C, H, W) view, C-contiguous."""
    return np.ascontiguousarray(a).reshape(a.shape[:2] + a.shape[3:])


def _finite(*arrays):
    """Whether every array is free of Inf and NaN (two SIMD reductions each).  The transforms
    mix a whole tile, so one Inf or NaN would spread over its tile's outputs (320 outputs
    instead of the direct definition's 144 for one Inf, 16 channels): non-finite inputs run
    the direct kernel instead."""
    return all(a.size == 0 or (np.isfinite(a.min()) and np.isfinite(a.max())) for a in arrays)


def _direct():
    from . import direct
    return direct


def forward(x, w, params, backend, prepared=None, tile=None):
    """y (N, C_out, 1, OH, OW) of x (N, C, 1, H, W) and w (C_out, C / groups, 1, 3, 3).

    ``tile`` (2 or 4, default config.WINOGRAD_TILE) picks F(2x2,3x3) or F(4x4,3x3); a ``prepared`` filter
    transform from :func:`prepare` is used when it matches the tile, shape and dtype.
    Non-finite x or w run the direct kernel (see :func:`_finite`).
    """
    m = _tile(tile if tile is not None or prepared is None else prepared["m"])
    if not _finite(x, w):
        return _direct().forward(x, w, params, backend)
    if not _matching(prepared, m, w, x.dtype, "fwd"):
        prepared = prepare(w.astype(x.dtype, copy=False), params, tile=m)
    (lo_h, _), (lo_w, _) = params.padding[1:]
    out_hw = params.out_spatial(x.shape[2:], w.shape[2:])[1:]
    y = _conv(_planar(x), prepared["U"], params.groups, m, (lo_h, lo_w), out_hw, backend)
    return y.reshape(y.shape[:2] + (1,) + y.shape[2:])


def grad_input(gy, w, x_shape, params, backend, prepared=None, tile=None):
    """gx (x_shape) = dL/dx given gy = dL/dy (N, C_out, 1, OH, OW): the forward run on gy
    with the flipped, transposed kernel (``prepared`` from ``prepare(..., "grad_input")``).
    Non-finite gy or w run the direct kernel (see :func:`_finite`)."""
    m = _tile(tile if tile is not None or prepared is None else prepared["m"])
    if not _finite(gy, w):
        return _direct().grad_input(gy, w, x_shape, params, backend)
    if not _matching(prepared, m, w, gy.dtype, "grad_input"):
        prepared = prepare(w.astype(gy.dtype, copy=False), params, pass_="grad_input", tile=m)
    (lo_h, _), (lo_w, _) = params.padding[1:]
    gx = _conv(_planar(gy), prepared["U"], params.groups, m, (2 - lo_h, 2 - lo_w),
               tuple(x_shape[3:]), backend)
    return gx.reshape(tuple(x_shape))


def grad_weight(gy, x, w_shape, params, backend, prepared=None, tile=None):
    """gw (w_shape) = dL/dw given gy = dL/dy (N, C_out, 1, OH, OW) and x (N, C, 1, H, W);
    ``tile`` defaults to config.WINOGRAD_GRAD_WEIGHT_TILE; non-finite gy or x run the direct
    kernel (see :func:`_finite`)."""
    m = _tile(config.WINOGRAD_GRAD_WEIGHT_TILE if tile is None else tile)
    if not _finite(gy, x):
        return _direct().grad_weight(gy, x, w_shape, params, backend)
    be = _be(backend)
    g = params.groups
    x4, gy4 = _planar(x), _planar(gy)
    n, c = x4.shape[:2]
    c_out, cg = w_shape[:2]
    a2 = (m + 2) ** 2
    out_hw = gy4.shape[2:]
    (lo_h, _), (lo_w, _) = params.padding[1:]
    tw, rc, chunks = _chunks(n, m, out_hw, c + c_out, x4.itemsize)
    vbuf = np.empty(a2 * c * rc * tw, dtype=x4.dtype)
    mbuf = np.empty(a2 * c_out * rc * tw, dtype=x4.dtype)
    du = np.zeros((a2, g, c_out // g, cg), dtype=np.float64)
    part = np.empty((a2, g, c_out // g, cg), dtype=x4.dtype)
    for r0, rows in chunks:
        cols = rows * tw
        v = vbuf[:a2 * c * cols].reshape(a2, c, cols)
        dm = mbuf[:a2 * c_out * cols].reshape(a2, c_out, cols)
        be.winograd_input_transform(x4, v, m, r0, lo_h, lo_w, *out_hw)
        be.winograd_output_transform_adjoint(gy4, dm, m, r0)
        # dU[e] += dM[e] @ V[e]^T per group (BLAS takes the transposed view as is)
        stacked_matmul(dm.reshape(a2 * g, c_out // g, cols),
                       v.reshape(a2 * g, cg, cols).transpose(0, 2, 1),
                       out=part.reshape(a2 * g, c_out // g, cg))
        du += part
    # dg = G^T dU G for every filter: kron(G, G)^T (9, alpha^2) @ dU (alpha^2, C_out * Cg)
    _, gm, _ = _MATRICES[m]
    gw = (np.kron(gm, gm).T @ du.reshape(a2, c_out * cg)).T
    return np.ascontiguousarray(gw.reshape(tuple(w_shape)), dtype=gy.dtype)


def rule(params, x_shape, w_shape, pass_, device):
    """Winograd (priority 40, after depthwise direct) for every pass of a 3x3 stride-1 layer
    (supports() already checked) with enough channels and output (config.RULES)."""
    r, f = config.RULES, facts(params, x_shape, w_shape)
    if (min(f.cin_g, f.cout_g) >= r["winograd_min_channels"]
            and f.out_px >= r["winograd_min_out_pixels"]):
        return 40, "rule: 3x3 stride-1 layer with >= 16 channels -> winograd"
    return None


def workspace_bytes(params, x_shape, w_shape, itemsize, tile=None):
    """Extra memory of the forward pass: the transformed filter and one chunk's V and M."""
    m = _tile(tile)
    a2 = (m + 2) ** 2
    n, c = x_shape[:2]
    c_out, cg = w_shape[:2]
    out_hw = params.out_spatial(x_shape[2:], w_shape[2:])[1:]
    tw, rc, _ = _chunks(n, m, out_hw, c + c_out, itemsize)
    return (a2 * c_out * cg + a2 * (c + c_out) * rc * tw) * itemsize
