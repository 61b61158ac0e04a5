"""Optimizers: SGD (momentum, Nesterov), Adagrad, RMSprop, Adam (bias-corrected, AMSGrad),
AdamW, Adamax, Nadam, Adadelta, Lion, Lamb.  Every optimizer takes ``clipnorm``, ``clipvalue`` or
``global_clipnorm`` (Keras's clipping, before the update) and a learning rate that may be a
schedule of :mod:`engine.schedules` (called with the step count before each update).

An optimizer updates parameters in place: each parameter is a Tensor (anything with ``.data``
and ``.grad`` ndarrays); ``step(params)`` applies one update from the current gradients and
skips parameters whose ``.grad`` is None.  State (velocities, moments) lives in the optimizer,
one entry per parameter.  The update rules are those of Keras; ``weight_decay`` is decoupled
as in Keras 3 (and AdamW): ``w <- w - lr * weight_decay * w`` before the gradient step.
Updates run in place with numpy ``out=`` arguments and one reused scratch array, so a step
allocates nothing (Adam over the 1.6M weights of the MNIST CNN: 7 -> 3 ms).

    >>> import numpy as np, engine
    >>> w = engine.Tensor(np.ones(3, np.float32), requires_grad=True)
    >>> w.grad = np.full(3, 0.5, np.float32)
    >>> engine.optimizers.SGD(learning_rate=0.1).step([w]); w.data
    array([0.95, 0.95, 0.95], dtype=float32)

Optimizers are also accepted by name in ``model.compile``: see :func:`get`.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import device as _dev
from .device import array_module

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adamax", "Nadam",
           "Adadelta", "Lion", "Lamb", "get", "OPTIMIZERS"]


def _check_number(owner, name, value, lo=0.0, hi=None, lo_open=False, hi_open=True):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a number, received {value!r}")
    value = float(value)
    bad_lo = value <= lo if lo_open else value < lo
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi or not np.isfinite(value):
        rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}" \
              f"{')' if hi_open or hi is None else ']'}"
        raise ValueError(f"{owner}: {name} must be in {rng}, received {value!r}")
    return value


class Optimizer:
    """Base class: learning rate, decoupled weight decay, per-parameter state.

    Subclasses implement ``_update(w, g, state)``: the update rule, written once against the
    array namespace of ``w`` (numpy, or :mod:`kernels.cuda.xp` for a weight on cuda), in place
    on ``w``; and ``_init_state(w)``, which makes the state on ``w``'s device.  State follows
    a parameter moved to another device (``model.to``).
    """

    def __init__(self, learning_rate, weight_decay=0.0, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        name = type(self).__name__
        from .schedules import LearningRateSchedule, get as get_schedule
        if isinstance(learning_rate, dict):     # a schedule's get_config, from a saved file
            learning_rate = get_schedule(learning_rate)
        # a schedule is called with the step count before each update (Keras's iterations)
        self.schedule = learning_rate if isinstance(learning_rate, LearningRateSchedule) \
            else None
        self.learning_rate = float(self.schedule(0)) if self.schedule is not None else \
            _check_number(name, "learning_rate", learning_rate, lo_open=True)
        self.weight_decay = _check_number(name, "weight_decay", weight_decay or 0.0)
        clips = {k: v for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                   ("global_clipnorm", global_clipnorm)) if v is not None}
        if len(clips) > 1:
            raise ValueError(f"{name}: at most one of clipnorm, clipvalue and global_clipnorm "
                             f"may be set, received {clips}")
        self.clipnorm, self.clipvalue, self.global_clipnorm = (
            None if v is None else _check_number(name, k, v, lo_open=True)
            for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                         ("global_clipnorm", global_clipnorm)))
        self.iterations = 0
        self._state = {}
        self._buffers = {}

    def _scratch(self, w):
        """A reused array of ``w``'s shape and dtype (its contents are garbage)."""
        key = (_dev.device_of(w), w.dtype)
        buf = self._buffers.get(key)
        if buf is None or buf.size < w.size:
            buf = self._buffers[key] = array_module(w).empty(w.size, w.dtype)
        return buf[:w.size].reshape(w.shape)

    def step(self, params):
        """Apply one update to every parameter whose ``.grad`` is not None."""
        if self.schedule is not None:
            self.learning_rate = float(self.schedule(self.iterations))
        self.iterations += 1
        lr, wd = self.learning_rate, self.weight_decay
        clipped = _clip(self, [p for p in params if p.grad is not None])
        self._begin_step()
        for p in params:
            g = p.grad
            if g is None:
                continue
            g = clipped.get(id(p), g)
            p._version = getattr(p, "_version", 0) + 1   # drops the weight's prepared transforms
            entry = self._state.get(id(p))
            if entry is None or entry[0] is not p:
                entry = self._state[id(p)] = (p, self._init_state(p.data))
            w = p.data
            _follow(entry[1], w)
            if _dev.device_of(g) != _dev.device_of(w):
                raise ValueError(f"{type(self).__name__}.step: the gradient is on "
                                 f"'{_dev.device_of(g)}' but the parameter on "
                                 f"'{_dev.device_of(w)}'")
            if wd:
                w -= array_module(w).multiply(w, w.dtype.type(lr * wd), out=self._scratch(w))
            self._update(w, g, entry[1])

    def reset(self):
        """Forget all state (moments, step count)."""
        self.iterations = 0
        self._state.clear()
        self._buffers.clear()

    def get_config(self):
        cfg = {"learning_rate": self.learning_rate if self.schedule is None else
               {"class_name": type(self.schedule).__name__,
                "config": self.schedule.get_config()},
               "weight_decay": self.weight_decay}
        for k in ("clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, k, None) is not None:
                cfg[k] = getattr(self, k)
        return cfg

    def _begin_step(self):
        """Once per step, before the parameter updates (shared state such as Nadam's)."""

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def _init_state(self, w):
        return {}

    def _update(self, w, g, state):
        raise NotImplementedError


def _clip(opt, params):
    """{id(p): clipped gradient} as Keras clips, before weight decay and the update:
    clipnorm per tensor g * c / max(|g|, c); global_clipnorm scales every gradient by
    c / max(global norm, c); clipvalue clips each entry to [-c, c]."""
    if opt.clipnorm is None and opt.clipvalue is None and opt.global_clipnorm is None:
        return {}
    out = {}
    if opt.clipvalue is not None:
        for p in params:
            out[id(p)] = array_module(p.grad).clip(p.grad, -opt.clipvalue, opt.clipvalue)
        return out
    norms = {id(p): float(np.sqrt(float((p.grad * p.grad).sum()))) for p in params}
    if opt.clipnorm is not None:
        for p in params:
            c = opt.clipnorm
            out[id(p)] = p.grad * p.grad.dtype.type(c / max(norms[id(p)], c))
        return out
    c = opt.global_clipnorm
    total = float(np.sqrt(sum(n * n for n in norms.values())))
    scale = c / max(total, c)
    for p in params:
        out[id(p)] = p.grad * p.grad.dtype.type(scale)
    return out


def _follow(state, w):
    """Move the arrays of ``state`` to the device of ``w`` (after ``model.to``)."""
    device = _dev.device_of(w)
    for k, v in state.items():
        if not isinstance(v, (int, float)) and _dev.device_of(v) != device:
            state[k] = _dev.move(v, device)


def _zeros_like(w):
    return array_module(w).zeros_like(w)


def _full_like(w, value):
    return array_module(w).full_like(w, value)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Without momentum ``w -= lr * g``.  With momentum ``v = momentum * v - lr * g`` then
    ``w += v``, or with ``nesterov=True`` ``w += momentum * v - lr * g`` (Keras rules).

    >>> SGD(learning_rate=0.5, momentum=0.9, nesterov=True)
    SGD(learning_rate=0.5, weight_decay=0.0, momentum=0.9, nesterov=True)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0,
                 **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.momentum = _check_number("SGD", "momentum", momentum, hi=1.0)
        if not isinstance(nesterov, bool):
            raise TypeError(f"SGD: nesterov must be a bool, received {nesterov!r}")
        self.nesterov = nesterov

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _init_state(self, w):
        return {"v": _zeros_like(w)} if self.momentum else {}

    def _update(self, w, g, state):
        xp, t = array_module(w), w.dtype.type
        step = xp.multiply(g, t(self.learning_rate), out=self._scratch(w))
        if not self.momentum:
            w -= step
            return
        v, mu = state["v"], t(self.momentum)
        v *= mu
        v -= step
        if self.nesterov:
            w -= step
            w += xp.multiply(v, mu, out=step)
        else:
            w += v


class Adagrad(Optimizer):
    """Adagrad: ``a += g**2``; ``w -= lr * g / sqrt(a + epsilon)`` (Keras: a starts at
    ``initial_accumulator_value``).

    >>> Adagrad().learning_rate
    0.001
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=0.0,
                 **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.initial_accumulator_value = _check_number("Adagrad", "initial_accumulator_value",
                                                       initial_accumulator_value)
        self.epsilon = _check_number("Adagrad", "epsilon", epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value":
                self.initial_accumulator_value, "epsilon": self.epsilon}

    def _init_state(self, w):
        return {"a": _full_like(w, self.initial_accumulator_value)}

    def _update(self, w, g, state):
        xp, a, t = array_module(w), state["a"], w.dtype.type
        tmp = xp.multiply(g, g, out=self._scratch(w))
        a += tmp
        # lr * g / sqrt(a + epsilon)
        xp.add(a, t(self.epsilon), out=tmp)
        xp.sqrt(tmp, out=tmp)
        xp.divide(g, tmp, out=tmp)
        tmp *= t(self.learning_rate)
        w -= tmp


class RMSprop(Optimizer):
    """RMSprop: ``v = rho * v + (1 - rho) * g**2``; ``w -= lr * g / sqrt(v + epsilon)``
    (Keras 3's rule: epsilon inside the square root).

    >>> RMSprop(rho=0.9).rho
    0.9
    """

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, weight_decay=0.0,
                 **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.rho = _check_number("RMSprop", "rho", rho, hi=1.0)
        self.epsilon = _check_number("RMSprop", "epsilon", epsilon)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}

    def _init_state(self, w):
        return {"v": _zeros_like(w)}

    def _update(self, w, g, state):
        xp, v, t = array_module(w), state["v"], w.dtype.type
        tmp = xp.multiply(g, g, out=self._scratch(w))
        tmp *= t(1.0 - self.rho)
        v *= t(self.rho)
        v += tmp
        # lr * g / sqrt(v + epsilon)
        xp.add(v, t(self.epsilon), out=tmp)
        xp.sqrt(tmp, out=tmp)
        xp.divide(g, tmp, out=tmp)
        tmp *= t(self.learning_rate)
        w -= tmp


class Adam(Optimizer):
    """Adam with bias correction (and optionally AMSGrad), Keras form::

        m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g**2
        v_hat = max(v_hat, v) (amsgrad) or v
        w -= lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v_hat) + epsilon)

    >>> Adam(amsgrad=True).amsgrad
    True
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=0.0,
                 **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.beta_1 = _check_number("Adam", "beta_1", beta_1, hi=1.0)
        self.beta_2 = _check_number("Adam", "beta_2", beta_2, hi=1.0)
        self.epsilon = _check_number("Adam", "epsilon", epsilon)
        if not isinstance(amsgrad, bool):
            raise TypeError(f"Adam: amsgrad must be a bool, received {amsgrad!r}")
        self.amsgrad = amsgrad

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}

    def _init_state(self, w):
        state = {"m": _zeros_like(w), "v": _zeros_like(w), "t": 0}
        if self.amsgrad:
            state["v_hat"] = _zeros_like(w)
        return state

    def _update(self, w, g, state):
        xp, t = array_module(w), w.dtype.type
        state["t"] += 1
        step = state["t"]
        m, v = state["m"], state["v"]
        tmp = self._scratch(w)
        m *= t(self.beta_1)
        m += xp.multiply(g, t(1.0 - self.beta_1), out=tmp)
        xp.multiply(g, g, out=tmp)
        tmp *= t(1.0 - self.beta_2)
        v *= t(self.beta_2)
        v += tmp
        if self.amsgrad:
            xp.maximum(state["v_hat"], v, out=state["v_hat"])
            v = state["v_hat"]
        lr_t = self.learning_rate * np.sqrt(1.0 - self.beta_2 ** step) / (
            1.0 - self.beta_1 ** step)
        # lr_t * m / (sqrt(v) + epsilon)
        xp.sqrt(v, out=tmp)
        tmp += t(self.epsilon)
        xp.divide(m, tmp, out=tmp)
        tmp *= t(lr_t)
        w -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's default weight_decay=0.004):
    ``w -= lr * weight_decay * w`` before the Adam step.

    >>> AdamW().weight_decay
    0.004
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **clipping):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         **clipping)


