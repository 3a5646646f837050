"""Count and binary observations (`bsts.counts`): recovery, forecasts, decomposition, errors.

The Laplace likelihood itself is checked against dense and exact references in
`test_kalman_laplace.py`; here the families are fitted to series simulated from them.
"""

import numpy as np
import pandas as pd
import pytest

import bsts
from bsts.counts import Bernoulli, Binomial, NegativeBinomial, Poisson

T = 160
LEVEL_SCALE = 0.12


def _index():
    return pd.date_range("2000-01", periods=T, freq="MS")


def _log_rate(seed, start):
    rng = np.random.default_rng(seed)
    return start + np.cumsum(rng.normal(0.0, LEVEL_SCALE, T)), rng


@pytest.fixture(scope="module")
def poisson_series():
    log_rate, rng = _log_rate(1, 1.5)
    y = rng.poisson(np.exp(log_rate)).astype(float)
    y[[20, 21, 90]] = np.nan  # NaN stays missing data
    return pd.Series(y, index=_index(), name="count"), log_rate


@pytest.fixture(scope="module")
def poisson_map(poisson_series):
    series, _ = poisson_series
    return bsts.fit(bsts.Model([bsts.LocalLevel()], observation="poisson"), series, method="map")


@pytest.fixture(scope="module")
def bernoulli_series():
    """Outcomes whose log odds swing slowly between -2.5 and 2.5."""
    rng = np.random.default_rng(2)
    log_odds = 2.5 * np.sin(2 * np.pi * np.arange(T) / 80)
    y = (rng.random(T) < 1.0 / (1.0 + np.exp(-log_odds))).astype(float)
    return pd.Series(y, index=_index(), name="event"), log_odds


def test_model_accepts_the_families_by_name():
    for name, cls in [
        ("poisson", Poisson),
        ("negative_binomial", NegativeBinomial),
        ("bernoulli", Bernoulli),
    ]:
        model = bsts.Model([bsts.LocalLevel()], observation=name)
        assert isinstance(model.observation, cls) and model.observation == name
    with pytest.raises(ValueError, match="no noise scale"):
        bsts.Model(
            [bsts.LocalLevel()], observation="poisson", observation_scale_prior=_halfnormal()
        )


def _halfnormal():
    import numpyro.distributions as dist

    return dist.HalfNormal(1.0)


def test_poisson_map_recovers_the_rate(poisson_series, poisson_map):
    _, log_rate = poisson_series
    post = poisson_map
    assert post.series.location == 0.0 and post.series.scale == 1.0  # counts stay counts
    scale = float(post.samples["level.scale"].ravel()[0])
    assert 0.04 < scale < 0.3
    parts = bsts.decompose(post).to_pandas()
    fitted = parts["fitted"]["mean"].to_numpy()
    assert np.corrcoef(fitted, log_rate)[0, 1] > 0.9  # the link scale
    assert np.sqrt(np.mean((fitted - log_rate) ** 2)) < 0.35
    rate = parts["rate"]["mean"].to_numpy()
    np.testing.assert_allclose(rate, np.exp(fitted), rtol=1e-6)


def test_trend_of_a_count_model_is_on_the_log_rate(poisson_series, poisson_map):
    _, log_rate = poisson_series
    table = bsts.analysis.trend(poisson_map, interval=0.95)
    change = table.loc["change"]
    # The smoother runs on the Poisson likelihood's approximation, not on the raw counts.
    assert change["lower"] < log_rate[-1] - log_rate[0] < change["upper"]
    assert change["upper"] - change["lower"] < 2.0


def test_count_forecasts_are_integer_draws(poisson_map):
    prediction = bsts.forecast(poisson_map, horizon=6)
    assert prediction.discrete and prediction.draws.dtype == np.int64
    assert prediction.draws.shape == (1000, 6) and prediction.draws.min() >= 0
    table = prediction.to_pandas(interval=0.9)
    assert list(table.columns) == ["mean", "median", "lower", "upper"]
    for column in ["median", "lower", "upper"]:
        assert np.all(table[column] == np.round(table[column]))  # values the counts take
    assert np.all(table["lower"] <= table["median"]) and np.all(table["median"] <= table["upper"])
    # The MAP forecast's spread is Poisson noise plus the level's random walk.
    level = float(np.exp(bsts.decompose(poisson_map).fitted[0, -1]))
    assert abs(table["mean"].iloc[0] - level) < 3 * np.sqrt(level / 1000) + 0.2


