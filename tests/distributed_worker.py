"""The data-parallel cases of tests/test_distributed.py: run on every rank under
``mpirun -n 2 python tests/distributed_worker.py OUT_DIR`` (each rank writes its results to
OUT_DIR/<case>-rank<r>.npz), and imported by the test to run the same cases in one process.

Each case builds its model and data from fixed seeds, so every rank and the single process
start from the same numbers (the data-parallel fit broadcasts rank 0's weights anyway).
"""
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import engine  # noqa: E402
import kernels  # noqa: E402
from engine import distributed  # noqa: E402
from engine.layers import (AveragePooling2D, BatchNormalization, Conv2D, Dense,  # noqa: E402
                           Flatten, MaxPooling2D, ReLU, SyncBatchNormalization)


def _data(n, seed=1):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((n, 1, 8, 8)).astype(np.float32)
    y = gen.integers(0, 3, n)
    return x, y


def _cnn():
    return engine.Sequential([
        Conv2D(4, 3, activation="relu", input_shape=(1, 8, 8)),
        MaxPooling2D(2),
        Conv2D(6, 2, padding="same", activation="relu"),
        Flatten(),
        Dense(10, activation="relu"),
        Dense(3, activation="softmax")])


def _bn_cnn(norm):
    return engine.Sequential([
        Conv2D(4, 3, input_shape=(1, 8, 8), use_bias=False),
        norm(momentum=0.9),
        ReLU(),
        AveragePooling2D(2),
        Flatten(),
        Dense(3, activation="softmax")])


# name -> (model builder, optimizer builder, samples, batch_size, epochs)
CASES = {
    # last batch 70 - 4 * 16 = 6 samples: 3 per rank
    "sgd_momentum": (_cnn, lambda: engine.optimizers.SGD(0.05, momentum=0.9), 70, 16, 3),
    # last batch of 1 sample: rank 1 has none and joins the sum with zeros
    "adam_last_one": (_cnn, lambda: engine.optimizers.Adam(0.01), 65, 16, 3),
    # odd batch size: shares of 4 and 3, last batch 5 (3 and 2)
    "sgd_nesterov_odd": (_cnn, lambda: engine.optimizers.SGD(0.05, momentum=0.9,
                                                             nesterov=True), 40, 7, 2),
    # synchronised BN on 2 ranks against plain BN in one process
    "sync_bn": (lambda: _bn_cnn(SyncBatchNormalization), lambda: engine.optimizers.Adam(0.01),
                68, 16, 2),
}


def run_case(name, reference=False):
    """Train case ``name``; returns a dict of arrays: the weights (w0, w1, ...), the history
    of losses and accuracies, evaluate's results and predict's output.  ``reference``: the
    single-process run (sync_bn then uses plain BatchNormalization)."""
    build, make_opt, n, batch_size, epochs = CASES[name]
    if reference and name == "sync_bn":
        def build():
            return _bn_cnn(BatchNormalization)
    engine.set_seed(7)
    model = build()
    model.compile(make_opt(), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data(n)
    xv, yv = _data(23, seed=2)
    hist = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0,
                     validation_data=(xv, yv))
    out = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    for k, v in hist.history.items():
        out["h_" + k] = np.asarray(v)
    out["evaluate"] = np.asarray(model.evaluate(xv, yv, batch_size=5))
    out["predict"] = model.predict(xv, batch_size=4)
    return out


def run_per_rank_bn():
    """Plain BatchNormalization in data-parallel fit: per-rank batch statistics; the moving
    statistics are averaged at the end of each epoch (so they agree across ranks)."""
    engine.set_seed(7)
    model = _bn_cnn(BatchNormalization)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = _data(32)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return {f"w{i}": w for i, w in enumerate(model.get_weights())}


def sync_bn_idle_error():
    """SyncBatchNormalization with a last batch of 1 sample for 2 ranks: refused up front."""
    engine.set_seed(7)
    model = _bn_cnn(SyncBatchNormalization)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = _data(17)
    try:
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    except ValueError as e:
        return str(e)
    return "no error"


def main(out_dir):
    distributed.init()
    r = distributed.rank()
    results = {name: run_case(name) for name in CASES}
    results["per_rank_bn"] = run_per_rank_bn()
    results["sync_bn_idle"] = {"error": np.asarray(sync_bn_idle_error())}
    # the same global batch and data as one process, computed in this world
    results["world"] = {"size": np.asarray(distributed.size()),
                        "threads": np.asarray(kernels.get_num_threads()),
                        "allreduce": distributed.allreduce(np.arange(3.0) + r),
                        "mean": distributed.allreduce(float(r), op="mean"),
                        "bcast": distributed.broadcast(np.arange(4) * (r + 1)),
                        "gather": np.asarray(distributed.allgather(10 + r))}
    # only rank 0 writes model files
    engine.set_seed(0)
    _cnn().save(os.path.join(out_dir, f"model-rank{r}.npz"))
    distributed.barrier()
    for name, arrays in results.items():
        np.savez(os.path.join(out_dir, f"{name}-rank{r}.npz"), **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
