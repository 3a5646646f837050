"""Automatic structure: candidates, pruning, leave-future-out weights (`bsts.auto`)."""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

import bsts
from bsts.auto import Candidate, default_candidates, infer_season, log_predictive_density

QUARTERS = pd.date_range("2000-01-01", periods=40, freq="QS")


def _seasonal(seed, n=40):
    rng = np.random.default_rng(seed)
    level = 50 + np.cumsum(rng.normal(0, 0.3, n))
    season = np.tile([6.0, -2.0, -7.0, 3.0], n // 4 + 1)[:n]
    return pd.Series(level + season + rng.normal(0, 0.5, n), index=QUARTERS[:n], name="y")


CANDIDATES = [
    Candidate("level", bsts.Model([bsts.LocalLevel(name="trend")])),
    Candidate(
        "level+season", bsts.Model([bsts.LocalLevel(name="trend"), bsts.Seasonal(4, name="s")])
    ),
]


@pytest.fixture(scope="module")
def frame():
    return pd.concat(
        [
            pd.DataFrame({"unique_id": f"s{i}", "ds": QUARTERS, "y": _seasonal(i).to_numpy()})
            for i in range(2)
        ],
        ignore_index=True,
    )


@pytest.fixture(scope="module")
def ensembles(frame):
    return bsts.fit_many(bsts.Auto(candidates=CANDIDATES), frame, method="map")


@pytest.mark.parametrize(
    ("freq", "period"),
    [
        ("MS", 12),
        ("ME", 12),
        ("QS", 4),
        ("QE-DEC", 4),
        ("W-SUN", 52.18),
        ("D", 7),
        ("h", 24),
        ("YS", None),
    ],
)
def test_season_is_inferred_from_the_index_frequency(freq, period):
    assert infer_season(pd.date_range("2001-01-01", periods=30, freq=freq)) == period


def test_no_season_without_a_time_index():
    assert infer_season(pd.RangeIndex(50)) is None
    index = pd.DatetimeIndex(["2001-01-01", "2001-01-03", "2001-02-11", "2001-05-01"])
    assert infer_season(index) is None


def test_default_candidates_and_pruning():
    monthly = default_candidates(12)
    assert len(monthly) == 18 and sum(c.log for c in monthly) == 9
    assert len(default_candidates(None)) == 6
    assert len(default_candidates(12, log=False)) == 9
    by_name = {c.name: c.model.components[1] for c in monthly if "+" in c.name}
    assert isinstance(by_name["trend+season"], bsts.Seasonal)
    assert isinstance(by_name["trend+fourier"], bsts.FourierSeasonal)
    assert by_name["trend+fourier"].harmonics == 6  # every harmonic of a monthly season
    weekly = {c.name: c for c in default_candidates(52.18)}
    assert "trend+fourier" not in weekly  # a long period has one (Fourier) seasonal form
    assert isinstance(weekly["trend+season"].model.components[1], bsts.FourierSeasonal)
    assert weekly["trend+season"].model.components[1].harmonics == 3
    seasonal = next(c for c in monthly if c.name == "log trend+season")
    positive = np.linspace(1, 5, 40)
    assert seasonal.allowed(positive, 12)
    assert not seasonal.allowed(positive[:24], 12)  # under two and a half cycles
    assert not seasonal.allowed(positive - 2, 12)  # not positive: no log scale
    plain = next(c for c in monthly if c.name == "trend")
    assert plain.allowed(positive - 2, 12)


def test_log_candidate_density_integrates_to_one_on_the_original_scale():
    total, _ = integrate.quad(
        lambda y: np.exp(log_predictive_density(y, np.log(20.0), 0.3, log=True)), 0, np.inf
    )
    assert total == pytest.approx(1.0, abs=1e-8)


def test_simulated_seasonal_data_weight_the_seasonal_candidate(ensembles):
    for key in ensembles.ids:
        weights = ensembles[key].weights
        assert weights.sum() == pytest.approx(1.0)
        assert (weights >= 0).all()
        assert weights.get("level+season", 0.0) > 0.9


def test_fit_many_equals_fit_per_series(frame, ensembles):
    one = frame[frame["unique_id"] == "s1"].set_index("ds")["y"]
    single = bsts.fit(bsts.Auto(candidates=CANDIDATES), one, method="map")
    batched = ensembles["s1"]
    pd.testing.assert_series_equal(single.weights, batched.weights)
    np.testing.assert_allclose(single.scores["elpd"], batched.scores["elpd"], rtol=1e-6)
    a = bsts.forecast(single, horizon=4).mean()
    b = bsts.forecast(ensembles, horizon=4)["s1"].mean()
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_ensemble_outputs(ensembles):
    ens = ensembles["s0"]
    assert repr(ens).startswith("Ensemble(stacking: level+season")
    table = ens.summary()
    assert list(table.columns) == ["elpd", "stacking", "pseudo_bma", "best", "weight"]
    assert set(table.index) == {"level", "level+season"}
    prediction = bsts.forecast(ens, horizon=4)
    out = prediction.to_pandas(interval=0.9)
    assert list(out.columns) == ["mean", "median", "lower", "upper"]
    assert (out["lower"] < out["median"]).all() and (out["median"] < out["upper"]).all()
    long = bsts.forecast(ensembles, horizon=4).to_pandas()
    assert list(long.columns) == ["unique_id", "time", "mean", "median", "lower", "upper"]
    assert set(ensembles.weights()["unique_id"]) == {"s0", "s1"}
    with pytest.warns(UserWarning, match="highest-weight candidate"):
        ens.decompose(num_samples=None)


def test_ensembles_save_and_load(ensembles, tmp_path):
    path = tmp_path / "ensembles.bsts"
    ensembles.save(path)
    loaded = bsts.Ensembles.load(path)
    assert loaded.ids == ensembles.ids
    pd.testing.assert_frame_equal(loaded.weights(), ensembles.weights())
    before = bsts.forecast(ensembles, horizon=4).to_pandas()
    pd.testing.assert_frame_equal(bsts.forecast(loaded, horizon=4).to_pandas(), before)
    one = tmp_path / "s0.bsts"
    ensembles["s0"].save(one)
    ens = bsts.Ensemble.load(one)
    pd.testing.assert_frame_equal(ens.summary(), ensembles["s0"].summary())
    a = bsts.forecast(ensembles["s0"], horizon=4, seed=3).to_pandas()
    pd.testing.assert_frame_equal(bsts.forecast(ens, horizon=4, seed=3).to_pandas(), a)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="weighting"):
        bsts.Auto(weighting="vote")
    with pytest.raises(ValueError, match="season"):
        bsts.Auto(season=-3)
    bsts.Auto(candidates=[bsts.Model([bsts.LocalLevel()], observation="student_t")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bsts.Auto(season=0)


def test_a_series_with_a_zero_gets_no_log_candidate():
    y = _seasonal(3)
    y.iloc[5] = 0.0
    auto = bsts.Auto(candidates=[*CANDIDATES, Candidate("log level", CANDIDATES[0].model, True)])
    ensemble = bsts.fit(auto, y, method="map")
    assert "log level" not in ensemble.scores.index


def test_a_family_without_a_held_out_density_is_refused(monkeypatch):
    monkeypatch.setattr(bsts.observation, "_REGISTRY", dict(bsts.observation._REGISTRY))

    class Opaque(bsts.observation.Observation):
        name = "opaque_test"

        def variance(self, params, inputs):
            return params["scale"] ** 2

    with pytest.raises(ValueError, match="Gaussian and Student-t"):
        bsts.Auto(candidates=[bsts.Model([bsts.LocalLevel()], observation="opaque_test")])


def _level(seed, n=40):
    rng = np.random.default_rng(seed)
    return pd.Series(50 + np.cumsum(rng.normal(0, 0.3, n)) + rng.normal(0, 0.5, n), name="y")


@pytest.fixture(scope="module")
def outlier_ensemble():
    y = _level(5)
    y.iloc[20] += 12.0  # 24 noise sds
    return bsts.fit(bsts.Auto(log=False), y, method="map"), y  # no season: 3 candidates


def test_outliers_bring_student_t_variants_of_the_leading_candidates(outlier_ensemble):
    ensemble, _ = outlier_ensemble
    names = list(ensemble.scores.index)
    variants = [name for name in names if name.endswith(" (t)")]
    assert 1 <= len(variants) <= 2
    assert all(name[: -len(" (t)")] in names for name in variants)
    assert all(np.isfinite(ensemble.scores.loc[variants, "elpd"]))


def test_a_student_t_candidate_mixes_into_the_ensemble_forecast(outlier_ensemble):
    ensemble, y = outlier_ensemble
    components = [bsts.LocalLevel(name="trend")]
    fits = {
        "gaussian": bsts.fit(bsts.Model(components), y, method="map"),
        "student": bsts.fit(bsts.Model(components, observation="student_t"), y, method="map"),
    }
    # An even split between a Gaussian and a Student-t candidate: the forecast mixes both.
    forced = dataclasses.replace(
        ensemble,
        candidates=fits,
        weights=pd.Series({"gaussian": 0.5, "student": 0.5}, name="weight"),
        log={"gaussian": False, "student": False},
    )
    prediction = bsts.forecast(forced, horizon=4)
    lower, upper = prediction.interval(0.9)
    assert np.all(np.isfinite(prediction.mean())) and np.all(lower < upper)
    gaussian, student = prediction.parts
    assert student.means.shape == student.sds.shape and np.all(student.sds > 0)
    # The stratified noise weights spread the sds: heavy tails, not one Normal per draw.
    assert student.sds.shape[0] >= 256 and np.ptp(student.sds[:, 0]) > 0
    assert np.ptp(gaussian.sds[:, 0]) == 0  # one MAP draw, one Normal


def test_gaussian_series_get_no_student_t_variants():
    ensemble = bsts.fit(bsts.Auto(log=False), _level(6), method="map")
    assert len(ensemble.scores) == 3
    assert not any(name.endswith(" (t)") for name in ensemble.scores.index)


def test_student_t_variants_of_several_series_share_their_programs():
    frames = []
    for key, n in (("a", 40), ("b", 44)):  # one bucket, different lengths
        y = _level(7 + n, n)
        y.iloc[n // 2] -= 12.0
        frames.append(pd.DataFrame({"unique_id": key, "ds": np.arange(n), "y": y.to_numpy()}))
    ensembles = bsts.fit_many(bsts.Auto(log=False), pd.concat(frames), method="map")
    for key in ("a", "b"):
        assert any(name.endswith(" (t)") for name in ensembles[key].scores.index)