def test_negative_binomial_recovers_over_dispersion():
    log_rate, rng = _log_rate(3, 2.0)
    concentration = 3.0
    y = rng.poisson(rng.gamma(concentration, np.exp(log_rate) / concentration)).astype(float)
    series = pd.Series(y, index=_index(), name="count")
    post = bsts.fit(
        bsts.Model([bsts.LocalLevel()], observation="negative_binomial"), series, method="map"
    )
    r = float(post.samples["observation.concentration"].ravel()[0])
    assert 1.2 < r < 10.0
    draws = bsts.forecast(post, horizon=1).draws
    assert draws.var() > 1.5 * draws.mean()  # over-dispersed draws


def test_bernoulli_recovers_the_log_odds(bernoulli_series):
    series, log_odds = bernoulli_series
    post = bsts.fit(bsts.Model([bsts.LocalLevel()], observation="bernoulli"), series, method="map")
    parts = bsts.decompose(post).to_pandas()
    assert np.corrcoef(parts["fitted"]["mean"], log_odds)[0, 1] > 0.75
    probability = parts["rate"]["mean"].to_numpy()
    assert np.all((probability > 0) & (probability < 1))
    truth = 1.0 / (1.0 + np.exp(-log_odds))
    assert np.mean(np.abs(probability - truth)) < 0.2
    draws = bsts.forecast(post, horizon=4).draws
    assert set(np.unique(draws)) <= {0, 1}


def test_nuts_on_counts_covers_the_truth(poisson_series):
    series, _ = poisson_series
    post = bsts.fit(
        bsts.Model([bsts.LocalLevel()], observation="poisson"),
        series,
        num_warmup=200,
        num_samples=200,
        num_chains=1,
        seed=1,
    )
    draws = post.samples["level.scale"].ravel()
    assert np.quantile(draws, 0.005) < LEVEL_SCALE < np.quantile(draws, 0.995)
    assert post.sample_stats["diverging"].sum() <= 2
    loglik = post.pointwise_log_likelihood()
    assert loglik.shape == (1, 200, T) and np.all(loglik[..., 20] == 0.0)
    assert np.all(np.isfinite(loglik)) and np.all(loglik <= 0.0)


def test_bad_values_get_clear_errors():
    index = _index()[:5]
    negative = pd.Series([1.0, -2.0, 3.0, 0.0, 1.0], index=index)
    fraction = pd.Series([1.0, 2.5, 3.0, 0.0, 1.0], index=index)
    for observation in ["poisson", "negative_binomial"]:
        model = bsts.Model([bsts.LocalLevel()], observation=observation)
        for values in (negative, fraction):
            with pytest.raises(ValueError, match="not counts"):
                bsts.fit(model, values, method="map")
    with pytest.raises(ValueError, match="other than 0 and 1"):
        bsts.fit(bsts.Model([bsts.LocalLevel()], observation="bernoulli"), fraction, method="map")
    with pytest.raises(ValueError, match="importance_samples"):
        Poisson(importance_samples=3)


def test_fit_many_batches_count_models(poisson_series, poisson_map):
    series, _ = poisson_series
    frame = pd.concat(
        [
            pd.DataFrame({"unique_id": "a", "ds": series.index, "y": series.to_numpy()}),
            pd.DataFrame({"unique_id": "b", "ds": series.index, "y": series.to_numpy()[::-1]}),
        ]
    )
    model = bsts.Model([bsts.LocalLevel()], observation="poisson")
    fits = bsts.fit_many(model, frame, method="map")
    np.testing.assert_allclose(
        fits["a"].samples["level.scale"], poisson_map.samples["level.scale"], rtol=1e-5
    )
    prediction = bsts.forecast(fits, horizon=3)
    assert prediction["a"].discrete and prediction["a"].draws.shape == (1000, 3)
    with pytest.raises(ValueError, match="not counts"):
        bsts.fit_many(model, frame.assign(y=frame["y"] + 0.5), method="map")


