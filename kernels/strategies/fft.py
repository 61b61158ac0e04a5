"""FFT convolution: pointwise products of spectra, summed over input channels.

Cross-correlation is a product in the frequency domain, y = irfft(X * conj(W)), per frequency
a small matrix product over the channels of one group.  Everything below reduces to one core
problem, a stride-1 correlation of x (n samples per dim, zero-padded by lo, hi) with a dense
kernel of K taps giving ``out`` outputs, computed on transforms of a fast length T
(scipy.fft.next_fast_len: 5-smooth for the real last axis, 11-smooth for the others), planned
per spatial dim in one of two ways:

* single tile (circular).  Correlation of length T is exact when no index it reads wraps onto
  a wrong sample.  Outputs t < out read xp[t + j], j < K; with x at offset 0 of the transform
  and the kernel's taps at (j - lo) mod T, the wrapped reads land on padding zeros as long as
  T >= n + max(lo, hi) (and T >= K, T >= out): the padded input is never built and "same"
  padding costs max(lo, hi), not lo + hi, samples of transform length.
* overlap-save tiles.  Tile i holds xp[i*S : i*S + T] (zeros outside x) and its circular
  correlation is exact for the S = T - K + 1 outputs y[i*S : i*S + S].  Transforms stay in
  cache and their length no longer follows the image.  The per-dim choice (tile length or
  single) minimises a cost model, :func:`plan`: transform work ~ points * log2(points) per
  input and output channel, reduction work ~ frequencies * channel pairs, a cost per tile.

Tiles fold into the batch axis, so the backend's reductions see (N * tiles, C, F) spectra.
Gradients reuse the same tiles and the same kernel spectrum W:
  grad-input:  gx = gy (*) w, a true convolution, GX = sum_co GY * W: gy's tile i (S samples
               at offset 0) convolved with K taps spans exactly T samples, added back at
               xp[i*S] (overlap-add); with one circular tile the kernel's shift puts gx at 0.
  grad-weight: gw[j] = sum_t xp[t + j] gy[t] = sum over images and tiles, GW = sum GY *
               conj(X), read at (j - shift) mod T.
Dilation spreads the kernel taps d apart (K = d*(k-1) + 1).  Stride s is a polyphase split:
with xp and the dilated kernel cut into s phases per dim (x'[c*P + p][i] = xp[c][s*i + p],
w'[c*P + p][a] = w[c][s*a + p]), y = the stride-1 correlation of x' and w', so only needed
outputs are transformed back; both gradients map back through the same (linear, exact)
rearrangement.  Results are the linear correlation of the other strategies, to rounding.

The transforms are scipy.fft (workers = kernels' thread count); the per-frequency channel
reductions are the backend's (Numba or Cython) -- that is what the backend label means here.
A :class:`Prepared` kernel spectrum from :func:`prepare` is reused by forward / grad_input /
grad_weight when the caller passes it; it is the caller's promise that the weights are the
ones it was made from (nothing here can see an in-place edit of ``w``).
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from numpy.lib.stride_tricks import sliding_window_view

from .. import config
from ..params import pad5d
from ..runtime import get_num_threads
from ._common import backend as _be, facts, im2col_team, stacked_matmul

NAME = "fft"
BACKENDS = ("numba", "cython")
NEEDS = ("fft_reduce_forward", "fft_reduce_grad_input", "fft_reduce_grad_weight")

# One kernel spectrum serves forward and grad-input: a cache keeps it once for both.
PREPARE_SHARED = {"grad_input": "fwd"}
# The cost model's weights and the BLAS threshold are tunables: kernels.config.FFT_*.


def supports(params, x_shape, w_shape):
    return None


@dataclass(frozen=True)
class Dim:
    """The plan of one spatial dim of the core problem.

    T: transform length; S: outputs per tile; nt: tiles; shift: circular shift of the
    kernel's taps (``lo`` for a single circular tile, 0 for overlap-save tiles); lo: padding
    before x (tile i starts at x[i*S - lo + shift]).
    """
    T: int
    S: int
    nt: int
    shift: int
    lo: int

    @property
    def offset(self):
        """Where x[0] sits in the tiled buffer (x coordinate + offset = buffer coordinate)."""
        return self.lo - self.shift


@dataclass(frozen=True)
class Geometry:
    """The core stride-1 problem behind a convolution (see the module docstring).

    x: core input shape (N, C', n...); k: core kernel shape (C_out, C'/groups, K...);
    pads: (lo, hi) per dim (zeros for strided problems, whose padding is materialised);
    out: outputs per dim; phases: the stride (polyphase factor) per dim, or None.
    """
    x: tuple
    k: tuple
    pads: tuple
    out: tuple
    phases: tuple | None


def geometry(params, x_shape, w_shape):
    """The core problem of a 3-D convolution ``params`` of x ``x_shape``, w ``w_shape``."""
    keff = tuple(d * (k - 1) + 1 for d, k in zip(params.dilation, w_shape[2:]))
    out = params.out_spatial(x_shape[2:], w_shape[2:])
    if all(s == 1 for s in params.stride):
        return Geometry(tuple(x_shape), tuple(w_shape[:2]) + keff, tuple(params.padding),
                        out, None)
    s = tuple(params.stride)
    p = math.prod(s)
    n = tuple(-(-L // st) for L, st in zip(params.padded_spatial(x_shape[2:]), s))
    k = tuple(-(-K // st) for K, st in zip(keff, s))
    return Geometry((x_shape[0], x_shape[1] * p) + n, (w_shape[0], w_shape[1] * p) + k,
                    ((0, 0),) * 3, out, s)


def _candidates(n, k, lo, hi, out, real, tile):
    """Per-dim plans worth costing: the single circular tile and overlap-save tiles."""
    t1 = sfft.next_fast_len(max(k, n + max(lo, hi), out), real=real)
    if tile is not None:
        if tile >= t1:
            return [Dim(tile, out, 1, lo, lo)]
        if tile < k:
            raise ValueError(f"fft: tile length {tile} is shorter than the kernel ({k} taps, "
                             f"dilation included)")
        return [Dim(tile, tile - k + 1, -(-out // (tile - k + 1)), 0, lo)]
    dims = [Dim(t1, out, 1, lo, lo)]
    v = max(2 * k, 16)
    while True:
        t = sfft.next_fast_len(v, real=real)
        if t >= t1:
            break
        s = t - k + 1
        nt = -(-out // s)
        if nt > 1 and nt <= config.FFT_MAX_TILES:
            dims.append(Dim(t, s, nt, 0, lo))
        v = int(t * 1.3) + 1
    return dims


def _cost(dims, g):
    n, c = g.x[:2]
    co, cg = g.k[:2]
    tvol = math.prod(d.T for d in dims)
    fvol = tvol // dims[-1].T * (dims[-1].T // 2 + 1)
    tiles = math.prod(d.nt for d in dims)
    lg = math.log2(tvol) + 1 + config.FFT_COPY_COST * (tiles > 1)
    per_tile = (tvol * lg * n * (c + co) + config.FFT_REDUCE_COST * fvol * n * co * cg
                + config.FFT_TILE_COST * n * (tiles > 1))
    # the kernel's transform (pruned: ~half a full one), plus its transposed copy for BLAS
    kernel = (1.0 if co * cg >= config.FFT_BLAS_MIN_CHANNELS else 0.5) * tvol * lg * co * cg
    return tiles * per_tile + kernel


def plan(g, tile=None):
    """The per-dim plans (a tuple of :class:`Dim`) of the core problem ``g``.

    ``tile``: None (choose by the cost model) or transform lengths per dim (3 ints; an int
    applies to every dim whose kernel is longer than 1).  A length at least the single-tile
    minimum gives one circular tile of that length, a shorter one overlap-save tiles.
    """
    if tile is not None and not isinstance(tile, (tuple, list)):
        tile = tuple(tile if k > 1 else None for k in g.k[2:])
    return _plan(g, None if tile is None else tuple(tile))


@functools.lru_cache(maxsize=256)
def _plan(g, tile):
    cands = [_candidates(n, k, lo, hi, o, i == 2, None if tile is None else tile[i])
             for i, (n, k, (lo, hi), o) in enumerate(zip(g.x[2:], g.k[2:], g.pads, g.out))]
    return min(itertools.product(*cands), key=lambda dims: _cost(dims, g))


def _axes(dims):
    """Transform axes of 5-D arrays: the dims longer than 1, always including the last."""
    return tuple(2 + i for i, d in enumerate(dims) if d.T > 1 or i == 2)


def _shape(dims, axes):
    return tuple(dims[a - 2].T for a in axes)


def _workers(a, dims):
    """scipy.fft's workers for transforming ``a`` (5-D): kernels' thread count, but one for a
    single small plane, whose transform is too short to pay for splitting (512x512 "same"
    with 31x31, 528x540 points: 1.69 ms with one worker, 1.80 ms with two, 2 shared cores,
    December 2026)."""
    planes = a.shape[0] * a.shape[1]
    if planes == 1 and math.prod(d.T for d in dims) < config.FFT_THREADS_MIN_POINTS:
        return 1
    return get_num_threads()


def _rfft(a, dims):
    axes = _axes(dims)
    return sfft.rfftn(a, s=_shape(dims, axes), axes=axes, workers=_workers(a, dims))


def _irfft(spec, dims):
    axes = _axes(dims)
    return sfft.irfftn(spec, s=_shape(dims, axes), axes=axes, workers=_workers(spec, dims))


def _flat(spec):
    """(A, B, ...) spectrum as (A, B, F), C-contiguous (rfftn's output already is)."""
    return np.ascontiguousarray(spec).reshape(spec.shape[:2] + (-1,))


def _kernel_spectrum(k, dims):
    """The spectrum (C_out, Cg, F) of the dense kernel ``k`` with its taps at circular
    positions (j - shift) mod T.  Pruned: each 1-D pass transforms only the rows that hold
    taps, since the kernel is mostly zeros at transform size."""
    workers = _workers(k, dims)
    spec = k
    for i in (2, 1, 0):
        d, kk, ax = dims[i], k.shape[2 + i], 2 + i
        pos = (np.arange(kk) - d.shift) % d.T
        shape = list(spec.shape)
        shape[ax] = d.T
        full = np.zeros(shape, dtype=spec.dtype)
        idx = [slice(None)] * 5
        idx[ax] = pos
        full[tuple(idx)] = spec
        if d.T == 1 and i != 2:
            spec = full
        elif i == 2:
            spec = sfft.rfft(full, axis=ax, workers=workers)
        else:
            spec = sfft.fft(full, axis=ax, workers=workers, overwrite_x=True)
    return _flat(spec)


def _space_to_depth(a, s, size):
    """(A, B, m...) zero-padded or cut to s*size per dim -> (A, B*P, size...), phase p of
    channel b at b*P + p, P = prod(s)."""
    buf = np.zeros(a.shape[:2] + tuple(st * z for st, z in zip(s, size)), dtype=a.dtype)
    m = tuple(min(x, st * z) for x, st, z in zip(a.shape[2:], s, size))
    buf[(slice(None), slice(None)) + tuple(slice(0, v) for v in m)] = \
        a[(slice(None), slice(None)) + tuple(slice(0, v) for v in m)]
    sh = a.shape[:2] + (size[0], s[0], size[1], s[1], size[2], s[2])
    buf = buf.reshape(sh).transpose(0, 1, 3, 5, 7, 2, 4, 6)
    return np.ascontiguousarray(buf).reshape((a.shape[0], a.shape[1] * math.prod(s)) + size)


def _depth_to_space(a, s, b):
    """Inverse of :func:`_space_to_depth`: (A, b*P, size...) -> (A, b, s*size...)."""
    size = a.shape[2:]
    v = a.reshape((a.shape[0], b) + tuple(s) + size).transpose(0, 1, 5, 2, 6, 3, 7, 4)
    return v.reshape((a.shape[0], b) + tuple(st * z for st, z in zip(s, size)))


def _effective_kernel(w, params, g):
    """The core kernel: taps spread by the dilation, then split into stride phases."""
    k = w
    if any(d > 1 for d in params.dilation):
        keff = tuple(d * (kk - 1) + 1 for d, kk in zip(params.dilation, w.shape[2:]))
        k = np.zeros(w.shape[:2] + keff, dtype=w.dtype)
        k[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in params.dilation)] = w
    if g.phases is not None:
        k = _space_to_depth(k, g.phases, g.k[2:])
    return k


