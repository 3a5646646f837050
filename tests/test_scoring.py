"""`bsts.scoring.log_likelihoods`: the exact Kalman marginal log-likelihood of prepared
series under stacks of parameter sets, batched, against the filter run directly.

The first parameter set is the MAP fit (`bsts.fit(..., method="map")`) of the regular
series, the others are set by hand; every stack holds the same three sets (K = 3) and
every series is 20-30 steps long, so that the scoring programs compile for a few
structures and buckets only.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import bsts
from bsts import batch
from bsts.data import prepare_series
from bsts.inference import nest_parameters
from bsts.kalman import kalman_filter
from bsts.model import OBSERVATION_WEIGHTS
from bsts.scoring import log_likelihoods

MODEL = bsts.LocalLevel() + bsts.Autoregressive(1)
# Float32 tolerance: the batched program and the reference may take different filter
# paths (steady state, padding), which agree to rounding.
TOLERANCE = {"rtol": 2e-5, "atol": 1e-3}
NAMES = ("regular", "gapped", "short", "uneven")


def _ar_series(seed: int, n: int, phi: float = 0.7, index=None) -> pd.Series:
    rng = np.random.default_rng(seed)
    a = np.zeros(n)
    for t in range(1, n):
        a[t] = phi * a[t - 1] + rng.normal()
    y = 10.0 + np.cumsum(rng.normal(scale=0.2, size=n)) + a + rng.normal(scale=0.3, size=n)
    return pd.Series(y, index=np.arange(n) if index is None else index)


@pytest.fixture(scope="module")
def raw():
    """The user's series: regular, with NaN gaps, shorter, and unevenly spaced."""
    gapped = _ar_series(2, 30)
    gapped.iloc[[4, 5, 6, 17, 25]] = np.nan
    times = np.cumsum(np.random.default_rng(4).choice([1.0, 2.0, 3.0], size=26)) - 1.0
    return {
        "regular": _ar_series(1, 30),
        "gapped": gapped,
        "short": _ar_series(3, 20),
        "uneven": _ar_series(5, 26, index=times),
    }


@pytest.fixture(scope="module")
def series(raw):
    out = {name: prepare_series(data, None, []) for name, data in raw.items()}
    assert out["gapped"].gapped and not out["regular"].gapped
    assert not out["uneven"].regular and out["short"].num_timesteps == 20
    return out


@pytest.fixture(scope="module")
def fitted(raw):
    """The MAP of the regular series, as a flat stack of one set."""
    posterior = bsts.fit(MODEL, raw["regular"], method="map", num_steps=300, seed=0)
    flat = {k: np.asarray(v) for k, v in posterior.flat_draws().items()}
    assert {next(iter(flat.values())).shape[0]} == {1}
    return flat


def _hand_set(level: float, ar: float, phi: float, observation: float) -> dict:
    return {
        "ar.coefficients": np.array([[phi]]),
        "ar.pacf_unit": np.array([[(phi + 1.0) / 2.0]]),
        "ar.scale": np.array([ar]),
        "level.scale": np.array([level]),
        "observation.scale": np.array([observation]),
    }


def _stacked(*flats: dict) -> dict:
    return {k: np.concatenate([f[k] for f in flats]) for k in flats[0]}


@pytest.fixture(scope="module")
def stack(fitted):
    """K = 3 parameter sets: the MAP and two others (AR coefficients positive, as the
    Ornstein-Uhlenbeck form of an uneven series needs)."""
    assert set(fitted) == set(_hand_set(0.1, 0.1, 0.1, 0.1))
    return _stacked(fitted, _hand_set(0.05, 0.6, 0.8, 0.2), _hand_set(0.5, 0.2, 0.3, 0.4))


def _reference(data, flat: dict, model=MODEL, covariates: dict | None = None) -> np.ndarray:
    """Each parameter set's log-likelihood, by the sequential filter run directly.

    `covariates`: `(K, T)` arrays by name, row k the series' covariate under set k.
    """
    inputs = model.inputs(data)
    size = next(iter(flat.values())).shape[0]
    by_set = {name: jnp.asarray(v) for name, v in (covariates or {}).items()}

    def one(p, columns):
        given = dataclasses.replace(inputs, covariates={**inputs.covariates, **columns})
        ssm = model.state_space(nest_parameters(model, p), given)
        return kalman_filter(ssm, jnp.asarray(data.y)).log_likelihood.sum()

    values = jax.jit(jax.vmap(one))(flat, by_set) if by_set else None
    if values is None:
        values = jax.jit(jax.vmap(lambda p: one(p, {})))(flat)
    assert values.shape == (size,)
    return np.asarray(values, dtype=float)


@pytest.fixture(scope="module")
def reference(series, stack):
    return {name: _reference(series[name], stack) for name in NAMES}


