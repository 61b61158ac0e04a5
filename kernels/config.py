"""Tunables, in one place, with defaults that tests may patch.

Environment variables override the defaults at import time:

    CONVLAB_NUM_THREADS         threads for numba, OpenMP and BLAS (default: all cores)
    CONVLAB_WORKSPACE_MB        im2col column-buffer budget in MiB (default 32: buffers up to the
                                malloc limit kernels sets stay mapped and are reused; with 64,
                                MNIST conv2 at batch 64 took 19-31 ms a pass, with 32 15-25 ms)
    CONVLAB_STRATEGY            force a conv strategy for strategy="auto" ("direct", "fft", ...)
    CONVLAB_BACKEND             force a backend for backend="auto" ("numba", "cython")
    CONVLAB_CACHE_DIR           where the autotune cache lives (default: the user cache dir)
    CONVLAB_NO_AUTOTUNE         set to 1 to ignore the autotune cache in select()
"""
import os

WORKSPACE_BYTES = int(float(os.environ.get("CONVLAB_WORKSPACE_MB", "32")) * 2**20)
FORCE_STRATEGY = os.environ.get("CONVLAB_STRATEGY") or None
FORCE_BACKEND = os.environ.get("CONVLAB_BACKEND") or None
USE_AUTOTUNE = os.environ.get("CONVLAB_NO_AUTOTUNE", "0") != "1"


def cache_dir():
    """The directory of the autotune cache (XDG cache dir by default)."""
    env = os.environ.get("CONVLAB_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "convlab")

# Winograd (kernels/conv/winograd.py): output tile m of F(m x m, 3 x 3) for forward and
# grad-input; grad-weight stays at 2 because F(4x4)'s weight gradient errs up to 12.5x the
# direct kernel's in float32 (measured); chunk bytes of the transformed tiles (8-16 MiB best).
WINOGRAD_TILE = 4
WINOGRAD_GRAD_WEIGHT_TILE = 2
WINOGRAD_CHUNK_BYTES = 16 * 2**20

# kernels.filters strategy rules (kernels.filters.select), from `convlab compare --suite filters`
# (1024x1024 float32, 2 threads; figures in README): a Gaussian axis of this radius or more goes
# through per-axis FFTs; a box of this size or more through running sums; median windows of up
# to FILTER_MEDIAN_NETWORK elements (FILTER_MEDIAN_NETWORK_UINT8 for uint8, above which uint8
# uses the sliding histogram) through sorting networks.
FILTER_FFT_RADIUS = 48
FILTER_RUNNING_SIZE = 15
FILTER_MEDIAN_NETWORK = 25
FILTER_MEDIAN_NETWORK_UINT8 = 25
