"""Per-draw computations over long series in chunks of draws, in bounded memory.

A filter or smoother over T steps holds a few `(T, d, d)` buffers per posterior draw. Mapped
over all draws at once (`jax.vmap`), 300 draws of a state of size 7 over 10^5 steps need
several such buffers of 5.9 GB each. `vmap_in_chunks` maps the draws in chunks whose
buffers stay near `CHUNK_ELEMENTS` numbers (`jax.lax.map` with a batch size: a loop over
chunks, each vectorised), and is a plain `jax.vmap` whenever all draws fit in one chunk, as
they do for the short series most models see.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

__all__ = ["CHUNK_ELEMENTS", "chunk_size", "vmap_in_chunks"]

# 2^24 numbers: 64 MB per buffer in float32. A chunk's computation holds a handful of such
# buffers (filtered and predicted covariances, their gradients' residuals), so its peak
# stays in the low hundreds of MB whatever the series' length.
CHUNK_ELEMENTS = 2**24


def chunk_size(count: int, elements_per_item: int) -> int:
    """How many items one chunk maps: all of them when they fit in `CHUNK_ELEMENTS`."""
    return max(1, min(count, CHUNK_ELEMENTS // max(int(elements_per_item), 1)))


def vmap_in_chunks(fn: Callable, *args, elements_per_item: int):
    """`jax.vmap(fn)(*args)` over the leading axis of every argument, in chunks.

    Args:
        fn: the per-item function.
        *args: pytrees whose leaves share a leading item axis.
        elements_per_item: the size of one item's largest per-time buffers, in numbers
            (about `T * d**2` for a filter over T steps with a state of size d).

    Returns:
        `fn`'s outputs stacked over the items, as `jax.vmap` would return them.
    """
    count = jax.tree_util.tree_leaves(args)[0].shape[0]
    size = chunk_size(count, elements_per_item)
    if size >= count:
        return jax.vmap(fn)(*args)
    return jax.lax.map(lambda item: fn(*item), args, batch_size=size)
