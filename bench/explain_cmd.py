"""``convlab explain MODEL INPUT --method NAME --out FILE.png``: one picture of what a saved
model does with an input, made with engine.explain (matplotlib draws it).

    convlab explain model.npz digits.npz --method grad-cam --target 3 --out cam.png

MODEL is a file written by ``model.save`` (or a Keras ``.keras`` file where engine.keras
reads them); INPUT an .npy / .npz array (the first array, or the one named x / x_test) or
an image file.  --index picks the sample (top-patches uses them all).
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["METHODS", "add_parser", "run"]

METHODS = ("filters", "feature-maps", "top-patches", "deconv", "occlusion", "saliency",
           "integrated-gradients", "grad-cam", "class-model", "mc-dropout")

INSTALL_HINT = ("convlab explain draws with matplotlib, which is not installed: "
                "pip install matplotlib (or pip install 'convlab[compare]')")


def _usage(message):
    """convlab's bad-argument error (exit status 2)."""
    from .cli import UsageError
    return UsageError(message)


def add_parser(sub, positive):
    """Add the ``explain`` subcommand to the subparsers ``sub`` (``positive``: the int
    argument type)."""
    p = sub.add_parser("explain", help="draw what a saved model does with an input",
                       description="Look inside a saved model: filters, feature maps, top "
                       "patches, deconvnet projections, occlusion, saliency, integrated "
                       "gradients, Grad-CAM, class models, MC dropout; writes a PNG.")
    p.add_argument("model", metavar="MODEL", help="a model file saved by convlab (or .keras)")
    p.add_argument("input", metavar="INPUT", help=".npy/.npz array or an image file")
    p.add_argument("--method", required=True, choices=METHODS, metavar="NAME",
                   help=", ".join(METHODS))
    p.add_argument("--layer", help="layer name or index (default: per method)")
    p.add_argument("--target", type=int, help="class index (default: the predicted class)")
    p.add_argument("--index", type=int, default=0, help="which sample of INPUT (default 0)")
    p.add_argument("--channel", type=int, default=0,
                   help="unit of the layer for top-patches / deconv (default 0)")
    p.add_argument("--steps", type=positive, default=50,
                   help="integrated-gradients path points / class-model ascent steps")
    p.add_argument("--window", type=positive, default=3, help="occlusion window (default 3)")
    p.add_argument("--stride", type=positive, help="occlusion stride (default 1)")
    p.add_argument("--samples", type=positive,
                   help="mc-dropout samples (default 50); SmoothGrad samples for saliency")
    p.add_argument("--rule", choices=("deconvnet", "guided"), default="deconvnet")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="FILE.png", help="the picture to write")
    p.set_defaults(func=run)
    return p


def _load_model(path):
    import engine
    if not os.path.exists(path):
        raise _usage(f"MODEL {path!r}: no such file")
    if path.endswith(".keras"):
        try:
            from engine.keras.models import load_model
        except ImportError:
            raise _usage(f"MODEL {path!r}: reading .keras files needs engine.keras, "
                              f"which this installation lacks") from None
        return load_model(path)
    try:
        return engine.load_model(path, compile=False)
    except ValueError as e:
        raise _usage(f"MODEL {path!r}: {e}") from None


def _read_input(path):
    if not os.path.exists(path):
        raise _usage(f"INPUT {path!r}: no such file")
    low = path.lower()
    if low.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    if low.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            for key in ("x", "x_test", "images"):
                if key in z.files:
                    return z[key]
            if not z.files:
                raise _usage(f"INPUT {path!r}: the .npz file holds no array")
            return z[z.files[0]]
    import matplotlib.image as mpimg
    try:
        img = np.asarray(mpimg.imread(path), dtype=np.float32)
    except Exception as e:  # unreadable or not an image
        raise _usage(f"INPUT {path!r}: not an .npy/.npz array or a readable image "
                          f"({e})") from None
    if img.max() > 1.0:
        img = img / 255.0
    return img


def _fit_input(a, shape, channels_last):
    """(N, *shape) float32 from an array of samples, one sample, or an image file's pixels."""
    a = np.asarray(a, dtype=np.float32)
    if a.shape == shape:
        return a[None]
    if a.shape[1:] == shape:
        return a
    size = int(np.prod(shape))
    if a.ndim >= 1 and a.size % size == 0 and a.ndim >= 2 and \
            int(np.prod(a.shape[1:])) == size:
        return a.reshape((len(a),) + shape)       # e.g. (N, 28, 28) for (1, 28, 28)
    if a.ndim == 3 and a.shape[-1] in (3, 4):      # an RGB(A) image
        rgb = a[..., :3]
        c = shape[-1] if channels_last else shape[0]
        a = rgb.mean(axis=-1) if c == 1 else rgb
        if c == 3:
            a = a if channels_last else a.transpose(2, 0, 1)
    if a.size == size:
        return a.reshape((1,) + shape)
    raise _usage(f"INPUT has shape {a.shape}; the model takes samples of shape {shape} "
                      f"(or (N, {', '.join(map(str, shape))}))")


