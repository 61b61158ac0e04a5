"""Attributions: which parts of the input the target's score depends on.

occlusion (Zeiler & Fergus; captum's Occlusion), saliency (Simonyan et al.; SmoothGrad),
integrated gradients (Sundararajan et al.; captum's quadratures) and Grad-CAM (Selvaraju et
al.).  Every method runs its copies of the input through the model in chunks of rows bounded
by ``batch_size`` (default: a memory budget), and needs input gradients only.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..autograd import enable_grad, no_grad
from ..layers.base import format_shape, is_int
from ..tensor import Tensor
from . import _incremental, _net
from ._net import (Net, check_batch_size, check_float, check_int, check_seed, check_targets,
                   check_x, chunks, frozen_weights, host, input_gradients, logits,
                   rows_per_chunk, scores)

__all__ = ["score", "occlusion", "saliency", "integrated_gradients", "grad_cam", "IG_METHODS"]

IG_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
              "gausslegendre")


def _prepare(model, x, target, where, batch_size=None, backward=True):
    net = Net(model, where)
    x = check_x(net, x, where)
    batch_size = check_batch_size(batch_size, where)
    rows = rows_per_chunk(net, batch_size, backward)
    t = check_targets(target, len(x), _net.n_outputs(net), where,
                      predict=lambda: _net.predicted(net, x, rows))
    return net, x, t, rows


def score(model, x, target=None, batch_size=None):
    """The score every attribution explains: the target's pre-softmax value when the model
    ends in a softmax, its output otherwise.

    Parameters
    ----------
    model, x : as :func:`occlusion`
    target : class index, one per input, or None (the predicted class)

    Returns
    -------
    (scores float64 (N,), targets int64 (N,))

    Examples
    --------
    >>> import numpy as np, engine
    >>> from engine.layers import Dense
    >>> m = engine.Sequential([Dense(2, activation="softmax", input_shape=(1,))])
    >>> m.set_weights([np.array([[1., -1.]], np.float32), np.zeros(2, np.float32)])
    >>> score(m, np.array([[3.0]]))
    (array([3.]), array([0]))
    """
    net, x, t, rows = _prepare(model, x, target, "explain.score", batch_size, backward=False)
    return scores(net, x, t, rows), t


def _window(value, rank, where, name):
    if is_int(value):
        value = (value,) * rank
    if not isinstance(value, (tuple, list)) or len(value) != rank or \
            not all(is_int(v) and v > 0 for v in value):
        raise ValueError(f"{where}: {name} must be a positive int or a tuple of {rank} "
                         f"positive ints (one per spatial dim), received {value!r}")
    return tuple(int(v) for v in value)


def occlusion(model, x, target=None, window=3, stride=None, baseline=0.0, batch_size=None):
    """Occlusion sensitivity, as captum's ``Occlusion``.

    A window of every channel, ``window`` wide in each spatial dim, is set to ``baseline``
    at offsets 0, stride, 2*stride, ... (the last window is cut at the border, as in captum:
    ceil((size - window) / stride) + 1 windows per dim).  Each input position gets the mean,
    over the windows covering it, of score(x) - score(occluded x).

    Windows that change nothing (already equal to the baseline) are not run, and the
    first, spatially local layers of a chain (convolutions, pooling, pointwise layers) are
    run on a crop around each window only (exact; see engine.explain._incremental).

    Parameters
    ----------
    model : a built engine model with one input and one output
    x : (N, *input shape) array, or one sample
    target : class index, one per input, or None (the predicted class)
    window : int or tuple, the spatial size of the occluded patch
    stride : int or tuple; None = 1 (captum's default)
    baseline : float, or an array broadcastable to one sample, what occluded values become
    batch_size : occluded copies per forward pass (None: fit a memory budget)

    Returns
    -------
    (N, *spatial) float32 array (spatial = the input's spatial dims, channels excluded);
    0 where no window reaches (stride > window)

    Examples
    --------
    >>> import numpy as np, engine
    >>> from engine.layers import Dense, Flatten
    >>> m = engine.Sequential([Flatten(input_shape=(1, 2, 2)), Dense(1, use_bias=False)])
    >>> m.set_weights([np.array([[1.], [2.], [3.], [4.]], np.float32)])
    >>> occlusion(m, np.ones((1, 1, 2, 2)), 0, window=1)[0]
    array([[1., 2.],
           [3., 4.]], dtype=float32)
    """
    where = "explain.occlusion"
    net, x, t, rows = _prepare(model, x, target, where, batch_size, backward=False)
    last = net.channels_last()
    spatial_axes = net.spatial_axes(x.ndim, last)
    spatial = tuple(x.shape[a] for a in spatial_axes)
    rank = len(spatial)
    if rank == 0:
        raise ValueError(f"{where}: the model input {format_shape((None,) + net.input_shape)} "
                         f"has no spatial dims to occlude")
    window = _window(window, rank, where, "window")
    stride = _window(1 if stride is None else stride, rank, where, "stride")
    for w, s in zip(window, spatial):
        if w > s:
            raise ValueError(f"{where}: window {window} is larger than the input's spatial "
                             f"shape {spatial}")
    try:
        base = np.broadcast_to(np.asarray(baseline, dtype=np.float32), x.shape[1:])
    except ValueError:
        raise ValueError(f"{where}: baseline must be a number or broadcast to one sample "
                         f"{format_shape(x.shape[1:])}, received shape "
                         f"{np.shape(baseline)}") from None
    counts = [-(-(s - w) // st) + 1 for s, w, st in zip(spatial, window, stride)]
    # Regions of the per-sample array (channel axis kept whole) for every window.
    regions = []
    for starts in itertools.product(*[range(c) for c in counts]):
        sl = [slice(i * st, i * st + w) for i, st, w in zip(starts, stride, window)]
        regions.append(tuple(sl + [slice(None)]) if last else tuple([slice(None)] + sl))
    n, nw = len(x), len(regions)
    full = scores(net, x, t, rows)
    # A window whose values already equal the baseline (the blank border of a digit)
    # leaves the input unchanged: its drop is exactly 0 and it is not run.
    changed = np.array([[not np.array_equal(x[i][reg], base[reg]) for reg in regions]
                        for i in range(n)]).reshape(-1)
    todo = np.flatnonzero(changed)
    drops = np.zeros(n * nw, dtype=np.float64)
    prefix = _incremental.plan(net)
    with no_grad():
        part = None if prefix is None else _incremental.occlusion_drops(
            net, prefix, x, base, t, full, regions, todo, rows)
        if part is not None:   # local first layers ran on crops around each window
            drops[todo] = part
            todo = todo[:0]
        for a, b in chunks(len(todo), rows):
            idx = todo[a:b]
            batch = x[idx // nw]
            for k, r in enumerate(idx % nw):
                batch[k][regions[r]] = base[regions[r]]
            z = host(logits(net.run_output(batch)).data)
            drops[idx] = full[idx // nw] - z[np.arange(b - a), t[idx // nw]]
    total = np.zeros((n,) + spatial, dtype=np.float64)
    cover = np.zeros(spatial, dtype=np.float64)
    drops = drops.reshape(n, nw)
    for r, region in enumerate(regions):
        sl = region[:-1] if last else region[1:]
        total[(slice(None),) + sl] += drops[:, r].reshape((n,) + (1,) * rank)
        cover[sl] += 1.0
    # Positions no window covers (stride > window) get 0; captum's Occlusion gives NaN.
    return np.divide(total, cover, out=np.zeros_like(total), where=cover > 0).astype(
        np.float32)


def saliency(model, x, target=None, smooth_samples=0, noise=0.15, seed=None,
             batch_size=None):
    """Saliency map |d score / d x| (Simonyan et al.), optionally SmoothGrad-averaged.

    With ``smooth_samples`` = S > 0 the map is the mean of |gradient| at S noisy copies
    x + N(0, sigma^2), sigma = noise * (max(x) - min(x)) per input (Smilkov et al.; captum's
    NoiseTunnel over Saliency with stdevs = sigma).

    Parameters
    ----------
    model, x, target : as :func:`occlusion`
    smooth_samples : int >= 0
    noise : float >= 0, the noise level relative to each input's range
    seed : int or None, for the noise
    batch_size : rows per pass (None: fit a memory budget)

    Returns
    -------
    float32 array shaped like x

    Examples
    --------
    >>> import numpy as np, engine
    >>> from engine.layers import Dense
    >>> m = engine.Sequential([Dense(2, input_shape=(3,))])
    >>> w = np.array([[1., -2.], [0., 3.], [-4., 5.]], np.float32)
    >>> m.set_weights([w, np.zeros(2, np.float32)])
    >>> saliency(m, np.ones((1, 3)), 1)
    array([[2., 3., 5.]], dtype=float32)
    """
    where = "explain.saliency"
    net, x, t, rows = _prepare(model, x, target, where, batch_size)
    s = check_int(smooth_samples, where, "smooth_samples", 0)
    noise = check_float(noise, where, "noise", minimum=0.0)
    if s == 0:
        return np.abs(input_gradients(net, x, t, rows)[0])
    rng = check_seed(seed, where)
    axes = tuple(range(1, x.ndim))
    sigma = noise * (x.max(axis=axes) - x.min(axis=axes))
    out = np.zeros(x.shape, dtype=np.float64)
    # Noisy copies are made chunk by chunk (row i*S + j = sample i, draw j), so the draws
    # and the result do not depend on the chunk size.
    eps = rng.standard_normal((len(x) * s,) + x.shape[1:], dtype=np.float32)
    total = len(x) * s
    for a, b in chunks(total, rows):
        i = np.arange(a, b) // s
        batch = x[i] + eps[a:b] * sigma[i].reshape((-1,) + (1,) * (x.ndim - 1)).astype(
            np.float32)
        g, _ = input_gradients(net, batch, t[i], b - a)
        np.add.at(out, i, np.abs(g))
    return (out / s).astype(np.float32)


def _ig_coefficients(method, steps):
    """(alphas, weights) of the path integral, exactly as captum builds them."""
    n = steps
    if method == "gausslegendre":
        nodes, w = np.polynomial.legendre.leggauss(n)
        return 0.5 * (nodes + 1.0), 0.5 * w
    weights = np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        # captum's trapezoid: steps of 1/n with the two ends halved (they sum to 1 - 1/n).
        weights[0] /= 2
        weights[-1] /= 2
        alphas = np.linspace(0.0, 1.0, n)
    elif method == "riemann_left":
        alphas = np.linspace(0.0, 1.0 - 1.0 / n, n)
    elif method == "riemann_middle":
        alphas = np.linspace(1.0 / (2 * n), 1.0 - 1.0 / (2 * n), n)
    else:  # riemann_right
        alphas = np.linspace(1.0 / n, 1.0, n)
    return alphas, weights


def integrated_gradients(model, x, target=None, baseline=None, steps=50,
                         method="gausslegendre", batch_size=None, return_delta=False):
    """Integrated gradients (Sundararajan et al.), with captum's quadratures.

    attribution = (x - b) * sum_k w_k * d score / d x (b + alpha_k (x - b)), where the
    (alpha_k, w_k) of ``method`` are captum's: "riemann_left", "riemann_right",
    "riemann_middle", "riemann_trapezoid" (steps of 1/steps, the two ends halved) or
    "gausslegendre" (Gauss-Legendre nodes mapped to [0, 1]).  The N * steps path points go
    through the model in chunks of ``batch_size`` rows, so memory stays bounded.

    Parameters
    ----------
    model, x, target : as :func:`occlusion`
    baseline : None (zeros), a number, one sample's shape, or x's shape
    steps : int >= 2
    method : one of IG_METHODS
    batch_size : path points per pass (None: fit a memory budget)
    return_delta : also return the completeness gap per input,
        sum(attribution) - (score(x) - score(b))

    Returns
    -------
    float32 array shaped like x, or (attributions, delta float64 (N,)) with return_delta

    Examples
    --------
    >>> import numpy as np, engine
    >>> from engine.layers import Dense
    >>> m = engine.Sequential([Dense(2, input_shape=(3,))])
    >>> w = np.array([[1., -2.], [0., 3.], [-4., 5.]], np.float32)
    >>> m.set_weights([w, np.zeros(2, np.float32)])
    >>> integrated_gradients(m, np.full((1, 3), 2.0), 1)
    array([[-4.,  6., 10.]], dtype=float32)
    """
    where = "explain.integrated_gradients"
    net, x, t, rows = _prepare(model, x, target, where, batch_size)
    steps = check_int(steps, where, "steps", 2)
    if method not in IG_METHODS:
        raise ValueError(f"{where}: method must be one of {', '.join(IG_METHODS)}, received "
                         f"{method!r}")
    if baseline is None:
        base = np.zeros_like(x)
    else:
        try:
            base = np.ascontiguousarray(np.broadcast_to(
                np.asarray(baseline, dtype=np.float32), x.shape))
        except ValueError:
            raise ValueError(f"{where}: baseline must be None, a number, or broadcast to x "
                             f"{format_shape(x.shape)}, received shape "
                             f"{np.shape(baseline)}") from None
    alphas, weights = _ig_coefficients(method, steps)
    alphas32 = alphas.astype(np.float32)
    n = len(x)
    diff = x - base
    total = np.zeros(x.shape, dtype=np.float64)
    lead = (-1,) + (1,) * (x.ndim - 1)
    # Row r = sample r // steps at path point r % steps.
    for a, b in chunks(n * steps, rows):
        r = np.arange(a, b)
        i, k = r // steps, r % steps
        batch = base[i] + alphas32[k].reshape(lead) * diff[i]
        g, _ = input_gradients(net, batch, t[i], b - a)
        np.add.at(total, i, g * weights[k].reshape(lead))
    attributions = (total * diff).astype(np.float32)
    if not return_delta:
        return attributions
    ends = scores(net, np.concatenate([x, base]), np.concatenate([t, t]), rows)
    delta = (total * diff).reshape(n, -1).sum(axis=1) - (ends[:n] - ends[n:])
    return attributions, delta


def _resize(maps, shape):
    """Linear interpolation of (N, *s) maps to (N, *shape), half-pixel centres (as
    bilinear/trilinear resizing with align_corners=False)."""
    out = maps
    for axis, size in enumerate(shape, start=1):
        n_in = out.shape[axis]
        if n_in == size:
            continue
        pos = (np.arange(size) + 0.5) * (n_in / size) - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = (pos - lo).reshape((1,) * axis + (size,) + (1,) * (out.ndim - axis - 1))
        out = np.take(out, lo, axis=axis) * (1 - frac) + np.take(out, hi, axis=axis) * frac
    return out


def _last_spatial_slot(net):
    best = None
    for layer, _, out in net.steps:
        if len(net.shape_of(out)) >= 2 and out != net.out_slot:
            best = out
    return best


def grad_cam(model, x, target=None, layer=None, batch_size=None):
    """Grad-CAM (Selvaraju et al.) at a convolutional layer's output.

    Channel weights are the spatial mean of d score / d A; the map ReLU(sum_c w_c A_c) is
    resized (linear interpolation) to the input's spatial shape and divided by its maximum,
    so each map lies in [0, 1] (all zeros when nothing is positive).

    Parameters
    ----------
    model, x, target : as :func:`occlusion`
    layer : name, index or Layer; None = the last layer whose output has spatial dims
    batch_size : rows per pass (None: fit a memory budget)

    Returns
    -------
    (N, *input spatial) float32 array in [0, 1]

    Examples
    --------
    >>> import engine, numpy as np
    >>> m = engine.zoo.get_model("small_cnn", (1, 8, 8), 3)
    >>> grad_cam(m, np.random.default_rng(0).random((2, 1, 8, 8)), 0).shape
    (2, 8, 8)
    """
    where = "explain.grad_cam"
    net, x, t, rows = _prepare(model, x, target, where, batch_size)
    if layer is None:
        slot = _last_spatial_slot(net)
        if slot is None:
            raise ValueError(f"{where}: model {net.model.name!r} has no layer with a spatial "
                             f"output before its last layer")
    else:
        lay = net.find_layer(layer)
        slot = net.slot_of(lay)
        if len(net.shape_of(slot)) < 2 or slot == net.out_slot:
            raise ValueError(f"{where}: layer {lay.name!r} output "
                             f"{format_shape((None,) + net.shape_of(slot))} has no spatial "
                             f"dims (expected (None, C, *spatial) or (None, *spatial, C))")
    last = net.channels_last(slot)
    in_last = net.channels_last()
    in_spatial = tuple(x.shape[a] for a in net.spatial_axes(x.ndim, in_last))
    fdim = len(net.shape_of(slot)) + 1
    axes = net.spatial_axes(fdim, last)
    cams = []
    with frozen_weights(net.model), enable_grad():
        for a, b in chunks(len(x), rows):
            vals = net.run(Tensor._result(x[a:b]), keep=(slot,), cut=slot)
            z = logits(vals[net.out_slot])
            leaf = vals[slot]
            _net.select_sum(z, t[a:b]).backward()
            act, grad = host(leaf.data), host(leaf.grad)
            w = grad.mean(axis=axes, keepdims=True)
            cam = np.maximum((w * act).sum(axis=-1 if last else 1), 0.0)
            cams.append(cam)
    cam = np.concatenate(cams).astype(np.float64)
    if len(in_spatial) == cam.ndim - 1:
        cam = _resize(cam, in_spatial)
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape((-1,) + (1,) * (cam.ndim - 1))
    cam = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)
    return cam.astype(np.float32)

