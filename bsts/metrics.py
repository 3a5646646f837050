r"""Scores for probabilistic forecasts: CRPS and interval coverage.

The continuous ranked probability score of a predictive distribution $F$ at the outcome $y$,

$$
\mathrm{CRPS}(F, y) = \mathbb E_F |X - y| - \tfrac12 \mathbb E_F |X - X'|,
$$

is estimated from $n$ draws without bias by replacing the second expectation with the mean
over distinct pairs. For a Normal predictive it has the closed form
$\sigma\,[z (2\Phi(z) - 1) + 2\varphi(z) - 1/\sqrt\pi]$ with $z = (y - \mu)/\sigma$. Lower is
better; it has the units of $y$.
"""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import Float
from scipy import stats

__all__ = ["coverage", "crps_from_draws", "crps_normal"]


def _as_outcomes(y) -> np.ndarray:
    outcomes = np.asarray(y, dtype=float)
    if outcomes.ndim != 1:
        raise ValueError(f"outcomes must be 1-D, got shape {outcomes.shape}")
    return outcomes


def crps_from_draws(
    draws: Float[np.ndarray, "n T"], y: Float[np.ndarray, " T"]
) -> Float[np.ndarray, " T"]:
    """CRPS per step from predictive draws (the unbiased pairwise estimator).

    Args:
        draws: predictive draws, one row per draw.
        y: the outcomes; NaN gives NaN.

    Returns:
        The CRPS of each step.

    Raises:
        ValueError: shapes disagree or there are fewer than two draws.
    """
    y = _as_outcomes(y)
    draws = np.asarray(draws, dtype=float)
    if draws.ndim != 2 or draws.shape[1] != y.shape[0]:
        raise ValueError(f"draws must have shape (n, {y.shape[0]}), got {draws.shape}")
    n = draws.shape[0]
    if n < 2:
        raise ValueError("crps_from_draws needs at least two draws")
    accuracy = np.mean(np.abs(draws - y), axis=0)
    # E|X - X'| over distinct pairs, from the sorted draws in O(n log n):
    # sum_{i<j} (x_(j) - x_(i)) = sum_k (2k - n + 1) x_(k), k = 0..n-1.
    ordered = np.sort(draws, axis=0)
    weights = 2.0 * np.arange(n) - n + 1.0
    spread = 2.0 * (weights @ ordered) / (n * (n - 1))
    return accuracy - 0.5 * spread


def crps_normal(
    mean: Float[np.ndarray, " T"], sd: Float[np.ndarray, " T"], y: Float[np.ndarray, " T"]
) -> Float[np.ndarray, " T"]:
    """CRPS per step of Normal predictive distributions (closed form)."""
    y = _as_outcomes(y)
    mean, sd = np.asarray(mean, dtype=float), np.asarray(sd, dtype=float)
    if np.any(sd <= 0):
        raise ValueError("sd must be positive")
    z = (y - mean) / sd
    return sd * (
        z * (2.0 * stats.norm.cdf(z) - 1.0) + 2.0 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi)
    )


def coverage(lower, upper, y) -> float:
    """Fraction of the (non-NaN) outcomes inside their intervals, ends included."""
    y = _as_outcomes(y)
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    if lower.shape != y.shape or upper.shape != y.shape:
        raise ValueError("lower, upper and y must have the same shape")
    known = ~np.isnan(y)
    if not known.any():
        raise ValueError("every outcome is NaN")
    inside = (lower[known] <= y[known]) & (y[known] <= upper[known])
    return float(np.mean(inside))