def test_count_posterior_round_trips(tmp_path, poisson_map):
    path = tmp_path / "counts.bsts"
    poisson_map.save(path)
    loaded = bsts.Posterior.load(path)
    assert loaded.model.observation == poisson_map.model.observation
    np.testing.assert_array_equal(
        bsts.forecast(loaded, horizon=2).draws, bsts.forecast(poisson_map, horizon=2).draws
    )


def test_one_step_predictions_of_counts(poisson_series, poisson_map):
    series, _ = poisson_series
    table = bsts.one_step_predictions(poisson_map)
    observed = ~series.isna().to_numpy()
    assert np.all(table["mean"] > 0) and np.all(table["sd"] > 0)
    # Poisson noise at least: the predictive variance exceeds the predictive mean.
    assert np.all(table["sd"].to_numpy() ** 2 >= table["mean"].to_numpy() * (1 - 1e-4))
    residual = table["residual"].to_numpy()[observed]
    assert abs(residual.mean()) < 0.3 and 0.6 < residual.std() < 1.4  # Pearson residuals
    assert table["residual"].isna().to_numpy()[~observed].all()


def test_anomalies_flag_an_injected_burst_of_counts(poisson_series):
    series, log_rate = poisson_series
    burst = series.copy()
    burst.iloc[60] = np.round(np.exp(log_rate[60])) + 25  # far outside Poisson noise
    post = bsts.fit(bsts.Model([bsts.LocalLevel()], observation="poisson"), burst, method="map")
    table = bsts.analysis.anomalies(post, threshold=0.001, flagged_only=False)
    assert table["flagged"].iloc[60]
    assert table["flagged"].sum() <= 3  # and little else at this threshold
    observed = table["tail_probability"].dropna()
    assert observed.between(0.0, 1.0).all()
    assert np.isnan(table["tail_probability"].iloc[20])  # missing steps are never scored
    assert (table["expected"] > 0).all()


def test_importance_sampling_corrects_the_fit_and_its_paths(poisson_series, poisson_map):
    series, log_rate = poisson_series
    model = bsts.Model([bsts.LocalLevel()], observation=Poisson(importance_samples=16))
    post = bsts.fit(model, series, method="map")
    laplace = float(poisson_map.samples["level.scale"].ravel()[0])
    corrected = float(post.samples["level.scale"].ravel()[0])
    assert abs(corrected - laplace) < 0.3 * laplace  # a correction, not a different fit
    fitted = bsts.decompose(post, num_samples=None).fitted
    assert np.corrcoef(fitted[0], log_rate)[0, 1] > 0.9
    prediction = bsts.forecast(post, horizon=3)
    assert prediction.discrete and prediction.draws.shape == (1000, 3)


def test_count_distribution_functions_match_scipy():
    from scipy import stats

    theta = np.array([-1.0, 0.3, 1.2, 2.5])
    counts = np.array([0.0, 2.0, 5.0, 9.0])
    mu = np.exp(theta)
    got = np.asarray(Poisson().cdf(counts, theta, {}))
    np.testing.assert_allclose(got, stats.poisson.cdf(counts, mu), rtol=1e-6)
    r = 3.0
    got = np.asarray(NegativeBinomial().cdf(counts, theta, {"concentration": r}))
    np.testing.assert_allclose(got, stats.nbinom.cdf(counts, r, r / (r + mu)), rtol=1e-6)
    got = np.asarray(Bernoulli().cdf(np.array([-1.0, 0.0, 1.0, 0.0]), theta, {}))
    np.testing.assert_allclose(got, [0.0, 1 / (1 + np.exp(0.3)), 1.0, 1 / (1 + np.exp(2.5))])
    assert float(Poisson().cdf(-1.0, 0.0, {})) == 0.0
    trials = np.array([1.0, 4.0, 5.0, 30.0])
    binomial, given = Binomial(trials="n"), {"trials": trials}
    probability = 1.0 / (1.0 + np.exp(-theta))
    for k in (counts, counts - 1.0, np.minimum(counts, trials)):
        got = np.asarray(binomial.cdf(k, theta, given))
        np.testing.assert_allclose(got, stats.binom.cdf(k, trials, probability), rtol=1e-6)
    k = np.minimum(counts, trials)
    got = np.asarray(binomial.log_density(k, theta, given))
    np.testing.assert_allclose(got, stats.binom.logpmf(k, trials, probability), rtol=1e-6)


