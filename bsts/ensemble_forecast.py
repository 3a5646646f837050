r"""The forecast of a weighted ensemble: an exact mixture of Normal and log-Normal parts.

Each candidate $k$ of an ensemble forecasts with its own equal-weight mixture of its draws'
Normal predictives $\mathcal N(\mu_{ki}, \sigma_{ki}^2)$ (`bsts.mixture`), on the original
scale or, for a candidate fitted to $\log y$, on the log scale, where the same Normal is a
log-Normal for $y$. With the candidates' weights $w_k$ the predictive CDF is

$$
F(x) = \sum_k \frac{w_k}{n_k} \sum_i \Phi\!\left(\frac{g_k(x) - \mu_{ki}}{\sigma_{ki}}\right),
\qquad g_k(x) = x \text{ or } \log x \; (x > 0),
$$

so quantiles come from bisection on $F$, the mean and variance from the parts' moments
($e^{\mu + \sigma^2/2}$ and $e^{2\mu + 2\sigma^2}$ for a log-Normal), and the CRPS from
$\int (F(x) - \mathbb 1\{x \ge y\})^2\,dx$ by quadrature. Nothing is sampled, except the
`draws` kept for plots and for code that wants paths, and a Student-t candidate's noise
weights: its draw $i$ is the Normal $\mathcal N(\mu_i, s_i^2 + \sigma_i^2 / \lambda_i)$ with
$\lambda_i$ at a stratified quantile of its Gamma law (`Forecast.components`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float
from scipy import special

from bsts.forecast import Forecast

__all__ = ["EnsembleForecast", "MixturePart"]

_BISECTIONS = 80
_BRACKET_SDS = 12.0  # Phi(-12) is about 2e-33: no probability used here lies beyond
_QUADRATURE_POINTS = 801
_TAIL = 1e-6


@dataclass(frozen=True)
class MixturePart:
    r"""One candidate's share of an ensemble forecast.

    Attributes:
        weight: the candidate's weight.
        means: `(draws, horizon)` its draws' predictive means (log scale if `log`).
        sds: `(draws, horizon)` their predictive sds.
        log: whether the Normal parts are for $\log y$.
    """

    weight: float
    means: np.ndarray
    sds: np.ndarray
    log: bool = False

    @classmethod
    def of(cls, weight: float, prediction: Forecast, log: bool = False) -> MixturePart:
        """The part of a candidate's forecast, as an equal-weight Normal mixture.

        Its exact Normal mixture; for noise that is a scale mixture (Student-t), the
        mixture over draws and latent weights (`Forecast.components`).
        """
        if prediction.exact:
            return cls(float(weight), prediction.draw_means, prediction.draw_sds, log)
        if prediction.components is None:
            raise ValueError(
                "an ensemble needs its candidates' predictives as Normal mixtures "
                "(Gaussian or Student-t observations)"
            )
        means, sds = prediction.components
        return cls(float(weight), means, sds, log)

    def cdf(self, x: Float[np.ndarray, "... T"]) -> Float[np.ndarray, "... T"]:
        """This part's CDF at `x` (broadcast against the steps), not weighted."""
        if self.log:
            positive = x > 0
            z = np.log(np.where(positive, x, 1.0))
            inside = special.ndtr((z[..., None, :] - self.means) / self.sds).mean(axis=-2)
            return np.where(positive, inside, 0.0)
        return special.ndtr((x[..., None, :] - self.means) / self.sds).mean(axis=-2)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """The mean and second moment per step."""
        if self.log:
            first = np.exp(self.means + 0.5 * self.sds**2).mean(axis=0)
            second = np.exp(2 * self.means + 2 * self.sds**2).mean(axis=0)
            return first, second
        return self.means.mean(axis=0), (self.means**2 + self.sds**2).mean(axis=0)

    def bracket(self) -> tuple[np.ndarray, np.ndarray]:
        """Per step, points below and above (nearly) all of this part's mass."""
        low = (self.means - _BRACKET_SDS * self.sds).min(axis=0)
        high = (self.means + _BRACKET_SDS * self.sds).max(axis=0)
        if self.log:
            return np.exp(low), np.exp(np.minimum(high, 700.0))
        return low, high


