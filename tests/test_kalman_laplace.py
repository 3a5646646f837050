"""The Laplace approximation of non-Gaussian observations (`bsts.kalman.laplace`).

References: a dense Laplace approximation (the signal's prior as one multivariate normal,
Newton's method on it, its log determinant), exact quadrature of the marginal likelihood
on a three-step series, and a Gaussian "family", for which the approximation is exact.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import gammaln

from bsts.kalman import StateSpace, log_likelihood, marginal_log_likelihood
from bsts.kalman.laplace import (
    importance_resampled_states,
    laplace_approximation,
    laplace_log_likelihood,
    laplace_one_step_log_likelihood,
)


def poisson(y, theta, params=()):
    return y * theta - jnp.exp(theta) - gammaln(y + 1.0)


def bernoulli(y, theta, params=()):
    return y * theta - jax.nn.softplus(theta)


def trend_model(level_var=0.05, slope_var=0.001, T=None):
    """A local linear trend on the log-rate scale (constant dynamics)."""
    return StateSpace(
        jnp.array([[1.0, 1.0], [0.0, 1.0]]),
        jnp.diag(jnp.array([level_var, slope_var])),
        jnp.array([1.0, 0.0]),
        jnp.asarray(0.3),
        jnp.asarray(1.0),
        jnp.array([1.5, 0.0]),
        jnp.diag(jnp.array([0.5, 0.01])),
    )


def dense_signal_prior(ssm: StateSpace, T: int):
    """Mean and covariance of theta_t = H x_t + d over T steps (constant dynamics)."""
    F, Q, H = (
        np.asarray(a) for a in (ssm.transition_matrix, ssm.transition_cov, ssm.observation_matrix)
    )
    m, P = np.asarray(ssm.initial_mean), np.asarray(ssm.initial_cov)
    means, powers = [], []
    # x_t = F^t x_0 + sum_{s<t} F^{t-1-s} eta_s: build the joint covariance of the states.
    d = m.shape[0]
    cov = np.zeros((T * d, T * d))
    marginal = [P]
    for _ in range(T - 1):
        marginal.append(F @ marginal[-1] @ F.T + Q)
    for t in range(T):
        means.append(np.linalg.matrix_power(F, t) @ m)
        for s in range(t + 1):
            block = np.linalg.matrix_power(F, t - s) @ marginal[s]
            cov[t * d : (t + 1) * d, s * d : (s + 1) * d] = block
            cov[s * d : (s + 1) * d, t * d : (t + 1) * d] = block.T
    del powers
    loading = np.kron(np.eye(T), H[None, :])
    offset = float(np.asarray(ssm.observation_offset))
    return loading @ np.concatenate(means) + offset, loading @ cov @ loading.T


def dense_laplace(y, mean, cov, log_density, iterations=60, steps=()):
    """The Laplace approximation of log p(y) with a dense signal prior (JAX, differentiable).

    `steps` are per-step parameters, `(T,)` each, passed to `log_density` step by step.
    """
    observed = ~jnp.isnan(y)
    y0 = jnp.where(observed, y, 0.0)
    precision = jnp.linalg.inv(cov)
    first = jax.vmap(jax.grad(log_density, argnums=1))
    second = jax.vmap(jax.grad(jax.grad(log_density, argnums=1), argnums=1))
    if steps:
        first = functools.partial(first, params=steps)
        second = functools.partial(second, params=steps)

    def objective_parts(theta):
        per_step = jax.vmap(log_density)(y0, theta, *((steps,) if steps else ()))
        return jnp.where(observed, per_step, 0.0).sum()

    def newton(_, theta):
        g = jnp.where(observed, first(y0, theta), 0.0) - precision @ (theta - mean)
        W = jnp.where(observed, -second(y0, theta), 0.0)
        return theta + jnp.linalg.solve(precision + jnp.diag(W), g)

    # Static bounds: a scan, so that autodiff runs through every Newton step.
    theta = jax.lax.fori_loop(0, iterations, newton, mean)
    W = jnp.where(observed, -second(y0, theta), 0.0)
    resid = theta - mean
    _, logdet_cov = jnp.linalg.slogdet(cov)
    _, logdet_post = jnp.linalg.slogdet(precision + jnp.diag(W))
    log_prior = -0.5 * (len(y) * np.log(2 * np.pi) + logdet_cov + resid @ precision @ resid)
    return objective_parts(theta) + log_prior + 0.5 * len(y) * np.log(2 * np.pi) - 0.5 * logdet_post


def start(y):
    return jnp.log(jnp.nan_to_num(y, nan=1.0) + 0.5)


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(3)
    T = 12
    log_rate = 1.5 + np.cumsum(rng.normal(0.0, 0.25, T))
    y = rng.poisson(np.exp(log_rate)).astype(float)
    y[[4, 9]] = np.nan
    return jnp.asarray(y)


def test_gaussian_family_is_exact():
    """With Normal observations the approximating model is the model itself."""
    rng = np.random.default_rng(0)
    y = jnp.asarray(rng.normal(1.5, 1.0, 20)).at[5].set(jnp.nan)
    ssm = trend_model()

    def normal(y_t, theta, params):
        return -0.5 * (np.log(2 * np.pi * 0.7) + (y_t - theta) ** 2 / 0.7)

    gaussian = ssm.replace(observation_var=jnp.asarray(0.7))

    @jax.jit
    def compare():
        laplace = laplace_approximation(ssm, y, normal, jnp.zeros(20))
        return (
            (
                laplace_log_likelihood(ssm, y, normal, jnp.zeros(20)),
                marginal_log_likelihood(gaussian, y),
            ),
            (laplace_one_step_log_likelihood(laplace, y, normal), log_likelihood(gaussian, y)),
        )

    (approx, exact), (pointwise, reference) = compare()
    np.testing.assert_allclose(approx, exact, rtol=1e-10)
    np.testing.assert_allclose(pointwise, reference, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("family", ["poisson", "bernoulli"])
def test_matches_the_dense_laplace_approximation(counts, family):
    ssm = trend_model()
    y = counts if family == "poisson" else jnp.where(jnp.isnan(counts), jnp.nan, counts > 4)
    log_density = {"poisson": poisson, "bernoulli": bernoulli}[family]
    mean, cov = dense_signal_prior(ssm, y.shape[0])
    reference = jax.jit(dense_laplace, static_argnums=3)(
        y, jnp.asarray(mean), jnp.asarray(cov), log_density
    )
    value = jax.jit(laplace_log_likelihood, static_argnums=2)(ssm, y, log_density, start(y))
    np.testing.assert_allclose(value, reference, rtol=1e-10)
    laplace = jax.jit(laplace_approximation, static_argnums=2)(ssm, y, log_density, start(y))
    assert bool(laplace.converged) and int(laplace.iterations) < 15


def binomial(y, theta, params):
    n = params["trials"]
    return y * theta - n * jax.nn.softplus(theta) - gammaln(y + 1.0) - gammaln(n - y + 1.0)


def test_per_step_parameters_match_the_dense_laplace_approximation(counts):
    """A `(T,)` leaf of `params` reaches `log_density` step by step (a binomial's trials)."""
    trials = jnp.asarray(np.arange(12) % 5 * 4.0 + 3.0)
    y = jnp.minimum(counts, trials)
    ssm = trend_model()
    mean, cov = dense_signal_prior(ssm, y.shape[0])
    steps = {"trials": trials}
    reference = dense_laplace(y, jnp.asarray(mean), jnp.asarray(cov), binomial, steps=steps)
    first = jnp.log(jnp.nan_to_num(y) + 0.5) - jnp.log(trials - jnp.nan_to_num(y) + 0.5)
    value = laplace_log_likelihood(ssm, y, binomial, first, steps)
    np.testing.assert_allclose(value, reference, rtol=1e-10)
    laplace = laplace_approximation(ssm, y, binomial, first, steps)
    pointwise = laplace_one_step_log_likelihood(laplace, y, binomial, steps)
    assert np.all(np.isfinite(pointwise)) and float(pointwise[4]) == 0.0


def test_gradient_matches_the_dense_laplace_approximation(counts):
    """Every field's gradient, including the curvature's dependence on the mode."""
    y = counts

    def kalman(level_var, slope_var, offset, m0):
        ssm = trend_model(level_var, slope_var).replace(
            observation_offset=offset, initial_mean=jnp.array([m0, 0.0])
        )
        return laplace_log_likelihood(ssm, y, poisson, start(y))

    def dense(level_var, slope_var, offset, m0):
        ssm = trend_model(level_var, slope_var).replace(
            observation_offset=offset, initial_mean=jnp.array([m0, 0.0])
        )
        mean, cov = _dense_prior_jax(ssm, y.shape[0])
        return dense_laplace(y, mean, cov, poisson)

    args = (0.05, 0.001, 0.3, 1.5)
    got = jax.jit(jax.grad(kalman, argnums=(0, 1, 2, 3)))(*args)
    want = jax.jit(jax.grad(dense, argnums=(0, 1, 2, 3)))(*args)
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-7)


