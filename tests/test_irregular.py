"""Unevenly sampled series: exact agreement with gappy regular series, posterior consistency
after random thinning, and a real irregular series (the MACHO light curve) end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bsts
from bsts import datasets
from bsts.data import prepare_series
from bsts.inference import nest_parameters
from bsts.kalman import marginal_log_likelihood

NUTS = {"num_chains": 1, "num_warmup": 300, "num_samples": 300, "progress_bar": False}


def _daily_series(seed: int, size: int = 300) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(size)
    level = 5.0 + np.cumsum(rng.normal(0, 0.3, size))
    y = level + 1.5 * np.sin(2 * np.pi * t / 7.0) + rng.normal(0, 0.5, size)
    return pd.Series(y, index=pd.date_range("2020-01-01", periods=size, freq="D"), name="y")


def _thin(series: pd.Series, keep: float, seed: int) -> pd.Series:
    """Keep each point with probability `keep` (always the first): an irregular series."""
    mask = np.random.default_rng(seed).random(len(series)) < keep
    mask[0] = True
    return series[mask]


def _total_log_likelihood(model, data: pd.Series, values: dict) -> float:
    series = prepare_series(data, None, [])
    ssm = model.state_space(nest_parameters(model, values), model.inputs(series))
    return float(marginal_log_likelihood(ssm, series.y))


def test_irregular_likelihood_equals_regular_series_with_gaps():
    """A random walk's variance and a Fourier pair's rotation over Δt steps are exactly those
    of Δt unit steps, so dropping points (irregular index) or marking them NaN (regular
    index) must give the same likelihood."""
    full = _daily_series(0)
    thinned = _thin(full, keep=0.6, seed=1)
    gappy = full.where(full.index.isin(thinned.index))
    model = bsts.LocalLevel() + bsts.FourierSeasonal(7.0, harmonics=2)
    irregular = prepare_series(thinned, None, [])
    assert not irregular.regular and irregular.step == pd.Timedelta("1D")
    assert prepare_series(gappy, None, []).regular
    values = {"level.scale": 0.2, "fourier.scale": 0.05, "observation.scale": 0.3}
    np.testing.assert_allclose(
        _total_log_likelihood(model, thinned, values),
        _total_log_likelihood(model, gappy, values),
        rtol=1e-10,
    )


# Two NUTS fits compared statistically: a long statistical run.
@pytest.mark.slow
def test_thinned_posterior_is_consistent_with_full_posterior():
    """Thinning loses information but must not move the posterior: the full series'
    posterior medians lie inside the thinned series' 90% intervals (same time unit: both
    have a median step of one day)."""
    full = _daily_series(2, size=200)
    thinned = _thin(full, keep=0.6, seed=3)
    model = bsts.LocalLevel() + bsts.FourierSeasonal(7.0, harmonics=1)
    full_post = bsts.fit(model, full, seed=0, **NUTS)
    thin_post = bsts.fit(model, thinned, seed=0, **NUTS)
    assert not thin_post.series.regular
    for name in ("level.scale", "observation.scale"):
        median = np.median(full_post.samples[name])
        lower, upper = np.percentile(thin_post.samples[name], [5, 95])
        assert lower <= median <= upper, f"{name}: full median {median} not in [{lower}, {upper}]"


@pytest.fixture(scope="module")
def lightcurve_fit():
    data = datasets.load("lightcurve")["mag_b"].dropna().iloc[:360]
    train, test = data.iloc[:-30], data.iloc[-30:]
    step_days = prepare_series(train, None, []).step / pd.Timedelta("1D")
    # The star's dominant Lomb-Scargle period is about 14.9 days; periods are in steps.
    model = bsts.LocalLevel() + bsts.FourierSeasonal(14.9 / step_days, harmonics=1)
    return bsts.fit(model, train, seed=0, **NUTS), test


def test_lightcurve_fits(lightcurve_fit):
    post, _ = lightcurve_fit
    assert not post.series.regular
    summary = post.summary()
    assert np.all(np.isfinite(summary["mean"]))
    assert summary["r_hat"].isna().all() or np.all(summary["r_hat"] < 1.1)


def test_lightcurve_forecasts_at_future_timestamps(lightcurve_fit):
    post, test = lightcurve_fit
    future = pd.DataFrame(index=test.index)
    prediction = bsts.forecast(post, future=future, seed=0)
    table = prediction.to_pandas(interval=0.9)
    pd.testing.assert_index_equal(table.index, test.index)
    assert np.all(np.isfinite(prediction.draws))
    # Far from the data the predictive is wider (the level is a random walk).
    far = pd.DataFrame(index=[test.index[0], test.index[0] + pd.Timedelta(days=3 * 365)])
    spread = bsts.forecast(post, future=far, seed=0).draws.std(axis=0)
    assert spread[1] > 1.5 * spread[0]
    # A sanity bound, not a calibration test: 30 held-out magnitudes, most inside the band.
    inside = (table["lower"] <= test) & (test <= table["upper"])
    assert inside.mean() >= 0.6
