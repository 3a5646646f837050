"""The exact filter's hand-written adjoint (`bsts.kalman.adjoint`) against autodiff.

Gradients of every field must equal reverse-mode autodiff of `kalman_filter` to 1e-8
(relative to the field's largest entry) in float64, on random dense systems (time-varying
or not, singular covariances, every missing-data pattern), on the uneven components, under
`vmap`, and in float32 as closely as the float32 filter itself.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from kalman_helpers import (
    FIELD_NAMES,
    MISSING_PATTERNS,
    apply_missing,
    make_state_space,
    random_system,
    simulate,
)

import bsts
from bsts.kalman import kalman_filter, marginal_log_likelihood
from bsts.kalman.adjoint import exact_total_log_likelihood
from bsts.kalman.steps import prepare


def _autodiff_total(ssm, y):
    return kalman_filter(ssm, y).log_likelihood.sum()


def _adjoint_total(ssm, y):
    return exact_total_log_likelihood(*prepare(ssm, y))


_reference = jax.jit(jax.value_and_grad(_autodiff_total, argnums=(0, 1)))
_adjoint = jax.jit(jax.value_and_grad(_adjoint_total, argnums=(0, 1)))


def _assert_same(expected, actual, rtol):
    (value, (ssm_bar, y_bar)), (fast_value, (fast_ssm_bar, fast_y_bar)) = expected, actual
    np.testing.assert_allclose(float(fast_value), float(value), rtol=rtol)
    pairs = [(getattr(ssm_bar, n), getattr(fast_ssm_bar, n), n) for n in FIELD_NAMES]
    for e, a, name in [*pairs, (y_bar, fast_y_bar, "y")]:
        e, a = np.asarray(e), np.asarray(a)
        scale = np.max(np.abs(e)) + 1e-300
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("time_invariant", [False, True])
@pytest.mark.parametrize("singular", [False, True])
@pytest.mark.parametrize("pattern", MISSING_PATTERNS)
def test_gradients_of_every_field_match_autodiff(rng, time_invariant, singular, pattern):
    T = 40
    system = random_system(rng, 3, T, time_invariant=time_invariant, singular=singular)
    y = apply_missing(rng, simulate(rng, system, T), pattern)
    ssm = make_state_space(system)
    _assert_same(_reference(ssm, y), _adjoint(ssm, y), rtol=1e-8)


def test_mixed_constant_and_time_varying_fields(rng):
    # F and r vary, Q, H and d are constant: the constant ones' cotangents are summed.
    T = 50
    varying = random_system(rng, 4, T)
    constant = random_system(rng, 4, T, time_invariant=True)
    ssm = make_state_space(varying).replace(
        transition_cov=jnp.asarray(constant.transition_cov),
        observation_matrix=jnp.asarray(constant.observation_matrix),
        observation_offset=jnp.asarray(constant.observation_offset),
    )
    y = apply_missing(rng, simulate(rng, varying, T), "some")
    _assert_same(_reference(ssm, y), _adjoint(ssm, y), rtol=1e-8)


def test_observation_variance_zero_at_a_missing_step(rng):
    # H = 0 and r = 0 at a missing step: its innovation variance is exactly 0, which the
    # adjoint must not divide by. (Autodiff of the filter returns NaN there: its `where`
    # passes 0 * inf back.) A missing step's r does not enter the likelihood, so the
    # reference is the same system with r = 1 there.
    T = 30
    system = random_system(rng, 2, T, singular=True)
    H = jnp.asarray(system.observation_matrix).at[10].set(0.0)
    r = np.asarray(system.observation_var).copy()
    y = simulate(rng, system, T)
    y[10] = np.nan
    r[10] = 1.0
    reference = make_state_space(system).replace(observation_matrix=H, observation_var=r)
    r[10] = 0.0
    degenerate = make_state_space(system).replace(observation_matrix=H, observation_var=r)
    _assert_same(_reference(reference, y), _adjoint(degenerate, y), rtol=1e-8)


def _uneven_frame(rng, n: int) -> pd.Series:
    times = pd.Timestamp("2020-01-01") + pd.to_timedelta(
        np.cumsum(rng.exponential(3.0, size=n)), unit="D"
    )
    t = (times - times[0]).days.to_numpy(float)
    values = np.sin(2 * np.pi * t / 30.0) + 0.05 * t + rng.normal(scale=0.3, size=n)
    return pd.Series(values, index=times, name="y")


@pytest.mark.parametrize(
    "components",
    [
        lambda: bsts.Autoregressive(),
        lambda: bsts.LocalLinearTrend() + bsts.FourierSeasonal(30.0, harmonics=2),
        lambda: bsts.LocalLevel() + bsts.FourierSeasonal(30.0, harmonics=1),
    ],
    ids=["ou", "llt_fourier", "level_fourier"],
)
def test_uneven_components_match_autodiff(rng, components):
    from numpyro import handlers

    from bsts.data import prepare_series
    from bsts.inference import as_model

    model = as_model(components())
    series = prepare_series(_uneven_frame(rng, 60), None, [])
    assert not series.regular
    inputs = model.inputs(series)
    with handlers.seed(rng_seed=1):
        params = model.sample_parameters(inputs)
    ssm = model.state_space(params, inputs)
    y = jnp.asarray(series.y)

    def through_parameters(fn):
        # Differentiate through the dt -> F_t, Q_t maps, as a fit does.
        def total(p):
            return fn(model.state_space(p, inputs), y)

        return jax.jit(jax.value_and_grad(total))(params)

    value, grads = through_parameters(_autodiff_total)
    fast_value, fast_grads = through_parameters(lambda s, v: marginal_log_likelihood(s, v))
    assert not ssm.has_constant_dynamics
    np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-10)
    for e, a in zip(jax.tree.leaves(grads), jax.tree.leaves(fast_grads), strict=True):
        scale = np.max(np.abs(np.asarray(e))) + 1e-300
        np.testing.assert_allclose(a, e, rtol=1e-8, atol=1e-8 * scale)


def test_vmap_over_series(rng):
    T = 25
    system = random_system(rng, 3, T)
    ys = np.stack([apply_missing(rng, simulate(rng, system, T), "some") for _ in range(4)])
    ssm = make_state_space(system)

    def grad_of(fn):
        return jax.jit(jax.vmap(jax.grad(lambda s, y: fn(s, y)), in_axes=(None, 0)))(ssm, ys)

    expected, actual = grad_of(_autodiff_total), grad_of(_adjoint_total)
    for name in FIELD_NAMES:
        e, a = np.asarray(getattr(expected, name)), np.asarray(getattr(actual, name))
        np.testing.assert_allclose(a, e, rtol=1e-8, atol=1e-8 * np.max(np.abs(e)), err_msg=name)


def test_float32_as_close_as_the_float32_filter(rng):
    T = 200
    system = random_system(rng, 3, T, mean_scale=10.0)
    y = apply_missing(rng, simulate(rng, system, T), "some")
    reference = _reference(make_state_space(system), y)
    ssm32 = make_state_space(system, np.float32)
    y32 = y.astype(np.float32)
    autodiff32, adjoint32 = _reference(ssm32, y32), _adjoint(ssm32, y32)

    def worst(result):
        _, (bars, _) = result
        return max(
            np.max(np.abs(np.asarray(getattr(bars, n), float) - np.asarray(getattr(ref, n))))
            / (np.max(np.abs(np.asarray(getattr(ref, n)))) + 1e-30)
            for n in FIELD_NAMES
            for ref in [reference[1][0]]
        )

    assert abs(float(adjoint32[0]) - float(reference[0])) <= 2 * abs(
        float(autodiff32[0]) - float(reference[0])
    ) + 1e-5 * abs(float(reference[0]))
    assert worst(adjoint32) <= 2 * worst(autodiff32) + 1e-4
