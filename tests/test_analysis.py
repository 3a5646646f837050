"""bsts.analysis: the five questions, each against a known truth, and their bad-input errors.

Fits are small (NUTS with one short chain, or SVI where only the posterior's centre
matters) and shared through module fixtures. Thresholds are justified where they are set.
"""

import matplotlib

matplotlib.use("Agg")

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpyro import handlers
from scipy.signal import lombscargle

import bsts
from bsts import analysis
from bsts.analysis import periodicity
from bsts.data import prepare_series
from bsts.inference import nest_parameters

SMALL_NUTS = {"num_warmup": 200, "num_samples": 200, "num_chains": 1}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _daily(values, name="y"):
    index = pd.date_range("2001-01-01", periods=len(values), freq="D")
    return pd.Series(values, index=index, name=name)


# -- anomalies and trend share one series ----------------------------------------------------
#
# 150 days: the level rises by TREND_RISE over the first 75 steps, then stays flat; noise sd
# 0.5; five spikes of 8-9 noise sds. One Gaussian and one Student-t fit serve both questions.

ANOMALY_POSITIONS = np.array([25, 55, 85, 115, 135])
TREND_RISE = 3.0
KINK = 75


@pytest.fixture(scope="module")
def anomaly_data():
    rng = np.random.default_rng(7)
    T = 150
    level = np.minimum(np.arange(T), KINK) * TREND_RISE / KINK
    values = level + rng.normal(0.0, 0.5, T)
    values[ANOMALY_POSITIONS] += np.array([4.0, -4.0, 4.5, -4.5, 4.0])
    return _daily(values)


def _fit_anomaly_model(data, kind):
    return bsts.fit(bsts.Model([bsts.LocalLinearTrend()], observation=kind), data, **SMALL_NUTS)


@pytest.fixture(scope="module")
def robust_post(anomaly_data):
    return _fit_anomaly_model(anomaly_data, "student_t")


@pytest.fixture(scope="module")
def gaussian_post(anomaly_data):
    # Only the slow comparisons use it: one more NUTS compilation is ~10 s of test time.
    return _fit_anomaly_model(anomaly_data, "gaussian")


def test_trend_detects_a_known_trend_and_a_flat_stretch(robust_post):
    post = robust_post
    index = post.series.index
    rising = analysis.trend(post, index[0], index[KINK])
    assert list(rising.index) == ["change", "rate", "slope"]
    assert list(rising.columns) == ["mean", "lower", "upper", "prob_positive", "prob_negative"]
    # A rise of 6 noise sds over 75 steps: every path rises, the 90% interval holds it.
    assert rising.loc["change", "prob_positive"] > 0.99
    assert rising.loc["change", "lower"] < TREND_RISE < rising.loc["change", "upper"]
    assert rising.loc["rate", "lower"] < TREND_RISE / KINK < rising.loc["rate", "upper"]
    flat = analysis.trend(post, index[KINK + 12], index[-1])
    # No trend: the interval holds 0 and neither sign is certain.
    assert flat.loc["change", "lower"] < 0 < flat.loc["change", "upper"]
    assert 0.05 < flat.loc["change", "prob_positive"] < 0.95
    np.testing.assert_allclose(flat["prob_positive"] + flat["prob_negative"], 1.0)


def test_trend_window_and_errors(robust_post):
    post = robust_post
    index = post.series.index
    part = analysis.trend(post, index[10], index[40])
    assert part.attrs["start"] == index[10] and part.attrs["end"] == index[40]
    # The rate is the change over the 30 elapsed steps.
    np.testing.assert_allclose(part.loc["rate", "mean"], part.loc["change", "mean"] / 30)
    # Labels between observation times snap inwards.
    snapped = analysis.trend(post, index[10] - pd.Timedelta(hours=12), index[40])
    assert snapped.attrs["start"] == index[10]
    with pytest.raises(ValueError, match="inverted"):
        analysis.trend(post, index[40], index[10])
    with pytest.raises(ValueError, match="outside the data"):
        analysis.trend(post, "2030-01-01", "2031-01-01")
    with pytest.raises(ValueError, match="fewer than two"):
        analysis.trend(post, index[10], index[10])
    with pytest.raises(ValueError, match="interval"):
        analysis.trend(post, interval=1.5)
    with pytest.raises(ValueError, match="not a trend component"):
        analysis.trend(post, component="seasonal")
    with pytest.raises(TypeError, match="Posterior"):
        analysis.trend("not a posterior")
    assert isinstance(analysis.plot_trend(post, index[10], index[40]), Axes)


