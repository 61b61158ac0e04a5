"""The tape: grad mode, the backward walk and gradcheck.

Every differentiable op builds its output with :func:`record`, which (when grad mode is on and
some input requires a gradient) stores the inputs and a backward closure on the output tensor.
The closure maps the output gradient to one gradient per input (None for inputs that need no
gradient).  :func:`backward` walks the recorded graph in reverse topological order, without
recursion, so arbitrarily deep graphs work.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

__all__ = ["no_grad", "enable_grad", "is_grad_enabled", "record", "backward", "unbroadcast",
           "gradcheck", "GradcheckError", "set_num_threads"]

_state = threading.local()


def is_grad_enabled():
    """True unless inside a :func:`no_grad` block (per thread)."""
    return getattr(_state, "enabled", True)


@contextmanager
def _grad_mode(enabled):
    previous = is_grad_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous


def no_grad():
    """Context manager that turns off recording (inference, optimizer updates).

    Examples
    --------
    >>> from engine.tensor import Tensor
    >>> w = Tensor([1.0, 2.0], requires_grad=True)
    >>> with no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """
    return _grad_mode(False)


def enable_grad():
    """Context manager that turns recording back on inside a :func:`no_grad` block."""
    return _grad_mode(True)


def record(out, op, inputs, backward_fn):
    """Attach ``(inputs, backward_fn)`` to the new tensor ``out`` if anything needs a gradient.

    ``backward_fn(gy)`` returns a tuple with one gradient (or None) per input; it is only
    called when ``out`` requires a gradient.  Returns ``out``.
    """
    if is_grad_enabled():
        for t in inputs:
            if t is not None and t.requires_grad:
                out.requires_grad = True
                out._parents = tuple(inputs)
                out._backward = backward_fn
                out._op = op
                break
    return out


def unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting added or stretched to reach ``g.shape`` from
    ``shape``; the result has exactly ``shape``."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead > 0:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _topological(root):
    """Tensors reachable from ``root`` through recorded ops, parents before children."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in node._parents:
            if p is not None and p.requires_grad and id(p) not in seen:
                stack.append((p, False))
    return order


def _sum(a, b):
    """``a + b`` for two gradients (arrays of one device)."""
    return a + b


def _own_copy(g, dtype):
    from .device import array_module
    return array_module(g).array(g, dtype=dtype)


def backward(root, grad):
    """Propagate ``grad`` (an ndarray, or a device array for a CUDA tensor, of
    ``root.shape``) from ``root`` to every leaf that requires a gradient; leaf ``.grad``
    accumulates across calls, on the leaf's device."""
    order = _topological(root)
    grads = {id(root): grad}
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if node._backward is None:
            if node.grad is None:
                # Own copy: the incoming array may be shared with other gradients.
                node.grad = _own_copy(g, node.data.dtype)
            else:
                node.grad = _sum(node.grad, g)
            continue
        in_grads = node._backward(g)
        for p, pg in zip(node._parents, in_grads):
            if pg is None or p is None or not p.requires_grad:
                continue
            if pg.shape != p.data.shape:
                raise RuntimeError(f"{node._op}: backward produced a gradient of shape "
                                   f"{pg.shape} for an input of shape {p.data.shape}")
            if pg.dtype != p.data.dtype:
                pg = pg.astype(p.data.dtype)
            key = id(p)
            if key in grads:
                grads[key] = _sum(grads[key], pg)
            else:
                grads[key] = pg


class GradcheckError(Exception):
    """Raised by :func:`gradcheck` when an analytical gradient disagrees with the numerical
    one."""