def test_reference_is_the_fit_likelihood(raw, series, fitted, reference):
    # The direct filter agrees with the fit's own pointwise log-likelihood (original units
    # add -T_obs log(scale), the same for every set).
    posterior = bsts.fit(MODEL, raw["regular"], method="map", num_steps=300, seed=0)
    data = series["regular"]
    original = float(posterior.pointwise_log_likelihood().sum())
    observed = np.sum(~np.isnan(data.y))
    np.testing.assert_allclose(original + observed * np.log(data.scale), reference["regular"][0])


def test_fitted_series_under_its_own_map(series, fitted, reference):
    (value,) = log_likelihoods(MODEL, [(series["regular"], fitted)])
    assert value.shape == (1,) and value.dtype == np.float64
    np.testing.assert_allclose(value, reference["regular"][:1], **TOLERANCE)


@pytest.mark.parametrize("name", NAMES)
def test_each_series_alone_matches_the_direct_filter(series, stack, reference, name):
    (values,) = log_likelihoods(MODEL, [(series[name], stack)])
    assert values.shape == (3,) and np.isfinite(values).all()
    np.testing.assert_allclose(values, reference[name], **TOLERANCE)
    # Three different parameter sets, three different values.
    assert np.unique(np.round(values, 4)).size == 3


def test_map_is_the_best_set_for_its_series(series, stack):
    (values,) = log_likelihoods(MODEL, [(series["regular"], stack)])
    assert np.argmax(values) == 0


def test_different_lengths_in_one_call_equal_each_alone(series, stack, reference):
    # Padding is exact: a series scored with longer ones gives its value alone, and the
    # results come back in the order of the jobs.
    names = ["short", "regular", "uneven", "gapped", "short", "regular"]
    together = log_likelihoods(MODEL, [(series[name], stack) for name in names])
    assert len(together) == len(names)
    for name, values in zip(names, together, strict=True):
        (alone,) = log_likelihoods(MODEL, [(series[name], stack)])
        assert values.shape == (3,)
        np.testing.assert_allclose(values, alone, rtol=1e-6, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(values, reference[name], **TOLERANCE, err_msg=name)


def test_short_series_in_a_longer_bucket_is_exact(series, stack, reference):
    # 20 steps run in the bucket of a 30-step series still score 20 steps.
    short = series["short"]
    assert batch.bucket_length(short.num_timesteps) < batch.bucket_length(30)
    values = log_likelihoods(MODEL, [(series["regular"], stack)] + [(short, stack)] * 3)
    for value in values[1:]:
        np.testing.assert_allclose(value, reference["short"], **TOLERANCE)


def test_covariates_by_parameter_set(series, stack):
    # Triples: a covariate that differs by parameter set, `(K, T)`, as the classifier's
    # member templates are; set k is scored with row k as the series' covariate.
    model = MODEL + bsts.Regression(["x"], name="template")
    params = {**stack, "template.coefficients": np.array([[0.8], [-0.5], [0.3]])}
    rng = np.random.default_rng(9)
    names = ["regular", "short", "gapped"]
    covariates = {name: rng.normal(size=(3, series[name].num_timesteps)) for name in names}
    values = log_likelihoods(
        model, [(series[name], params, {"x": covariates[name]}) for name in names]
    )
    for name, value in zip(names, values, strict=True):
        expected = _reference(series[name], params, model, {"x": covariates[name]})
        np.testing.assert_allclose(value, expected, **TOLERANCE, err_msg=name)
    # Each set takes its own row: the rows in another order give other values.
    (swapped,) = log_likelihoods(
        model, [(series["regular"], params, {"x": covariates["regular"][::-1]})]
    )
    assert not np.allclose(values[0], swapped)
    # A zero covariate is no covariate: the values of the model without the regression.
    zero = log_likelihoods(model, [(series["regular"], params, {"x": np.zeros((3, 30))})])
    (plain,) = log_likelihoods(MODEL, [(series["regular"], stack)])
    np.testing.assert_allclose(zero[0], plain, rtol=1e-9)


def test_no_jobs_is_an_error():
    with pytest.raises(ValueError, match="no series to score"):
        log_likelihoods(MODEL, [])


def test_parameter_stacks_of_different_sizes_are_an_error(series, fitted, stack):
    with pytest.raises(ValueError, match=r"same number of parameter sets, got \[1, 3\]"):
        log_likelihoods(MODEL, [(series["regular"], fitted), (series["short"], stack)])


def test_student_t_observation_weights_are_rejected(series, fitted):
    data = series["regular"]
    weighted = {**fitted, OBSERVATION_WEIGHTS: np.ones((1, data.num_timesteps))}
    with pytest.raises(ValueError, match="per-step observation weights"):
        log_likelihoods(MODEL, [(data, weighted)])
