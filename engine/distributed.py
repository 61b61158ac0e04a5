"""Data-parallel training over MPI (mpi4py): one model, N processes, the numbers of one process.

Launch the same script on N processes (``mpirun -n 4 python train.py``, ``srun`` on Slurm) and
call :func:`init` first.  From then on ``fit``, ``evaluate`` and ``predict`` are data parallel:

- at the start of ``fit`` rank 0's weights and optimizer state are broadcast to every rank;
- ``batch_size`` is the *global* batch: rank 0 draws the shuffling order, every rank takes its
  contiguous share of each batch (sizes differ by at most one; the last, short batch too), so
  the batches, their order and the updates are those of one process;
- after the backward pass the gradients of all parameters, each weighted by this rank's share
  of the batch, are packed into one contiguous buffer and summed with one in-place
  ``Allreduce`` per step: the weighted sum is the gradient of the global batch's mean loss;
- losses and metrics are summed over ranks at the end of each epoch; validation, ``evaluate``
  and ``predict`` split the samples between ranks and reduce (or gather) the results;
- only rank 0 prints (progress bars, ``verbose``) and writes files (``model.save``, hence
  ModelCheckpoint);
- BatchNormalization normalises with per-rank batch statistics (its moving statistics are
  averaged over ranks at the end of each epoch); :class:`SyncBatchNormalization` all-reduces
  the statistics so that training matches one process;
- :func:`init` gives each rank its share of the node's cores (``set_num_threads``).

Every rank must call fit / evaluate / predict with the same data (they are collective: a call
on one rank alone waits for the others).  ``train_on_batch`` stays local to its rank.  Dropout
draws from each rank's own engine generator: seed it per rank
(``engine.set_seed(seed + distributed.rank())``) so that the ranks' masks differ.  In a world
of one (no ``mpirun``, or mpi4py not installed) everything is as without this module.

    >>> from engine import distributed
    >>> distributed.init()                      # idempotent; a world of 1 without mpirun
    1
    >>> distributed.size(), distributed.rank(), distributed.is_main()
    (1, 0, True)
    >>> float(distributed.allreduce(3.0, op="mean"))
    3.0
"""
from __future__ import annotations

import numbers
import os
import sys

import numpy as np

from . import device as _dev
from .autograd import record
from .tensor import Tensor, as_tensor

__all__ = ["init", "is_initialized", "rank", "size", "is_main", "barrier", "allreduce",
           "allgather", "broadcast", "abort", "local_size", "sync_batch_norm", "SyncBatchNormalization"]

# Environment variables set by the common launchers (MPICH/Hydra, Open MPI, PMIx, Slurm's srun)
# that give the world size: used only to refuse a silent world of 1 when mpi4py is missing.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS",
                       "SLURM_NTASKS")

_world = {"initialized": False, "comm": None, "MPI": None, "rank": 0, "size": 1,
          "local_size": 1}

_OPS = ("sum", "mean", "max", "min", "prod")


def _launcher_size():
    for var in _LAUNCHER_SIZE_VARS:
        value = os.environ.get(var)
        if value and value.isdigit() and int(value) > 1:
            if var == "SLURM_NTASKS" and "SLURM_PROCID" not in os.environ:
                continue  # inside an allocation, but not started by srun
            return var, int(value)
    return None


def _affinity():
    try:
        return frozenset(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS): all the cores
        return frozenset(range(os.cpu_count() or 1))


