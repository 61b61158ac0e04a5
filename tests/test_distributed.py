"""engine.distributed: the world of one in this process, and data-parallel training under
``mpirun -n 2`` (a subprocess) checked against the same training in this process.

The oracle of the 2-rank runs is one process on the same data and global batch: the weights,
the per-epoch logs, evaluate and predict must agree to float32 summation order, and the two
ranks must hold identical weights.  The mpirun tests skip where mpi4py or mpirun is missing
(``pip install mpich mpi4py``).
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import engine
from engine import distributed
from engine import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import distributed_worker as worker  # noqa: E402

RANKS = 2


def _mpirun():
    local = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return local if os.path.exists(local) else shutil.which("mpirun")


def _have_mpi4py():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


needs_mpi = pytest.mark.skipif(not (_have_mpi4py() and _mpirun()),
                               reason="needs mpi4py and mpirun (pip install mpich mpi4py)")


def _python(code, env=None):
    """Run ``code`` in a fresh interpreter (no mpirun) from the project root."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


# -- a world of one -------------------------------------------------------------------------

def test_world_of_one_before_init():
    assert (distributed.rank(), distributed.size(), distributed.is_main()) == (0, 1, True)
    distributed.barrier()
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(distributed.allreduce(a), a)
    assert distributed.allreduce(3, op="mean").dtype == np.float64
    assert float(distributed.allreduce(2.5, op="max")) == 2.5
    assert distributed.broadcast({"a": 1}) == {"a": 1}
    assert distributed.allgather(5) == [5]
    assert distributed.shard_range(10) == (0, 10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="op must be one of"):
        distributed.allreduce(1.0, op="avg")
    with pytest.raises(TypeError, match="numeric array"):
        distributed.allreduce("text")
    with pytest.raises(ValueError, match="root must be a rank"):
        distributed.broadcast(1, root=3)
    with pytest.raises(ValueError, match="threads must be"):
        distributed.init(threads=0)


def test_init_without_mpirun_is_a_world_of_one_and_idempotent():
    r = _python("from engine import distributed as d; import kernels; t = "
                "kernels.get_num_threads(); print(d.init(), d.init(), d.rank(), d.size(), "
                "d.is_main(), d.is_initialized(), kernels.get_num_threads() == t)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "1", "0", "1", "True", "True", "True"]


def test_init_refuses_a_launched_rank_without_mpi4py():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "from engine import distributed\n"
            "try:\n    distributed.init()\nexcept ImportError as e:\n    print(e)\n")
    r = _python(code, env={"PMI_SIZE": "4"})
    assert r.returncode == 0, r.stderr
    assert "one of 4 ranks (PMI_SIZE=4)" in r.stdout and "pip install mpi4py" in r.stdout
    r = _python(code.replace("print(e)", "print('raised')") + "else:\n    print('world', "
                "distributed.size())\n", env={"PMI_SIZE": "1"})
    assert r.stdout.split() == ["world", "1"], r.stderr


@pytest.mark.parametrize("shape", [(6, 3), (4, 2, 3, 3)])
def test_sync_batch_norm_is_batch_norm_in_a_world_of_one(shape):
    gen = np.random.default_rng(3)
    x = gen.standard_normal(shape)
    c = shape[1]
    gamma, beta = gen.uniform(0.5, 2.0, c), gen.standard_normal(c)
    g = gen.standard_normal(shape)
    out = {}
    for name, fn in (("bn", F.batch_norm), ("sync", distributed.sync_batch_norm)):
        xt = engine.Tensor(x.copy(), requires_grad=True)
        gt = engine.Tensor(gamma.copy(), requires_grad=True)
        bt = engine.Tensor(beta.copy(), requires_grad=True)
        rm, rv = np.zeros(c), np.ones(c)
        y = fn(xt, gt, bt, rm, rv, True, momentum=0.8, eps=1e-3)
        (y * engine.Tensor(g)).sum().backward()
        out[name] = (y.numpy(), xt.grad, gt.grad, bt.grad, rm, rv)
    for a, b in zip(out["bn"], out["sync"]):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    # inference uses the moving statistics, as batch_norm does
    rm, rv = gen.standard_normal(c), gen.uniform(0.5, 2.0, c)
    np.testing.assert_allclose(
        distributed.sync_batch_norm(x, gamma, beta, rm, rv, False).numpy(),
        (x - rm.reshape((1, c) + (1,) * (len(shape) - 2))) /
        np.sqrt(rv + 1e-3).reshape((1, c) + (1,) * (len(shape) - 2)) *
        gamma.reshape((1, c) + (1,) * (len(shape) - 2)) +
        beta.reshape((1, c) + (1,) * (len(shape) - 2)), rtol=1e-10)


