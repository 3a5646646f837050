"""Equal-weight Normal mixtures: CDF and quantiles against scipy and their own definition."""

import numpy as np
import pytest
from scipy import stats

from bsts.mixture import mixture_cdf, mixture_quantiles, mixture_sd


def test_one_component_is_the_normal(rng):
    means, sds = rng.normal(size=(1, 5)), rng.uniform(0.5, 2.0, size=(1, 5))
    probs = np.array([0.025, 0.5, 0.9])
    expected = stats.norm.ppf(probs[:, None], means, sds)
    np.testing.assert_allclose(mixture_quantiles(means, sds, probs), expected, rtol=1e-12)
    x = rng.normal(size=5)
    np.testing.assert_allclose(mixture_cdf(means, sds, x), stats.norm.cdf(x, means[0], sds[0]))


def test_quantiles_invert_the_cdf(rng):
    means = np.concatenate([rng.normal(-3, 0.3, (20, 4)), rng.normal(4, 0.3, (30, 4))])
    sds = rng.uniform(0.1, 1.0, size=(50, 4))
    probs = np.array([0.01, 0.3, 0.4, 0.5, 0.99])
    quantiles = mixture_quantiles(means, sds, probs)
    np.testing.assert_allclose(mixture_cdf(means, sds, quantiles), np.repeat(probs[:, None], 4, 1))
    assert np.all(np.diff(quantiles, axis=0) > 0)


def test_symmetric_mixture_has_its_median_at_the_centre():
    means = np.array([[-2.0], [2.0]])
    sds = np.array([[1.0], [1.0]])
    np.testing.assert_allclose(mixture_quantiles(means, sds, [0.5]), [[0.0]], atol=1e-12)
    # Variance: each component's 1, plus the spread of the means, 2^2.
    np.testing.assert_allclose(mixture_sd(means, sds), [np.sqrt(5.0)], rtol=1e-15)


@pytest.mark.parametrize(
    "means, sds, probs, message",
    [
        (np.zeros((2, 3)), np.ones((2, 2)), [0.5], r"shape \(n, T\)"),
        (np.zeros((2, 3)), np.zeros((2, 3)), [0.5], "sds must be positive"),
        (np.full((2, 3), np.nan), np.ones((2, 3)), [0.5], "finite"),
        (np.zeros((2, 3)), np.ones((2, 3)), [1.0], r"in \(0, 1\)"),
    ],
)
def test_bad_components_or_probabilities_are_rejected(means, sds, probs, message):
    with pytest.raises(ValueError, match=message):
        mixture_quantiles(means, sds, probs)