def _dense_prior_jax(ssm, T):
    """`dense_signal_prior` for a local linear trend, differentiable in its fields."""
    F, Q, H = ssm.transition_matrix, ssm.transition_cov, ssm.observation_matrix
    marginal = [ssm.initial_cov]
    for _ in range(T - 1):
        marginal.append(F @ marginal[-1] @ F.T + Q)
    powers = [jnp.eye(2)]
    for _ in range(T):
        powers.append(F @ powers[-1])
    means = jnp.stack([H @ powers[t] @ ssm.initial_mean for t in range(T)]) + ssm.observation_offset
    rows = []
    for t in range(T):
        row = []
        for s in range(T):
            block = powers[t - s] @ marginal[s] if s <= t else (powers[s - t] @ marginal[t]).T
            row.append(H @ block @ H)
        rows.append(jnp.stack(row))
    return means, jnp.stack(rows)


@pytest.fixture(scope="module")
def three_bernoulli_steps():
    """A model, data and the exact posterior (a product Gauss-Hermite rule over theta)."""
    ssm = trend_model(level_var=1.0)
    y = jnp.array([1.0, 0.0, 1.0])
    mean, cov = dense_signal_prior(ssm, 3)
    points, weights = np.polynomial.hermite.hermgauss(40)
    grid = np.array(list(itertools.product(range(40), repeat=3)))
    theta = mean + np.sqrt(2.0) * points[grid] @ np.linalg.cholesky(cov).T
    w = np.prod(weights[grid], axis=1) / np.pi**1.5
    log_p = np.asarray(jax.vmap(lambda th: jax.vmap(bernoulli)(y, th).sum())(jnp.asarray(theta)))
    joint = w * np.exp(log_p)
    return ssm, y, theta, joint


