"""convlab's comparison harness: named shape suites, measurements, reports, the `convlab` CLI.

- :mod:`bench.suites`  -- named convolution shape suites and the shape-spec parser;
- :mod:`bench.measure` -- timing, FLOPs, error vs the float64 reference, GEMM peak, baselines
  (PyTorch, SciPy), autotune;
- :mod:`bench.report`  -- rich tables, JSON and PNG plots;
- :mod:`bench.cli`     -- the ``convlab`` command (``python -m bench`` runs it too).

The pytest-benchmark suites live beside them: ``python -m pytest bench/ --benchmark-only``.
"""

import kernels  # noqa: F401,E402
