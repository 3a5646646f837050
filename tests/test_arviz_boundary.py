"""Tests for the ArviZ boundary module, which must behave the same on ArviZ 0.x and 1.x."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import logsumexp
from scipy.stats import norm

from bsts import _arviz
from bsts._arviz import (
    ARVIZ_MAJOR,
    SUMMARY_COLUMNS,
    LooResult,
    get_group,
    group_names,
    loo,
    summary,
    to_inference_data,
)

N_CHAINS, N_DRAWS, N_OBS, N_BETA = 2, 200, 30, 3


@pytest.fixture
def draws(rng):
    """Conjugate normal-mean posterior draws plus a vector and a skewed parameter."""
    y = rng.normal(1.5, 1.0, size=N_OBS)
    # Exact posterior of mu under a flat prior and unit noise: N(ybar, 1 / n).
    mu = rng.normal(y.mean(), 1.0 / np.sqrt(N_OBS), size=(N_CHAINS, N_DRAWS))
    beta = rng.normal([-1.0, 0.0, 2.0], 0.5, size=(N_CHAINS, N_DRAWS, N_BETA))
    scale = rng.exponential(1.0, size=(N_CHAINS, N_DRAWS))
    log_lik = norm.logpdf(y[None, None, :], loc=mu[..., None], scale=1.0)
    return {
        "posterior": {"mu": mu, "beta": beta, "scale": scale},
        "sample_stats": {"diverging": np.zeros((N_CHAINS, N_DRAWS), dtype=bool)},
        "observed_data": {"y": y},
        "log_likelihood": {"y": log_lik},
    }


@pytest.fixture
def data(draws):
    return to_inference_data(
        draws["posterior"],
        sample_stats=draws["sample_stats"],
        observed_data=draws["observed_data"],
        log_likelihood=draws["log_likelihood"],
    )


def _direct_hdi(x, prob):
    """Narrowest interval holding ceil-ish `prob` of the sorted draws."""
    x = np.sort(np.ravel(x))
    k = int(np.floor(prob * x.size))
    widths = x[k:] - x[: x.size - k]
    i = int(np.argmin(widths))
    return x[i], x[i + k]


def test_arviz_major_matches_installed_version():
    import arviz

    assert int(arviz.__version__.split(".")[0]) == ARVIZ_MAJOR


def test_native_container_type(data):
    if ARVIZ_MAJOR >= 1:
        assert isinstance(data, xr.DataTree)
    else:
        import arviz

        assert isinstance(data, arviz.InferenceData)


def test_groups_present(data):
    assert sorted(group_names(data)) == sorted(
        ["posterior", "sample_stats", "observed_data", "log_likelihood"]
    )


def test_only_given_groups(draws):
    idata = to_inference_data(draws["posterior"], observed_data=draws["observed_data"])
    assert sorted(group_names(idata)) == ["observed_data", "posterior"]
    with pytest.raises(KeyError, match="log_likelihood"):
        get_group(idata, "log_likelihood")


def test_get_group_is_dataset_with_expected_dims(data, draws):
    post = get_group(data, "posterior")
    assert isinstance(post, xr.Dataset)
    assert set(post.data_vars) == {"mu", "beta", "scale"}
    assert post["mu"].dims == ("chain", "draw")
    assert post["beta"].shape == (N_CHAINS, N_DRAWS, N_BETA)
    np.testing.assert_array_equal(post["beta"].values, draws["posterior"]["beta"])

    stats = get_group(data, "sample_stats")
    assert stats["diverging"].dtype == bool
    assert stats["diverging"].shape == (N_CHAINS, N_DRAWS)

    obs = get_group(data, "observed_data")
    assert "chain" not in obs.dims and "draw" not in obs.dims
    np.testing.assert_array_equal(obs["y"].values, draws["observed_data"]["y"])

    ll = get_group(data, "log_likelihood")
    assert ll["y"].shape == (N_CHAINS, N_DRAWS, N_OBS)


def test_coords_and_dims(draws):
    idata = to_inference_data(
        {"beta": draws["posterior"]["beta"]},
        coords={"coef": ["a", "b", "c"]},
        dims={"beta": ["coef"]},
    )
    post = get_group(idata, "posterior")
    assert post["beta"].dims == ("chain", "draw", "coef")
    assert list(post["coef"].values) == ["a", "b", "c"]
    assert list(summary(idata).index) == ["beta[a]", "beta[b]", "beta[c]"]


def test_accepts_jax_arrays(draws):
    import jax.numpy as jnp

    idata = to_inference_data({"mu": jnp.asarray(draws["posterior"]["mu"])})
    np.testing.assert_allclose(get_group(idata, "posterior")["mu"].values, draws["posterior"]["mu"])


def test_rejects_missing_sample_axes():
    with pytest.raises(ValueError, match="chain, draw"):
        to_inference_data({"mu": np.zeros(5)})
    with pytest.raises(ValueError, match="posterior"):
        to_inference_data({})


def test_summary_shape_and_values(data, draws):
    table = summary(data)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    assert list(table.index) == ["mu", "beta[0]", "beta[1]", "beta[2]", "scale"]
    assert all(dtype == np.float64 for dtype in table.dtypes)

    post = draws["posterior"]
    expected_means = [post["mu"].mean(), *post["beta"].mean(axis=(0, 1)), post["scale"].mean()]
    np.testing.assert_allclose(table["mean"].to_numpy(), expected_means, rtol=1e-10)
    np.testing.assert_allclose(table.loc["mu", "sd"], post["mu"].std(ddof=1), rtol=1e-2)
    assert (table["hdi_lower"] < table["mean"]).all()
    assert (table["mean"] < table["hdi_upper"]).all()
    assert (table["r_hat"] - 1.0).abs().max() < 0.05
    assert (table["ess_bulk"] > 100).all()


def test_summary_interval_is_hdi_not_eti(data, draws):
    # For exponential draws the 90% HDI hugs zero; the equal-tailed interval does not.
    table = summary(data, var_names=["scale"], hdi_prob=0.9)
    x = draws["posterior"]["scale"]
    lo, hi = _direct_hdi(x, 0.9)
    assert table.loc["scale", "hdi_lower"] < 0.5 * np.quantile(x, 0.05)
    np.testing.assert_allclose(table.loc["scale", "hdi_lower"], lo, atol=0.02)
    np.testing.assert_allclose(table.loc["scale", "hdi_upper"], hi, atol=0.1)


def test_summary_var_names_and_hdi_prob(data):
    narrow = summary(data, var_names="mu", hdi_prob=0.5)
    wide = summary(data, var_names=["mu"], hdi_prob=0.95)
    assert list(narrow.index) == ["mu"] == list(wide.index)
    assert list(wide.columns) == list(SUMMARY_COLUMNS)
    width = lambda t: (t["hdi_upper"] - t["hdi_lower"]).iloc[0]  # noqa: E731
    assert width(narrow) < width(wide)
    with pytest.raises(ValueError, match="hdi_prob"):
        summary(data, hdi_prob=1.5)


def test_loo_matches_direct_lppd(data, draws):
    result = loo(data)
    assert isinstance(result, LooResult)
    assert np.isfinite(result.elpd) and np.isfinite(result.se) and result.se > 0
    assert result.pareto_k.shape == (N_OBS,)
    assert np.all(result.pareto_k < 0.7)

    ll = draws["log_likelihood"]["y"].reshape(-1, N_OBS)
    lppd = float(np.sum(logsumexp(ll, axis=0) - np.log(ll.shape[0])))
    # elpd_loo = lppd - p_loo, and a one-parameter model has p_loo close to 1.
    assert abs(result.elpd - lppd) < 3.0
    np.testing.assert_allclose(result.elpd, lppd - result.p_loo, atol=0.1)
    assert 0.3 < result.p_loo < 3.0
    # The pointwise contributions add up to the total (paired model comparisons use them).
    assert result.pointwise.shape == (N_OBS,)
    np.testing.assert_allclose(result.pointwise.sum(), result.elpd, rtol=1e-10)
    per_point = logsumexp(ll, axis=0) - np.log(ll.shape[0])
    assert np.all(result.pointwise <= per_point + 1e-12)  # leaving a point out never helps it


def test_loo_result_is_frozen(data):
    result = loo(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.elpd = 0.0
    with pytest.raises(ValueError):
        result.pareto_k[0] = 0.0
    with pytest.raises(ValueError):
        result.pointwise[0] = 0.0


def test_module_exports():
    assert set(_arviz.__all__) >= {"to_inference_data", "group_names", "get_group", "summary"}
