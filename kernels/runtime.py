"""The process-wide settings convlab's speed depends on, owned here and applied when work runs.

A Python process has one set of cores, and every library in it that computes in parallel brings
its own threads: Numba's job runner, the OpenMP team of the Cython kernels (shared with PyTorch
when torch loaded its libgomp first: the dynamic linker gives both the same ``libgomp.so.1``),
numpy's OpenBLAS and SciPy's (two libraries, two pools), pocketfft's workers.  A pool whose idle
threads busy-wait keeps a core from the pool that runs next.  What convlab sets, and why
(MNIST net training on a 2-core AMD EPYC, batch 64, 2 threads, ``import numpy, scipy, torch``
before convlab, images/s; figures in the README's speed section):

threads
    One count for all of convlab's parallel work (``set_num_threads`` / CONVLAB_NUM_THREADS,
    default: the cores this process may use), passed explicitly to every Cython ``prange``
    (``num_threads=team()``): OpenMP's process-wide default is left alone, so a runtime shared
    with PyTorch keeps ``torch.set_num_threads`` and convlab keeps its own.
BLAS on the same team
    OpenBLAS (>= 0.3.27) accepts a callback that runs the jobs of each parallel call.  convlab
    installs one (kernels/_cython/threads.pyx) in numpy's and SciPy's OpenBLAS, so BLAS runs on
    the OpenMP team that runs the Cython kernels, and OpenBLAS's own pool, whose idle threads
    spin for about 0.1 s after every call unless OPENBLAS_THREAD_TIMEOUT was set before the
    library loaded (which a script that imports numpy first cannot do), is never woken.
    Measured: 205-229 img/s without, 361-395 with, against 333-421 with the environment
    variables set before start.  ``CONVLAB_BLAS_THREADS=native`` leaves OpenBLAS's pool alone.
idle OpenMP threads
    When convlab is the first to load the OpenMP runtime, it starts it with
    ``OMP_WAIT_POLICY=PASSIVE`` (unless the environment sets a policy): idle team threads
    sleep at once instead of spinning up to 300,000 pause loops (several ms here) after
    every parallel region, which on a busy machine take the core another pool or process
    needs (under load: 50-115 img/s spinning, 100-420 passive).  When another library loaded
    it first (PyTorch does, at import), its policy stays: ``settings()`` says so.
memory
    glibc keeps freed blocks of up to 32 MiB for reuse instead of unmapping them (see
    :func:`_keep_freed_memory`).  CONVLAB_MALLOC=default leaves glibc's thresholds alone.

Nothing happens on import.  :func:`ensure` applies what is not applied yet and is cheap to call
again (two attribute tests); kernels' entry points, ``backends.load``, engine's
fit / evaluate / predict, the CLI and bench call it.  A setting that cannot be applied is
reported once with a RuntimeWarning that says what it costs and what to do.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
import warnings

__all__ = ["ensure", "settings", "get_num_threads", "set_num_threads", "max_threads"]

_lock = threading.RLock()
_applied = False          # threads, memory and the BLAS loaded so far are done
_scipy_blas_done = False  # SciPy's OpenBLAS (loaded later, with scipy.linalg) is done too
_forked = False           # in a child of fork(): OpenMP's team is not usable there
_state = {"blas": [], "memory": "not applied", "openmp": "not applied", "warned": set()}
_installed = []           # (ctypes function setting the callback) per library, for fork

_threads = None
_blas_limit = None


# -- threads ---------------------------------------------------------------------------------

def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def max_threads():
    """The most threads convlab will start: the cores this process may run on, and no more
    than a quarter of the user's process limit (RLIMIT_NPROC counts threads on Linux).

    More threads than cores only slow CPU-bound kernels down, and too many kill the process:
    libgomp exits with "Thread creation failed" from about 32,400 threads (and from 100 for
    a user limited to 200 processes), the Cython kernels segfault from 65,536.
    """
    limit = _cores()
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
        if soft != resource.RLIM_INFINITY and soft > 0:
            limit = min(limit, max(1, soft // 4))
    except (ImportError, AttributeError, ValueError, OSError):
        pass
    return max(1, limit)


def _clamp(n, source):
    top = max_threads()
    if n > top:
        warnings.warn(f"{source}: {n} threads requested, using {top} (the cores this process "
                      f"may run on, and at most a quarter of its process limit)",
                      RuntimeWarning, stacklevel=3)
        return top
    return n


def _default():
    env = os.environ.get("CONVLAB_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"CONVLAB_NUM_THREADS must be a positive int, received {env!r}") \
                from None
        if n >= 1:
            return _clamp(n, "CONVLAB_NUM_THREADS")
        raise ValueError(f"CONVLAB_NUM_THREADS must be a positive int, received {env!r}")
    return max_threads()


def get_num_threads():
    """The thread count convlab runs its kernels with."""
    global _threads
    if _threads is None:
        _threads = _default()
    return _threads


def set_num_threads(n):
    """Use ``n`` threads in Numba's job runner, the Cython kernels' OpenMP team and BLAS.

    ``n`` above :func:`max_threads` is lowered to it with a RuntimeWarning (more threads than
    cores cannot help, and thousands make libgomp end the process).

    >>> set_num_threads(1); get_num_threads()
    1
    """
    global _threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, received {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, received {n}")
    _threads = _clamp(n, "set_num_threads")
    from . import backends
    for name in backends.names():
        mod = backends._loaded.get(name)
        if mod is not None:
            apply(mod)
    _limit_blas()


def _limit_blas():
    """Limit every BLAS loaded so far (numpy's and SciPy's OpenBLAS are separate libraries)."""
    global _blas_limit
    from threadpoolctl import threadpool_limits
    _blas_limit = threadpool_limits(limits=get_num_threads(), user_api="blas")


def apply(mod):
    """Apply the thread count to a freshly loaded backend module (and to the BLAS it may have
    loaded) when the user chose a thread count."""
    n = get_num_threads()
    if _blas_limit is not None or os.environ.get("CONVLAB_NUM_THREADS"):
        _limit_blas()
    try:
        mod.set_num_threads(n)
    except ValueError:
        # numba refuses more threads than it was started with (NUMBA_NUM_THREADS)
        import numba
        mod.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


# -- memory ----------------------------------------------------------------------------------

def _keep_freed_memory():
    """Let glibc keep freed buffers of up to 32 MiB for reuse instead of unmapping them.

    By default glibc serves blocks above 128 KiB with fresh mmap()s and trims the heap top
    above 128 KiB, so until some large block happens to be freed (which raises both limits),
    every kernel call page-faults its output and workspace anew: conv1 of the MNIST net
    (batch 64, im2col) took 7.6 ms and 2,300 page faults a call, 1.4 ms and none once the
    limits were up.  This sets the limits glibc would reach on its own after a 32 MiB free.
    Skipped off glibc, when MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ are set, or
    with CONVLAB_MALLOC=default.
    """
    import platform
    if os.environ.get("CONVLAB_MALLOC") == "default":
        return "left alone (CONVLAB_MALLOC=default)"
    if platform.libc_ver()[0] != "glibc":
        return "left alone (not glibc)"
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return "left alone (MALLOC_*_THRESHOLD_ set)"
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3       # <malloc.h>
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 64 << 20)
    except (OSError, AttributeError):
        return "left alone (mallopt not found)"
    return "glibc keeps freed blocks up to 32 MiB (mmap threshold 32 MiB, trim 64 MiB)"


# -- BLAS on convlab's team ------------------------------------------------------------------

# OpenBLAS's setter, by the symbol prefixes of the builds numpy and SciPy wheels bundle.
_CALLBACK_SETTERS = ("scipy_openblas_set_threads_callback_function64_",
                     "scipy_openblas_set_threads_callback_function",
                     "openblas_set_threads_callback_function64_",
                     "openblas_set_threads_callback_function")


def _openmp_loaded():
    """Whether an OpenMP runtime (libgomp, libomp, libiomp5) is already in the process."""
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return None
    return any(name in maps for name in ("libgomp", "libomp.", "libiomp5"))


def _idle_policy():
    """Start the OpenMP runtime with passive idle threads if convlab is the one to start it."""
    user = os.environ.get("OMP_WAIT_POLICY")
    if user is not None:
        return f"OMP_WAIT_POLICY={user} (from the environment)"
    loaded = _openmp_loaded()
    if loaded:
        return ("the OpenMP runtime was started by another library before convlab "
                "(e.g. torch, at import): its idle-thread policy (spin, then sleep) stays")
    if loaded is None:
        return "unknown (no /proc/self/maps)"
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "OMP_WAIT_POLICY=PASSIVE (set by convlab before the OpenMP runtime started)"


def _blas_mode():
    mode = os.environ.get("CONVLAB_BLAS_THREADS", "team").strip().lower() or "team"
    if mode not in ("team", "native"):
        raise ValueError(f"CONVLAB_BLAS_THREADS must be 'team' or 'native', received {mode!r}")
    return mode


def _team_callback():
    """Address of the Cython module's callback, or None when the Cython backend is missing."""
    try:
        from ._cython import threads
        return threads.blas_callback_address()
    except (ImportError, AttributeError):
        return None