class Adamax(Optimizer):
    """Adamax (infinity-norm Adam), Keras form::

        m = b1 * m + (1 - b1) * g;   u = max(b2 * u, |g|)
        w -= lr / (1 - b1**t) * m / (u + epsilon)

    >>> Adamax().beta_2
    0.999
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=0.0, **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.beta_1 = _check_number("Adamax", "beta_1", beta_1, hi=1.0)
        self.beta_2 = _check_number("Adamax", "beta_2", beta_2, hi=1.0)
        self.epsilon = _check_number("Adamax", "epsilon", epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}

    def _init_state(self, w):
        return {"m": _zeros_like(w), "u": _zeros_like(w), "t": 0}

    def _update(self, w, g, state):
        xp, t = array_module(w), w.dtype.type
        state["t"] += 1
        m, u, tmp = state["m"], state["u"], self._scratch(w)
        m *= t(self.beta_1)
        m += xp.multiply(g, t(1.0 - self.beta_1), out=tmp)
        u *= t(self.beta_2)
        xp.maximum(u, xp.abs(g, out=tmp), out=u)
        xp.add(u, t(self.epsilon), out=tmp)
        xp.divide(m, tmp, out=tmp)
        tmp *= t(self.learning_rate / (1.0 - self.beta_1 ** state["t"]))
        w -= tmp


class Nadam(Optimizer):
    """Nesterov Adam with Dozat's momentum schedule, Keras 3 form (step t from 1)::

        mu_t = b1 * (1 - 0.5 * 0.96**t);   prod_t = mu_1 * ... * mu_t
        m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g**2
        m_hat = mu_{t+1} * m / (1 - prod_t * mu_{t+1}) + (1 - mu_t) * g / (1 - prod_t)
        w -= lr * m_hat / (sqrt(v / (1 - b2**t)) + epsilon)

    >>> Nadam().beta_1
    0.9
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=0.0, **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.beta_1 = _check_number("Nadam", "beta_1", beta_1, hi=1.0)
        self.beta_2 = _check_number("Nadam", "beta_2", beta_2, hi=1.0)
        self.epsilon = _check_number("Nadam", "epsilon", epsilon)
        self._u_product = 1.0

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}

    def _mu(self, step):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** step)

    def _begin_step(self):
        self._u_product *= self._mu(self.iterations)   # shared by every parameter

    def reset(self):
        super().reset()
        self._u_product = 1.0

    def _init_state(self, w):
        return {"m": _zeros_like(w), "v": _zeros_like(w)}

    def _update(self, w, g, state):
        xp, t = array_module(w), w.dtype.type
        step = self.iterations
        u_t, u_t1 = self._mu(step), self._mu(step + 1)
        prod, prod1 = self._u_product, self._u_product * u_t1
        m, v, tmp = state["m"], state["v"], self._scratch(w)
        m *= t(self.beta_1)
        m += xp.multiply(g, t(1.0 - self.beta_1), out=tmp)
        xp.multiply(g, g, out=tmp)
        tmp *= t(1.0 - self.beta_2)
        v *= t(self.beta_2)
        v += tmp
        # denominator sqrt(v / (1 - b2**t)) + eps, then m_hat / it, in tmp
        xp.multiply(v, t(1.0 / (1.0 - self.beta_2 ** step)), out=tmp)
        xp.sqrt(tmp, out=tmp)
        tmp += t(self.epsilon)
        num = m * t(u_t1 / (1.0 - prod1))
        num += g * t((1.0 - u_t) / (1.0 - prod))
        xp.divide(num, tmp, out=tmp)
        tmp *= t(self.learning_rate)
        w -= tmp