@dataclass(frozen=True, eq=False)
class Prepared:
    """A kernel spectrum for one (x shape, w shape, params, dtype): see :func:`prepare`.

    W is (C_out, Cg, F) for the backend's reductions, or conj(W) as (F, Cg, C_out) when
    ``blas`` (the reduction is a batched cgemm, see BLAS_MIN_CHANNELS)."""
    key: tuple
    dims: tuple
    W: np.ndarray
    blas: bool


def _use_blas(g, groups):
    return groups == 1 and g.k[0] * g.k[1] >= config.FFT_BLAS_MIN_CHANNELS


def _key(params, x_shape, w_shape, dtype):
    return (tuple(x_shape), tuple(w_shape), params, np.dtype(dtype).name)


def prepare(w, params, x_shape, backend=None, pass_="fwd", tile=None):
    """The kernel's spectrum for inputs of ``x_shape``, to pass as ``prepared=`` to
    :func:`forward` and :func:`grad_input` (one spectrum serves both) while the weights stay
    the same (the caller's promise: an in-place edit of ``w`` is not detected).  The weight
    gradient needs no transform of w: for ``pass_="grad_weight"`` this returns None.

    Parameters
    ----------
    w : ndarray (C_out, C/groups, kd, kh, kw), float32 or float64, C-contiguous
    params : the 3-D ConvParams
    x_shape : (N, C, d, h, w)
    backend : unused (the spectrum is scipy.fft's on every backend)
    pass_ : "fwd", "grad_input" or "grad_weight"
    tile : None (cost model) or transform lengths, see :func:`plan`

    Examples
    --------
    >>> p = kernels.conv_params((1, 1, 1, 1, 64), (1, 1, 1, 1, 9)).as3d()
    >>> prepare(np.ones((1, 1, 1, 1, 9)), p, (1, 1, 1, 1, 64)).W.shape
    (1, 1, 33)
    """
    if pass_ == "grad_weight":
        return None
    g = geometry(params, x_shape, w.shape)
    dims = plan(g, tile)
    spec = _kernel_spectrum(_effective_kernel(w, params, g), dims)
    blas = _use_blas(g, params.groups)
    if blas:
        spec = np.ascontiguousarray(np.conjugate(spec).transpose(2, 1, 0))
    return Prepared(_key(params, x_shape, w.shape, w.dtype), dims, spec, blas)