def test_sync_batch_norm_gradcheck():
    gen = np.random.default_rng(4)
    x = engine.Tensor(gen.standard_normal((5, 2, 3)), requires_grad=True)
    gamma = engine.Tensor(gen.uniform(0.5, 2.0, 2), requires_grad=True)
    beta = engine.Tensor(gen.standard_normal(2), requires_grad=True)
    assert engine.gradcheck(lambda a, b, c: distributed.sync_batch_norm(
        a, b, c, None, None, True), [x, gamma, beta])


def test_sync_batch_norm_bad_input():
    with pytest.raises(ValueError, match=r"sync_batch_norm: gamma must have shape \(3,\)"):
        distributed.sync_batch_norm(np.ones((2, 3), np.float32), np.ones(2, np.float32), None,
                                    None, None, True)
    with pytest.raises(ValueError, match="at least 2 dims"):
        distributed.sync_batch_norm(np.ones(3, np.float32), None, None, None, None, True)


def test_sync_batch_normalization_layer_saves_and_loads(tmp_path):
    from engine.layers import SyncBatchNormalization
    engine.set_seed(0)
    model = worker._bn_cnn(SyncBatchNormalization)
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = worker._data(24)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = engine.load_model(tmp_path / "m.npz")
    assert type(loaded.layers[1]).__name__ == "SyncBatchNormalization"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# -- two ranks under mpirun -----------------------------------------------------------------