class Adadelta(Optimizer):
    """Adadelta, Keras form (learning rate 0.001 by default, as Keras)::

        a = rho * a + (1 - rho) * g**2
        d = -sqrt(b + eps) / sqrt(a + eps) * g;   b = rho * b + (1 - rho) * d**2
        w += lr * d

    >>> Adadelta().rho
    0.95
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=0.0,
                 **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.rho = _check_number("Adadelta", "rho", rho, hi=1.0)
        self.epsilon = _check_number("Adadelta", "epsilon", epsilon)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}

    def _init_state(self, w):
        return {"a": _zeros_like(w), "b": _zeros_like(w)}

    def _update(self, w, g, state):
        xp, t = array_module(w), w.dtype.type
        a, b, tmp = state["a"], state["b"], self._scratch(w)
        rho, eps = t(self.rho), t(self.epsilon)
        a *= rho
        a += xp.multiply(g, g, out=tmp) * t(1.0 - self.rho)
        # d = -sqrt(b + eps) * g / sqrt(a + eps), in tmp
        xp.sqrt(xp.add(b, eps, out=tmp), out=tmp)
        tmp *= g
        tmp /= xp.sqrt(a + eps)
        xp.negative(tmp, out=tmp)
        b *= rho
        b += tmp * tmp * t(1.0 - self.rho)
        tmp *= t(self.learning_rate)
        w += tmp


class Lion(Optimizer):
    """Lion (evolved sign momentum), Keras form::

        w -= lr * sign(b1 * m + (1 - b1) * g);   m = b2 * m + (1 - b2) * g

    >>> Lion().learning_rate
    0.001
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=0.0,
                 **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.beta_1 = _check_number("Lion", "beta_1", beta_1, hi=1.0, hi_open=False)
        self.beta_2 = _check_number("Lion", "beta_2", beta_2, hi=1.0, hi_open=False)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}

    def _init_state(self, w):
        return {"m": _zeros_like(w)}

    def _update(self, w, g, state):
        xp, t = array_module(w), w.dtype.type
        m, tmp = state["m"], self._scratch(w)
        xp.multiply(m, t(self.beta_1), out=tmp)
        tmp += g * t(1.0 - self.beta_1)
        xp.sign(tmp, out=tmp)
        tmp *= t(self.learning_rate)
        w -= tmp
        m *= t(self.beta_2)
        m += g * t(1.0 - self.beta_2)


