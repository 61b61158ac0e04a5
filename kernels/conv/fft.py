"""FFT convolution: pointwise products of spectra, summed over input channels.

Cross-correlation is a product in the frequency domain, y = irfft(X * conj(W)).  Linear (not
circular) results need transforms at least as long as the padded input L along each dim:
for output t <= L - K_eff the circular index t + j never wraps.  We use
scipy.fft.next_fast_len(L) (5-smooth sizes).  Dilation is applied by spreading the kernel
taps d apart before its transform; stride by keeping every s-th output, so stride and
dilation give exactly the answer of the other strategies.

Gradients are the same machinery (each a convolution of what we have):
  grad-input:  gx = gy_up (*) w_dil, a true convolution: GX = sum_co GY * W
  grad-weight: gw_dil[j] = sum_t x[t + j] gy_up[t]:   GW = conj(sum_n GY * conj(X))
where gy_up is gy spread s apart (the stride's zeros).  Both fit in the same transform
length, since len(gy_up) + K_eff - 1 <= L.

The transforms are scipy.fft (multithreaded with workers=); the per-frequency channel
reductions and the strided crops are the backend's (Numba or Cython) -- that is what the
backend label means for this strategy.
"""
import numpy as np
import scipy.fft as sfft

from ..threads import get_num_threads
from ._common import backend as _be, padded, unpad

NAME = "fft"
BACKENDS = ("numba", "cython")
_AXES = (2, 3, 4)


def supports(params, x_shape, w_shape):
    return None


def fft_shape(params, x_shape):
    """Transform lengths: the next 5-smooth size >= each padded input length."""
    sp = params.padded_spatial(x_shape[2:])
    return tuple(1 if n == 1 else sfft.next_fast_len(n, real=(i == 2))
                 for i, n in enumerate(sp))


def _dilate(w, dil):
    if all(d == 1 for d in dil):
        return w
    k = w.shape[2:]
    ke = tuple(d * (kk - 1) + 1 for d, kk in zip(dil, k))
    wd = np.zeros(w.shape[:2] + ke, dtype=w.dtype)
    wd[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dil)] = w
    return wd


def _spectrum(a, fs):
    """rfftn over the 3 spatial axes, flattened to (A, B, F), C-contiguous."""
    s = sfft.rfftn(a, s=fs, axes=_AXES, workers=get_num_threads())
    return np.ascontiguousarray(s.reshape(s.shape[:2] + (-1,))), s.shape[2:]


def _inverse(spec, fshape, fs):
    return np.ascontiguousarray(sfft.irfftn(spec.reshape(spec.shape[:2] + fshape), s=fs,
                                            axes=_AXES, workers=get_num_threads()))


def prepare(w, params, x_shape):
    """The kernel's spectrum for inputs of ``x_shape`` (reuse while the weights stay the
    same)."""
    fs = fft_shape(params, x_shape)
    wf, _ = _spectrum(_dilate(w, params.dilation), fs)
    return {"fs": fs, "W": wf}


def forward(x, w, params, backend, prepared=None):
    be = _be(backend)
    fs = fft_shape(params, x.shape)
    if prepared is None or prepared["fs"] != fs:
        prepared = prepare(w, params, x.shape)
    xf, fshape = _spectrum(padded(x, params), fs)
    n, co = x.shape[0], w.shape[0]
    yf = np.empty((n, co, xf.shape[2]), dtype=xf.dtype)
    be.fft_reduce_forward(xf, prepared["W"], yf, params.groups)
    z = _inverse(yf, fshape, fs).astype(x.dtype, copy=False)
    y = np.empty((n, co) + params.out_spatial(x.shape[2:], w.shape[2:]), dtype=x.dtype)
    be.strided_crop(np.ascontiguousarray(z), y, *params.stride)
    return y


def _upsampled_spectrum(gy, params, fs):
    """Spectrum of gy spread ``stride`` apart (zeros between), zero-padded to ``fs``."""
    if all(s == 1 for s in params.stride):
        return _spectrum(gy, fs)
    up = np.zeros(gy.shape[:2] + tuple((o - 1) * s + 1 for o, s in
                                      zip(gy.shape[2:], params.stride)), dtype=gy.dtype)
    up[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in params.stride)] = gy
    return _spectrum(up, fs)


def grad_input(gy, w, x_shape, params, backend):
    be = _be(backend)
    fs = fft_shape(params, x_shape)
    wf, _ = _spectrum(_dilate(w, params.dilation), fs)
    gyf, fshape = _upsampled_spectrum(gy, params, fs)
    gxf = np.empty((x_shape[0], x_shape[1], gyf.shape[2]), dtype=gyf.dtype)
    be.fft_reduce_grad_input(gyf, wf, gxf, params.groups)
    full = _inverse(gxf, fshape, fs)
    sp = params.padded_spatial(x_shape[2:])
    gxp = full[:, :, :sp[0], :sp[1], :sp[2]].astype(gy.dtype)
    return unpad(np.ascontiguousarray(gxp), x_shape, params)


def grad_weight(gy, x, w_shape, params, backend):
    be = _be(backend)
    fs = fft_shape(params, x.shape)
    xf, fshape = _spectrum(padded(x, params), fs)
    gyf, _ = _upsampled_spectrum(gy, params, fs)
    gwf = np.empty((w_shape[0], w_shape[1], xf.shape[2]), dtype=xf.dtype)
    be.fft_reduce_grad_weight(gyf, xf, gwf, params.groups)
    np.conjugate(gwf, out=gwf)
    full = _inverse(gwf, fshape, fs).astype(gy.dtype, copy=False)
    gw = np.empty(tuple(w_shape), dtype=gy.dtype)
    be.strided_crop(np.ascontiguousarray(full), gw, *params.dilation)
    return gw


def workspace_bytes(params, x_shape, w_shape, itemsize):
    """Spectra of input, kernel and output (complex, half the last axis) plus the inverse."""
    fs = fft_shape(params, x_shape)
    f = fs[0] * fs[1] * (fs[2] // 2 + 1)
    csize = 2 * itemsize
    n, c, co, cg = x_shape[0], x_shape[1], w_shape[0], w_shape[1]
    return (n * c * f + co * cg * f + n * co * f) * csize + n * co * fs[0] * fs[1] * fs[2] * itemsize