def _prepared(prepared, w, params, x_shape, tile):
    if prepared is not None and prepared.key == _key(params, x_shape, w.shape, w.dtype) and (
            tile is None or prepared.dims == plan(geometry(params, x_shape, w.shape), tile)):
        return prepared
    return prepare(w, params, x_shape, tile=tile)


# ---- tiles in and out


def _input_tiles(x, dims):
    """(N * tiles, C, T...) real tiles of x (N, C, n...): tile i holds x from i*S - offset,
    zeros outside x.  One circular tile per dim: x itself (rfftn pads to T)."""
    if all(d.nt == 1 and d.offset == 0 for d in dims):
        return x
    ext = tuple((d.nt - 1) * d.S + d.T for d in dims)
    buf = np.zeros(x.shape[:2] + ext, dtype=x.dtype)
    m = tuple(min(n, e - d.offset) for n, e, d in zip(x.shape[2:], ext, dims))
    buf[(slice(None), slice(None)) + tuple(slice(d.offset, d.offset + v)
                                           for d, v in zip(dims, m))] = \
        x[(slice(None), slice(None)) + tuple(slice(0, v) for v in m)]
    win = sliding_window_view(buf, tuple(d.T for d in dims), axis=(2, 3, 4))
    win = win[(slice(None), slice(None)) + tuple(slice(None, None, d.S) for d in dims)]
    tiles = win.transpose(0, 2, 3, 4, 1, 5, 6, 7)
    return tiles.reshape((-1, x.shape[1]) + tuple(d.T for d in dims))


