r"""Products with the transition matrix that exploit its sparsity when it is known.

Structural models have very sparse transitions: a local linear trend is a 2×2 upper
triangle, a dummy seasonal a companion matrix (one dense row, then a shift). When $F$ is a
concrete array at trace time (not a traced parameter), $F X$ is written out row by row over
its non-zeros, which XLA fuses into one loop: $O(\mathrm{nnz} \cdot d)$ work instead of
$O(d^3)$. A traced or dense $F$ uses ordinary matrix products.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["Transition"]

# Row-by-row products beat a dense dot only when most entries are zero.
_MAX_DENSITY = 0.25


class Transition:
    r"""Left products with $F$ and $F^\top$.

    Args:
        F: the transition matrix `(d, d)`. If it is concrete and sparse, its values are
            captured now and the products ignore the `F` passed to them later.
    """

    def __init__(self, F):
        self.values: np.ndarray | None = None
        if not isinstance(F, jax.core.Tracer):
            values = np.asarray(F)
            if np.count_nonzero(values) <= _MAX_DENSITY * values.size:
                self.values = values

    @property
    def is_static(self) -> bool:
        """Whether products use the captured sparse values."""
        return self.values is not None

    def apply(self, F: Float[Array, "d d"], X: Float[Array, "d ..."]) -> Float[Array, "d ..."]:
        """$F X$ for a vector or matrix X."""
        return F @ X if self.values is None else _sparse_left(self.values, X)

    def apply_transposed(
        self, F: Float[Array, "d d"], X: Float[Array, "d ..."]
    ) -> Float[Array, "d ..."]:
        r"""$F^\top X$ for a vector or matrix X."""
        return F.T @ X if self.values is None else _sparse_left(self.values.T, X)

    def sandwich(self, F: Float[Array, "d d"], X: Float[Array, "d d"]) -> Float[Array, "d d"]:
        r"""$F X F^\top$."""
        return self.apply(F, self.apply(F, X).T).T

    def sandwich_transposed(
        self, F: Float[Array, "d d"], X: Float[Array, "d d"]
    ) -> Float[Array, "d d"]:
        r"""$F^\top X F$."""
        return self.apply_transposed(F, self.apply_transposed(F, X).T).T


def _sparse_left(values: np.ndarray, X):
    rows = []
    for row in values:
        terms = []
        for k in np.flatnonzero(row):
            coefficient = float(row[k])
            if coefficient == 1.0:
                terms.append(X[k])
            elif coefficient == -1.0:
                terms.append(-X[k])
            else:
                terms.append(coefficient * X[k])
        rows.append(sum(terms[1:], terms[0]) if terms else jnp.zeros_like(X[0]))
    return jnp.stack(rows)
