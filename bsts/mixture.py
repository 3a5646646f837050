r"""Equal-weight Gaussian mixtures: the exact posterior predictive of a linear-Gaussian model.

Given the parameters of posterior draw $i$ ($i = 1..n$), the Kalman filter gives the
predictive of a future observation in closed form, $\mathcal N(\mu_i, \sigma_i^2)$. The
posterior predictive is their equal-weight mixture,

$$
F(x) = \frac1n \sum_{i=1}^n \Phi\!\left(\frac{x - \mu_i}{\sigma_i}\right),
$$

so its mean, quantiles and scores can be computed without simulating observations: the
Monte Carlo error of a handful of simulated paths per draw (which the horizon's correlated
slope draws turn into a drift of the whole band) is gone, and only the posterior draws
themselves remain random.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float
from scipy import special

__all__ = ["check_components", "mixture_cdf", "mixture_quantiles", "mixture_sd"]

# Bisection halves the bracket each step: 64 halvings shrink a bracket of 80 sd to about
# 4e-18 sd, below float64 resolution.
_BISECTIONS = 64


def check_components(
    means: Float[np.ndarray, "n T"], sds: Float[np.ndarray, "n T"]
) -> tuple[np.ndarray, np.ndarray]:
    """Validated float copies of the components' means and standard deviations.

    Raises:
        ValueError: the shapes differ or are not `(n, T)`, an sd is not positive, or a value
            is not finite.
    """
    means, sds = np.asarray(means, dtype=float), np.asarray(sds, dtype=float)
    if means.ndim != 2 or means.shape != sds.shape:
        raise ValueError(
            f"means and sds must both have shape (n, T), got {means.shape} and {sds.shape}"
        )
    if means.shape[0] < 1:
        raise ValueError("a mixture needs at least one component")
    if not (np.all(np.isfinite(means)) and np.all(np.isfinite(sds))):
        raise ValueError("mixture means and sds must be finite")
    if np.any(sds <= 0):
        raise ValueError("mixture sds must be positive")
    return means, sds


def mixture_cdf(
    means: Float[np.ndarray, "n T"], sds: Float[np.ndarray, "n T"], x: Float[np.ndarray, "... T"]
) -> Float[np.ndarray, "... T"]:
    """$F(x)$ per step, for points `x` broadcast against the steps (last axis)."""
    means, sds = check_components(means, sds)
    return _cdf(means, sds, np.asarray(x, dtype=float))


def mixture_sd(
    means: Float[np.ndarray, "n T"], sds: Float[np.ndarray, "n T"]
) -> Float[np.ndarray, " T"]:
    r"""The mixture's standard deviation per step, by the law of total variance.

    $$
    \operatorname{Var} = \frac1n \sum_i \sigma_i^2 + \frac1n \sum_i (\mu_i - \bar\mu)^2 .
    $$
    """
    means, sds = check_components(means, sds)
    return np.sqrt(np.mean(sds**2, axis=0) + np.var(means, axis=0))


def _cdf(means, sds, x):
    return special.ndtr((x[..., None, :] - means) / sds).mean(axis=-2)


def mixture_quantiles(
    means: Float[np.ndarray, "n T"], sds: Float[np.ndarray, "n T"], probs
) -> Float[np.ndarray, "P T"]:
    """Quantiles of the mixture per step, by bisection on its CDF.

    Args:
        means: component means, one row per posterior draw.
        sds: component standard deviations, same shape.
        probs: probabilities in (0, 1).

    Returns:
        `(len(probs), T)` quantiles.

    Raises:
        ValueError: a probability is outside (0, 1), or the components are invalid.
    """
    means, sds = check_components(means, sds)
    probs = np.atleast_1d(np.asarray(probs, dtype=float))
    if probs.ndim != 1 or not np.all((probs > 0) & (probs < 1)):
        raise ValueError(f"probabilities must lie in (0, 1), got {probs}")
    # Every component puts less than Phi(-40) below its mean - 40 sd, so the mixture's
    # quantile of any probability representable here lies inside this bracket.
    low = np.broadcast_to((means - 40 * sds).min(axis=0), (probs.size, means.shape[1])).copy()
    high = np.broadcast_to((means + 40 * sds).max(axis=0), low.shape).copy()
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        below = _cdf(means, sds, middle) < probs[:, None]
        low = np.where(below, middle, low)
        high = np.where(below, high, middle)
    return 0.5 * (low + high)
