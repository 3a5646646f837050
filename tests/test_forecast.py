"""Forecasts, decompositions and one-step predictions from a fitted posterior."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import bsts
from bsts.forecast import Forecast


@pytest.fixture(scope="module")
def airline_posterior():
    data = bsts.datasets.load("airline")
    data["log_passengers"] = np.log(data["passengers"])
    model = bsts.LocalLinearTrend() + bsts.Seasonal(period=12)
    post = bsts.fit(
        model,
        data.iloc[:-24],
        target="log_passengers",
        method="svi",
        num_steps=600,
        learning_rate=0.05,
        num_samples=40,
        seed=0,
    )
    return post, data


def test_forecast_continues_the_index_in_original_units(airline_posterior):
    post, data = airline_posterior
    fc = bsts.forecast(post, horizon=24, seed=1)
    assert fc.draws.shape == (40, 24)
    pd.testing.assert_index_equal(fc.index, data.index[-24:], check_names=False, check_freq=False)
    table = fc.to_pandas(interval=0.9)
    assert list(table.columns) == ["mean", "median", "lower", "upper"]
    assert (table["lower"] < table["median"]).all() and (table["median"] < table["upper"]).all()
    # Log passengers are around 6; the forecast must be on that scale, not standardised.
    assert 5.5 < table["mean"].iloc[0] < 7.0
    # Uncertainty grows with the horizon.
    width = table["upper"] - table["lower"]
    assert width.iloc[-1] > width.iloc[0]


@pytest.mark.parametrize("interval", [0.0, 1.0, 1.5])
def test_forecast_rejects_bad_interval(airline_posterior, interval):
    post, _ = airline_posterior
    fc = bsts.forecast(post, horizon=3, seed=0)
    with pytest.raises(ValueError, match="interval"):
        fc.to_pandas(interval=interval)
    with pytest.raises(ValueError, match="interval"):
        fc.interval(interval)
    with pytest.raises(ValueError, match="probabilities"):
        fc.quantiles([interval])


def test_forecast_is_reproducible(airline_posterior):
    post, _ = airline_posterior
    a = bsts.forecast(post, horizon=3, seed=5).draws
    b = bsts.forecast(post, horizon=3, seed=5).draws
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("horizon", [0, -2, 1.5])
def test_forecast_rejects_bad_horizon(airline_posterior, horizon):
    post, _ = airline_posterior
    with pytest.raises(ValueError, match="horizon"):
        bsts.forecast(post, horizon=horizon)


def test_forecast_needs_future_covariates():
    rng = np.random.default_rng(0)
    index = pd.date_range("2020-01-01", periods=60, freq="D")
    x = rng.normal(size=60)
    frame = pd.DataFrame({"y": 2 * x + np.cumsum(rng.normal(size=60)) * 0.1, "x": x}, index=index)
    model = bsts.LocalLevel() + bsts.Regression(["x"])
    post = bsts.fit(model, frame, target="y", method="map", num_steps=200)
    with pytest.raises(ValueError, match="future"):
        bsts.forecast(post, horizon=5)
    future = pd.DataFrame({"x": np.ones(5)}, index=pd.date_range("2020-03-01", periods=5))
    with pytest.raises(ValueError, match="agree"):
        bsts.forecast(post, horizon=4, future=future)
    with pytest.raises(ValueError, match="missing covariate"):
        bsts.forecast(post, future=future.rename(columns={"x": "z"}))
    fc = bsts.forecast(post, future=future)
    assert fc.draws.shape == (1, 5)
    pd.testing.assert_index_equal(fc.index, future.index)


def test_decomposition_sums_to_fitted_signal(airline_posterior):
    post, data = airline_posterior
    dec = bsts.decompose(post, num_samples=10, seed=0)
    assert set(dec.draws) == {"trend", "seasonal"}
    total = sum(dec.draws.values())
    np.testing.assert_allclose(total, dec.fitted)
    tables = dec.to_pandas()
    fitted = tables["fitted"]["mean"]
    observed = data["log_passengers"].iloc[:-24]
    # The smoothed signal follows the data closely (observation noise is small here).
    assert np.abs(fitted.to_numpy() - observed.to_numpy()).mean() < 0.05
    # The seasonal component averages about zero over a year.
    seasonal = tables["seasonal"]["mean"].to_numpy()
    assert abs(seasonal[-12:].mean()) < 0.05


def test_one_step_predictions(airline_posterior):
    post, data = airline_posterior
    table = bsts.one_step_predictions(post)
    assert list(table.columns) == ["observed", "mean", "sd", "residual"]
    assert len(table) == len(data) - 24
    assert (table["sd"] > 0).all()
    # After the first year the standardised residuals look roughly standard normal.
    late = table["residual"].iloc[24:]
    assert 0.3 < late.std() < 3.0
    assert jnp.isfinite(jnp.asarray(table["mean"].to_numpy())).all()


def test_each_draws_predictive_matches_statsmodels(airline_posterior):
    """Per draw, the exact predictive equals statsmodels' forecast with the same parameters
    and the same (known) initial state, in standardised units and then scaled back."""
    import statsmodels.api as sm

    post, _ = airline_posterior
    fc = bsts.forecast(post, horizon=24, seed=1)
    assert fc.exact
    draws, ssms = post.flat_draws(), post.state_spaces()
    series = post.series
    for i in (0, 17):
        reference = sm.tsa.UnobservedComponents(series.y, level="local linear trend", seasonal=12)
        reference.ssm.initialize_known(
            np.asarray(ssms.initial_mean[i]), np.asarray(ssms.initial_cov[i])
        )
        sites = ("observation.scale", "trend.level_scale", "trend.slope_scale", "seasonal.scale")
        result = reference.smooth(np.array([draws[site][i] ** 2 for site in sites]))
        predictive = result.get_forecast(24)
        np.testing.assert_allclose(
            fc.draw_means[i], series.to_original(np.asarray(predictive.predicted_mean)), rtol=1e-10
        )
        np.testing.assert_allclose(
            fc.draw_sds[i], np.sqrt(np.asarray(predictive.var_pred_mean)) * series.scale, rtol=1e-9
        )


def test_simulated_draws_agree_with_the_exact_mixture(airline_posterior):
    post, _ = airline_posterior
    fc = bsts.forecast(post, horizon=24, seed=1)
    # One simulated path per draw: its mean is within Monte Carlo error of the exact mean.
    sd = fc.draws.std(axis=0)
    assert np.all(np.abs(fc.draws.mean(axis=0) - fc.mean()) < 4 * sd / np.sqrt(len(fc.draws)))
    table = fc.to_pandas(interval=0.9)
    np.testing.assert_allclose(table["mean"], fc.draw_means.mean(axis=0))
    # The exact 90% band holds about 90% of the simulated draws.
    inside = (fc.draws >= table["lower"].to_numpy()) & (fc.draws <= table["upper"].to_numpy())
    assert 0.8 < inside.mean() < 0.97
    actual = fc.mean() + 0.05
    exact = bsts.metrics.crps_gaussian_mixture(fc.draw_means, fc.draw_sds, actual)
    np.testing.assert_array_equal(fc.crps(actual), exact)


def test_forecast_sd_is_the_mixture_sd():
    # Components N(-1, 1) and N(1, 1): the mixture's variance is 1 + 1 = 2.
    index = pd.RangeIndex(2)
    means, sds = np.array([[-1.0, 0.0], [1.0, 0.0]]), np.ones((2, 2))
    fc = Forecast(np.zeros((2, 2)), index, None, means, sds)
    np.testing.assert_allclose(fc.sd(), [np.sqrt(2.0), 1.0])
    np.testing.assert_allclose(fc.mean(), [0.0, 0.0])
