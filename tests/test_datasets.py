"""Shipped datasets: load, shape, index, known values, errors and copy semantics."""

import math

import numpy as np
import pandas as pd
import pytest

import bsts.datasets as datasets

EXPECTED = {
    # name: (rows, columns, freq, first index, last index)
    "airline": (144, ["passengers"], "MS", "1949-01-01", "1960-12-01"),
    "coal": (112, ["disasters"], "YS-JAN", "1851-01-01", "1962-01-01"),
    "co2": (526, ["co2"], "MS", "1958-03-01", "2001-12-01"),
    "electricity": (
        1096,
        ["demand", "temperature", "temperature_mean", "holiday"],
        "D",
        "2012-01-01",
        "2014-12-31",
    ),
    "electricity_halfhourly": (
        52608,
        ["demand", "temperature", "holiday"],
        "30min",
        "2012-01-01T00:00+11:00",
        "2014-12-31T23:30+11:00",
    ),
    "lightcurve": (
        1248,
        ["mjd", "mag_b", "err_b", "mag_r", "err_r"],
        None,
        "1992-07-20T11:27:29.002",
        "2000-01-03T07:48:17.021",
    ),
    "nile": (100, ["volume"], "YS-JAN", "1871-01-01", "1970-01-01"),
    "seatbelts": (
        192,
        [
            "drivers_killed",
            "drivers",
            "front",
            "rear",
            "kms",
            "petrol_price",
            "van_killed",
            "law",
        ],
        "MS",
        "1969-01-01",
        "1984-12-01",
    ),
}


def test_list_names_every_dataset():
    names = datasets.list()
    assert names == sorted(EXPECTED)
    assert all(isinstance(n, str) for n in names)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shape_index_and_columns(name):
    rows, columns, freq, first, last = EXPECTED[name]
    df = datasets.load(name)
    assert isinstance(df, pd.DataFrame)
    assert isinstance(df.index, pd.DatetimeIndex)
    assert df.index.name == "time"
    assert df.index.is_monotonic_increasing
    assert df.index.is_unique
    assert list(df.columns) == columns
    assert len(df) == rows
    assert df.index[0] == pd.Timestamp(first)
    assert df.index[-1] == pd.Timestamp(last)
    if freq is None:
        assert df.index.freq is None
    else:
        assert df.index.freq is not None
        assert df.index.freq == pd.tseries.frequencies.to_offset(freq)
        # Every step is exactly one period of the declared freq.
        expected = pd.date_range(df.index[0], periods=rows, freq=freq)
        assert df.index.equals(expected)
    for column in columns:
        assert pd.api.types.is_numeric_dtype(df[column])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_describe_mentions_source_licence_and_columns(name):
    text = datasets.describe(name)
    assert text.startswith(f"{name}: ")
    assert "Source:" in text
    assert "Licence:" in text
    for column in EXPECTED[name][1]:
        assert f"  {column}: " in text
    assert f"Rows: {EXPECTED[name][0]}," in text


def test_airline_known_values():
    s = datasets.load("airline")["passengers"]
    assert s.iloc[0] == 112
    assert s.iloc[-1] == 432
    assert s.loc["1960-07-01"] == 622  # the series maximum
    assert s.max() == 622


def test_nile_known_values():
    s = datasets.load("nile")["volume"]
    assert s.iloc[0] == 1120
    assert s.loc["1872-01-01"] == 1160
    assert s.iloc[-1] == 740


def test_co2_monthly_means_and_gaps():
    s = datasets.load("co2")["co2"]
    # March 1958 has one weekly value (316.1); April has four (317.3, 317.6, 317.5, 316.4).
    assert s.iloc[0] == pytest.approx(316.1)
    assert s.loc["1958-04-01"] == pytest.approx(317.2, abs=1e-3)
    assert s.iloc[-1] == pytest.approx(371.02, abs=1e-3)
    missing = s.index[s.isna()].strftime("%Y-%m").tolist()
    assert missing == ["1958-06", "1958-10", "1964-02", "1964-03", "1964-04"]
    assert s.notna().sum() == 521


def test_seatbelts_law_switches_on_in_february_1983():
    df = datasets.load("seatbelts")
    law = df["law"]
    assert set(law.unique()) == {0, 1}
    assert law.loc[:"1983-01-01"].eq(0).all()
    assert law.loc["1983-02-01":].eq(1).all()
    assert law.diff().fillna(0).abs().sum() == 1
    first = df.iloc[0]
    assert first["drivers_killed"] == 107
    assert first["drivers"] == 1687
    assert first["front"] == 867
    assert first["rear"] == 269
    assert first["kms"] == 9059
    assert first["van_killed"] == 12
    assert first["petrol_price"] == pytest.approx(0.102971811805368)


