"""`SeriesData.extend`: the forecast horizon prepared at the pandas edge (issue 21)."""

import numpy as np
import pandas as pd
import pytest

import bsts
from bsts.data import prepare_series


def _daily(size=20, covariate=False):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"y": rng.normal(size=size).cumsum()},
        index=pd.date_range("2021-01-01", periods=size, freq="D"),
    )
    if covariate:
        frame["x"] = rng.normal(2.0, 3.0, size=size)
    return frame


def test_horizon_continues_the_index_with_missing_targets():
    series = prepare_series(_daily(), "y", [])
    extended = series.extend(horizon=3)
    assert extended.num_timesteps == series.num_timesteps + 3
    expected = pd.date_range("2021-01-21", periods=3, freq="D")
    pd.testing.assert_index_equal(
        extended.index[-3:], expected, check_names=False, check_freq=False
    )
    assert np.isnan(extended.y[-3:]).all()
    np.testing.assert_array_equal(extended.y[:-3], series.y)
    np.testing.assert_array_equal(extended.dt, np.ones(23))
    assert (extended.location, extended.scale, extended.step) == (
        series.location,
        series.scale,
        series.step,
    )
    assert series.num_timesteps == 20  # the original is untouched


def test_future_covariates_use_the_training_factors():
    frame = _daily(covariate=True)
    series = prepare_series(frame, "y", ["x"])
    future = pd.DataFrame({"x": [1.0, 2.0]}, index=pd.date_range("2021-01-21", periods=2, freq="D"))
    extended = series.extend(future=future)
    x = frame["x"].to_numpy()
    np.testing.assert_allclose(extended.covariates["x"][-2:], ([1.0, 2.0] - x.mean()) / x.std())
    pd.testing.assert_index_equal(extended.index[-2:], future.index)
    model = bsts.LocalLevel() + bsts.Regression(["x"])
    inputs = model.inputs(extended)
    assert inputs.num_timesteps == 22
    assert inputs.initial_level == model.inputs(series).initial_level


def test_irregular_future_steps_are_in_units_of_the_data_step():
    index = pd.Index([0.0, 2.0, 4.0, 5.0, 7.0, 9.0])
    series = prepare_series(pd.Series(np.arange(6.0) ** 1.5, index=index), None, [])
    assert not series.regular
    extended = series.extend(future=pd.DataFrame(index=pd.Index([10.0, 14.0])))
    np.testing.assert_allclose(extended.dt[-2:], [0.5, 2.0])
    by_horizon = series.extend(horizon=2)
    np.testing.assert_allclose(by_horizon.index[-2:], [11.0, 13.0])
    with pytest.raises(ValueError, match="come after the data"):
        series.extend(future=pd.DataFrame(index=pd.Index([8.0])))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"horizon": 0}, "positive integer"),
        ({"horizon": True}, "positive integer"),
        ({}, "give horizon"),
        ({"future": np.ones(3)}, "must be a pandas DataFrame"),
    ],
)
def test_extend_errors(kwargs, message):
    series = prepare_series(_daily(), "y", [])
    with pytest.raises(ValueError, match=message):
        series.extend(**kwargs)


def test_extend_errors_with_covariates():
    series = prepare_series(_daily(covariate=True), "y", ["x"])
    index = pd.date_range("2021-01-21", periods=2, freq="D")
    with pytest.raises(ValueError, match="uses covariates"):
        series.extend(horizon=2)
    with pytest.raises(ValueError, match="agree"):
        series.extend(3, pd.DataFrame({"x": [1.0, 2.0]}, index=index))
    with pytest.raises(ValueError, match="missing covariate column 'x'"):
        series.extend(future=pd.DataFrame({"z": [1.0, 2.0]}, index=index))
    with pytest.raises(ValueError, match="NaN"):
        series.extend(future=pd.DataFrame({"x": [1.0, np.nan]}, index=index))
