"""Reshaping layers, channels first: UpSampling1D/2D/3D, ZeroPadding1D/2D/3D,
Cropping1D/2D/3D, Permute and RepeatVector."""
from __future__ import annotations

from .. import functional as F
from ..ops import extra as E
from .base import Layer, is_int
from .conv import expand_tuple

__all__ = ["UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
           "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "Permute",
           "RepeatVector"]


def _pairs(owner, name, value, rank):
    """Keras's spellings of per-dim (lo, hi) amounts: an int (all sides), a tuple of ``rank``
    ints (symmetric per dim), ``rank`` (lo, hi) pairs, or for rank 1 one (lo, hi) pair."""
    def ok(v):
        return is_int(v) and v >= 0
    if ok(value):
        return ((int(value), int(value)),) * rank
    if isinstance(value, (tuple, list)):
        if rank == 1 and len(value) == 2 and all(ok(v) for v in value):
            return ((int(value[0]), int(value[1])),)
        if len(value) == rank and all(ok(v) for v in value):
            return tuple((int(v), int(v)) for v in value)
        if len(value) == rank and all(isinstance(p, (tuple, list)) and len(p) == 2 and
                                      all(ok(v) for v in p) for p in value):
            return tuple((int(p[0]), int(p[1])) for p in value)
    raise ValueError(f"{owner}: {name} must be an int >= 0, a tuple of {rank} ints or "
                     f"{rank} (lo, hi) pairs, received {value!r}")


class _Spatial(Layer):
    rank = 1

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.ndim = self.rank + 2

    def _dims_hint(self):
        return f": (batch, channels, {('L', 'H, W', 'D, H, W')[self.rank - 1]})"


class _UpSampling(_Spatial):
    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        self.size = expand_tuple(type(self).__name__, "size", size, self.rank, 1)

    def compute_output_shape(self, s):
        return tuple(s[:2]) + tuple(None if d is None else d * k
                                    for d, k in zip(s[2:], self.size))

    def call(self, x, training=False):
        return E.upsample(x, self.size)

    def receptive_field(self, rf, jump):
        if rf is None:
            return None
        return rf, tuple(j / k for j, k in zip(jump, self.size))

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class UpSampling1D(_UpSampling):
    """Repeat each step ``size`` times: (N, C, L) -> (N, C, L * size).

    >>> import numpy as np
    >>> UpSampling1D(2)(np.ones((1, 1, 3), np.float32)).shape
    (1, 1, 6)
    """
    rank = 1


class UpSampling2D(_UpSampling):
    """Nearest-neighbour upsampling: (N, C, H, W) -> (N, C, H * s0, W * s1).

    >>> import numpy as np
    >>> UpSampling2D((2, 3))(np.ones((1, 1, 2, 2), np.float32)).shape
    (1, 1, 4, 6)
    """
    rank = 2


class UpSampling3D(_UpSampling):
    """Nearest-neighbour upsampling of (N, C, D, H, W).

    >>> import numpy as np
    >>> UpSampling3D(2)(np.ones((1, 1, 1, 2, 2), np.float32)).shape
    (1, 1, 2, 4, 4)
    """
    rank = 3


class _ZeroPadding(_Spatial):
    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pairs(type(self).__name__, "padding", padding, self.rank)

    def compute_output_shape(self, s):
        return tuple(s[:2]) + tuple(None if d is None else d + lo + hi
                                    for d, (lo, hi) in zip(s[2:], self.padding))

    def call(self, x, training=False):
        return F.pad(x, ((0, 0), (0, 0)) + self.padding)

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}


class ZeroPadding1D(_ZeroPadding):
    """Zeros added at both ends of L: padding = int or (left, right).

    >>> import numpy as np
    >>> ZeroPadding1D((1, 2))(np.ones((1, 1, 3), np.float32)).shape
    (1, 1, 6)
    """
    rank = 1


