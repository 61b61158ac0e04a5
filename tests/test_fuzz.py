"""Hypothesis fuzzing of the public entry points with hostile inputs (issue 13).

kernels.conv / conv_grad_input / conv_grad_weight and kernels.pool get random shapes, dtypes,
layouts (Fortran order, strided, reversed, read-only, nested lists), parameters from 0 to
2**70, strategy and backend names (valid or not) and non-finite values; engine.load_model
and engine.data.read_idx get damaged files (truncated, bytes flipped, inserted, overwritten)
and random headers.  The only failures allowed are ValueError / TypeError (ModelFileError
is a ValueError) with a message; no crash, no hang (an alarm per example), no MemoryError
(the address space is capped at its size plus 3 GiB while an example runs).  Results that
do come back are checked: finite convolutions against the float64 reference strategy,
non-finite ones against its pattern of Inf/NaN, pooling against a numpy formula.
"""
import contextlib
import gzip
import math
import os
import resource
import signal

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import engine
import kernels
from engine.io import ModelFileError

SETTINGS = settings(max_examples=int(os.environ.get("CONVLAB_FUZZ_EXAMPLES", "60")),
                    deadline=None,
                    derandomize=os.environ.get("CONVLAB_FUZZ_RANDOM") != "1",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
HEADROOM = 3 * 2**30
ALARM_S = 120


@contextlib.contextmanager
def guarded():
    """Cap the address space and arm an alarm for one example; allowed errors pass out."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"example ran over {ALARM_S} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    cap = vm + HEADROOM if hard == resource.RLIM_INFINITY else min(vm + HEADROOM, hard)
    old = signal.signal(signal.SIGALRM, on_alarm)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    signal.alarm(ALARM_S)
    try:
        yield
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.signal(signal.SIGALRM, old)


def allowed(call, *types):
    """Run ``call``; return (result, None) or (None, error) for an allowed error type
    with a message.  Anything else propagates and fails the test."""
    types = types or (ValueError, TypeError)
    try:
        return call(), None
    except types as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        return None, e


# --------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------

DTYPES = ["float32", "float64", "float16", "int32", "uint8", "bool", "complex64", "U1",
          "object"]
LAYOUTS = ["c", "fortran", "strided", "reversed", "readonly", "list"]
STRATEGIES = ["auto", "direct", "im2col", "fft", "winograd", "reference", "bogus"]
BACKENDS = ["auto", "numba", "cython", "auto", "bogus"]

small_int = st.integers(0, 4)
param_int = st.one_of(st.integers(1, 3), st.sampled_from([0, -1, 2**30, 2**62, 2**70]))


def _array(draw, shape, dtype, layout, nonfinite):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.uniform(-1, 1, shape)
    if nonfinite and a.size:
        flat = a.reshape(-1)
        for _ in range(draw(st.integers(1, 3))):
            flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from(
                [np.inf, -np.inf, np.nan]))
    if dtype == "U1":
        return np.full(shape, "a")
    if dtype == "object":
        return a.astype(object)
    a = a.astype(dtype) if dtype not in ("int32", "uint8", "bool") else \
        np.nan_to_num(a * 3).astype(dtype)
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided" and a.ndim:
        big = np.repeat(a, 2, axis=-1)
        return big[..., ::2]
    if layout == "reversed" and a.ndim:
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if layout == "readonly":
        a.setflags(write=False)
        return a
    if layout == "list":
        return a.tolist()
    return a


@st.composite
def conv_case(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2]))
    n = draw(st.integers(0, 2))
    cg = draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 9 if nd < 3 else 5)) for _ in range(nd))
    kernel = tuple(draw(st.sampled_from([1, 2, 3, 3, 5])) for _ in range(nd))
    x_shape = (n, groups * cg) + spatial
    w_shape = (cout, cg) + kernel
    if draw(st.booleans()) and draw(st.booleans()):     # a mismatched shape now and then
        w_shape = (cout, cg + 1) + kernel
    dtype = draw(st.sampled_from(DTYPES[:3] * 4 + DTYPES[3:]))
    layout = draw(st.sampled_from(LAYOUTS))
    nonfinite = draw(st.integers(0, 3)) == 0
    x = _array(draw, x_shape, dtype, layout, nonfinite)
    w = _array(draw, w_shape, draw(st.sampled_from(["float32", "float64", dtype])),
               draw(st.sampled_from(LAYOUTS)), False)
    padding = draw(st.one_of(param_int, st.sampled_from(["same", "valid", "bogus"]),
                             st.tuples(*[st.tuples(param_int, small_int)] * nd)))
    return dict(x=x, w=w, stride=draw(param_int), dilation=draw(param_int), padding=padding,
                groups=groups, strategy=draw(st.sampled_from(STRATEGIES)),
                backend=draw(st.sampled_from(BACKENDS)), nonfinite=nonfinite)


def _reference(op, a, b, shape, kw):
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if op == "fwd":
        return kernels.conv(a64, b64, strategy="reference", **kw)
    if op == "gi":
        return kernels.conv_grad_input(a64, b64, shape, strategy="reference", **kw)
    return kernels.conv_grad_weight(a64, b64, shape, strategy="reference", **kw)


def _check_against_reference(got, want, nonfinite):
    assert got.shape == want.shape
    bad = ~np.isfinite(want)
    if nonfinite or bad.any():
        np.testing.assert_array_equal(~np.isfinite(got), bad)
    fine = ~bad
    scale = 1.0 + np.abs(want[fine]).max(initial=0.0)
    np.testing.assert_allclose(got[fine], want[fine], rtol=0, atol=5e-2 * scale)


@SETTINGS
@given(case=conv_case())
def test_fuzz_conv_and_gradients(case):
    kw = {k: case[k] for k in ("stride", "padding", "dilation", "groups")}
    sel = dict(strategy=case["strategy"], backend=case["backend"])
    x, w = case["x"], case["w"]
    try:    # a genuinely huge result (padding 2**30 at stride 1) is no small input
        out = kernels.conv_params(np.shape(x), np.shape(w), **kw).out_shape(np.shape(x),
                                                                          np.shape(w))
        assume(math.prod(out) <= 2**24)
    except (ValueError, TypeError):
        pass
    with guarded():
        y, err = allowed(lambda: kernels.conv(x, w, **kw, **sel))
        if err is not None:
            return
        x_f = np.asarray(x, dtype=np.float64)
        numeric = np.asarray(x).dtype.kind in "fiub" and np.asarray(w).dtype.kind in "fiub"
        assert numeric
        assume(np.asarray(x).dtype != np.float16)       # float16 rounds before the reference
        _check_against_reference(y, _reference("fwd", x, w, None, kw), case["nonfinite"])
        gy = np.ones(y.shape, dtype=y.dtype)
        gx, e1 = allowed(lambda: kernels.conv_grad_input(gy, w, x_f.shape, **kw, **sel))
        gw, e2 = allowed(lambda: kernels.conv_grad_weight(gy, x, np.shape(w), **kw, **sel))
        assert e1 is None and e2 is None, f"forward ran but a gradient refused: {e1 or e2}"
        _check_against_reference(gx, _reference("gi", gy, w, x_f.shape, kw), False)
        _check_against_reference(gw, _reference("gw", gy, x, np.shape(w), kw),
                                 case["nonfinite"])


@st.composite
def pool_case(draw):
    nd = draw(st.integers(1, 3))
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 3))) + tuple(
        draw(st.integers(1, 8 if nd < 3 else 5)) for _ in range(nd))
    dtype = draw(st.sampled_from(DTYPES[:3] * 4 + DTYPES[3:]))
    x = _array(draw, shape, dtype, draw(st.sampled_from(LAYOUTS)), draw(st.integers(0, 3)) == 0)
    return dict(x=x, kind=draw(st.sampled_from(["max", "avg", "sum", "l2", "median"])),
                size=draw(st.one_of(st.integers(1, 3), st.sampled_from([0, 2**62, 2**70]))),
                stride=draw(st.one_of(st.none(), param_int)),
                padding=draw(st.one_of(st.integers(0, 1), st.sampled_from(["same", "valid",
                                                                           -1, 2**70]))),
                backend=draw(st.sampled_from(BACKENDS)))


def _pool_oracle(x, kind, p):
    """Pooling straight from the definition (numpy, float64)."""
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0)) + tuple(p.padding),
                constant_values=fill)
    out = p.out_spatial(np.shape(x)[2:], p.size)
    y = np.zeros(np.shape(x)[:2] + out)
    for idx in np.ndindex(*out):
        win = xp[(slice(None), slice(None)) + tuple(
            slice(i * s, i * s + k) for i, s, k in zip(idx, p.stride, p.size))]
        win = win.reshape(win.shape[:2] + (math.prod(win.shape[2:]),))
        y[(slice(None), slice(None)) + idx] = {
            "max": lambda v: v.max(axis=2), "sum": lambda v: v.sum(axis=2),
            "avg": lambda v: v.mean(axis=2),
            "l2": lambda v: np.sqrt((v * v).sum(axis=2))}[kind](win)
    return y


@SETTINGS
@given(case=pool_case())
def test_fuzz_pool(case):
    x = case["x"]
    kw = dict(stride=case["stride"], padding=case["padding"], backend=case["backend"])
    with guarded():
        y, err = allowed(lambda: kernels.pool(x, case["kind"], case["size"], **kw))
        if err is not None:
            return
        assume(np.asarray(x).dtype != np.float16)
        p = kernels.params.pool_params(np.shape(x), case["size"], case["stride"],
                                       case["padding"])
        want = _pool_oracle(x, case["kind"], p)
        bad = ~np.isfinite(want)
        fine = ~bad & np.isfinite(y)
        np.testing.assert_allclose(y[fine], want[fine], rtol=1e-3, atol=1e-3)
        if case["kind"] != "max":      # max ignores NaN on either side; the rest must agree
            np.testing.assert_array_equal(~np.isfinite(y), bad)
        gy = np.ones(y.shape, dtype=y.dtype)
        allowed(lambda: kernels.pool_grad(gy, x, case["kind"], case["size"], **kw))


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "model.npz"
    engine.set_seed(0)
    m = engine.Sequential([engine.layers.Input((1, 6, 6)),
                           engine.layers.Conv2D(3, 3, padding="same"),
                           engine.layers.Flatten(), engine.layers.Dense(4)])
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.save(path)
    return path.read_bytes()


@st.composite
def damage(draw, data):
    """``data`` truncated, with bytes flipped, inserted or overwritten (one to three edits)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "overwrite", "zero"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "truncate":
            del out[at:]
        elif kind == "flip" and out:
            out[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            out[at:at + len(chunk)] = chunk
        else:
            out[at:at + 4] = bytes(4) if draw(st.booleans()) else b"\xff\xff\xff\x7f"
    return bytes(out)


@SETTINGS
@given(data=st.data())
def test_fuzz_load_model_damaged(data, model_bytes, tmp_path):
    damaged = data.draw(damage(model_bytes))
    path = tmp_path / "damaged.npz"
    path.write_bytes(damaged)
    with guarded():
        model, err = allowed(lambda: engine.load_model(path), ModelFileError)
    if model is not None:       # a harmless edit (zip padding, a name's case): still whole
        assert model.count_params() == 3 * 9 + 3 + 108 * 4 + 4


@st.composite
def idx_bytes(draw):
    code, dtype = draw(st.sampled_from([(0x08, ">u1"), (0x09, ">i1"), (0x0B, ">i2"),
                                        (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")]))
    shape = tuple(draw(st.integers(0, 5)) for _ in range(draw(st.integers(0, 4))))
    body = np.arange(math.prod(shape)).astype(dtype).tobytes()
    raw = bytes([0, 0, code, len(shape)]) + np.asarray(shape, ">u4").tobytes() + body
    return raw, shape


@SETTINGS
@given(data=st.data())
def test_fuzz_read_idx_damaged(data, tmp_path):
    raw, shape = data.draw(idx_bytes())
    how = data.draw(st.sampled_from(["intact", "damaged", "random", "header"]))
    if how == "damaged":
        raw = data.draw(damage(raw))
    elif how == "random":
        raw = data.draw(st.binary(max_size=64))
    elif how == "header":       # a header whose dims claim anything up to 2**32 - 1 each
        ndim = data.draw(st.integers(0, 6))
        dims = [data.draw(st.sampled_from([0, 1, 7, 65536, 2**31, 2**32 - 1]))
                for _ in range(ndim)]
        raw = bytes([0, 0, 0x0D, ndim]) + np.asarray(dims, ">u4").tobytes() + raw[4:]
    gz = data.draw(st.booleans())
    path = tmp_path / ("f.idx.gz" if gz else "f.idx")
    if gz:
        payload = gzip.compress(raw)
        if how == "damaged" and data.draw(st.booleans()):
            payload = data.draw(damage(payload))
        path.write_bytes(payload)
    else:
        path.write_bytes(raw)
    with guarded():
        a, err = allowed(lambda: engine.data.read_idx(path), ValueError)
    if how == "intact":
        assert err is None and a.shape == shape
        np.testing.assert_array_equal(a.reshape(-1), np.arange(a.size).astype(a.dtype))