@dataclass(frozen=True)
class EnsembleForecast(Forecast):
    """The predictive of a weighted ensemble: a `Forecast` whose summaries use its parts.

    Attributes:
        draws: `(num_draws, horizon)` observations drawn from the mixture (each candidate
            contributes draws in proportion to its weight), for plots.
        index: the future time index.
        history: the series in original units.
        parts: the candidates' shares (weights summing to 1).
    """

    parts: tuple[MixturePart, ...] = ()

    @property
    def exact(self) -> bool:
        """Always true: summaries use the mixture itself, not the draws."""
        return True

    def cdf(self, x) -> np.ndarray:
        """The predictive CDF at `x`, broadcast against the future steps (last axis)."""
        x = np.asarray(x, dtype=float)
        return sum(part.weight * part.cdf(x) for part in self.parts)

    def mean(self) -> np.ndarray:
        """The predictive mean per future step."""
        return sum(part.weight * part.moments()[0] for part in self.parts)

    def sd(self) -> np.ndarray:
        """The predictive standard deviation per future step."""
        second = sum(part.weight * part.moments()[1] for part in self.parts)
        return np.sqrt(np.maximum(second - self.mean() ** 2, 0.0))

    def quantiles(self, probs) -> np.ndarray:
        """`(len(probs), horizon)` predictive quantiles, by bisection on the CDF."""
        probs = np.atleast_1d(np.asarray(probs, dtype=float))
        if probs.ndim != 1 or not np.all((probs > 0) & (probs < 1)):
            raise ValueError(f"probabilities must lie in (0, 1), got {probs}")
        brackets = [part.bracket() for part in self.parts]
        low = np.min([b[0] for b in brackets], axis=0)
        high = np.max([b[1] for b in brackets], axis=0)
        low = np.broadcast_to(low, (probs.size, low.size)).copy()
        high = np.broadcast_to(high, low.shape).copy()
        for _ in range(_BISECTIONS):
            middle = 0.5 * (low + high)
            below = self.cdf(middle) < probs[:, None]
            low = np.where(below, middle, low)
            high = np.where(below, high, middle)
        return 0.5 * (low + high)

    def crps(self, actual) -> np.ndarray:
        r"""CRPS per future step: $\int (F(x) - 1\{x \ge y\})^2 dx$ by quadrature.

        The integral runs between the $10^{-6}$ and $1 - 10^{-6}$ quantiles (beyond
        them the integrand is below $10^{-12}$), split at the outcome, by the trapezoid
        rule on 801 evenly spaced points each side merged with 801 geometrically spaced
        ones (a log-Normal part's right tail spans orders of magnitude, where even
        spacing would leave its bulk with a handful of points); an outcome outside that
        range adds its distance.
        """
        y = np.asarray(actual, dtype=float)
        lo, hi = self.quantiles([_TAIL, 1 - _TAIL])
        t = np.linspace(0.0, 1.0, _QUADRATURE_POINTS)[:, None]

        def integral(a, b, below):
            even = a + t * np.maximum(b - a, 0.0)
            # Geometric nodes over the positive part of [a, b] (none when b <= 0).
            start = np.where(a > 0, a, np.maximum(b, 1.0) * 1e-6)
            ratio = np.where(b > start, b / np.where(b > start, start, 1.0), 1.0)
            geometric = np.where(b > start, start * ratio**t, even)
            x = np.sort(np.concatenate([even, geometric]), axis=0)
            F = self.cdf(x)
            values = F**2 if below else (1 - F) ** 2
            return np.trapezoid(values, x=x, axis=0)

        inside_low = integral(lo, np.clip(y, lo, hi), below=True)
        inside_high = integral(np.clip(y, lo, hi), hi, below=False)
        outside = np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0)
        return inside_low + inside_high + outside
