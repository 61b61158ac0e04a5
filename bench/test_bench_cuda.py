"""pytest-benchmark: the CUDA kernels (kernels/cuda) against PyTorch's cuDNN and cuBLAS.

    python -m pytest bench/test_bench_cuda.py --benchmark-only

Runs only on a machine with a CUDA GPU, numba.cuda and a CUDA build of torch (skipped
otherwise, and under the CUDA simulator).  Everything is float32 with TF32 off in PyTorch
(``torch.backends.cudnn.allow_tf32 = False``, ``torch.backends.cuda.matmul.allow_tf32 =
False``), so both sides do full-precision FP32 arithmetic.  Operands live on the GPU (torch
tensors, handed to the numba kernels through ``__cuda_array_interface__``): the timings are
kernels, not transfers; every timed call ends with a device synchronisation.

Benchmarks are grouped by problem and pass; extra_info holds gflops, max_rel_err (against
torch's FP32 result; a result further than TOLERANCE fails before it is timed) and, for the
convlab kernels, ``x_torch``: torch's time divided by ours (1.0 = as fast as cuDNN/cuBLAS;
the goals are >= 0.25 for convolution and >= 0.35 for matmul on large shapes).
"""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU and a CUDA build of torch (not the simulator)",
                allow_module_level=True)

import kernels.cuda as kc  # noqa: E402
from bench.suites import Case  # noqa: E402
from kernels.strategies.im2col import max_col_elems  # noqa: E402

if kc.simulated() or not kc.available():
    pytest.skip("numba.cuda cannot use the GPU here", allow_module_level=True)

torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.benchmark = True  # let cuDNN pick its fastest algorithm

TOLERANCE = 1e-3
PASSES = ["forward", "grad_input", "grad_weight"]
CONV_CASES = [
    Case("resnet3x3-64c-56px", (32, 64, 56, 56), (64, 64, 3, 3), padding=1),
    Case("resnet3x3-256c-14px", (32, 256, 14, 14), (256, 256, 3, 3), padding=1),
    Case("resnet1x1-256to64c-56px", (32, 256, 56, 56), (64, 256, 1, 1)),
    Case("stem7x7-s2", (32, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3),
    Case("depthwise3x3-128c-28px", (32, 128, 28, 28), (128, 1, 3, 3), padding=1, groups=128),
    Case("conv1d-k5-128c", (32, 128, 1024), (128, 128, 5), padding=2),
    Case("conv3d-3x3x3-32c-16px", (8, 32, 16, 16, 16), (32, 32, 3, 3, 3), padding=1),
]
MATMUL_SHAPES = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096),
                 (8192, 8192, 8192), (64, 576, 100352), (256, 2304, 6272)]
POOL_CASES = [("max", (32, 64, 112, 112), 3, 2, 1), ("avg", (32, 256, 28, 28), 2, 2, 0)]


def _sync(fn):
    def run():
        out = fn()
        torch.cuda.synchronize()
        return out
    return run