@pytest.mark.slow
def test_anomalies_precision_and_recall(gaussian_post):
    post = gaussian_post
    # At threshold 1e-3 a calibrated model flags about 0.15 of the 145 clean points, so
    # precision and recall of at least 0.8 allow one miss or one false alarm.
    table = analysis.anomalies(post, threshold=1e-3)
    assert list(table.columns[:3]) == ["time", "value", "tail_probability"]
    flagged = set(post.series.index.get_indexer(table["time"]))
    truth = set(ANOMALY_POSITIONS.tolist())
    precision = len(flagged & truth) / max(len(flagged), 1)
    recall = len(flagged & truth) / len(truth)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)
    everything = analysis.anomalies(post, threshold=1e-3, flagged_only=False)
    assert len(everything) == post.series.num_timesteps
    assert ((everything["tail_probability"] > 0) & (everything["tail_probability"] <= 1)).all()


@pytest.mark.slow
def test_robust_fit_is_less_distorted(gaussian_post, robust_post):
    posts = {"gaussian": gaussian_post, "student_t": robust_post}
    for kind, post in posts.items():
        scores = analysis.anomalies(post, threshold=0.5, flagged_only=False)
        # Both fits rank the injected points as the five least likely.
        lowest = set(np.argsort(scores["tail_probability"].to_numpy())[:5].tolist())
        assert lowest == set(ANOMALY_POSITIONS.tolist()), kind
    # The Gaussian noise scale absorbs the outliers (about sqrt(0.25 + 5 * 18 / 150) = 0.92
    # instead of the true 0.5); the Student-t scale stays near the clean noise.
    gaussian = np.median(gaussian_post.samples["observation.scale"])
    robust = np.median(robust_post.samples["observation.scale"])
    assert gaussian > 0.75
    assert abs(robust - 0.5) < 0.5 * abs(gaussian - 0.5), (robust, gaussian)


def test_robust_core_score_flags_the_injected_points(robust_post):
    post = robust_post
    df = post.samples["observation.df"]
    assert np.median(df) < 10  # the heavy tails were learnt
    core = analysis.anomalies(post, threshold=1e-3, score="core")
    assert list(core.columns) == ["time", "value", "tail_probability", "expected", "lower", "upper"]
    flagged = set(post.series.index.get_indexer(core["time"]))
    truth = set(ANOMALY_POSITIONS.tolist())
    # Same budget as the Gaussian test: at most one miss or one false alarm.
    hits = len(flagged & truth)
    assert hits / max(len(flagged), 1) >= 0.8 and hits / len(truth) >= 0.8, flagged
    # Under its own heavy-tailed predictive an outlier is less surprising than under the core.
    heavy = analysis.anomalies(post, threshold=0.5, flagged_only=False)
    light = analysis.anomalies(post, threshold=0.5, flagged_only=False, score="core")
    positions = ANOMALY_POSITIONS
    assert (
        heavy["tail_probability"].to_numpy()[positions]
        > light["tail_probability"].to_numpy()[positions]
    ).all()
    # Still, its own predictive ranks the injected points as the five least likely.
    assert len(heavy) == post.series.num_timesteps
    lowest = np.argsort(heavy["tail_probability"].to_numpy())[:5]
    assert set(lowest.tolist()) == set(positions.tolist())
    with pytest.raises(ValueError, match="unknown score"):
        analysis.anomalies(post, score="bayes")


def test_anomaly_errors_and_plot(robust_post):
    post = robust_post
    for bad in (0, 1, 1.5, "0.01"):
        with pytest.raises(ValueError, match="threshold"):
            analysis.anomalies(post, threshold=bad)
    with pytest.raises(TypeError, match="Posterior"):
        analysis.anomalies(None)
    assert isinstance(analysis.plot_anomalies(post), Axes)


