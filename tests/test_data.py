"""`bsts.data.prepare_series`: standardisation, time steps, copy semantics and input errors."""

import copy

import numpy as np
import pandas as pd
import pytest

import bsts
from bsts.data import SeriesData, prepare_series, time_steps


def _daily_frame(rng, n=40, with_covariates=True):
    index = pd.date_range("2021-01-01", periods=n, freq="D")
    frame = pd.DataFrame({"y": 10.0 + np.cumsum(rng.normal(size=n))}, index=index)
    if with_covariates:
        frame["x"] = rng.normal(3.0, 2.0, size=n)
        frame["z"] = np.arange(n, dtype=float)
    return frame


# -- standardisation ------------------------------------------------------------------------


def test_target_is_standardised_over_observed_values(rng):
    frame = _daily_frame(rng)
    frame.iloc[[3, 17], 0] = np.nan
    series = prepare_series(frame, "y", [])

    assert isinstance(series, SeriesData)
    observed = ~np.isnan(series.y)
    np.testing.assert_allclose(np.mean(series.y[observed]), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.std(series.y[observed]), 1.0, rtol=1e-12)

    raw = frame["y"].to_numpy()
    np.testing.assert_allclose(series.location, np.nanmean(raw), rtol=1e-12)
    np.testing.assert_allclose(series.scale, np.nanstd(raw), rtol=1e-12)
    np.testing.assert_allclose(series.to_original(series.y), raw, rtol=1e-12)
    assert series.target == "y"
    assert series.num_timesteps == len(frame)


def test_missing_target_values_stay_missing(rng):
    frame = _daily_frame(rng)
    frame.iloc[[0, 5, 6, 39], 0] = np.nan
    series = prepare_series(frame, "y", [])
    np.testing.assert_array_equal(np.isnan(series.y), frame["y"].isna().to_numpy())
    assert series.y.shape == (len(frame),)


def test_covariates_are_standardised(rng):
    frame = _daily_frame(rng)
    series = prepare_series(frame, "y", ["x", "z"])
    assert set(series.covariates) == {"x", "z"}
    for name in ("x", "z"):
        raw = frame[name].to_numpy()
        np.testing.assert_allclose(series.covariate_locations[name], raw.mean(), rtol=1e-12)
        np.testing.assert_allclose(series.covariate_scales[name], raw.std(), rtol=1e-12)
        np.testing.assert_allclose(series.covariates[name].mean(), 0.0, atol=1e-12)
        np.testing.assert_allclose(series.covariates[name].std(), 1.0, rtol=1e-12)
    again = series.standardise_covariates(frame, ["x"])
    np.testing.assert_allclose(again["x"], series.covariates["x"], rtol=1e-12)


def test_series_input_uses_its_name(rng):
    frame = _daily_frame(rng, with_covariates=False)
    series = prepare_series(frame["y"].rename("sales"), None, [])
    assert series.target == "sales"
    unnamed = prepare_series(pd.Series(frame["y"].to_numpy(), index=frame.index), None, [])
    assert unnamed.target == "y"
    np.testing.assert_allclose(unnamed.y, series.y)


def test_user_frame_is_not_modified(rng):
    frame = _daily_frame(rng)
    frame.iloc[4, 0] = np.nan
    before = copy.deepcopy(frame)
    series = prepare_series(frame, "y", ["x", "z"])
    pd.testing.assert_frame_equal(frame, before, check_freq=True)
    assert frame.index.freq == before.index.freq
    # The result does not share memory with the user's frame.
    series.y[:] = 0.0
    series.covariates["x"][:] = 0.0
    pd.testing.assert_frame_equal(frame, before)
    assert series.index is not frame.index


# -- time steps -------------------------------------------------------------------------------


def test_regular_datetime_index(rng):
    series = prepare_series(_daily_frame(rng), "y", [])
    assert series.regular
    np.testing.assert_array_equal(series.dt, np.ones(40))
    assert series.frequency == "D"
    assert series.step == pd.tseries.frequencies.to_offset("D")


def test_regular_datetime_index_without_freq_is_inferred(rng):
    frame = _daily_frame(rng)
    frame.index = pd.DatetimeIndex(list(frame.index))  # same stamps, freq=None
    assert frame.index.freq is None
    series = prepare_series(frame, "y", [])
    assert series.regular
    assert series.frequency == "D"
    np.testing.assert_array_equal(series.dt, np.ones(40))