@pytest.fixture(scope="module")
def mpi_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi")
    env = {**os.environ, "CONVLAB_NUM_THREADS": ""}
    r = subprocess.run([_mpirun(), "-n", str(RANKS), sys.executable,
                        os.path.join(HERE, "distributed_worker.py"), str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, f"mpirun failed:\n{r.stdout}\n{r.stderr}"

    def load(name, rank):
        with np.load(out / f"{name}-rank{rank}.npz") as f:
            return {k: f[k] for k in f.files}
    return out, load


@needs_mpi
@pytest.mark.parametrize("case", list(worker.CASES))
def test_two_ranks_train_as_one_process(mpi_results, case):
    _, load = mpi_results
    ref = worker.run_case(case, reference=True)
    rank0, rank1 = load(case, 0), load(case, 1)
    assert sorted(rank0) == sorted(ref)
    for key in ref:
        # the two ranks hold the very same numbers
        np.testing.assert_array_equal(rank1[key], rank0[key], err_msg=key)
        # and those of one process, to float32 summation order
        np.testing.assert_allclose(rank0[key], ref[key], rtol=1e-4, atol=2e-5, err_msg=key)
    # the comparison can fail: training moved the weights far more than the tolerance
    engine.set_seed(7)
    build = worker.CASES[case][0]
    start = (worker._bn_cnn(engine.layers.BatchNormalization) if case == "sync_bn"
             else build()).get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(start, (ref[f"w{i}"] for i in
                                                             range(len(start))))) > 1e-2


@needs_mpi
def test_world_collectives(mpi_results):
    _, load = mpi_results
    for rank in range(RANKS):
        w = load("world", rank)
        assert int(w["size"]) == RANKS
        # each rank's share of this machine's cores
        assert int(w["threads"]) == max(len(os.sched_getaffinity(0)) // RANKS, 1)
        np.testing.assert_array_equal(w["allreduce"], np.arange(3.0) * RANKS +
                                      sum(range(RANKS)))
        assert w["mean"].shape == () and float(w["mean"]) == sum(range(RANKS)) / RANKS
        np.testing.assert_array_equal(w["bcast"], np.arange(4))
        np.testing.assert_array_equal(w["gather"], 10 + np.arange(RANKS))


@needs_mpi
def test_only_rank_zero_writes_files(mpi_results):
    out, _ = mpi_results
    assert (out / "model-rank0.npz").exists()
    assert not any((out / f"model-rank{r}.npz").exists() for r in range(1, RANKS))


@needs_mpi
def test_per_rank_batch_norm(mpi_results):
    """Plain BatchNormalization uses each rank's statistics (so training differs from one
    process); its moving statistics are averaged, so the ranks agree."""
    _, load = mpi_results
    rank0, rank1 = load("per_rank_bn", 0), load("per_rank_bn", 1)
    for key in rank0:
        np.testing.assert_allclose(rank1[key], rank0[key], rtol=1e-6, atol=1e-7)
    one = worker.run_per_rank_bn()
    assert max(np.abs(one[k] - rank0[k]).max() for k in one) > 1e-4


@needs_mpi
def test_sync_batch_norm_refuses_idle_ranks(mpi_results):
    _, load = mpi_results
    msg = str(load("sync_bn_idle", 0)["error"])
    assert "SyncBatchNormalization needs a sample on every rank" in msg
    assert "batch of 1 samples" in msg


@needs_mpi
def test_cli_train_distributed():
    cmd = [_mpirun(), "-n", str(RANKS), sys.executable, "-m", "bench.cli", "train",
           "--dataset", "signals1d", "--epochs", "1", "--limit", "90", "--batch-size", "16",
           "--distributed"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    # printed once (rank 0), with the accuracy of the single-process run
    assert r.stdout.count("held-out accuracy") == 1, r.stdout
    one = subprocess.run(cmd[3:-1], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr
    def result(text):
        line = [ln for ln in text.splitlines() if "held-out accuracy" in ln][0]
        acc, loss = line.split("accuracy: ")[1].split(" (loss ")
        return float(acc), float(loss.split(",")[0])
    (acc2, loss2), (acc1, loss1) = result(r.stdout), result(one.stdout)
    assert acc2 == acc1 and abs(loss2 - loss1) <= 2e-4


def test_ring_allreduce_cost_model():
    from bench import scaling
    # 2 (p - 1) / p * bytes / bandwidth + 2 (p - 1) * latency (+ the on-node share)
    assert scaling.ring_allreduce_s(1e6, 4, 8e9, 1e-5, 0.0) == pytest.approx(
        1.5 * 1e6 * 8 / 8e9 + 6 * 1e-5)
    assert scaling.ring_allreduce_s(1e6, 2, 8e9, 0.0, 0.01) == pytest.approx(1e-3 + 0.01)
    # MNIST net: (24*24*20*25 + 20*20*40*500 + 16000*100 + 100*10) multiply-adds, x2, x3
    assert scaling.mnist_train_flop() == 6 * 9_889_000
    rows = scaling.projection(10.0, 5.0)
    assert len(rows) == 2 * 2 * 2 * 2
    assert all(0 < r["efficiency"] <= r["efficiency_network_only"] < 1 for r in rows)


@needs_mpi
@pytest.mark.parametrize("failure", ["raise ValueError('boom on rank 1')",
                                     "from bench import cli; sys.exit(cli._status(1))"])
def test_a_failing_rank_ends_the_world(failure):
    """Rank 1 fails (an uncaught exception in a script; an error exit of the CLI) while
    rank 0 waits in a barrier: every rank must end, with a failing status, not hang."""
    code = ("import sys\nfrom engine import distributed\ndistributed.init()\n"
            f"if distributed.rank() == 1:\n    {failure}\n"
            "distributed.barrier()\nprint('rank 0 passed the barrier')\n")
    try:
        r = subprocess.run([_mpirun(), "-n", str(RANKS), sys.executable, "-c", code], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the world hung after rank 1 failed")
    assert r.returncode != 0
    assert "rank 0 passed the barrier" not in r.stdout