def test_student_t_forecast_summaries_come_from_the_draws(robust_post):
    # A draw's predictive is not Normal under Student-t noise: no exact mixture.
    fc = bsts.forecast(robust_post, horizon=3, seed=0, num_samples=50)
    assert not fc.exact and fc.draw_means is None
    table = fc.to_pandas(interval=0.8)
    np.testing.assert_allclose(table["mean"], fc.draws.mean(axis=0))
    np.testing.assert_allclose(table["upper"], np.percentile(fc.draws, 90, axis=0))
    actual = fc.draws[0]
    np.testing.assert_array_equal(fc.crps(actual), bsts.metrics.crps_from_draws(fc.draws, actual))


@pytest.mark.slow
def test_student_t_forecast_has_heavier_tails(robust_post):
    post = robust_post
    draws = bsts.forecast(post, horizon=5, seed=0).draws
    assert np.isfinite(draws).all() and draws.shape == (200, 5)
    # Future noise is Student-t: its excess kurtosis is positive (a Gaussian forecast with
    # parameter uncertainty only would stay near 0).
    from scipy.stats import kurtosis

    assert kurtosis(draws[:, -1] - np.median(draws[:, -1])) > 1.0


# -- change points -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nile_changes():
    nile = bsts.datasets.load("nile")
    model = bsts.Model([analysis.ChangePointTrend()])
    return bsts.fit(model, nile, "volume", num_warmup=300, num_samples=300, num_chains=1, seed=0)


def test_change_points_find_the_aswan_dam(nile_changes):
    table = analysis.change_points(nile_changes)
    assert list(table.columns[:2]) == ["time", "probability"]
    assert len(table) == 100
    years = table["time"].dt.year
    peak = int(years[table["probability"].idxmax()])
    # The level drops between 1898 and 1899 (Cobb 1978): the first low year is 1899.
    assert peak in (1898, 1899, 1900)
    near = table.loc[years.between(1897, 1901), "probability"].sum()
    assert near > 0.6
    # Away from the dam no step is a likely shift.
    assert table.loc[~years.between(1895, 1903), "probability"].max() < 0.3
    shift = table.loc[years.between(1897, 1901), "shift"].sum()
    assert -350 < shift < -150  # the drop is about 250 (10^8 m^3)
    assert isinstance(analysis.plot_change_points(nile_changes), Figure)


@pytest.mark.slow
def test_change_points_on_simulated_shifts():
    rng = np.random.default_rng(3)
    level = np.concatenate([np.zeros(40), np.full(40, 3.0), np.full(40, 0.5)])
    series = _daily(level + rng.normal(0.0, 0.6, 120))
    table = analysis.change_points(series, seed=1)
    for position in (40, 80):
        assert table["probability"].iloc[position - 2 : position + 3].sum() > 0.6
    quiet = np.ones(120, bool)
    quiet[37:84] = False
    quiet[43:77] = True
    assert table["probability"].to_numpy()[quiet].max() < 0.3


def test_change_point_trend_block_with_a_slope():
    model = bsts.Model([analysis.ChangePointTrend(slope=True)])
    series = prepare_series(_daily(np.linspace(0.0, 5.0, 30) + np.sin(np.arange(30.0))), None, [])
    inputs = model.inputs(series)
    trace = handlers.trace(handlers.seed(model, 0)).get_trace(inputs, y=jnp.asarray(series.y))
    for site in ("change.level_local", "change.slope_local"):
        assert trace[site]["value"].shape == (29,)  # no innovation out of the last step
    params = nest_parameters(model, {k: v["value"] for k, v in trace.items() if k != "y"})
    ssm = model.state_space(params, inputs)
    level = trace["change.level_variances"]["value"]
    slope = trace["change.slope_variances"]["value"]
    np.testing.assert_allclose(ssm.transition_cov[:-1, 0, 0], level)
    np.testing.assert_allclose(ssm.transition_cov[:-1, 1, 1], slope)
    np.testing.assert_allclose(ssm.transition_cov[-1], 0.0)
    np.testing.assert_allclose(ssm.transition_matrix[:, 0, 1], 1.0)  # level += slope * dt
    # The horseshoe variances never exceed the slab: c^2 = 4 (standardised units).
    assert float(level.max()) <= 4.0 and float(slope.max()) <= 4.0


@pytest.mark.slow
def test_change_points_find_a_slope_change():
    rng = np.random.default_rng(4)
    steps = np.arange(120.0)
    level = np.where(steps < 60, 0.0, 0.1 * (steps - 60))  # the slope turns at step 60
    series = _daily(level + rng.normal(0.0, 0.4, 120))
    table = analysis.change_points(series, slope=True, seed=2)
    assert {"slope_probability", "slope_shift"} <= set(table.columns)
    assert table["slope_probability"].iloc[55:66].sum() > 0.5
    assert table["slope_shift"].iloc[55:66].sum() > 0.05  # the slope rose by 0.1