def _output_tiles(gy, dims):
    """(N * tiles, C_out, S...) tiles of gy (N, C_out, out...) (zeros past the end)."""
    if all(d.nt == 1 for d in dims):
        return gy
    n, c = gy.shape[:2]
    full = tuple(d.nt * d.S for d in dims)
    if full != gy.shape[2:]:
        buf = np.zeros((n, c) + full, dtype=gy.dtype)
        buf[(slice(None), slice(None)) + tuple(slice(0, o) for o in gy.shape[2:])] = gy
        gy = buf
    v = gy.reshape((n, c) + sum(((d.nt, d.S) for d in dims), ()))
    return v.transpose(0, 2, 4, 6, 1, 3, 5, 7).reshape((-1, c) + tuple(d.S for d in dims))


def _assemble(z, dims, n, out):
    """y (N, C_out, out...) from the inverse tiles z (N * tiles, C_out, T...)."""
    c = z.shape[1]
    if all(d.nt == 1 for d in dims):
        return np.ascontiguousarray(z[(slice(None), slice(None)) +
                                      tuple(slice(0, o) for o in out)])
    full = np.empty((n, c) + tuple(d.nt * d.S for d in dims), dtype=z.dtype)
    zt = z.reshape((n,) + tuple(d.nt for d in dims) + (c,) + z.shape[2:])
    zt = zt[(slice(None),) * 5 + tuple(slice(0, d.S) for d in dims)]
    full.reshape((n, c) + sum(((d.nt, d.S) for d in dims), ()))[...] = \
        zt.transpose(0, 4, 1, 5, 2, 6, 3, 7)
    if full.shape[2:] == tuple(out):
        return full
    return np.ascontiguousarray(full[(slice(None), slice(None)) +
                                     tuple(slice(0, o) for o in out)])