def _core_share(local_comm):
    """This rank's share of the cores: the cores it may run on, divided between the ranks on
    this node that may run on the same cores (a launcher that binds each rank to its own
    cores leaves them all to it; an unbound launch divides the node)."""
    mine = _affinity()
    sharing = sum(1 for other in local_comm.allgather(mine) if other == mine)
    return max(len(mine) // max(sharing, 1), 1)


def init(threads="auto"):
    """Join the MPI world (idempotent).  Without mpirun, or without mpi4py installed and no
    launcher around, the world is this process alone.

    Parameters
    ----------
    threads : "auto", None or int
        "auto": set this rank's thread count (``engine.set_num_threads``) to its share of the
        node's cores (the cores it may run on, divided between the ranks on the node bound to
        the same cores), unless CONVLAB_NUM_THREADS is set; an int sets that count; None
        leaves threads alone.  Applied only in a world of more than one.

    In a world of more than one, an uncaught exception on any rank aborts every rank (after
    printing its traceback), instead of leaving the others waiting for it.

    Returns
    -------
    int : the world size.

    Examples
    --------
    >>> init()
    1
    """
    if threads != "auto" and threads is not None and (
            not isinstance(threads, numbers.Integral) or isinstance(threads, bool)
            or threads < 1):
        raise ValueError(f"distributed.init: threads must be 'auto', None or an int >= 1, "
                         f"received {threads!r}")
    if _world["initialized"]:
        return _world["size"]
    try:
        from mpi4py import MPI
    except ImportError:
        launched = _launcher_size()
        if launched is not None:
            raise ImportError(
                f"distributed.init: this process was started as one of {launched[1]} ranks "
                f"({launched[0]}={launched[1]}) but mpi4py is not installed; install it with "
                f"`pip install mpi4py` (and `pip install mpich` where the machine has no MPI), "
                f"or `pip install convlab[mpi]`") from None
        _world.update(initialized=True)
        return 1
    comm = MPI.COMM_WORLD
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    _world.update(initialized=True, comm=comm, MPI=MPI, rank=comm.Get_rank(),
                  size=comm.Get_size(), local_size=local.Get_size())
    share = _core_share(local)
    local.Free()
    if _world["size"] > 1:
        _abort_on_uncaught_exception()
    if _world["size"] > 1 and threads is not None:
        from .autograd import set_num_threads
        if threads != "auto":
            set_num_threads(int(threads))
        elif not os.environ.get("CONVLAB_NUM_THREADS"):
            set_num_threads(share)
    return _world["size"]


def _abort_on_uncaught_exception():
    """An uncaught exception on one rank aborts the world (as ``python -m mpi4py`` does):
    otherwise the rank would finalise MPI and exit while the others wait for it forever."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        previous(exc_type, exc, tb)
        abort(1)
    sys.excepthook = hook


def abort(code=1):
    """End every rank of the world with exit status ``code`` (after flushing this rank's
    output); in a world of one, exit with ``code``.  For a failure that only some ranks see,
    which would leave the others waiting in a collective."""
    sys.stdout.flush()
    sys.stderr.flush()
    comm = _active()
    if comm is None:
        raise SystemExit(code)
    comm.Abort(int(code))


def is_initialized():
    """True once :func:`init` ran."""
    return _world["initialized"]


def rank():
    """This process's rank, 0 to size() - 1 (0 before init())."""
    return _world["rank"]


def size():
    """The number of processes in the world (1 before init() or without mpirun)."""
    return _world["size"]


def local_size():
    """The number of ranks on this node (1 before init())."""
    return _world["local_size"]


def is_main():
    """True on rank 0, the rank that prints and writes files (and in a world of one)."""
    return _world["rank"] == 0


def barrier():
    """Wait until every rank reaches this call (nothing to wait for in a world of one)."""
    if _world["size"] > 1:
        _world["comm"].Barrier()


def _active():
    """The communicator when init() ran in a world of more than one, else None."""
    return _world["comm"] if _world["size"] > 1 else None


def allreduce(value, op="sum"):
    """Combine ``value`` over all ranks: "sum", "mean", "max", "min" or "prod".

    ``value`` is a number or an array (the same shape on every rank); the result is a new
    ndarray (a 0-d one for a number) on every rank, float64 for "mean".

    >>> allreduce(np.array([1.0, 2.0]), op="max")
    array([1., 2.])
    """
    if op not in _OPS:
        raise ValueError(f"distributed.allreduce: op must be one of {', '.join(_OPS)}, "
                         f"received {op!r}")
    arr = np.array(value.numpy() if isinstance(value, Tensor) else value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"distributed.allreduce: value must be a number or a numeric array, "
                        f"received {type(value).__name__} of dtype {arr.dtype}")
    if op == "mean" and arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    comm = _active()
    if comm is None:
        return arr
    MPI = _world["MPI"]
    shapes = comm.allgather((arr.shape, arr.dtype.str))
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"distributed.allreduce: every rank must pass the same shape and "
                         f"dtype, received {', '.join(f'{s} {d}' for s, d in shapes)} on "
                         f"ranks 0..{len(shapes) - 1}")
    mpi_op = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN,
              "prod": MPI.PROD}[op]
    arr = np.array(arr, order="C")  # a contiguous copy that keeps 0-d arrays 0-d
    comm.Allreduce(MPI.IN_PLACE, arr, op=mpi_op)
    if op == "mean":
        arr /= _world["size"]
    return arr


def allgather(value):
    """Every rank's ``value`` (any picklable object), as a list in rank order, on every rank.

    >>> allgather({"rank": rank()})
    [{'rank': 0}]
    """
    comm = _active()
    return [value] if comm is None else comm.allgather(value)