def test_nile_is_regular_yearly():
    series = prepare_series(bsts.datasets.load("nile"), "volume", [])
    assert series.regular
    assert series.frequency is not None and series.frequency.startswith("YS")
    np.testing.assert_array_equal(series.dt, np.ones(100))


def test_irregular_datetime_index(rng):
    frame = _daily_frame(rng, n=60)
    keep = np.sort(rng.choice(60, size=40, replace=False))
    keep[0] = 0
    frame = frame.iloc[np.unique(keep)]
    series = prepare_series(frame, "y", [])

    days = np.diff(frame.index.to_numpy()) / np.timedelta64(1, "D")
    expected = np.concatenate([[1.0], days / np.median(days)])
    assert not series.regular
    assert series.frequency is None
    np.testing.assert_allclose(series.dt, expected, rtol=1e-12)
    assert series.dt[0] == 1.0
    assert series.step == pd.Timedelta(days=float(np.median(days)))


def test_irregular_lightcurve():
    frame = bsts.datasets.load("lightcurve")
    series = prepare_series(frame, "mag_r", [])
    gaps = np.diff(frame.index.asi8).astype(float)
    assert not series.regular
    np.testing.assert_allclose(series.dt[1:], gaps / np.median(gaps), rtol=1e-12)
    np.testing.assert_allclose(np.median(series.dt[1:]), 1.0)
    assert np.all(series.dt > 0)


def test_numeric_index(rng):
    regular = pd.DataFrame({"y": rng.normal(size=20)}, index=np.arange(20) * 0.5)
    series = prepare_series(regular, "y", [])
    assert series.regular
    np.testing.assert_array_equal(series.dt, np.ones(20))
    assert series.step == pytest.approx(0.5)
    assert series.frequency is None

    times = np.array([0.0, 1.0, 2.0, 5.0, 5.5, 6.5, 7.5, 8.5, 12.0])
    irregular = pd.DataFrame({"y": rng.normal(size=times.size)}, index=times)
    series = prepare_series(irregular, "y", [])
    assert not series.regular
    np.testing.assert_allclose(series.dt, [1.0, 1.0, 1.0, 3.0, 0.5, 1.0, 1.0, 1.0, 3.5])

    ranged = pd.DataFrame({"y": rng.normal(size=10)})  # RangeIndex
    assert prepare_series(ranged, "y", []).regular


def test_time_steps_directly():
    dt, step, regular, frequency = time_steps(pd.Index([0.0, 2.0, 4.0, 10.0]))
    np.testing.assert_allclose(dt, [1.0, 1.0, 1.0, 3.0])
    assert step == 2.0
    assert not regular
    assert frequency is None


# -- errors -----------------------------------------------------------------------------------


def test_duplicate_timestamps(rng):
    frame = _daily_frame(rng, with_covariates=False)
    frame.index = frame.index[[0, 1, 2, 2, *range(4, 40)]]
    with pytest.raises(ValueError, match="duplicate timestamps"):
        prepare_series(frame, "y", [])


def test_non_monotonic_timestamps(rng):
    frame = _daily_frame(rng, with_covariates=False)
    frame = frame.iloc[[1, 0, *range(2, 40)]]
    with pytest.raises(ValueError, match=r"increasing.*sort_index"):
        prepare_series(frame, "y", [])


def test_all_nan_target(rng):
    frame = _daily_frame(rng, with_covariates=False)
    frame["y"] = np.nan
    with pytest.raises(ValueError, match="0 observed values"):
        prepare_series(frame, "y", [])


def test_infinite_target(rng):
    frame = _daily_frame(rng, with_covariates=False)
    frame.iloc[7, 0] = np.inf
    with pytest.raises(ValueError, match="'y' has infinite values"):
        prepare_series(frame, "y", [])


def test_string_target(rng):
    frame = _daily_frame(rng, with_covariates=False)
    frame["y"] = [f"v{i}" for i in range(len(frame))]
    with pytest.raises(ValueError, match=r"'y' must be numeric.*pd\.to_numeric"):
        prepare_series(frame, "y", [])