def _overlap_add(z, dims, n, x_sp):
    """gx (N, C, x_sp...) from the inverse tiles z (N * tiles, C, T...) of grad-input: tile
    i's T samples add into the tiled buffer at i*S; x sits at each dim's offset."""
    c = z.shape[1]
    if all(d.nt == 1 for d in dims):
        return np.ascontiguousarray(z[(slice(None), slice(None)) +
                                      tuple(slice(d.offset, d.offset + s)
                                            for d, s in zip(dims, x_sp))])
    ext = tuple(max((d.nt - 1) * d.S + d.T, d.offset + s) for d, s in zip(dims, x_sp))
    buf = np.zeros((n, c) + ext, dtype=z.dtype)
    zt = z.reshape((n,) + tuple(d.nt for d in dims) + (c,) + z.shape[2:])
    for i in itertools.product(*(range(d.nt) for d in dims)):
        dst = tuple(slice(j * d.S, j * d.S + d.T) for j, d in zip(i, dims))
        buf[(slice(None), slice(None)) + dst] += zt[(slice(None),) + i]
    return np.ascontiguousarray(buf[(slice(None), slice(None)) +
                                    tuple(slice(d.offset, d.offset + s)
                                          for d, s in zip(dims, x_sp))])


def _core_input(x, params, g):
    """The core problem's input: x itself, or its padded polyphase split when strided."""
    if g.phases is None:
        return x
    return _space_to_depth(pad5d(x, params), g.phases, g.x[2:])


# ---- the three passes


# ---- guards: non-finite values and a wide dynamic range
#
# A transform spreads every input sample over every frequency, so one Inf or NaN makes every
# output of its transform non-finite (the direct definition: only the outputs whose window
# holds it), and its rounding error is relative to the largest sample of the transform:
# where quiet regions sit beside loud ones, their outputs get an error of about
# eps * max|x| / (their own magnitude), relative.  Before transforming, the input (x, or gy
# for grad-input) is summarised as max |a| per block of one kernel extent per dim, per image
# and channel -- one pass over the data, small next to the transforms: a non-finite block
# sends the pass to the direct kernel (same backend); a ratio loudest / quietest non-zero
# block above config.FFT_MAX_RANGE makes float32 data transform in float64 (its error is
# 2**29 times smaller), and a ratio float64 cannot serve either goes to the direct kernel.


def _block_max(m, ax, kk):
    """Max of ``m`` over blocks of ``kk`` along axis ``ax``; a remainder shorter than a
    block joins the last block (a sliver of a block is no region of its own).  Short blocks
    are ``kk`` strided np.maximum passes: numpy's reduction over a short inner axis costs
    ~14x more (measured, 8 x 16 x 64 x 64 float32 in 9-blocks: 12 ms against 0.85 ms);
    long ones (>= 32) one reduction (255-blocks of 2**18 samples: 255 passes 6.5 ms)."""
    n = m.shape[ax]
    width = min(kk, n)
    nb = n // width

    def part(sl):
        idx = [slice(None)] * m.ndim
        idx[ax] = sl
        return m[tuple(idx)]

    if width >= 32:     # long blocks: one reduction over the block axis is fast
        out = part(slice(0, nb * width)).reshape(
            m.shape[:ax] + (nb, width) + m.shape[ax + 1:]).max(axis=ax + 1)
    else:
        out = part(slice(0, nb * width, width)).copy()
        for j in range(1, width):
            np.maximum(out, part(slice(j, nb * width, width)), out=out)
    idx = [slice(None)] * m.ndim
    idx[ax] = slice(nb - 1, nb)
    for r in range(nb * width, n):
        np.maximum(out[tuple(idx)], part(slice(r, r + 1)), out=out[tuple(idx)])
    return out


