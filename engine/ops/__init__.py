"""Differentiable ops, one module per family.

Each module keeps an op's shape rule, forward and backward side by side.  Forward keeps only
what backward needs; backward returns None for inputs that need no gradient.  User-facing
entry points are re-exported by :mod:`engine.functional`.
"""
from . import (activation, conv, dropout, elementwise, linear, loss, norm, pool, reduce,
               shape)

__all__ = ["activation", "conv", "dropout", "elementwise", "linear", "loss", "norm", "pool",
           "reduce", "shape"]
