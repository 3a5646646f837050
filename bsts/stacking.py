r"""Weights of candidate models from their pointwise out-of-sample log predictive densities.

Given $\ell_{ik} = \log p_k(y_i \mid \text{past})$, the log predictive density of held-out
point $i$ under candidate $k$ (here from leave-future-out refits, `bsts.auto`), three
rules turn the matrix into weights on the simplex:

- **Stacking** (Yao, Vehtari, Simpson & Gelman, 2018) maximises the log score of the
  weighted mixture of the predictive distributions,

  $$
  \hat w = \arg\max_{w \in \Delta} \sum_i \log \sum_k w_k\, e^{\ell_{ik}} .
  $$

  The objective is concave in $w$. It is maximised by the EM fixed point
  $w_k \leftarrow w_k \frac1n \sum_i e^{\ell_{ik}} / \sum_j w_j e^{\ell_{ij}}$ (the
  update of mixture proportions with the components held fixed), which stays on the
  simplex and never decreases the objective.
- **Pseudo-BMA** weights each candidate by its total predictive density,
  $w_k \propto \exp \sum_i \ell_{ik}$; **pseudo-BMA+** averages those weights over
  Bayesian-bootstrap reweightings of the points, which tempers the near one-hot weights
  that small differences in a few points give.
- **Best** puts all the weight on the candidate with the highest total.

Stacking can share weight between candidates that are each wrong in different ways;
the two others pick (nearly) one candidate when the data favour it at all.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float
from scipy import special

__all__ = ["WEIGHTINGS", "best_weights", "pseudo_bma_weights", "stacking_weights", "weights"]

WEIGHTINGS = ("stacking", "pseudo_bma", "best")

_MAX_ITERATIONS = 10_000
_TOLERANCE = 1e-10
_BOOTSTRAP_DRAWS = 1000


def _checked(lpd) -> np.ndarray:
    lpd = np.asarray(lpd, dtype=float)
    if lpd.ndim != 2 or lpd.shape[0] < 1 or lpd.shape[1] < 1:
        raise ValueError(
            f"pointwise log densities must be a (points, candidates) matrix, got shape {lpd.shape}"
        )
    if np.isnan(lpd).any() or np.isposinf(lpd).any():
        raise ValueError("pointwise log densities must not be NaN or +inf")
    if np.isneginf(lpd).all(axis=1).any():
        raise ValueError("a point has log density -inf under every candidate")
    return lpd


def stacking_weights(lpd: Float[np.ndarray, "n k"]) -> Float[np.ndarray, " k"]:
    """Stacking weights of the candidates' predictive distributions.

    Args:
        lpd: `(points, candidates)` pointwise log predictive densities.

    Returns:
        `(candidates,)` non-negative weights summing to 1.
    """
    lpd = _checked(lpd)
    # Scaling each point's densities by a common factor leaves the maximiser unchanged.
    density = np.exp(lpd - lpd.max(axis=1, keepdims=True))
    k = lpd.shape[1]
    w = np.full(k, 1.0 / k)
    for _ in range(_MAX_ITERATIONS):
        mixture = density @ w
        updated = w * (density / mixture[:, None]).mean(axis=0)
        updated /= updated.sum()
        if np.max(np.abs(updated - w)) < _TOLERANCE:
            w = updated
            break
        w = updated
    return w


def pseudo_bma_weights(
    lpd: Float[np.ndarray, "n k"], bootstrap: bool = True, seed: int = 0
) -> Float[np.ndarray, " k"]:
    """Pseudo-BMA weights, by default with the Bayesian bootstrap (pseudo-BMA+).

    Args:
        lpd: `(points, candidates)` pointwise log predictive densities.
        bootstrap: average over Bayesian-bootstrap draws of the points' weights.
        seed: seed of the bootstrap.

    Returns:
        `(candidates,)` non-negative weights summing to 1.
    """
    lpd = _checked(lpd)
    n = lpd.shape[0]
    if not bootstrap:
        return special.softmax(lpd.sum(axis=0))
    alpha = np.random.default_rng(seed).dirichlet(np.ones(n), size=_BOOTSTRAP_DRAWS)
    return special.softmax(n * alpha @ lpd, axis=1).mean(axis=0)


def best_weights(lpd: Float[np.ndarray, "n k"]) -> Float[np.ndarray, " k"]:
    """All the weight on the candidate with the highest total log predictive density."""
    lpd = _checked(lpd)
    w = np.zeros(lpd.shape[1])
    w[int(np.argmax(lpd.sum(axis=0)))] = 1.0
    return w


def weights(lpd: Float[np.ndarray, "n k"], rule: str) -> Float[np.ndarray, " k"]:
    """The weights of one of the `WEIGHTINGS` rules."""
    if rule == "stacking":
        return stacking_weights(lpd)
    if rule == "pseudo_bma":
        return pseudo_bma_weights(lpd)
    if rule == "best":
        return best_weights(lpd)
    raise ValueError(f"unknown weighting {rule!r}; choose one of {', '.join(WEIGHTINGS)}")