def _block_range(a, k):
    """(finite, ratio): whether ``a`` (5-D) is finite, and the largest ratio, over images and
    channels, of the loudest to the quietest non-zero block of ``k`` samples per dim."""
    m = np.abs(a)
    for ax in (2, 3, 4):    # outer axes first: their slices are contiguous runs of rows
        if m.shape[ax] > 1 and k[ax - 2] > 1:
            m = _block_max(m, ax, k[ax - 2])
    m = m.reshape(m.shape[:2] + (-1,))
    top = m.max(axis=2)
    if not np.isfinite(top).all():
        return False, np.inf
    low = np.where(m > 0, m, np.inf).min(axis=2)
    ratio = np.where(np.isfinite(low), top / np.where(np.isfinite(low), low, 1.0), 1.0)
    return True, float(ratio.max()) if ratio.size else 1.0


def _route(a, others, k):
    """"fft", "float64" or "direct" for transforming ``a`` with ``others`` (see above)."""
    if a.size == 0:
        return "fft"
    if not all(np.isfinite(o.min()) and np.isfinite(o.max()) for o in others if o.size):
        return "direct"
    finite, ratio = _block_range(a, k)
    if not finite:
        return "direct"
    if ratio <= config.FFT_MAX_RANGE:
        return "fft"
    if a.dtype == np.float32 and ratio <= config.FFT_MAX_RANGE * 2.0 ** 29:
        return "float64"
    return "direct"


def _direct():
    from . import direct
    return direct


def _kext(w_shape, params):
    return tuple(d * (k - 1) + 1 for d, k in zip(params.dilation, w_shape[2:]))


def forward(x, w, params, backend, prepared=None, tile=None):
    """y = x (*) w through spectra; ``prepared`` from :func:`prepare` skips the kernel's
    transform, ``tile`` forces the tile lengths (see :func:`plan`).  Non-finite inputs and
    a dynamic range the transform would lose go to float64 or the direct kernel (above)."""
    route = _route(x, (w,), _kext(w.shape, params))
    if route == "direct":
        return _direct().forward(x, w, params, backend)
    if route == "float64":
        return _forward(x.astype(np.float64), w.astype(np.float64), params, backend, None,
                        tile).astype(x.dtype)
    return _forward(x, w, params, backend, prepared, tile)


def grad_input(gy, w, x_shape, params, backend, prepared=None, tile=None):
    """gx = gy (*) w (a true convolution, overlap-added over tiles); guarded as
    :func:`forward`."""
    route = _route(gy, (w,), _kext(w.shape, params))
    if route == "direct":
        return _direct().grad_input(gy, w, x_shape, params, backend)
    if route == "float64":
        return _grad_input(gy.astype(np.float64), w.astype(np.float64), x_shape, params,
                           backend, None, tile).astype(gy.dtype)
    return _grad_input(gy, w, x_shape, params, backend, prepared, tile)


def grad_weight(gy, x, w_shape, params, backend, prepared=None, tile=None):
    """gw[j] = sum over images and outputs of xp[t + j] gy[t], summed over tiles; non-finite
    x or gy go to the direct kernel (gw is a sum over everything: no regions to lose)."""
    if not all(a.size == 0 or (np.isfinite(a.min()) and np.isfinite(a.max()))
               for a in (gy, x)):
        return _direct().grad_weight(gy, x, w_shape, params, backend)
    return _grad_weight(gy, x, w_shape, params, backend, prepared, tile)