class ZeroPadding2D(_ZeroPadding):
    """Zero rows and columns: padding = int, (sym_h, sym_w) or ((top, bottom), (left, right)).

    >>> import numpy as np
    >>> ZeroPadding2D(1)(np.ones((1, 1, 3, 3), np.float32)).shape
    (1, 1, 5, 5)
    """
    rank = 2


class ZeroPadding3D(_ZeroPadding):
    """Zero padding of (N, C, D, H, W); padding as ZeroPadding2D with three dims.

    >>> import numpy as np
    >>> ZeroPadding3D(1)(np.ones((1, 1, 1, 1, 1), np.float32)).shape
    (1, 1, 3, 3, 3)
    """
    rank = 3


class _Cropping(_Spatial):
    def __init__(self, cropping=1, **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pairs(type(self).__name__, "cropping", cropping, self.rank)

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        for d, (lo, hi) in zip(shape[2:], self.cropping):
            if d is not None and lo + hi >= d:
                raise ValueError(f"{self.describe()}: cropping {self.cropping} leaves nothing "
                                 f"of input shape {tuple(shape)}")

    def compute_output_shape(self, s):
        return tuple(s[:2]) + tuple(None if d is None else d - lo - hi
                                    for d, (lo, hi) in zip(s[2:], self.cropping))

    def call(self, x, training=False):
        index = (slice(None), slice(None)) + tuple(slice(lo, d - hi) for d, (lo, hi) in
                                                   zip(x.shape[2:], self.cropping))
        return F.getitem(x, index)

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping]}


class Cropping1D(_Cropping):
    """Remove steps from both ends of L: cropping = int or (left, right).

    >>> import numpy as np
    >>> Cropping1D((1, 2))(np.ones((1, 1, 6), np.float32)).shape
    (1, 1, 3)
    """
    rank = 1


class Cropping2D(_Cropping):
    """Remove rows/columns: cropping = int, (sym_h, sym_w) or ((top, bottom), (left, right)).

    >>> import numpy as np
    >>> Cropping2D(((1, 0), (0, 2)))(np.ones((1, 1, 4, 4), np.float32)).shape
    (1, 1, 3, 2)
    """
    rank = 2


class Cropping3D(_Cropping):
    """Cropping of (N, C, D, H, W).

    >>> import numpy as np
    >>> Cropping3D(1)(np.ones((1, 1, 3, 3, 3), np.float32)).shape
    (1, 1, 1, 1, 1)
    """
    rank = 3


class Permute(Layer):
    """Permute the non-batch dims: ``dims`` is a permutation of 1..ndim-1 (Keras indexing).

    >>> import numpy as np
    >>> Permute((2, 1))(np.ones((4, 2, 3), np.float32)).shape
    (4, 3, 2)
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else dims
        if not isinstance(dims, tuple) or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..n over the n non-batch "
                             f"dims (the batch dim 0 excluded), received {dims!r}")
        self.dims = tuple(int(d) for d in dims)
        self.ndim = len(self.dims) + 1

    def compute_output_shape(self, s):
        return (s[0],) + tuple(s[d] for d in self.dims)

    def call(self, x, training=False):
        return F.transpose(x, (0,) + self.dims)

    def receptive_field(self, rf, jump):
        return None

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """(N, F) -> (N, n, F).

    >>> import numpy as np
    >>> RepeatVector(3)(np.ones((2, 4), np.float32)).shape
    (2, 3, 4)
    """

    ndim = 2

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if not is_int(n) or n < 1:
            raise ValueError(f"RepeatVector: n must be an int >= 1, received {n!r}")
        self.n = int(n)

    def compute_output_shape(self, s):
        return (s[0], self.n, s[1])

    def call(self, x, training=False):
        return E.repeat_vector(x, self.n)

    def receptive_field(self, rf, jump):
        return None

    def get_config(self):
        return {**super().get_config(), "n": self.n}
