"""Neural components: shapes, exact likelihood given the network, windows, fitting, errors."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
import pytest
from numpyro.infer.autoguide import AutoDelta
from scipy.stats import multivariate_normal

import bsts
from bsts._lstm import LSTMNetwork, initial_carry, num_windows, run_sequence, run_windows
from bsts.data import prepare_series


def _frame(T, seed=0, effect=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=T)
    z = rng.normal(size=T)
    level = np.cumsum(rng.normal(scale=0.1, size=T))
    y = level + (np.sin(2.0 * x) if effect else 0.0) + rng.normal(scale=0.3, size=T)
    index = pd.date_range("2021-01-01", periods=T, freq="D")
    return pd.DataFrame({"y": y, "x": x, "z": z}, index=index)


@pytest.fixture(scope="session")
def hybrid_fit():
    """A windowed SVI fit of level + emission + transition on a short series."""
    df = _frame(130)
    model = (
        bsts.LocalLevel()
        + bsts.LSTMEmission(["x"], window=40)
        + bsts.LSTMTransition(["x", "z"], window=40)
    )
    post = bsts.fit(
        model, df.iloc[:120], target="y", method="svi", num_steps=150, num_samples=30, seed=1
    )
    return df, post


def _strong(component, scale=3.0):
    """The component with its read-out scaled up, so the network's effect is not small."""
    template = eqx.tree_at(
        lambda m: m.head.weight, component.template, replace_fn=lambda w: w * scale * 10
    )
    template = eqx.tree_at(lambda m: m.head.bias, template, jnp.full(component.num_outputs, 0.2))
    component.template = template
    return component


def _dense_reference(ssm_parts, y):
    """log N(y; mean, cov) with the drift in the transition, built from explicit moments."""
    F, Q, H, g, r, m0, P0, c = ssm_parts
    T, d = len(y), m0.shape[0]
    means, covs, cross = [m0], [P0], None
    for t in range(T - 1):
        means.append(F @ means[-1] + c[t])
        covs.append(F @ covs[-1] @ F.T + Q[t])
    # Cov(x_t, x_s) = F^(t-s) P_s for t >= s.
    joint = np.zeros((T * d, T * d))
    for s in range(T):
        block = covs[s]
        for t in range(s, T):
            joint[t * d : (t + 1) * d, s * d : (s + 1) * d] = block
            joint[s * d : (s + 1) * d, t * d : (t + 1) * d] = block.T
            block = F @ block
    cross = np.kron(np.eye(T), H[None, :])
    mean = cross @ np.concatenate(means) + g
    cov = cross @ joint @ cross.T + r * np.eye(T)
    return multivariate_normal(mean, cov).logpdf(y)


def test_likelihood_exact_given_network():
    """The model's log-likelihood equals a dense Gaussian with drift and s_t put in the dynamics."""
    df = _frame(25, seed=3)
    model = (
        bsts.LocalLinearTrend()
        + _strong(bsts.LSTMEmission(["x"], seed=1))
        + _strong(bsts.LSTMTransition(["x", "z"], seed=2))
    )
    series = prepare_series(df, "y", model.covariate_columns)
    inputs = model.inputs(series)
    values = {
        "trend.level_scale": 0.4,
        "trend.slope_scale": 0.07,
        "observation.scale": 0.3,
        "lstm_emission.network$params": eqx.filter(
            model.components[1].template, eqx.is_inexact_array
        ),
        "lstm_transition.network$params": eqx.filter(
            model.components[2].template, eqx.is_inexact_array
        ),
    }
    conditioned = numpyro.handlers.substitute(numpyro.handlers.seed(model, 0), data=values)
    trace = numpyro.handlers.trace(conditioned).get_trace(inputs, y=jnp.asarray(series.y))
    value = float(trace["y"]["fn"].log_prob(jnp.asarray(series.y)))

    params = model.attach_networks(
        {
            "trend": {"level_scale": 0.4, "slope_scale": 0.07},
            "lstm_emission": {},
            "lstm_transition": {},
        },
        values,
    )
    g = np.asarray(model.components[1].offset(params["lstm_emission"], inputs))
    u, s = model.components[2].drift_and_multiplier(params["lstm_transition"], inputs)
    u, s = np.asarray(u), np.asarray(s)
    T = series.num_timesteps
    assert g.shape == u.shape == s.shape == (T,)
    assert min(np.std(g), np.std(u), np.std(s)) > 0.02  # the network matters
    assert np.all(s > 0)
    # s_t makes the level's noise time-varying.
    assert trace["y"]["fn"].ssm.transition_cov.shape == (T, 2, 2)
    F = np.array([[1.0, 1.0], [0.0, 1.0]])
    Q = np.array([np.diag([(0.4 * s[t]) ** 2, 0.07**2]) for t in range(T)])
    c = np.stack([u, np.zeros(T)], axis=-1)  # the drift enters the level's transition
    m0 = np.array([inputs.initial_level, 0.0])
    P0 = np.diag([1.0, 0.01])
    reference = _dense_reference((F, Q, np.array([1.0, 0.0]), g, 0.09, m0, P0, c), series.y)
    np.testing.assert_allclose(value, reference, rtol=1e-9)


