"""Per-frequency channel reductions of FFT convolution, and the strided crop, on the GPU.

Spectra are flattened over frequency: X (N, C, F), W (C_out, Cg, F), Y / GY (N, C_out, F),
complex64 or complex128.  One thread per result element sums over channels (or images), so
each result is owned by one thread.  The transforms themselves stay with the caller.
"""
from __future__ import annotations

from numba import cuda

from .. import plan
from ._device import device_io, launch, unravel5


@cuda.jit(cache=True)
def _reduce_forward(X, W, Y, groups, zero):
    c_out, nf = Y.shape[1], Y.shape[2]
    cg = W.shape[1]
    cout_g = c_out // groups
    for idx in range(cuda.grid(1), Y.size, cuda.gridsize(1)):
        n, _, _, co, f = unravel5(idx, 1, 1, c_out, nf)
        c0 = (co // cout_g) * cg
        acc = zero
        for ci in range(cg):
            acc += X[n, c0 + ci, f] * W[co, ci, f].conjugate()
        Y[n, co, f] = acc


@cuda.jit(cache=True)
def _reduce_grad_input(GY, W, GX, groups, zero):
    c_out = GY.shape[1]
    c_in, nf = GX.shape[1], GX.shape[2]
    cg = W.shape[1]
    cout_g = c_out // groups
    for idx in range(cuda.grid(1), GX.size, cuda.gridsize(1)):
        n, _, _, c, f = unravel5(idx, 1, 1, c_in, nf)
        g = c // cg
        acc = zero
        for co in range(g * cout_g, (g + 1) * cout_g):
            acc += GY[n, co, f] * W[co, c - g * cg, f]
        GX[n, c, f] = acc


@cuda.jit(cache=True)
def _reduce_grad_weight(GY, X, GW, groups, zero):
    n_batch, c_out = GY.shape[0], GY.shape[1]
    cg, nf = GW.shape[1], GW.shape[2]
    cout_g = c_out // groups
    for idx in range(cuda.grid(1), GW.size, cuda.gridsize(1)):
        co, _, _, ci, f = unravel5(idx, 1, 1, cg, nf)
        c = (co // cout_g) * cg + ci
        acc = zero
        for n in range(n_batch):
            acc += GY[n, co, f] * X[n, c, f].conjugate()
        GW[co, ci, f] = acc


@cuda.jit(cache=True)
def _strided_crop(src, dst, sd, sh, sw):
    b_n, i_n, j_n, k_n = dst.shape[1], dst.shape[2], dst.shape[3], dst.shape[4]
    for idx in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        a, b, i, j, k = unravel5(idx, b_n, i_n, j_n, k_n)
        dst[a, b, i, j, k] = src[a, b, i * sd, j * sh, k * sw]


def _run(kernel, inputs, output, *args):
    dtype = inputs[0].dtype
    with device_io(inputs, (output,)) as dev:
        launch(kernel, dev[-1].size, *dev, *args, dtype.type(0))


def fft_reduce_forward(X, W, Y, groups):
    """``Y[n, co, f] = sum_ci X[n, g*Cg + ci, f] * conj(W[co, ci, f])`` (g = co's group).

    X (N, C, F), W (C_out, C // groups, F), Y (N, C_out, F): complex64 or complex128,
    C-contiguous, NumPy or CUDA device arrays; Y is overwritten.

    Examples
    --------
    >>> X = np.full((1, 2, 3), 1 + 1j); W = np.full((1, 2, 3), 1j); Y = np.empty((1, 1, 3), complex)
    >>> fft_reduce_forward(X, W, Y, 1); Y[0, 0, 0]
    np.complex128(2-2j)
    """
    op = "fft_reduce_forward"
    _, groups, _ = plan.fft_reduce_call(op, "forward", X, W, Y, groups, device=True)
    _run(_reduce_forward, (X, W), Y, groups)


def fft_reduce_grad_input(GY, W, GX, groups):
    """``GX[n, c, f] = sum_{co in c's group} GY[n, co, f] * W[co, c - g*Cg, f]``.

    ``GY`` is (N, C_out, F), ``W`` (C_out, C // groups, F), ``GX`` (N, C, F), complex.

    Examples
    --------
    >>> GY = np.ones((1, 1, 2), complex); W = np.full((1, 2, 2), 2j)
    >>> GX = np.empty((1, 2, 2), complex)
    >>> fft_reduce_grad_input(GY, W, GX, 1); GX[0, 1, 0]
    np.complex128(2j)
    """
    op = "fft_reduce_grad_input"
    _, groups, _ = plan.fft_reduce_call(op, "grad_input", GY, W, GX, groups, device=True)
    _run(_reduce_grad_input, (GY, W), GX, groups)


def fft_reduce_grad_weight(GY, X, GW, groups):
    """``GW[co, ci, f] = sum_n GY[n, co, f] * conj(X[n, g*Cg + ci, f])``.

    ``GY`` is (N, C_out, F), ``X`` (N, C, F), ``GW`` (C_out, C // groups, F), complex.

    Examples
    --------
    >>> GY = np.ones((2, 1, 1), complex); X = np.full((2, 1, 1), 1j)
    >>> GW = np.empty((1, 1, 1), complex)
    >>> fft_reduce_grad_weight(GY, X, GW, 1); GW[0, 0, 0]
    np.complex128(-2j)
    """
    op = "fft_reduce_grad_weight"
    _, groups, _ = plan.fft_reduce_call(op, "grad_weight", GY, X, GW, groups, device=True)
    _run(_reduce_grad_weight, (GY, X), GW, groups)


def strided_crop(src, dst, sd, sh, sw):
    """``dst[a, b, i, j, k] = src[a, b, i*sd, j*sh, k*sw]`` for real 5-D arrays.

    Examples
    --------
    >>> src = np.arange(5.0).reshape(1, 1, 1, 1, 5); dst = np.empty((1, 1, 1, 1, 3))
    >>> strided_crop(src, dst, 1, 1, 2); dst.ravel().tolist()
    [0.0, 2.0, 4.0]
    """
    op = "strided_crop"
    _, (sd, sh, sw) = plan.strided_crop_call(op, src, dst, sd, sh, sw, device=True)
    with device_io((src,), (dst,)) as (dsrc, ddst):
        launch(_strided_crop, ddst.size, dsrc, ddst, sd, sh, sw)
