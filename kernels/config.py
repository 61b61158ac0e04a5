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
import math
import os
import warnings


def _env_mb(name, default):
    """A positive number of MiB from the environment; anything else is ignored with one
    warning naming the variable (a typo must not end the import in a traceback)."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 2**40):
        warnings.warn(f"{name}={text!r} is not a positive number of MiB; using the default "
                      f"{default}", RuntimeWarning, stacklevel=2)
        return default
    return value


WORKSPACE_BYTES = int(_env_mb("CONVLAB_WORKSPACE_MB", 32) * 2**20)
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

# FFT (kernels/conv/fft.py): the largest ratio of the loudest to the quietest non-zero block
# (one kernel extent per dim) of an image channel that a transform in the data's own dtype
# serves.  Its error in a quiet block is about 1e-7 x the ratio, relative, in float32
# (measured: ratio 1e8 -> relative error 7-14); 1024 keeps it near 1e-4.  Above, float32
# data is transformed in float64 (up to 1024 * 2**29), and beyond that the direct kernel runs.
FFT_MAX_RANGE = 1024.0
