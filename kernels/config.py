"""Tunables, in one place, with defaults that tests may patch.

Every backend and strategy reads its tunables here, at call time (a test or a bench run
patches ``kernels.config.NAME``), so a comparison of backends compares kernels under one
planner.  The exceptions are sizes compiled into a kernel (the hand-written matmul tiles:
Cython enums, Numba globals frozen at compile time), listed last.

Environment variables override the defaults at import time:

    CONVLAB_NUM_THREADS         threads for numba, OpenMP and BLAS (default: all cores)
    CONVLAB_WORKSPACE_MB        im2col column-buffer budget in MiB (default 32: buffers up to the
                                malloc limit kernels sets stay mapped and are reused; with 64,
                                MNIST conv2 at batch 64 took 19-31 ms a pass, with 32 15-25 ms)
    CONVLAB_STRATEGY            force a conv strategy for strategy="auto" ("direct", "fft", ...)
    CONVLAB_BACKEND             force a backend for backend="auto" ("numba", "cython")
    CONVLAB_CACHE_DIR           where the autotune cache lives (default: the user cache dir)
    CONVLAB_NO_AUTOTUNE         set to 1 to ignore the autotune cache in select()
    CONVLAB_BLAS_THREADS        "team" (default): OpenBLAS runs its parallel calls on convlab's
                                OpenMP team (kernels.runtime); "native": its own pool
    CONVLAB_MALLOC              "default" leaves glibc's malloc thresholds alone (kernels.runtime)
    CONVLAB_COMPILE_HELPER      0: no second process compiling Numba kernels ahead in
                                convlab compare / autotune / compile
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

# Winograd (kernels/strategies/winograd.py): output tile m of F(m x m, 3 x 3) for forward and
# grad-input; grad-weight stays at 2 because F(4x4)'s weight gradient errs up to 12.5x the
# direct kernel's in float32 (measured); chunk bytes of the transformed tiles (8-16 MiB best).
WINOGRAD_TILE = 4
WINOGRAD_GRAD_WEIGHT_TILE = 2
WINOGRAD_CHUNK_BYTES = 16 * 2**20

# Winograd tile transforms: tiles per block of a job's scratch planes (both backends).
WINOGRAD_BLOCK_TILES = 128

# im2col planner (kernels/plan.py, both backends).  Multiply-adds of one image's GEMM from
# which images get GEMMs of their own (block layout, cache-sized chunks).  The two backends
# had 2**24 (Numba) and 2**20 (Cython: on a quiet machine, 2 threads, shapes between the two
# ran 1.07x faster in the geometric mean over the suites, MNIST conv2 1.07-1.24x, worst 0.94x).
# One value now, 2**24: re-measured under load (2 shared cores, 2 threads, ABBA, 6 rounds,
# December 2026), 2**20 was 2-27x slower than 2**24 in 17 of 18 pass x backend cases (MNIST
# conv2 20 -> 50 5x5 at batch 64, a 1x1/s2 64 -> 128 projection, 3x3 32 -> 32 at 14 px; the
# exception Cython MNIST conv2 grad-weight, 0.89x): a GEMM an image means many small BLAS
# calls, each waking its threads, which a busy machine makes slow.
IM2COL_BLOCK_MIN_MACS = 1 << 24
# Column elements of a chunk of per-image blocks: about what stays in the last-level cache.
IM2COL_BLOCK_CHUNK_ELEMS = 1 << 21
# Elements a chunk must copy before its copies are split over threads.
IM2COL_PARALLEL_MIN_ELEMS = 1 << 15
# Team layout of the Cython im2col (batches): each thread of convlab's team takes whole
# images, builds their columns and runs their GEMMs on a single-threaded BLAS, so no thread
# waits inside a GEMM for another (OpenBLAS's threaded GEMM synchronises its threads with spin
# barriers; on a busy machine a descheduled partner stalls them) and no BLAS pool is woken per
# call.  Used when the batch has at least IM2COL_TEAM_MIN_IMAGES images per thread or divides
# evenly among the threads.  Measured: README, "Speed in any process".
IM2COL_TEAM = True
IM2COL_TEAM_MIN_IMAGES = 4

# Direct convolution (both backends): elements of one wide accumulator chunk (8 KiB of
# float32, in L1 with the source rows it reads); grad-weight taps x lanes of the per-lane
# sums (16 KiB of float32).
DIRECT_CHUNK = 2048
DIRECT_GW_LANES = 4096

# FFT (kernels/strategies/fft.py).  Cost model of plan(), in units of one transform
# point-level (one point, one log2 step); rough fits to interleaved timings on this machine
# (2-core AVX2, shared): a complex multiply-add of the reduction costs about one point-level
# of scipy.fft; the kernel's pruned transform about half a full one; tiling adds the gather
# and assembly copies and cache misses of the transposes (~10 point-levels per tile point and
# channel: single tiles won 13.7 vs 14.9 ms on 512x512 "same" with 31x31, 48 vs 58-63 ms on
# the 65536-sample 1-D case) and about 3000 point-levels of Python work per tile and image.
FFT_REDUCE_COST = 1.0
FFT_COPY_COST = 10.0
FFT_TILE_COST = 3000.0
FFT_MAX_TILES = 4096            # tiles per image beyond which tiling is not considered
# A single plane (one image and channel) of fewer transform points than this is transformed
# on one scipy.fft worker (splitting a 528x540 transform over two cost 6% more here).
FFT_THREADS_MIN_POINTS = 1 << 20
# Spectra of up to this many complex elements with one channel pair are multiplied by numpy
# (one pointwise product) instead of the backend's parallel reduction.
FFT_POINTWISE_MAX_ELEMS = 1 << 20
# From this many channel pairs (C/groups * C_out/groups, groups == 1) the per-frequency
# reduction is a batched BLAS cgemm, (F, B, C) @ (F, C, C_out), instead of the backend's
# kernel: measured here (2-core AVX2), the Cython kernel wins up to 8x8 channels (1.4 ms vs
# 2.9 ms for B 8, F 10512), ties at 16x16 (9.0 vs 7.5) and loses 3x at 48x64 (54 vs 19).
FFT_BLAS_MIN_CHANNELS = 256

# FFT (kernels/strategies/fft.py): the largest ratio of the loudest to the quietest non-zero
# block (one kernel extent per dim) of an image channel that a transform in the data's own
# dtype serves.  Its error in a quiet block is about 1e-7 x the ratio, relative, in float32
# (measured: ratio 1e8 -> relative error 7-14); 1024 keeps it near 1e-4.  Above, float32
# data is transformed in float64 (up to 1024 * 2**29), and beyond that the direct kernel runs.
FFT_MAX_RANGE = 1024.0

# Thresholds of the strategies' rule hooks (kernels.registry.rule_choice), from
# `convlab compare --suite <each> --pass all --threads 2` on
# the 2-core AMD EPYC (AVX2) this project is developed on, on a quiet machine, November 2026
# (README, "How auto chooses").  Each is a crossing point of two strategies' median times;
# where two were within noise, the one with less workspace is kept.
RULES = {
    # depthwise / thin groups (groups > 1): a GEMM of <= 4 rows wastes BLAS; direct won every
    # pass (mobilenet dw 3x3 at 14-112 px, effnet dw 5x5, resnext g32 with 4 channels a group).
    "thin_group_channels": 4,
    # Winograd needs enough channels to amortise its transforms (16 channels, three runs:
    # cifar 32 px forward winograd 2.0-3.0 ms, direct 2.2-2.3, im2col 2.9-3.5; grad-input won
    # or tied direct; grad-weight won 2 of 3 against im2col; digits 8 px won 7 of 9 pass-runs;
    # 32c/28px won forward and grad-weight 1.1x, lost grad-input 1.2x; 64c and up won
    # 1.0-1.8x over im2col) and enough output to fill tiles (7x7 output with 512 channels:
    # im2col 1.6-2.5x faster).
    "winograd_min_channels": 16,
    "winograd_min_out_pixels": 64,
    # FFT when k_volume * sqrt(channels summed over) reaches these scores (2-D and 1-D; 3-D
    # kernels stay off FFT for forward and grad-input: 3x3x3 16c lost 3-5x, 5x5x5 8c lost
    # 1.25x forward and won 1.1x grad-input, not worth its memory).  Forward: 7x7 32c (277)
    # lost to im2col 1.2x, 9x9 16c (324) won 1.2x, 11x11 8c (342) won 1.8x, 21x21 1c won
    # 1.7x.  Grad-input (direct's scatter form is slower): 15x15 1c (225) won 1.1x, 9x9 16c
    # 1.3x, 5x5 40c (158) 1.2-1.3x over im2col.  1-D transforms are cheaper: k65 16c won
    # 1.9x, k31 32c 1.7x; k31 16c (124) forward won 5x over im2col and 2.4x over torch, k127
    # 1c (127) 2.7x over im2col (issue 11, numpy and torch imported first, under load).
    "fft_score_fwd": 300.0,
    "fft_score_grad_input": 150.0,
    "fft_score_1d": 100.0,
    # ... on outputs of >= 100 positions an image (MNIST 5x5 20 -> 50 channels on 8x8
    # outputs: im2col 1.8x faster than FFT).
    "fft_min_out_pixels": 100,
    # ... and not for undilated 2-D kernels of <= 25 taps with >= 64 x 64 channel pairs on
    # batches of < 16 images: the per-frequency products are GEMMs of N rows (issue 11, torch
    # and numpy imported first, 2 threads, under load: AlexNet conv2 5x5 64 -> 192, batch 4,
    # grad-input fft 183-820 ms vs im2col 74-416 ms, grad-weight 196-797 vs 148-576;
    # inception 5x5 96 -> 128 at 28 px grad-input 1012-1467 vs 284-348, grad-weight 599-650
    # vs 384-468).  MNIST conv2 (20 -> 40 channels, batch 64) keeps fft.
    "fft_small_kernel_max_kvol": 25,
    "fft_small_kernel_max_pairs": 4096,
    "fft_small_kernel_min_batch": 16,
    # FFT for grad-weight (stride 1): from a 7x7 kernel (1-D: k >= 15; 3-D 5x5x5 8c won
    # 1.2-1.35x) it beat im2col and direct on every measured shape (1.1-5x); from 5x5 when
    # both channel counts are >= 16 and the output has >= 100 positions (MNIST conv2, 20 -> 40
    # channels at 24 px: 1.1-1.6x over im2col in four runs; at 12 px im2col won 1.5-1.9x;
    # 1 -> 20 channels im2col won 3-4x).
    "fft_grad_weight_min_kvol": 49,
    "fft_grad_weight_min_k_1d": 15,
    "fft_grad_weight_min_kvol_wide": 25,
    "fft_grad_weight_wide_channels": 16,
    # ... and for 3-D kernels and dilated 2-D ones of >= 9 taps with >= 16 channels both
    # sides (issue 11, numpy and torch imported first, 2 threads, under load, December 2026:
    # 3x3x3 16 -> 32 at 32 vox fft 320 ms vs im2col 1168 ms, direct 1243 ms; dilated 3x3 d2
    # 64c at 56 px fft 124 ms vs im2col 290 ms; 16c at 64 px fft 29 ms vs im2col 35-189 ms).
    # Up to 64 x 64 channel pairs: dilated 3x3 d4 128c at 28 px lost (fft 511 ms, im2col
    # 216-244 ms); 3-D up to a quarter of that: 3x3x3 32 -> 64 at 16 vox lost (fft 395 ms,
    # im2col 174-396 ms).
    "fft_grad_weight_min_kvol_spread": 9,
    "fft_grad_weight_spread_max_pairs": 4096,
    "fft_grad_weight_3d_pairs_divisor": 4,
    # direct beats im2col (stride 1, >= 100 output positions an image; below that im2col's
    # few large copies win, 8x8 digits: 1.5-2x) when the GEMM would be thin: forward with a
    # reduction C_in/groups * k_volume <= 16 or <= 8 output channels (1-channel 15x15 filter:
    # im2col 12x slower); grad-input with C_out/groups * k_volume <= 150 (1-D k9 16 -> 1
    # channels: direct 1.3x faster; k3 64 channels: im2col 1.3x faster) or a kernel of >= 49
    # taps that FFT did not take; 3-D kernels up to 32 channels (volume 3x3x3 16c: direct
    # 1.8x faster forward, 1.2x grad-input; with stride 2 im2col won 1.5x).
    "direct_min_out_pixels": 100,
    "direct_fwd_max_reduction": 16,
    "direct_fwd_max_out_channels": 8,
    "direct_grad_input_max_reduction": 150,
    "direct_grad_input_min_kvol": 49,
    "direct_3d_max_channels": 32,
    # dilated 2-D kernels (stride 1) -> direct for forward and grad-input: im2col
    # copies every spread tap into its columns (issue 11, numpy and torch imported first, 2
    # threads, under load: dilated 3x3 d2 64c at 56 px forward direct 55 ms vs im2col
    # 142-252 ms, torch 48 ms; grad-input 56 vs 73-222 ms; 16c at 64 px forward 12-32 vs
    # 66-80 ms; d4 128c at 28 px forward 51-57 vs 168-204 ms, but grad-input 86 vs 40-72 ms,
    # hence grad-input only up to 64 output channels a group).  1-D stays with the reduction
    # rules (tcn k3 d8 64c: im2col won grad-input).
    "direct_dilated_grad_input_max_channels": 64,
}


# Compiled into kernels (changing them needs a rebuild / clearing the Numba cache): the
# hand-written matmul's blocks.  Numba (kernels/_numba/gemm.py reads these at compile time):
GEMM_BLOCK_M = 64
GEMM_BLOCK_N = 256
GEMM_BLOCK_K = 128
# Cython (kernels/_cython/matmul.pyx, cdef enum: packing buffers on the stack): MC 64 rows
# of a per thread, KC 256 depth and NC 512 columns of a packed block of b.

# kernels.filters strategy rules (kernels.filters.select), from `convlab compare --suite filters`
# (1024x1024 float32, 2 threads; figures in README): a Gaussian axis of this radius or more goes
# through per-axis FFTs; a box of this size or more through running sums; median windows of up
# to FILTER_MEDIAN_NETWORK elements (FILTER_MEDIAN_NETWORK_UINT8 for uint8, above which uint8
# uses the sliding histogram) through sorting networks.
FILTER_FFT_RADIUS = 48
FILTER_RUNNING_SIZE = 15
FILTER_MEDIAN_NETWORK = 25
FILTER_MEDIAN_NETWORK_UINT8 = 25
