"""Convolution strategies: one module each, with the same face (see kernels.registry)."""
