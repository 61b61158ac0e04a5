"""Prepared weights: a strategy's transform of a weight (FFT spectrum, Winograd's G g G^T),
computed once and reused while the weight stays the same.

Two forms go to ``prepared=`` of kernels.conv / conv_grad_input:

* :class:`Prepared`, one handle from :func:`kernels.prepare` for one pass, strategy, backend,
  shapes, parameters and dtype;
* :class:`PreparedCache`, which a caller keeps per weight (an engine layer, per weight
  version): kernels fills it on first use with whatever strategy the call selects, and the
  caller clears it (:meth:`PreparedCache.sync` with a new version) when the weight changes.

Nothing here can see an in-place edit of the weight: keeping a handle or a cache is the
caller's promise that the weight has not changed.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Prepared", "PreparedCache"]


@dataclass(frozen=True, eq=False)
class Prepared:
    """A weight prepared for one pass (see :func:`kernels.prepare`).

    strategy, backend: the pair the pass selected when it was made; pass_: "fwd" or
    "grad_input"; key: (x shape 5-D, w shape 5-D, 3-D ConvParams, dtype name); payload: the
    strategy's prepared weight (None for strategies with nothing to prepare).
    """
    strategy: str
    backend: str
    pass_: str
    key: tuple
    payload: object


class PreparedCache:
    """Prepared weights of one weight array, keyed by strategy, backend, pass, shapes,
    parameters and dtype; kept while the weight stays the same.

    Parameters
    ----------
    max_entries : int
        Distinct keys kept (input shapes differ, e.g. the last batch of an epoch); the oldest
        is dropped beyond it.

    Examples
    --------
    >>> import numpy as np, kernels
    >>> cache = kernels.PreparedCache()
    >>> x = np.ones((2, 16, 12, 12), np.float32); w = np.ones((16, 16, 3, 3), np.float32)
    >>> y = kernels.conv(x, w, strategy="winograd", prepared=cache.sync(0))
    >>> y = kernels.conv(x, w, strategy="winograd", prepared=cache.sync(0))
    >>> cache.misses, cache.hits
    (1, 1)
    >>> len(cache.sync(1))                  # a new weight version drops what was prepared
    0
    """

    MISS = object()

    def __init__(self, max_entries=8):
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"PreparedCache: max_entries must be a positive int, received "
                             f"{max_entries!r}")
        self.max_entries = max_entries
        self.version = None
        self.hits = 0
        self.misses = 0
        self._entries = {}

    def sync(self, version):
        """This cache for weight ``version`` (any hashable): everything prepared for another
        version is dropped first.  Returns self."""
        if version != self.version:
            self._entries.clear()
            self.version = version
        return self

    def clear(self):
        """Drop every prepared weight (the weight changed)."""
        self._entries.clear()

    def lookup(self, key):
        """The payload stored under ``key``, or :attr:`MISS`."""
        hit = self._entries.get(key, self.MISS)
        if hit is self.MISS:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def store(self, key, payload):
        """Keep ``payload`` under ``key`` (dropping the oldest beyond max_entries)."""
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = payload
        return payload

    def __len__(self):
        return len(self._entries)

    def __repr__(self):
        return (f"PreparedCache(version={self.version!r}, entries={len(self)}, "
                f"hits={self.hits}, misses={self.misses})")