@pytest.fixture(scope="module")
def binomial_frame():
    """Successes out of 3 to 40 trials a month, log odds wandering around -0.5."""
    rng = np.random.default_rng(4)
    log_odds = -0.5 + np.cumsum(rng.normal(0.0, LEVEL_SCALE, T))
    trials = rng.integers(3, 41, T)
    y = rng.binomial(trials, 1.0 / (1.0 + np.exp(-log_odds))).astype(float)
    y[[30, 31]] = np.nan
    return pd.DataFrame({"y": y, "n": trials}, index=_index()), log_odds


@pytest.fixture(scope="module")
def binomial_map(binomial_frame):
    frame, _ = binomial_frame
    model = bsts.Model([bsts.LocalLevel()], observation=bsts.Binomial(trials="n"))
    return bsts.fit(model, frame, target="y", method="map")


def _future_trials(index, values):
    start = index[-1] + pd.offsets.MonthBegin()
    return pd.DataFrame({"n": values}, index=pd.date_range(start, periods=len(values), freq="MS"))


def test_binomial_with_a_trials_column_recovers_the_probability(binomial_frame, binomial_map):
    frame, log_odds = binomial_frame
    assert binomial_map.series.covariates["n"].tolist() == frame["n"].tolist()  # as given
    parts = bsts.decompose(binomial_map, num_samples=None).to_pandas()
    truth = 1.0 / (1.0 + np.exp(-log_odds))
    probability = parts["rate"]["mean"].to_numpy()
    assert np.mean(np.abs(probability - truth)) < 0.06
    assert np.corrcoef(parts["fitted"]["mean"], log_odds)[0, 1] > 0.8  # one drawn path
    future = _future_trials(frame.index, [0, 1, 10, 200])
    prediction = bsts.forecast(binomial_map, future=future)
    draws = prediction.draws
    assert prediction.discrete and draws.dtype == np.int64
    assert np.all(draws >= 0) and np.all(draws <= np.array([0, 1, 10, 200]))
    share = draws[:, 3].mean() / 200  # successes per trial, against the last probability
    assert abs(share - truth[-1]) < 0.12  # posterior sd about 0.05; trials ignored: 0.4
    with pytest.raises(ValueError, match="'n'"):
        bsts.forecast(binomial_map, horizon=3)  # future trials are data, not forecasts
    with pytest.raises(ValueError, match="not counts"):
        bsts.forecast(binomial_map, future=_future_trials(frame.index, [2.5]))


def test_binomial_with_fixed_trials_equals_the_column(binomial_frame):
    frame, _ = binomial_frame
    fixed = frame.assign(y=np.minimum(frame["y"], 20.0), n=20)
    by_column = bsts.Model([bsts.LocalLevel()], observation=bsts.Binomial(trials="n"))
    by_number = bsts.Model([bsts.LocalLevel()], observation=bsts.Binomial(trials=20))
    one = bsts.fit(by_column, fixed, target="y", method="map")
    other = bsts.fit(by_number, fixed[["y"]], target="y", method="map")
    np.testing.assert_allclose(
        one.pointwise_log_likelihood(), other.pointwise_log_likelihood(), rtol=1e-6
    )
    draws = bsts.forecast(other, horizon=2).draws
    assert draws.max() <= 20