# Slow: examples/counts.py (run by CI with --quick) takes the same path on the coal data.
@pytest.mark.slow
def test_change_points_on_counts():
    # A Poisson rate that quadruples at step 50: one shift of log 4 on the log-rate level.
    rng = np.random.default_rng(7)
    rate = np.where(np.arange(100) < 50, 2.0, 8.0)
    series = _daily(rng.poisson(rate).astype(float))
    table = analysis.change_points(series, observation="poisson", **SMALL_NUTS)
    probability = table["probability"].to_numpy()
    assert probability[47:54].sum() > 0.6
    assert np.delete(probability, np.arange(45, 56)).max() < 0.3
    assert abs(table["shift"].iloc[47:54].sum() - np.log(4.0)) < 0.5  # link units
    # The default threshold is one count's link-scale noise, 1/sqrt(rate): 0.35 to 0.71.
    assert 0.35 < table.attrs["min_shift"] < 0.71


def test_change_point_errors(nile_changes):
    with pytest.raises(TypeError, match="Series"):
        analysis.change_points([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="min_shift"):
        analysis.change_points(nile_changes, min_shift=-1.0)
    with pytest.raises(ValueError, match="slab_scale"):
        analysis.ChangePointTrend(slab_scale=0)


def test_change_points_need_a_change_point_model(robust_post):
    with pytest.raises(ValueError, match="ChangePointTrend"):
        analysis.change_points(robust_post)


# -- periodicity ---------------------------------------------------------------------------

TRUE_PERIOD = 7.3


@pytest.fixture(scope="module")
def uneven_periodic():
    rng = np.random.default_rng(3)
    T = 150
    times = np.cumsum(rng.exponential(1.0, T))
    times -= times[0]
    values = np.sin(2 * np.pi * times / TRUE_PERIOD) + rng.normal(0.0, 0.5, T) + 0.02 * times
    return pd.Series(values, index=pd.Index(times, name="t"), name="y")


# The float32 user path scans the real light curve; this simulated scan is the long one.
@pytest.mark.slow
def test_period_scan_peaks_at_the_truth_on_uneven_data(uneven_periodic):
    periods = np.arange(3.0, 15.01, 0.25)
    scan = analysis.period_scan(uneven_periodic, periods)
    assert list(scan.columns[:5]) == ["period", "period_steps", "score", "delta", "lombscargle"]
    assert scan["converged"].all()
    best = scan.loc[scan["delta"].idxmax()]
    assert abs(best["period"] - TRUE_PERIOD) <= 0.125  # the grid point nearest the truth
    assert best["delta"] > 10  # decisive against no seasonality (log Bayes factor)
    # Cross-check: the Lomb–Scargle peak is the same grid point, and the column is scipy's.
    assert scan.loc[scan["lombscargle"].idxmax(), "period"] == best["period"]
    t, y = uneven_periodic.index.to_numpy(), uneven_periodic.to_numpy()
    reference = lombscargle(t, y - y.mean(), 2 * np.pi / periods, normalize=True)
    np.testing.assert_allclose(scan["lombscargle"], reference, rtol=1e-6, atol=1e-9)
    assert isinstance(analysis.plot_period_scan(scan), Axes)
    # The period is traced: other periods (same count) and other values of a series of the
    # same length reuse the one compiled scan.
    compiled = periodicity._scan_jit._cache_size()
    again = analysis.period_scan(uneven_periodic * 2.0, periods + 0.1)
    assert periodicity._scan_jit._cache_size() == compiled
    assert again["converged"].all()


def test_period_scan_bad_input(uneven_periodic):
    shortest = float(np.diff(uneven_periodic.index.to_numpy()).min())
    with pytest.raises(ValueError, match="sampling step"):
        analysis.period_scan(uneven_periodic, [shortest / 2, 5.0])
    regular = _daily(np.sin(np.arange(50.0)))
    with pytest.raises(ValueError, match="Nyquist"):
        analysis.period_scan(regular, [1.5, 7.0])
    with pytest.raises(ValueError, match="empty"):
        analysis.period_scan(uneven_periodic, [])
    with pytest.raises(ValueError, match="finite numbers"):
        analysis.period_scan(uneven_periodic, [float("nan")])
    with pytest.raises(ValueError, match="Timedelta"):
        analysis.period_scan(uneven_periodic, [pd.Timedelta(days=2)])
    with pytest.raises(ValueError, match="harmonics"):
        analysis.period_scan(uneven_periodic, [7.0], harmonics=0)


@pytest.mark.slow
def test_compare_seasonal_prefers_the_true_period(uneven_periodic):
    table = analysis.compare_seasonal(uneven_periodic, TRUE_PERIOD, seed=0, **SMALL_NUTS)
    assert list(table.index) == ["seasonal", "no_seasonal"]
    assert table.loc["seasonal", "elpd_diff"] == 0.0
    # The sinusoid has amplitude 2 noise sds: many standard errors of evidence.
    assert -table.loc["no_seasonal", "elpd_diff"] > 4 * table.loc["no_seasonal", "diff_se"]


@pytest.mark.slow
def test_period_scan_finds_the_lightcurve_period():
    data = bsts.datasets.load("lightcurve")
    days = np.linspace(0.930, 0.944, 29)
    scan = analysis.period_scan(data, [pd.Timedelta(days=d) for d in days], "mag_b")
    best = days[scan["delta"].idxmax()]
    # Lomb–Scargle on a fine grid puts the period at 0.93697 d (also FATS' value).
    assert abs(best - 0.93697) < 0.0006
    assert scan["lombscargle"].idxmax() == scan["delta"].idxmax()


# -- causal impact -------------------------------------------------------------------------

TRUE_EFFECT = 2.0


def _impact_data(seed, effect=TRUE_EFFECT):
    rng = np.random.default_rng(seed)
    T = 100
    x = np.cumsum(rng.normal(0.0, 1.0, T)) + 10.0
    y = 1.5 * x + np.cumsum(rng.normal(0.0, 0.1, T)) + rng.normal(0.0, 0.5, T)
    y[70:] += effect
    index = pd.date_range("2020-01-01", periods=T, freq="D")
    return pd.DataFrame({"y": y, "x": x}, index=index)


@pytest.fixture(scope="module")
def impact():
    data = _impact_data(5)
    index = data.index
    return analysis.causal_impact(
        data, "y", (index[0], index[69]), (index[70], index[-1]), ["x"], **SMALL_NUTS
    )


def test_causal_impact_recovers_a_known_effect(impact):
    summary = impact.summary()
    assert list(summary.index) == ["average", "cumulative"]
    assert list(summary.columns) == [
        "actual", "predicted", "effect", "effect_lower", "effect_upper",
        "relative_effect", "relative_lower", "relative_upper",
    ]  # fmt: skip
    average = summary.loc["average"]
    assert average["effect_lower"] < TRUE_EFFECT < average["effect_upper"]
    cumulative = summary.loc["cumulative"]
    assert cumulative["effect_lower"] < 30 * TRUE_EFFECT < cumulative["effect_upper"]
    np.testing.assert_allclose(cumulative["effect"], 30 * average["effect"])
    np.testing.assert_allclose(average["actual"] - average["predicted"], average["effect"])
    for row in (average, cumulative):  # coherent: the table's own effect over its prediction
        np.testing.assert_allclose(
            row["relative_effect"], (row["actual"] - row["predicted"]) / abs(row["predicted"])
        )
        assert row["relative_lower"] <= row["relative_effect"] <= row["relative_upper"]
    assert impact.probability > 0.95
    text = impact.report()
    assert "probability of a causal effect" in text and f"{average['effect']:.4g}" in text
    figure = impact.plot()
    assert isinstance(figure, Figure) and len(figure.axes) == 3
    points = impact.pointwise()
    assert len(points) == 30
    np.testing.assert_allclose(points["cumulative_effect"].iloc[-1], cumulative["effect"])


def test_causal_impact_on_counts():
    # Poisson counts whose log rate follows a control; the rate doubles in the post-period.
    rng = np.random.default_rng(8)
    x = np.sin(np.arange(100) / 5.0) + rng.normal(0.0, 0.3, 100)
    log_rate = 1.5 + 0.5 * x + np.cumsum(rng.normal(0.0, 0.03, 100))
    log_rate[70:] += np.log(2.0)
    index = pd.date_range("2020-01-01", periods=100, freq="D")
    data = pd.DataFrame({"y": rng.poisson(np.exp(log_rate)).astype(float), "x": x}, index=index)
    result = analysis.causal_impact(
        data, "y", (index[0], index[69]), (index[70], index[-1]), ["x"],
        observation="poisson", **SMALL_NUTS,
    )  # fmt: skip
    assert np.issubdtype(result.counterfactual.dtype, np.integer)  # counterfactual counts
    average = result.summary().loc["average"]
    assert average["effect_lower"] > 0
    assert average["relative_lower"] < 1.0 < average["relative_upper"]  # the rate doubled
    assert result.probability > 0.975
    with pytest.raises(ValueError, match="observation= or model="):
        analysis.causal_impact(
            data, "y", (index[0], index[69]), (index[70], index[-1]),
            model=bsts.Model([bsts.LocalLevel()]), observation="poisson",
        )  # fmt: skip


def test_causal_impact_warns_when_the_data_need_a_season():
    data = bsts.datasets.load("seatbelts")
    periods = (("1969-01-01", "1983-01-01"), ("1983-02-01", "1984-12-01"))
    controls = ["kms", "petrol_price"]
    with pytest.warns(UserWarning, match="pass season=12"):
        analysis.causal_impact(data, "drivers_killed", *periods, controls, method="map")
    # The documented seasonal model does not warn (tests/test_user_paths.py runs it).


def test_causal_impact_bad_input():
    data = _impact_data(1)
    t = data.index
    call = analysis.causal_impact
    with pytest.raises(ValueError, match="inverted"):
        call(data, "y", (t[50], t[10]), (t[60], t[70]), ["x"])
    with pytest.raises(ValueError, match="overlap"):
        call(data, "y", (t[0], t[60]), (t[50], t[70]), ["x"])
    with pytest.raises(ValueError, match="inside the data"):
        call(data, "y", (t[0], t[60]), (t[70], pd.Timestamp("2030-01-01")), ["x"])
    with pytest.raises(ValueError, match="pre-period has 5 observed points"):
        call(data, "y", (t[0], t[4]), (t[10], t[20]), ["x"])
    with pytest.raises(ValueError, match="control column 'z'"):
        call(data, "y", (t[0], t[60]), (t[70], t[80]), ["z"])
    with pytest.raises(ValueError, match="pair"):
        call(data, "y", t[0], (t[70], t[80]), ["x"])
    assert data.shape == (100, 2)  # the input was not modified


@pytest.mark.slow
def test_causal_impact_coverage_over_replicates():
    # 95% intervals over 10 replicates: coverage below 8/10 has probability < 1.2% if the
    # nominal rate holds. Default fit settings: the 2.5% and 97.5% points of SMALL_NUTS's 200
    # draws move by a few tenths with any change in the numerics, enough to flip borderline
    # replicates.
    covered = 0
    for seed in range(10):
        data = _impact_data(100 + seed)
        t = data.index
        summary = analysis.causal_impact(
            data, "y", (t[0], t[69]), (t[70], t[-1]), ["x"], seed=seed
        ).summary()
        covered += (
            summary.loc["average", "effect_lower"]
            < TRUE_EFFECT
            < summary.loc["average", "effect_upper"]
        )
    assert covered >= 8


@pytest.mark.slow
def test_causal_impact_seatbelts_law():
    data = bsts.datasets.load("seatbelts")
    data = data.assign(log_drivers=np.log(data["drivers"]), log_kms=np.log(data["kms"]))
    result = analysis.causal_impact(
        data, "log_drivers", ("1969-01-01", "1983-01-01"), ("1983-02-01", "1984-12-01"),
        ["petrol_price", "log_kms"], season=12, num_warmup=300, num_samples=300,
        num_chains=1,
    )  # fmt: skip
    average = result.summary().loc["average"]
    # Harvey & Durbin (1986) estimate the law cut driver casualties by about 20% (a log
    # effect near -0.2); the interval must exclude 0 and hold that estimate.
    assert average["effect_upper"] < 0
    assert average["effect_lower"] < -0.2 < average["effect_upper"]
    # An effect whose 95% interval excludes 0 has a one-sided tail area below 0.025.
    assert result.probability > 0.975
