"""Tensor: an ndarray plus the bookkeeping of the autograd tape.

Operators and methods dispatch to the differentiable ops in :mod:`engine.ops`; the tape itself
lives in :mod:`engine.autograd`.
"""
from __future__ import annotations

import numpy as np

from . import autograd

__all__ = ["Tensor", "as_tensor"]


def _convert(data, dtype):
    """``data`` as an ndarray following the Tensor dtype rules."""
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    was_array = isinstance(data, (np.ndarray, np.generic))
    try:
        arr = np.asarray(data)
    except Exception as e:  # ragged nested lists and the like
        raise TypeError(f"Tensor: data must be array-like, could not convert "
                        f"{type(data).__name__}: {e}") from None
    kind = arr.dtype.kind
    if kind == "f":
        if arr.dtype == np.float32 or (was_array and arr.dtype == np.float64):
            return arr
        return arr.astype(np.float32)
    if kind in "iub":
        return arr
    raise TypeError(f"Tensor: data must be numeric (float, int or bool), received dtype "
                    f"{arr.dtype}")


class Tensor:
    """A multi-dimensional array that records the ops applied to it for backpropagation.

    Parameters
    ----------
    data : array-like
        Converted with ``np.asarray``.  Float data becomes float32 unless ``dtype`` is given
        or ``data`` is already a float64 ndarray (kept for gradient checking).  Integer and
        bool data (labels, masks) keep their dtype.
    requires_grad : bool
        Whether backward() should compute ``.grad`` for this tensor (float dtypes only).
    dtype : numpy dtype, optional
        Force the dtype.
    device : "cpu", "cuda" or None
        Where the data lives.  None: where ``data`` is (a numba device array stays on the
        GPU, anything else is "cpu").  On "cuda", ``.data`` is a C-contiguous numba device
        array, ops run CUDA kernels and ``.grad`` is a device array; ``.numpy()`` and
        ``.item()`` copy to the host.  "cuda" where CUDA cannot run raises ValueError.

    Examples
    --------
    >>> x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    array([[2., 4.],
           [6., 8.]], dtype=float32)
    """

    # Let numpy defer to Tensor's reflected operators (ndarray + Tensor -> Tensor.__radd__).
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        if device is None and not _device.is_cuda(data):
            self.data = _convert(data, dtype)
        else:
            self.data = _place(data, dtype, device)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"Tensor: requires_grad=True needs a float dtype, received "
                            f"{self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._parents = ()
        self._backward = None
        self._op = None

    @classmethod
    def _result(cls, data):
        """A Tensor around an op's freshly computed ndarray (no conversion)."""
        t = cls.__new__(cls)
        # numpy returns scalars (not 0-d arrays) from 0-d arithmetic and full reductions;
        # device arrays (CUDA tensors) are kept as they are.
        if not isinstance(data, np.ndarray) and not _device.is_cuda(data):
            data = np.asarray(data)
        t.data = data
        t.requires_grad = False
        t.grad = None
        t._parents = ()
        t._backward = None
        t._op = None
        return t

    # -- attributes ---------------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    @property
    def device(self):
        """"cpu" or "cuda": where ``.data`` lives."""
        return _device.device_of(self.data)

    def to(self, device):
        """This tensor on ``device``: ``self`` when it is already there, else a new leaf
        Tensor with a copy of the data (same ``requires_grad``; the tape is not followed).

        Examples
        --------
        >>> Tensor([1.0]).to("cpu").device
        'cpu'
        """
        device = _device.check_device("Tensor.to", device)
        if device == self.device:
            return self
        return Tensor(_device.move(self.data, device), requires_grad=self.requires_grad)

    def cpu(self):
        """``self.to("cpu")``."""
        return self.to("cpu")

    def cuda(self):
        """``self.to("cuda")``."""
        return self.to("cuda")

    @property
    def is_leaf(self):
        """True for tensors not produced by a recorded op (weights, inputs)."""
        return self._backward is None

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(_device.host(self.data), prefix="Tensor(", separator=", ")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.data.dtype != np.float32:
            extra = f", dtype={self.data.dtype}" + extra
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        return f"Tensor({body}{extra})"

    def __array__(self, dtype=None, copy=None):
        if _device.is_cuda(self.data):  # an explicit conversion: copy to the host
            data = self.data.copy_to_host()
            return data if dtype is None else data.astype(dtype, copy=False)
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    # -- autograd -----------------------------------------------------------------------
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires a gradient.

        ``grad`` defaults to 1 for a scalar (size-1) tensor and must be given (shape of
        ``self``) otherwise.
        """
        if not self.requires_grad:
            raise ValueError("backward: this tensor does not require a gradient (no input of "
                             "the ops that made it has requires_grad=True, or it was computed "
                             "under no_grad())")
        xp = _device.array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward: grad must be given for a non-scalar tensor, "
                                 f"received None for shape {self.shape}")
            grad = xp.ones(self.shape, dtype=self.data.dtype)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if _device.is_cuda(grad) and self.device == "cpu":
                raise ValueError(f"backward: grad is on 'cuda' but the tensor is on 'cpu'")
            grad = xp.asarray(grad, dtype=self.data.dtype)
            if tuple(grad.shape) != self.shape:
                raise ValueError(f"backward: grad must have the shape of the tensor "
                                 f"{self.shape}, received {tuple(grad.shape)}")
        autograd.backward(self, grad)

    def zero_grad(self):
        """Reset ``.grad`` to None."""
        self.grad = None

    def detach(self):
        """A new leaf Tensor sharing this tensor's data, cut off from the tape."""
        return Tensor._result(self.data)

    def numpy(self):
        """The underlying ndarray (shared, not copied); a host copy for a CUDA tensor."""
        return _device.host(self.data)

    def item(self):
        """The value of a size-1 tensor as a Python number (one value copied from a CUDA
        tensor)."""
        if self.data.size != 1:
            raise ValueError(f"item: only size-1 tensors can be converted to a Python number, "
                             f"received shape {self.shape}")
        return _device.host(self.data).item()

    # -- arithmetic ---------------------------------------------------------------------
    def __add__(self, other):
        return _ew.add(self, other)

    def __radd__(self, other):
        return _ew.add(other, self)

    def __sub__(self, other):
        return _ew.sub(self, other)

    def __rsub__(self, other):
        return _ew.sub(other, self)

    def __mul__(self, other):
        return _ew.mul(self, other)

    def __rmul__(self, other):
        return _ew.mul(other, self)

    def __truediv__(self, other):
        return _ew.div(self, other)

    def __rtruediv__(self, other):
        return _ew.div(other, self)

    def __pow__(self, exponent):
        return _ew.power(self, exponent)

    def __neg__(self):
        return _ew.neg(self)

    def __matmul__(self, other):
        return _linear.matmul(self, other)

    def __rmatmul__(self, other):
        return _linear.matmul(other, self)

    def __getitem__(self, index):
        return _shape.getitem(self, index)

    # Comparisons give plain boolean arrays (no gradient).
    def __lt__(self, other):
        return self.data < _raw(other)

    def __le__(self, other):
        return self.data <= _raw(other)

    def __gt__(self, other):
        return self.data > _raw(other)

    def __ge__(self, other):
        return self.data >= _raw(other)

    def __eq__(self, other):
        return self.data == _raw(other)

    def __ne__(self, other):
        return self.data != _raw(other)

    __hash__ = object.__hash__

    # -- methods ------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return _reduce.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return _reduce.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _reduce.max(self, axis, keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _shape.reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _shape.transpose(self, axes or None)

    @property
    def T(self):
        return _shape.transpose(self, None)

    def flatten(self, start=1):
        return _shape.flatten(self, start)

    def exp(self):
        return _ew.exp(self)

    def log(self):
        return _ew.log(self)

    def sqrt(self):
        return _ew.sqrt(self)

    def relu(self):
        return _act.relu(self)

    def sigmoid(self):
        return _act.sigmoid(self)

    def tanh(self):
        return _act.tanh(self)


