# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: language_level=3
"""Channel reductions of the FFT convolution, and the strided crop of its output.

The transforms themselves are scipy.fft (kernels/strategies/fft.py); these kernels do the
per-frequency products summed over channels.  Spectra are C-contiguous complex arrays
flattened over frequency: X (N, C, F), W (C_out, C/groups, F), Y (N, C_out, F).  The
complex products are written out on (re, im) pairs so that they vectorise and round like
numpy's (C99 complex multiplication would add a NaN-recovery slow path).
"""
from cython cimport floating
from cython.parallel cimport prange
from .threads cimport team
from libc.string cimport memset

import numpy as np

from .. import plan

ctypedef float complex complex64
ctypedef double complex complex128

ctypedef fused cplx:
    complex64
    complex128


cdef inline void _cmul_acc(floating* y, const floating* x, const floating* w, Py_ssize_t F,
                           floating sign) noexcept nogil:
    """y[f] += x[f] * w[f] (sign 1) or x[f] * conj(w[f]) (sign -1), on interleaved
    (re, im) pairs."""
    cdef Py_ssize_t f
    cdef floating xr, xi, wr, wi
    for f in range(F):
        xr = x[2 * f]
        xi = x[2 * f + 1]
        wr = w[2 * f]
        wi = sign * w[2 * f + 1]
        y[2 * f] += xr * wr - xi * wi
        y[2 * f + 1] += xr * wi + xi * wr


cdef inline void _cmul_acc_c(cplx* y, const cplx* x, const cplx* w, Py_ssize_t F,
                             bint conj_w) noexcept nogil:
    """_cmul_acc on complex rows, viewed as their (re, im) float pairs."""
    if cplx is complex64:
        _cmul_acc(<float*>y, <const float*>x, <const float*>w, F, -1 if conj_w else 1)
    else:
        _cmul_acc(<double*>y, <const double*>x, <const double*>w, F, -1 if conj_w else 1)


# Jobs are (row, frequency block): a row's sum over channels reads that block of every
# channel's spectrum, and blocks of ``fb`` frequencies (_block) keep those reads in cache
# across consecutive jobs (the rows of one image share their inputs).