def test_missing_target_column(rng):
    frame = _daily_frame(rng)
    with pytest.raises(ValueError, match=r"target column 'sales' is not in the data.*y, x, z"):
        prepare_series(frame, "sales", [])


def test_missing_covariate_column(rng):
    frame = _daily_frame(rng)
    with pytest.raises(ValueError, match="covariate column 'price' is not in the data"):
        prepare_series(frame, "y", ["x", "price"])


def test_nan_in_covariate(rng):
    frame = _daily_frame(rng)
    frame.iloc[[5, 9], 1] = np.nan
    with pytest.raises(ValueError, match="covariate column 'x' has 2 NaN") as info:
        prepare_series(frame, "y", ["x"])
    message = str(info.value)
    assert str(frame.index[5]) in message
    assert str(frame.index[9]) in message


def test_empty_frame():
    frame = pd.DataFrame({"y": pd.Series([], dtype=float)})
    with pytest.raises(ValueError, match="empty"):
        prepare_series(frame, "y", [])


def test_too_short_series(rng):
    frame = _daily_frame(rng, n=5, with_covariates=False)
    frame.iloc[[1, 3, 4], 0] = np.nan
    with pytest.raises(ValueError, match="2 observed values; at least 3"):
        prepare_series(frame, "y", [])


def test_constant_target(rng):
    frame = _daily_frame(rng, with_covariates=False)
    frame["y"] = 4.2
    with pytest.raises(ValueError, match="constant"):
        prepare_series(frame, "y", [])


def test_dataframe_needs_target(rng):
    with pytest.raises(ValueError, match="target="):
        prepare_series(_daily_frame(rng), None, [])


def test_data_of_wrong_type():
    with pytest.raises(ValueError, match=r"Series or DataFrame.*ndarray"):
        prepare_series(np.arange(10.0), "y", [])


def test_non_time_index(rng):
    frame = pd.DataFrame({"y": rng.normal(size=5)}, index=list("abcde"))
    with pytest.raises(ValueError, match="DatetimeIndex or numeric"):
        prepare_series(frame, "y", [])


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_irregular_step_is_right_at_any_index_resolution(unit):
    index = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-04", "2020-01-05"]).as_unit(unit)
    series = prepare_series(pd.Series([1.0, 2.0, 0.5, 3.0], index=index), None, [])
    assert series.step == pd.Timedelta("1D")
    np.testing.assert_allclose(series.dt, [1.0, 1.0, 2.0, 1.0])


def test_a_gap_is_a_missing_step_before_the_last_observation():
    def gapped(values):
        return prepare_series(pd.Series(values, dtype=float), None, []).gapped

    assert not gapped([1.0, 2.0, 3.0, 4.0])
    assert not gapped([1.0, 2.0, 3.0, np.nan, np.nan])  # padding and future steps
    assert gapped([1.0, np.nan, 3.0, 4.0])
    assert gapped([np.nan, 2.0, 3.0, 4.0])


def test_missing_rows_of_a_regular_grid_become_missing_steps():
    index = pd.date_range("2024-01-01", periods=200, freq="h")
    values = np.sin(np.arange(200) / 5.0)
    holed = pd.Series(values, index).drop(index[[10, 50, 51, 120]])
    before = holed.copy()
    series = prepare_series(holed, None, [])
    assert series.regular and series.frequency == "h" and series.num_timesteps == 200
    assert np.flatnonzero(np.isnan(series.y)).tolist() == [10, 50, 51, 120]
    assert series.gap_capacity == 4
    pd.testing.assert_series_equal(holed, before)  # the user's series is untouched

    # Left as they are: covariates (unknown on the missing rows), numeric indexes, and
    # times that are not a grid (a step that is not a whole number of the usual one).
    frame = holed.to_frame("y").assign(x=np.arange(196.0))
    assert not prepare_series(frame, "y", ["x"]).regular
    numeric = pd.Series(values, np.arange(200.0)).drop(np.arange(200.0)[[10, 50]])
    assert not prepare_series(numeric, None, []).regular
    uneven = pd.Series(values[:4], index[[0, 2, 3, 5]] + pd.to_timedelta([0, 0, 0, 30], "min"))
    assert not prepare_series(uneven, None, []).regular