def test_importance_sampling_reaches_the_exact_marginal_likelihood(three_bernoulli_steps):
    """Three Bernoulli steps, integrated exactly by a product Gauss-Hermite rule."""
    ssm, y, _, joint = three_bernoulli_steps
    exact = np.log(np.sum(joint))
    laplace = float(jax.jit(laplace_log_likelihood, static_argnums=2)(ssm, y, bernoulli, start(y)))
    corrected = jax.jit(
        jax.vmap(
            lambda key: laplace_log_likelihood(
                ssm, y, bernoulli, start(y), importance_samples=4000, key=key
            )
        )
    )(jax.random.split(jax.random.PRNGKey(1), 8))
    assert abs(laplace - exact) > 0.01  # the approximation is not exact here...
    assert abs(float(np.mean(corrected)) - exact) < 0.002  # ...the correction is (sd 5e-4)


def test_importance_resampling_reaches_the_exact_posterior_of_the_signal(three_bernoulli_steps):
    ssm, y, theta, joint = three_bernoulli_steps
    exact = (joint[:, None] * theta).sum(axis=0) / joint.sum()
    approx = laplace_approximation(ssm, y, bernoulli, start(y))
    keys = jax.random.split(jax.random.PRNGKey(2), 4000)
    paths = jax.jit(
        jax.vmap(lambda k: importance_resampled_states(k, approx, y, bernoulli, (), 64))
    )(keys)
    resampled = np.asarray(paths[:, :, 0] + 0.3)  # the signal: level plus the offset
    laplace_bias = np.abs(np.asarray(approx.signal) - exact).max()
    assert laplace_bias > 0.05  # the mode is not the posterior mean here...
    # ...and resampled paths average to it (Monte Carlo sd about 0.02).
    np.testing.assert_allclose(resampled.mean(axis=0), exact, atol=0.06)


