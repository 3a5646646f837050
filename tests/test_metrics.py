"""Forecast scores against closed forms."""

import numpy as np
import pytest
from scipy import integrate

from bsts import metrics
from bsts.metrics import coverage, crps_from_draws, crps_gaussian_mixture, crps_normal
from bsts.mixture import mixture_cdf


def test_crps_from_normal_draws_matches_closed_form(rng):
    mean, sd = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 3.0])
    y = np.array([0.3, 2.0, -2.5])
    draws = mean + sd * rng.normal(size=(40_000, 3))
    # Monte Carlo error of the estimator is about sd / sqrt(n) ~ 0.015 at sd = 3.
    np.testing.assert_allclose(crps_from_draws(draws, y), crps_normal(mean, sd, y), atol=0.03)


def test_crps_of_a_point_mass_is_absolute_error():
    draws = np.full((5, 2), 3.0)
    np.testing.assert_allclose(crps_from_draws(draws, np.array([1.0, 4.5])), [2.0, 1.5])


def test_pairwise_term_matches_brute_force(rng):
    draws = rng.normal(size=(30, 1))
    y = np.array([0.2])
    pairs = np.abs(draws[:, None, 0] - draws[None, :, 0])
    expected = np.mean(np.abs(draws[:, 0] - y)) - 0.5 * pairs.sum() / (30 * 29)
    np.testing.assert_allclose(crps_from_draws(draws, y), [expected], rtol=1e-12)


def test_crps_normal_at_the_mean():
    # z = 0: sd * (2 phi(0) - 1/sqrt(pi)) = sd * (sqrt(2) - 1) / sqrt(pi).
    value = crps_normal(np.zeros(1), np.full(1, 2.0), np.zeros(1))
    np.testing.assert_allclose(value, 2.0 * (np.sqrt(2) - 1) / np.sqrt(np.pi), rtol=1e-12)


def test_mixture_of_one_normal_is_the_normal_closed_form(rng):
    mean, sd, y = rng.normal(size=6), rng.uniform(0.2, 3.0, size=6), rng.normal(size=6)
    for copies in (1, 7):
        value = crps_gaussian_mixture(np.tile(mean, (copies, 1)), np.tile(sd, (copies, 1)), y)
        np.testing.assert_allclose(value, crps_normal(mean, sd, y), rtol=1e-12)


def test_mixture_crps_matches_the_integral_of_its_cdf(rng):
    # Independent reference: CRPS = integral over x of (F(x) - 1{x >= y})^2.
    means = np.concatenate([rng.normal(-1.0, 0.5, (3, 2)), rng.normal(2.0, 0.5, (4, 2))])
    sds = rng.uniform(0.2, 1.5, size=(7, 2))
    y = np.array([0.4, 3.1])
    expected = []
    for t in range(2):

        def squared_gap(x, t=t):
            return (
                mixture_cdf(means[:, t : t + 1], sds[:, t : t + 1], np.array([x]))[0] - (x >= y[t])
            ) ** 2

        lower, upper = means[:, t].min() - 20, means[:, t].max() + 20
        expected.append(
            integrate.quad(squared_gap, lower, upper, points=[y[t]], limit=200, epsabs=1e-12)[0]
        )
    np.testing.assert_allclose(crps_gaussian_mixture(means, sds, y), expected, rtol=1e-8)


def test_mixture_crps_blocks_agree_with_one_pass(rng, monkeypatch):
    means, sds = rng.normal(size=(50, 3)), rng.uniform(0.1, 1.0, size=(50, 3))
    y = rng.normal(size=3)
    whole = crps_gaussian_mixture(means, sds, y)
    monkeypatch.setattr(metrics, "_PAIR_BLOCK", 3 * 50 * 7)  # 7 rows per block, uneven end
    np.testing.assert_allclose(crps_gaussian_mixture(means, sds, y), whole, rtol=1e-13)


def test_coverage_skips_missing_outcomes():
    y = np.array([0.0, 5.0, np.nan, 1.0])
    assert coverage(np.full(4, -1.0), np.full(4, 1.0), y) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: crps_from_draws(np.zeros((1, 3)), np.zeros(3)), "at least two draws"),
        (lambda: crps_from_draws(np.zeros((4, 2)), np.zeros(3)), r"shape \(n, 3\)"),
        (lambda: crps_normal(np.zeros(2), np.array([1.0, 0.0]), np.zeros(2)), "sd must be"),
        (lambda: coverage(np.zeros(2), np.zeros(2), np.full(2, np.nan)), "every outcome"),
        (
            lambda: crps_gaussian_mixture(np.zeros((4, 2)), np.ones((4, 2)), np.zeros(3)),
            r"shape \(n, 3\)",
        ),
        (
            lambda: crps_gaussian_mixture(np.zeros((4, 2)), -np.ones((4, 2)), np.zeros(2)),
            "sds must be positive",
        ),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
