"""`Model`: composition, naming, the assembled state space, the likelihood and its errors."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
import scipy.linalg
import scipy.stats
from kalman_helpers import FIELD_NAMES
from numpyro import handlers

import bsts
from bsts.data import prepare_series
from bsts.distribution import StateSpaceDistribution
from bsts.kalman import StateSpace, kalman_filter, marginal_log_likelihood
from bsts.model import OBSERVATION_SCALE, Model

T = 24


def _frame(seed=0, irregular=False):
    rng = np.random.default_rng(seed)
    if irregular:
        index = pd.to_datetime("2020-01-01") + pd.to_timedelta(
            np.cumsum(np.r_[0.0, rng.choice([1.0, 1.0, 1.0, 2.0, 3.0, 0.5], size=T - 1)]),
            unit="D",
        )
    else:
        index = pd.date_range("2020-01-01", periods=T, freq="MS")
    return pd.DataFrame(
        {
            "y": 5.0 + np.cumsum(rng.normal(size=T)) + np.sin(np.arange(T)),
            "x": rng.normal(size=T),
            "z": rng.normal(size=T),
        },
        index=index,
    )


def _series(model, seed=0, irregular=False, missing=()):
    frame = _frame(seed, irregular)
    if missing:
        frame.iloc[list(missing), 0] = np.nan
    return prepare_series(frame, "y", model.covariate_columns)


def _nest(model, sites):
    """Trace values `{"comp.param": v}` to the `{comp: {param: v}}` form of `state_space`."""
    params = {name: {} for name in model.names}
    for site, value in sites.items():
        if site == OBSERVATION_SCALE:
            params[site] = value
        elif site != "y":
            component, parameter = site.split(".", 1)
            params[component][parameter] = value
    return params


def _trace(model, inputs, y=None, seed=0):
    return handlers.trace(handlers.seed(model, rng_seed=seed)).get_trace(inputs, y=y)


def _assert_same_state_space(got: StateSpace, expected: StateSpace):
    for field in FIELD_NAMES:
        a, b = np.asarray(getattr(got, field)), np.asarray(getattr(expected, field))
        assert a.shape == b.shape, field
        np.testing.assert_allclose(a, b, atol=1e-14, err_msg=field)


# -- composition and names --------------------------------------------------------------------


def _structure(model):
    return [(name, type(c), c.columns) for name, c in model]


def test_plus_and_list_give_the_same_model():
    added = bsts.LocalLinearTrend() + bsts.Seasonal(4) + bsts.Regression(["x"])
    listed = Model([bsts.LocalLinearTrend(), bsts.Seasonal(4), bsts.Regression(["x"])])
    assert isinstance(added, Model)
    assert _structure(added) == _structure(listed)
    assert added.names == ["trend", "seasonal", "regression"]
    assert added.covariate_columns == ["x"]

    right = bsts.LocalLinearTrend() + (bsts.Seasonal(4) + bsts.Regression(["x"]))
    assert _structure(right) == _structure(listed)
    both = Model([bsts.LocalLevel()]) + Model([bsts.Seasonal(4)])
    assert both.names == ["level", "seasonal"]

    series = _series(added)
    assert added.layout(added.inputs(series)) == listed.layout(listed.inputs(series))


def test_plus_keeps_the_observation_prior():
    prior = dist.HalfNormal(3.0)
    model = Model([bsts.LocalLevel()], observation_scale_prior=prior) + bsts.Seasonal(4)
    assert model.observation_scale_prior is prior


def test_two_components_of_one_kind_get_distinct_names():
    model = bsts.FourierSeasonal(7, 2) + bsts.FourierSeasonal(365.25, 3)
    assert model.names == ["fourier", "fourier_2"]
    series = _series(model)
    trace = _trace(model, model.inputs(series), y=jnp.asarray(series.y))
    assert {"fourier.scale", "fourier_2.scale", OBSERVATION_SCALE, "y"} == set(trace)


def test_names_avoid_explicit_ones():
    model = Model([bsts.LocalLevel(), bsts.LocalLevel(name="level_2"), bsts.LocalLevel()])
    assert model.names == ["level", "level_2", "level_3"]
    with pytest.raises(ValueError, match="distinct"):
        Model([bsts.LocalLevel(name="a"), bsts.Seasonal(4, name="a")])


def _everything():
    return (
        bsts.LocalLinearTrend()
        + bsts.SemiLocalLinearTrend()
        + bsts.Seasonal(4)
        + bsts.Seasonal(3, duration=2)
        + bsts.FourierSeasonal(6.5, 2)
        + bsts.Regression(["x"], sparse=True)
        + bsts.Regression(["z"])
        + bsts.DynamicRegression(["x", "z"])
        + bsts.Autoregressive(2)
    )


@pytest.fixture(scope="module")
def everything():
    """A model with every component, its inputs and one trace (shared: tracing is slow)."""
    model = _everything()
    inputs = model.inputs(_series(model))
    trace = _trace(model, inputs, y=jnp.zeros(T))
    return model, inputs, trace


def test_site_names(everything):
    model, _, trace = everything
    for site in trace:
        assert "/" not in site
        if site not in ("y", OBSERVATION_SCALE):
            assert site.split(".", 1)[0] in model.names, site
    units = model.units()
    assert "/" not in "".join(units)
    # Every reported parameter is a site of the trace.
    assert set(units) <= set(trace)


def test_layout_matches_state_space(everything):
    model, inputs, trace = everything
    layout = model.layout(inputs)
    sizes = {name: s.stop - s.start for name, s in layout.slices.items()}
    assert sizes == {
        "trend": 2,
        "semi_trend": 3,
        "seasonal": 3,
        "seasonal_2": 2,
        "fourier": 4,
        "regression": 0,
        "regression_2": 0,
        "dynamic_regression": 2,
        "ar": 2,
    }
    ssm = model.state_space(_nest(model, {k: v["value"] for k, v in trace.items()}), inputs)
    assert ssm.state_dim == layout.state_dim == 18


# -- the assembled state space ----------------------------------------------------------------


def test_state_space_is_block_diagonal():
    model = bsts.LocalLinearTrend() + bsts.Seasonal(4) + bsts.Regression(["x"])
    series = _series(model)
    inputs = model.inputs(series)
    params = {
        "trend": {"level_scale": 0.5, "slope_scale": 0.1},
        "seasonal": {"scale": 0.2},
        "regression": {"coefficients": jnp.array([1.5])},
        OBSERVATION_SCALE: 0.3,
    }
    seasonal = np.array([[-1.0, -1.0, -1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    expected = StateSpace(
        scipy.linalg.block_diag([[1.0, 1.0], [0.0, 1.0]], seasonal),
        np.diag([0.25, 0.01, 0.04, 0.0, 0.0]),
        np.array([1.0, 0.0, 1.0, 0.0, 0.0]),
        1.5 * series.covariates["x"],
        0.09,
        np.array([inputs.initial_level, 0.0, 0.0, 0.0, 0.0]),
        np.diag([1.0, 0.01, 1.0, 1.0, 1.0]),
    )
    got = model.state_space(params, inputs)
    _assert_same_state_space(got, expected)
    assert got.has_constant_dynamics
    np.testing.assert_allclose(inputs.initial_level, series.y[0])


def test_state_space_mixes_constant_and_time_varying_blocks():
    model = bsts.LocalLevel() + bsts.DynamicRegression(["x"]) + bsts.Autoregressive(1)
    series = _series(model)
    inputs = model.inputs(series)
    phi, ar_scale = 0.5, 0.4
    params = {
        "level": {"scale": 0.2},
        "dynamic_regression": {"scales": jnp.array([0.1])},
        "ar": {"scale": ar_scale, "coefficients": jnp.array([phi])},
        OBSERVATION_SCALE: 0.3,
    }
    x = series.covariates["x"]
    F = np.broadcast_to(np.diag([1.0, 1.0, phi]), (T, 3, 3))
    Q = np.broadcast_to(np.diag([0.04, 0.01, ar_scale**2]), (T, 3, 3))
    H = np.stack([np.ones(T), x, np.ones(T)], axis=-1)
    expected = StateSpace(
        F,
        Q,
        H,
        np.zeros(T),
        0.09,
        np.array([inputs.initial_level, 0.0, 0.0]),
        np.diag([1.0, 1.0, ar_scale**2 / (1 - phi**2)]),
    )
    got = model.state_space(params, inputs)
    assert not got.has_constant_dynamics
    assert np.asarray(got.observation_matrix).shape == (T, 3)
    # Constant blocks may stay constant: compare after broadcasting over time.
    for field in ("transition_matrix", "transition_cov"):
        np.testing.assert_allclose(
            np.broadcast_to(np.asarray(getattr(got, field)), (T, 3, 3)), getattr(expected, field)
        )
    for field in ("observation_matrix", "observation_offset", "initial_mean", "initial_cov"):
        np.testing.assert_allclose(np.asarray(getattr(got, field)), getattr(expected, field))
    np.testing.assert_allclose(got.observation_var, 0.09)


# -- the likelihood ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "irregular", "missing"),
    [
        (
            lambda: (
                bsts.LocalLinearTrend()
                + bsts.Seasonal(4)
                + bsts.Regression(["x"])
                + bsts.Autoregressive(2)
            ),
            False,
            (),
        ),
        (lambda: bsts.LocalLevel() + bsts.Seasonal(3), False, (2, 9, 10)),
        (
            lambda: bsts.LocalLevel() + bsts.FourierSeasonal(7.0, 2) + bsts.Autoregressive(1),
            True,
            (5,),
        ),
    ],
)
def test_trace_log_prob_is_the_kalman_likelihood(build, irregular, missing):
    model = build()
    series = _series(model, irregular=irregular, missing=missing)
    inputs = model.inputs(series)
    y = jnp.asarray(series.y)
    trace = _trace(model, inputs, y=y, seed=3)
    site = trace["y"]
    assert site["is_observed"]
    log_prob = site["fn"].log_prob(site["value"])

    params = _nest(model, {k: v["value"] for k, v in trace.items()})
    ssm = model.state_space(params, inputs)
    expected = kalman_filter(ssm, y).log_likelihood.sum()
    np.testing.assert_allclose(log_prob, expected, rtol=1e-9)
    assert np.isfinite(expected)
    pointwise = site["fn"].pointwise_log_prob(y)
    np.testing.assert_allclose(pointwise, kalman_filter(ssm, y).log_likelihood, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(pointwise)[list(missing)], 0.0)


# -- StateSpaceDistribution -------------------------------------------------------------------


def _local_level(m0, p0, level_var, obs_var):
    return StateSpace([[1.0]], [[level_var]], [1.0], 0.0, obs_var, [m0], [[p0]])


def test_distribution_shapes_and_log_prob():
    n = 10
    ssm = _local_level(0.5, 2.0, 0.3, 0.2)
    d = StateSpaceDistribution(ssm, n)
    assert d.event_shape == (n,)
    assert d.batch_shape == ()
    key = jax.random.PRNGKey(0)
    y = d.sample(key)
    assert y.shape == (n,)
    assert d.sample(key, (2, 5)).shape == (2, 5, n)
    np.testing.assert_allclose(d.log_prob(y), marginal_log_likelihood(ssm, y), rtol=1e-12)
    # Dense check: y ~ N(m0 1, P0 11ᵀ + σ_l² min(s, t) + σ_o² I).
    t = np.arange(n)
    cov = 2.0 + 0.3 * np.minimum.outer(t, t) + 0.2 * np.eye(n)
    dense = scipy.stats.multivariate_normal(np.full(n, 0.5), cov).logpdf(np.asarray(y))
    np.testing.assert_allclose(d.log_prob(y), dense, rtol=1e-10)


def test_distribution_sample_moments():
    n, draws = 10, 8000
    m0, p0, level_var, obs_var = 1.5, 0.7, 0.25, 0.4
    d = StateSpaceDistribution(_local_level(m0, p0, level_var, obs_var), n)
    y = np.asarray(d.sample(jax.random.PRNGKey(1), (draws,)))
    assert y.shape == (draws, n)

    t = np.arange(n)
    variance = p0 + t * level_var + obs_var
    mean_se = np.sqrt(variance / draws)
    np.testing.assert_array_less(np.abs(y.mean(0) - m0), 5 * mean_se)
    # sd of a Gaussian sample variance: var * sqrt(2 / (N - 1))
    var_se = variance * np.sqrt(2.0 / (draws - 1))
    np.testing.assert_array_less(np.abs(y.var(0, ddof=1) - variance), 5 * var_se)
    # Covariance of two steps: P0 + min(s, t) σ_l².
    cov_27 = np.cov(y[:, 2], y[:, 7])[0, 1]
    expected = p0 + 2 * level_var
    se = np.sqrt((variance[2] * variance[7] + expected**2) / draws)
    assert abs(cov_27 - expected) < 5 * se


# -- errors -----------------------------------------------------------------------------------


def test_seasonal_on_irregular_series_points_to_fourier():
    model = bsts.LocalLevel() + bsts.Seasonal(7)
    series = _series(model, irregular=True)
    assert not series.regular
    with pytest.raises(ValueError, match="FourierSeasonal"):
        model.inputs(series)
    # The same model works on a regular series.
    model.inputs(_series(model))


def test_model_errors():
    with pytest.raises(ValueError, match="at least one component"):
        Model([])
    with pytest.raises(ValueError, match="with states"):
        Model([bsts.Regression(["x"])])
    with pytest.raises(ValueError, match="with states"):
        Model([bsts.Regression(["x"]), bsts.Regression(["z"], sparse=True)])
    with pytest.raises(ValueError, match="bsts components"):
        Model([bsts.LocalLevel(), "seasonal"])
    with pytest.raises(ValueError, match="observation_scale_prior"):
        Model([bsts.LocalLevel()], observation_scale_prior=1.0)
    with pytest.raises(TypeError):
        bsts.LocalLevel() + 1


def test_student_t_observations_are_a_normal_scale_mixture():
    model = Model([bsts.LocalLevel()], observation="student_t")
    assert (model + bsts.Seasonal(4)).observation == "student_t"  # `+` keeps it
    series = _series(model)
    inputs = model.inputs(series)
    trace = handlers.trace(handlers.seed(model, 0)).get_trace(inputs, y=jnp.asarray(series.y))
    weights = trace["observation.weights"]["value"]
    assert weights.shape == (T,)
    assert "observation.df" in trace
    params = {
        "level": {"scale": 0.3},
        OBSERVATION_SCALE: 0.5,
        "observation.df": 4.0,
        "observation.weights": np.linspace(0.2, 2.0, T),
    }
    ssm = model.state_space(params, inputs)
    # Given the weights the noise variance is sigma^2 / lambda_t, and the likelihood is
    # that of a dense Gaussian with this diagonal noise.
    np.testing.assert_allclose(ssm.observation_var, 0.25 / np.linspace(0.2, 2.0, T))
    level_cov = np.minimum.outer(np.arange(T), np.arange(T)) * 0.09 + 1.0
    cov = level_cov + np.diag(0.25 / np.linspace(0.2, 2.0, T))
    mean = np.full(T, inputs.initial_level)
    expected = scipy.stats.multivariate_normal(mean, cov).logpdf(series.y)
    np.testing.assert_allclose(marginal_log_likelihood(ssm, series.y), expected, rtol=1e-9)
    # A forecast extends the inputs: steps past the fitted weights get weight 1.
    longer = type(inputs)(np.ones(T + 3), True, {}, inputs.initial_level, T + 3)
    np.testing.assert_allclose(model.state_space(params, longer).observation_var[T:], 0.25)
    assert set(model.units()) >= {"observation.df", "observation.weights"}
    with pytest.raises(ValueError, match="observation model"):
        Model([bsts.LocalLevel()], observation="cauchy")