def test_binomial_of_one_trial_is_the_bernoulli(bernoulli_series):
    series, _ = bernoulli_series
    frame = series.to_frame().assign(n=1)
    bernoulli = bsts.fit(
        bsts.Model([bsts.LocalLevel()], observation="bernoulli"), series, method="map"
    )
    binomial = bsts.fit(
        bsts.Model([bsts.LocalLevel()], observation=bsts.Binomial(trials="n")),
        frame,
        target="event",
        method="map",
    )
    np.testing.assert_allclose(
        binomial.samples["level.scale"], bernoulli.samples["level.scale"], rtol=1e-5
    )
    np.testing.assert_allclose(
        binomial.pointwise_log_likelihood(), bernoulli.pointwise_log_likelihood(), atol=1e-6
    )


def test_binomial_bad_input_gets_clear_errors(binomial_frame):
    frame, _ = binomial_frame
    model = bsts.Model([bsts.LocalLevel()], observation=bsts.Binomial(trials="n"))
    with pytest.raises(ValueError, match="Binomial\\(trials="):
        bsts.Model([bsts.LocalLevel()], observation="binomial")
    with pytest.raises(ValueError, match="column name or a positive integer"):
        bsts.Binomial(trials=0)
    with pytest.raises(ValueError, match="more successes than trials"):
        bsts.fit(model, frame.assign(y=frame["n"] + 1.0), target="y", method="map")
    with pytest.raises(ValueError, match="not counts"):
        bsts.fit(model, frame.assign(n=frame["n"] + 0.5), target="y", method="map")
    with pytest.raises(ValueError, match="0 trials"):
        bsts.fit(model, frame.assign(n=np.where(frame["y"] == 0, 0, frame["n"])), "y", "map")
    with pytest.raises(ValueError, match="'n' is not in the data"):
        bsts.fit(model, frame[["y"]], target="y", method="map")
    before = frame.copy()
    bsts.fit(model, frame.assign(y=np.where(frame["n"] > 30, np.nan, frame["y"])), "y", "map")
    pd.testing.assert_frame_equal(frame, before)  # the user's frame is left alone


def test_fit_many_batches_binomial_models(binomial_frame, binomial_map, tmp_path):
    frame, _ = binomial_frame
    long = (
        pd.concat(
            [
                frame.assign(unique_id="a"),
                frame.assign(unique_id="b", n=frame["n"] * 2).iloc[:120],
            ]
        )
        .rename_axis("ds")
        .reset_index()
    )
    fits = bsts.fit_many(binomial_map.model, long, method="map")
    np.testing.assert_allclose(
        fits["a"].samples["level.scale"], binomial_map.samples["level.scale"], rtol=1e-5
    )
    future = (
        pd.concat(
            [
                _future_trials(frame.index, [5, 6]).assign(unique_id="a"),
                _future_trials(frame.index[:120], [7, 8]).assign(unique_id="b"),
            ]
        )
        .rename_axis("ds")
        .reset_index()
    )
    prediction = bsts.forecast(fits, future=future)
    assert prediction["a"].draws.max() <= 6 and prediction["b"].draws.max() <= 8
    path = tmp_path / "binomial.bsts"
    binomial_map.save(path)
    loaded = bsts.Posterior.load(path)
    assert loaded.model.observation == bsts.Binomial(trials="n")
    future = _future_trials(frame.index, [10, 10])
    np.testing.assert_array_equal(
        bsts.forecast(loaded, future=future).draws, bsts.forecast(binomial_map, future=future).draws
    )


def test_binomial_one_step_predictions_and_anomalies(binomial_frame, binomial_map):
    frame, _ = binomial_frame
    table = bsts.one_step_predictions(binomial_map)
    observed = ~frame["y"].isna().to_numpy()
    assert np.all(table["mean"].to_numpy() <= frame["n"].to_numpy())
    residual = table["residual"].to_numpy()[observed]
    assert abs(residual.mean()) < 0.3 and 0.6 < residual.std() < 1.4  # Pearson residuals
    burst = frame.copy()
    burst.iloc[80] = [40.0, 40]  # every one of 40 trials a success
    post = bsts.fit(binomial_map.model, burst, target="y", method="map")
    flagged = bsts.analysis.anomalies(post, threshold=0.001, flagged_only=False)["flagged"]
    assert flagged.iloc[80] and flagged.sum() <= 3