def test_windowed_carry_matches_full_sequence():
    """With fixed weights the carried window states become exact after B evaluations."""
    network = LSTMNetwork(2, 6, 3, jax.random.PRNGKey(4), output_scale=1.0)
    x = jax.random.normal(jax.random.PRNGKey(5), (103, 2))
    full = run_sequence(network, x)
    assert full.shape == (103, 3)
    window = 10
    windows = eqx.filter_jit(lambda n, x, c: run_windows(n, x, window, c))
    carry = initial_carry(network, 103, window)
    B = num_windows(103, window)
    for _ in range(B):
        outputs, carry = windows(network, x, carry)
    assert B == 11 and carry[0].shape == (11, 6)
    np.testing.assert_allclose(outputs, full, atol=1e-12)
    first, _ = windows(network, x, initial_carry(network, 103, window))
    np.testing.assert_allclose(first[:window], full[:window], atol=1e-12)
    assert np.max(np.abs(first[window:] - full[window:])) > 1e-4  # zero starts are not exact


@pytest.mark.slow
def test_svi_carries_window_states():
    """Inside SVI the mutable carry moves one window per step; frozen weights make it exact."""
    df = _frame(50)
    model = bsts.LocalLevel() + bsts.LSTMEmission(["x"], window=10)
    series = prepare_series(df, "y", ["x"])
    inputs = dataclasses.replace(model.inputs(series), training=True)
    y = jnp.asarray(series.y)
    # A zero learning rate freezes every parameter, so the carry must converge exactly.
    svi = numpyro.infer.SVI(
        model, AutoDelta(model), numpyro.optim.Adam(0.0), numpyro.infer.Trace_ELBO()
    )
    state = svi.init(jax.random.PRNGKey(0), inputs, y=y)
    update = jax.jit(lambda s: svi.update(s, inputs, y=y)[0])
    for _ in range(5):  # B = 5 windows
        state = update(state)
    carry = state.mutable_state["lstm_emission.carry"]["state"]
    network = model.components[1].template
    x = jnp.asarray(series.covariates["x"])[:, None]
    zero = (jnp.zeros(network.hidden_size), jnp.zeros(network.hidden_size))
    _, states = jax.lax.scan(lambda c, xt: (network.step(c, xt)[0],) * 2, zero, x)
    np.testing.assert_allclose(carry[0][0], 0.0)
    np.testing.assert_allclose(carry[0][1:], states[0][9:40:10], atol=1e-12)  # h at ends
    np.testing.assert_allclose(carry[1][1:], states[1][9:40:10], atol=1e-12)  # c at ends


def test_fit_keeps_networks_and_round_trips(hybrid_fit, tmp_path):
    df, post = hybrid_fit
    assert set(post.network_params) == {
        "lstm_emission.network$params",
        "lstm_transition.network$params",
    }
    assert not any("weight_prior" in name for name in post.draws)
    learned = post.network_params["lstm_emission.network$params"].cell.weight_ih
    template = post.model.components[1].template.cell.weight_ih
    assert np.max(np.abs(np.asarray(learned) - np.asarray(template))) > 1e-3  # trained
    future = df.iloc[120:][["x", "z"]]
    fc = bsts.forecast(post, future=future, seed=2)
    assert fc.draws.shape == (30, 10) and np.isfinite(fc.draws).all()
    path = tmp_path / "post.bsts"
    post.save(path)
    loaded = bsts.Posterior.load(path)
    again = bsts.forecast(loaded, future=future, seed=2)
    np.testing.assert_array_equal(again.draws, fc.draws)
    saved = jax.tree_util.tree_leaves(post.network_params)
    assert len(saved) > 0
    for a, b in zip(saved, jax.tree_util.tree_leaves(loaded.network_params), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.model.components[1].template.cell.weight_ih, template)
    # The network reads the future covariates: other values give another forecast.
    shifted = bsts.forecast(post, future=future.assign(x=future["x"] + 2.0), seed=2)
    assert np.max(np.abs(shifted.draws.mean(0) - fc.draws.mean(0))) > 1e-3


def test_decompose_shows_networks(hybrid_fit):
    _, post = hybrid_fit
    dec = bsts.decompose(post, num_samples=10)
    assert set(dec.draws) == {"level", "lstm_emission", "lstm_transition"}
    emission = dec.draws["lstm_emission"]
    assert emission.shape == (10, 120) and np.std(emission.mean(0)) > 0
    np.testing.assert_allclose(sum(dec.draws.values()), dec.fitted)
    # The emission's contribution is the network's output in original units.
    params = post.attach_networks(bsts.inference.nest_parameters(post.model, {}))
    g = post.model.components[1].offset(params["lstm_emission"], post.inputs)
    np.testing.assert_allclose(emission[0], np.asarray(g) * post.series.scale, rtol=1e-10)