def test_electricity_daily_is_consistent_with_halfhourly():
    daily = datasets.load("electricity")
    half = datasets.load("electricity_halfhourly")
    assert str(half.index.tz) == "Australia/Melbourne"
    local_day = half.index.tz_localize(None).normalize()
    grouped = half.groupby(local_day)
    np.testing.assert_allclose(daily["demand"], grouped["demand"].mean(), atol=5e-4)
    np.testing.assert_allclose(daily["temperature"], grouped["temperature"].max())
    np.testing.assert_allclose(daily["temperature_mean"], grouped["temperature"].mean(), atol=5e-4)
    np.testing.assert_array_equal(daily["holiday"], grouped["holiday"].max())
    # Daylight-saving days have 46 or 50 half-hours, the others 48.
    sizes = grouped.size()
    assert sorted(sizes.unique()) == [46, 48, 50]
    assert set(daily["holiday"].unique()) == {0, 1}
    assert daily.loc["2012-12-25", "holiday"] == 1
    assert daily.loc["2012-12-24", "holiday"] == 0
    assert half["demand"].iloc[0] == pytest.approx(4382.825174)
    assert half["temperature"].iloc[0] == pytest.approx(21.4)


def test_lightcurve_is_irregular_and_matches_mjd():
    df = datasets.load("lightcurve")
    gaps = np.diff(df.index.asi8)
    assert (gaps > 0).all()
    assert len(np.unique(gaps)) > 1000
    assert len(np.unique(np.diff(gaps))) > 1000
    # The index is the MJD column converted to timestamps (to the millisecond).
    from_mjd = pd.Timestamp("1858-11-17") + pd.to_timedelta(df["mjd"].to_numpy(), unit="D")
    np.testing.assert_allclose(
        (df.index - from_mjd).total_seconds().to_numpy(), 0.0, atol=5e-4 + 1e-6
    )
    assert df["mag_b"].notna().sum() == 1235
    assert df["mag_r"].notna().sum() == 722
    assert (df["mag_b"].isna() == df["err_b"].isna()).all()
    assert (df["mag_r"].isna() == df["err_r"].isna()).all()
    first = df.iloc[0]
    assert first["mjd"] == pytest.approx(48823.477419)
    assert first["mag_b"] == pytest.approx(-6.081)
    assert first["err_b"] == pytest.approx(0.156)


def test_unknown_name_lists_available_and_suggests():
    with pytest.raises(ValueError, match="Available: ") as info:
        datasets.load("airlines")
    message = str(info.value)
    for name in EXPECTED:
        assert name in message
    assert "Did you mean 'airline'?" in message
    with pytest.raises(ValueError, match="Available: "):
        datasets.describe("no-such-thing")


def test_non_string_name_is_a_type_error():
    with pytest.raises(TypeError):
        datasets.load(3)  # type: ignore[arg-type]


def test_returned_frames_are_independent_copies():
    first = datasets.load("airline")
    first.iloc[0, 0] = -1
    first["extra"] = 1.0
    first.loc[first.index[-1], "passengers"] = 0
    second = datasets.load("airline")
    assert second.iloc[0, 0] == 112
    assert list(second.columns) == ["passengers"]
    assert len(second) == 144
    assert second.iloc[-1, 0] == 432
    assert second is not first

    co2 = datasets.load("co2")
    co2["co2"] = co2["co2"].fillna(0.0)
    assert datasets.load("co2")["co2"].isna().sum() == 5


def test_public_names():
    assert set(datasets.__all__) == {"load", "list", "describe", "load_labelled"}
    # `list` is shadowed inside the module only; the builtin is untouched.
    assert list("ab") == ["a", "b"]
    assert not math.isnan(datasets.load("nile")["volume"].mean())


def test_load_labelled_returns_fresh_arrays():
    X_train, y_train, X_test, y_test = datasets.load_labelled("italy_power_demand")
    assert X_train.shape == (67, 24) and X_test.shape == (1029, 24)
    assert set(y_train) == set(y_test) == {"1", "2"}
    assert np.isfinite(X_train).all() and np.isfinite(X_test).all()
    X_train[:] = 0.0
    assert datasets.load_labelled("italy_power_demand")[0].any()
    with pytest.raises(ValueError, match=r"Unknown labelled set 'gunpoint'\. Available"):
        datasets.load_labelled("gunpoint")
