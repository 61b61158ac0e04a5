"""How the CUDA tests run: natively on a GPU, else under the CUDA simulator in a subprocess.

The simulator (NUMBA_ENABLE_CUDASIM=1) must be chosen before numba.cuda is first imported and
is process-wide, so it is never switched on inside the shared pytest process: without a GPU,
a test file's in-process tests skip and one test reruns the file in a subprocess with the
simulator on.  Shared by tests/test_cuda.py and tests/test_engine_cuda.py.
"""
import ctypes
import os
import subprocess
import sys

import pytest


def gpu_present():
    """A CUDA driver with at least one device, asked without importing numba.cuda."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 \
            and count.value > 0
    except (OSError, AttributeError):
        return False


def mode():
    """"native", "simulator", or "subprocess" (no GPU: rerun the file under the simulator)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        import kernels.cuda
        return "simulator" if kernels.cuda.simulated() else "subprocess"
    return "native" if gpu_present() else "subprocess"


MODE = mode()
in_process = pytest.mark.skipif(MODE == "subprocess", reason=(
    "no GPU in this process: test_suite_in_simulator_subprocess runs these tests under "
    "NUMBA_ENABLE_CUDASIM=1"))


def run_file_under_simulator(path, timeout):
    """Run the test file at ``path`` in a subprocess under the simulator; assert it passed."""
    if MODE != "subprocess":
        pytest.skip(f"the tests run in this process ({MODE})")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider",
                           os.path.abspath(path)], cwd=root, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def small_tunables(monkeypatch, max_blocks):
    """Under the simulator: few small blocks and tiles keep each launch to a few dozen Python
    threads (the kernels are written for any sizes), and a short GIL switch interval keeps
    the simulator's busy-polling block manager from starving the threads at syncthreads().
    A generator for an autouse fixture; does nothing natively."""
    if MODE != "simulator":
        yield
        return
    from kernels.cuda import config as cfg
    monkeypatch.setattr(cfg, "THREADS", 32)
    monkeypatch.setattr(cfg, "MAX_BLOCKS", max_blocks)
    monkeypatch.setattr(cfg, "REDUCE_THREADS", 8)
    monkeypatch.setattr(cfg, "GEMM_TILE", (16, 16, 8, 4, 4))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(interval)
