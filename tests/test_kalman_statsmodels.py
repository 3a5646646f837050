"""Kalman filter / smoother against statsmodels' state-space implementation.

The models are built with statsmodels (`UnobservedComponents`) with a known initial state
and no likelihood burn-in; our `StateSpace` is assembled from the very matrices statsmodels
uses, so log-likelihoods and state moments must agree to float64 precision.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import statsmodels.api as sm
from kalman_helpers import (
    NILE_LOG_LIKELIHOOD,
    System,
    llt_seasonal_system,
    nile_data,
    nile_system,
    run_filter,
    run_log_likelihood,
    run_smoother,
    scaled_atol,
    simulate,
)

# Lengths chosen to share compiled shapes with other tests (Nile: T=100; the LLT+seasonal
# property tests: T=200).
NUM_STEPS = {"local_level": 100, "llt_seasonal12": 200, "ar2": 150}
RTOL = 1e-9

# name -> (UnobservedComponents kwargs, params, initial mean, initial cov)
MODELS = {
    "local_level": (
        {"level": "local level"},
        [2.0, 0.5],
        np.array([50.0]),
        np.array([[4.0]]),
    ),
    "llt_seasonal12": (
        {"level": "local linear trend", "seasonal": 12},
        [1.0, 0.1, 0.01, 0.2],
        np.r_[100.0, 0.5, np.linspace(-3.0, 3.0, 11)],
        np.diag(np.r_[9.0, 0.25, np.full(11, 2.0)]),
    ),
    "ar2": (
        {"irregular": True, "autoregressive": 2},
        [0.5, 1.0, 0.6, -0.3],
        np.array([3.0, -1.0]),
        np.array([[2.0, 0.5], [0.5, 2.0]]),
    ),
}


def _statsmodels_model(name: str, y: np.ndarray):
    kwargs, params, a0, p0 = MODELS[name]
    mod = sm.tsa.UnobservedComponents(y, **kwargs)
    mod.ssm.initialize_known(a0, p0)
    mod.loglikelihood_burn = 0
    mod.update(np.asarray(params))
    return mod, np.asarray(params)


def _system_from_statsmodels(mod) -> System:
    """Our time-invariant system from statsmodels' (time-invariant) matrices."""
    ssm = mod.ssm
    selection = ssm["selection"]
    assert not np.any(ssm["state_intercept"]), "state intercepts are not part of our model"
    return System(
        transition_matrix=np.array(ssm["transition"]),
        transition_cov=selection @ ssm["state_cov"] @ selection.T,
        observation_matrix=np.array(ssm["design"][0]),
        observation_offset=np.array(ssm["obs_intercept"][0]),
        observation_var=np.array(ssm["obs_cov"][0, 0]),
        initial_mean=np.array(ssm.initialization.constant),
        initial_cov=np.array(ssm.initialization.stationary_cov),
    )


@functools.cache
def _data(name: str, with_nans: bool) -> np.ndarray:
    """A series simulated from the model, optionally with NaN gaps."""
    n = NUM_STEPS[name]
    mod, _ = _statsmodels_model(name, np.zeros(n))
    rng = np.random.default_rng(len(name))
    y = simulate(rng, _system_from_statsmodels(mod), n)
    if with_nans:
        y[[0, 5, 6, 7, 40, 99, n - 1]] = np.nan
        y[rng.uniform(size=n) < 0.05] = np.nan
    return y


@functools.cache
def _reference(name: str, with_nans: bool):
    y = _data(name, with_nans)
    mod, params = _statsmodels_model(name, y)
    smoothed = mod.smooth(params)
    return y, mod, params, smoothed


# The parallel form is compiled (seconds each) only for the models whose shapes other tests
# compile anyway: local level (Nile, T=100) and LLT+seasonal (property tests, T=200).
PARALLEL_FORMS = {"local_level": (False, True), "llt_seasonal12": (False, True), "ar2": (False,)}

CASES = [(name, nans) for name in MODELS for nans in (False, True)]
IDS = [f"{name}-{'nan' if nans else 'full'}" for name, nans in CASES]


def _close(actual, expected, rel=RTOL, name=""):
    np.testing.assert_allclose(
        actual, expected, rtol=100 * rel, atol=scaled_atol(expected, rel), err_msg=name
    )


