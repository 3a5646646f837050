"""Observation models as objects (issue 21): the interface, by name or instance, and `+`."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
import scipy.stats
from numpyro import handlers
from scipy import integrate

import bsts
from bsts.data import prepare_series
from bsts.model import Model
from bsts.observation import (
    OBSERVATION,
    Gaussian,
    Observation,
    StudentT,
    observation_model,
    observation_models,
    observation_params,
)

T = 30


def _inputs(model):
    y = pd.Series(np.sin(np.arange(T) / 3.0) + np.arange(T) * 0.05)
    return model.inputs(prepare_series(y, None, model.covariate_columns))


def test_names_resolve_to_registered_classes():
    assert observation_models()[:2] == ("gaussian", "student_t")
    assert isinstance(Model([bsts.LocalLevel()]).observation, Gaussian)
    model = Model([bsts.LocalLevel()], observation="student_t")
    assert isinstance(model.observation, StudentT)
    assert model.observation == "student_t" and model.observation != "gaussian"
    with pytest.raises(ValueError, match="unknown observation model 'gamma'"):
        observation_model("gamma")


def test_an_instance_is_accepted_with_its_priors():
    prior = dist.HalfNormal(0.3)
    robust = StudentT(scale_prior=prior, df_prior=dist.Gamma(3.0, 0.5))
    model = Model([bsts.LocalLevel()], observation=robust)
    assert model.observation is robust
    assert model.observation_scale_prior is prior
    trace = handlers.trace(handlers.seed(model.sample_parameters, 0)).get_trace(_inputs(model))
    assert trace["observation.df"]["fn"].concentration == 3.0
    with pytest.raises(ValueError, match="disagrees"):
        Model([bsts.LocalLevel()], dist.HalfNormal(2.0), observation=robust)


def test_parameters_live_under_one_key():
    model = Model([bsts.LocalLevel()], observation="student_t")
    inputs = _inputs(model)
    params = handlers.seed(model.sample_parameters, 0)(inputs)
    assert set(params[OBSERVATION]) == {"scale", "df", "weights"}
    assert not any(k.startswith(f"{OBSERVATION}.") for k in params)
    nested = model.state_space(params, inputs)
    flat = {"level": params["level"]}
    flat.update({f"{OBSERVATION}.{k}": v for k, v in params[OBSERVATION].items()})
    np.testing.assert_allclose(
        model.state_space(flat, inputs).observation_var, nested.observation_var
    )
    assert observation_params(flat).keys() == params[OBSERVATION].keys()
    draws = {"observation.scale": np.ones(2), "level.scale": np.ones(2)}
    nested = bsts.inference.nest_parameters(model, draws)
    assert set(nested[OBSERVATION]) == {"scale"}


def test_equality_compares_family_and_priors():
    assert Gaussian() == Gaussian(dist.HalfNormal(1.0))
    assert Gaussian() != Gaussian(dist.HalfNormal(2.0))
    assert Gaussian() != StudentT()
    assert StudentT().core == Gaussian()
    assert Gaussian().core == Gaussian()
    assert Gaussian().exact_predictive and not StudentT().exact_predictive
    assert hash(Gaussian()) == hash(Gaussian(dist.HalfNormal(2.0)))


def test_adding_models_keeps_the_non_default_observation():
    # Issue 21, bug (a): the left side's defaults must not override the right's.
    prior = dist.HalfCauchy(0.5)
    right = Model([bsts.Seasonal(4)], observation="student_t")
    assert isinstance((bsts.LocalLevel() + right).observation, StudentT)
    custom = Model([bsts.Seasonal(4)], observation_scale_prior=prior)
    assert (bsts.LocalLevel() + custom).observation_scale_prior is prior
    assert (Model([bsts.LocalLevel()]) + custom).observation_scale_prior is prior
    assert isinstance((right + bsts.LocalLevel()).observation, StudentT)
    same = Model([bsts.LocalLevel()], observation="student_t") + right
    assert same.observation == "student_t"
    with pytest.raises(ValueError, match="different observation models"):
        Model([bsts.LocalLevel()], observation_scale_prior=dist.HalfNormal(3.0)) + right


@pytest.mark.parametrize("name", ["observation", "y"])
def test_reserved_component_names_are_rejected(name):
    # Issue 21, bug (b): LocalLevel(name="observation") gave site observation.scale twice.
    with pytest.raises(ValueError, match=f"'{name}' is reserved.*another name"):
        bsts.LocalLevel(name=name)


def test_predictive_noise_and_tail_probability():
    key = jax.random.PRNGKey(0)
    params = {"scale": jnp.array([1.0, 2.0]), "df": jnp.array([3.0, 3.0])}
    gaussian = Gaussian().predictive_noise(key, params, (2, 20000))
    np.testing.assert_allclose(gaussian.std(axis=1), [1.0, 2.0], rtol=0.03)
    robust = StudentT().predictive_noise(key, params, (2, 20000))
    # The same normal draws, divided by the root of a Gamma weight: heavier tails.
    assert np.abs(robust).max() > np.abs(gaussian).max()
    residual, signal_var = jnp.array([0.0, 3.0]), jnp.array([1.0, 1.0])
    tail, var = Gaussian().tail_probability(key, {"scale": 1.0}, residual, signal_var)
    np.testing.assert_allclose(var, [2.0, 2.0])
    np.testing.assert_allclose(tail[0], 1.0)
    robust_tail, _ = StudentT().tail_probability(
        key, {"scale": 1.0, "df": 3.0}, residual, signal_var
    )
    assert robust_tail[1] > tail[1]  # an outlier is less surprising under heavy tails


def test_model_functions_trace_under_vmap_over_inputs():
    # A many-series layer maps the model over series with traced inputs.
    model = Model([bsts.LocalLevel()], observation="student_t")
    inputs = _inputs(model)

    def log_density(dt, initial_level, key):
        traced = type(inputs)(dt, inputs.regular, {}, initial_level, inputs.num_timesteps)
        seeded = handlers.seed(model, key)
        trace = handlers.trace(seeded).get_trace(traced, y=jnp.zeros(T))
        return trace["y"]["fn"].log_prob(jnp.zeros(T))

    dts = jnp.ones((3, T))
    levels = jnp.array([0.0, 0.5, 1.0])
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    out = jax.vmap(log_density)(dts, levels, keys)
    assert out.shape == (3,) and np.all(np.isfinite(out))


def test_a_new_family_needs_only_its_class(monkeypatch):
    # Registration happens when the class is defined; keep it out of the other tests.
    monkeypatch.setattr(bsts.observation, "_REGISTRY", dict(bsts.observation._REGISTRY))

    class Doubled(Gaussian):
        name = "doubled_test"
        label = "Doubled"

        def variance(self, params, inputs):
            return 2.0 * params["scale"] ** 2

    assert "doubled_test" in observation_models()
    model = Model([bsts.LocalLevel()], observation="doubled_test")
    inputs = _inputs(model)
    params = {"level": {"scale": 0.1}, OBSERVATION: {"scale": 0.5}}
    np.testing.assert_allclose(model.state_space(params, inputs).observation_var, 0.5)
    assert isinstance(model.observation, Observation)


@pytest.mark.parametrize("df", [0.5, 1.0, 2.0, 5.0, 30.0, 3000.0])
def test_student_t_held_out_density_is_the_t_density_without_signal_variance(df):
    y = np.array([0.0, 0.5, 3.0, 40.0, 1e3, 4e3])
    got = StudentT().held_out_log_density(y, 0.0, 0.0, {"scale": 2.0, "df": df})
    np.testing.assert_allclose(got, scipy.stats.t.logpdf(y, df, scale=2.0), rtol=1e-10)


@pytest.mark.parametrize(("df", "y"), [(4.0, 5.0), (1.5, -30.0), (60.0, 0.3)])
def test_student_t_held_out_density_integrates_the_weight_out(df, y):
    signal_var, scale = 1.5, 0.7

    def integrand(lam):
        sd = np.sqrt(signal_var + scale**2 / lam)
        return scipy.stats.norm.pdf(y, scale=sd) * scipy.stats.gamma.pdf(lam, df / 2, scale=2 / df)

    expected = np.log(integrate.quad(integrand, 0, np.inf, limit=400, epsabs=0)[0])
    got = StudentT().held_out_log_density(y, 0.0, signal_var, {"scale": scale, "df": df})
    np.testing.assert_allclose(got, expected, rtol=1e-8)


def test_gaussian_held_out_density_and_mixture():
    got = Gaussian().held_out_log_density(np.array([1.0, -2.0]), 0.5, 0.25, {"scale": 1.0})
    expected = scipy.stats.norm.logpdf([1.0, -2.0], 0.5, np.sqrt(1.25))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    variances = np.full((3, 2), 4.0)
    np.testing.assert_array_equal(Gaussian().mixture_sds({}, variances, None), 2.0)


def test_student_t_mixture_over_stratified_weights_has_the_t_quantiles():
    # Every draw the same parameters and no signal variance: the mixture over draws is
    # the t distribution itself, up to the stratification.
    draws, df, scale = 4000, 3.0, 1.3
    params = {"scale": np.full(draws, scale), "df": np.full(draws, df)}
    u = (np.random.default_rng(0).permutation(draws) + 0.5) / draws
    sds = StudentT().mixture_sds(params, np.full((draws, 1), scale**2), u)
    for p in (0.025, 0.25, 0.9, 0.995):
        q = scipy.stats.t.ppf(p, df, scale=scale)
        mixture_cdf = scipy.stats.norm.cdf(q / sds).mean()
        assert mixture_cdf == pytest.approx(p, abs=2e-4)
