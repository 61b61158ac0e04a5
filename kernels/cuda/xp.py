"""numpy's names over CUDA device arrays: the array namespace the engine's ops use on "cuda".

engine.ops are written once against an array namespace ``xp`` picked from their inputs
(Chainer's ``get_array_module``): numpy on the CPU, this module on the GPU.  A
:class:`CudaArray` wraps a C-contiguous numba device array and answers numpy's operators and
methods (arithmetic with broadcasting, comparisons, reductions, reshape, transpose, indexing,
in-place updates); the functions below mirror numpy's (``xp.exp``, ``xp.maximum``,
``xp.where``, ``xp.zeros``, ``xp.concatenate``, ``xp.pad``, ``xp.add.at`` ...), with
``out=`` where numpy has it.

Every element-wise function is one scalar rule (a line of :func:`_unary_rule` or
:func:`_binary_rule`) applied by one generic broadcasting kernel, so adding a function is
adding a rule.  Views that numpy makes (transpose, slicing, broadcast_to) are copies here:
values are the same, only the memory differs.  Indexing with integer arrays or masks gathers
through an index map computed on the host.

    >>> import numpy as np                                          # doctest: +SKIP
    >>> a = asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    >>> (exp(a) * 2 - a).sum(axis=1).get()
"""
from __future__ import annotations

import builtins as _bi
import math
import numbers

import numpy as np
from numba import cuda

from . import _device

__all__ = ["CudaArray", "asarray", "ascontiguousarray", "empty", "zeros", "ones", "full",
           "empty_like", "zeros_like", "ones_like", "full_like", "arange"]

float32, float64, int64, int32, bool_, uint8 = (np.float32, np.float64, np.int64, np.int32,
                                                np.bool_, np.uint8)
float16, int8, int16, uint16, uint32, uint64, intp = (np.float16, np.int8, np.int16,
                                                      np.uint16, np.uint32, np.uint64, np.intp)
dtype, integer, floating, ndarray_host = np.dtype, np.integer, np.floating, np.ndarray
newaxis, pi, e, inf, nan = None, np.pi, np.e, np.inf, np.nan
finfo, iinfo, result_type, prod_int = np.finfo, np.iinfo, np.result_type, np.prod
random = np.random  # random numbers are drawn on the host (the CPU's stream, same values)

# -- scalar rules -----------------------------------------------------------------------------
# One rule per function; the generic kernels below apply them element by element.
_UNARY = ("identity", "negative", "exp", "log", "sqrt", "tanh", "abs", "sign", "log1p",
          "expm1", "floor", "ceil", "square", "reciprocal", "sin", "cos", "erf", "rint",
          "sigmoid", "logical_not", "isfinite", "isnan", "isinf", "arctan", "tan",
          "cosh", "sinh", "trunc")
_BINARY = ("add", "subtract", "multiply", "divide", "power", "maximum", "minimum", "mod",
           "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
           "logical_and", "logical_or", "logaddexp", "arctan2", "floor_divide", "copysign",
           "fmax", "fmin")
_U = {n: i for i, n in enumerate(_UNARY)}
_B = {n: i for i, n in enumerate(_BINARY)}
_BOOL_OUT = {"greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
             "logical_and", "logical_or", "logical_not", "isfinite", "isnan", "isinf"}


@cuda.jit(device=True)
def _unary_rule(op, x):
    if op == 0:
        return x
    if op == 1:
        return -x
    if op == 2:
        if x > 709.0:  # math.exp raises on overflow where the GPU gives inf
            return math.inf
        return math.exp(x)
    if op == 3:
        if x == 0:
            return -math.inf
        if x < 0 or x != x:
            return math.nan
        return math.log(x)
    if op == 4:
        if x < 0 or x != x:
            return math.nan
        return math.sqrt(x)
    if op == 5:
        return math.tanh(x)
    if op == 6:
        return x if x >= 0 else -x
    if op == 7:
        if x > 0:
            return 1
        if x < 0:
            return -1
        return x
    if op == 8:
        if x == -1:
            return -math.inf
        if x < -1 or x != x:
            return math.nan
        return math.log1p(x)
    if op == 9:
        if x > 709.0:
            return math.inf
        return math.expm1(x)
    if op == 10:
        return math.floor(x)
    if op == 11:
        return math.ceil(x)
    if op == 12:
        return x * x
    if op == 13:
        return 1 / x
    if op == 14:
        return math.sin(x)
    if op == 15:
        return math.cos(x)
    if op == 16:
        return math.erf(x)
    if op == 17:
        # round half to even, as numpy
        r = math.floor(x + 0.5)
        if r - x == 0.5 and r % 2 != 0:
            r -= 1
        return r
    if op == 18:
        if x >= 0:
            return 1 / (1 + math.exp(-x))
        z = math.exp(x)
        return z / (1 + z)
    if op == 19:
        return 0.0 if x else 1.0
    if op == 20:
        return 0.0 if (math.isinf(x) or math.isnan(x)) else 1.0
    if op == 21:
        return 1.0 if math.isnan(x) else 0.0
    if op == 22:
        return 1.0 if math.isinf(x) else 0.0
    if op == 23:
        return math.atan(x)
    if op == 24:
        return math.tan(x)
    if op == 25:
        if math.fabs(x) > 709.0:
            return math.inf
        return math.cosh(x)
    if op == 26:
        if math.fabs(x) > 709.0:
            return math.copysign(math.inf, x)
        return math.sinh(x)
    return math.trunc(x)