def _cover_blas(address):
    """Install the callback in every OpenBLAS loaded and not yet covered; note each library."""
    from threadpoolctl import threadpool_info
    seen = {entry["path"] for entry in _state["blas"]}
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        path = info.get("filepath") or ""
        if path in seen:
            continue
        seen.add(path)
        entry = {"path": path, "api": info.get("internal_api"),
                 "version": info.get("version"), "threads": "its own pool"}
        _state["blas"].append(entry)
        if info.get("internal_api") != "openblas":
            entry["threads"] = f"its own pool ({info.get('threading_layer', 'unknown')})"
            continue
        if address is None:
            entry["threads"] = ("its own pool (CONVLAB_BLAS_THREADS=native)"
                                if _blas_mode() == "native" else
                                "its own pool (the Cython backend is not built)")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, name) for name in _CALLBACK_SETTERS
                       if hasattr(lib, name)), None)
        if setter is None:
            entry["threads"] = "its own pool (no threads callback: OpenBLAS < 0.3.27)"
            if os.environ.get("OPENBLAS_THREAD_TIMEOUT") is None:
                _warn_once(path, f"{os.path.basename(path)} (OpenBLAS "
                           f"{info.get('version')}) cannot run its threads on convlab's "
                           "team (it has no threads callback; OpenBLAS >= 0.3.27 has): its "
                           "idle threads busy-wait about 0.1 s after each call and slow the "
                           "kernels that follow (measured up to 2x on 2 cores). Start Python "
                           "with OPENBLAS_THREAD_TIMEOUT=4 to make them sleep at once.")
            continue
        setter.argtypes = [ctypes.c_void_p]
        setter.restype = None
        setter(address)
        _installed.append(setter)
        entry["threads"] = "convlab's OpenMP team (threads callback)"


