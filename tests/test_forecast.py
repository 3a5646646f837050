"""Forecasts, decompositions and one-step predictions from a fitted posterior."""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import bsts


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
