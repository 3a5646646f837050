"""`fit` (MAP, SVI, NUTS) and the `Posterior` it returns, on the Nile data."""

import warnings

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
from numpyro.infer.util import log_likelihood

import bsts
from bsts import _arviz
from bsts.inference import Posterior

PARAMETERS = ["level.scale", "observation.scale"]
NUM_CHAINS, NUM_DRAWS, T = 2, 100, 100


@pytest.fixture(scope="module")
def nile():
    return bsts.datasets.load("nile")


def _flat_model():
    return bsts.Model(
        [bsts.LocalLevel(scale_prior=dist.HalfNormal(5.0))],
        observation_scale_prior=dist.HalfNormal(5.0),
    )


# -- MAP ----------------------------------------------------------------------------------------


def test_map_matches_durbin_koopman(nile):
    posterior = bsts.fit(
        _flat_model(), nile, "volume", method="map", num_steps=500, learning_rate=0.05, seed=0
    )
    assert posterior.method == "map"
    assert set(PARAMETERS) <= set(posterior.draws), f"draws hold {sorted(posterior.draws)}"
    samples = posterior.samples
    assert samples["observation.scale"].shape == (1, 1)
    observation_var = float(samples["observation.scale"][0, 0]) ** 2
    level_var = float(samples["level.scale"][0, 0]) ** 2
    # Durbin & Koopman (2012, §2.10) report the diffuse MLE σ²_ε = 15099, σ²_η = 1469.1.
    # This is a MAP under near-flat HalfNormal(5) priors (standardised units) with the
    # level's initial state N(first value, sd²) instead of a diffuse one, so it is close to
    # but not exactly the MLE: allow 25%.
    np.testing.assert_allclose(observation_var, 15099.0, rtol=0.25)
    np.testing.assert_allclose(level_var, 1469.1, rtol=0.25)
    # BFGS (at most num_steps iterations): the objective at the start and at the mode.
    assert posterior.losses.shape == (2,)
    assert posterior.losses[-1] < posterior.losses[0]
    # A point fit's summary is the estimate, with no NaN spreads and no NumPy warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = posterior.summary()
    assert list(table.columns) == ["mean"]
    assert table.loc["level.scale", "mean"] == pytest.approx(np.sqrt(level_var))
    assert np.isfinite(table["mean"]).all()


# -- argument errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "hmc"}, "unknown method 'hmc'; choose one of nuts, svi, map"),
        ({"method": "svi", "guide": "flow"}, "unknown guide 'flow'"),
        ({"num_samples": 0}, "num_samples must be a positive integer, got 0"),
        ({"num_chains": -1}, "num_chains must be a positive integer, got -1"),
        ({"method": "map", "num_steps": 0}, "num_steps must be a positive integer, got 0"),
        ({"num_warmup": -1}, "num_warmup must be a non-negative integer"),
    ],
)
def test_fit_argument_errors(nile, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bsts.fit(bsts.LocalLevel(), nile, "volume", **kwargs)


def test_fit_rejects_a_non_model(nile):
    with pytest.raises(ValueError, match="bsts Model or component"):
        bsts.fit("local level", nile, "volume", method="map", num_steps=1)


# -- SVI ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_irregular():
    # A short irregular series: its time-varying model compiles much faster than the Nile's
    # steady-state path, and each SVI fit compiles afresh.
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.choice([1.0, 1.0, 2.0, 0.5], size=40))
    return pd.Series(np.cumsum(rng.normal(size=40)), index=times, name="y")


def _svi(data, seed):
    return bsts.fit(bsts.LocalLevel(), data, method="svi", num_steps=300, num_samples=50, seed=seed)


@pytest.fixture(scope="module")
def svi_posterior(short_irregular):
    return _svi(short_irregular, seed=1)


def test_svi_draw_shapes(svi_posterior):
    assert svi_posterior.method == "svi"
    assert not svi_posterior.series.regular
    assert set(svi_posterior.samples) == set(PARAMETERS), sorted(svi_posterior.draws)
    for name in PARAMETERS:
        assert svi_posterior.samples[name].shape == (1, 50)
        assert np.all(svi_posterior.samples[name] > 0)
    assert svi_posterior.num_chains == 1
    assert svi_posterior.num_draws == 50
    assert svi_posterior.losses.shape == (300,)


def test_svi_same_seed_same_draws(short_irregular, svi_posterior):
    again = _svi(short_irregular, seed=1)
    assert set(again.draws) == set(svi_posterior.draws)
    assert again.draws, "the SVI posterior holds no draws"
    for name, value in svi_posterior.draws.items():
        np.testing.assert_array_equal(again.draws[name], value)
    np.testing.assert_array_equal(again.losses, svi_posterior.losses)


