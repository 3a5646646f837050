"""`bsts.pooled`: one posterior mode shared by a group of series."""

import numpy as np
import pandas as pd
import pytest
from numpyro.infer.util import log_density

import bsts
from bsts.batch import trace_counts
from bsts.data import prepare_series
from bsts.pooled import pooled_modes

MODEL = bsts.LocalLevel() + bsts.Autoregressive(1)


def _series(seed: int, n: int, phi: float = 0.6, gaps=()):
    rng = np.random.default_rng(seed)
    a = np.zeros(n)
    for t in range(1, n):
        a[t] = phi * a[t - 1] + rng.normal()
    y = a + 0.3 * rng.normal(size=n)
    y[list(gaps)] = np.nan
    return prepare_series(pd.Series(y), None, [])


def _objective(params: dict, members) -> float:
    """The pooled log density at a mode, summed from single-series log densities."""
    point = {k: np.asarray(v)[0] for k, v in params.items() if k != "ar.coefficients"}
    first = members[0]
    total = float(log_density(MODEL, (MODEL.inputs(first),), {"y": first.y}, point)[0])
    for series in members[1:]:
        inputs = MODEL.inputs(series)
        with_data = log_density(MODEL, (inputs,), {"y": series.y}, point)[0]
        without = log_density(MODEL, (inputs,), {"y": np.full_like(series.y, np.nan)}, point)[0]
        total += float(with_data - without)
    return total


@pytest.fixture(scope="module")
def groups():
    return [[_series(0, 40), _series(1, 35, gaps=(5, 6))], [_series(2, 48, phi=0.1)]]


@pytest.fixture(scope="module")
def modes(groups):
    return pooled_modes(MODEL, groups)


def test_a_group_of_one_is_the_series_map(groups, modes):
    series = groups[1][0]
    fit = bsts.fit(MODEL, pd.Series(series.y), method="map")
    single = {k: np.asarray(v) for k, v in fit.flat_draws().items()}
    # The objective is flat along near-zero scales, where two optimisers stop at different
    # points of equal density: compare the density reached, not the point.
    assert _objective(modes[1], [series]) == pytest.approx(_objective(single, [series]), abs=0.05)


# Eager log densities around the mode: slow; the group-of-one test checks the objective.
@pytest.mark.slow
def test_the_mode_maximises_the_pooled_density(groups, modes):
    reached = _objective(modes[0], groups[0])
    other = _objective(modes[1], groups[0])
    assert reached > other
    for k in modes[0]:
        assert modes[0][k].shape[0] == 1
    for name in ("ar.scale", "observation.scale"):
        for factor in (0.95, 1.05):
            nudged = {**modes[0], name: modes[0][name] * factor}
            assert _objective(nudged, groups[0]) <= reached + 1e-3


def test_padding_members_and_length_changes_nothing(groups, modes):
    padded = pooled_modes(MODEL, groups, size=5, length=100)
    for mine, theirs in zip(modes, padded, strict=True):
        for k in mine:
            np.testing.assert_allclose(mine[k], theirs[k], rtol=2e-3, atol=2e-4)


def test_one_program_for_groups_of_different_sizes(groups):
    before = trace_counts["pooled_map"]
    # The padding test's size and length: its program is compiled already.
    pooled_modes(MODEL, [[groups[0][0]], groups[0] + groups[1]], size=5, length=100)
    pooled_modes(MODEL, [groups[0]], size=5, length=100)
    assert trace_counts["pooled_map"] - before == 0


def test_bad_groups():
    with pytest.raises(ValueError, match="at least one series"):
        pooled_modes(MODEL, [[]])
    uneven = prepare_series(
        pd.Series(np.arange(10.0) ** 1.3, index=np.cumsum(np.linspace(1, 2, 10))), None, []
    )
    with pytest.raises(ValueError, match="all be evenly spaced, or all not"):
        pooled_modes(MODEL, [[_series(0, 10)], [uneven]])
