"""Every code path of the im2col backends against the reference.

The planner picks per-image GEMM blocks or one wide GEMM per chunk by problem size, splits
copies over threads above a size, skips the column build for 1x1 stride-1 layers, and chunks
to the workspace budget; the Cython backend runs batches in the team layout (whole images per
thread, single-threaded GEMMs); the shared grid's tiny shapes reach only some of these paths,
so here each is forced by patching the thresholds."""

import numpy as np
import pytest

import kernels
from kernels import config, registry

from conftest import check_conv

BACKENDS = [b for b in ("numba", "cython") if ("im2col", b) in registry.available("conv")]
CASES = [
    ((3, 6, 7, 9), (4, 6, 3, 3), dict(padding=1)),
    ((2, 4, 6, 5), (6, 2, 3, 2), dict(stride=(2, 1), dilation=(1, 2), groups=2)),
    ((2, 8, 5, 7), (4, 8, 1, 1), {}),                        # 1x1 stride 1: no column build
    ((2, 8, 6, 6), (4, 8, 1, 1), dict(stride=2)),
    # strided 1x1: gathered input, then the stride-1 1x1 path (odd sizes, padding, groups,
    # dilation, 1-D and 3-D)
    ((2, 8, 7, 7), (6, 4, 1, 1), dict(stride=2, padding=1, groups=2)),
    ((2, 4, 9, 9), (3, 4, 1, 1), dict(stride=(3, 2), dilation=3, padding=((0, 2), (1, 0)))),
    ((2, 4, 11), (3, 4, 1), dict(stride=3)),
    ((1, 4, 5, 6, 7), (2, 4, 1, 1, 1), dict(stride=(2, 1, 3))),
    ((2, 3, 17), (5, 3, 4), dict(padding=((2, 1),))),
    ((1, 2, 4, 5, 4), (3, 2, 2, 3, 2), dict(padding=1)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["blocks", "wide", "team"])
@pytest.mark.parametrize("budget", [1, 37, None])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[0])))
@pytest.mark.parametrize("op", ["forward", "grad_input", "grad_weight"])
def test_forced_paths_match_reference(backend, layout, budget, case, op, monkeypatch):
    # the planner both backends share reads these from kernels.config at every call
    monkeypatch.setattr(config, "IM2COL_BLOCK_MIN_MACS", 0 if layout == "blocks" else 1 << 62)
    monkeypatch.setattr(config, "IM2COL_PARALLEL_MIN_ELEMS", 0)
    monkeypatch.setattr(config, "IM2COL_TEAM", layout == "team")
    if layout == "team":
        if backend != "cython":
            pytest.skip("the team layout is the Cython backend's")
        _require_team(case[0][0], monkeypatch)
    if budget is not None:
        monkeypatch.setattr(config, "WORKSPACE_BYTES", budget * 4)
    rng = np.random.default_rng(7)
    xs, ws, kw = case
    x = rng.uniform(-1, 1, xs).astype(np.float32)
    w = rng.uniform(-1, 1, ws).astype(np.float32)
    y_shape = kernels.conv_params(xs, ws, **kw).out_shape(xs, ws)
    gy = rng.uniform(-1, 1, y_shape).astype(np.float32)
    check_conv(op, "im2col", backend, x, w, gy, kw)


def _require_team(n_images, monkeypatch):
    """Make the team layout apply to a batch of ``n_images`` (it needs numpy's BLAS and at
    least two threads; evenly divided batches)."""
    from kernels._cython import im2col
    if not im2col.team_available():
        pytest.skip("the team layout needs numpy's OpenBLAS thread-count API")
    if kernels.get_num_threads() < 2:
        pytest.skip("the team layout needs two threads")
    monkeypatch.setattr(config, "IM2COL_TEAM_MIN_IMAGES", 0)


@pytest.mark.skipif("cython" not in BACKENDS, reason="the Cython backend is not built")
@pytest.mark.parametrize("n_images", [2, 5, 64])
def test_team_layout_is_chosen_and_restores_the_blas_thread_count(n_images, monkeypatch):
    from threadpoolctl import threadpool_info

    from kernels._cython import im2col
    _require_team(n_images, monkeypatch)
    plan_ = {"direct": False}
    assert im2col._team_plan(plan_, n_images, 27, 1600, 1 << 20) is not None
    monkeypatch.setattr(config, "IM2COL_TEAM", False)
    assert im2col._team_plan(plan_, n_images, 27, 1600, 1 << 20) is None
    monkeypatch.setattr(config, "IM2COL_TEAM", True)

    def counts():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    before = counts()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_images, 3, 40, 40)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    kw = dict(strategy="im2col", backend="cython", padding=1)
    y = kernels.conv(x, w, **kw)
    gw = kernels.conv_grad_weight(y, x, w.shape, **kw)
    assert counts() == before
    ref = kernels.conv(x.astype(np.float64), w.astype(np.float64), strategy="direct",
                       backend="numba", padding=1)
    gref = kernels.conv_grad_weight(ref, x.astype(np.float64), w.shape, strategy="direct",
                                    backend="numba", padding=1)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw, gref, rtol=1e-4, atol=1e-3)