@cuda.jit(device=True)
def _binary_rule(op, a, b):
    if op == 0:
        return a + b
    if op == 1:
        return a - b
    if op == 2:
        return a * b
    if op == 3:
        if b == 0:  # IEEE division, as numpy (CUDA's Python semantics would raise)
            if a == 0 or a != a:
                return math.nan
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    if op == 4:
        return a ** b
    if op == 5:  # numpy propagates NaN through maximum/minimum
        if a != a or b != b:
            return a + b
        return a if a >= b else b
    if op == 6:
        if a != a or b != b:
            return a + b
        return a if a <= b else b
    if op == 7:
        if b == 0:
            return math.nan
        r = math.fmod(a, b)
        if r != 0 and (r < 0) != (b < 0):
            r += b
        return r
    if op == 8:
        return 1.0 if a > b else 0.0
    if op == 9:
        return 1.0 if a >= b else 0.0
    if op == 10:
        return 1.0 if a < b else 0.0
    if op == 11:
        return 1.0 if a <= b else 0.0
    if op == 12:
        return 1.0 if a == b else 0.0
    if op == 13:
        return 1.0 if a != b else 0.0
    if op == 14:
        return 1.0 if (a and b) else 0.0
    if op == 15:
        return 1.0 if (a or b) else 0.0
    if op == 16:
        m = a if a >= b else b
        if math.isinf(m) and a == b:
            return m
        return m + math.log1p(math.exp(-math.fabs(a - b)))
    if op == 17:
        return math.atan2(a, b)
    if op == 18:
        if b == 0:
            return math.nan
        return math.floor(a / b)
    if op == 19:
        return math.copysign(a, b)
    if op == 20:
        if a != a:
            return b
        if b != b:
            return a
        return a if a >= b else b
    if a != a:
        return b
    if b != b:
        return a
    return a if a <= b else b


# -- generic kernels ----------------------------------------------------------------------------
# Arrays go in flat (1-D, contiguous); an input is read at offset + sum(index_d * stride_d) over
# the output's shape, so broadcasting (stride 0), transposes and slices are the same loop.

@cuda.jit(device=True)
def _offset(i, shape, strides, base):
    o = base
    for d in range(len(shape) - 1, -1, -1):
        n = shape[d]
        o += (i % n) * strides[d]
        i //= n
    return o