@pytest.mark.parametrize(("name", "with_nans"), CASES, ids=IDS)
def test_log_likelihood_matches_statsmodels(name, with_nans):
    y, mod, params, res = _reference(name, with_nans)
    system = _system_from_statsmodels(mod)
    expected_total = mod.loglike(params)
    np.testing.assert_allclose(res.llf_obs.sum(), expected_total, rtol=1e-12)

    for parallel in PARALLEL_FORMS[name]:
        ll = run_filter(system, y, parallel=parallel)["log_likelihood"]
        np.testing.assert_allclose(ll.sum(), expected_total, rtol=RTOL, err_msg=f"{parallel=}")
        np.testing.assert_allclose(ll, res.llf_obs, rtol=1e-8, atol=1e-9, err_msg=f"{parallel=}")

    ll = run_log_likelihood(system, y)
    np.testing.assert_allclose(ll.sum(), expected_total, rtol=RTOL)
    np.testing.assert_allclose(ll, res.llf_obs, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize(("name", "with_nans"), CASES, ids=IDS)
def test_filtered_states_match_statsmodels(name, with_nans):
    y, mod, _, res = _reference(name, with_nans)
    system = _system_from_statsmodels(mod)
    for parallel in PARALLEL_FORMS[name]:
        ours = run_filter(system, y, parallel=parallel)
        tag = f" {parallel=}"
        _close(ours["filtered_mean"], res.filtered_state.T, name="filtered_mean" + tag)
        _close(
            ours["filtered_cov"],
            np.moveaxis(res.filtered_state_cov, -1, 0),
            name="filtered_cov" + tag,
        )
        _close(ours["predicted_mean"], res.predicted_state[:, :-1].T, name="predicted" + tag)
        _close(
            ours["predicted_cov"],
            np.moveaxis(res.predicted_state_cov[:, :, :-1], -1, 0),
            name="predicted_cov" + tag,
        )


@pytest.mark.parametrize(("name", "with_nans"), CASES, ids=IDS)
def test_smoothed_states_match_statsmodels(name, with_nans):
    y, mod, _, res = _reference(name, with_nans)
    ours = run_smoother(_system_from_statsmodels(mod), y)
    _close(ours["smoothed_mean"], res.smoothed_state.T, rel=1e-8, name="smoothed_mean")
    _close(
        ours["smoothed_cov"],
        np.moveaxis(res.smoothed_state_cov, -1, 0),
        rel=1e-8,
        name="smoothed_cov",
    )


def test_llt_seasonal_builder_matches_statsmodels():
    """Our LLT + seasonal(12) helper has statsmodels' state layout and matrices."""
    _, mod, params, _ = _reference("llt_seasonal12", False)
    system = _system_from_statsmodels(mod)
    ours = llt_seasonal_system(
        sigma2_obs=params[0],
        sigma2_level=params[1],
        sigma2_slope=params[2],
        sigma2_seasonal=params[3],
        initial_mean=system.initial_mean,
        initial_cov=system.initial_cov,
    )
    for field in ("transition_matrix", "transition_cov", "observation_matrix"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(system, field), field)
    assert float(ours.observation_var) == float(system.observation_var)


# --------------------------------------------------------------------------------------
# Nile golden value
# --------------------------------------------------------------------------------------


def test_nile_golden_log_likelihood():
    y = nile_data()
    assert y.shape == (100,)
    system = nile_system()
    totals = {
        "sequential": run_filter(system, y)["log_likelihood"].sum(),
        "parallel": run_filter(system, y, parallel=True)["log_likelihood"].sum(),
        "log_likelihood": run_log_likelihood(system, y).sum(),
        "sequential, tiled": run_filter(system.expanded(100), y)["log_likelihood"].sum(),
    }
    for form, total in totals.items():
        np.testing.assert_allclose(total, NILE_LOG_LIKELIHOOD, rtol=1e-10, err_msg=form)


def test_nile_matches_statsmodels():
    y = nile_data()
    mod = sm.tsa.UnobservedComponents(y, level="local level")
    mod.ssm.initialize_known(np.array([1000.0]), np.array([[1e4]]))
    mod.loglikelihood_burn = 0
    res = mod.smooth([15099.0, 1469.1])
    np.testing.assert_allclose(res.llf, NILE_LOG_LIKELIHOOD, rtol=1e-12)

    system = nile_system()
    ours = run_filter(system, y)
    np.testing.assert_allclose(ours["log_likelihood"], res.llf_obs, rtol=1e-10)
    _close(ours["filtered_mean"][:, 0], res.filtered_state[0])
    _close(ours["filtered_cov"][:, 0, 0], res.filtered_state_cov[0, 0])
    smoothed = run_smoother(system, y)
    _close(smoothed["smoothed_mean"][:, 0], res.smoothed_state[0])
    _close(smoothed["smoothed_cov"][:, 0, 0], res.smoothed_state_cov[0, 0])