def test_float32_agrees_with_float64(counts):
    def value_and_gradient(dtype):
        ssm = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), trend_model())
        y = counts.astype(dtype)

        def f(offset):
            return laplace_log_likelihood(
                ssm.replace(observation_offset=offset), y, poisson, start(y)
            )

        return jax.jit(jax.value_and_grad(f))(jnp.asarray(0.3, dtype))

    value32, grad32 = value_and_gradient(jnp.float32)
    value64, grad64 = value_and_gradient(jnp.float64)
    assert value32.dtype == jnp.float32
    np.testing.assert_allclose(value32, value64, rtol=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-3)


def test_jit_and_vmap_over_series(counts):
    ssm = trend_model()
    batch = jnp.stack([counts, jnp.nan_to_num(counts, nan=3.0)])
    values = jax.jit(jax.vmap(lambda y: laplace_log_likelihood(ssm, y, poisson, start(y))))(batch)
    for y, value in zip(batch, values, strict=True):
        np.testing.assert_allclose(
            value, laplace_log_likelihood(ssm, y, poisson, start(y)), rtol=1e-10
        )


def test_bad_importance_options():
    ssm, y = trend_model(), jnp.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="even"):
        laplace_log_likelihood(
            ssm, y, poisson, start(y), importance_samples=3, key=jax.random.PRNGKey(0)
        )
    with pytest.raises(ValueError, match="key"):
        laplace_log_likelihood(ssm, y, poisson, start(y), importance_samples=4)


def test_importance_sampling_gradient_is_finite_with_a_singular_noise_covariance(counts):
    """A level plus a dummy seasonal(3): the noise covariance has repeated zero eigenvalues."""

    def model(level_var, seasonal_var):
        F = jnp.array([[1.0, 0.0, 0.0], [0.0, -1.0, -1.0], [0.0, 1.0, 0.0]])
        Q = jnp.diag(jnp.stack([level_var, seasonal_var, 0.0]))
        return StateSpace(
            F, Q, jnp.array([1.0, 1.0, 0.0]), 0.0, 1.0, jnp.array([1.5, 0.0, 0.0]), jnp.eye(3)
        )

    def value(args, samples):
        return laplace_log_likelihood(
            model(*args),
            counts,
            poisson,
            start(counts),
            importance_samples=samples,
            key=jax.random.PRNGKey(0),
        )

    args = (jnp.asarray(0.05), jnp.asarray(0.01))
    corrected = jax.jit(jax.value_and_grad(lambda a: value(a, 64)))(args)
    laplace = jax.jit(jax.value_and_grad(lambda a: value(a, 0)))(args)
    assert np.all(np.isfinite(np.array(corrected[1])))
    np.testing.assert_allclose(corrected[0], laplace[0], atol=0.2)  # a small correction
    np.testing.assert_allclose(np.array(corrected[1]), np.array(laplace[1]), rtol=0.2, atol=0.5)