# -- NUTS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nuts_posterior(nile):
    return bsts.fit(
        bsts.LocalLevel(),
        nile,
        "volume",
        method="nuts",
        num_warmup=100,
        num_samples=NUM_DRAWS,
        num_chains=NUM_CHAINS,
        seed=0,
    )


def test_nuts_draws(nuts_posterior):
    assert nuts_posterior.method == "nuts"
    assert nuts_posterior.num_chains == NUM_CHAINS
    assert nuts_posterior.num_draws == NUM_DRAWS
    assert sorted(nuts_posterior.samples) == PARAMETERS
    for name in PARAMETERS:
        assert nuts_posterior.samples[name].shape == (NUM_CHAINS, NUM_DRAWS)
        np.testing.assert_allclose(
            nuts_posterior.samples[name],
            nuts_posterior.draws[name] * nuts_posterior.series.scale,
        )
    assert nuts_posterior.sample_stats["diverging"].shape == (NUM_CHAINS, NUM_DRAWS)
    # The posterior sits in the neighbourhood of the MLE (sd 123, 38 in original units).
    means = {k: float(v.mean()) for k, v in nuts_posterior.samples.items()}
    assert 80.0 < means["observation.scale"] < 170.0
    assert 5.0 < means["level.scale"] < 100.0


def test_nuts_summary(nuts_posterior):
    table = nuts_posterior.summary()
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["mean", "sd", "hdi_lower", "hdi_upper", "ess_bulk", "r_hat"]
    assert list(table.index) == PARAMETERS
    for name in PARAMETERS:
        row = table.loc[name]
        np.testing.assert_allclose(row["mean"], nuts_posterior.samples[name].mean(), rtol=1e-10)
        assert row["hdi_lower"] < row["mean"] < row["hdi_upper"]
        assert row["ess_bulk"] > 10
        assert 0.9 < row["r_hat"] < 1.2


def test_nuts_to_arviz(nuts_posterior):
    data = nuts_posterior.to_arviz()
    assert set(_arviz.group_names(data)) >= {
        "posterior",
        "sample_stats",
        "observed_data",
        "log_likelihood",
    }
    posterior = _arviz.get_group(data, "posterior")
    for name in PARAMETERS:
        np.testing.assert_allclose(posterior[name].values, nuts_posterior.samples[name])
    observed = _arviz.get_group(data, "observed_data")["y"].values
    np.testing.assert_allclose(observed, nuts_posterior.series.to_original(nuts_posterior.series.y))
    assert "diverging" in _arviz.get_group(data, "sample_stats")

    pointwise = _arviz.get_group(data, "log_likelihood")["y"].values
    assert pointwise.shape == (NUM_CHAINS, NUM_DRAWS, T)

    # Summed over time, each draw's pointwise log-likelihood is the model's total marginal
    # log-likelihood, moved to original units by the Jacobian -n_obs log(scale).
    series = nuts_posterior.series
    model = nuts_posterior.model
    y = jnp.asarray(series.y)
    standardised = log_likelihood(model, nuts_posterior.flat_draws(), model.inputs(series), y=y)
    n_obs = int(np.sum(~np.isnan(series.y)))
    total = np.asarray(standardised["y"]) - n_obs * np.log(series.scale)
    np.testing.assert_allclose(pointwise.reshape(-1, T).sum(-1), total, rtol=1e-8)


def test_save_load_round_trip(nuts_posterior, tmp_path):
    path = tmp_path / "nile.posterior"
    nuts_posterior.save(path)
    loaded = Posterior.load(path)
    assert isinstance(loaded, Posterior)
    assert loaded.method == nuts_posterior.method
    assert loaded.seed == nuts_posterior.seed
    assert loaded.model.names == nuts_posterior.model.names
    assert set(loaded.draws) == set(nuts_posterior.draws)
    for name, value in nuts_posterior.draws.items():
        np.testing.assert_array_equal(loaded.draws[name], value)
    for name, value in nuts_posterior.sample_stats.items():
        np.testing.assert_array_equal(loaded.sample_stats[name], value)
    np.testing.assert_array_equal(loaded.series.y, nuts_posterior.series.y)
    assert loaded.series.location == nuts_posterior.series.location
    assert loaded.series.scale == nuts_posterior.series.scale
    pd.testing.assert_index_equal(loaded.series.index, nuts_posterior.series.index)
    pd.testing.assert_frame_equal(loaded.summary(), nuts_posterior.summary())


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.txt"
    path.write_text("not a posterior")
    with pytest.raises(ValueError, match="not a bsts save file"):
        Posterior.load(path)


def test_states_shape(nuts_posterior):
    states = nuts_posterior.states(num_samples=25, seed=0)
    assert states.shape == (25, T, 1)
    assert np.all(np.isfinite(states))
    # The sampled level follows the (standardised) data.
    level = states[..., 0].mean(0)
    assert np.corrcoef(level, nuts_posterior.series.y)[0, 1] > 0.5