def _one_pair(spec, kspec, groups):
    """Whether the reduction is over one channel pair (groups 1, one input and one output
    channel) on a small spectrum: then it is numpy's pointwise product, with no thread team
    to wake (the backend's parallel kernel cost 9 ms instead of 0.2 ms on 512x512 with 31x31
    in a process where torch's OpenMP runtime was loaded first)."""
    return (groups == 1 and kspec.shape[:2] == (1, 1) and spec.shape[1] == 1
            and spec.size <= config.FFT_POINTWISE_MAX_ELEMS)


def _forward(x, w, params, backend, prepared=None, tile=None):
    be = _be(backend)
    g = geometry(params, x.shape, w.shape)
    prep = _prepared(prepared, w, params, x.shape, tile)
    dims = prep.dims
    xf = _flat(_rfft(_input_tiles(_core_input(x, params, g), dims), dims))
    if prep.blas:   # Y[f] (B, C_out) = X[f] (B, C) @ conj(W[f])^T (C, C_out)
        yf = _unbatched(_matmul(_batched(xf), prep.W))
    elif _one_pair(xf, prep.W, params.groups):
        yf = xf * np.conjugate(prep.W)      # one channel pair: a pointwise product
    else:
        yf = np.empty((xf.shape[0], w.shape[0], xf.shape[2]), dtype=xf.dtype)
        be.fft_reduce_forward(xf, prep.W, yf, params.groups)
    z = _irfft(yf.reshape(yf.shape[:2] + _spec_shape(dims)), dims)
    return _assemble(z, dims, x.shape[0], g.out)


def _matmul(a, b):
    """np.matmul of (F, A, B) @ (F, B, C) stacks, F split over threads (see
    :func:`._common.stacked_matmul`)."""
    return stacked_matmul(a, b)


def _batched(spec):
    """(A, B, F) -> (F, A, B) C-contiguous: the operand layout of a batched GEMM over F."""
    return np.ascontiguousarray(spec.transpose(2, 0, 1))


def _unbatched(spec):
    """(F, A, B) -> (A, B, F) C-contiguous, for the inverse transform."""
    return np.ascontiguousarray(spec.transpose(1, 2, 0))


def _spec_shape(dims):
    axes = _axes(dims)
    sh = [1, 1, 1]
    for a in axes:
        sh[a - 2] = dims[a - 2].T
    sh[2] = dims[2].T // 2 + 1
    return tuple(sh)


def _grad_input(gy, w, x_shape, params, backend, prepared=None, tile=None):
    be = _be(backend)
    g = geometry(params, x_shape, w.shape)
    prep = _prepared(prepared, w, params, x_shape, tile)
    dims = prep.dims
    gyf = _flat(_rfft(_output_tiles(gy, dims), dims))
    if prep.blas:   # GX[f] (B, C) = GY[f] (B, C_out) @ W[f] (C_out, C)
        gxf = _unbatched(_matmul(_batched(gyf), np.conjugate(prep.W).transpose(0, 2, 1)))
    else:
        gxf = np.empty((gyf.shape[0], g.x[1], gyf.shape[2]), dtype=gyf.dtype)
        be.fft_reduce_grad_input(gyf, prep.W, gxf, params.groups)
    z = _irfft(gxf.reshape(gxf.shape[:2] + _spec_shape(dims)), dims)
    gx = _overlap_add(z, dims, x_shape[0], g.x[2:])
    if g.phases is None:
        return gx
    gxp = _depth_to_space(gx, g.phases, x_shape[1])
    return np.ascontiguousarray(gxp[(slice(None), slice(None)) +
                                    tuple(slice(lo, lo + n) for (lo, _), n in
                                          zip(params.padding, x_shape[2:]))])