def _noise_only(T=60):
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {"y": 5.0 + rng.normal(size=T), "x": rng.normal(size=T)},
        index=pd.date_range("2021-01-01", periods=T, freq="D"),
    )


def _fitted_noise(df, prior_scale):
    model = bsts.LocalLevel() + bsts.LSTMEmission(
        ["x"], hidden_size=8, weight_prior_scale=prior_scale
    )
    post = bsts.fit(model, df, target="y", method="map", num_steps=600, learning_rate=0.02)
    return float(post.samples["observation.scale"].ravel()[0])


# A long SVI run checked statistically.
@pytest.mark.slow
def test_point_estimated_lstm_does_not_collapse_noise():
    """On a short noisy series with an irrelevant covariate the noise scale survives."""
    df = _noise_only()
    assert _fitted_noise(df, 0.5) > 0.85 * np.std(df["y"])


@pytest.mark.slow
def test_unregularised_lstm_collapses_noise():
    """The contrast: without the weight prior (scale 1000) the same fit interpolates."""
    df = _noise_only()
    assert _fitted_noise(df, 1000.0) < 0.5 * np.std(df["y"])


def test_bad_input():
    df = _frame(40)
    for size in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
            bsts.LSTMEmission(["x"], hidden_size=size)
    with pytest.raises(ValueError, match="hidden_size"):
        bsts.LSTMTransition(["x"], hidden_size=0)
    with pytest.raises(ValueError, match="window"):
        bsts.LSTMEmission(["x"], window=1)
    with pytest.raises(ValueError, match="weight_prior_scale"):
        bsts.LSTMEmission(["x"], weight_prior_scale=0.0)
    with pytest.raises(ValueError, match="column names"):
        bsts.LSTMEmission([])
    with pytest.raises(ValueError, match="drives a level"):
        bsts.Model([bsts.Seasonal(7), bsts.LSTMTransition(["x"])])
    with pytest.raises(ValueError, match="not a level component"):
        bsts.Model([bsts.LocalLevel(), bsts.LSTMTransition(["x"], level="seasonal")])
    model = bsts.LocalLevel() + bsts.LSTMEmission(["temperature"])
    with pytest.raises(ValueError, match="'temperature' is not in the data"):
        bsts.fit(model, df, target="y", method="map", num_steps=2)
    holed = df.copy()
    holed.iloc[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bsts.fit(bsts.LocalLevel() + bsts.LSTMEmission(["x"]), holed, target="y", method="map")
    assert not df.isna().any().any()  # the user's frame is untouched


def test_future_covariates_errors(hybrid_fit):
    df, post = hybrid_fit
    future = df.iloc[120:][["x", "z"]]
    with pytest.raises(ValueError, match="horizon=20 but future has 10 rows"):
        bsts.forecast(post, horizon=20, future=future)
    with pytest.raises(ValueError, match="missing covariate column 'z'"):
        bsts.forecast(post, future=future[["x"]])
    with pytest.raises(ValueError, match="pass their future values"):
        bsts.forecast(post, horizon=5)
    with pytest.raises(ValueError, match="NaN"):
        bsts.forecast(post, future=future.assign(x=np.nan))


@pytest.mark.slow
def test_nuts_two_stage_freezes_network():
    df = _frame(80)
    model = bsts.LocalLevel() + bsts.LSTMEmission(["x"])
    post = bsts.fit(
        model,
        df,
        target="y",
        method="nuts",
        num_steps=200,
        num_warmup=100,
        num_samples=100,
        num_chains=1,
    )
    assert set(post.draws) == {"level.scale", "observation.scale"}
    assert "lstm_emission.network$params" in post.network_params
    assert post.losses is not None and post.losses[-1] < post.losses[0]
    assert np.isfinite(post.pointwise_log_likelihood()).all()


@pytest.mark.slow
def test_bayesian_network_weights_are_sampled():
    df = _frame(80)
    model = bsts.LocalLevel() + bsts.LSTMEmission(["x"], hidden_size=2, bayesian=True)
    post = bsts.fit(model, df, target="y", method="svi", num_steps=200, num_samples=20)
    assert post.network_params == {}
    leaves = [k for k in post.draws if k.startswith("lstm_emission.network.")]
    assert "lstm_emission.network.cell.weight_ih" in leaves
    assert post.draws["lstm_emission.network.cell.weight_ih"].shape == (1, 20, 8, 1)
    dec = bsts.decompose(post, num_samples=20)
    assert np.std(dec.draws["lstm_emission"][:, 0]) > 0  # weights differ between draws
    summary = post.summary()
    assert "lstm_emission.network.cell.weight_ih" not in summary.index