def _place(data, dtype, device):
    """The data of a Tensor made with an explicit ``device`` or from a device array."""
    if device is not None:
        device = _device.check_device("Tensor", device)
    if _device.is_cuda(data):
        if device == "cpu":
            return _convert(data.copy_to_host(), dtype)
        try:
            return _device.move(data, "cuda") if dtype is None else \
                _device.move(data, "cuda").astype(dtype, copy=False)
        except ValueError as e:
            raise ValueError(f"Tensor: {e}") from None
    arr = _convert(data, dtype)
    return _device.move(arr, "cuda") if device == "cuda" else arr


def _raw(v):
    return v.data if isinstance(v, Tensor) else v


def as_tensor(v, like=None):
    """``v`` if it is a Tensor, else a constant Tensor around it.

    Python scalars and ndarrays that meet a float Tensor ``like`` take its dtype, so a float32
    computation stays float32.
    """
    if isinstance(v, Tensor):
        return v
    if like is not None and like.data.dtype.kind == "f":
        if _device.is_cuda(v):
            return Tensor._result(_device.move(v, "cuda").astype(like.data.dtype, copy=False))
        arr = np.asarray(v)
        if arr.dtype.kind in "fiub":
            arr = arr.astype(like.data.dtype, copy=False)
            # numbers stay host constants (they meet any device); arrays go where ``like`` is
            if arr.ndim and _device.is_cuda(like.data):
                arr = _device.move(arr, "cuda")
            return Tensor._result(arr)
    return Tensor(v)


# The ops import Tensor from this module, so they are imported after the class exists.
from .ops import activation as _act  # noqa: E402
from .ops import elementwise as _ew  # noqa: E402
from .ops import linear as _linear  # noqa: E402
from .ops import reduce as _reduce  # noqa: E402
from .ops import shape as _shape  # noqa: E402
from . import device as _device  # noqa: E402
