"""Looking at what a network computes: its filters, its feature maps, the input patches that
excite a unit most (Zeiler & Fergus), and a unit's projection back to the input (deconvnet,
guided backpropagation)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import autograd
from ..autograd import enable_grad, no_grad
from ..layers.base import format_shape
from ..layers.core import InputLayer
from ..tensor import Tensor
from ._net import (Net, check_batch_size, check_int, check_x, chunks, frozen_weights, host,
                   rows_per_chunk)

__all__ = ["filters", "mosaic", "feature_maps", "features", "top_patches", "TopPatches",
           "deconv"]


def filters(model, layer):
    """The kernels of a convolutional layer as (C_out, C_in / groups, *kernel).

    Parameters
    ----------
    model : an engine model
    layer : name, index in ``model.layers``, or Layer

    Examples
    --------
    >>> import engine
    >>> filters(engine.zoo.get_model("mnist"), 0).shape
    (20, 1, 5, 5)
    """
    net = Net(model, "explain.filters")
    lay = net.find_layer(layer)
    weights = lay.weights
    if not weights or weights[0].ndim < 3:
        shape = weights[0].shape if weights else None
        raise ValueError(f"explain.filters: layer {lay.name!r} ({type(lay).__name__}) has no "
                         f"convolution kernel (expected a weight of 3 to 5 dims (C_out, "
                         f"C_in/groups, *kernel), received {shape})")
    return np.array(weights[0].numpy(), dtype=np.float32)


def mosaic(images, ncols=None, pad=1, normalize="each"):
    """Tile images (filters, feature maps, patches) into one 2-D image in [0, 1].

    Parameters
    ----------
    images : array of >= 2 dims; the last two are each tile's height and width, the leading
        ones are flattened into the sequence of tiles (filters (C_out, C_in, kh, kw) give
        C_out rows of C_in tiles when ncols is None)
    ncols : tiles per row (default: C_in for 4-D input, else ceil(sqrt(count)))
    pad : pixels of background (0) between tiles
    normalize : "each" (every tile to [0, 1] by its own min and max), "all" (one min and
        max for all tiles) or None (values clipped to [0, 1])

    Examples
    --------
    >>> mosaic(np.arange(8.0).reshape(2, 2, 2), pad=1).shape
    (2, 5)
    """
    a = np.asarray(images, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"explain.mosaic: images must have at least 2 dims (..., H, W), "
                         f"received shape {a.shape}")
    if normalize not in ("each", "all", None):
        raise ValueError(f"explain.mosaic: normalize must be 'each', 'all' or None, received "
                         f"{normalize!r}")
    pad = check_int(pad, "explain.mosaic", "pad", 0)
    if ncols is None:
        ncols = a.shape[1] if a.ndim == 4 and a.shape[1] > 1 else \
            int(np.ceil(np.sqrt(max(1, int(np.prod(a.shape[:-2]))))))
    ncols = check_int(ncols, "explain.mosaic", "ncols", 1)
    tiles = a.reshape((-1,) + a.shape[-2:])
    if normalize == "each":
        lo = tiles.min(axis=(1, 2), keepdims=True)
        span = tiles.max(axis=(1, 2), keepdims=True) - lo
        tiles = np.divide(tiles - lo, span, out=np.zeros_like(tiles), where=span > 0)
    elif normalize == "all":
        lo, span = tiles.min(), tiles.max() - tiles.min()
        tiles = (tiles - lo) / span if span > 0 else np.zeros_like(tiles)
    else:
        tiles = np.clip(tiles, 0.0, 1.0)
    n, h, w = tiles.shape
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    out = np.zeros((nrows * h + (nrows - 1) * pad, ncols * w + (ncols - 1) * pad))
    for k in range(n):
        r, c = divmod(k, ncols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = tiles[k]
    return out


def _slots_for(net, layers, where):
    if layers is None:
        chosen = [layer for layer in net.layers() if not isinstance(layer, InputLayer)]
    else:
        if isinstance(layers, (str, int)) or not isinstance(layers, (list, tuple)):
            layers = [layers]
        chosen = [net.find_layer(layer, "layers") for layer in layers]
    return {layer.name: net.slot_of(layer) for layer in chosen}


def feature_maps(model, x, layers=None, batch_size=None):
    """The activations of chosen layers on ``x``, in inference mode.

    Parameters
    ----------
    model : an engine model with one input
    x : (N, *input shape) array, or one sample
    layers : None (every layer), a name / index / Layer, or a list of them
    batch_size : rows per forward pass (None: fit a memory budget)

    Returns
    -------
    {layer name: float32 array (N, *layer output shape)}

    Examples
    --------
    >>> import engine
    >>> m = engine.zoo.get_model("small_cnn", (1, 8, 8), 3)
    >>> maps = feature_maps(m, np.zeros((2, 1, 8, 8)), layers=[0, 1])
    >>> [v.shape for v in maps.values()]
    [(2, 16, 8, 8), (2, 16, 4, 4)]
    """
    where = "explain.feature_maps"
    net = Net(model, where)
    x = check_x(net, x, where)
    slots = _slots_for(net, layers, where)
    stop = max(slots.values())
    rows = rows_per_chunk(net, check_batch_size(batch_size, where), False, upto=stop)
    parts = {name: [] for name in slots}
    with no_grad():
        for a, b in chunks(len(x), rows):
            vals = net.run(x[a:b], keep=slots.values(), stop=stop)
            for name, s in slots.items():
                parts[name].append(np.array(host(vals[s].data), dtype=np.float32))
    return {name: np.concatenate(p) for name, p in parts.items()}


def features(model, x, layer, batch_size=None):
    """A layer's activations flattened to (N, F), to feed another learner (an SVM, ...).

    Examples
    --------
    >>> import engine
    >>> m = engine.zoo.get_model("small_cnn", (1, 8, 8), 3)
    >>> features(m, np.zeros((2, 1, 8, 8)), -2).shape
    (2, 64)
    """
    net = Net(model, "explain.features")
    name = net.find_layer(layer).name
    maps = feature_maps(model, x, layers=[name], batch_size=batch_size)[name]
    return maps.reshape(len(maps), -1)


def _receptive_fields(net):
    """{slot: (rf, jump)} per spatial dim (None: the whole input), as summary() computes."""
    spatial = len(net.input_shape) - 1
    fields = {net.in_slot: ((1,) * spatial, (1,) * spatial) if spatial > 0 else None}
    for layer, ins, out in net.steps:
        if layer.multi_input:
            fields[out] = layer.receptive_field_merge([fields[i] for i in ins])
        else:
            f = fields[ins[0]]
            fields[out] = None if f is None else layer.receptive_field(*f)
    return fields


@dataclass
class TopPatches:
    """What :func:`top_patches` returns.

    indices : (k,) the input images, by decreasing activation
    positions : (k, rank) the unit's position in the layer's map
    values : (k,) the activations
    boxes : (k, rank, 2) [start, stop) of each patch in input coordinates (may pass the
        border; the part outside is zero in ``patches``)
    patches : (k, *input patch) the input cut by the unit's receptive field (channels kept
        where the input has them)
    """

    indices: np.ndarray
    positions: np.ndarray
    values: np.ndarray
    boxes: np.ndarray
    patches: np.ndarray


def _channel_map(net, layer, channel, where):
    lay = net.find_layer(layer)
    slot = net.slot_of(lay)
    shape = net.shape_of(slot)
    if len(shape) < 2:
        raise ValueError(f"{where}: layer {lay.name!r} output "
                         f"{format_shape((None,) + shape)} has no spatial dims")
    last = net.channels_last(slot)
    nch = shape[-1] if last else shape[0]
    channel = check_int(channel, where, "channel", 0)
    if channel >= nch:
        raise ValueError(f"{where}: channel must be in [0, {nch}) for layer {lay.name!r} "
                         f"output {format_shape((None,) + shape)}, received {channel}")
    return lay, slot, last, channel


def top_patches(model, layer, x, channel, k=9, batch_size=None):
    """The k inputs whose strongest response in ``channel`` of ``layer`` is largest, and the
    input patch under that response (Zeiler & Fergus).

    The patch is the unit's receptive field (size and jump as in ``model.summary()``),
    centred as the layer's map is centred on the input (exact for symmetric padding; with
    asymmetric "same" padding it may sit half a stride off).

    Examples
    --------
    >>> import engine
    >>> m = engine.zoo.get_model("mnist")
    >>> r = top_patches(m, 0, np.random.default_rng(0).random((5, 1, 28, 28)), 3, k=2)
    >>> r.patches.shape
    (2, 1, 5, 5)
    """
    where = "explain.top_patches"
    net = Net(model, where)
    x = check_x(net, x, where)
    lay, slot, last, channel = _channel_map(net, layer, channel, where)
    k = min(check_int(k, where, "k", 1), len(x))
    fmap = feature_maps(model, x, layers=[lay.name], batch_size=batch_size)[lay.name]
    fmap = fmap[..., channel] if last else fmap[:, channel]
    flat = fmap.reshape(len(x), -1)
    best = flat.argmax(axis=1)
    vals = flat[np.arange(len(x)), best]
    order = np.argsort(-vals, kind="stable")[:k]
    positions = np.array([np.unravel_index(best[i], fmap.shape[1:]) for i in order],
                         dtype=np.int64)
    rf = _receptive_fields(net)[slot]
    in_axes = net.spatial_axes(x.ndim, net.channels_last())
    in_spatial = [x.shape[a] for a in in_axes]
    if rf is None:
        size, jump = in_spatial, [0] * len(in_spatial)
    else:
        size, jump = rf
    boxes = np.zeros((len(order), len(in_spatial), 2), dtype=np.int64)
    for d, (n_in, n_out) in enumerate(zip(in_spatial, fmap.shape[1:])):
        if rf is None:
            boxes[:, d] = (0, n_in)
            continue
        centre = (n_in - 1) / 2 + (positions[:, d] - (n_out - 1) / 2) * jump[d]
        start = np.floor(centre - (size[d] - 1) / 2 + 0.5).astype(np.int64)
        boxes[:, d, 0], boxes[:, d, 1] = start, start + size[d]
    patches = []
    for j, i in enumerate(order):
        sample = x[i]
        shape = list(sample.shape)
        src, dst = [slice(None)] * sample.ndim, [slice(None)] * sample.ndim
        for d, axis in enumerate(a - 1 for a in in_axes):
            lo, hi = boxes[j, d]
            shape[axis] = hi - lo
            src[axis] = slice(max(lo, 0), min(hi, sample.shape[axis]))
            dst[axis] = slice(max(lo, 0) - lo, min(hi, sample.shape[axis]) - lo)
        p = np.zeros(shape, dtype=np.float32)
        p[tuple(dst)] = sample[tuple(src)]
        patches.append(p)
    return TopPatches(indices=order.astype(np.int64), positions=positions,
                      values=vals[order].astype(np.float32), boxes=boxes,
                      patches=np.stack(patches))


_RULES = ("deconvnet", "guided")


def _relu_rule(rule):
    if rule == "deconvnet":
        # Zeiler & Fergus: the reconstruction passes a ReLU, whatever the forward sign.
        return lambda y: (lambda g: (g * (g > 0),))
    # Guided backpropagation (Springenberg et al.): both the forward and the backward sign.
    return lambda y: (lambda g: (g * (y > 0) * (g > 0),))


def deconv(model, layer, x, channel, rule="deconvnet", batch_size=None):
    """Project the strongest response of ``channel`` in ``layer`` back to the input.

    Every other activation of the layer is set to zero and the chosen one (the channel's
    maximum in each input) is sent back through the network: transposed convolutions,
    max-pooling switches, and ReLUs replaced by the rule's: "deconvnet" (Zeiler & Fergus:
    ReLU of the backward signal) or "guided" (guided backpropagation: the backward signal
    where both it and the forward activation are positive).

    Returns
    -------
    float32 array shaped like x

    Examples
    --------
    >>> import engine
    >>> m = engine.zoo.get_model("small_cnn", (1, 8, 8), 3)
    >>> deconv(m, 2, np.random.default_rng(0).random((2, 1, 8, 8)), 5).shape
    (2, 1, 8, 8)
    """
    where = "explain.deconv"
    net = Net(model, where)
    x = check_x(net, x, where)
    if rule not in _RULES:
        raise ValueError(f"{where}: rule must be 'deconvnet' or 'guided', received {rule!r}")
    lay, slot, last, channel = _channel_map(net, layer, channel, where)
    rows = rows_per_chunk(net, check_batch_size(batch_size, where), True, upto=slot)
    make_rule = _relu_rule(rule)
    out = np.empty_like(x)
    with frozen_weights(net.model), enable_grad():
        for a, b in chunks(len(x), rows):
            xt = Tensor(x[a:b], requires_grad=True)
            act = net.run(xt, stop=slot)[slot]
            for node in autograd._topological(act):
                if node._op == "relu":
                    node._backward = make_rule(node.data)
            data = host(act.data)
            ch = data[..., channel] if last else data[:, channel]
            flat = ch.reshape(b - a, -1)
            best = flat.argmax(axis=1)
            seed = np.zeros_like(data)
            seed_ch = seed[..., channel] if last else seed[:, channel]
            seed_flat = seed_ch.reshape(b - a, -1)
            seed_flat[np.arange(b - a), best] = flat[np.arange(b - a), best]
            seed_ch[...] = seed_flat.reshape(seed_ch.shape)
            if not np.any(seed):
                out[a:b] = 0.0
                continue
            act.backward(seed if isinstance(act.data, np.ndarray) else
                         Tensor(seed, device=net.model.device).data)
            out[a:b] = host(xt.grad) if xt.grad is not None else 0.0
    return out
