"""``convlab filter IMAGE (--sobel | --gaussian SIGMA | --median SIZE | ...) --out OUT.png``:
one classic filter of kernels.filters on an image file, for a person who wants to see it.

Images are read and written with Pillow (``pip install pillow``) or, failing that, OpenCV;
``.npy`` files need neither.  Colour images are filtered per channel (the two image axes
only).  Smoothing filters (gaussian, median, uniform) keep the image's dtype, as
scipy.ndimage does; the edge filters (sobel, prewitt, scharr) write the gradient magnitude
and laplace its absolute value, scaled to 0-255.
"""
from __future__ import annotations

import importlib.util
import os
import time

import numpy as np

__all__ = ["add_parser", "cmd_filter", "read_image", "write_image"]


def add_parser(sub):
    """Add the ``filter`` subcommand to ``convlab``'s subparsers."""
    from .cli import _positive, _positive_float
    p = sub.add_parser("filter", help="apply a classic filter to an image file",
                       description="Apply one classic image filter (scipy.ndimage semantics, "
                       "convlab's kernels) to IMAGE and write the result to --out.")
    p.add_argument("image", metavar="IMAGE", help="input image (.png, .jpg, ... or .npy)")
    g = p.add_mutually_exclusive_group(required=True)
    for name in ("sobel", "prewitt", "scharr", "laplace"):
        g.add_argument(f"--{name}", action="store_true", help=f"{name} edges (magnitude)")
    g.add_argument("--gaussian", type=_positive_float, metavar="SIGMA",
                   help="Gaussian smoothing of this sigma (pixels)")
    g.add_argument("--median", type=_positive, metavar="SIZE", help="median of SIZE x SIZE")
    g.add_argument("--uniform", type=_positive, metavar="SIZE", help="box mean of SIZE x SIZE")
    p.add_argument("--mode", default="reflect",
                   choices=("reflect", "nearest", "mirror", "constant", "wrap"),
                   help="boundary mode (default reflect)")
    p.add_argument("--cval", type=float, default=0.0, help="value outside for --mode constant")
    p.add_argument("--strategy", default="auto",
                   help="force a strategy (gaussian: separable, fft; median: network, "
                        "histogram, sorted, select; uniform: separable, running)")
    p.add_argument("--threads", type=_positive, help="threads for the kernels")
    p.add_argument("--out", required=True, metavar="OUT", help="output image (.png, ... or "
                   ".npy)")
    p.set_defaults(func=cmd_filter)
    return p


def _io_library():
    for mod in ("PIL", "cv2"):
        if importlib.util.find_spec(mod) is not None:
            return mod
    return None


def read_image(path):
    """The image at ``path`` as an array (H, W) or (H, W, C), in its own dtype."""
    if path.lower().endswith(".npy"):
        return np.load(path, allow_pickle=False)
    lib = _io_library()
    if lib is None:
        raise RuntimeError("reading images needs Pillow (pip install pillow) or OpenCV; "
                           ".npy files need neither")
    if lib == "PIL":
        from PIL import Image
        with Image.open(path) as im:
            return np.asarray(im)
    import cv2
    a = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if a is None:
        raise RuntimeError(f"could not read an image from {path!r}")
    return a[..., ::-1].copy() if a.ndim == 3 and a.shape[2] in (3, 4) else a


def write_image(path, a):
    """Write ``a`` ((H, W) or (H, W, C)) to ``path`` (.npy, or an image format)."""
    if path.lower().endswith(".npy"):
        np.save(path, a)
        return
    lib = _io_library()
    if lib is None:
        raise RuntimeError("writing images needs Pillow (pip install pillow) or OpenCV; "
                           "write .npy instead")
    if a.dtype not in (np.uint8, np.uint16):
        a = np.clip(a, 0, 255).astype(np.uint8)
    if lib == "PIL":
        from PIL import Image
        Image.fromarray(a).save(path)
        return
    import cv2
    b = a[..., ::-1] if a.ndim == 3 and a.shape[2] in (3, 4) else a
    if not cv2.imwrite(path, np.ascontiguousarray(b)):
        raise RuntimeError(f"could not write an image to {path!r}")


def _to_byte_range(m):
    top = float(m.max()) if m.size else 0.0
    scale = 255.0 / top if top > 0 else 0.0
    return np.clip(m * scale + 0.5, 0, 255).astype(np.uint8)


def cmd_filter(args):
    from kernels import filters as F

    from .cli import UsageError, _check_writable, _set_threads
    if not os.path.isfile(args.image):
        raise UsageError(f"IMAGE {args.image!r} is not a file")
    _check_writable(args.out, "--out")
    _set_threads(args)
    x = read_image(args.image)
    if x.ndim not in (2, 3):
        raise UsageError(f"IMAGE must be (H, W) or (H, W, C), received shape {x.shape}")
    axes = (0, 1)
    kw = {"mode": args.mode, "cval": args.cval}
    edge = next((n for n in ("sobel", "prewitt", "scharr") if getattr(args, n)), None)
    how = ""
    t0 = time.perf_counter()
    try:
        if edge:
            y = _to_byte_range(F.gradient_magnitude(x, edge, axes=axes, **kw))
            what = f"{edge} gradient magnitude"
        elif args.laplace:
            y = _to_byte_range(np.abs(F.laplace(x.astype(np.float32), axes=axes, **kw)))
            what = "|laplace|"
        else:
            op, arg = next((n, getattr(args, n)) for n in ("gaussian", "median", "uniform")
                           if getattr(args, n) is not None)
            key = "sigma" if op == "gaussian" else "size"
            strategy = args.strategy
            if strategy == "auto":
                strategy, why = F.select(op, x.shape, x.dtype, axes=axes, **{key: arg})
                how = f" ({strategy}: {why})"
            y = getattr(F, op)(x, arg, axes=axes, strategy=strategy, **kw)
            what = f"{op} {key}={arg:g}"
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    ms = (time.perf_counter() - t0) * 1e3
    write_image(args.out, y)
    from .report import console
    console().print(f"{what}: {args.image} {x.shape} {x.dtype} -> {args.out} {y.shape} "
                    f"{y.dtype} in {ms:.1f} ms{how}")
    return 0