def _warn_once(key, message):
    if key not in _state["warned"]:
        _state["warned"].add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _after_fork_in_child():
    """A forked child cannot use the parent's OpenMP team: give BLAS its own pool back
    (OpenBLAS restarts it after a fork) and install nothing more in this process."""
    global _forked
    _forked = True
    for setter in _installed:
        try:
            setter(None)
        except Exception:   # noqa: BLE001 - nothing may escape a fork handler
            pass
    _installed.clear()
    for entry in _state["blas"]:
        if entry["threads"].startswith("convlab's"):
            entry["threads"] = "its own pool (forked child)"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def ensure():
    """Apply convlab's process-wide settings (threads, memory, BLAS on convlab's team) that
    are not applied yet.  Cheap once done; safe from any thread.

    >>> ensure(); settings()["threads"] >= 1
    True
    """
    if _applied and (_scipy_blas_done or "scipy.linalg" not in sys.modules):
        return
    _apply()


def _apply():
    global _applied, _scipy_blas_done
    with _lock:
        if not _applied:
            _state["memory"] = _keep_freed_memory()
            _state["openmp"] = _idle_policy()
            get_num_threads()
        if not _forked:
            address = _team_callback() if _blas_mode() == "team" else None
            _cover_blas(address)     # (loading the Cython backend may import scipy.linalg)
        _applied = True
        _scipy_blas_done = "scipy.linalg" in sys.modules


def settings():
    """What :func:`ensure` applied: {"threads", "memory", "openmp", "blas": [{"path", "api",
    "version", "threads"}], "blas_calls_on_team"} (for ``convlab info`` and tests)."""
    ensure()
    calls = None
    try:
        from ._cython import threads
        calls = threads.blas_callback_counts()
    except (ImportError, AttributeError):
        pass
    return {"threads": get_num_threads(), "memory": _state["memory"],
            "openmp": _state["openmp"],
            "blas": [dict(e) for e in _state["blas"]], "blas_calls_on_team": calls}
