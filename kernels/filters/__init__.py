"""Classic image filters with scipy.ndimage's semantics, and strategies chosen by size.

    sobel(x, axis=-1, mode="reflect", cval=0.0, *, axes=None)      prewitt(...)   scharr(...)
    laplace(x, mode="reflect", cval=0.0, *, axes=None)
    uniform(x, size=3, mode="reflect", cval=0.0, axes=None, *, strategy="auto")     (box)
    gaussian(x, sigma, mode="reflect", cval=0.0, truncate=4.0, radius=None, axes=None,
             strategy="auto")
    median(x, size=3, footprint=None, mode="reflect", cval=0.0, axes=None, *, strategy="auto")
    magnitude(*gradients)  gradient_magnitude(x, operator="sobel", ...)
    select(op, x_shape, dtype="float32", ...) -> (strategy, reason)

Semantics are scipy.ndimage's (its functions are the test oracle): the boundary modes
reflect / nearest / mirror / constant (with cval) / wrap, n-D arrays, ``axes=`` to filter a
batch (N, C, H, W) over its spatial axes only, one size / sigma / mode per axis, windows
placed with origin 0 (even sizes reach one further back than forward), and the output has
the input's dtype: each 1-D pass writes that dtype, so uint8 images are truncated (and a
negative derivative wraps, as in scipy) -- use :func:`gradient_magnitude` for edges of
integer images.  This is correlation, as in scipy.ndimage.correlate; the derivative
filters follow scipy's sign (``sobel`` of a rising edge is positive).

Strategies (``strategy="auto"`` asks :func:`select`, whose rules come from the ``filters``
suite of ``convlab compare`` and whose thresholds live in kernels.config):

- gaussian: ``separable`` (direct 1-D passes) or ``fft`` (per-axis real FFTs, large sigma);
- uniform:  ``separable`` (direct 1-D passes) or ``running`` (running sums, any size);
- median:   ``network`` (sorting network across pixels, windows up to 81), ``histogram``
  (uint8, sliding 256-bin histogram), ``sorted`` (sliding sorted window, full boxes) or
  ``select`` (quickselect per window, as scipy).

Examples
--------
>>> import numpy as np
>>> from kernels import filters
>>> x = np.zeros((5, 5), np.float32); x[:, 2:] = 1
>>> filters.sobel(x, axis=1)[2].tolist()
[0.0, 4.0, 4.0, 0.0, 0.0]
>>> filters.median(np.array([[1, 9, 2, 8, 3]], np.uint8), size=(1, 3)).tolist()
[[1, 2, 8, 3, 3]]
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import config
from . import _linear, _median
from ._params import (as_image, check_cval, is_int, mode_checker, norm_axes, norm_axis,
                      per_axis, size_checker)

__all__ = ["sobel", "prewitt", "scharr", "laplace", "uniform", "gaussian", "median",
           "magnitude", "gradient_magnitude", "select", "STRATEGIES"]

STRATEGIES = {"gaussian": ("separable", "fft"), "uniform": ("separable", "running"),
              "median": _median.STRATEGIES}

_DERIVATIVE = np.array([-1.0, 0.0, 1.0])
_SMOOTHING = {"sobel": np.array([1.0, 2.0, 1.0]), "prewitt": np.array([1.0, 1.0, 1.0]),
              "scharr": np.array([3.0, 10.0, 3.0])}


# --------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------

def _strategy(strategy, op):
    if not isinstance(strategy, str):
        raise TypeError(f"{op}: strategy must be a string, received {strategy!r}")
    valid = ("auto",) + STRATEGIES[op]
    if strategy not in valid:
        raise ValueError(f"{op}: unknown strategy {strategy!r}, expected one of {valid}")
    return strategy


def _modes(mode, n, op):
    return per_axis(mode, n, "mode", op, mode_checker(op))


def _sigma_checker(op):
    def check(s):
        if isinstance(s, bool) or not isinstance(s, (numbers.Real, np.integer, np.floating)):
            raise TypeError(f"{op}: sigma must be a number >= 0, received {s!r}")
        s = float(s)
        if not (s >= 0 and math.isfinite(s)):
            raise ValueError(f"{op}: sigma must be finite and >= 0, received {s}")
        return s
    return check


def _radius_checker(op):
    def check(r):
        if r is None:
            return None
        if not is_int(r):
            raise TypeError(f"{op}: radius must be None or an int >= 0, received {r!r}")
        if r < 0:
            raise ValueError(f"{op}: radius must be >= 0, received {r}")
        return int(r)
    return check


def _truncate(truncate, op):
    if isinstance(truncate, bool) or not isinstance(truncate, (numbers.Real, np.floating)):
        raise TypeError(f"{op}: truncate must be a number >= 0, received {truncate!r}")
    truncate = float(truncate)
    if not (truncate >= 0 and math.isfinite(truncate)):
        raise ValueError(f"{op}: truncate must be finite and >= 0, received {truncate}")
    return truncate


def _footprint(size, footprint, ndim_f, op):
    """The bool footprint over the filtered axes (from ``footprint`` or ``size``)."""
    if footprint is not None:
        fp = np.asarray(footprint)
        if fp.dtype.kind not in "biuf":
            raise TypeError(f"{op}: footprint must be an array of bools or numbers, received "
                            f"dtype {fp.dtype}")
        fp = fp.astype(bool)
        if fp.ndim != ndim_f:
            raise ValueError(f"{op}: footprint must have {ndim_f} dims (one per filtered "
                             f"axis), received shape {fp.shape}")
        if not fp.any():
            raise ValueError(f"{op}: footprint must select at least one element, received "
                             f"an all-false footprint of shape {fp.shape}")
        return fp
    sizes = per_axis(size, ndim_f, "size", op, size_checker(op))
    return np.ones(sizes, dtype=bool)


# --------------------------------------------------------------------------------------
# strategy selection (pure)
# --------------------------------------------------------------------------------------

def _gaussian_radii(sigmas, truncate, radii):
    return tuple(r if r is not None else int(truncate * s + 0.5)
                 for s, r in zip(sigmas, radii))


def select(op, x_shape, dtype="float32", *, sigma=None, size=3, footprint=None,
           truncate=4.0, radius=None, axes=None):
    """The strategy ``strategy="auto"`` runs for this call, and a one-line reason.

    Pure: the same arguments give the same answer.  ``op`` is "gaussian", "uniform" or
    "median"; the other arguments are those of the filter (``x_shape`` and ``dtype`` stand
    for the image).

    Examples
    --------
    >>> select("median", (1024, 1024), "float32", size=5)[0]
    'network'
    >>> select("gaussian", (1024, 1024), "float32", sigma=1)[0]
    'separable'
    """
    if op not in STRATEGIES:
        raise ValueError(f"select: op must be one of {tuple(STRATEGIES)}, received {op!r}")
    if not isinstance(x_shape, (tuple, list)) or not all(is_int(s) and s >= 0
                                                          for s in x_shape):
        raise TypeError(f"select: x_shape must be a tuple of ints >= 0, received {x_shape!r}")
    dtype = np.dtype(dtype)
    ax = norm_axes(axes, len(x_shape), "select")
    if op == "gaussian":
        if sigma is None:
            raise ValueError("select: op 'gaussian' needs sigma")
        sigmas = per_axis(sigma, len(ax), "sigma", "select", _sigma_checker("select"))
        radii = per_axis(radius, len(ax), "radius", "select", _radius_checker("select"))
        r = _gaussian_radii(sigmas, _truncate(truncate, "select"), radii)
        return _select_gaussian(sigmas, r, dtype)
    if op == "uniform":
        sizes = per_axis(size, len(ax), "size", "select", size_checker("select"))
        return _select_uniform(sizes, dtype)
    fp = _footprint(size, footprint, len(ax), "select")
    return _select_median(fp, dtype)


def _select_gaussian(sigmas, radii, dtype):
    used = [r for s, r in zip(sigmas, radii) if s > 1e-15]
    if not used:
        return "separable", "every sigma is 0: a copy"
    if dtype.kind != "f":
        return "separable", (f"{dtype} image: direct passes reproduce scipy's per-pass "
                             f"truncation exactly (FFT rounding could move it)")
    big = max(used)
    if big >= config.FILTER_FFT_RADIUS:
        return "fft", (f"radius {big} >= {config.FILTER_FFT_RADIUS}: per-axis FFTs cost less "
                       f"than {2 * big + 1} taps a pass")
    return "separable", (f"radius {big} < {config.FILTER_FFT_RADIUS}: {2 * big + 1}-tap "
                         f"direct passes beat per-axis FFTs")


def _select_uniform(sizes, dtype):
    big = max(sizes) if sizes else 1
    if dtype.kind != "f":
        return "running", (f"{dtype} image: scipy's running-sum arithmetic, for its exact "
                           f"truncation")
    if big >= config.FILTER_RUNNING_SIZE:
        return "running", (f"size {big} >= {config.FILTER_RUNNING_SIZE}: running sums cost "
                           f"O(1) per element")
    return "separable", (f"size {big} < {config.FILTER_RUNNING_SIZE}: {big} direct taps a "
                         f"pass vectorise better than a running sum")


def _select_median(fp, dtype):
    count = int(fp.sum())
    if dtype == np.uint8 and count > config.FILTER_MEDIAN_NETWORK_UINT8:
        return "histogram", (f"uint8 with a {count}-element window > "
                             f"{config.FILTER_MEDIAN_NETWORK_UINT8}: sliding histogram")
    if count <= config.FILTER_MEDIAN_NETWORK or dtype == np.uint8:
        return "network", f"{count}-element window: sorting network across pixels"
    if fp.all():
        return "sorted", (f"{count}-element box > {config.FILTER_MEDIAN_NETWORK}: sliding "
                          f"sorted window")
    return "select", (f"{count}-element footprint > {config.FILTER_MEDIAN_NETWORK}, not a "
                      f"box: quickselect per window")


# --------------------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------------------

def _derivative(x, axis, mode, cval, axes, op):
    x = as_image(x, op)
    axis = norm_axis(axis, x.ndim, op)
    ax = norm_axes(axes, x.ndim, op)
    if axis not in ax:
        raise ValueError(f"{op}: axis {axis} must be one of the filtered axes {ax}")
    # scipy: one mode per axis of x (sobel / prewitt), or per filtered axis with axes=
    modes = _modes(mode, len(ax), op) if axes is not None else _modes(mode, x.ndim, op)
    mode_of = dict(zip(ax, modes)) if axes is not None else dict(enumerate(modes))
    cval = check_cval(cval, op)
    if x.size == 0:
        return x.copy()
    passes = [("corr", axis, _DERIVATIVE, mode_of[axis])]
    passes += [("corr", a, _SMOOTHING[op], mode_of[a]) for a in ax if a != axis]
    return _linear.run_passes(x, passes, cval)


def sobel(x, axis=-1, mode="reflect", cval=0.0, *, axes=None):
    """Sobel derivative along ``axis``: [-1, 0, 1] there, [1, 2, 1] smoothing along every
    other filtered axis (all axes by default, as scipy.ndimage.sobel; ``axes`` limits them,
    e.g. ``axes=(-2, -1)`` for a batch).

    Parameters
    ----------
    x : array, any real dtype, n-D.  The result has x's shape and dtype.
    axis : int, the derivative's axis.
    mode : "reflect" | "nearest" | "mirror" | "constant" | "wrap", or one per axis.
    cval : value outside the image for mode "constant".
    axes : None or tuple of ints, the axes filtered (``axis`` among them).

    Examples
    --------
    >>> x = np.zeros((3, 4), np.float32); x[:, 2:] = 1
    >>> sobel(x, axis=1)[1].tolist()
    [0.0, 4.0, 4.0, 0.0]
    """
    return _derivative(x, axis, mode, cval, axes, "sobel")


def prewitt(x, axis=-1, mode="reflect", cval=0.0, *, axes=None):
    """Prewitt derivative: [-1, 0, 1] along ``axis``, [1, 1, 1] along the other filtered
    axes (scipy.ndimage.prewitt).

    >>> prewitt(np.array([[0., 0., 1., 1.]] * 3), axis=1)[1].tolist()
    [0.0, 3.0, 3.0, 0.0]
    """
    return _derivative(x, axis, mode, cval, axes, "prewitt")


def scharr(x, axis=-1, mode="reflect", cval=0.0, *, axes=None):
    """Scharr derivative: [-1, 0, 1] along ``axis``, [3, 10, 3] along the other filtered
    axes (unnormalised, like sobel and OpenCV's Scharr; skimage divides by 32).

    >>> scharr(np.array([[0., 0., 1., 1.]] * 3), axis=1)[1].tolist()
    [0.0, 16.0, 16.0, 0.0]
    """
    return _derivative(x, axis, mode, cval, axes, "scharr")


def laplace(x, mode="reflect", cval=0.0, *, axes=None):
    """Discrete Laplacian: the sum over the filtered axes of [1, -2, 1] along each, each
    term in x's dtype and summed in it (scipy.ndimage.laplace).

    >>> laplace(np.array([0., 0., 1., 0., 0.])).tolist()
    [0.0, 1.0, -2.0, 1.0, 0.0]
    """
    op = "laplace"
    x = as_image(x, op)
    ax = norm_axes(axes, x.ndim, op)
    modes = _modes(mode, len(ax), op)
    cval = check_cval(cval, op)
    if x.size == 0 or not ax:
        return x.copy()
    w = np.array([1.0, -2.0, 1.0])
    out = _linear.run_passes(x, [("corr", ax[0], w, modes[0])], cval)
    for a, m in zip(ax[1:], modes[1:]):
        term = _linear.run_passes(x, [("corr", a, w, m)], cval)
        with np.errstate(over="ignore"):
            np.add(out, term, out=out, casting="unsafe")
    return out


def uniform(x, size=3, mode="reflect", cval=0.0, axes=None, *, strategy="auto"):
    """Box (mean) filter of ``size`` per filtered axis (scipy.ndimage.uniform_filter).

    Parameters
    ----------
    x : array, any real dtype, n-D; the result has its shape and dtype.
    size : int or one per filtered axis.
    mode, cval, axes : as :func:`gaussian`.
    strategy : "auto", "separable" (direct taps) or "running" (running sums).

    Examples
    --------
    >>> uniform(np.array([0., 3., 0., 3.]), 3).tolist()
    [1.0, 1.0, 2.0, 2.0]
    """
    op = "uniform"
    x = as_image(x, op)
    ax = norm_axes(axes, x.ndim, op)
    sizes = per_axis(size, len(ax), "size", op, size_checker(op))
    modes = _modes(mode, len(ax), op)
    cval = check_cval(cval, op)
    strategy = _strategy(strategy, op)
    if strategy == "auto":
        strategy = _select_uniform(sizes, x.dtype)[0]
    if x.size == 0:
        return x.copy()
    passes = []
    for a, s, m in zip(ax, sizes, modes):
        if s > 1:
            passes.append(("box", a, s, m) if strategy == "running" else
                          ("corr", a, np.full(s, 1.0 / s), m))
    return _linear.run_passes(x, passes, cval)


def gaussian(x, sigma, mode="reflect", cval=0.0, truncate=4.0, radius=None, axes=None,
             strategy="auto"):
    """Gaussian smoothing (scipy.ndimage.gaussian_filter): one 1-D pass per filtered axis
    with weights exp(-t^2 / (2 sigma^2)) for |t| <= radius, normalised to sum 1, where
    radius = int(truncate * sigma + 0.5) unless given.  Axes with sigma 0 are skipped.

    Parameters
    ----------
    x : array, any real dtype, n-D; the result has its shape and dtype.
    sigma : number >= 0, or one per filtered axis.
    mode : "reflect" (default) | "nearest" | "mirror" | "constant" | "wrap", or one per axis.
    cval : value outside the image for mode "constant".
    truncate : radius in sigmas (when ``radius`` is None).
    radius : None, an int >= 0, or one per filtered axis.
    axes : None (all) or the axes to filter, e.g. (-2, -1) for an (N, C, H, W) batch.
    strategy : "auto", "separable" or "fft" (per-axis real FFTs of the extended lines).

    Examples
    --------
    >>> y = gaussian(np.eye(5, dtype=np.float32), 1.0)
    >>> y.dtype, round(float(y.sum()), 4)
    (dtype('float32'), 5.0)
    """
    op = "gaussian"
    x = as_image(x, op)
    ax = norm_axes(axes, x.ndim, op)
    sigmas = per_axis(sigma, len(ax), "sigma", op, _sigma_checker(op))
    modes = _modes(mode, len(ax), op)
    cval = check_cval(cval, op)
    truncate = _truncate(truncate, op)
    radii = per_axis(radius, len(ax), "radius", op, _radius_checker(op))
    strategy = _strategy(strategy, op)
    radii = _gaussian_radii(sigmas, truncate, radii)
    if strategy == "auto":
        strategy = _select_gaussian(sigmas, radii, x.dtype)[0]
    if x.size == 0:
        return x.copy()
    kind = "fft" if strategy == "fft" else "corr"
    passes = [(kind, a, _linear.gaussian_weights(s, r), m)
              for a, s, r, m in zip(ax, sigmas, radii, modes) if s > 1e-15]
    return _linear.run_passes(x, passes, cval)


def median(x, size=3, footprint=None, mode="reflect", cval=0.0, axes=None, *,
           strategy="auto"):
    """Median filter (scipy.ndimage.median_filter), exact in every dtype.

    The window is ``size`` per filtered axis, or the true elements of ``footprint`` (one dim
    per filtered axis; ``size`` is then ignored); the result is the element of rank
    count // 2 of each window (the upper median for even counts, as scipy).

    Parameters
    ----------
    x : array, any real dtype, n-D; the result has its shape and dtype.
    size : int or one per filtered axis.     footprint : array of bools, or None.
    mode : one of the five modes (one for all axes, as scipy).
    cval : for "constant"; written to x's dtype first, as scipy does (-3 is 253 in uint8).
    axes : None (all) or the axes to filter.
    strategy : "auto", "network", "histogram" (uint8), "sorted" (boxes) or "select".

    NaNs: their place in the order is unspecified, as in scipy.

    Examples
    --------
    >>> median(np.array([[0, 9, 0], [9, 0, 0], [0, 0, 9]], np.uint8)).tolist()
    [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
    """
    op = "median"
    x = as_image(x, op)
    ax = norm_axes(axes, x.ndim, op)
    if not isinstance(mode, str):
        raise TypeError(f"{op}: mode must be one string (scipy's median takes one mode for "
                        f"all axes), received {mode!r}")
    mode = mode_checker(op)(mode)
    cval = check_cval(cval, op)
    fp = _footprint(size, footprint, len(ax), op)
    strategy = _strategy(strategy, op)
    kd = _median.kernel_dtype(x.dtype)
    if strategy == "auto":
        strategy = _select_median(fp, kd)[0]
    why = _median.supports(strategy, fp, kd)
    if why:
        raise ValueError(f"{op}: strategy {strategy!r} cannot serve x {x.shape} {x.dtype} "
                         f"with footprint {fp.shape}: {why}")
    if x.size == 0:
        return x.copy()
    return _median.median(x, fp, ax, mode, cval, strategy)


# --------------------------------------------------------------------------------------
# magnitudes
# --------------------------------------------------------------------------------------

def magnitude(*gradients):
    """sqrt(g1^2 + g2^2 + ...) of same-shape gradients, in float (float32 stays float32,
    everything else float64).

    >>> magnitude(np.array([3.0]), np.array([4.0])).tolist()
    [5.0]
    """
    if not gradients:
        raise ValueError("magnitude: needs at least one gradient array, received none")
    arrs = [as_image(g, "magnitude") for g in gradients]
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise ValueError(f"magnitude: gradients must share one shape, received "
                         f"{[a.shape for a in arrs]}")
    dt = np.float32 if all(a.dtype == np.float32 for a in arrs) else np.float64
    acc = np.zeros(arrs[0].shape, dtype=dt)
    for a in arrs:
        a = a.astype(dt, copy=False)
        acc += a * a
    return np.sqrt(acc)


def gradient_magnitude(x, operator="sobel", mode="reflect", cval=0.0, *, axes=None):
    """Edge strength: :func:`magnitude` of the ``operator`` ("sobel", "prewitt", "scharr")
    derivatives along every filtered axis.  Integer images are filtered in float64 (their
    own dtype would wrap negative derivatives), float32 in float32.

    >>> x = np.zeros((5, 5)); x[2, 2] = 1
    >>> gradient_magnitude(x)[2].round(1).tolist()
    [0.0, 2.0, 0.0, 2.0, 0.0]
    """
    op = "gradient_magnitude"
    if operator not in _SMOOTHING:
        raise ValueError(f"{op}: operator must be one of {tuple(_SMOOTHING)}, received "
                         f"{operator!r}")
    x = as_image(x, op)
    if x.dtype != np.float32:
        x = x.astype(np.float64)
    ax = norm_axes(axes, x.ndim, op)
    return magnitude(*[_derivative(x, a, mode, cval, ax, operator) for a in ax])
