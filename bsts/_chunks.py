"""Per-draw computations over long series in chunks of draws, in bounded memory.

A filter or smoother over T steps holds a few `(T, d, d)` buffers per posterior draw. Mapped
over all draws at once (`jax.vmap`), 300 draws of a state of size 7 over 10^5 steps need
several such buffers of 5.9 GB each. `map_in_chunks` maps the draws in chunks whose
buffers stay near `CHUNK_ELEMENTS` numbers: one compiled `jax.vmap` of a chunk, called
chunk after chunk from Python (the last chunk padded by repeating its final item, so that
one compilation serves all), with each chunk's outputs moved to host memory. It is a
single `jax.vmap` call whenever all draws fit in one chunk, as they do for the short
series most models see.

The loop is in Python rather than a `jax.lax.map` with a batch size: inside one program,
the scan over chunks and the vectorised remainder ran their LAPACK calls side by side, and
XLA's CPU runtime hung on them (the README's `decompose` of CO2, float32).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from bsts._compile import jit

__all__ = ["CHUNK_ELEMENTS", "chunk_size", "map_in_chunks"]

# 2^24 numbers: 64 MB per buffer in float32. A chunk's computation holds a handful of such
# buffers (filtered and predicted covariances, their gradients' residuals), so its peak
# stays in the low hundreds of MB whatever the series' length.
CHUNK_ELEMENTS = 2**24


def chunk_size(count: int, elements_per_item: int) -> int:
    """How many items one chunk maps: all of them when they fit in `CHUNK_ELEMENTS`."""
    return max(1, min(count, CHUNK_ELEMENTS // max(int(elements_per_item), 1)))


def map_in_chunks(fn: Callable, args: tuple, elements_per_item: int):
    """`jax.vmap(fn)(*args)` over the leading axis of every argument, in chunks.

    Args:
        fn: the per-item function (traceable).
        args: pytrees whose leaves share a leading item axis.
        elements_per_item: the size of one item's largest per-time buffers, in numbers
            (about `T * d**2` for a filter over T steps with a state of size d).

    Returns:
        `fn`'s outputs stacked over the items: as `jax.vmap` returns them when one chunk
        holds every item, else as NumPy arrays.
    """
    count = jax.tree_util.tree_leaves(args)[0].shape[0]
    size = chunk_size(count, elements_per_item)
    mapped = jit(jax.vmap(fn))
    if size >= count:
        return mapped(*args)
    pieces = []
    for start in range(0, count, size):
        index = np.minimum(np.arange(start, start + size), count - 1)
        kept = min(size, count - start)
        out = mapped(*jax.tree_util.tree_map(lambda a, i=index: a[i], args))
        pieces.append(jax.tree_util.tree_map(lambda o, k=kept: np.asarray(o[:k]), out))
    return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts), *pieces)
