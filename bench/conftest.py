"""Shared setup of the pytest-benchmark suites in bench/.

Run them with ``python -m pytest bench/ --benchmark-only``.  Environment variables:

    CONVLAB_BENCH_SUITE   the conv suite to run (default "quick"; see bench.suites)
    CONVLAB_BENCH_TIME    seconds of timed rounds per benchmark (default 0.2)
    CONVLAB_NUM_THREADS   threads for numba, OpenMP, BLAS and the torch baseline

Each benchmark runs ``benchmark.pedantic`` with enough rounds to fill CONVLAB_BENCH_TIME
(5 to 200 rounds), so a suite's duration is predictable; pytest-benchmark computes the
statistics.  Results are checked against the float64 reference before they are timed.
"""
import math
import os
import time

import pytest

from bench import measure
from bench.suites import SUITE_NAMES, get_suite

BENCH_SUITE = os.environ.get("CONVLAB_BENCH_SUITE", "quick")


def pytest_configure(config):
    if BENCH_SUITE not in SUITE_NAMES:
        raise pytest.UsageError(f"CONVLAB_BENCH_SUITE={BENCH_SUITE!r} is not a suite; valid "
                                f"suites: {', '.join(SUITE_NAMES)}")


def bench_cases():
    """The cases of the suite named by CONVLAB_BENCH_SUITE."""
    return get_suite(BENCH_SUITE)


@pytest.fixture(scope="session")
def gemm_peak():
    """The measured float32 GEMM peak (GFLOP/s), for extra_info["pct_peak"]."""
    return measure.gemm_peak()


def _bench_time():
    text = os.environ.get("CONVLAB_BENCH_TIME", "0.2")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise pytest.UsageError(f"CONVLAB_BENCH_TIME must be a positive number of seconds, "
                                f"received {text!r}")
    return value


@pytest.fixture
def run_benchmark(benchmark):
    """run_benchmark(fn, flops, peak) -> median seconds (None when benchmarks are disabled).

    Times ``fn`` with pytest-benchmark (one warm-up round, then enough rounds to fill
    CONVLAB_BENCH_TIME) and records gflops / pct_peak in extra_info.
    """
    def run(fn, flops=None, peak=None):
        t0 = time.perf_counter()
        fn()
        first = max(time.perf_counter() - t0, 1e-7)
        rounds = int(min(200, max(5, math.ceil(_bench_time() / first))))
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
        stats = getattr(benchmark, "stats", None)
        if stats is None:  # --benchmark-disable: ran once, nothing timed
            return None
        median = stats.stats.median
        if flops:
            gflops = flops / median / 1e9
            benchmark.extra_info["gflops"] = round(gflops, 3)
            if peak:
                benchmark.extra_info["pct_peak"] = round(100.0 * gflops / peak, 2)
        return median
    return run