def _grad_weight(gy, x, w_shape, params, backend, prepared=None, tile=None):
    be = _be(backend)
    g = geometry(params, x.shape, w_shape)
    dims = prepared.dims if prepared is not None and prepared.key == _key(
        params, x.shape, w_shape, x.dtype) and tile is None else plan(g, tile)
    xf = _flat(_rfft(_input_tiles(_core_input(x, params, g), dims), dims))
    gyf = _flat(_rfft(_output_tiles(gy, dims), dims))
    if _use_blas(g, params.groups):   # GW[f] (C_out, C) = GY[f]^H (C_out, B) @ X[f] (B, C)
        gyt = _batched(gyf)
        np.conjugate(gyt, out=gyt)
        gwf = _unbatched(_matmul(gyt.transpose(0, 2, 1), _batched(xf)))
    else:
        gwf = np.empty(tuple(g.k[:2]) + (xf.shape[2],), dtype=xf.dtype)
        be.fft_reduce_grad_weight(gyf, xf, gwf, params.groups)
        np.conjugate(gwf, out=gwf)
    r = _irfft(gwf.reshape(gwf.shape[:2] + _spec_shape(dims)), dims)
    idx = [(np.arange(k) - d.shift) % d.T for k, d in zip(g.k[2:], dims)]
    gk = r[:, :, idx[0][:, None, None], idx[1][None, :, None], idx[2][None, None, :]]
    if g.phases is not None:
        gk = _depth_to_space(gk, g.phases, w_shape[1])
    gw = gk[(slice(None), slice(None)) +
            tuple(slice(0, d * (k - 1) + 1, d) for d, k in zip(params.dilation, w_shape[2:]))]
    return np.ascontiguousarray(gw, dtype=gy.dtype)


def rule(params, x_shape, w_shape, pass_, device):
    """FFT (priority 30, after depthwise direct and Winograd) for large kernels x channels
    at stride 1 on outputs of >= 100 positions, and for the weight gradient of large kernels
    (config.RULES: scores k_volume * sqrt(channels summed over), from CPU bench data)."""
    r, f = config.RULES, facts(params, x_shape, w_shape)
    if not f.stride1 or f.out_px < r["fft_min_out_pixels"]:
        return None
    if (f.nd == 2 and not f.dilated and f.kvol <= r["fft_small_kernel_max_kvol"]
            and f.cin_g * f.cout_g >= r["fft_small_kernel_max_pairs"]
            and x_shape[0] < r["fft_small_kernel_min_batch"]):
        return None     # per-frequency GEMMs of a few rows lose to im2col's one long GEMM
    if pass_ == "grad_weight":
        wide = (f.nd < 3 and min(f.cin_g, f.cout_g) >= r["fft_grad_weight_wide_channels"]
                and f.out_px >= r["direct_min_out_pixels"]
                and f.kvol >= r["fft_grad_weight_min_kvol_wide"])
        if wide or (f.k[0] >= r["fft_grad_weight_min_k_1d"] if len(f.k) == 1
                    else f.kvol >= r["fft_grad_weight_min_kvol"]):
            return 30, f"rule: grad-weight of a large kernel ({f.kname}) -> fft"
        # 3-D kernels and dilated 2-D ones (whose spread taps span a large window) with
        # enough channels: the transforms cost little beside im2col's long columns
        if (min(f.cin_g, f.cout_g) >= r["fft_grad_weight_wide_channels"]
                and f.kvol >= r["fft_grad_weight_min_kvol_spread"]
                and f.cin_g * f.cout_g <= r["fft_grad_weight_spread_max_pairs"]
                // (r["fft_grad_weight_3d_pairs_divisor"] if f.nd == 3 else 1)
                and (f.nd == 3 or (f.dilated and f.nd == 2))
                and not im2col_team(x_shape[0], device)):
            return 30, f"rule: grad-weight of a 3-D or dilated kernel ({f.kname}) -> fft"
        return None
    if f.nd >= 3:
        return None
    chans = f.cin_g if pass_ == "fwd" else f.cout_g
    score = f.kvol * min(chans, 64) ** 0.5
    limit = (r["fft_score_1d"] if len(f.k) == 1 else
             r["fft_score_fwd"] if pass_ == "fwd" else r["fft_score_grad_input"])
    if score >= limit:
        return 30, f"rule: large kernel ({f.kname}) x channels -> fft"
    return None


def workspace_bytes(params, x_shape, w_shape, itemsize):
    """Spectra of the input tiles, kernel and output tiles (complex, half the last axis) plus
    the real tiles and their inverse."""
    g = geometry(params, x_shape, w_shape)
    dims = plan(g)
    tiles = math.prod(d.nt for d in dims)
    tvol = math.prod(d.T for d in dims)
    f = tvol // dims[2].T * (dims[2].T // 2 + 1)
    n, c, co, cg = g.x[0] * tiles, g.x[1], g.k[0], g.k[1]
    return (n * c * f + co * cg * f + n * co * f) * 2 * itemsize \
        + n * (c + co) * tvol * itemsize