def _torch_ms(fn, reps=20):
    """Median milliseconds of ``fn`` on the GPU (CUDA events), after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def _rel_err(out, ref):
    out, ref = out.double(), ref.double()
    return float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def _record(benchmark, run_benchmark, fn, flops, err, baseline_ms=None, **info):
    assert err < TOLERANCE, f"{benchmark.group}: max_rel_err {err:.2e}"
    benchmark.extra_info.update(max_rel_err=err, **info)
    median = run_benchmark(_sync(fn), flops)
    if median is not None and baseline_ms is not None:
        benchmark.extra_info["x_torch"] = round(baseline_ms / (median * 1e3), 3)


# ---------------------------------------------------------------------------------------------
# convolution

def _lift(t):
    """A 3-5-D tensor viewed as 5-D (N, C, D, H, W), as the kernels take it."""
    return t.reshape(t.shape[:2] + (1,) * (5 - t.dim()) + t.shape[2:])


def _conv_setup(case):
    p = case.params()
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(case.x_shape, device="cuda", generator=gen)
    w = torch.randn(case.w_shape, device="cuda", generator=gen)
    pads = [v for lo_hi in reversed(p.padding) for v in lo_hi]  # F.pad: last dim first
    xp = torch.nn.functional.pad(x, pads).contiguous()
    gy = torch.randn(p.out_shape(case.x_shape, case.w_shape), device="cuda", generator=gen)
    args = dict(stride=p.stride, padding=[lo for lo, _ in p.padding], dilation=p.dilation,
                groups=p.groups)
    ints = tuple(p.as3d().stride) + tuple(p.as3d().dilation) + (p.groups,)
    return x, w, xp, gy, args, ints


def _torch_conv(case, pass_, x, w, gy, args):
    """(fn, result) of torch's (cuDNN) forward or gradient for the case's padding."""
    conv = getattr(torch.nn.functional, f"conv{case.ndim}d")
    if pass_ == "forward":
        def fn():
            return conv(x, w, **args)
    else:
        mask = [pass_ == "grad_input", pass_ == "grad_weight", False]
        k = 0 if pass_ == "grad_input" else 1

        def fn():
            return torch.ops.aten.convolution_backward(
                gy, x, w, None, list(args["stride"]), list(args["padding"]),
                list(args["dilation"]), False, [0] * case.ndim, args["groups"], mask)[k]
    return fn, fn()


@pytest.mark.parametrize("impl", ["direct", "im2col", "torch"])
@pytest.mark.parametrize("pass_", PASSES)
@pytest.mark.parametrize("case", CONV_CASES, ids=[c.name for c in CONV_CASES])
def test_conv(case, pass_, impl, benchmark, run_benchmark):
    p = case.params()
    if any(lo != hi for lo, hi in p.padding):
        pytest.skip("torch's convolution takes symmetric padding only")
    x, w, xp, gy, args, ints = _conv_setup(case)
    torch_fn, ref = _torch_conv(case, pass_, x, w, gy, args)
    benchmark.group = f"cuda conv {case.name} {pass_}"
    if impl == "torch":
        _record(benchmark, run_benchmark, torch_fn, case.flops, 0.0, backend="torch-cudnn")
        return
    extra = (max_col_elems(4),) if impl == "im2col" else ()  # the CPU strategies' budget
    kern = getattr(kc, f"{impl}_{pass_}")
    if pass_ == "forward":
        out = torch.empty(ref.shape, device="cuda")
        operands = (_lift(xp), _lift(w), _lift(out))
    elif pass_ == "grad_input":
        out = torch.empty(xp.shape, device="cuda")
        operands = (_lift(gy), _lift(w), _lift(out))
    else:
        out = torch.empty(w.shape, device="cuda")
        operands = (_lift(gy), _lift(xp), _lift(out))

    def fn():
        kern(*operands, *ints, *extra)
        return out
    fn()
    torch.cuda.synchronize()
    if pass_ == "grad_input":  # the kernels return the gradient of the padded input
        lo = [lo for lo, _ in p.padding]
        got = out[(slice(None), slice(None)) + tuple(slice(a, a + s) for a, s in
                                                      zip(lo, case.x_shape[2:]))]
    else:
        got = out
    _record(benchmark, run_benchmark, fn, case.flops, _rel_err(got, ref),
            _torch_ms(torch_fn), backend=f"cuda-{impl}")


# ---------------------------------------------------------------------------------------------
# matmul and pooling

@pytest.mark.parametrize("impl", ["cuda", "torch"])
@pytest.mark.parametrize("shape", MATMUL_SHAPES,
                         ids=["x".join(map(str, s)) for s in MATMUL_SHAPES])
def test_matmul(shape, impl, benchmark, run_benchmark):
    m, k, n = shape
    gen = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn((m, k), device="cuda", generator=gen)
    b = torch.randn((k, n), device="cuda", generator=gen)
    ref = a @ b
    benchmark.group = f"cuda matmul {m}x{k} @ {k}x{n}"
    if impl == "torch":
        _record(benchmark, run_benchmark, lambda: a @ b, 2 * m * k * n, 0.0,
                backend="torch-cublas")
        return
    c = torch.empty((m, n), device="cuda")

    def fn():
        kc.matmul(a, b, c)
        return c
    fn()
    torch.cuda.synchronize()
    _record(benchmark, run_benchmark, fn, 2 * m * k * n, _rel_err(c, ref),
            _torch_ms(lambda: a @ b), backend="cuda", tile=list(kc.config.GEMM_TILE))


@pytest.mark.parametrize("impl", ["cuda", "torch"])
@pytest.mark.parametrize("pass_", ["forward", "backward"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[f"{c[0]}{c[2]}s{c[3]}" for c in POOL_CASES])
def test_pool(case, pass_, impl, benchmark, run_benchmark):
    kind, shape, size, stride, pad = case
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(shape, device="cuda", generator=gen, requires_grad=True)
    pool = {"max": torch.nn.functional.max_pool2d, "avg": torch.nn.functional.avg_pool2d}[kind]
    kwargs = {"count_include_pad": True} if kind == "avg" else {}
    y_ref = pool(x, size, stride, pad, **kwargs)
    gy = torch.randn(y_ref.shape, device="cuda", generator=gen)
    (gx_ref,) = torch.autograd.grad(y_ref, x, gy)
    benchmark.group = f"cuda pool {kind}{size} stride {stride} {pass_}"
    moved = int(x.numel() + y_ref.numel()) * 4 * (1 if pass_ == "forward" else 2)

    def torch_fn():
        if pass_ == "forward":
            return pool(x.detach(), size, stride, pad, **kwargs)
        return torch.autograd.grad(pool(x, size, stride, pad, **kwargs), x, gy)[0]
    if impl == "torch":
        _record(benchmark, run_benchmark, torch_fn, None, 0.0, backend="torch",
                bytes_moved=moved)
        return
    fill = float("-inf") if kind == "max" else 0.0
    xp = torch.nn.functional.pad(x.detach(), [pad] * 4, value=fill).contiguous()
    code = {"max": 0, "avg": 1}[kind]
    y = torch.empty(y_ref.shape, device="cuda")
    gxp = torch.empty(xp.shape, device="cuda")
    ints = (code, 1, size, size, 1, stride, stride)
    kc.pool_forward(_lift(xp), _lift(y), *ints)

    def fn():
        if pass_ == "forward":
            kc.pool_forward(_lift(xp), _lift(y), *ints)
            return y
        kc.pool_backward(_lift(gy), _lift(xp), _lift(y), _lift(gxp), *ints)
        return gxp
    fn()
    torch.cuda.synchronize()
    got = y if pass_ == "forward" else gxp[:, :, pad:pad + shape[2], pad:pad + shape[3]]
    ref = y_ref if pass_ == "forward" else gx_ref
    _record(benchmark, run_benchmark, fn, None, _rel_err(got, ref), _torch_ms(torch_fn),
            backend="cuda", bytes_moved=moved)