def broadcast(value, root=0):
    """Rank ``root``'s ``value`` on every rank: arrays through a buffer broadcast (any rank
    may pass None for its own), other Python objects pickled.

    >>> broadcast({"lr": 0.1})
    {'lr': 0.1}
    """
    comm = _active()
    if not isinstance(root, numbers.Integral) or not 0 <= root < _world["size"]:
        raise ValueError(f"distributed.broadcast: root must be a rank in [0, {size()}), "
                         f"received {root!r}")
    if comm is None:
        return value
    head = comm.bcast((value.shape, value.dtype.str) if isinstance(value, np.ndarray) and
                      value.dtype.kind in "biufc" else None, root=root)
    if head is None:
        return comm.bcast(value, root=root)
    out = np.ascontiguousarray(value) if comm.Get_rank() == root else \
        np.empty(head[0], np.dtype(head[1]))
    comm.Bcast(out, root=root)
    return out


# -- splitting work between ranks ---------------------------------------------------------

def _bounds(n, p):
    """Start of each rank's share of n items (p + 1 bounds): shares differ by at most one,
    the larger first, so rank 0 always has an item when n >= 1."""
    q, r = divmod(n, p)
    return [i * q + min(i, r) for i in range(p + 1)]


def _same_count(where, n):
    counts = _world["comm"].allgather(int(n))
    if len(set(counts)) > 1:
        raise ValueError(f"{where}: every rank must pass the same data, received "
                         f"{', '.join(map(str, counts))} samples on ranks 0..{len(counts) - 1}")


def shard_range(n, where="distributed"):
    """This rank's contiguous share ``(lo, hi)`` of n samples (``(0, n)`` in a world of one).
    Collective: checks that every rank has the same n."""
    if _active() is None:
        return 0, n
    _same_count(where, n)
    b = _bounds(n, _world["size"])
    return b[_world["rank"]], b[_world["rank"] + 1]


def gather_rows(arrays):
    """Each array of this rank's rows, concatenated in rank order over all ranks (the input
    list unchanged in a world of one)."""
    comm = _active()
    if comm is None:
        return arrays
    out = []
    for a in arrays:
        a = np.ascontiguousarray(a)
        rows = comm.allgather(a.shape[0])
        width = int(np.prod(a.shape[1:], dtype=np.int64))
        full = np.empty((sum(rows),) + a.shape[1:], a.dtype)
        counts = [r * width for r in rows]
        displs = np.concatenate(([0], np.cumsum(counts)[:-1])).tolist()
        comm.Allgatherv(a, [full, (counts, displs)])
        out.append(full)
    return out


def reduce_sums(sums):
    """``sums`` (a float64 vector) summed over ranks; unchanged in a world of one."""
    comm = _active()
    if comm is None:
        return sums
    sums = np.ascontiguousarray(sums, dtype=np.float64)
    comm.Allreduce(_world["MPI"].IN_PLACE, sums, op=_world["MPI"].SUM)
    return sums


def quiet(verbose):
    """``verbose`` on rank 0, 0 on the other ranks (only rank 0 prints)."""
    return verbose if is_main() else 0


# -- data-parallel fit ----------------------------------------------------------------------

def data_parallel(model, n, where="fit"):
    """The per-fit helper of a data-parallel ``fit`` (None in a world of one): broadcasts rank
    0's weights and optimizer state, splits batches, averages gradients, reduces the logs."""
    if _active() is None:
        return None
    return _DataParallel(model, n, where)