def _as_outputs(result, op="gradcheck"):
    from .tensor import Tensor
    outs = result if isinstance(result, (tuple, list)) else (result,)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"{op}: fn must return a Tensor or a tuple of Tensors, output {i} "
                            f"is {type(o).__name__}")
    return outs


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Compare the tape's gradients of ``fn`` with float64 central differences.

    Parameters
    ----------
    fn : callable
        Takes the Tensors of ``inputs`` (positionally) and returns a Tensor or a tuple of
        Tensors.  It must be deterministic (fix any random generator inside it).
    inputs : sequence of Tensor
        Inputs with ``requires_grad=True`` are checked; they are copied to float64, so the
        caller's tensors and their ``.grad`` are left untouched.
    eps, atol, rtol : float
        Finite-difference step and tolerance: an entry passes when
        ``|numerical - analytical| <= atol + rtol * |numerical|``.

    Returns
    -------
    True

    Raises
    ------
    GradcheckError
        Naming the first failing entry: "output i w.r.t. input j at index (..): numerical X,
        analytical Y".

    Examples
    --------
    >>> import numpy as np
    >>> from engine.tensor import Tensor
    >>> x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    >>> gradcheck(lambda a: (a * a).sum(), [x])
    True
    """
    from .tensor import Tensor
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    inputs = list(inputs)
    for j, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: inputs must be Tensors, input {j} is "
                            f"{type(t).__name__}")
    xs = []
    for t in inputs:
        data = t.data.astype(np.float64) if t.data.dtype.kind == "f" else t.data.copy()
        xs.append(Tensor(data, requires_grad=t.requires_grad))
    checked = [j for j, t in enumerate(xs) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")

    with enable_grad():
        outs = _as_outputs(fn(*xs))
    # Analytical Jacobian, one backward per output element.
    analytical = []  # analytical[i][j]: (out_size, in_size)
    for i, out in enumerate(outs):
        rows = {j: np.zeros((out.data.size, xs[j].data.size)) for j in checked}
        if out.requires_grad:
            for k in range(out.data.size):
                for j in checked:
                    xs[j].grad = None
                seed = np.zeros(out.data.shape, dtype=out.data.dtype)
                seed.flat[k] = 1.0
                out.backward(seed)
                for j in checked:
                    if xs[j].grad is not None:
                        rows[j][k] = xs[j].grad.ravel()
        analytical.append(rows)
    # Numerical Jacobian, one pair of forward passes per input element.
    numerical = [{j: np.zeros_like(analytical[i][j]) for j in checked}
                 for i in range(len(outs))]
    with no_grad():
        for j in checked:
            flat = xs[j].data.reshape(-1)
            for m in range(flat.size):
                orig = flat[m]
                flat[m] = orig + eps
                _bump(xs[j])
                plus = [o.data.astype(np.float64).ravel() for o in _as_outputs(fn(*xs))]
                flat[m] = orig - eps
                _bump(xs[j])
                minus = [o.data.astype(np.float64).ravel() for o in _as_outputs(fn(*xs))]
                flat[m] = orig
                _bump(xs[j])
                for i in range(len(outs)):
                    numerical[i][j][:, m] = (plus[i] - minus[i]) / (2 * eps)
    for i in range(len(outs)):
        for j in checked:
            num, ana = numerical[i][j], analytical[i][j]
            bad = ~(np.abs(num - ana) <= atol + rtol * np.abs(num))
            if bad.any():
                k, m = np.argwhere(bad)[0]
                idx = tuple(int(v) for v in np.unravel_index(m, xs[j].data.shape))
                out_idx = tuple(int(v) for v in np.unravel_index(k, outs[i].data.shape))
                raise GradcheckError(
                    f"output {i} w.r.t. input {j} at index {idx}: numerical {num[k, m]:.8g}, "
                    f"analytical {ana[k, m]:.8g} (output element {out_idx}; "
                    f"{int(bad.sum())} of {bad.size} entries differ, atol={atol}, "
                    f"rtol={rtol})")
    return True


def _bump(t):
    """A new version of ``t`` after an in-place write (drops transforms prepared from it)."""
    t._version = getattr(t, "_version", 0) + 1


def set_num_threads(n):
    """Set the thread count of every compute library (numba, OpenMP, BLAS) through
    ``kernels.set_num_threads``.

    Examples
    --------
    >>> import kernels
    >>> before = kernels.get_num_threads()
    >>> set_num_threads(1)
    >>> kernels.get_num_threads()
    1
    >>> set_num_threads(before)
    """
    import kernels
    kernels.set_num_threads(n)
