"""Data-parallel scaling of engine.distributed: measured on this machine, projected to clusters.

    python -m bench.scaling ab --ranks 2 --repeats 3      interleaved runs of one 1-thread
                                                          process and N 1-thread ranks
                                                          (mpirun), median throughputs
    mpirun -n 2 python -m bench.scaling allreduce         time of one in-place Allreduce of
                                                          the MNIST net's gradient buffer
    python -m bench.scaling project --allreduce-ms T --sample-ms S
                                                          ring-allreduce projection for 8 and
                                                          64 nodes at 10 and 100 Gb/s

``train`` (what ``ab`` launches) fits the course's MNIST net (engine.zoo "mnist", SGD with
momentum) on generated MNIST-shaped data: timing does not depend on the pixel values.  The
first epoch warms up (kernels compile or load from the cache); the second is timed.

The projection: one step of data-parallel training costs its compute, ``b * t_sample`` for the
per-node batch b, plus one allreduce of the gradients (no overlap: convlab reduces after the
backward pass).  A ring allreduce over p nodes of n bytes at bandwidth B and per-message
latency a takes ``2 (p - 1) / p * n / B + 2 (p - 1) * a``; the reduction and copies on each
node add ``2 (p - 1) / p * t_local``, where ``t_local`` is the measured 2-rank shared-memory
allreduce of the same buffer (the p = 2 ring on one node).  Efficiency is
``compute / (compute + allreduce)``, with the per-node batch fixed (weak scaling).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

# ResNet-50: 25.6 M parameters, 4.1 G multiply-adds per 224x224 image forward; training is
# about 3x the forward (forward, grad-input, grad-weight).
RESNET50_PARAMS = 25_557_032
RESNET50_TRAIN_FLOP = 3 * 2 * 4.1e9


def mnist_train_flop():
    """Multiply-add FLOPs (x2) of one training sample of the MNIST net (forward x 3)."""
    conv1 = 24 * 24 * 20 * (5 * 5 * 1)
    conv2 = 20 * 20 * 40 * (5 * 5 * 20)
    dense = 40 * 20 * 20 * 100 + 100 * 10
    return 3 * 2 * (conv1 + conv2 + dense)


def cmd_train(args):
    import engine
    from engine import distributed
    distributed.init()
    gen = np.random.default_rng(0)
    x = gen.random((args.samples, 1, 28, 28), dtype=np.float32)
    y = gen.integers(0, 10, args.samples)
    engine.set_seed(0)
    model = engine.zoo.get_model("mnist", (1, 28, 28), 10)
    model.compile(engine.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    import kernels
    hist = model.fit(x, y, batch_size=args.batch_size, epochs=2, verbose=0)
    if distributed.is_main():
        print(json.dumps({"ranks": distributed.size(), "threads": kernels.get_num_threads(),
                          "samples_per_s": hist.timing["samples_per_s"][-1],
                          "batch_size": args.batch_size, "samples": args.samples}))


def cmd_allreduce(args):
    from engine import distributed
    distributed.init()
    comm = distributed._world["comm"]
    if comm is None or distributed.size() < 2:
        raise SystemExit("allreduce: run under mpirun -n 2 (or more)")
    from mpi4py import MPI
    buf = np.ones(args.params, np.float32)
    times = []
    for _ in range(args.repeats + 2):
        comm.Barrier()
        t0 = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        times.append(time.perf_counter() - t0)
    worst = comm.allreduce(statistics.median(times[2:]), op=MPI.MAX)
    if distributed.is_main():
        print(json.dumps({"ranks": distributed.size(), "params": args.params,
                          "bytes": buf.nbytes, "median_ms": 1e3 * worst}))


def _mpirun():
    local = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return local if os.path.exists(local) else "mpirun"


def _cmd(ranks, args):
    return [_mpirun(), "-n", str(ranks), sys.executable, "-m", "bench.scaling", "train",
            "--samples", str(args.samples), "--batch-size", str(args.batch_size)]


def _result(proc):
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"bench.scaling train failed: {err.strip()}")
    return json.loads(out.strip().splitlines()[-1])["samples_per_s"]


def _launch(ranks, args, copies=1):
    """Samples per second of ``copies`` concurrent runs of ``ranks`` 1-thread ranks (summed)."""
    env = {**os.environ, "CONVLAB_NUM_THREADS": "1"}
    procs = [subprocess.Popen(_cmd(ranks, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(copies)]
    return sum(_result(p) for p in procs)


def cmd_ab(args):
    """Interleaved repeats of: one 1-thread process; N 1-thread ranks of one data-parallel
    run; N independent 1-thread processes at once (the throughput the cores give N
    processes under the machine's load, without communication)."""
    one, many, apart = [], [], []
    for _ in range(args.repeats):
        one.append(_launch(1, args))
        many.append(_launch(args.ranks, args))
        apart.append(_launch(1, args, copies=args.ranks))
    print(json.dumps({
        "one_process_samples_per_s": one, f"{args.ranks}_ranks_samples_per_s": many,
        f"{args.ranks}_independent_processes_samples_per_s": apart,
        "efficiency_vs_one_median": statistics.median(
            m / (args.ranks * o) for m, o in zip(many, one)),
        "efficiency_vs_independent_median": statistics.median(
            m / a for m, a in zip(many, apart)),
        "batch_size": args.batch_size, "samples": args.samples,
        "load_average": os.getloadavg()}))


def ring_allreduce_s(nbytes, p, bandwidth_bps, latency_s, local_s):
    """Seconds of a ring allreduce of ``nbytes`` over ``p`` nodes (see the module doc)."""
    share = 2.0 * (p - 1) / p
    return share * nbytes * 8 / bandwidth_bps + 2 * (p - 1) * latency_s + share * local_s


def projection(allreduce_ms, sample_ms, per_node_batch=32, node_speedup=(1, 32),
               nodes=(8, 64), links=((10e9, 20e-6), (100e9, 2e-6)), mnist_params=1621670):
    """Rows of the projection table: model, nodes, link, node speed, compute and allreduce
    times per step (ms) and efficiency."""
    flop_rate = mnist_train_flop() / (sample_ms * 1e-3)  # what one core reached here
    models = (("MNIST net", mnist_params * 4, sample_ms),
              ("ResNet-50", RESNET50_PARAMS * 4, 1e3 * RESNET50_TRAIN_FLOP / flop_rate))
    local_per_byte = allreduce_ms * 1e-3 / (mnist_params * 4)
    rows = []
    for name, nbytes, ms in models:
        for speed in node_speedup:
            compute = per_node_batch * ms * 1e-3 / speed
            for p in nodes:
                for bw, lat in links:
                    comm = ring_allreduce_s(nbytes, p, bw, lat, local_per_byte * nbytes)
                    net = ring_allreduce_s(nbytes, p, bw, lat, 0.0)
                    rows.append({"model": name, "nodes": p, "gbit_s": bw / 1e9,
                                 "latency_us": lat * 1e6, "node_cores": speed,
                                 "compute_ms": 1e3 * compute, "allreduce_ms": 1e3 * comm,
                                 "efficiency": compute / (compute + comm),
                                 "network_ms": 1e3 * net,
                                 "efficiency_network_only": compute / (compute + net)})
    return rows


def cmd_project(args):
    rows = projection(args.allreduce_ms, args.sample_ms, args.per_node_batch)
    print(f"per-node batch {args.per_node_batch}; links 10 Gb/s (20 us) and 100 Gb/s (2 us); "
          f"'net' columns leave out the measured on-node cost")
    print(f"{'model':10} {'nodes':>5} {'Gb/s':>5} {'cores':>5} {'compute ms':>11} "
          f"{'allreduce ms':>12} {'efficiency':>10} {'net ms':>8} {'net eff':>8}")
    for r in rows:
        print(f"{r['model']:10} {r['nodes']:5d} {r['gbit_s']:5.0f} {r['node_cores']:5d} "
              f"{r['compute_ms']:11.1f} {r['allreduce_ms']:12.1f} {r['efficiency']:10.3f} "
              f"{r['network_ms']:8.1f} {r['efficiency_network_only']:8.3f}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--samples", type=int, default=4096)
    t.add_argument("--batch-size", type=int, default=64)
    t.set_defaults(func=cmd_train)
    a = sub.add_parser("allreduce")
    a.add_argument("--params", type=int, default=1621670)
    a.add_argument("--repeats", type=int, default=20)
    a.set_defaults(func=cmd_allreduce)
    ab = sub.add_parser("ab")
    ab.add_argument("--ranks", type=int, default=2)
    ab.add_argument("--repeats", type=int, default=3)
    ab.add_argument("--samples", type=int, default=4096)
    ab.add_argument("--batch-size", type=int, default=64)
    ab.set_defaults(func=cmd_ab)
    pr = sub.add_parser("project")
    pr.add_argument("--allreduce-ms", type=float, required=True,
                    help="measured 2-rank allreduce of the MNIST net's gradients (ms)")
    pr.add_argument("--sample-ms", type=float, required=True,
                    help="measured 1-thread training time per sample of the MNIST net (ms)")
    pr.add_argument("--per-node-batch", type=int, default=32)
    pr.set_defaults(func=cmd_project)
    args = p.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