class _DataParallel:
    def __init__(self, model, n, where):
        self.comm, self.MPI = _world["comm"], _world["MPI"]
        self.rank, self.size = _world["rank"], _world["size"]
        self.model = model
        _same_count(where, n)
        self.params = model._train_params()
        weights = [t for layer in model._unique_layers for _, t, _ in layer._weights]
        for t in weights:
            if not isinstance(t.data, np.ndarray):
                raise ValueError(f"{where}: data-parallel training runs on the CPU; weight of "
                                 f"shape {tuple(t.shape)} is on '{_dev.device_of(t.data)}' "
                                 f"(move the model with model.to('cpu'))")
        for t in weights:
            buf = t.data if t.data.flags.c_contiguous else np.ascontiguousarray(t.data)
            self.comm.Bcast(buf, root=0)
            if buf is not t.data:
                t.data[...] = buf
        self._broadcast_optimizer(model.optimizer)
        # per-rank statistics to average: the moving statistics of plain BatchNormalization
        # (SyncBatchNormalization's are global already)
        from .layers.normalization import BatchNormalization, SyncBatchNormalization
        self.stats = [t for layer in model._unique_layers
                      if isinstance(layer, BatchNormalization)
                      and not isinstance(layer, SyncBatchNormalization)
                      for _, t, trainable in layer._weights if not trainable]
        self.total = 0
        self._flat = None

    def _broadcast_optimizer(self, opt):
        """Rank 0's optimizer state (moments, step counts), one entry per parameter."""
        if self.rank == 0:
            state = [opt._state[id(p)][1] if id(p) in opt._state and
                     opt._state[id(p)][0] is p else None for p in self.params]
            payload = (opt.iterations, state)
        else:
            payload = None
        iterations, state = self.comm.bcast(payload, root=0)
        if self.rank != 0:
            opt.iterations = iterations
            opt._state = {id(p): (p, s) for p, s in zip(self.params, state) if s is not None}

    def batches(self, n, batch_size, shuffle):
        """This rank's indices of each global batch, in the order one process would use
        (rank 0 draws the permutation from the engine's generator).  A rank with no sample in
        a batch (a last batch smaller than the world) joins the gradient sum with zeros and
        updates its weights here, without yielding."""
        from .init import rng
        short = [m for m in (batch_size, n % batch_size) if 0 < m < self.size]
        if short and any(isinstance(layer, _sync_bn_class())
                         for layer in self.model._unique_layers):
            raise ValueError(
                f"fit: SyncBatchNormalization needs a sample on every rank in every batch, but "
                f"a batch of {short[0]} samples (batch_size={batch_size}, {n} samples) leaves "
                f"ranks idle in a world of {self.size}; choose batch_size and the number of "
                f"samples so that every batch has at least {self.size} samples")
        order = None
        if shuffle:
            order = rng().permutation(n) if self.rank == 0 else np.empty(n, np.int64)
            order = np.ascontiguousarray(order, dtype=np.int64)
            self.comm.Bcast(order, root=0)
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            b = _bounds(m, self.size)
            lo, hi = start + b[self.rank], start + b[self.rank + 1]
            self.total = m
            if hi == lo:
                self._idle_step()
                continue
            yield order[lo:hi] if shuffle else slice(lo, hi)

    def _idle_step(self):
        for p in self.params:
            p.grad = None
        self.average_gradients(0)
        self.model.optimizer.step(self.params)

    def _buffer(self):
        """One contiguous buffer per dtype: every gradient, then one flag per parameter
        (1 where the rank has a gradient), so that one Allreduce carries both."""
        if self._flat is None:
            groups = {}
            for k, p in enumerate(self.params):
                groups.setdefault(p.data.dtype, []).append(k)
            self._flat = []
            for dtype, ks in groups.items():
                sizes = [self.params[k].data.size for k in ks]
                buf = np.empty(sum(sizes) + len(ks), dtype)
                offsets = np.concatenate(([0], np.cumsum(sizes))).tolist()
                views = [buf[offsets[i]:offsets[i + 1]].reshape(self.params[k].data.shape)
                         for i, k in enumerate(ks)]
                self._flat.append((buf, ks, views, buf[offsets[-1]:]))
        return self._flat

    def average_gradients(self, m_local):
        """Replace each parameter's gradient by the gradient of the global batch's mean loss:
        ``sum over ranks of (m_rank / m) * grad_rank``, with one in-place Allreduce per dtype
        (one in all for a float32 model)."""
        w = m_local / self.total
        for buf, ks, views, flags in self._buffer():
            for i, k in enumerate(ks):
                g = self.params[k].grad
                if g is None:
                    views[i][...] = 0
                    flags[i] = 0
                else:
                    np.multiply(g, views[i].dtype.type(w), out=views[i])
                    flags[i] = 1
            self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
            for i, k in enumerate(ks):
                self.params[k].grad = views[i] if flags[i] > 0 else None

    def end_epoch(self, sums, seen):
        """Sum the epoch's loss and metric sums and sample counts over ranks, and average
        BatchNormalization's moving statistics (computed from each rank's batches)."""
        total = reduce_sums(np.append(np.asarray(sums, np.float64), seen))
        if self.stats:
            dtype = np.result_type(*[t.data.dtype for t in self.stats])
            flat = np.concatenate([t.data.ravel() for t in self.stats]).astype(dtype)
            self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)
            flat /= self.size
            start = 0
            for t in self.stats:
                t.data[...] = flat[start:start + t.data.size].reshape(t.data.shape)
                start += t.data.size
        return total[:-1], int(total[-1])


