"""Occlusion without recomputing what a window cannot change.

An occluded copy differs from the input in one window, so the first, spatially local layers
of a chain (convolutions, pooling, and pointwise layers such as ReLU, BatchNormalization in
inference, Dropout) change only near it.  For each window this module runs those layers on
the smallest crop that determines the changed part exactly, pastes that part into the
unoccluded activation, and runs the rest of the network from there.

Exactness: a layer called on a crop pads the crop as it pads the whole input, so crop output
j equals full output j + c0 / stride when the crop starts at c0 (a multiple of the stride)
and the windows of the outputs kept lie inside the crop or beyond the input's true border.
The crops are chosen so; geometry comes from each layer's get_config() (kernel_size or
pool_size, strides, padding, dilation_rate).  Anything else (channels-last layers, "same"
padding with stride > 1, a graph that is not a chain, CUDA models) leaves the plain path.
"""
from __future__ import annotations

import numpy as np

from ..layers.base import is_int
from ..tensor import Tensor
from ._net import host

_POINTWISE = ("ReLU", "BatchNormalization", "Dropout", "Activation")


def _per_dim(v, rank):
    if v is None:
        return None
    if is_int(v):
        return (int(v),) * rank
    v = tuple(v)
    return v if len(v) == rank else None


def _geometry(net, layer, in_slot, out_slot, rank):
    """'pointwise', a list of (k_eff, stride, pad_lo) per spatial dim, or None."""
    cfg = layer.get_config()
    if cfg.get("data_format", "channels_first") != "channels_first" or layer.multi_input:
        return None
    if cfg.get("activation") in ("softmax", "log_softmax"):
        return None
    if "kernel_size" in cfg:
        k, s = _per_dim(cfg["kernel_size"], rank), _per_dim(cfg.get("strides", 1), rank)
        d = _per_dim(cfg.get("dilation_rate", 1), rank)
    elif "pool_size" in cfg:
        k = _per_dim(cfg["pool_size"], rank)
        s = _per_dim(cfg.get("strides") or cfg["pool_size"], rank)
        d = (1,) * rank
    elif type(layer).__name__ in _POINTWISE and \
            net.shape_of(in_slot) == net.shape_of(out_slot):
        return "pointwise"
    else:
        return None
    if k is None or s is None or d is None or len(net.shape_of(out_slot)) != rank + 1:
        return None
    pad = cfg.get("padding", "valid")
    geo = []
    for dim in range(rank):
        keff = d[dim] * (k[dim] - 1) + 1
        if pad == "valid":
            lo = 0
        elif pad == "same":
            if s[dim] != 1:
                return None
            lo = (keff - 1) // 2
        elif is_int(pad):
            lo = int(pad)
        elif isinstance(pad, (tuple, list)) and len(pad) == rank:
            p = pad[dim]
            lo = int(p) if is_int(p) else int(p[0])
        else:
            return None
        geo.append((keff, s[dim], lo))
    return geo


def plan(net):
    """[(layer, in_slot, out_slot, geometry)] of the local prefix, or None when it has no
    convolution or pooling to save."""
    if net.model.device != "cpu" or net.channels_last():
        return None
    rank = len(net.input_shape) - 1
    prefix, prev = [], net.in_slot
    for layer, ins, out in net.steps:
        if ins != (prev,) or out == net.out_slot:
            break
        geo = _geometry(net, layer, prev, out, rank)
        if geo is None:
            break
        prefix.append((layer, prev, out, geo))
        prev = out
    while prefix and prefix[-1][3] == "pointwise":
        prefix.pop()
    return prefix or None