def _image(sample, channels_last):
    """A 2-D (or RGB) picture of one sample, and whether it is RGB."""
    a = np.asarray(sample, dtype=np.float64)
    if a.ndim == 2:   # (C, L) signal
        return a, False
    c = a.shape[-1] if channels_last else a.shape[0]
    hwc = a if channels_last else np.moveaxis(a, 0, -1)
    if c == 3:
        lo, hi = hwc.min(), hwc.max()
        return (hwc - lo) / (hi - lo if hi > lo else 1.0), True
    return hwc.mean(axis=-1), False


def _reduce_channels(attr, channels_last, how):
    axis = -1 if channels_last else 0
    return np.abs(attr).max(axis=axis) if how == "max" else attr.sum(axis=axis)


def _default_layer(model, explain, want_conv):
    """The first layer with a convolution kernel (filters), else the first layer."""
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    if want_conv:
        for layer in layers:
            if layer.weights and layer.weights[0].ndim >= 3:
                return layer.name
        raise _usage("the model has no convolution layer; give --layer")
    return layers[0].name


def run(args):
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(INSTALL_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from engine import explain
    from engine.explain._net import Net

    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise _usage(f"--out {args.out!r}: no such directory {out_dir!r}")
    model = _load_model(args.model)
    net = Net(model, "convlab explain")
    last = net.channels_last()
    x_all = _fit_input(_read_input(args.input), net.input_shape, last)
    if not -len(x_all) <= args.index < len(x_all):
        raise _usage(f"--index {args.index} is out of range for {len(x_all)} samples")
    x = x_all[args.index:args.index + 1]
    name = getattr(model, "name", "model")
    method = args.method
    layer = args.layer
    if layer is not None and layer.lstrip("-").isdigit():
        layer = int(layer)
    try:
        if layer is not None:
            layer = net.find_layer(layer).name
        target = args.target
        if target is not None or method in ("occlusion", "saliency", "integrated-gradients",
                                            "grad-cam"):
            s, t = explain.score(model, x, target)
            target, score = int(t[0]), float(s[0])
        fig = _draw(plt, explain, net, model, x, x_all, method, layer, target, args, last)
    except (ValueError, TypeError) as e:
        raise _usage(str(e)) from None
    title = [f"model {name}", method]
    if layer is not None or method in ("filters", "feature-maps", "top-patches", "deconv",
                                       "grad-cam"):
        title.append(f"layer {fig.layer}")
    if target is not None and method != "mc-dropout":
        title.append(f"target {target}")
    if method in ("occlusion", "saliency", "integrated-gradients", "grad-cam"):
        title.append(f"score {score:.3g}")
    if fig.extra:
        title.append(fig.extra)
    fig.figure.suptitle(" | ".join(title), fontsize=10)
    fig.figure.savefig(args.out, dpi=120, bbox_inches="tight")
    plt.close(fig.figure)
    print(f"wrote {args.out}")
    return 0


class _Fig:
    def __init__(self, figure, layer=None, extra=""):
        self.figure, self.layer, self.extra = figure, layer, extra


def _show(plt, ax, img, rgb, cmap="gray", colorbar=False, fig=None):
    if img.ndim == 1 or (img.ndim == 2 and not rgb and img.shape[0] < 4 and
                         img.shape[1] > 16):
        for row in np.atleast_2d(img):
            ax.plot(row)
        return
    kw = {}
    if cmap == "seismic":   # signed maps: white at zero
        v = float(np.abs(img).max()) or 1.0
        kw = {"vmin": -v, "vmax": v}
    im = ax.imshow(img, cmap=None if rgb else cmap, **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def _draw(plt, explain, net, model, x, x_all, method, layer, target, args, last):
    sample = x[0]
    if method == "filters":
        layer = layer or _default_layer(model, explain, True)
        w = explain.filters(model, layer)
        fig, ax = plt.subplots(figsize=(6, 6))
        if w.ndim == 4:
            _show(plt, ax, explain.mosaic(w), False, colorbar=False)
        else:
            _show(plt, ax, w.reshape(-1, w.shape[-1]), False)
        return _Fig(fig, layer, f"{w.shape[0]} filters {tuple(w.shape[1:])}")
    if method == "feature-maps":
        layer = layer or _default_layer(model, explain, False)
        maps = explain.feature_maps(model, x, layers=[layer])[layer][0]
        fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 5),
                                     gridspec_kw={"width_ratios": [1, 2]})
        img, rgb = _image(sample, last)
        _show(plt, a0, img, rgb)
        a0.set_title("input")
        if maps.ndim == 3:
            m = np.moveaxis(maps, -1, 0) if net.channels_last(net.slot_of(
                net.find_layer(layer))) else maps
            _show(plt, a1, explain.mosaic(m), False, cmap="viridis")
        else:
            a1.plot(maps.reshape(maps.shape[0], -1).T if maps.ndim > 1 else maps)
        return _Fig(fig, layer, f"output {maps.shape}")
    if method in ("top-patches", "deconv"):
        if layer is None:
            raise _usage(f"--method {method} needs --layer")
        if method == "top-patches":
            r = explain.top_patches(model, layer, x_all, args.channel, k=9)
            fig, ax = plt.subplots(figsize=(6, 6))
            p = r.patches
            tiles = [_image(q, last)[0] for q in p]
            _show(plt, ax, explain.mosaic(np.stack(tiles), normalize="all"), False)
            return _Fig(fig, layer, f"channel {args.channel}, top {len(p)} of "
                        f"{len(x_all)} inputs")
        proj = explain.deconv(model, layer, x, args.channel, rule=args.rule)[0]
        fig, (a0, a1) = plt.subplots(1, 2, figsize=(9, 4.5))
        img, rgb = _image(sample, last)
        _show(plt, a0, img, rgb)
        a0.set_title("input")
        pimg, prgb = _image(proj, last)
        _show(plt, a1, pimg, prgb, cmap="seismic", colorbar=True, fig=fig)
        a1.set_title(f"{args.rule} projection")
        return _Fig(fig, layer, f"channel {args.channel}")
    if method == "class-model":
        if target is None:
            raise _usage("--method class-model needs --target")
        img = explain.class_model(model, target, steps=max(args.steps, 1), seed=args.seed)
        s, _ = explain.score(model, img, target)
        fig, ax = plt.subplots(figsize=(5, 5))
        pic, rgb = _image(img, last)
        _show(plt, ax, pic, rgb, cmap="viridis", colorbar=True, fig=fig)
        return _Fig(fig, None, f"score {float(s[0]):.3g}")
    if method == "mc-dropout":
        samples = args.samples or 50
        r = explain.mc_dropout(model, x, samples=samples, seed=args.seed)
        fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 4.5),
                                     gridspec_kw={"width_ratios": [1, 2]})
        img, rgb = _image(sample, last)
        _show(plt, a0, img, rgb)
        a0.set_title("input")
        mean, std = r.mean[0].ravel(), r.std[0].ravel()
        a1.bar(np.arange(len(mean)), mean, yerr=std, capsize=3, color="tab:blue")
        a1.set_xlabel("class")
        a1.set_ylabel("mean output ± std")
        extra = f"{samples} samples"
        if r.entropy is not None:
            extra += (f", entropy {float(r.entropy[0]):.3f}, "
                      f"mutual information {float(r.mutual_information[0]):.3f}")
        return _Fig(fig, None, extra)
    # attribution maps over the input
    if method == "occlusion":
        amap = explain.occlusion(model, x, target, window=args.window, stride=args.stride)[0]
        cmap, label = "seismic", f"occlusion {args.window}"
    elif method == "saliency":
        smooth = args.samples or 0
        amap = _reduce_channels(explain.saliency(model, x, target, smooth_samples=smooth,
                                                 seed=args.seed)[0], last, "max")
        cmap, label = "hot", "saliency" + (f" (SmoothGrad {smooth})" if smooth else "")
    elif method == "integrated-gradients":
        attr, delta = explain.integrated_gradients(model, x, target, steps=max(args.steps, 2),
                                                   return_delta=True)
        amap = _reduce_channels(attr[0], last, "sum")
        cmap, label = "seismic", f"IG {args.steps} steps, delta {float(delta[0]):.2g}"
    else:
        amap = explain.grad_cam(model, x, target, layer=layer)[0]
        layer = layer or net.nodes[_last_spatial(net)].layer.name
        cmap, label = "jet", "Grad-CAM"
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(9, 4.5))
    img, rgb = _image(sample, last)
    _show(plt, a0, img, rgb)
    a0.set_title("input")
    if amap.ndim == 2 and not rgb:
        a1.imshow(img, cmap="gray")
    if amap.ndim == 2:
        kw = {}
        if cmap == "seismic":
            v = float(np.abs(amap).max()) or 1.0
            kw = {"vmin": -v, "vmax": v}
        im = a1.imshow(amap, cmap=cmap, alpha=0.6 if not rgb else 0.7, **kw)
        a1.set_xticks([])
        a1.set_yticks([])
        fig.colorbar(im, ax=a1, fraction=0.046, pad=0.04)
    else:
        a1.plot(np.atleast_1d(amap))
    a1.set_title(label)
    return _Fig(fig, layer)


def _last_spatial(net):
    from engine.explain.attribution import _last_spatial_slot
    return _last_spatial_slot(net)
