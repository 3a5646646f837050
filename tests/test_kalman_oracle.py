"""Kalman filter / smoother against a dense multivariate-normal oracle.

For small random systems the joint Gaussian of all states and observations is built densely
in numpy; every filter, predictor, smoother and likelihood output is then an explicit
Gaussian conditional that we compare against.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from kalman_helpers import (
    MISSING_PATTERNS,
    DenseOracle,
    apply_missing,
    random_system,
    run_filter,
    run_log_likelihood,
    run_smoother,
    scaled_atol,
    simulate,
    steps_to_steady_state,
)

STATE_DIMS = (1, 2, 4)
LENGTHS = (1, 5, 17)

# (d, T, missing pattern, singular Q / P0)
CASES = [(d, n, p, False) for d in STATE_DIMS for n in LENGTHS for p in MISSING_PATTERNS]
CASES += [
    (2, 17, "some", True),
    (4, 5, "none", True),
    (4, 17, "first", True),
    (4, 17, "all_but_one", True),
    (2, 5, "all", False),
]
CASE_IDS = [f"d{d}-T{n}-{p}" + ("-singular" if s else "") for d, n, p, s in CASES]

REL = 1e-9  # relative tolerance for float64 comparisons against the oracle


@functools.cache
def _case(d: int, n: int, pattern: str, singular: bool, time_invariant: bool = False):
    """The system, data with missing values, and dense oracle for one test case."""
    seed = [d, n, MISSING_PATTERNS.index(pattern) if pattern in MISSING_PATTERNS else 9]
    rng = np.random.default_rng([*seed, int(singular), int(time_invariant)])
    system = random_system(rng, d, n, singular=singular, time_invariant=time_invariant)
    y = apply_missing(rng, simulate(rng, system, n), pattern)
    return system, y, DenseOracle(system, n)


def _assert_close(actual, expected, rel=REL, name=""):
    np.testing.assert_allclose(
        actual, expected, rtol=100 * rel, atol=scaled_atol(expected, rel), err_msg=name
    )


def _check_log_likelihood(ll, y, oracle):
    ll = np.asarray(ll)
    assert ll.shape == y.shape
    np.testing.assert_allclose(ll.sum(), oracle.total_log_likelihood(y), rtol=REL, atol=REL)
    np.testing.assert_allclose(ll, oracle.pointwise_log_likelihood(y), rtol=REL, atol=1e-8)
    assert np.all(ll[np.isnan(y)] == 0.0)


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
@pytest.mark.parametrize(("d", "n", "pattern", "singular"), CASES, ids=CASE_IDS)
def test_filter_log_likelihood_matches_dense(d, n, pattern, singular, parallel):
    system, y, oracle = _case(d, n, pattern, singular)
    res = run_filter(system, y, parallel=parallel)
    _check_log_likelihood(res["log_likelihood"], y, oracle)


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
@pytest.mark.parametrize(("d", "n", "pattern", "singular"), CASES, ids=CASE_IDS)
def test_filtered_and_predicted_match_dense(d, n, pattern, singular, parallel):
    system, y, oracle = _case(d, n, pattern, singular)
    res = run_filter(system, y, parallel=parallel)
    assert res["filtered_mean"].shape == (n, d)
    assert res["filtered_cov"].shape == (n, d, d)
    assert res["predicted_mean"].shape == (n, d)
    assert res["predicted_cov"].shape == (n, d, d)

    mean, cov = oracle.filtered(y)
    _assert_close(res["filtered_mean"], mean, name="filtered_mean")
    _assert_close(res["filtered_cov"], cov, name="filtered_cov")

    mean, cov = oracle.predicted(y)
    _assert_close(res["predicted_mean"], mean, name="predicted_mean")
    _assert_close(res["predicted_cov"], cov, name="predicted_cov")
    np.testing.assert_allclose(res["predicted_mean"][0], system.initial_mean, rtol=1e-14)


@pytest.mark.parametrize(("d", "n", "pattern", "singular"), CASES, ids=CASE_IDS)
def test_smoothed_matches_dense(d, n, pattern, singular):
    system, y, oracle = _case(d, n, pattern, singular)
    res = run_smoother(system, y)
    assert res["smoothed_mean"].shape == (n, d)
    assert res["smoothed_cov"].shape == (n, d, d)
    mean, cov = oracle.smoothed(y)
    _assert_close(res["smoothed_mean"], mean, name="smoothed_mean")
    _assert_close(res["smoothed_cov"], cov, name="smoothed_cov")


@pytest.mark.parametrize(("d", "n", "pattern", "singular"), CASES, ids=CASE_IDS)
def test_log_likelihood_function_matches_dense(d, n, pattern, singular):
    system, y, oracle = _case(d, n, pattern, singular)
    _check_log_likelihood(run_log_likelihood(system, y), y, oracle)


# --------------------------------------------------------------------------------------
# Time-invariant (2-D) inputs: same numbers as the tiled time-varying model
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["none", "some", "first"])
@pytest.mark.parametrize("d", STATE_DIMS)
def test_time_invariant_inputs_match_dense(d, pattern):
    n = 17
    system, y, oracle = _case(d, n, pattern, False, time_invariant=True)
    assert system.transition_matrix.ndim == 2

    # The parallel form on constant inputs is also covered by the statsmodels/Nile tests, so
    # it is compiled here for d = 2 only (each compile of it costs seconds).
    for parallel in (False, True) if d == 2 else (False,):
        res = run_filter(system, y, parallel=parallel)
        _check_log_likelihood(res["log_likelihood"], y, oracle)
        mean, cov = oracle.filtered(y)
        _assert_close(res["filtered_mean"], mean, name=f"filtered_mean {parallel=}")
        _assert_close(res["filtered_cov"], cov, name=f"filtered_cov {parallel=}")
        mean, cov = oracle.predicted(y)
        _assert_close(res["predicted_mean"], mean, name=f"predicted_mean {parallel=}")
        _assert_close(res["predicted_cov"], cov, name=f"predicted_cov {parallel=}")

    _check_log_likelihood(run_log_likelihood(system, y), y, oracle)

    sm = run_smoother(system, y)
    mean, cov = oracle.smoothed(y)
    _assert_close(sm["smoothed_mean"], mean, name="smoothed_mean")
    _assert_close(sm["smoothed_cov"], cov, name="smoothed_cov")

    # Tiling the constant fields along time must not change anything.
    tiled = system.expanded(n)
    constant = run_filter(system, y)
    for key, value in run_filter(tiled, y).items():
        _assert_close(value, constant[key], rel=1e-12, name=key)
    _assert_close(run_log_likelihood(tiled, y), run_log_likelihood(system, y), rel=1e-12)


# --------------------------------------------------------------------------------------
# Long time-invariant series: the steady-state path of log_likelihood
# --------------------------------------------------------------------------------------

LONG_T = 300


def _long_case(d: int, gaps: str, varying_offset: bool = False):
    rng = np.random.default_rng([d, 300, len(gaps), int(varying_offset)])
    system = random_system(rng, d, LONG_T, time_invariant=True)
    if varying_offset:
        from dataclasses import replace

        system = replace(system, observation_offset=3.0 * rng.normal(size=LONG_T))
    y = simulate(rng, system, LONG_T)
    if gaps == "late":
        y[[240, 270, 271, 272, 299]] = np.nan
    elif gaps == "early_and_late":
        y[[0, 1, 7, 150, 151, 152, 153, 154, 155, 298]] = np.nan
    return system, y


LONG_CASES = [(1, "none"), (2, "none"), (4, "none"), (2, "late"), (4, "early_and_late")]


@pytest.mark.parametrize(("d", "gaps"), LONG_CASES, ids=[f"d{d}-{g}" for d, g in LONG_CASES])
def test_long_time_invariant_log_likelihood_matches_filter(d, gaps):
    system, y = _long_case(d, gaps)
    # premise: the covariance settles early, so log_likelihood can use its steady state
    assert steps_to_steady_state(system) < 100
    ll_fast = run_log_likelihood(system, y)
    ll_seq = run_filter(system, y)["log_likelihood"]
    assert ll_fast.shape == (LONG_T,)
    np.testing.assert_allclose(ll_fast, ll_seq, rtol=1e-9, atol=1e-9)
    assert np.all(ll_fast[np.isnan(y)] == 0.0)
    expected = DenseOracle(system, LONG_T).total_log_likelihood(y)
    np.testing.assert_allclose(ll_fast.sum(), expected, rtol=REL)
    np.testing.assert_allclose(ll_seq.sum(), expected, rtol=REL)


def test_long_time_invariant_with_time_varying_offset():
    system, y = _long_case(2, "late", varying_offset=True)
    assert system.observation_offset.shape == (LONG_T,)
    ll_fast = run_log_likelihood(system, y)
    ll_seq = run_filter(system, y)["log_likelihood"]
    np.testing.assert_allclose(ll_fast, ll_seq, rtol=1e-9, atol=1e-9)
    expected = DenseOracle(system, LONG_T).total_log_likelihood(y)
    np.testing.assert_allclose(ll_fast.sum(), expected, rtol=REL)
