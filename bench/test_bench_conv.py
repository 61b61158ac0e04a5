"""pytest-benchmark: every offered conv (strategy, backend), forward / grad-input /
grad-weight, on each shape of a suite, beside the PyTorch and SciPy baselines.

    python -m pytest bench/test_bench_conv.py --benchmark-only
    CONVLAB_BENCH_SUITE=3x3 python -m pytest bench/ --benchmark-only --benchmark-save=3x3

Benchmarks are grouped by shape and pass ("conv resnet3x3-32c-28px fwd"); extra_info holds
gflops, pct_peak (of the measured GEMM peak), workspace_bytes and max_rel_err (against the
float64 reference; a result further than TOLERANCE fails the test before it is timed).
"""
import pytest

import kernels
from bench import measure

from .conftest import bench_cases

CASES = bench_cases()
PAIRS = measure.strategy_pairs()
BASELINES = [b for b in measure.BASELINES if measure.baseline_missing(b) is None]
IMPLS = [("convlab", s, b) for s, b in PAIRS] + \
    [("baseline", b, None) for b in BASELINES]
TOLERANCE = 1e-3  # float32 results against the float64 reference

_inputs, _refs = {}, {}


def _data(case, pass_):
    """Inputs and the float64 reference of (case, pass), computed once per session."""
    if case.name not in _inputs:
        _inputs[case.name] = measure.make_inputs(case)
    if (case.name, pass_) not in _refs:
        _refs[(case.name, pass_)] = measure.reference(case, pass_, _inputs[case.name])
    return _inputs[case.name], _refs[(case.name, pass_)]


@pytest.mark.parametrize("impl", IMPLS, ids=[f"{s}-{b}" if b else s for _, s, b in IMPLS])
@pytest.mark.parametrize("pass_", measure.PASSES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_conv(case, pass_, impl, run_benchmark, benchmark, gemm_peak):
    kind, strategy, backend = impl
    inputs, ref = _data(case, pass_)
    if kind == "convlab":
        why = measure.unsupported_reason(strategy, case)
        if why:  # the strategy cannot serve this shape; it says why
            pytest.skip(why)
        fn = measure.pass_fn(case, pass_, strategy, backend, inputs)
        out = fn()
        workspace = kernels.workspace_bytes(strategy, case.x_shape, case.w_shape,
                                            **case.conv_kwargs())
    else:
        try:
            fn = measure.baseline_fn(strategy, case, pass_, inputs)
        except measure.Unsupported as e:
            pytest.skip(str(e))
        out = fn()
        workspace = None
    err = measure.max_rel_err(measure.as_numpy(out), ref)
    assert err < TOLERANCE, f"{strategy}/{backend} {pass_} on {case.name}: error {err:.2e}"
    benchmark.group = f"conv {case.name} {pass_}"
    benchmark.extra_info.update(shape=case.spec(), strategy=strategy, backend=backend or "",
                                max_rel_err=float(err), workspace_bytes=workspace,
                                threads=kernels.get_num_threads())
    run_benchmark(fn, case.flops, gemm_peak)
