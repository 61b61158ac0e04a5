"""Functional interface: every differentiable op, taking and returning Tensors.

ndarray (and Python scalar) arguments are wrapped as constant Tensors.  The ops themselves
live in :mod:`engine.ops`, one module per family; this module only gathers them.

Examples
--------
>>> import numpy as np
>>> from engine.tensor import Tensor
>>> from engine import functional as F
>>> x = Tensor(np.random.rand(2, 1, 8, 8).astype(np.float32))
>>> w = Tensor(np.random.rand(4, 1, 3, 3).astype(np.float32), requires_grad=True)
>>> loss = F.cross_entropy(F.linear(F.flatten(F.relu(F.conv2d(x, w))),
...                                Tensor(np.ones((144, 10), np.float32))), np.array([1, 2]))
>>> loss.backward()
>>> w.grad.shape
(4, 1, 3, 3)
"""
from .ops.activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .ops.conv import conv, conv1d, conv2d, conv3d
from .ops.dropout import dropout
from .ops.elementwise import add, div, exp, log, mul, neg, power, sqrt, sub
from .ops.linear import linear, matmul
from .ops.loss import (binary_cross_entropy, categorical_cross_entropy, cross_entropy,
                       mse_loss, sparse_categorical_cross_entropy)
from .ops.norm import batch_norm
from .ops.pool import (avg_pool1d, avg_pool2d, avg_pool3d, global_avg_pool, global_max_pool,
                       global_pool, l2_pool1d, l2_pool2d, l2_pool3d, max_pool1d, max_pool2d,
                       max_pool3d, pool, sum_pool1d, sum_pool2d, sum_pool3d)
from .ops.reduce import max, mean, sum  # noqa: A004 - numpy-style names
from .ops.shape import concat, flatten, getitem, pad, reshape, transpose

__all__ = [
    "conv", "conv1d", "conv2d", "conv3d",
    "pool", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d",
    "avg_pool3d", "sum_pool1d", "sum_pool2d", "sum_pool3d", "l2_pool1d", "l2_pool2d",
    "l2_pool3d", "global_pool", "global_avg_pool", "global_max_pool",
    "linear", "matmul",
    "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "dropout", "batch_norm",
    "add", "sub", "mul", "div", "neg", "power", "exp", "log", "sqrt",
    "sum", "mean", "max",
    "flatten", "reshape", "transpose", "concat", "pad", "getitem",
    "mse_loss", "binary_cross_entropy", "categorical_cross_entropy",
    "sparse_categorical_cross_entropy", "cross_entropy",
]
