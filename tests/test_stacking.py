"""Stacking, pseudo-BMA and best-candidate weights (`bsts.stacking`)."""

import numpy as np
import pytest
from scipy import optimize

from bsts.stacking import best_weights, pseudo_bma_weights, stacking_weights, weights


@pytest.fixture(scope="module")
def lpd():
    rng = np.random.default_rng(0)
    return rng.normal(-1.0, 0.7, size=(40, 4)) + np.array([0.0, 0.3, -0.2, 0.1])


@pytest.mark.parametrize("rule", ["stacking", "pseudo_bma", "best"])
def test_weights_lie_on_the_simplex(lpd, rule):
    w = weights(lpd, rule)
    assert w.shape == (4,)
    assert np.all(w >= 0)
    assert w.sum() == pytest.approx(1.0)


def test_stacking_maximises_the_mixture_log_score(lpd):
    w = stacking_weights(lpd)

    def negative_score(free):
        v = np.exp(free - free.max())
        v /= v.sum()
        return -np.sum(np.log(np.exp(lpd) @ v))

    reference = optimize.minimize(
        negative_score,
        np.zeros(4),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    )
    best = -negative_score(np.log(np.maximum(w, 1e-300)))
    assert best >= -reference.fun - 1e-7


def test_stacking_shares_weight_between_complementary_candidates():
    # Each candidate predicts half the points well and the other half badly: either one
    # alone scores poorly, the even mixture well.
    good, bad = np.log(0.9), np.log(0.01)
    lpd = np.array([[good, bad]] * 10 + [[bad, good]] * 10)
    np.testing.assert_allclose(stacking_weights(lpd), [0.5, 0.5], atol=1e-6)
    assert best_weights(lpd).max() == 1.0


def test_a_dominant_candidate_takes_the_weight():
    lpd = np.column_stack([np.full(30, -1.0), np.full(30, -3.0)])
    assert stacking_weights(lpd)[0] > 0.999
    assert pseudo_bma_weights(lpd, bootstrap=False)[0] == pytest.approx(1 / (1 + np.exp(-60)))
    np.testing.assert_array_equal(best_weights(lpd), [1.0, 0.0])


def test_bad_matrices_are_refused():
    with pytest.raises(ValueError, match="points, candidates"):
        stacking_weights(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        stacking_weights(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="every candidate"):
        stacking_weights(np.array([[-np.inf, -np.inf], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="unknown weighting"):
        weights(np.zeros((2, 2)), "vote")
