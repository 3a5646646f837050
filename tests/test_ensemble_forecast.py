"""The exact mixture forecast of an ensemble (`bsts.ensemble_forecast`)."""

import numpy as np
import pandas as pd
import pytest

from bsts.ensemble_forecast import EnsembleForecast, MixturePart
from bsts.metrics import crps_from_draws, crps_gaussian_mixture

H = 3


def _forecast(parts):
    return EnsembleForecast(np.zeros((1, H)), pd.RangeIndex(H), parts=tuple(parts))


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.default_rng(1)
    normal = MixturePart(0.3, rng.normal(10, 1, (50, H)), rng.uniform(0.5, 1.5, (50, H)))
    lognormal = MixturePart(
        0.7, rng.normal(np.log(12), 0.05, (40, H)), rng.uniform(0.05, 0.2, (40, H)), log=True
    )
    return _forecast([normal, lognormal])


def _sample(forecast, size, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for part in forecast.parts:
        n = round(part.weight * size)
        rows = rng.integers(0, part.means.shape[0], size=n)
        z = rng.normal(part.means[rows], part.sds[rows])
        out.append(np.exp(z) if part.log else z)
    return np.concatenate(out)


def test_quantiles_equal_those_of_a_sampled_mixture(mixed):
    draws = _sample(mixed, 400_000)
    probs = [0.025, 0.2, 0.5, 0.8, 0.975]
    exact = mixed.quantiles(probs)
    sampled = np.quantile(draws, probs, axis=0)
    np.testing.assert_allclose(exact, sampled, rtol=2e-3)
    np.testing.assert_allclose(mixed.cdf(exact), np.array(probs)[:, None] * np.ones(H), atol=1e-9)


def test_moments_equal_those_of_a_sampled_mixture(mixed):
    draws = _sample(mixed, 400_000, seed=2)
    np.testing.assert_allclose(mixed.mean(), draws.mean(axis=0), rtol=2e-3)
    np.testing.assert_allclose(mixed.sd(), draws.std(axis=0), rtol=5e-3)


def test_crps_matches_the_closed_form_of_a_normal_mixture():
    rng = np.random.default_rng(3)
    means, sds = rng.normal(0, 1, (30, H)), rng.uniform(0.5, 2, (30, H))
    forecast = _forecast([MixturePart(1.0, means, sds)])
    y = np.array([-3.0, 0.2, 9.0])  # far below, inside, far above
    np.testing.assert_allclose(forecast.crps(y), crps_gaussian_mixture(means, sds, y), rtol=1e-4)


def test_crps_of_a_log_part_matches_draws(mixed):
    y = np.array([11.0, 12.5, 30.0])
    draws = _sample(mixed, 20_000, seed=4)
    np.testing.assert_allclose(mixed.crps(y), crps_from_draws(draws, y), rtol=2e-2)


def test_crps_of_a_wide_log_normal_matches_its_closed_form():
    # Baran & Lerch (2015): CRPS of LN(mu, sigma) at y, z = (log y - mu) / sigma, is
    # y (2 Phi(z) - 1) - 2 exp(mu + sigma^2 / 2) (Phi(z - sigma) + Phi(sigma / sqrt 2) - 1).
    from scipy.stats import norm

    mu, sigma = 2.0, 1.5
    part = MixturePart(1.0, np.full((1, H), mu), np.full((1, H), sigma), log=True)
    y = np.array([0.5, 7.0, 400.0])
    z = (np.log(y) - mu) / sigma
    exact = y * (2 * norm.cdf(z) - 1) - 2 * np.exp(mu + sigma**2 / 2) * (
        norm.cdf(z - sigma) + norm.cdf(sigma / np.sqrt(2)) - 1
    )
    np.testing.assert_allclose(_forecast([part]).crps(y), exact, rtol=1e-3)