cdef void _forward(const cplx[:, :, ::1] X, const cplx[:, :, ::1] W, cplx[:, :, ::1] Y,
                   Py_ssize_t groups, Py_ssize_t fb) noexcept:
    cdef Py_ssize_t CO = Y.shape[1], F = Y.shape[2], cg = W.shape[1], cog = CO // groups
    cdef Py_ssize_t nb = (F + fb - 1) // fb
    cdef Py_ssize_t job, n, co, ci, f0, m
    for job in prange(Y.shape[0] * nb * CO, schedule="static", num_threads=team(), nogil=True):
        n = job // (nb * CO)
        f0 = (job // CO) % nb * fb
        co = job % CO
        m = min(fb, F - f0)
        memset(&Y[n, co, f0], 0, m * sizeof(cplx))
        for ci in range(cg):
            _cmul_acc_c(&Y[n, co, f0], &X[n, (co // cog) * cg + ci, f0], &W[co, ci, f0], m,
                        True)


cdef void _grad_input(const cplx[:, :, ::1] GY, const cplx[:, :, ::1] W, cplx[:, :, ::1] GX,
                      Py_ssize_t groups, Py_ssize_t fb) noexcept:
    cdef Py_ssize_t C = GX.shape[1], F = GX.shape[2], cg = W.shape[1]
    cdef Py_ssize_t cog = W.shape[0] // groups
    cdef Py_ssize_t nb = (F + fb - 1) // fb
    cdef Py_ssize_t job, n, c, g, co, f0, m
    # each (image, input channel) row gathers from its group's outputs
    for job in prange(GX.shape[0] * nb * C, schedule="static", num_threads=team(), nogil=True):
        n = job // (nb * C)
        f0 = (job // C) % nb * fb
        c = job % C
        m = min(fb, F - f0)
        g = c // cg
        memset(&GX[n, c, f0], 0, m * sizeof(cplx))
        for co in range(g * cog, (g + 1) * cog):
            _cmul_acc_c(&GX[n, c, f0], &GY[n, co, f0], &W[co, c - g * cg, f0], m, False)


cdef void _grad_weight(const cplx[:, :, ::1] GY, const cplx[:, :, ::1] X, cplx[:, :, ::1] GW,
                       Py_ssize_t groups, Py_ssize_t fb) noexcept:
    cdef Py_ssize_t F = GW.shape[2], cg = GW.shape[1], CO = GW.shape[0]
    cdef Py_ssize_t cog = CO // groups
    cdef Py_ssize_t nb = (F + fb - 1) // fb
    cdef Py_ssize_t job, co, ci, n, f0, m
    # each (output channel, input channel) row sums over the images
    for job in prange(nb * CO * cg, schedule="static", num_threads=team(), nogil=True):
        f0 = job // (CO * cg) * fb
        co = job // cg % CO
        ci = job % cg
        m = min(fb, F - f0)
        memset(&GW[co, ci, f0], 0, m * sizeof(cplx))
        for n in range(GY.shape[0]):
            _cmul_acc_c(&GW[co, ci, f0], &GY[n, co, f0], &X[n, (co // cog) * cg + ci, f0], m,
                        True)


cdef void _crop_plane(const floating[:, :, :, :, ::1] src, floating[:, :, :, :, ::1] dst,
                      Py_ssize_t a, Py_ssize_t b, Py_ssize_t sd, Py_ssize_t sh,
                      Py_ssize_t sw) noexcept nogil:
    cdef Py_ssize_t i, j, k
    cdef const floating* s
    cdef floating* d
    for i in range(dst.shape[2]):
        for j in range(dst.shape[3]):
            s = &src[a, b, i * sd, j * sh, 0]
            d = &dst[a, b, i, j, 0]
            for k in range(dst.shape[4]):
                d[k] = s[k * sw]


cdef void _strided_crop(const floating[:, :, :, :, ::1] src, floating[:, :, :, :, ::1] dst,
                        Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw) noexcept:
    cdef Py_ssize_t B = dst.shape[1], job
    for job in prange(dst.shape[0] * B, schedule="static", num_threads=team(), nogil=True):
        _crop_plane(src, dst, job // B, job % B, sd, sh, sw)


# ---- Python-level wrappers: validate, then dispatch on dtype

def fft_reduce_forward(X, W, Y, groups):
    """Y[n, co, f] = sum_ci X[n, g*Cg + ci, f] * conj(W[co, ci, f]); X (N, C, F),
    W (C_out, C/groups, F), Y (N, C_out, F) complex; Y is overwritten."""
    dt, groups, fb = plan.fft_reduce_call("cython fft_reduce_forward", "forward", X, W, Y,
                                          groups)
    if dt == np.complex64:
        _forward[complex64](X, W, Y, groups, fb)
    else:
        _forward[complex128](X, W, Y, groups, fb)


def fft_reduce_grad_input(GY, W, GX, groups):
    """GX[n, c, f] = sum over the output channels co of c's group of
    GY[n, co, f] * W[co, c - g*Cg, f]; GX (N, C, F) is overwritten."""
    dt, groups, fb = plan.fft_reduce_call("cython fft_reduce_grad_input", "grad_input", GY, W,
                                          GX, groups)
    if dt == np.complex64:
        _grad_input[complex64](GY, W, GX, groups, fb)
    else:
        _grad_input[complex128](GY, W, GX, groups, fb)


def fft_reduce_grad_weight(GY, X, GW, groups):
    """GW[co, ci, f] = sum_n GY[n, co, f] * conj(X[n, g*Cg + ci, f]); GW (C_out, C/groups, F)
    is overwritten."""
    dt, groups, fb = plan.fft_reduce_call("cython fft_reduce_grad_weight", "grad_weight", GY,
                                          X, GW, groups)
    if dt == np.complex64:
        _grad_weight[complex64](GY, X, GW, groups, fb)
    else:
        _grad_weight[complex128](GY, X, GW, groups, fb)


def strided_crop(src, dst, sd, sh, sw):
    """dst[a, b, i, j, k] = src[a, b, i*sd, j*sh, k*sw] for real 5-D arrays; dst is
    overwritten."""
    dt, s = plan.strided_crop_call("cython strided_crop", src, dst, sd, sh, sw)
    if dt == np.float32:
        _strided_crop[float](src, dst, s[0], s[1], s[2])
    else:
        _strided_crop[double](src, dst, s[0], s[1], s[2])
