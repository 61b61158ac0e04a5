"""The catalogue's ops, layers' math and optimizers on the cuda device against the CPU: the
same code runs on both through engine.device.array_module.  Natively on a GPU; without one,
under the CUDA simulator in a subprocess (tests/cudasim.py), on tiny shapes."""
import numpy as np
import pytest

from cudasim import MODE, in_process, run_file_under_simulator, small_tunables

import engine
from engine import losses, optim
from engine.ops import extra as E

rng = np.random.default_rng(17)


@pytest.fixture(autouse=True)
def _small_tunables(monkeypatch):
    yield from small_tunables(monkeypatch, max_blocks=4)


def test_suite_in_simulator_subprocess():
    run_file_under_simulator(__file__, timeout=900)


def rand(*shape):
    return rng.standard_normal(shape)


def run(fn, arrays, device):
    ts = [engine.Tensor(a, requires_grad=True, device=device) for a in arrays]
    out = fn(*ts)
    assert out.device == device
    seed = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(seed if out.size != 1 else None)
    return [out.numpy()] + [engine.device.host(t.grad) for t in ts]


OPS = {
    "elu": (lambda x: E.elu(x, 0.7), lambda: (rand(2, 5),)),
    "selu": (E.selu, lambda: (rand(2, 5),)),
    "softplus": (E.softplus, lambda: (rand(2, 5),)),
    "softsign": (E.softsign, lambda: (rand(2, 5),)),
    "gelu": (E.gelu, lambda: (rand(2, 5),)),
    "gelu-tanh": (lambda x: E.gelu(x, approximate=True), lambda: (rand(2, 5),)),
    "swish": (E.swish, lambda: (rand(2, 5),)),
    "hard_sigmoid": (E.hard_sigmoid, lambda: (rand(2, 5) * 2,)),
    "relu_ext": (lambda x: E.relu_ext(x, 1.0, 0.2, 0.1), lambda: (rand(2, 5),)),
    "prelu": (E.prelu, lambda: (rand(2, 3, 4), rand(3, 1))),
    "maximum": (E.maximum, lambda: (rand(2, 3), rand(3))),
    "log_cosh": (E.log_cosh, lambda: (rand(2, 3),)),
    "clip": (lambda x: E.clip(x, -0.5, 0.5), lambda: (rand(2, 3),)),
    "upsample": (lambda x: E.upsample(x, (2, 3)), lambda: (rand(1, 2, 2, 2),)),
    "repeat_vector": (lambda x: E.repeat_vector(x, 3), lambda: (rand(2, 4),)),
    "conv_transpose": (lambda x, w, b: E.conv_transpose(x, w, b, stride=2, padding="same"),
                       lambda: (rand(1, 2, 3, 3), rand(2, 3, 3, 3), rand(3))),
    "huber": (lambda p: losses.Huber(0.5)(p, np.full((2, 3), 0.1)), lambda: (rand(2, 3),)),
    "kld": (lambda p: losses.KLDivergence()(engine.functional.softmax(p),
                                            np.full((2, 3), 1 / 3)), lambda: (rand(2, 3),)),
    "cosine": (lambda p: losses.CosineSimilarity()(p, np.ones((2, 3))), lambda: (rand(2, 3),)),
}


@in_process
@pytest.mark.parametrize("name", list(OPS))
def test_op_matches_cpu(name):
    fn, make = OPS[name]
    arrays = make()
    for c, g in zip(run(fn, arrays, "cpu"), run(fn, arrays, "cuda")):
        np.testing.assert_allclose(g, c, rtol=1e-9, atol=1e-9 * max(np.abs(c).max(), 1))


@in_process
@pytest.mark.parametrize("name,kw", [("Adam", {}), ("SGD", dict(momentum=0.9)),
                                     ("Nadam", {}), ("Adamax", {}), ("Adadelta", {}),
                                     ("Lion", {}), ("Lamb", {}),
                                     ("AdamW", dict(global_clipnorm=0.5))])
def test_optimizer_matches_cpu(name, kw):
    w0, grads = rand(3, 4), [rand(3, 4) for _ in range(3)]
    out = {}
    for device in ("cpu", "cuda"):
        w = engine.Tensor(w0.copy(), requires_grad=True, device=device)
        opt = getattr(optim, name)(learning_rate=0.1, **kw)
        for g in grads:
            w.grad = engine.device.move(g.copy(), device)
            opt.step([w])
        out[device] = w.numpy()
    np.testing.assert_allclose(out["cuda"], out["cpu"], rtol=1e-9, atol=1e-12)