def _window_plan(net, prefix, region):
    """Crops per layer for one occluded region [(a, b) per dim] of the input: a list of
    (crop (c0, c1) per dim of the layer's input, keep (j0, j1) per dim of its crop output),
    and the region (oa, ob) per dim of the last layer's output that is replaced."""
    changed = list(region)
    affected = []
    for layer, i_slot, o_slot, geo in prefix:
        if geo != "pointwise":
            n_out = net.shape_of(o_slot)[1:]
            changed = [(max(0, -(-(a + lo - keff + 1) // s)), min(n, (b - 1 + lo) // s + 1))
                       for (a, b), (keff, s, lo), n in zip(changed, geo, n_out)]
        affected.append(changed)
    need = affected[-1]
    out_region = need
    steps = []
    for layer, i_slot, o_slot, geo in reversed(prefix):
        if geo == "pointwise":
            steps.append((need, [(0, b - a) for a, b in need]))
            continue
        n_in = net.shape_of(i_slot)[1:]
        crop, keep = [], []
        for (oa, ob), (keff, s, lo), n in zip(need, geo, n_in):
            c0 = max(0, oa * s - lo)
            c0 -= c0 % s
            c1 = min(n, (ob - 1) * s - lo + keff)
            crop.append((c0, c1))
            keep.append((oa - c0 // s, ob - c0 // s))
        steps.append((crop, keep))
        need = crop
    return list(reversed(steps)), out_region


# Crops pay off when they cut the prefix's work to at most this fraction, with at least
# MIN_GROUP_ROWS rows per batch of equal crops (below that, per-call overheads win).
MAX_WORK_FRACTION = 0.7
MIN_GROUP_ROWS = 32


def occlusion_drops(net, prefix, x, base, t, full, regions, todo, rows):
    """score(x) - score(occluded x) for the flat (sample, window) indices ``todo``, or None
    when crops would not save time."""
    nw = len(regions)
    last = prefix[-1][2]
    plans, keys = {}, {}
    whole = sum(int(np.prod(net.shape_of(i_slot)[1:])) for _, i_slot, _, _ in prefix)
    work = 0
    for r, reg in enumerate(regions):
        spatial = [(sl.start, sl.stop) for sl in reg[1:]]
        spatial = [(a, min(b, n)) for (a, b), n in zip(spatial, x.shape[2:])]
        steps, out_region = _window_plan(net, prefix, spatial)
        plans[r] = (steps, out_region, spatial)
        work += sum(int(np.prod([c1 - c0 for c0, c1 in crop])) for crop, _ in steps)
        key = tuple((tuple(c1 - c0 for c0, c1 in crop), tuple(keep)) for crop, keep in steps)
        keys.setdefault(key, []).append(r)
    if work > MAX_WORK_FRACTION * whole * nw or len(todo) < MIN_GROUP_ROWS * len(keys):
        return None
    acts = []
    for a in range(0, len(x), rows):
        acts.append(np.array(host(net.run(x[a:a + rows], stop=last)[last].data)))
    act0 = np.concatenate(acts)
    drops = np.zeros(len(x) * nw, dtype=np.float64)
    todo_set = np.zeros(len(x) * nw, dtype=bool)
    todo_set[todo] = True
    for windows in keys.values():
        idx = np.array([i * nw + r for r in windows for i in range(len(x))
                        if todo_set[i * nw + r]], dtype=np.int64)
        for a in range(0, len(idx), rows):
            part = idx[a:a + rows]
            drops[part] = _run_group(net, prefix, x, base, t, full, act0, plans, part, nw)
    return drops[todo]


def _run_group(net, prefix, x, base, t, full, act0, plans, part, nw):
    first_crop = plans[part[0] % nw][0][0][0]
    shape = (len(part), x.shape[1]) + tuple(c1 - c0 for c0, c1 in first_crop)
    batch = np.empty(shape, dtype=np.float32)
    for k, flat in enumerate(part):
        i, r = divmod(int(flat), nw)
        steps, _, spatial = plans[r]
        crop = steps[0][0]
        sl = tuple(slice(c0, c1) for c0, c1 in crop)
        batch[k] = x[i][(slice(None),) + sl]
        occ = tuple(slice(max(a, c0) - c0, min(b, c1) - c0)
                    for (a, b), (c0, c1) in zip(spatial, crop))
        full_occ = tuple(slice(max(a, c0), min(b, c1)) for (a, b), (c0, c1) in zip(spatial, crop))
        batch[k][(slice(None),) + occ] = base[(slice(None),) + full_occ]
    y = batch
    steps0 = plans[part[0] % nw][0]
    for (layer, _, _, _), (_, keep) in zip(prefix, steps0):
        out = host(layer.call(Tensor._result(np.ascontiguousarray(y)), training=False).data)
        y = out[(slice(None), slice(None)) + tuple(slice(j0, j1) for j0, j1 in keep)]
    rows_i = part // nw
    act = act0[rows_i].copy()
    for k, flat in enumerate(part):
        out_region = plans[int(flat) % nw][1]
        act[k][(slice(None),) + tuple(slice(a, b) for a, b in out_region)] = y[k]
    from ._net import logits
    z = host(logits(net.run(Tensor._result(act), start=prefix[-1][2])[net.out_slot]).data)
    return full[rows_i] - z[np.arange(len(part)), t[rows_i]]
