"""Shared helpers of the kernel tests: the (strategy, backend) pairs under test, a seeded
generator, an independent per-element convolution loop (the oracle's own oracle) and the one
tolerance rule every comparison with the float64 reference uses.

Nothing here is autouse: test files that import nothing from this module are unaffected.
"""
import itertools
import math
import zlib

import numpy as np
import pytest

import kernels
from kernels import registry


def conv_pairs():
    """Every (strategy, backend) this machine offers, except the reference (the oracle)."""
    return [pair for pair in kernels.available("conv") if pair[0] != "reference"]


def pair_id(pair):
    return "-".join(pair)


@pytest.fixture
def rng(request):
    """A generator seeded by the test's id: data differ between tests, failures reproduce."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def lift(shape):
    """(N, C, *spatial) -> the 5-D shape the strategies see."""
    shape = tuple(shape)
    return shape[:2] + (1,) * (5 - len(shape)) + shape[2:]


def unsupported(strategy, x_shape, w_shape, kw):
    """The reason ``strategy`` gives for not serving this configuration, or None."""
    p = kernels.conv_params(x_shape, w_shape, **kw)
    return registry.strategy_module(strategy).supports(p.as3d(), lift(x_shape), lift(w_shape))


def naive_conv(x, w, stride, padding, dilation, groups):
    """Cross-correlation in float64, one output element at a time, straight from the formula

        y[n, co, o] = sum_{ci, k} xpad[n, g*Cg + ci, o*stride + k*dilation] * w[co, ci, k]

    stride, dilation: tuples; padding: (lo, hi) pairs.  Slow; tiny shapes only."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(tuple(p) for p in padding))
    cg, cout_g = w.shape[1], w.shape[0] // groups
    out = [(n - d * (k - 1) - 1) // s + 1
           for n, k, s, d in zip(xp.shape[2:], w.shape[2:], stride, dilation)]
    y = np.zeros((x.shape[0], w.shape[0], *out))
    for n, co, *o in itertools.product(range(x.shape[0]), range(w.shape[0]), *map(range, out)):
        g = co // cout_g
        acc = 0.0
        for ci, *k in itertools.product(range(cg), *map(range, w.shape[2:])):
            pos = tuple(oi * s + ki * d for oi, ki, s, d in zip(o, k, stride, dilation))
            acc += xp[(n, g * cg + ci) + pos] * w[(co, ci, *k)]
        y[(n, co, *o)] = acc
    return y


def run_conv(op, a, b, shape, kw, strategy, backend="auto"):
    """One public kernel call.  op: "forward" (a=x, b=w), "grad_input" (a=gy, b=w,
    shape=x_shape) or "grad_weight" (a=gy, b=x, shape=w_shape)."""
    if op == "forward":
        return kernels.conv(a, b, strategy=strategy, backend=backend, **kw)
    if op == "grad_input":
        return kernels.conv_grad_input(a, b, shape, strategy=strategy, backend=backend, **kw)
    return kernels.conv_grad_weight(a, b, shape, strategy=strategy, backend=backend, **kw)


def conv_operands(op, x, w, gy):
    """(a, b, shape) of :func:`run_conv` for ``op``."""
    return {"forward": (x, w, None), "grad_input": (gy, w, x.shape),
            "grad_weight": (gy, x, w.shape)}[op]


def check_conv(op, strategy, backend, x, w, gy, kw):
    """Run ``op`` with (strategy, backend) and compare it with the float64 reference.

    Tolerance.  The reference is evaluated in float64 on exactly the (float32-rounded) inputs,
    so the only error left is the candidate's own arithmetic.  Any summation order of a
    length-R dot product in precision u errs by at most ~R*u*sum|a_i*b_i| (Higham, Accuracy and
    Stability, 3.1), and sum|a_i*b_i| is the same linear op applied to |a| and |b|, so
    M = max(op(|a|, |b|)) bounds it for every output element.  FFT results err instead by
    ~u*log2(L)*||a||*||b|| over the whole transform of length L (Higham 24.1), so for "fft"
    that term is added.  A factor 8 covers the output rounding and constant factors; a typical
    bug (a wrong tap, index or sign) is off by O(M), a hundred times more than this.
    """
    a, b, shape = conv_operands(op, x, w, gy)
    got = run_conv(op, a, b, shape, kw, strategy, backend)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = run_conv(op, a64, b64, shape, kw, "reference")
    mag = run_conv(op, np.abs(a64), np.abs(b64), shape, kw, "reference")
    p = kernels.conv_params(x.shape, w.shape, **kw)
    out_vol = math.prod(p.out_spatial(x.shape[2:], w.shape[2:]))
    k_vol = math.prod(w.shape[2:])
    reduction = {"forward": w.shape[1] * k_vol, "grad_input": w.shape[0] // p.groups * k_vol,
                 "grad_weight": x.shape[0] * out_vol}[op]
    u = np.finfo(x.dtype).eps / 2
    bound = reduction * float(mag.max(initial=0.0))
    if strategy == "fft":
        transform = math.prod(p.padded_spatial(x.shape[2:]))
        bound += math.log2(transform + 1) * np.linalg.norm(a64) * np.linalg.norm(b64)
    tol = 8 * u * bound
    assert got.dtype == x.dtype, f"{op}: dtype {got.dtype}, expected {x.dtype}"
    assert got.shape == want.shape, f"{op}: shape {got.shape}, expected {want.shape}"
    err = np.abs(got.astype(np.float64) - want)
    worst = np.unravel_index(np.argmax(err), err.shape) if err.size else None
    assert err.max(initial=0.0) <= tol, (
        f"{strategy}/{backend} {op} {x.dtype}: max|err| {err.max():.3g} > tol {tol:.3g} at "
        f"{worst}: got {got[worst]!r}, reference {want[worst]!r}")


@pytest.fixture(scope="module")
def one_thread():
    """One kernel thread for the module (tiny calls: thread wake-ups would dominate)."""
    before = kernels.get_num_threads()
    kernels.set_num_threads(1)
    yield
    kernels.set_num_threads(before)