# -- synchronised batch normalisation ---------------------------------------------------------

def sync_batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.99,
                    eps=1e-3):
    """Batch normalisation whose training statistics are those of the global batch: the
    per-channel sums and counts, then the squared deviations, are all-reduced over ranks
    (the backward pass all-reduces its two per-channel sums the same way).  In inference, and
    in a world of one, it is ``engine.functional.batch_norm``'s computation.

    The gradient it returns for ``x`` is that of this rank's mean loss, as the other layers'
    gradients are, so that the data-parallel gradient average (weights m_rank / m) gives the
    gradient of the global batch's mean loss.

    Parameters and result: as :func:`engine.functional.batch_norm`.

    >>> x = np.arange(8.0, dtype=np.float32).reshape(4, 2)
    >>> y = sync_batch_norm(x, None, None, np.zeros(2, np.float32), np.ones(2, np.float32), True)
    >>> np.allclose(y.numpy().mean(axis=0), 0, atol=1e-6)
    True
    """
    from .ops.norm import batch_norm
    op = "sync_batch_norm"
    x = as_tensor(x)
    if not training:
        return batch_norm(x, gamma, beta, running_mean, running_var, False, momentum, eps)
    if _dev.same_device(op, x, gamma, beta) != "cpu":  # MPI reduces host buffers
        raise ValueError(f"{op}: synchronised statistics cross MPI through host memory; "
                         f"received x on '{x.device}' (data-parallel training runs on the CPU)")
    from .ops.norm import check_args
    c, gamma, beta = check_args(op, x, gamma, beta, momentum, eps)
    for name, v in (("running_mean", running_mean), ("running_var", running_var)):
        arr = v.data if isinstance(v, Tensor) else v
        if v is not None and (not isinstance(arr, np.ndarray) or arr.shape != (c,)):
            raise ValueError(f"{op}: {name} must be an ndarray of shape ({c},), received "
                             f"{getattr(arr, 'shape', type(arr).__name__)}")
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    xd = x.data
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, c) + (1,) * (x.ndim - 2)
    count = xd.size // c
    dt = xd.dtype.type
    # pass 1: global count and per-channel sums -> mean
    stats = reduce_sums(np.append(xd.sum(axis=axes, dtype=np.float64), count))
    total = stats[c]
    if total < 1:
        raise ValueError(f"{op}: training needs at least one value per channel over all ranks, "
                         f"received x of shape {x.shape}")
    mean = (stats[:c] / total).astype(xd.dtype)
    # pass 2: global sum of squared deviations -> biased variance (as Keras)
    xhat = xd - mean.reshape(bshape)
    var = (reduce_sums((xhat * xhat).sum(axis=axes, dtype=np.float64)) / total).astype(xd.dtype)
    inv = (dt(1.0) / np.sqrt(var + dt(eps))).reshape(bshape)
    xhat *= inv
    if rm is not None:
        rm *= momentum
        rm += (1 - momentum) * mean
    if rv is not None:
        rv *= momentum
        rv += (1 - momentum) * var
    g_b = None if gamma is None else gamma.data.reshape(bshape)
    y = xhat * g_b if g_b is not None else xhat.copy()
    if beta is not None:
        y += beta.data.reshape(bshape)
    share = count / total  # this rank's share of the global batch: m_rank / m

    def backward(g):
        gbeta = g.sum(axis=axes)
        ggamma = (g * xhat).sum(axis=axes)
        gx = None
        if x.requires_grad:
            # the global sums of dL/dy and dL/dy * xhat, with dL/dy = share * g on this rank
            s = reduce_sums(share * np.concatenate((gbeta, ggamma)).astype(np.float64))
            s1 = (s[:c] / count).astype(xd.dtype).reshape(bshape)
            s2 = (s[c:] / count).astype(xd.dtype).reshape(bshape)
            scale = inv if g_b is None else inv * g_b
            gx = scale * (g - s1 - xhat * s2)
        return (gx,
                ggamma if gamma is not None and gamma.requires_grad else None,
                gbeta if beta is not None and beta.requires_grad else None)
    return record(Tensor._result(y), op, (x, gamma, beta), backward)


def _sync_bn_class():
    from .layers.normalization import SyncBatchNormalization
    return SyncBatchNormalization


def __getattr__(name):
    if name == "SyncBatchNormalization":  # the layer lives with the other normalisations
        from .layers.normalization import SyncBatchNormalization
        return SyncBatchNormalization
    raise AttributeError(f"module 'engine.distributed' has no attribute {name!r}")