@cuda.jit(cache=True)
def _k_unary(op, a, sa, oa, shape, out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = _unary_rule(op, a[_offset(i, shape, sa, oa)])


@cuda.jit(cache=True)
def _k_binary(op, a, sa, b, sb, shape, out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = _binary_rule(op, a[_offset(i, shape, sa, 0)], b[_offset(i, shape, sb, 0)])


@cuda.jit(cache=True)
def _k_binary_scalar(op, a, sa, s, swap, shape, out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        v = a[_offset(i, shape, sa, 0)]
        out[i] = _binary_rule(op, s, v) if swap else _binary_rule(op, v, s)


@cuda.jit(cache=True)
def _k_where(c, sc, a, sa, b, sb, shape, out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        if c[_offset(i, shape, sc, 0)]:
            out[i] = a[_offset(i, shape, sa, 0)]
        else:
            out[i] = b[_offset(i, shape, sb, 0)]


@cuda.jit(cache=True)
def _k_gather(a, idx, out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = a[idx[i]]


@cuda.jit(cache=True)
def _k_scatter(out, idx, v, accumulate):
    for i in range(cuda.grid(1), idx.size, cuda.gridsize(1)):
        if accumulate:
            cuda.atomic.add(out, idx[i], v[i])
        else:
            out[idx[i]] = v[i]


_RED_THREADS = 128  # threads of a reduction block (a power of two)


@cuda.jit(cache=True)
def _k_reduce(op, a, rows, k, out):
    """out[r] = reduce(a[r*k:(r+1)*k]) with op 0 sum, 1 max, 2 min (NaN propagates); one block
    per row (grid-stride over rows), float64 partials in shared memory."""
    part = cuda.shared.array(_RED_THREADS, dtype=np.float64)
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    for r in range(cuda.blockIdx.x, rows, cuda.gridDim.x):
        base = r * k
        if op == 0:
            acc = 0.0
        else:
            acc = np.float64(a[base])
        for j in range(tid, k, nt):
            v = np.float64(a[base + j])
            if op == 0:
                acc += v
            elif v != v or acc != acc:
                acc = math.nan
            elif (op == 1 and v > acc) or (op == 2 and v < acc):
                acc = v
        part[tid] = acc
        cuda.syncthreads()
        half = nt // 2
        while half > 0:
            if tid < half:
                x, y = part[tid], part[tid + half]
                if op == 0:
                    part[tid] = x + y
                elif x != x or y != y:
                    part[tid] = math.nan
                elif (op == 1 and y > x) or (op == 2 and y < x):
                    part[tid] = y
            cuda.syncthreads()
            half //= 2
        if tid == 0:
            out[r] = part[0]
        cuda.syncthreads()


def _launch(kernel, n, *args):
    if n:
        t = _device.threads()
        kernel[_device.blocks_for(n, t), t](*args)


# -- the array ------------------------------------------------------------------------------------

def _norm_shape(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


class CudaArray:
    """A C-contiguous numba device array with numpy's operators and methods.

    ``.get()`` (or ``copy_to_host()``) copies to the host; ``numba_array`` is the wrapped numba
    device array (what kernels launch on).  Python numbers mix freely (``a * 0.5``); numpy
    arrays are uploaded when combined explicitly through :func:`asarray`.
    """
    __slots__ = ("numba_array",)
    __array_ufunc__ = None  # numpy defers to our reflected operators
    __array_priority__ = 1000

    def __init__(self, numba_array):
        self.numba_array = numba_array

    # -- attributes
    @property
    def shape(self):
        return tuple(self.numba_array.shape)

    @property
    def dtype(self):
        return np.dtype(self.numba_array.dtype)

    @property
    def ndim(self):
        return len(self.numba_array.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self.itemsize

    @property
    def strides(self):
        return _c_strides(self.shape, self.itemsize)

    @property
    def T(self):
        return self.transpose()

    @property
    def flat1d(self):
        return self.numba_array.reshape(_bi.max(self.size, 1)) if self.size else \
            self.numba_array.reshape(0)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __repr__(self):
        return f"CudaArray({np.array2string(self.get(), separator=', ')}, dtype={self.dtype})"

    def __bool__(self):
        if self.size != 1:
            raise ValueError("The truth value of an array with more than one element is "
                             "ambiguous. Use a.any() or a.all()")
        return bool(self.get().reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        return int(self.item())

    # -- transfers
    def get(self):
        """A numpy copy."""
        if self.size == 0:
            return np.empty(self.shape, self.dtype)
        return self.numba_array.copy_to_host()

    def copy_to_host(self, ary=None, stream=0):
        if ary is None:
            return self.get()
        if self.size:
            self.numba_array.copy_to_host(ary)
        return ary

    def copy_to_device(self, ary):
        if self.size:
            self.numba_array.copy_to_device(
                ary.numba_array if isinstance(ary, CudaArray) else ary)

    def is_c_contiguous(self):
        return True

    @property
    def __cuda_array_interface__(self):  # on a GPU: CuPy, torch and numba read it
        return self.numba_array.__cuda_array_interface__

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.get().reshape(()).item()

    def tolist(self):
        return self.get().tolist()

    # -- shape
    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        shape = _resolve_shape(self.size, _norm_shape(shape), self.shape)
        if shape == self.shape:
            return self
        if self.size == 0:
            return empty(shape, self.dtype)
        return CudaArray(self.numba_array.reshape(shape))

    def ravel(self):
        return self.reshape(-1)

    def flatten(self):
        return self.reshape(-1).copy()

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], (int, np.integer))):
            axes = axes[0]
        nd = self.ndim
        axes = tuple(range(nd))[::-1] if axes in (None, ()) else tuple(int(a) % nd for a in axes)
        if sorted(axes) != list(range(nd)):
            raise ValueError(f"axes don't match array: {axes} for shape {self.shape}")
        if axes == tuple(range(nd)):
            return self
        shape = tuple(self.shape[a] for a in axes)
        es = _c_strides(self.shape, 1)
        return _gather_strided(self, shape, tuple(es[a] for a in axes), 0)

    def swapaxes(self, a, b):
        axes = list(range(self.ndim))
        axes[a], axes[b] = axes[b], axes[a]
        return self.transpose(axes)

    def squeeze(self, axis=None):
        return squeeze(self, axis)

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype == self.dtype and not copy:
            return self
        return _unary("identity", self, out_dtype=dtype)

    def copy(self):
        return _unary("identity", self)

    def fill(self, value):
        if self.size:
            _device.fill(self.flat1d, value)

    def view(self, dtype=None):
        if dtype is None or np.dtype(dtype) == self.dtype:
            return CudaArray(self.numba_array)
        raise TypeError("CudaArray.view: reinterpreting the dtype is not supported")

    # -- reductions
    def sum(self, axis=None, dtype=None, keepdims=False, out=None):
        return _reduce("sum", self, axis, keepdims, dtype, out)

    def mean(self, axis=None, dtype=None, keepdims=False, out=None):
        return _reduce("mean", self, axis, keepdims, dtype, out)

    def max(self, axis=None, keepdims=False, out=None):
        return _reduce("max", self, axis, keepdims, None, out)

    def min(self, axis=None, keepdims=False, out=None):
        return _reduce("min", self, axis, keepdims, None, out)

    def any(self, axis=None, keepdims=False):
        return _reduce("max", self.astype(np.float32), axis, keepdims, None, None) \
            .astype(np.bool_)

    def all(self, axis=None, keepdims=False):
        return _reduce("min", self.astype(np.float32), axis, keepdims, None, None) \
            .astype(np.bool_)

    def var(self, axis=None, keepdims=False, ddof=0):
        return var(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def std(self, axis=None, keepdims=False, ddof=0):
        return sqrt(var(self, axis=axis, keepdims=keepdims, ddof=ddof))

    def argmax(self, axis=None):
        return asarray(self.get().argmax(axis=axis))

    def argmin(self, axis=None):
        return asarray(self.get().argmin(axis=axis))

    def dot(self, other):
        return dot(self, other)

    def clip(self, a_min=None, a_max=None, out=None):
        return clip(self, a_min, a_max, out=out)

    # -- indexing
    def __getitem__(self, index):
        return _getitem(self, index)

    def __setitem__(self, index, value):
        _setitem(self, index, value, accumulate=False)

    # -- operators
    def __add__(self, o):
        return add(self, o)

    def __radd__(self, o):
        return add(o, self)

    def __sub__(self, o):
        return subtract(self, o)

    def __rsub__(self, o):
        return subtract(o, self)

    def __mul__(self, o):
        return multiply(self, o)

    def __rmul__(self, o):
        return multiply(o, self)

    def __truediv__(self, o):
        return divide(self, o)

    def __rtruediv__(self, o):
        return divide(o, self)

    def __floordiv__(self, o):
        return floor_divide(self, o)

    def __mod__(self, o):
        return mod(self, o)

    def __pow__(self, o):
        return power(self, o)

    def __rpow__(self, o):
        return power(o, self)

    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(o, self)

    def __neg__(self):
        return negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return absolute(self)

    def __invert__(self):
        return logical_not(self)

    def __and__(self, o):
        return logical_and(self, o)

    def __or__(self, o):
        return logical_or(self, o)

    def __iadd__(self, o):
        return add(self, o, out=self)

    def __isub__(self, o):
        return subtract(self, o, out=self)

    def __imul__(self, o):
        return multiply(self, o, out=self)

    def __itruediv__(self, o):
        return divide(self, o, out=self)

    def __ipow__(self, o):
        return power(self, o, out=self)

    def __gt__(self, o):
        return greater(self, o)

    def __ge__(self, o):
        return greater_equal(self, o)

    def __lt__(self, o):
        return less(self, o)

    def __le__(self, o):
        return less_equal(self, o)

    def __eq__(self, o):
        return equal(self, o)

    def __ne__(self, o):
        return not_equal(self, o)

    __hash__ = None


ndarray = CudaArray


def _c_strides(shape, itemsize):
    out, s = [], itemsize
    for n in reversed(shape):
        out.append(s)
        s *= _bi.max(n, 1)
    return tuple(reversed(out))


def _resolve_shape(size, shape, old):
    if shape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if int(np.prod(shape, dtype=np.int64)) != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
    return shape


# -- construction ---------------------------------------------------------------------------------

def _is_dev(a):
    return isinstance(a, CudaArray)


def asarray(a, dtype=None):
    """``a`` as a CudaArray: CudaArrays pass through (cast if ``dtype``), numba device arrays
    are wrapped, anything else is converted with numpy and uploaded."""
    if isinstance(a, CudaArray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    if _device.is_device_array(a) and not isinstance(a, np.ndarray):
        d = _device._as_numba_device(a)
        if not d.is_c_contiguous():
            raise ValueError("asarray: device arrays must be C-contiguous")
        arr = CudaArray(d)
        return arr if dtype is None else arr.astype(dtype, copy=False)
    h = np.ascontiguousarray(np.asarray(a, dtype=dtype))
    if h.size == 0:
        return empty(h.shape, h.dtype)
    return CudaArray(cuda.to_device(h))


def array(a, dtype=None, copy=True):
    """A new CudaArray with the values of ``a`` (numpy's ``array``: copies by default)."""
    out = asarray(a, dtype)
    return out.copy() if copy and out is a else out


def ascontiguousarray(a, dtype=None):
    return asarray(a, dtype)


def empty(shape, dtype=np.float32):
    shape = _norm_shape(shape)
    return CudaArray(cuda.device_array(shape, dtype=np.dtype(dtype)))


def full(shape, fill_value, dtype=None):
    dtype = np.dtype(dtype if dtype is not None else np.result_type(fill_value))
    out = empty(shape, dtype)
    out.fill(fill_value)
    return out


def zeros(shape, dtype=np.float32):
    return full(shape, 0, dtype)


def ones(shape, dtype=np.float32):
    return full(shape, 1, dtype)


def empty_like(a, dtype=None):
    return empty(a.shape, dtype or a.dtype)


def zeros_like(a, dtype=None):
    return zeros(a.shape, dtype or a.dtype)


def ones_like(a, dtype=None):
    return ones(a.shape, dtype or a.dtype)


def full_like(a, fill_value, dtype=None):
    return full(a.shape, fill_value, dtype or a.dtype)


def arange(*args, dtype=None):
    return asarray(np.arange(*args, dtype=dtype))


def copyto(dst, src):
    _unary("identity", asarray(src), out=dst)


# -- element-wise ----------------------------------------------------------------------------------

def _bcast_strides(a, shape):
    """Element strides that read ``a`` (C-contiguous) broadcast to ``shape``."""
    es = _c_strides(a.shape, 1)
    lead = len(shape) - a.ndim
    return tuple(0 if d < lead or a.shape[d - lead] == 1 else es[d - lead]
                 for d in range(len(shape)))


def _result_dtype(name, *dts):
    if name in _BOOL_OUT:
        return np.dtype(np.bool_)
    return np.result_type(*dts)


def _scalar_dtype(arr_dtype, s):
    """numpy's rule for array-with-Python-scalar: the array's dtype wins within its kind."""
    if isinstance(s, (bool, np.bool_)):
        return arr_dtype
    if isinstance(s, numbers.Integral):
        return arr_dtype if arr_dtype.kind in "fiu" else np.dtype(np.int64)
    if isinstance(s, numbers.Real):
        return arr_dtype if arr_dtype.kind == "f" else np.dtype(np.float64)
    raise TypeError(f"unsupported operand type {type(s).__name__}")


def _prep_out(out, shape, dtype, op):
    if out is None:
        return empty(shape, dtype)
    if not isinstance(out, CudaArray):
        raise TypeError(f"{op}: out must be a CudaArray, received {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{op}: out has shape {out.shape}, expected {shape}")
    return out


def _geometry(arrays, shape):
    """(shape, strides per array) for the kernel: one flat dim when nothing broadcasts."""
    if _bi.all(a.shape == shape for a in arrays):
        n = int(np.prod(shape, dtype=np.int64))
        return (_bi.max(n, 1),), [(1,)] * len(arrays)
    if not shape:
        return (1,), [(0,)] * len(arrays)
    return shape, [_bcast_strides(a, shape) for a in arrays]


def _unary(name, a, out=None, out_dtype=None):
    a = asarray(a)
    dt = out_dtype or _result_dtype(name, a.dtype)
    if name not in _BOOL_OUT and out_dtype is None and a.dtype.kind in "biu" and name not in (
            "identity", "negative", "abs", "sign", "square", "logical_not"):
        dt = np.dtype(np.float64)
        a = a.astype(dt)
    res = _prep_out(out, a.shape, dt, name)
    if a.size:
        _launch(_k_unary, a.size, _U[name], a.flat1d, (1,), 0, (a.size,), res.flat1d)
    return res


def _binary(name, a, b, out=None):
    if not isinstance(a, CudaArray) and not isinstance(b, CudaArray):
        return asarray(getattr(np, name)(np.asarray(a), np.asarray(b)))
    scalar = None
    if np.ndim(a) == 0 and not isinstance(a, CudaArray):
        scalar, arr, swap = a, b, True
    elif np.ndim(b) == 0 and not isinstance(b, CudaArray):
        scalar, arr, swap = b, a, False
    if scalar is not None:
        scalar = np.asarray(scalar).item()
        dt = _scalar_dtype(arr.dtype, scalar)
        if name in ("divide", "power") and dt.kind in "iub" and not (
                name == "power" and isinstance(scalar, numbers.Integral)):
            dt = np.dtype(np.float64)
        if dt != arr.dtype:
            arr = arr.astype(dt)
        res = _prep_out(out, arr.shape, _result_dtype(name, dt), name)
        if arr.size:
            cast = float(scalar) if dt.kind == "f" else (bool(scalar) if dt.kind == "b"
                                                         else int(scalar))
            _launch(_k_binary_scalar, arr.size, _B[name], arr.flat1d, (1,), cast, swap,
                    (arr.size,), res.flat1d)
        return res
    a, b = asarray(a), asarray(b)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"operands could not be broadcast together with shapes {a.shape} "
                         f"{b.shape}") from None
    dt = np.result_type(a.dtype, b.dtype)
    if name == "divide" and dt.kind in "iub":
        dt = np.dtype(np.float64)
    a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
    res = _prep_out(out, shape, _result_dtype(name, dt), name)
    if res.size:
        kshape, (sa, sb) = _geometry((a, b), shape)
        _launch(_k_binary, res.size, _B[name], a.flat1d, sa, b.flat1d, sb, kshape,
                res.flat1d)
    return res


class _BinaryFunc:
    """A binary function with numpy's call signature and ``.at`` for ``add``."""

    def __init__(self, name):
        self.__name__ = name

    def __call__(self, a, b, out=None, dtype=None):
        res = _binary(self.__name__, a, b, out=out)
        return res if dtype is None else res.astype(dtype, copy=False)

    def at(self, a, index, values):
        if self.__name__ != "add":
            raise NotImplementedError(f"{self.__name__}.at is not available on 'cuda'")
        _setitem(a, index, values, accumulate=True)

    def __repr__(self):
        return f"<cuda binary function {self.__name__}>"


def _unary_func(name):
    def f(a, out=None, dtype=None):
        res = _unary(name, a, out=out)
        return res if dtype is None else res.astype(dtype, copy=False)
    f.__name__ = name
    return f


for _n in _UNARY:
    globals()[_n] = _unary_func(_n)
for _n in _BINARY:
    globals()[_n] = _BinaryFunc(_n)
absolute = globals()["abs"]
true_divide = globals()["divide"]
__all__ += list(_UNARY) + list(_BINARY) + ["absolute", "true_divide"]


def where(cond, a, b):
    cond = asarray(cond)
    if not isinstance(a, CudaArray) and not isinstance(b, CudaArray):
        dt = np.result_type(a, b)
    elif not isinstance(a, CudaArray):
        dt = _scalar_dtype(b.dtype, a) if np.ndim(a) == 0 else np.result_type(a, b.dtype)
    elif not isinstance(b, CudaArray):
        dt = _scalar_dtype(a.dtype, b) if np.ndim(b) == 0 else np.result_type(a.dtype, b)
    else:
        dt = np.result_type(a.dtype, b.dtype)
    a, b = asarray(a, dt), asarray(b, dt)
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    res = empty(shape, dt)
    if res.size:
        kshape, (sc, sa, sb) = _geometry((cond, a, b), shape)
        _launch(_k_where, res.size, cond.flat1d, sc, a.flat1d, sa, b.flat1d, sb, kshape,
                res.flat1d)
    return res


def clip(a, a_min, a_max, out=None):
    a = asarray(a)
    r = a if a_min is None else maximum(a, a_min)
    r = r if a_max is None else minimum(r, a_max)
    if out is not None:
        copyto(out, r)
        return out
    return r if r is not a else a.copy()


def _gather_strided(a, shape, strides, offset):
    res = empty(shape, a.dtype)
    if res.size:
        _launch(_k_unary, res.size, 0, a.flat1d, tuple(strides) or (0,), offset,
                tuple(shape) or (1,), res.flat1d)
    return res


def broadcast_to(a, shape):
    a = asarray(a)
    shape = _norm_shape(shape)
    if a.shape == shape:
        return a
    try:
        if np.broadcast_shapes(a.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"operands could not be broadcast together with remapped shapes "
                         f"{a.shape} and requested shape {shape}") from None
    return _gather_strided(a, shape, _bcast_strides(a, shape), 0)


def broadcast_shapes(*shapes):
    return np.broadcast_shapes(*shapes)


def expand_dims(a, axis):
    a = asarray(a)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    nd = a.ndim + len(axes)
    axes = sorted(int(x) % nd for x in axes)
    shape = list(a.shape)
    for ax in axes:
        shape.insert(ax, 1)
    return a.reshape(tuple(shape))


def squeeze(a, axis=None):
    a = asarray(a)
    if axis is None:
        return a.reshape(tuple(s for s in a.shape if s != 1))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = {int(x) % a.ndim for x in axes}
    for ax in axes:
        if a.shape[ax] != 1:
            raise ValueError("cannot select an axis to squeeze out which has size not equal "
                             "to one")
    return a.reshape(tuple(s for i, s in enumerate(a.shape) if i not in axes))


def reshape(a, shape):
    return asarray(a).reshape(shape)


def transpose(a, axes=None):
    return asarray(a).transpose(axes)


def swapaxes(a, i, j):
    return asarray(a).swapaxes(i, j)


def moveaxis(a, source, destination):
    a = asarray(a)
    order = [n for n in range(a.ndim) if n != source % a.ndim]
    order.insert(destination % a.ndim, source % a.ndim)
    return a.transpose(order)


def ravel(a):
    return asarray(a).reshape(-1)


def copy(a):
    return asarray(a).copy()


# -- reductions ------------------------------------------------------------------------------------

def _axes(axis, nd):
    if axis is None:
        return tuple(range(nd))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(sorted(int(x) % _bi.max(nd, 1) for x in axes))
    if len(set(axes)) != len(axes):
        raise ValueError("duplicate value in 'axis'")
    return axes


def _reduce(kind, a, axis, keepdims, dtype, out):
    a = asarray(a)
    axes = _axes(axis, a.ndim)
    keep = tuple(d for d in range(a.ndim) if d not in axes)
    out_shape = tuple(1 if d in axes else a.shape[d] for d in range(a.ndim)) if keepdims \
        else tuple(a.shape[d] for d in keep)
    k = int(np.prod([a.shape[d] for d in axes], dtype=np.int64))
    rows = int(np.prod([a.shape[d] for d in keep], dtype=np.int64))
    if kind in ("max", "min") and k == 0:
        raise ValueError(f"zero-size array to reduction operation {kind}imum which has no "
                         f"identity")
    src_dt = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
    res_dt = np.dtype(dtype) if dtype is not None else (
        a.dtype if kind in ("max", "min") else
        a.dtype if a.dtype.kind == "f" else
        np.dtype(np.float64) if kind == "mean" else
        np.dtype(np.int64) if a.dtype.kind in "biu" else a.dtype)
    src = a.astype(src_dt, copy=False)
    if keep and axes and keep + axes != tuple(range(a.ndim)):
        src = src.transpose(keep + axes)  # reduced axes last, contiguous rows
    flat = empty((rows,), np.float64)
    if rows:
        if k == 0:
            flat.fill(0.0)
        else:
            t = 1
            while t * 2 <= _bi.min(_RED_THREADS, _device.threads()):
                t *= 2
            _k_reduce[_bi.max(1, _bi.min(rows, int(_device.config.MAX_BLOCKS))), t](
                {"sum": 0, "mean": 0, "max": 1, "min": 2}[kind], src.flat1d, rows, k,
                flat.numba_array)
    if kind == "mean":
        flat = flat * (1.0 / k) if k else flat * math.nan
    res = flat.astype(res_dt, copy=False).reshape(out_shape)
    if out is not None:
        copyto(out, res)
        return out
    return res


def sum(a, axis=None, dtype=None, keepdims=False, out=None):  # noqa: A001 - numpy's name
    return _reduce("sum", a, axis, keepdims, dtype, out)


def mean(a, axis=None, dtype=None, keepdims=False, out=None):
    return _reduce("mean", a, axis, keepdims, dtype, out)


def max(a, axis=None, keepdims=False, out=None):  # noqa: A001
    return _reduce("max", a, axis, keepdims, None, out)


def min(a, axis=None, keepdims=False, out=None):  # noqa: A001
    return _reduce("min", a, axis, keepdims, None, out)


amax, amin = max, min


def var(a, axis=None, keepdims=False, ddof=0):
    a = asarray(a)
    m = mean(a, axis=axis, keepdims=True)
    d = a - m
    n = int(np.prod([a.shape[x] for x in _axes(axis, a.ndim)], dtype=np.int64))
    return sum(d * d, axis=axis, keepdims=keepdims) * (1.0 / (n - ddof))


def std(a, axis=None, keepdims=False, ddof=0):
    return sqrt(var(a, axis=axis, keepdims=keepdims, ddof=ddof))


def any(a, axis=None, keepdims=False):  # noqa: A001
    return asarray(a).any(axis=axis, keepdims=keepdims)


def all(a, axis=None, keepdims=False):  # noqa: A001
    return asarray(a).all(axis=axis, keepdims=keepdims)


def argmax(a, axis=None):
    return asarray(a).argmax(axis)


def count_nonzero(a, axis=None):
    return sum(asarray(a).astype(np.int64), axis=axis)


def allclose(a, b, rtol=1e-5, atol=1e-8):
    return np.allclose(_host(a), _host(b), rtol=rtol, atol=atol)


def _host(a):
    return a.get() if isinstance(a, CudaArray) else np.asarray(a)


def asnumpy(a):
    """A numpy copy of ``a`` (numpy arrays pass through)."""
    return _host(a)


# -- indexing ----------------------------------------------------------------------------------------

def _host_index(index):
    if isinstance(index, tuple):
        return tuple(_host(i) if isinstance(i, CudaArray) else i for i in index)
    return _host(index) if isinstance(index, CudaArray) else index


def _index_map(shape, index):
    """Flat element offsets of ``x[index]`` for an array of ``shape`` (computed on the host)."""
    n = int(np.prod(shape, dtype=np.int64))
    return np.arange(n, dtype=np.int64).reshape(shape)[_host_index(index)]


def _leading_slice(a, index):
    """The contiguous view for ``a[i:j]`` / ``a[i]`` on the first axis, else None."""
    if isinstance(index, tuple) and len(index) == 1:
        index = index[0]
    if isinstance(index, (int, np.integer)) and not isinstance(index, bool) and a.ndim:
        i = int(index)
        if not -a.shape[0] <= i < a.shape[0]:
            raise IndexError(f"index {i} is out of bounds for axis 0 with size {a.shape[0]}")
        return a.numba_array[i % a.shape[0]] if a.ndim > 1 else None
    if isinstance(index, slice) and a.ndim and index.step in (None, 1):
        lo, hi, _ = index.indices(a.shape[0])
        hi = hi if hi > lo else lo
        if hi == lo:
            return None
        return a.numba_array[lo:hi]
    return None


def _getitem(a, index):
    view = _leading_slice(a, index)
    if view is not None:
        return CudaArray(view)
    idx = _index_map(a.shape, index)
    res = empty(idx.shape, a.dtype)
    if res.size:
        _launch(_k_gather, res.size, a.flat1d, cuda.to_device(idx.reshape(-1)), res.flat1d)
    return res


def _setitem(a, index, value, accumulate):
    idx = _index_map(a.shape, index)
    if not idx.size:
        return
    v = broadcast_to(asarray(value, a.dtype) if isinstance(value, CudaArray)
                     else asarray(np.asarray(value, dtype=a.dtype)), idx.shape)
    _launch(_k_scatter, idx.size, a.flat1d, cuda.to_device(idx.reshape(-1)),
            v.flat1d, bool(accumulate))


def take(a, indices, axis=None):
    a = asarray(a)
    if axis is None:
        return a.reshape(-1)[_host(indices)]
    index = [slice(None)] * a.ndim
    index[axis] = _host(indices)
    return a[tuple(index)]


# -- joining and padding -----------------------------------------------------------------------------

def concatenate(arrays, axis=0):
    arrays = [asarray(x) for x in arrays]
    nd = arrays[0].ndim
    ax = axis % nd
    shape = list(arrays[0].shape)
    shape[ax] = _bi.sum(x.shape[ax] for x in arrays)
    dt = np.result_type(*[x.dtype for x in arrays])
    res = empty(tuple(shape), dt)
    lo = 0
    for x in arrays:
        sl = [slice(None)] * nd
        sl[ax] = slice(lo, lo + x.shape[ax])
        res[tuple(sl)] = x
        lo += x.shape[ax]
    return res


def stack(arrays, axis=0):
    arrays = [expand_dims(asarray(x), axis) for x in arrays]
    return concatenate(arrays, axis=axis)


def pad(a, pad_width, mode="constant", constant_values=0):
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not available on 'cuda'")
    a = asarray(a)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (a.ndim, 2))
    shape = tuple(int(n + lo + hi) for n, (lo, hi) in zip(a.shape, widths))
    res = full(shape, constant_values, a.dtype)
    res[tuple(slice(int(lo), int(lo) + n) for n, (lo, _) in zip(a.shape, widths))] = a
    return res


# -- linear algebra ------------------------------------------------------------------------------------

def matmul(a, b, out=None):
    """numpy's matmul: 1-D operands promoted, batch dims broadcast (a 2-D GEMM per batch)."""
    from .gemm import matmul as _mm
    a, b = asarray(a), asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions")
    A = a.reshape(1, -1) if a.ndim == 1 else a
    B = b.reshape(-1, 1) if b.ndim == 1 else b
    if A.shape[-1] != B.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} not aligned")
    batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    (m, k), n = A.shape[-2:], B.shape[-1]
    dt = np.result_type(a.dtype, b.dtype)
    A = broadcast_to(A.astype(dt, copy=False), batch + (m, k)).reshape(-1, m, k)
    B = broadcast_to(B.astype(dt, copy=False), batch + (k, n)).reshape(-1, k, n)
    shape = batch + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
    res = _prep_out(out, shape, dt, "matmul")
    r3 = res.reshape(-1, m, n)
    if res.size:
        if k == 0:
            res.fill(0)
        else:
            for i in range(r3.shape[0]):
                _mm(A[i].numba_array, B[i].numba_array, r3[i].numba_array)
    return res


dot = matmul


def outer(a, b):
    return asarray(a).reshape(-1, 1) * asarray(b).reshape(1, -1)
