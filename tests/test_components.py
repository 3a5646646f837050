"""Components: each block's matrices against its docstring maths, regular and irregular."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
from numpyro import handlers

import bsts
from bsts.components import Block, ModelInputs, _pacf_to_ar

T = 30
# Irregular steps: dt[0] is unused; the transition out of step t uses dt[t + 1].
DT = np.concatenate([[1.0, 1.0, 3.0, 0.5, 2.0, 0.25], np.linspace(0.5, 2.5, T - 6)])
INITIAL_LEVEL = 0.3


def _covariates():
    grid = np.linspace(0.0, 1.0, T)
    return {"a": np.sin(6 * grid), "b": grid - 0.5, "c": np.cos(3 * grid)}


REGULAR = ModelInputs(
    dt=np.ones(T),
    regular=True,
    covariates=_covariates(),
    initial_level=INITIAL_LEVEL,
    num_timesteps=T,
)
IRREGULAR = ModelInputs(
    dt=DT,
    regular=False,
    covariates=_covariates(),
    initial_level=INITIAL_LEVEL,
    num_timesteps=T,
)
# What the transition at index t uses: dt[t + 1], and 1 for the (unused) last one.
STEPS = np.append(DT[1:], 1.0)


def _np(block: Block):
    return {k: np.asarray(getattr(block, k)) for k in Block.__dataclass_fields__}


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s], [-s, c]])


# -- LocalLevel -------------------------------------------------------------------------------


def test_local_level_regular():
    b = _np(bsts.LocalLevel().block({"scale": 0.4}, REGULAR))
    np.testing.assert_allclose(b["transition"], [[1.0]])
    np.testing.assert_allclose(b["noise_cov"], [[0.16]])
    np.testing.assert_allclose(b["loading"], [1.0])
    np.testing.assert_allclose(b["initial_mean"], [INITIAL_LEVEL])
    np.testing.assert_allclose(b["initial_cov"], [[1.0]])


def test_local_level_irregular_variance_scales_with_dt():
    b = _np(bsts.LocalLevel().block({"scale": 0.4}, IRREGULAR))
    assert b["transition"].shape == (T, 1, 1)
    np.testing.assert_allclose(b["transition"], 1.0)
    np.testing.assert_allclose(b["noise_cov"][:, 0, 0], 0.16 * STEPS)
    # Spot checks: the gap of 3 into step 2 drives the transition at index 1.
    np.testing.assert_allclose(b["noise_cov"][1, 0, 0], 0.16 * 3.0)
    np.testing.assert_allclose(b["noise_cov"][2, 0, 0], 0.16 * 0.5)
    np.testing.assert_allclose(b["loading"], np.ones((T, 1)))


# -- LocalLinearTrend -------------------------------------------------------------------------


def test_local_linear_trend_regular():
    b = _np(bsts.LocalLinearTrend().block({"level_scale": 0.5, "slope_scale": 0.1}, REGULAR))
    np.testing.assert_allclose(b["transition"], [[1.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(b["noise_cov"], np.diag([0.25, 0.01]))
    np.testing.assert_allclose(b["loading"], [1.0, 0.0])
    np.testing.assert_allclose(b["initial_mean"], [INITIAL_LEVEL, 0.0])
    np.testing.assert_allclose(b["initial_cov"], np.diag([1.0, 0.01]))


def test_local_linear_trend_irregular():
    b = _np(bsts.LocalLinearTrend().block({"level_scale": 0.5, "slope_scale": 0.1}, IRREGULAR))
    expected_F = np.array([[[1.0, s], [0.0, 1.0]] for s in STEPS])
    np.testing.assert_allclose(b["transition"], expected_F)
    expected_Q = np.array([np.diag([0.25 * s, 0.01 * s]) for s in STEPS])
    np.testing.assert_allclose(b["noise_cov"], expected_Q)
    np.testing.assert_allclose(b["loading"], np.tile([1.0, 0.0], (T, 1)))


# -- SemiLocalLinearTrend ---------------------------------------------------------------------


def test_semi_local_linear_trend_regular():
    phi, sl, ss = 0.8, 0.3, 0.05
    params = {"level_scale": sl, "slope_scale": ss, "persistence": phi}
    b = _np(bsts.SemiLocalLinearTrend().block(params, REGULAR))
    # state (level, slope, long-run slope D); Δ = 1
    np.testing.assert_allclose(
        b["transition"], [[1.0, 1.0, 0.0], [0.0, phi, 1.0 - phi], [0.0, 0.0, 1.0]]
    )
    np.testing.assert_allclose(b["noise_cov"], np.diag([sl**2, ss**2, 0.0]), atol=1e-15)
    np.testing.assert_allclose(b["loading"], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(b["initial_mean"], [INITIAL_LEVEL, 0.0, 0.0])
    np.testing.assert_allclose(b["initial_cov"], np.diag([1.0, 0.01, 0.01]))


def test_semi_local_linear_trend_irregular():
    phi, sl, ss = 0.8, 0.3, 0.05
    params = {"level_scale": sl, "slope_scale": ss, "persistence": phi}
    b = _np(bsts.SemiLocalLinearTrend().block(params, IRREGULAR))
    assert b["transition"].shape == (T, 3, 3)
    for t, step in enumerate(STEPS):
        decay = phi**step
        np.testing.assert_allclose(
            b["transition"][t], [[1.0, step, 0.0], [0.0, decay, 1.0 - decay], [0.0, 0.0, 1.0]]
        )
        slope_var = ss**2 * (1.0 - phi ** (2 * step)) / (1.0 - phi**2)
        np.testing.assert_allclose(
            b["noise_cov"][t], np.diag([sl**2 * step, slope_var, 0.0]), atol=1e-15
        )


# -- Seasonal ---------------------------------------------------------------------------------


def test_seasonal_companion_matrix():
    p, scale = 5, 0.2
    b = _np(bsts.Seasonal(p).block({"scale": scale}, REGULAR))
    d = p - 1
    expected = np.zeros((d, d))
    expected[0] = -1.0
    expected[1:, :-1] = np.eye(d - 1)
    np.testing.assert_allclose(b["transition"], expected)
    expected_Q = np.zeros((d, d))
    expected_Q[0, 0] = scale**2
    np.testing.assert_allclose(b["noise_cov"], expected_Q)
    np.testing.assert_allclose(b["loading"], np.eye(d)[0])
    np.testing.assert_allclose(b["initial_mean"], np.zeros(d))
    np.testing.assert_allclose(b["initial_cov"], np.eye(d))
    # Without shocks the effects repeat every p steps and any p consecutive ones sum to 0.
    F = b["transition"]
    np.testing.assert_allclose(np.linalg.matrix_power(F, p), np.eye(d), atol=1e-12)
    state = np.array([0.7, -0.2, 0.4, 1.1])
    effects = []
    for _ in range(3 * p):
        effects.append(state[0])
        state = F @ state
    effects = np.array(effects)
    window_sums = np.convolve(effects, np.ones(p), mode="valid")
    np.testing.assert_allclose(window_sums, 0.0, atol=1e-12)


def test_seasonal_duration():
    p, k, scale = 4, 2, 0.3
    b = _np(bsts.Seasonal(p, duration=k).block({"scale": scale}, REGULAR))
    advance = _np(bsts.Seasonal(p).block({"scale": scale}, REGULAR))["transition"]
    assert b["transition"].shape == (T, p - 1, p - 1)
    for t in range(T):
        boundary = t % k == k - 1
        np.testing.assert_allclose(b["transition"][t], advance if boundary else np.eye(p - 1))
        np.testing.assert_allclose(b["noise_cov"][t, 0, 0], scale**2 if boundary else 0.0)
        np.testing.assert_allclose(np.delete(b["noise_cov"][t].ravel(), 0), 0.0)
    np.testing.assert_allclose(b["loading"], np.tile(np.eye(p - 1)[0], (T, 1)))


# -- FourierSeasonal --------------------------------------------------------------------------


def test_fourier_rotation_blocks():
    period, K, scale = 52.18, 3, 0.07
    b = _np(bsts.FourierSeasonal(period, harmonics=K).block({"scale": scale}, REGULAR))
    expected = np.zeros((2 * K, 2 * K))
    for j in range(1, K + 1):
        expected[2 * j - 2 : 2 * j, 2 * j - 2 : 2 * j] = _rotation(2 * np.pi * j / period)
    np.testing.assert_allclose(b["transition"], expected, atol=1e-15)
    np.testing.assert_allclose(b["noise_cov"], scale**2 * np.eye(2 * K))
    np.testing.assert_allclose(b["loading"], [1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(b["initial_mean"], np.zeros(2 * K))
    np.testing.assert_allclose(b["initial_cov"], np.eye(2 * K))
    # Each harmonic's rotation is orthogonal with eigenvalues exp(±iλ_j).
    F = b["transition"]
    np.testing.assert_allclose(F @ F.T, np.eye(2 * K), atol=1e-12)
    angles = np.sort(np.abs(np.angle(np.linalg.eigvals(F))))
    lambdas = 2 * np.pi * np.arange(1, K + 1) / period
    np.testing.assert_allclose(angles, np.sort(np.repeat(lambdas, 2)), rtol=1e-10)


def test_fourier_irregular_angle_scales_with_dt():
    period, K, scale = 7.0, 2, 0.1
    b = _np(bsts.FourierSeasonal(period, harmonics=K).block({"scale": scale}, IRREGULAR))
    assert b["transition"].shape == (T, 4, 4)
    for t, step in enumerate(STEPS):
        for j in range(1, K + 1):
            block = b["transition"][t, 2 * j - 2 : 2 * j, 2 * j - 2 : 2 * j]
            np.testing.assert_allclose(block, _rotation(2 * np.pi * j * step / period), atol=1e-14)
        np.testing.assert_allclose(b["transition"][t, :2, 2:], 0.0)
        np.testing.assert_allclose(b["noise_cov"][t], scale**2 * step * np.eye(4))
    np.testing.assert_allclose(b["loading"], np.tile([1.0, 0.0, 1.0, 0.0], (T, 1)))


# -- Regression and DynamicRegression ---------------------------------------------------------


def test_regression_offset():
    reg = bsts.Regression(["a", "c"])
    beta = jnp.array([0.5, -2.0])
    assert reg.block({"coefficients": beta}, REGULAR) is None
    cov = REGULAR.covariates
    np.testing.assert_allclose(
        reg.offset({"coefficients": beta}, REGULAR), 0.5 * cov["a"] - 2.0 * cov["c"]
    )
    assert reg.columns == ["a", "c"]


def test_dynamic_regression_loading_is_covariates():
    comp = bsts.DynamicRegression(["b", "a"])
    scales = jnp.array([0.1, 0.3])
    b = _np(comp.block({"scales": scales}, REGULAR))
    cov = REGULAR.covariates
    np.testing.assert_allclose(b["loading"], np.stack([cov["b"], cov["a"]], axis=-1))
    np.testing.assert_allclose(b["transition"], np.eye(2))
    np.testing.assert_allclose(b["noise_cov"], np.diag([0.01, 0.09]))
    np.testing.assert_allclose(b["initial_mean"], np.zeros(2))
    np.testing.assert_allclose(b["initial_cov"], np.eye(2))
    assert comp.offset({"scales": scales}, REGULAR) is None

    irregular = _np(comp.block({"scales": scales}, IRREGULAR))
    np.testing.assert_allclose(irregular["noise_cov"][:, 1, 1], 0.09 * STEPS)
    np.testing.assert_allclose(irregular["noise_cov"][:, 0, 1], 0.0)


# -- Autoregressive ---------------------------------------------------------------------------


def _companion(phi):
    p = len(phi)
    F = np.zeros((p, p))
    F[0] = phi
    F[1:, :-1] = np.eye(p - 1)
    return F


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_pacf_to_ar_is_stationary(order, rng):
    for _ in range(50):
        pacf = rng.uniform(-0.999, 0.999, size=order)
        phi = np.asarray(_pacf_to_ar(jnp.asarray(pacf)))
        assert phi.shape == (order,)
        assert np.max(np.abs(np.linalg.eigvals(_companion(phi)))) < 1.0
        # The last AR coefficient equals the last partial autocorrelation.
        np.testing.assert_allclose(phi[-1], pacf[-1])


def test_pacf_to_ar_order_two_closed_form():
    k1, k2 = 0.6, -0.3
    phi = np.asarray(_pacf_to_ar(jnp.array([k1, k2])))
    np.testing.assert_allclose(phi, [k1 * (1 - k2), k2])


@pytest.mark.parametrize("order", [1, 2, 3])
def test_autoregressive_regular_block(order, rng):
    pacf = rng.uniform(-0.9, 0.9, size=order)
    phi = np.asarray(_pacf_to_ar(jnp.asarray(pacf)))
    scale = 0.6
    b = _np(
        bsts.Autoregressive(order).block(
            {"coefficients": jnp.asarray(phi), "scale": scale}, REGULAR
        )
    )
    F, Q, P = b["transition"], b["noise_cov"], b["initial_cov"]
    np.testing.assert_allclose(F, _companion(phi))
    expected_Q = np.zeros((order, order))
    expected_Q[0, 0] = scale**2
    np.testing.assert_allclose(Q, expected_Q)
    np.testing.assert_allclose(b["loading"], np.eye(order)[0])
    np.testing.assert_allclose(b["initial_mean"], np.zeros(order))
    # The initial covariance is the stationary one.
    np.testing.assert_allclose(P, F @ P @ F.T + Q, atol=1e-12)
    np.testing.assert_allclose(P, P.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(P) > 0)
    if order == 1:
        np.testing.assert_allclose(P, [[scale**2 / (1 - phi[0] ** 2)]])


def test_autoregressive_irregular_is_exp_decay():
    kappa, scale = 0.7, 0.4
    b = _np(
        bsts.Autoregressive(1).block(
            {"coefficients": jnp.array([kappa]), "scale": scale}, IRREGULAR
        )
    )
    stationary = scale**2 / (1 - kappa**2)
    np.testing.assert_allclose(b["transition"][:, 0, 0], kappa**STEPS)
    np.testing.assert_allclose(b["noise_cov"][:, 0, 0], stationary * (1 - kappa ** (2 * STEPS)))
    np.testing.assert_allclose(b["initial_cov"], [[stationary]])
    np.testing.assert_allclose(b["loading"], np.ones((T, 1)))
    # Where the step is 1 it agrees with the regular AR(1).
    unit = np.flatnonzero(STEPS == 1.0)[0]
    np.testing.assert_allclose(b["noise_cov"][unit, 0, 0], scale**2)


def test_autoregressive_sample_sites():
    with handlers.trace() as trace, handlers.seed(rng_seed=0):
        params = bsts.Autoregressive(2).sample("ar", REGULAR)
    assert {"ar.scale", "ar.pacf_unit", "ar.coefficients"} <= set(trace)
    assert params["coefficients"].shape == (2,)
    pacf = 2 * np.asarray(trace["ar.pacf_unit"]["value"]) - 1
    np.testing.assert_allclose(params["coefficients"], _pacf_to_ar(jnp.asarray(pacf)))


def test_autoregressive_higher_order_on_irregular_raises():
    with handlers.seed(rng_seed=0), pytest.raises(ValueError, match="order=1"):
        bsts.Autoregressive(order=2).sample("ar", IRREGULAR)
    with handlers.seed(rng_seed=0):
        params = bsts.Autoregressive(order=1).sample("ar", IRREGULAR)
    assert 0.0 < float(params["coefficients"][0]) < 1.0


def test_sample_site_names():
    with handlers.trace() as trace, handlers.seed(rng_seed=0):
        bsts.LocalLinearTrend().sample("trend", REGULAR)
        bsts.Regression(["a", "b"], sparse=True).sample("regression", REGULAR)
    assert {"trend.level_scale", "trend.slope_scale", "regression.coefficients"} <= set(trace)
    assert trace["regression.coefficients"]["value"].shape == (2,)


# -- constructor errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: bsts.Seasonal(period=1), "period must be an integer >= 2"),
        (lambda: bsts.Seasonal(period=2.5), "period must be an integer >= 2"),
        (lambda: bsts.Seasonal(12, duration=0), "duration must be an integer >= 1"),
        (lambda: bsts.FourierSeasonal(period=1), "period must be > 1"),
        (lambda: bsts.FourierSeasonal(12, harmonics=0), "harmonics must be an integer from 1 to 6"),
        (lambda: bsts.FourierSeasonal(12, harmonics=7), "harmonics must be an integer from 1 to 6"),
        (lambda: bsts.Autoregressive(order=0), "order must be an integer >= 1"),
        (lambda: bsts.Regression([]), "non-empty list"),
        (lambda: bsts.Regression(["a", "a"]), "distinct"),
        (lambda: bsts.DynamicRegression([]), "non-empty list"),
        (lambda: bsts.LocalLevel(scale_prior=0.5), "scale_prior must be a numpyro Distribution"),
        (lambda: bsts.LocalLevel(scale_prior="halfnormal"), "numpyro Distribution"),
        (lambda: bsts.LocalLinearTrend(slope_scale_prior=[1.0]), "slope_scale_prior"),
        (lambda: bsts.LocalLevel(name="a.b"), "without '.'"),
    ],
)
def test_constructor_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_default_priors_are_distributions():
    for component in (
        bsts.LocalLevel(),
        bsts.LocalLinearTrend(),
        bsts.SemiLocalLinearTrend(),
        bsts.Seasonal(4),
        bsts.FourierSeasonal(12.0),
        bsts.Autoregressive(),
        bsts.Regression(["a"]),
        bsts.DynamicRegression(["a"]),
    ):
        priors = {k: v for k, v in vars(component).items() if k.endswith("_prior")}
        if isinstance(component, bsts.LocalLinearTrend):
            # Scaled to the record when the model sees the data (next test).
            assert priors.pop("slope_scale_prior") is None
        assert priors
        assert all(isinstance(v, dist.Distribution) for v in priors.values())


@pytest.mark.parametrize("dt", [np.ones(50), np.r_[1.0, np.full(49, 2.0)]], ids=["regular", "wide"])
def test_default_slope_prior_is_scaled_to_the_span(dt):
    inputs = ModelInputs(
        dt=dt, regular=bool(np.all(dt == 1)), covariates={}, initial_level=0.0, num_timesteps=50
    )
    trace = handlers.trace(handlers.seed(bsts.LocalLinearTrend().sample, 0)).get_trace(
        "trend", inputs
    )
    prior = trace["trend.slope_scale"]["fn"]
    span = 1.0 + dt[1:].sum()
    assert isinstance(prior, dist.HalfCauchy)
    np.testing.assert_allclose(float(prior.scale), span**-1.5)


@pytest.mark.parametrize("prior", [0, ""])
def test_falsy_non_distribution_prior_is_rejected(prior):
    # A prior that is not a Distribution must raise even when it is falsy; it must not be
    # silently replaced by the default prior.
    with pytest.raises(ValueError, match="numpyro Distribution"):
        bsts.LocalLevel(scale_prior=prior)


def test_horseshoe_variance_is_the_ratio_and_finite_in_float32():
    from bsts.components import horseshoe_variance

    tau, lam, c2 = 0.3, np.array([1e-3, 0.5, 2.0, 40.0]), 4.0
    naive = c2 * tau**2 * lam**2 / (c2 + tau**2 * lam**2)
    np.testing.assert_allclose(horseshoe_variance(tau, lam, c2), naive, rtol=1e-12)
    # Scales the half-Cauchy tails reach: tau^2 lambda^2 overflows or underflows float32.
    extreme = jnp.array([1e-30, 1e30], dtype=jnp.float32)
    values = horseshoe_variance(extreme, extreme, jnp.float32(4.0))
    np.testing.assert_allclose(values, [0.0, 4.0], atol=1e-30)
    gradient = jax.grad(lambda t: jnp.sum(horseshoe_variance(t, extreme, 4.0)))(jnp.float32(1e10))
    assert np.isfinite(gradient)


@pytest.mark.parametrize("period", [12, 4])
def test_fourier_nyquist_harmonic_keeps_the_likelihood_and_the_steady_state(period):
    """Every harmonic of an even period: the Nyquist pair's sine state is held at zero on a
    regular grid. The likelihood is still the dense Gaussian of the full rotating model,
    $\\mathrm{Cov}(a_{j,t}, a_{j,u}) = \\cos(\\lambda_j (t - u)) (1 + \\sigma^2 \\min(t, u))$,
    and the Riccati equation now has a stabilising solution (the fast path)."""
    from scipy import stats

    from bsts.kalman import marginal_log_likelihood
    from bsts.kalman.riccati import riccati_fixed_point, steady_state_holds

    K, T, scale, noise = period // 2, 40, 0.2, 0.3
    component = bsts.FourierSeasonal(period, harmonics=K)
    model = bsts.Model([component])
    rng = np.random.default_rng(0)
    y = rng.normal(size=T)
    series = bsts.data.prepare_series(pd.Series(y), None, [])
    params = {"fourier": {"scale": scale}, "observation.scale": noise}
    ssm = model.state_space(params, model.inputs(series))
    t = np.arange(T)
    lag, first = np.subtract.outer(t, t), np.minimum.outer(t, t)
    lambdas = 2 * np.pi * np.arange(1, K + 1) / period
    cov = sum(np.cos(lam * lag) for lam in lambdas) * (1 + scale**2 * first)
    cov = cov + noise**2 * np.eye(T)
    expected = stats.multivariate_normal(np.zeros(T), cov).logpdf(series.y)
    np.testing.assert_allclose(marginal_log_likelihood(ssm, series.y), expected, rtol=1e-9)
    F, Q, H, r = (
        jnp.asarray(ssm.transition_matrix),
        ssm.transition_cov,
        jnp.asarray(ssm.observation_matrix),
        ssm.observation_var,
    )
    steady = riccati_fixed_point(F, Q, H, r)
    assert bool(steady_state_holds(steady, F, Q, H, r))
    # Before, the sine state's variance grew without bound: a "fixed point" of 1e13 in
    # float64, none at all in float32.
    assert float(jnp.max(jnp.abs(steady))) < 10.0