class Lamb(Optimizer):
    """LAMB (layer-wise adaptive Adam), Keras form: the bias-corrected Adam direction
    ``u = m_hat / (sqrt(v_hat) + epsilon)`` scaled per tensor by the trust ratio
    ``|w| / |u|`` (1 when either norm is 0): ``w -= ratio * lr * u``.

    >>> Lamb().beta_2
    0.999
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=0.0, **clipping):
        super().__init__(learning_rate, weight_decay, **clipping)
        self.beta_1 = _check_number("Lamb", "beta_1", beta_1, hi=1.0)
        self.beta_2 = _check_number("Lamb", "beta_2", beta_2, hi=1.0)
        self.epsilon = _check_number("Lamb", "epsilon", epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}

    def _init_state(self, w):
        return {"m": _zeros_like(w), "v": _zeros_like(w), "t": 0}

    def _update(self, w, g, state):
        xp, t = array_module(w), w.dtype.type
        state["t"] += 1
        step = state["t"]
        m, v, tmp = state["m"], state["v"], self._scratch(w)
        m *= t(self.beta_1)
        m += xp.multiply(g, t(1.0 - self.beta_1), out=tmp)
        xp.multiply(g, g, out=tmp)
        tmp *= t(1.0 - self.beta_2)
        v *= t(self.beta_2)
        v += tmp
        # u = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), in tmp
        xp.multiply(v, t(1.0 / (1.0 - self.beta_2 ** step)), out=tmp)
        xp.sqrt(tmp, out=tmp)
        tmp += t(self.epsilon)
        xp.divide(m, tmp, out=tmp)
        tmp *= t(1.0 / (1.0 - self.beta_1 ** step))
        w_norm = float(xp.sqrt((w * w).sum()))
        u_norm = float(xp.sqrt((tmp * tmp).sum()))
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        tmp *= t(ratio * self.learning_rate)
        w -= tmp


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam,
              "adamw": AdamW, "adamax": Adamax, "nadam": Nadam, "adadelta": Adadelta,
              "lion": Lion, "lamb": Lamb}


def get(identifier):
    """An optimizer from a name ("sgd", "adagrad", "rmsprop", "adam"; any case, default
    settings), a ``{"class_name": ..., "config": {...}}`` dict, or an Optimizer (returned as is).

    >>> get("Adam").learning_rate, get({"class_name": "SGD", "config": {"momentum": 0.9}}).momentum
    (0.001, 0.9)
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        cls = OPTIMIZERS.get(str(identifier.get("class_name", "")).lower())
        if cls is None:
            raise ValueError(f"optimizer: unknown class_name {identifier.get('class_name')!r}; "
                             f"valid names: {', '.join(OPTIMIZERS)}")
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    raise ValueError(f"optimizer: unknown optimizer {identifier!r}; valid names: "
                     f"{', '.join(OPTIMIZERS)} (or an engine.optimizers.Optimizer)")
