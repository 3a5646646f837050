r"""Scores for probabilistic forecasts: CRPS and interval coverage.

The continuous ranked probability score of a predictive distribution $F$ at the outcome $y$,

$$
\mathrm{CRPS}(F, y) = \mathbb E_F |X - y| - \tfrac12 \mathbb E_F |X - X'|,
$$

is estimated from $n$ draws without bias by replacing the second expectation with the mean
over distinct pairs. For a Normal predictive it has the closed form
$\sigma\,[z (2\Phi(z) - 1) + 2\varphi(z) - 1/\sqrt\pi]$ with $z = (y - \mu)/\sigma$. Lower is
better; it has the units of $y$.

For an equal-weight mixture of Normals $\mathcal N(\mu_i, \sigma_i^2)$, $i = 1..n$ (the exact
posterior predictive of a linear-Gaussian model, one component per posterior draw), both
expectations are sums of $\mathbb E|Z|$ for Normal $Z$,
$\mathbb E|\mathcal N(m, s^2)| = 2 s \varphi(m/s) + m\,(2\Phi(m/s) - 1)$:

$$
\mathrm{CRPS} = \frac1n \sum_i \mathbb E|\mathcal N(\mu_i - y, \sigma_i^2)|
- \frac1{2n^2} \sum_{i,j} \mathbb E|\mathcal N(\mu_i - \mu_j, \sigma_i^2 + \sigma_j^2)| .
$$
"""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import Float
from scipy import special, stats

from bsts.mixture import check_components

__all__ = ["coverage", "crps_from_draws", "crps_gaussian_mixture", "crps_normal"]

# Pairs evaluated at once in the mixture's double sum (bounds the temporary arrays).
_PAIR_BLOCK = 2**22


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


def _mean_abs_normal(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    r"""$\mathbb E|Z|$ for $Z \sim \mathcal N(m, s^2)$, elementwise."""
    z = m / s
    density = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    return 2.0 * s * density + m * (2.0 * special.ndtr(z) - 1.0)


def crps_gaussian_mixture(
    means: Float[np.ndarray, "n T"], sds: Float[np.ndarray, "n T"], y: Float[np.ndarray, " T"]
) -> Float[np.ndarray, " T"]:
    """CRPS per step of equal-weight Normal mixtures (closed form, no sampling).

    Args:
        means: component means, one row per component (posterior draw).
        sds: component standard deviations, same shape.
        y: the outcomes; NaN gives NaN.

    Returns:
        The CRPS of each step. The cost is about $n^2 T / 2$ Normal CDF evaluations, so for
        many thousands of draws a subset of them (`forecast(num_samples=...)`) is cheaper.

    Raises:
        ValueError: shapes disagree, or an sd is not positive.
    """
    y = _as_outcomes(y)
    means, sds = check_components(means, sds)
    if means.shape[1] != y.shape[0]:
        raise ValueError(f"means and sds must have shape (n, {y.shape[0]}), got {means.shape}")
    n = means.shape[0]
    accuracy = _mean_abs_normal(means - y, sds).mean(axis=0)
    variances = sds**2
    # The double sum is symmetric: the diagonal (E|N(0, 2 s^2)| = 2 s / sqrt(pi)) once, and
    # each pair i < j twice. Row blocks bound the temporaries.
    pairs = (2.0 / math.sqrt(math.pi)) * sds.sum(axis=0)
    rows = max(1, _PAIR_BLOCK // (n * means.shape[1]))
    for start in range(0, n - 1, rows):
        stop = min(start + rows, n - 1)
        later = slice(start + 1, n)
        difference = means[start:stop, None, :] - means[None, later, :]
        spread = np.sqrt(variances[start:stop, None, :] + variances[None, later, :])
        # Row start + k pairs with columns start + 1 + c for c >= k only.
        upper = np.arange(n - start - 1)[None, :] >= np.arange(stop - start)[:, None]
        terms = _mean_abs_normal(difference, spread) * upper[:, :, None]
        pairs += 2.0 * terms.sum(axis=(0, 1))
    return accuracy - 0.5 * pairs / n**2


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
